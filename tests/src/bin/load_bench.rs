//! HTTP load benchmark (not a test): a release `sluice serve` on SQLite (a fresh data
//! directory), then on a fresh PostgreSQL database, with every-second commands
//! running in the background, driven by concurrent clients mixing JSON API reads,
//! writes (inboxes, commands created and deleted, inbox hook POSTs) and two signed-in
//! HTML pages. Closed loop by default; `--rate R` sends R requests/s in total (open
//! loop: latency counts from the planned send time, so a slow server cannot hide its
//! queue). Prints, per backend, requests/s, p50/p90/p99/max latency, errors by
//! status, and the server's peak RSS. Only 127.0.0.1 is ever contacted.
//!
//! Run with `bash tests/load-bench.sh [--rate 500] [--duration 20]`.

use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{
    ServeProcess, Sluice, THREE_ITEMS, TestDatabase, extract_csrf, free_address, sqlite_source,
};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

const PASSWORD: &str = "bench password";
const EVERY_SECOND: &str = "* * * * * *";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backends {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(name = "load-bench", about = "HTTP load benchmark of sluice serve")]
struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds of load per backend.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Open loop: requests per second across all clients. Default: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds before a request counts as a timeout.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Commands running every second in the background.
    #[arg(long, default_value_t = 3)]
    scheduled: usize,
    #[arg(long, value_enum, default_value = "both")]
    backend: Backends,
}

/// One request of the mix; a client takes them in turn.
#[derive(Debug, Clone, Copy)]
enum Op {
    ListConnectors,
    ListCommands,
    ListInboxes,
    ShowCommand,
    CreateInbox,
    CreateCommand,
    DeleteCommand,
    PostToInbox,
    Dashboard,
    CommandPage,
}

const MIX: [Op; 10] = [
    Op::ListConnectors,
    Op::CreateInbox,
    Op::ListCommands,
    Op::CreateCommand,
    Op::ShowCommand,
    Op::Dashboard,
    Op::ListInboxes,
    Op::DeleteCommand,
    Op::PostToInbox,
    Op::CommandPage,
];

/// What the clients work on, set up before the load.
struct Target {
    base: String,
    key: String,
    connector: String,
    inbox: String,
    hook: String,
    command: String,
    api: reqwest::Client,
    /// Signed in (session cookie), redirects not followed.
    browser: reqwest::Client,
}

impl Target {
    fn api(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.api
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    fn page(&self, path: &str) -> reqwest::RequestBuilder {
        self.browser.get(format!("{}{path}", self.base))
    }

    fn new_command(&self) -> Value {
        json!({"connection_id": self.connector, "sql": "SELECT id, label FROM items ORDER BY id",
               "callback": {"inbox_id": self.inbox}})
    }
}

/// Latencies and errors of some requests.
struct Tally {
    latency_us: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds"),
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, latency: Duration, outcome: Result<u16, String>) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(micros.max(1));
        let error = match outcome {
            Ok(status) if (200..400).contains(&status) => return,
            Ok(status) => status.to_string(),
            Err(kind) => kind,
        };
        *self.errors.entry(error).or_default() += 1;
    }

    fn merge(&mut self, other: &Tally) {
        self.latency_us.add(&other.latency_us).expect("same bounds");
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// One client: its own created-but-not-deleted commands and its tally.
struct Client<'a> {
    target: &'a Target,
    number: usize,
    commands: Vec<String>,
    sent: usize,
    tally: Tally,
}

impl<'a> Client<'a> {
    fn new(target: &'a Target, number: usize) -> Self {
        Self {
            target,
            number,
            commands: Vec::new(),
            sent: 0,
            tally: Tally::new(),
        }
    }

    /// Closed loop: the next request as soon as the previous one is answered.
    async fn closed_loop(&mut self, end: Instant) {
        while Instant::now() < end {
            let started = Instant::now();
            self.next_request(started).await;
        }
    }

    /// Open loop at `rate` requests/s over `clients` clients: this client's n-th
    /// request is planned at `(number + n * clients) / rate` seconds after `start`.
    /// Requests still unsent at `end` (the server fell behind) count as errors.
    async fn open_loop(&mut self, start: Instant, end: Instant, rate: f64, clients: usize) {
        let number = self.number;
        let planned_at =
            move |n: usize| start + Duration::from_secs_f64((number + n * clients) as f64 / rate);
        loop {
            let planned = planned_at(self.sent);
            if planned >= end {
                return;
            }
            if Instant::now() >= end {
                let unsent = (self.sent..).take_while(|n| planned_at(*n) < end).count();
                *self
                    .tally
                    .errors
                    .entry("unsent (behind schedule)".into())
                    .or_default() += unsent as u64;
                return;
            }
            tokio::time::sleep_until(planned).await;
            self.next_request(planned).await;
        }
    }

    /// Sends the next request of the mix; its latency counts from `since`.
    async fn next_request(&mut self, since: Instant) {
        let op = MIX[(self.number + self.sent) % MIX.len()];
        self.sent += 1;
        let outcome = self.perform(op).await;
        self.tally.record(since.elapsed(), outcome);
    }

    async fn perform(&mut self, op: Op) -> Result<u16, String> {
        let t = self.target;
        let command = self.commands.last().unwrap_or(&t.command).clone();
        let request = match op {
            Op::ListConnectors => t.api(Method::GET, "/api/v1/connections"),
            Op::ListCommands => t.api(Method::GET, "/api/v1/commands"),
            Op::ListInboxes => t.api(Method::GET, "/api/v1/inboxes"),
            Op::ShowCommand => t.api(Method::GET, &format!("/api/v1/commands/{command}")),
            Op::CreateInbox => t
                .api(Method::POST, "/api/v1/inboxes")
                .json(&json!({"name": format!("client {} inbox {}", self.number, self.sent)})),
            Op::CreateCommand => t
                .api(Method::POST, "/api/v1/commands")
                .json(&t.new_command()),
            Op::DeleteCommand => match self.commands.pop() {
                Some(id) => t.api(Method::DELETE, &format!("/api/v1/commands/{id}")),
                None => t.api(Method::GET, &format!("/api/v1/commands/{command}")),
            },
            Op::PostToInbox => t.api.post(&t.hook).json(&json!({"client": self.number})),
            Op::Dashboard => t.page("/"),
            Op::CommandPage => t.page(&format!("/commands/{}", t.command)),
        };
        let (status, body) = exchange(request).await?;
        if matches!(op, Op::CreateCommand) && status == 201 {
            self.commands.extend(id_of(&body));
        }
        Ok(status)
    }
}

/// Sends a request and reads the whole answer; errors are named for the report.
async fn exchange(request: reqwest::RequestBuilder) -> Result<(u16, String), String> {
    let name = |e: reqwest::Error| {
        if e.is_timeout() {
            "timeout".to_string()
        } else if e.is_connect() {
            "connect error".to_string()
        } else {
            "transport error".to_string()
        }
    };
    let response = request.send().await.map_err(name)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(name)?;
    Ok((status, body))
}

fn id_of(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    value["id"].as_str().map(str::to_string)
}

/// A setup request that must answer 2xx; returns the JSON answer.
async fn setup(request: reqwest::RequestBuilder, what: &str) -> Value {
    let (status, body) = exchange(request)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!((200..300).contains(&status), "{what}: {status} {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// A small SQLite table for the commands, in the bench tenant's SQLite directory.
async fn create_source(sqlite_dir: &std::path::Path) {
    sqlite_source(&sqlite_dir.join("bench.db"), THREE_ITEMS).await;
}

/// A cookie client signed in as the bench tenant's owner.
async fn signed_in(base: &str, timeout: Duration) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .expect("http client");
    let html = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("GET /login")
        .text()
        .await
        .expect("login page");
    let csrf = extract_csrf(&html).expect("CSRF token on /login");
    let login = browser
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "bench@bench.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(login.status(), 303, "sign in");
    browser
}

/// Provisions the tenant, its connector, inbox, an on-demand command and the
/// every-second background commands.
async fn prepare(server: &ServeProcess, key: String, args: &Args) -> Target {
    let timeout = Duration::from_secs(args.timeout);
    let api = reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(args.clients)
        .build()
        .expect("http client");
    let mut target = Target {
        base: server.base_url.clone(),
        key,
        connector: String::new(),
        inbox: String::new(),
        hook: String::new(),
        command: String::new(),
        api,
        browser: signed_in(&server.base_url, timeout).await,
    };
    let connector =
        json!({"name": "bench", "kind": "sqlite", "auth": {"params": {"path": "bench.db"}}});
    let created = setup(
        target
            .api(Method::POST, "/api/v1/connections")
            .json(&connector),
        "connector",
    )
    .await;
    target.connector = created["id"].as_str().expect("connector id").into();
    let inbox = setup(
        target
            .api(Method::POST, "/api/v1/inboxes")
            .json(&json!({"name": "sink"})),
        "inbox",
    )
    .await;
    target.inbox = inbox["id"].as_str().expect("inbox id").into();
    target.hook = inbox["url"].as_str().expect("inbox URL").into();
    assert!(
        target.hook.starts_with(&target.base),
        "the hook is on 127.0.0.1: {}",
        target.hook
    );
    let command = setup(
        target
            .api(Method::POST, "/api/v1/commands")
            .json(&target.new_command()),
        "command",
    )
    .await;
    target.command = command["id"].as_str().expect("command id").into();
    for _ in 0..args.scheduled {
        let mut body = target.new_command();
        body["schedule"] = json!(EVERY_SECOND);
        setup(
            target.api(Method::POST, "/api/v1/commands").json(&body),
            "scheduled command",
        )
        .await;
    }
    target
}

/// Runs every client against `target`; returns their merged tally and the wall time.
async fn drive(target: &Target, args: &Args) -> (Tally, Duration) {
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let mut clients: Vec<Client> = (0..args.clients).map(|n| Client::new(target, n)).collect();
    futures::future::join_all(clients.iter_mut().map(|client| async move {
        match args.rate {
            Some(rate) => client.open_loop(start, end, rate, args.clients).await,
            None => client.closed_loop(end).await,
        }
    }))
    .await;
    let elapsed = start.elapsed();
    let mut total = Tally::new();
    for client in &clients {
        total.merge(&client.tally);
    }
    (total, elapsed)
}

/// One backend end to end: fresh store, server, setup, load, report line.
async fn bench(name: &str, database: Option<&TestDatabase>, args: &Args) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sluice = Sluice::new(&dir.path().join("data"));
    if let Some(database) = database {
        sluice = sluice.env("SLUICE_DATABASE_URL", &database.url);
    }
    let bench = sluice.provision("Bench", "bench@bench.test", PASSWORD);
    create_source(&bench.sqlite_dir).await;
    let key = bench.key;
    let server = sluice.serve(&free_address()).await;
    let target = prepare(&server, key, args).await;
    let (tally, elapsed) = drive(&target, args).await;
    report(name, &tally, elapsed, server.peak_rss_mb());
}

fn report(backend: &str, tally: &Tally, elapsed: Duration, peak_rss_mb: f64) {
    let requests = tally.latency_us.len();
    let errors: u64 = tally.errors.values().sum();
    let breakdown = if tally.errors.is_empty() {
        "none".to_string()
    } else {
        tally
            .errors
            .iter()
            .map(|(kind, count)| format!("{kind}: {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| {backend} | {requests} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {errors} ({breakdown}) | {peak_rss_mb:.0} MB |",
        requests as f64 / elapsed.as_secs_f64(),
        tally.ms(0.5),
        tally.ms(0.9),
        tally.ms(0.99),
        tally.latency_us.max() as f64 / 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mode = match args.rate {
        Some(rate) => format!("open loop at {rate} requests/s"),
        None => "closed loop".to_string(),
    };
    println!(
        "Load benchmark: {} clients, {mode}, {} s per backend, {} every-second commands in the background, \
         timeout {} s\n",
        args.clients, args.duration, args.scheduled, args.timeout
    );
    println!(
        "| backend | requests | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors (by status) | server peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    if args.backend != Backends::Postgres {
        bench("SQLite", None, &args).await;
    }
    if args.backend != Backends::Sqlite {
        let database = TestDatabase::create("sluice_bench").await;
        bench("PostgreSQL", Some(&database), &args).await;
    }
    let measured_from = if args.rate.is_some() {
        "from its planned send time, so queueing counts"
    } else {
        "from when its client sent it"
    };
    println!(
        "\nLatency is per request, {measured_from}. Errors are answers other than 2xx/3xx, \
         timeouts and connection errors. Peak RSS is the server's VmHWM after the load."
    );
}
