//! Kill the real `sluice` process (SIGKILL) in the middle of a multi-batch run,
//! start it again, and check that every row was delivered at least once and that
//! the cursor ends right.

use serde_json::{Value, json};
use sluice_tests::{Receiver, TestDatabase};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ROWS: i64 = 3000;

/// The `sluice` binary next to this test binary (tests/run.sh builds it), or `SLUICE_BIN`.
fn sluice_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SLUICE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("sluice"))
        .expect("target dir");
    assert!(
        candidate.exists(),
        "{} is missing: build it with `cargo build -p sluice-server --bin sluice` (tests/run.sh does)",
        candidate.display()
    );
    candidate
}

fn sluice(data_dir: &Path) -> Command {
    let mut command = Command::new(sluice_binary());
    command
        .env("SLUICE_DATA_DIR", data_dir)
        .env("SLUICE_ALLOW_PRIVATE_TARGETS", "true")
        .env("SLUICE_RUN_LEASE_SECS", "3")
        .env("SLUICE_DELIVERY_RETRY_DELAYS", "0.1,0.2")
        .env("RUST_LOG", "warn")
        .env_remove("SLUICE_DATABASE_URL");
    command
}

fn admin(data_dir: &Path, args: &[&str]) -> String {
    let output = sluice(data_dir)
        .arg("admin")
        .args(args)
        .output()
        .expect("run sluice admin");
    assert!(
        output.status.success(),
        "sluice admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A running `sluice serve`, killed (and reaped) when dropped, even if the test fails.
struct ServeProcess(Child);

impl ServeProcess {
    /// SIGKILL: no shutdown, no cleanup, exactly like a crash.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn serve(data_dir: &Path, bind: &str) -> ServeProcess {
    let log = std::fs::File::create(
        data_dir.join(format!("serve-{}.log", uuid::Uuid::new_v4().simple())),
    )
    .unwrap();
    let child = sluice(data_dir)
        .arg("serve")
        .env("SLUICE_BIND", bind)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sluice serve");
    let process = ServeProcess(child);
    let ready = format!("http://{bind}/readyz");
    for _ in 0..200 {
        if reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sluice serve never became ready on {bind}");
}

fn free_address() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

fn delivered_ids(receiver: &Receiver) -> Vec<i64> {
    receiver
        .received()
        .iter()
        .flat_map(|r| {
            r.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_no_rows_and_the_cursor_ends_right() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let source = TestDatabase::create("sluice_src").await;
    source.execute(&format!("CREATE TABLE items (id bigint PRIMARY KEY, h text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;")).await;

    admin(
        &data,
        &[
            "tenant-create",
            "--name",
            "Crash Co",
            "--email",
            "crash@crash.test",
            "--password",
            "crash test password",
        ],
    );
    let key = admin(&data, &["apikey-create", "--tenant", "Crash Co"]);
    let bind = free_address();
    let mut first = serve(&data, &bind).await;
    let api = |method: reqwest::Method, path: &str| {
        reqwest::Client::new()
            .request(method, format!("http://{bind}{path}"))
            .bearer_auth(&key)
    };

    let url = url::Url::parse(&source.url).unwrap();
    let connection: Value = api(reqwest::Method::POST, "/api/v1/connections")
        .json(&json!({"name": "items", "kind": "postgres", "auth": {"params": {"server": url.host_str().unwrap(), "port": url.port().unwrap_or(5432), "database": source.name, "username": "postgres", "sslMode": "disabled"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    receiver.respond_after(Duration::from_millis(100));
    let command: Value = api(reqwest::Method::POST, "/api/v1/commands")
        .json(&json!({"connection_id": connection["id"], "sql": "SELECT id, h FROM items WHERE id > @last_value@ ORDER BY id", "callback": {"url": receiver.url}, "last_field": "id", "last_value": "0", "batch_size": 100}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = command["id"].as_str().unwrap().to_string();
    let started = api(reqwest::Method::POST, &format!("/api/v1/commands/{id}/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);

    // Mid-run: some batches are in, most are not.
    receiver.wait_for(5, Duration::from_secs(30)).await;
    first.kill();
    let before_restart = delivered_ids(&receiver);
    assert!(
        before_restart.len() < ROWS as usize,
        "the run was interrupted mid-way ({} rows)",
        before_restart.len()
    );

    let mut second = serve(&data, &bind).await;
    receiver.respond_after(Duration::ZERO);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let runs: Vec<Value> = api(reqwest::Method::GET, &format!("/api/v1/commands/{id}/runs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if runs.iter().any(|r| r["status"] == "succeeded")
            && runs
                .iter()
                .all(|r| r["status"] == "succeeded" || r["status"] == "failed")
        {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never completed after the restart: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The killed run is never resumed: it is released as interrupted and the
    // command runs again from its unmoved cursor.
    let released = runs.iter().any(|r| {
        r["status"] == "failed"
            && r["error"]
                .as_str()
                .is_some_and(|e| e.contains("interrupted"))
    });
    assert!(released, "{runs:?}");

    let delivered: BTreeSet<i64> = delivered_ids(&receiver).into_iter().collect();
    let expected: BTreeSet<i64> = (1..=ROWS).collect();
    assert_eq!(delivered, expected, "every row delivered at least once");
    let state: Value = api(reqwest::Method::GET, &format!("/api/v1/commands/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["last_value"],
        ROWS.to_string(),
        "the cursor is the last row's id"
    );
    assert_eq!(state["status"], "READY");
    second.kill();
}
