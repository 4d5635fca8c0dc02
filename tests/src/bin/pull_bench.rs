//! Pull-sync benchmark (not a test): 1,000,000 rows of 10 mixed-type columns in
//! PostgreSQL and in MariaDB, pulled by a release `sluice serve` to a local HTTP
//! sink, beside the baseline of the database's own JSON export in the same run.
//! Prints rows/s, the ratio to the baseline, and the server's peak RSS; then the
//! enqueue-to-start latency of small runs with the control plane on SQLite and on
//! PostgreSQL (from the run's `queued_at` to its `started_at`).
//!
//! Run with `bash tests/bench.sh` (builds the release binaries first).
//! `SLUICE_BENCH_ROWS` changes the row count, `SLUICE_BENCH_BATCH` the batch size.

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use sluice_tests::{ServeProcess, Sluice, free_address};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Sink {
    url: String,
    bytes: Arc<AtomicU64>,
    posts: Arc<AtomicU64>,
}

async fn start_sink() -> Sink {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sink", listener.local_addr().unwrap());
    let (bytes, posts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (b, p) = (bytes.clone(), posts.clone());
    let server = HttpServer::new(move || {
        let (b, p) = (b.clone(), p.clone());
        App::new()
            .app_data(web::PayloadConfig::new(512 * 1024 * 1024))
            .default_service(web::to(move |body: web::Bytes| {
                let (b, p) = (b.clone(), p.clone());
                async move {
                    b.fetch_add(body.len() as u64, Ordering::Relaxed);
                    p.fetch_add(1, Ordering::Relaxed);
                    HttpResponse::Ok().finish()
                }
            }))
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .disable_signals()
    .run();
    tokio::spawn(server);
    Sink { url, bytes, posts }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `psql` on the local server as postgres, in `database`, quiet, running `sql`
/// (`-c`, so `\\copy` works too).
fn psql(database: &str, sql: &str) -> Command {
    let mut command = Command::new("psql");
    command.args([
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        database,
        "-qc",
        sql,
    ]);
    command
}

fn timed(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed");
    started.elapsed()
}

struct Source {
    kind: &'static str,
    database: String,
    connection: Value,
    baseline: Box<dyn Fn() -> Command>,
}

fn prepare_postgres(rows: u64) -> Source {
    let database = format!("sluice_bench_{}", uuid::Uuid::new_v4().simple());
    run(&mut psql(
        "postgres",
        &format!("CREATE DATABASE {database}"),
    ));
    let setup = format!(
        "CREATE TABLE t (id bigint PRIMARY KEY, name text, amount numeric(12,2), qty int, ratio double precision, active boolean, \
         created_at timestamptz, day date, tags jsonb, code uuid); \
         INSERT INTO t SELECT g, 'customer ' || g, (g % 100000) / 100.0, g % 1000, g / 7.0, g % 2 = 0, \
         timestamptz '2026-01-01' + g * interval '1 second', date '2026-01-01' + (g % 365), \
         jsonb_build_object('tier', g % 5, 'region', 'eu'), md5(g::text)::uuid FROM generate_series(1, {rows}) g; ANALYZE t;"
    );
    run(&mut psql(&database, &setup));
    let db = database.clone();
    Source {
        kind: "PostgreSQL",
        database: database.clone(),
        connection: json!({"name": "bench_pg", "kind": "postgres", "auth": {"params": {"server": "127.0.0.1", "port": 5432, "database": database, "username": "postgres", "sslMode": "disabled"}}}),
        baseline: Box::new(move || {
            psql(&db, "\\copy (SELECT row_to_json(t) FROM t) TO '/dev/null'")
        }),
    }
}

fn prepare_mariadb(rows: u64) -> Source {
    let database = format!("sluice_bench_{}", uuid::Uuid::new_v4().simple());
    let setup = format!(
        "CREATE DATABASE {database}; USE {database}; \
         CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(12,2), qty INT, ratio DOUBLE, active BOOLEAN, \
         created_at DATETIME(6), day DATE, tags JSON, code CHAR(36)); \
         INSERT INTO t SELECT seq, CONCAT('customer ', seq), (seq % 100000) / 100, seq % 1000, seq / 7, seq % 2 = 0, \
         TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND, DATE '2026-01-01' + INTERVAL (seq % 365) DAY, \
         JSON_OBJECT('tier', seq % 5, 'region', 'eu'), UUID() FROM seq_1_to_{rows};"
    );
    run(Command::new("mariadb").args(["-h", "127.0.0.1", "-u", "root", "-e", &setup]));
    let db = database.clone();
    Source {
        kind: "MariaDB",
        database: database.clone(),
        connection: json!({"name": "bench_maria", "kind": "mariadb", "auth": {"params": {"server": "127.0.0.1", "port": 3306, "database": database, "username": "root", "sslMode": "disabled"}}}),
        baseline: Box::new(move || {
            let mut c = Command::new("mariadb");
            c.args([
                "-h", "127.0.0.1", "-u", "root", "--batch", &db, "-e",
                "SELECT JSON_OBJECT('id', id, 'name', name, 'amount', amount, 'qty', qty, 'ratio', ratio, 'active', active, \
                 'created_at', created_at, 'day', day, 'tags', tags, 'code', code) FROM t",
            ]);
            c
        }),
    }
}

fn drop_source(source: &Source) {
    let _ = match source.kind {
        "PostgreSQL" => psql(
            "postgres",
            &format!("DROP DATABASE {} WITH (FORCE)", source.database),
        )
        .output(),
        _ => Command::new("mariadb")
            .args([
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-e",
                &format!("DROP DATABASE {}", source.database),
            ])
            .output(),
    };
}

async fn start_server(data: &Path) -> (ServeProcess, String) {
    let sluice = Sluice::new(data);
    let key = sluice
        .provision("Bench", "bench@bench.test", "bench password")
        .key;
    (sluice.serve(&free_address()).await, key)
}

struct Measured {
    seconds: f64,
    rows: u64,
    bytes: u64,
    posts: u64,
}

async fn pull(
    server: &ServeProcess,
    key: &str,
    source: &Source,
    sink: &Sink,
    batch: u64,
) -> Measured {
    let client = reqwest::Client::new();
    let api = |m: reqwest::Method, p: &str| client.request(m, server.url(p)).bearer_auth(key);
    let connection: Value = api(reqwest::Method::POST, "/api/v1/connections")
        .json(&source.connection)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let command: Value = api(reqwest::Method::POST, "/api/v1/commands")
        .json(&json!({"connection_id": connection["id"], "sql": "SELECT * FROM t ORDER BY id", "callback": {"url": sink.url}, "batch_size": batch}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = command["id"].as_str().unwrap().to_string();
    let (bytes0, posts0) = (
        sink.bytes.load(Ordering::Relaxed),
        sink.posts.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    api(reqwest::Method::POST, &format!("/api/v1/commands/{id}/run"))
        .send()
        .await
        .unwrap();
    loop {
        let runs: Value = api(reqwest::Method::GET, &format!("/api/v1/commands/{id}/runs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(run) = runs.as_array().and_then(|r| r.first()) {
            match run["status"].as_str() {
                Some("succeeded") => {
                    return Measured {
                        seconds: started.elapsed().as_secs_f64(),
                        rows: run["rows"].as_u64().unwrap_or(0),
                        bytes: sink.bytes.load(Ordering::Relaxed) - bytes0,
                        posts: sink.posts.load(Ordering::Relaxed) - posts0,
                    };
                }
                Some("failed") => panic!("the run failed: {run}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::var("SLUICE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let batch: u64 = std::env::var("SLUICE_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let data = tempfile::tempdir().unwrap();
    let sink = start_sink().await;
    let (server, key) = start_server(data.path()).await;
    println!(
        "Pull benchmark: {rows} rows x 10 columns, batches of {batch} rows, release build, one machine (2 cores)\n"
    );
    println!(
        "| source | baseline (JSON export) | Sluice pull to HTTP sink | ratio | Sluice peak RSS |"
    );
    println!("|---|---|---|---|---|");
    for prepare in [prepare_postgres as fn(u64) -> Source, prepare_mariadb] {
        let source = prepare(rows);
        let baseline = timed(&mut (source.baseline)()).as_secs_f64();
        let measured = pull(&server, &key, &source, &sink, batch).await;
        assert_eq!(measured.rows, rows, "every row delivered");
        let baseline_rate = rows as f64 / baseline;
        let rate = rows as f64 / measured.seconds;
        println!(
            "| {} | {:.0} rows/s ({:.1} s) | {:.0} rows/s ({:.1} s, {} POSTs, {:.0} MB JSON) | {:.2}x | {:.0} MB |",
            source.kind,
            baseline_rate,
            baseline,
            rate,
            measured.seconds,
            measured.posts,
            measured.bytes as f64 / 1e6,
            rate / baseline_rate,
            server.peak_rss_mb(),
        );
        drop_source(&source);
    }
    println!(
        "\nPeak RSS is the server process's VmHWM after both pulls (its high-water mark for the whole run)."
    );
    drop(server);
    enqueue_to_start(&sink).await;
}

/// Runs "Run now" on a one-row command [`LATENCY_RUNS`] times, one after the
/// other, on a server with each control plane, and prints the percentiles of
/// the wait between a run being queued and a worker starting it.
async fn enqueue_to_start(sink: &Sink) {
    println!(
        "\nEnqueue-to-start latency ({LATENCY_RUNS} runs of a one-row command, one at a time):\n"
    );
    println!("| control plane | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    let control_db = format!("sluice_bench_cp_{}", uuid::Uuid::new_v4().simple());
    run(&mut psql(
        "postgres",
        &format!("CREATE DATABASE {control_db}"),
    ));
    let control_url = format!("postgres://postgres@127.0.0.1:5432/{control_db}");
    for (label, url) in [("SQLite", None), ("PostgreSQL", Some(control_url.as_str()))] {
        let data = tempfile::tempdir().unwrap();
        let mut sluice = Sluice::new(data.path());
        if let Some(url) = url {
            sluice = sluice.env("SLUICE_DATABASE_URL", url);
        }
        let key = sluice
            .provision("Bench", "bench@bench.test", "bench password")
            .key;
        let server = sluice.serve(&free_address()).await;
        let mut waits = latencies(&server, &key, sink).await;
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {label} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
    let _ = psql(
        "postgres",
        &format!("DROP DATABASE {control_db} WITH (FORCE)"),
    )
    .output();
}

const LATENCY_RUNS: usize = 100;

async fn latencies(server: &ServeProcess, key: &str, sink: &Sink) -> Vec<f64> {
    let client = reqwest::Client::new();
    let api = |m: reqwest::Method, p: &str| client.request(m, server.url(p)).bearer_auth(key);
    let connection: Value = api(reqwest::Method::POST, "/api/v1/connections")
        .json(&json!({"name": "latency", "kind": "postgres", "auth": {"params": {"server": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres", "sslMode": "disabled"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let command: Value = api(reqwest::Method::POST, "/api/v1/commands")
        .json(&json!({"connection_id": connection["id"], "sql": "SELECT 1 AS one", "callback": {"url": sink.url}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = command["id"].as_str().expect("a command id").to_string();
    let mut waits = Vec::with_capacity(LATENCY_RUNS);
    for _ in 0..LATENCY_RUNS {
        let started = api(reqwest::Method::POST, &format!("/api/v1/commands/{id}/run"))
            .send()
            .await
            .unwrap();
        assert!(
            started.status().is_success(),
            "run now: {}",
            started.status()
        );
        let run = loop {
            let runs: Value = api(
                reqwest::Method::GET,
                &format!("/api/v1/commands/{id}/runs?limit=1"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            let run = runs[0].clone();
            match run["status"].as_str() {
                Some("succeeded") => break run,
                Some("failed") => panic!("a latency run failed: {run}"),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(run[field].as_str().expect(field)).expect(field)
        };
        waits.push((at("started_at") - at("queued_at")).as_seconds_f64() * 1000.0);
    }
    waits
}
