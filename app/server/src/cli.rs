//! The `sluice` command line.

use clap::{Parser, Subcommand};
use sluice_store::accounts::NewUser;
use sluice_store::api_keys::KeyCreator;
use sluice_store::audit::AuditEvent;
use sluice_store::domain::{Email, NewPassword, PersonName, Role, TenantName};
use std::process::ExitCode;

use crate::config::Config;
use crate::startup::{self, Application};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Move data between your SQL databases and the rest of your systems.",
    long_about = "Sluice: a multi-tenant web application that pulls rows from SQL databases to \
                  callback URLs, pushes segment changes into databases, and turns database \
                  changes into webhooks.\n\nEvery option can also be set by its environment \
                  variable (shown in brackets)."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Web UI, JSON API, public URLs and job workers in one process (the default).
    Serve,
    /// Job workers only, for scaling out beside `serve` on a shared PostgreSQL.
    Worker,
    /// Provision a demo tenant (sample SQLite database and a connector to it), print
    /// its login, then serve. Outbound calls to local addresses are allowed.
    Demo,
    /// Apply pending control-plane migrations and exit (`serve` also does this on start).
    Migrate,
    /// Operator commands for scripts and automated provisioning.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant and its owner; prints the tenant id.
    TenantCreate {
        /// Tenant (organisation) name, unique on this instance.
        #[arg(long)]
        name: String,
        /// The owner's email, used to sign in.
        #[arg(long)]
        email: String,
        /// The owner's password (at least 10 characters).
        #[arg(long)]
        password: String,
        /// The owner's display name (default: the part of the email before @).
        #[arg(long)]
        owner_name: Option<String>,
    },
    /// Re-seal every stored secret with the current SLUICE_SECRET_KEY (secrets
    /// sealed with a key in SLUICE_PREVIOUS_SECRET_KEYS still open until then).
    RotateKey,
    /// Create an API key for a tenant and print it (it is shown only this once).
    ApikeyCreate {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// A label for the key.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init(cli.config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Work abandoned at the shutdown deadline (a query stuck in a driver) must not
    // keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config, startup::Mode::Serve).await?;
            println!("Sluice is listening on {}", app.public_url());
            app.run_until_stopped().await
        }
        Command::Worker => {
            let app = Application::build(config, startup::Mode::WorkerOnly).await?;
            app.run_until_stopped().await
        }
        Command::Demo => {
            let mut config = config;
            config.allow_private_targets = true;
            config.allow_private_databases = true;
            let store = startup::open_store(&config).await?;
            let login = crate::demo::provision(&store, &config.sqlite_root()).await?;
            let app = Application::build(config, startup::Mode::Serve).await?;
            println!("Sluice demo is ready at {}", app.public_url());
            println!(
                "  log in as {} with the password {}",
                login.email, login.password
            );
            app.run_until_stopped().await
        }
        Command::Migrate => {
            startup::open_store(&config).await?;
            println!("control-plane migrations are up to date");
            Ok(())
        }
        Command::Admin(admin) => run_admin(config, admin).await,
    }
}

async fn run_admin(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    let store = startup::open_store(&config).await?;
    match command {
        AdminCommand::TenantCreate {
            name,
            email,
            password,
            owner_name,
        } => {
            let tenant_name = TenantName::parse(&name)?;
            let email = Email::parse(&email)?;
            let default_name = email
                .as_str()
                .split('@')
                .next()
                .unwrap_or("owner")
                .to_string();
            let owner = NewUser {
                name: PersonName::parse(owner_name.as_deref().unwrap_or(&default_name))?,
                email,
                password: NewPassword::parse(&password, "password")?,
                role: Role::Owner,
            };
            let (tenant, user) = store.create_tenant_with_owner(&tenant_name, owner).await?;
            store
                .audit(
                    &tenant.id,
                    AuditEvent {
                        actor: "system",
                        action: "tenant.create",
                        target: &user.email,
                        detail: "created by sluice admin tenant-create",
                        ip: None,
                    },
                )
                .await?;
            println!("{}", tenant.id);
            Ok(())
        }
        AdminCommand::RotateKey => {
            // Opening the store re-sealed what it could; this says how things stand.
            let outcome = store.reseal_secrets().await?;
            if outcome.unreadable > 0 {
                anyhow::bail!(
                    "{} connector(s) are sealed with a key this instance does not have; \
                     add it to SLUICE_PREVIOUS_SECRET_KEYS and run this again",
                    outcome.unreadable
                );
            }
            println!(
                "every stored secret is sealed with the current key (key id {})",
                store.secret().key_id()
            );
            Ok(())
        }
        AdminCommand::ApikeyCreate { tenant, name } => {
            let tenant = store
                .tenant_by_name(&tenant)
                .await
                .map_err(|e| anyhow::anyhow!("tenant {tenant:?}: {e}"))?;
            let (key, secret) = store
                .create_api_key(&tenant.id, &name, KeyCreator::System)
                .await?;
            store
                .audit(
                    &tenant.id,
                    AuditEvent {
                        actor: "system",
                        action: "api_key.create",
                        target: &key.name,
                        detail: "created by sluice admin apikey-create",
                        ip: None,
                    },
                )
                .await?;
            println!("{secret}");
            Ok(())
        }
    }
}
