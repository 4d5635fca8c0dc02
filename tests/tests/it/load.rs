//! Sixteen concurrent clients against the real server over HTTP for [`DURATION`],
//! while commands run every second in the background: API creates, updates, reads
//! and deletes of connectors, commands and inboxes, runs started by hand and
//! dynamic runs, signed-in HTML pages and CSRF form posts. Ten clients share one
//! tenant (contention on the same rows), six have a tenant each.
//!
//! Asserted: no request takes longer than [`REQUEST_TIMEOUT`], none answers 5xx or
//! an unexpected status, everything a client created and did not delete is still
//! readable afterwards (and what it deleted is gone), and `/readyz` answers 200.
//! Every failure is collected and reported at the end.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use sluice_tests::{
    Backend, Receiver, THREE_ITEMS, TestApp, TestUser, extract_csrf, on_both_backends,
    sqlite_source,
};
use std::time::Duration;
use tokio::time::Instant;

const CLIENTS: usize = 16;
/// Clients 0..SHARED_CLIENTS share one tenant; each of the others has its own.
const SHARED_CLIENTS: usize = 10;
const DURATION: Duration = Duration::from_secs(20);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The checks after the load, all clients together (a hung store would stall them).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Each setup step before the load (sign-ups, sign-ins, background commands).
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Commands created before the clients start, per tenant, running every second.
const BACKGROUND_COMMANDS: usize = 2;
const EVERY_SECOND: &str = "* * * * * *";
/// A client keeps at most this many of its every-second commands, connectors and
/// inboxes: older ones are deleted, so the background load stays bounded.
const KEEP: usize = 2;
/// The source table every SQLite connector points at.
const SOURCE_FILE: &str = "load.db";

on_both_backends!(
    sixteen_clients_never_hang_never_5xx_and_lose_no_writes,
    |backend| async move { run_load(backend).await }
);

/// One tenant: its owner, an API key, the SQLite connector its commands read and
/// the inbox they deliver to (both kept for the whole test).
struct Tenant {
    user: TestUser,
    key: String,
    connector: String,
    inbox: String,
}

/// Objects one client created, by kind.
#[derive(Default)]
struct Objects {
    inboxes: Vec<String>,
    /// (id, name): deleting over the API confirms with the name.
    connectors: Vec<(String, String)>,
    /// Every-second commands (deleted when more than [`KEEP`]).
    scheduled: Vec<String>,
    /// Dynamic commands: they run once and are never deleted.
    dynamic: Vec<String>,
}

/// A complete answer: status, `Location` and body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn id(&self) -> Option<String> {
        self.json()["id"].as_str().map(str::to_string)
    }
}

async fn run_load(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let tenants = setup_step("signing up the tenants", create_tenants(&app)).await;
    let mut clients = setup_step("signing the clients in", async {
        let mut clients = Vec::new();
        for number in 0..CLIENTS {
            let tenant = &tenants[tenant_of(number)];
            clients.push(Client::signed_in(&app, tenant, number, &receiver.url).await);
        }
        clients
    })
    .await;
    setup_step("creating the every-second commands", async {
        for tenant in &tenants {
            start_background_commands(&app, tenant, &receiver).await;
        }
    })
    .await;

    let deadline = Instant::now() + DURATION;
    join_all(clients.iter_mut().map(|c| c.work_until(deadline))).await;
    let verified = tokio::time::timeout(
        VERIFY_TIMEOUT,
        join_all(clients.iter_mut().map(Client::verify)),
    )
    .await;

    let mut failures: Vec<String> = clients.iter().flat_map(|c| c.failures.clone()).collect();
    if verified.is_err() {
        failures.push(format!(
            "the checks after the load did not finish in {VERIFY_TIMEOUT:?}"
        ));
    }
    failures.extend(readiness_failure(&app).await);
    let requests: usize = clients.iter().map(|c| c.requests).sum();
    assert!(
        failures.is_empty(),
        "{} failures ({requests} requests sent by {CLIENTS} clients over {DURATION:?} on {backend:?}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}

/// Setup has no per-request timeout; a store already hung is reported as such.
async fn setup_step<T>(what: &str, step: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(SETUP_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| panic!("HUNG during setup: {what} did not finish in {SETUP_TIMEOUT:?}"))
}

fn tenant_of(client: usize) -> usize {
    client.saturating_sub(SHARED_CLIENTS - 1)
}

/// A small table a tenant's SQLite connector reads, in the tenant's directory.
async fn create_source_file(app: &TestApp, user: &TestUser) {
    sqlite_source(
        &app.sqlite_dir_for(user).await.join(SOURCE_FILE),
        THREE_ITEMS,
    )
    .await;
}

async fn create_tenants(app: &TestApp) -> Vec<Tenant> {
    let mut tenants = Vec::new();
    for number in 0..=tenant_of(CLIENTS - 1) {
        let user = TestUser::unique(&format!("Load{number}"));
        app.signup_with(&TestApp::browser_like_client(), &user)
            .await;
        let key = app.api_key_for(&user).await;
        create_source_file(app, &user).await;
        let connector =
            setup_create(app, &key, "/api/v1/connections", sqlite_connector("source")).await;
        let inbox = setup_create(app, &key, "/api/v1/inboxes", json!({"name": "sink"})).await;
        tenants.push(Tenant {
            user,
            key,
            connector,
            inbox,
        });
    }
    tenants
}

/// A create during setup, before any load: it must answer 201.
async fn setup_create(app: &TestApp, key: &str, path: &str, body: Value) -> String {
    let response = app
        .api(Method::POST, key, path)
        .json(&body)
        .send()
        .await
        .expect(path);
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "setup POST {path}: {text}");
    serde_json::from_str::<Value>(&text).expect("JSON")["id"]
        .as_str()
        .expect("an id")
        .to_string()
}

fn sqlite_connector(name: &str) -> Value {
    json!({"name": name, "kind": "sqlite", "auth": {"params": {"path": SOURCE_FILE}}})
}

fn command_body(connector: &str, kind: &str, callback: Value) -> Value {
    let schedule = (kind == "static").then_some(EVERY_SECOND);
    json!({
        "connection_id": connector, "kind": kind, "schedule": schedule,
        "sql": "SELECT id, label FROM items ORDER BY id", "callback": callback,
    })
}

/// Every-second commands delivering to the tenant's inbox and to the receiver.
async fn start_background_commands(app: &TestApp, tenant: &Tenant, receiver: &Receiver) {
    let callbacks = [
        json!({"inbox_id": tenant.inbox}),
        json!({"url": receiver.url}),
    ];
    for callback in callbacks.into_iter().cycle().take(BACKGROUND_COMMANDS) {
        let body = command_body(&tenant.connector, "static", callback);
        setup_create(app, &tenant.key, "/api/v1/commands", body).await;
    }
}

async fn readiness_failure(app: &TestApp) -> Option<String> {
    let ready = tokio::time::timeout(READY_TIMEOUT, reqwest::get(app.url("/readyz"))).await;
    match ready {
        Ok(Ok(response)) if response.status() == 200 => None,
        Ok(Ok(response)) => Some(format!("GET /readyz at the end: {}", response.status())),
        Ok(Err(e)) => Some(format!("GET /readyz at the end: {e}")),
        Err(_) => Some(format!(
            "GET /readyz at the end: no answer in {READY_TIMEOUT:?}"
        )),
    }
}

struct Client<'a> {
    app: &'a TestApp,
    tenant: &'a Tenant,
    number: usize,
    receiver_url: &'a str,
    /// Signed in as the tenant's owner (its own session).
    browser: reqwest::Client,
    api: reqwest::Client,
    kept: Objects,
    deleted: Objects,
    requests: usize,
    failures: Vec<String>,
}

impl<'a> Client<'a> {
    async fn signed_in(
        app: &'a TestApp,
        tenant: &'a Tenant,
        number: usize,
        receiver_url: &'a str,
    ) -> Self {
        let browser = TestApp::browser_like_client();
        let login = app
            .login_with(&browser, &tenant.user.email, &tenant.user.password)
            .await;
        assert_eq!(login.status(), 303, "client {number} signs in");
        Self {
            app,
            tenant,
            number,
            receiver_url,
            browser,
            api: TestApp::api_client(),
            kept: Objects::default(),
            deleted: Objects::default(),
            requests: 0,
            failures: Vec::new(),
        }
    }

    /// Runs rounds until `deadline`; a round still busy [`REQUEST_TIMEOUT`] after it
    /// is cut off (its slow request is a failure).
    async fn work_until(&mut self, deadline: Instant) {
        let cutoff = deadline + REQUEST_TIMEOUT;
        let mut round = 0;
        while Instant::now() < deadline {
            if tokio::time::timeout_at(cutoff, self.round(round))
                .await
                .is_err()
            {
                self.failures.push(format!(
                    "client {} round {round} was still busy {REQUEST_TIMEOUT:?} after the load ended",
                    self.number
                ));
            }
            round += 1;
        }
    }

    /// One pass over every kind of request.
    async fn round(&mut self, round: usize) {
        self.inboxes(round).await;
        self.connectors(round).await;
        self.commands(round).await;
        self.pages().await;
        self.forms(round).await;
    }

    /// Sends `request` and waits at most [`REQUEST_TIMEOUT`] for the whole answer.
    /// A timeout, a transport error or a status not in `expected` is a failure.
    /// A 408 means the server timed out waiting for the request itself (the test
    /// process was starved of CPU, not the server stuck): like a browser, the
    /// request is sent once more.
    async fn send(
        &mut self,
        label: String,
        request: reqwest::RequestBuilder,
        expected: &[u16],
    ) -> Option<Answer> {
        self.requests += 1;
        let retry = request.try_clone();
        let mut answer = Self::answer(request).await;
        if let (Ok(Ok(first)), Some(retry)) = (&answer, retry)
            && first.status == 408
        {
            answer = Self::answer(retry).await;
        }
        let problem = match answer {
            Ok(Ok(answer)) if expected.contains(&answer.status) => return Some(answer),
            Ok(Ok(answer)) => format!("{}: {}", answer.status, excerpt(&answer.body)),
            Ok(Err(e)) => format!("transport error: {e}"),
            Err(_) => format!("HUNG: no complete answer in {REQUEST_TIMEOUT:?}"),
        };
        self.failures
            .push(format!("client {} {label} -> {problem}", self.number));
        None
    }

    async fn answer(
        request: reqwest::RequestBuilder,
    ) -> Result<Result<Answer, reqwest::Error>, tokio::time::error::Elapsed> {
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await?;
            Ok(Answer {
                status,
                location,
                body,
            })
        })
        .await
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: &[u16],
    ) -> Option<Answer> {
        let mut request = self
            .api
            .request(method.clone(), self.app.url(path))
            .bearer_auth(&self.tenant.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(format!("{method} {path}"), request, expected)
            .await
    }

    async fn page(&mut self, path: &str) -> Option<Answer> {
        let request = self.browser.get(self.app.url(path));
        self.send(format!("GET {path} (page)"), request, &[200])
            .await
    }

    /// Fetches `page` for its CSRF token, then POSTs the form to `action`.
    async fn submit(
        &mut self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
        expected: &[u16],
    ) -> Option<Answer> {
        let html = self.page(page).await?.body;
        let Some(csrf) = extract_csrf(&html) else {
            self.failures
                .push(format!("client {} GET {page}: no CSRF token", self.number));
            return None;
        };
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let request = self.browser.post(self.app.url(action)).form(&form);
        self.send(format!("POST {action} (form)"), request, expected)
            .await
    }

    async fn inboxes(&mut self, round: usize) {
        let name = format!("client {} inbox {round}", self.number);
        let created = self
            .call(
                Method::POST,
                "/api/v1/inboxes",
                Some(json!({"name": name})),
                &[201],
            )
            .await;
        if let Some(created) = created {
            if let Some(url) = created.json()["url"].as_str() {
                let hook = self.api.post(url).json(&json!({"round": round}));
                self.send("POST /hooks/{token}".into(), hook, &[202]).await;
            }
            self.kept.inboxes.extend(created.id());
        }
        self.call(Method::GET, "/api/v1/inboxes", None, &[200])
            .await;
        // The forms create inboxes too: delete down to KEEP (two per round at
        // most), or the tenant reaches its inbox limit on a fast machine.
        for _ in 0..2 {
            if self.kept.inboxes.len() > KEEP {
                self.delete_oldest_inbox().await;
            }
        }
    }

    /// Inboxes are deleted through their password-confirmed page.
    async fn delete_oldest_inbox(&mut self) {
        let id = self.kept.inboxes.remove(0);
        let form = format!("/inboxes/{id}/delete");
        let password = self.tenant.user.password.clone();
        let deleted = self
            .submit(&form, &form, &[("password", &password)], &[303])
            .await;
        match deleted {
            Some(_) => self.deleted.inboxes.push(id),
            None => self.kept.inboxes.insert(0, id),
        }
    }

    async fn connectors(&mut self, round: usize) {
        let name = format!("c{}_{round}", self.number);
        let created = self
            .call(
                Method::POST,
                "/api/v1/connections",
                Some(sqlite_connector(&name)),
                &[201],
            )
            .await;
        if let Some(id) = created.and_then(|a| a.id()) {
            let path = format!("/api/v1/connections/{id}");
            let patch = json!({"description": format!("round {round}")});
            self.call(Method::PATCH, &path, Some(patch), &[200]).await;
            self.call(Method::GET, &path, None, &[200]).await;
            self.kept.connectors.push((id, name));
        }
        self.call(Method::GET, "/api/v1/connections", None, &[200])
            .await;
        if self.kept.connectors.len() > KEEP {
            let (id, name) = self.kept.connectors.remove(0);
            let path = format!("/api/v1/connections/{id}");
            let deleted = self
                .call(
                    Method::DELETE,
                    &path,
                    Some(json!({"confirm": name})),
                    &[204],
                )
                .await;
            match deleted {
                Some(_) => self.deleted.connectors.push((id, name)),
                None => self.kept.connectors.insert(0, (id, name)),
            }
        }
    }

    async fn commands(&mut self, round: usize) {
        let callback = if round.is_multiple_of(2) {
            json!({"inbox_id": self.tenant.inbox})
        } else {
            json!({"url": self.receiver_url})
        };
        let connector = self.tenant.connector.clone();
        let scheduled = self
            .call(
                Method::POST,
                "/api/v1/commands",
                Some(command_body(&connector, "static", callback.clone())),
                &[201],
            )
            .await
            .and_then(|a| a.id());
        if let Some(id) = scheduled {
            self.update_and_run(&id).await;
            self.kept.scheduled.push(id);
        }
        let dynamic = self
            .call(
                Method::POST,
                "/api/v1/commands",
                Some(command_body(&connector, "dynamic", callback)),
                &[201],
            )
            .await
            .and_then(|a| a.id());
        self.kept.dynamic.extend(dynamic);
        self.call(Method::GET, "/api/v1/commands", None, &[200])
            .await;
        if self.kept.scheduled.len() > KEEP {
            let id = self.kept.scheduled.remove(0);
            let path = format!("/api/v1/commands/{id}");
            match self.call(Method::DELETE, &path, None, &[204]).await {
                Some(_) => self.deleted.scheduled.push(id),
                None => self.kept.scheduled.insert(0, id),
            }
        }
    }

    /// Pause, resume, run now, and read it back with its runs. A command that is
    /// running (or was paused) answers 409 to the state changes, and a run asked
    /// for while the tenant has its limit of runs in flight 429: not failures.
    async fn update_and_run(&mut self, id: &str) {
        let path = format!("/api/v1/commands/{id}");
        self.call(Method::POST, &format!("{path}/pause"), None, &[200, 409])
            .await;
        self.call(Method::POST, &format!("{path}/resume"), None, &[200, 409])
            .await;
        self.call(
            Method::POST,
            &format!("{path}/run"),
            Some(json!({})),
            &[202, 409, 429],
        )
        .await;
        self.call(Method::GET, &path, None, &[200]).await;
        self.call(Method::GET, &format!("{path}/runs"), None, &[200])
            .await;
    }

    async fn pages(&mut self) {
        self.page("/").await;
        self.page("/connectors").await;
        if let Some(id) = self.kept.scheduled.last().cloned() {
            self.page(&format!("/commands/{id}")).await;
        }
        let inbox = self.tenant.inbox.clone();
        self.page(&format!("/inboxes/{inbox}")).await;
    }

    /// An inbox created and a run started through the HTML forms.
    async fn forms(&mut self, round: usize) {
        let name = format!("client {} form inbox {round}", self.number);
        let created = self
            .submit("/inboxes", "/inboxes", &[("name", &name)], &[303])
            .await;
        let id = created
            .and_then(|a| a.location)
            .and_then(|l| l.strip_prefix("/inboxes/").map(str::to_string));
        self.kept.inboxes.extend(id);
        if let Some(id) = self.kept.scheduled.last().cloned() {
            let page = format!("/commands/{id}");
            self.submit(&page, &format!("{page}/run"), &[], &[303, 409, 429])
                .await;
        }
    }

    /// After the load: what was kept is readable, what was deleted is gone.
    async fn verify(&mut self) {
        let commands: Vec<String> = self
            .kept
            .scheduled
            .iter()
            .chain(&self.kept.dynamic)
            .cloned()
            .collect();
        for id in commands {
            self.expect_lookup(&format!("/api/v1/commands/{id}"), 200)
                .await;
        }
        for id in self.deleted.scheduled.clone() {
            self.expect_lookup(&format!("/api/v1/commands/{id}"), 404)
                .await;
        }
        for (id, _) in self.kept.connectors.clone() {
            self.expect_lookup(&format!("/api/v1/connections/{id}"), 200)
                .await;
        }
        for (id, _) in self.deleted.connectors.clone() {
            self.expect_lookup(&format!("/api/v1/connections/{id}"), 404)
                .await;
        }
        self.verify_inboxes().await;
    }

    async fn expect_lookup(&mut self, path: &str, status: u16) {
        let found = self.call(Method::GET, path, None, &[200, 404]).await;
        if let Some(answer) = found.filter(|a| a.status != status) {
            let what = if status == 200 {
                "LOST WRITE: created, never deleted, now"
            } else {
                "deleted, yet still"
            };
            self.failures.push(format!(
                "client {} {what} answers {} at GET {path}",
                self.number, answer.status
            ));
        }
    }

    async fn verify_inboxes(&mut self) {
        let Some(listed) = self
            .call(Method::GET, "/api/v1/inboxes", None, &[200])
            .await
        else {
            return;
        };
        let present: Vec<String> = listed
            .json()
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for id in &self.kept.inboxes {
            if !present.contains(id) {
                self.failures.push(format!(
                    "client {} LOST WRITE: inbox {id} is not listed",
                    self.number
                ));
            }
        }
        for id in &self.deleted.inboxes {
            if present.contains(id) {
                self.failures.push(format!(
                    "client {} deleted inbox {id} is still listed",
                    self.number
                ));
            }
        }
    }
}

/// The start of an answer; for a page, the part from its form errors on, which
/// says why (the head of every page is the same).
fn excerpt(body: &str) -> String {
    let from = ["class=\"form-errors\"", "class=\"field-error\""]
        .iter()
        .find_map(|marker| body.find(marker))
        .unwrap_or(0);
    body[from..]
        .chars()
        .take(400)
        .collect::<String>()
        .replace('\n', " ")
}
