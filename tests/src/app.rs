//! The application under test: the real server, in-process, on port 0.

use reqwest::redirect::Policy;
use sluice_server::config::{Config, LogFormat};
use sluice_server::limits_config::LimitsConfig;
use sluice_server::startup::{Application, Mode, RunningApp};
use sluice_store::Store;
use sluice_store::api_keys::KeyCreator;
use std::path::PathBuf;

use crate::TestDatabase;

/// Idle pooled connections are dropped well before the server's keep-alive (5 s)
/// closes them: reusing one at the moment it closes fails the request in transit.
const CLIENT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long one API call of a test may take.
pub const API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Credentials of a user created by a test.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub tenant: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

impl TestUser {
    /// A unique tenant and owner, so tests never collide.
    pub fn unique(label: &str) -> Self {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        Self {
            tenant: format!("{label} {tag}"),
            name: format!("{label} owner"),
            email: format!("{label}-{tag}@example.test")
                .to_lowercase()
                .replace(' ', "-"),
            password: "correct horse battery".into(),
        }
    }
}

pub struct TestApp {
    pub base_url: String,
    pub backend: Backend,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    running: Option<RunningApp>,
    _tempdir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

pub fn test_config(data_dir: PathBuf, database_url: Option<String>) -> Config {
    Config {
        database_url,
        data_dir,
        bind: "127.0.0.1:0".parse().expect("valid address"),
        public_url: None,
        secret_key: None,
        previous_secret_keys: None,
        allow_private_targets: true,
        allow_private_databases: true,
        metrics_token: None,
        log_format: LogFormat::Pretty,
        housekeeping_cron: "* * * * * *".into(),
        db_pool_size: 5,
        db_acquire_timeout_ms: 5000,
        sqlite_root: None,
        // Fast retries keep failing-callback tests short.
        delivery_retry_delays: "0.05,0.1".into(),
        run_lease_secs: 120,
        // The tests schedule commands every second.
        limits: LimitsConfig {
            min_schedule_secs: 1,
            ..Default::default()
        },
        inbox: Default::default(),
        throttle: Default::default(),
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the app after `adjust` had a chance to change the configuration.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        if std::env::var_os("RUST_LOG").is_some() {
            sluice_server::telemetry::init(LogFormat::Pretty);
        }
        let tempdir = tempfile::tempdir().expect("temp dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create("sluice_test").await),
        };
        let mut config = test_config(
            tempdir.path().join("data"),
            database.as_ref().map(|d| d.url.clone()),
        );
        adjust(&mut config);
        let data_dir = config.data_dir.clone();
        let app = Application::build(config, Mode::Serve)
            .await
            .expect("application builds");
        let running = app.spawn().expect("application starts");
        let base_url = format!("http://{}", running.addr);
        Self {
            base_url,
            backend,
            client: Self::browser_like_client(),
            data_dir,
            running: Some(running),
            _tempdir: tempdir,
            _database: database,
        }
    }

    /// A client with its own cookie jar: another browser.
    pub fn browser_like_client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .pool_idle_timeout(CLIENT_IDLE_TIMEOUT)
            .build()
            .expect("http client")
    }

    /// A plain client (no cookies) that, like [`TestApp::browser_like_client`],
    /// never reuses a connection the server is about to close.
    pub fn api_client() -> reqwest::Client {
        reqwest::Client::builder()
            .pool_idle_timeout(CLIENT_IDLE_TIMEOUT)
            .build()
            .expect("http client")
    }

    /// The PostgreSQL control plane's URL, for a second process sharing it.
    pub fn database_url(&self) -> Option<String> {
        self._database.as_ref().map(|d| d.url.clone())
    }

    pub fn store(&self) -> &Store {
        &self.running.as_ref().expect("running").state.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// GETs a page with the app's own (signed-in) client and returns its HTML.
    pub async fn page_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET page")
            .text()
            .await
            .expect("page body")
    }

    /// GETs a page with `client` and returns the CSRF token of its first form.
    pub async fn csrf_token(&self, client: &reqwest::Client, path: &str) -> String {
        let html = client
            .get(self.url(path))
            .send()
            .await
            .expect("GET page")
            .text()
            .await
            .expect("page body");
        extract_csrf(&html).unwrap_or_else(|| panic!("no CSRF token on {path}"))
    }

    /// Submits a form the way a browser would: fetch the page for its token, then POST.
    pub async fn submit(
        &self,
        client: &reqwest::Client,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = self.csrf_token(client, page).await;
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        client
            .post(self.url(action))
            .form(&form)
            .send()
            .await
            .expect("POST form")
    }

    /// Signs a new tenant up with `client`, leaving it signed in.
    pub async fn signup_with(&self, client: &reqwest::Client, user: &TestUser) {
        let response = self
            .submit(
                client,
                "/signup",
                "/signup",
                &[
                    ("tenant_name", &user.tenant),
                    ("name", &user.name),
                    ("email", &user.email),
                    ("password", &user.password),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            303,
            "sign-up should redirect: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Signs a fresh tenant up with the app's own client.
    pub async fn signup(&self, label: &str) -> TestUser {
        let user = TestUser::unique(label);
        self.signup_with(&self.client, &user).await;
        user
    }

    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.submit(
            client,
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Invites `email` with `role` as `owner_client`'s signed-in owner; returns the link.
    pub async fn invite(&self, owner_client: &reqwest::Client, email: &str, role: &str) -> String {
        let response = self
            .submit(
                owner_client,
                "/settings",
                "/settings/users/invite",
                &[("email", email), ("role", role)],
            )
            .await;
        assert_eq!(response.status(), 200);
        one_time_secret(&response.text().await.unwrap()).expect("invitation link shown")
    }

    /// Accepts an invitation in a new browser, which ends up signed in.
    pub async fn join(&self, link: &str, name: &str) -> reqwest::Client {
        let browser = Self::browser_like_client();
        let path = link
            .strip_prefix(&self.base_url)
            .expect("link on this instance");
        let response = self
            .submit(
                &browser,
                path,
                path,
                &[("name", name), ("password", "joiner password")],
            )
            .await;
        assert_eq!(
            response.status(),
            303,
            "{}",
            response.text().await.unwrap_or_default()
        );
        browser
    }

    /// The app's signed-in owner invites `email` as `role`; returns their browser.
    pub async fn add_user(&self, email: &str, role: &str) -> reqwest::Client {
        let link = self.invite(&self.client, email, role).await;
        self.join(&link, email).await
    }

    /// Creates an API key on the Settings page as `client`'s user; returns the
    /// response (its body shows the key once: [`one_time_secret`]).
    pub async fn create_key_in_settings(
        &self,
        client: &reqwest::Client,
        name: &str,
    ) -> reqwest::Response {
        self.submit(client, "/settings", "/settings/api-keys", &[("name", name)])
            .await
    }

    /// Creates an API key through the store, owned by `user` (who signed their tenant
    /// up, so an owner), and returns its secret.
    pub async fn api_key_for(&self, user: &TestUser) -> String {
        let email = sluice_store::domain::Email::parse(&user.email).expect("email");
        let tenant = self
            .store()
            .tenant_by_name(&user.tenant)
            .await
            .expect("tenant exists");
        let owner = self
            .store()
            .user_by_email(&tenant.id, &email)
            .await
            .expect("user lookup")
            .expect("user exists");
        self.store()
            .create_api_key(&owner.tenant_id, "test", KeyCreator::User(&owner))
            .await
            .expect("api key")
            .1
    }

    pub async fn api_get(&self, key: &str, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("API GET")
    }

    /// A JSON API request with a bearer key.
    /// A hung server fails the test after [`API_TIMEOUT`] instead of stalling it.
    pub fn api(&self, method: reqwest::Method, key: &str, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.url(path))
            .bearer_auth(key)
            .timeout(API_TIMEOUT)
    }

    /// `GET path` with a bearer key, its JSON answer read as `T`.
    pub async fn api_get_json<T: serde::de::DeserializeOwned>(&self, key: &str, path: &str) -> T {
        self.api(reqwest::Method::GET, key, path)
            .send()
            .await
            .expect("API GET")
            .json()
            .await
            .expect("JSON answer")
    }

    /// `POST path` with a JSON body and a bearer key, its JSON answer read as `T`.
    pub async fn api_post_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> T {
        self.api(reqwest::Method::POST, key, path)
            .json(body)
            .send()
            .await
            .expect("API POST")
            .json()
            .await
            .expect("JSON answer")
    }

    /// A command's runs through the API, newest first (its first page).
    pub async fn runs(&self, key: &str, command: &str) -> Vec<serde_json::Value> {
        let body: serde_json::Value = self
            .api_get_json(key, &format!("/api/v1/commands/{command}/runs"))
            .await;
        body.as_array().expect("a list of runs").clone()
    }

    /// Waits (up to 90 s) until the command has `count` finished runs; returns
    /// them newest first.
    pub async fn finished_runs(
        &self,
        key: &str,
        command: &str,
        count: usize,
    ) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let all = self.runs(key, command).await;
            let done: Vec<serde_json::Value> = all
                .iter()
                .filter(|r| r["status"] == "succeeded" || r["status"] == "failed")
                .cloned()
                .collect();
            if done.len() >= count {
                return done;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "runs never finished: {all:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The server's SQLite root (created on demand); tenants' files go in their
    /// own directories in it ([`Self::sqlite_dir_for`]).
    pub fn sqlite_root(&self) -> PathBuf {
        let root = self.data_dir.join("sqlite");
        std::fs::create_dir_all(&root).expect("sqlite root");
        root
    }

    /// The only directory `tenant`'s SQLite connectors may point into (created).
    pub fn sqlite_dir(&self, tenant: &sluice_store::ids::TenantId) -> PathBuf {
        let dir =
            sluice_server::service::connectors::tenant_sqlite_dir(&self.sqlite_root(), tenant);
        std::fs::create_dir_all(&dir).expect("tenant SQLite directory");
        dir
    }

    /// [`Self::sqlite_dir`] of the tenant `user` signed up.
    pub async fn sqlite_dir_for(&self, user: &TestUser) -> PathBuf {
        let tenant = self
            .store()
            .tenant_by_name(&user.tenant)
            .await
            .expect("tenant exists");
        self.sqlite_dir(&tenant.id)
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            let overdue = undone_work(&running.state.store).await;
            running.stop().await;
            assert_no_undone_work(&overdue);
        }
    }
}

/// How long a test's end waits for due work (queued runs, retries past their
/// time) to be started before it calls the work undone.
const UNDONE_WORK_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The due runs no worker started within [`UNDONE_WORK_WAIT`], described.
async fn undone_work(store: &Store) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + UNDONE_WORK_WAIT;
    loop {
        let overdue = match store.overdue_runs(chrono::Duration::zero()).await {
            Ok(runs) => runs,
            // The test may have taken the control plane away on purpose.
            Err(_) => return Vec::new(),
        };
        if overdue.is_empty() || tokio::time::Instant::now() >= deadline {
            return overdue
                .iter()
                .map(|run| {
                    format!(
                        "run {} of command {} ({}, {})",
                        run.id,
                        run.command_id,
                        run.status.as_str(),
                        run.trigger
                    )
                })
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn assert_no_undone_work(overdue: &[String]) {
    assert!(
        overdue.is_empty(),
        "the test ended with due work that no worker started in {UNDONE_WORK_WAIT:?} \
         (a stuck job system, or a run the test queued and forgot): {overdue:?}"
    );
}

/// A test fails when it leaves due work behind that the job system does not
/// take up (the crates.io test app's rule, for a queue that runs live).
impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let Some(running) = self.running.as_ref() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let store = running.state.store.clone();
        let overdue = tokio::task::block_in_place(|| runtime.block_on(undone_work(&store)));
        assert_no_undone_work(&overdue);
    }
}

/// The secret a page shows once (a new API key, an invitation link).
pub fn one_time_secret(html: &str) -> Option<String> {
    let marker = "id=\"one-time-secret\" class=\"copyable\">";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('<')?;
    Some(html[start..start + end].to_string())
}

pub fn extract_csrf(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}
