//! `sluice admin …` and `sluice migrate`, run in-process against a real store.

use clap::Parser;
use sluice_server::cli::{Cli, run};
use sluice_tests::{Backend, TestApp, TestDatabase, on_both_backends};

fn cli(data_dir: &std::path::Path, database_url: Option<&str>, args: &[&str]) -> Cli {
    let mut argv = vec![
        "sluice".to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    if let Some(url) = database_url {
        argv.extend(["--database-url".into(), url.to_string()]);
    }
    argv.extend(args.iter().map(|s| s.to_string()));
    Cli::try_parse_from(argv).expect("arguments parse")
}

on_both_backends!(
    admin_commands_provision_a_tenant_and_key,
    |backend| async move {
        let dir = tempfile::tempdir().unwrap();
        let database = match backend {
            Backend::Postgres => Some(TestDatabase::create("sluice_cli").await),
            Backend::Sqlite => None,
        };
        let url = database.as_ref().map(|d| d.url.as_str());
        run(cli(dir.path(), url, &["migrate"]))
            .await
            .expect("migrate");
        run(cli(
            dir.path(),
            url,
            &[
                "admin",
                "tenant-create",
                "--name",
                "Ops Co",
                "--email",
                "ops@ops.test",
                "--password",
                "operator password",
            ],
        ))
        .await
        .expect("tenant-create");
        let duplicate = run(cli(
            dir.path(),
            url,
            &[
                "admin",
                "tenant-create",
                "--name",
                "Ops Co",
                "--email",
                "other@ops.test",
                "--password",
                "operator password",
            ],
        ))
        .await;
        assert!(
            duplicate.unwrap_err().to_string().contains("tenant_name"),
            "a clear error naming the field"
        );
        let short = run(cli(
            dir.path(),
            url,
            &[
                "admin",
                "tenant-create",
                "--name",
                "X",
                "--email",
                "x@ops.test",
                "--password",
                "short",
            ],
        ))
        .await;
        assert!(short.unwrap_err().to_string().contains("password"));
        run(cli(
            dir.path(),
            url,
            &["admin", "apikey-create", "--tenant", "Ops Co"],
        ))
        .await
        .expect("apikey-create");
        let missing = run(cli(
            dir.path(),
            url,
            &["admin", "apikey-create", "--tenant", "Nope"],
        ))
        .await;
        assert!(missing.unwrap_err().to_string().contains("Nope"));

        // The same data directory and database serve the web app: the owner can log in.
        let app = TestApp::spawn_with(backend, |config| {
            config.data_dir = dir.path().to_path_buf();
            config.database_url = url.map(str::to_string);
        })
        .await;
        let response = app
            .login_with(&app.client, "ops@ops.test", "operator password")
            .await;
        assert_eq!(response.status(), 303);
        let tenant = app.store().tenant_by_name("Ops Co").await.unwrap();
        assert_eq!(app.store().api_keys(&tenant.id).await.unwrap().len(), 1);
    }
);

#[test]
fn help_explains_every_subcommand_and_setting() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for needle in [
        "serve",
        "worker",
        "migrate",
        "admin",
        "SLUICE_DATABASE_URL",
        "SLUICE_BIND",
        "SLUICE_PUBLIC_URL",
        "SLUICE_SECRET_KEY",
        "SLUICE_ALLOW_PRIVATE_TARGETS",
    ] {
        assert!(help.contains(needle), "--help mentions {needle}");
    }
}

/// Boolean settings read from the environment accept the usual spellings
/// (`1`, `yes`, `on`, `true` and their opposites), and anything else is refused
/// with the setting's name.
#[test]
fn boolean_settings_from_the_environment_accept_1_yes_and_on() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = |value: &str| {
        std::process::Command::new(sluice_tests::sluice_binary())
            .arg("migrate")
            .env("SLUICE_DATA_DIR", dir.path())
            .env("SLUICE_ALLOW_PRIVATE_TARGETS", value)
            .env("SLUICE_ALLOW_PRIVATE_DATABASES", value)
            .output()
            .expect("the sluice binary runs")
    };
    for value in ["1", "0", "yes", "no", "on", "off", "true", "false"] {
        let out = migrate(value);
        assert!(
            out.status.success(),
            "{value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = migrate("maybe");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("allow-private"), "{stderr}");
}
