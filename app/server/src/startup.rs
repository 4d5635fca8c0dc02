//! Building and running the process: store, job system and web server.

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sluice_connect::{Limits, Registry};
use sluice_deliver::{AddressGuard, Outbound};
use sluice_jobs::{JobContext, JobMetrics, JobQueue, JobSettings};
use sluice_store::{DatabaseLocation, SecretKey, Store};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::AppState;

/// From SIGTERM to exit, however stuck the work is: requests and jobs get
/// [`GRACE`] to finish, runs still going are handed back to the queue, and the
/// process exits.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);
/// How long in-flight requests and jobs may take to finish after a stop signal.
const GRACE: Duration = sluice_jobs::SHUTDOWN_GRACE;
/// The most the final bookkeeping (handing back runs) may take.
const RELEASE_BUDGET: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Web server and workers.
    Serve,
    /// Workers only.
    WorkerOnly,
}

/// How often idle connector pools are looked for, and how long unused makes one idle.
const POOL_EVICTION_EVERY: Duration = Duration::from_secs(60);
const POOL_IDLE: Duration = Duration::from_secs(600);

/// Opens the control plane (creating and migrating it as needed).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let location = DatabaseLocation::parse(config.database_url.as_deref(), &config.data_dir)?;
    let secret = SecretKey::load_or_generate(config.secret_key.as_deref(), &config.data_dir)?
        .with_previous(config.previous_secret_keys.as_deref().unwrap_or_default())?;
    Store::open(location.clone(), secret, config.db_pool_size)
        .await
        .map(|store| {
            store
                .with_run_lease(chrono::Duration::seconds(i64::from(config.run_lease_secs)))
                .with_acquire_timeout(Duration::from_millis(config.db_acquire_timeout_ms))
                .with_inbox_limits(config.inbox.limits())
                .with_quotas(config.limits.quotas())
        })
        .with_context(|| {
            format!(
                "opening the {} control-plane store",
                location.backend_name()
            )
        })
}

pub struct Application {
    state: AppState,
    server: Option<(Server, SocketAddr)>,
    shutdown: watch::Sender<bool>,
}

/// A running application started by [`Application::spawn`]; stops when dropped.
pub struct RunningApp {
    pub addr: SocketAddr,
    pub state: AppState,
    server: ServerHandle,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.server.stop(true).await;
        let _ = self.task.await;
    }
}

impl Application {
    pub async fn build(config: Config, mode: Mode) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        let queue = JobQueue::open(store.location())
            .await
            .context("opening the job queue")?;
        let job_settings = JobSettings {
            housekeeping_schedule: config.housekeeping_cron.clone(),
            delivery_policy: config.delivery_policy()?,
            max_batch_bytes: config.limits.max_batch_bytes(),
            ..JobSettings::default()
        };
        let metrics = Metrics::new();
        let database_addresses = AddressGuard::new(config.allow_private_databases);
        let databases = Registry::new(Limits::default()).with_address_policy(Arc::new(move |ip| {
            database_addresses.check_ip(ip).map_err(|e| e.to_string())
        }));
        // Each process closes the connector pools it has not used for a while.
        databases.spawn_idle_eviction(POOL_EVICTION_EVERY, POOL_IDLE);
        let sqlite_root = Arc::new(config.sqlite_root());
        match sluice_jobs::sqlite_dirs::move_into_tenant_dirs(&store, &sqlite_root).await {
            Ok(moved) if moved == Default::default() => {}
            Ok(moved) => tracing::info!(?moved, "SQLite connectors moved into tenant directories"),
            // Such a connector fails to open (and says why) until the next start.
            Err(error) => tracing::error!(
                "moving SQLite connectors into tenant directories failed: {error:#}"
            ),
        }
        // Schedules saved while weekdays were read the cron crate's way keep their days.
        match store
            .convert_schedules_once(
                "standard-cron-weekdays",
                sluice_jobs::pull::legacy_to_standard,
            )
            .await
        {
            Ok(0) => {}
            Ok(changed) => tracing::info!(changed, "schedules rewritten to standard cron weekdays"),
            Err(error) => tracing::error!("rewriting stored schedules failed: {error:#}"),
        }
        let outbound = Arc::new(Outbound::new(AddressGuard::new(
            config.allow_private_targets,
        )));
        let jobs = JobContext::new(
            store.clone(),
            queue.clone(),
            databases.clone(),
            sqlite_root.clone(),
            outbound,
            job_settings,
            JobMetrics::new(metrics.registry()),
        );
        let (shutdown, _) = watch::channel(false);
        let listener = match mode {
            Mode::Serve => Some(
                TcpListener::bind(config.bind)
                    .with_context(|| format!("binding {}", config.bind))?,
            ),
            Mode::WorkerOnly => None,
        };
        let bound = match &listener {
            Some(l) => l.local_addr()?,
            None => config.bind,
        };
        let state = AppState {
            store,
            queue,
            public_url: Arc::from(config.public_base_url(bound)),
            secure_cookies: config.secure_cookies(),
            tenant_limits: crate::state::TenantLimits {
                min_schedule_interval: chrono::Duration::seconds(i64::from(
                    config.limits.min_schedule_secs,
                )),
                max_commands: i64::from(config.limits.max_commands_per_tenant),
                preview_cell_bytes: config.limits.preview_cell_bytes as usize,
            },
            metrics_token: config
                .metrics_token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Arc::from),
            allow_private_targets: config.allow_private_targets,
            metrics,
            databases,
            sqlite_root,
            jobs,
            hook_rate_limit: Arc::new(crate::hooks::HookRateLimit::per_minute(
                config.inbox.rate_per_minute(),
            )),
            throttle: Arc::new(crate::auth::Throttle::from_config(&config.throttle)?),
        };
        let server = match listener {
            Some(listener) => {
                let server_state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(server_state.clone()))
                        .configure(crate::routes::configure)
                })
                .listen(listener)?
                .disable_signals()
                .shutdown_timeout(GRACE.as_secs())
                .run();
                Some((server, bound))
            }
            None => None,
        };
        Ok(Self {
            state,
            server,
            shutdown,
        })
    }

    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs until SIGINT/SIGTERM, then stops within [`SHUTDOWN_DEADLINE`] (a
    /// second signal stops at once).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let server_handle = self.server.as_ref().map(|(s, _)| s.handle());
        let (signalled, mut on_signal) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!(
                deadline_secs = SHUTDOWN_DEADLINE.as_secs(),
                "shutting down: finishing in-flight requests and jobs"
            );
            let _ = signalled.send(true);
            let _ = shutdown.send(true);
            if let Some(handle) = server_handle {
                tokio::spawn(handle.stop(true));
            }
            wait_for_signal().await;
            tracing::warn!("second stop signal: exiting now");
            std::process::exit(130);
        });
        let jobs = self.state.jobs.clone();
        let deadline = async move {
            let _ = on_signal.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_DEADLINE - RELEASE_BUDGET).await;
        };
        tokio::select! {
            outcome = self.run() => outcome,
            () = deadline => {
                tracing::warn!("work still running at the shutdown deadline; exiting anyway");
                release_active_runs(&jobs).await;
                Ok(())
            }
        }
    }

    /// Starts in the background (tests, embedding); see [`RunningApp`].
    pub fn spawn(self) -> anyhow::Result<RunningApp> {
        let (server, addr) = self
            .server
            .as_ref()
            .map(|(s, a)| (s.handle(), *a))
            .context("spawn needs Mode::Serve")?;
        let state = self.state.clone();
        let shutdown = self.shutdown.clone();
        let task = tokio::spawn(self.run());
        Ok(RunningApp {
            addr,
            state,
            server,
            shutdown,
            task,
        })
    }

    async fn run(self) -> anyhow::Result<()> {
        let monitor =
            sluice_jobs::register_all(self.state.jobs.clone()).map_err(anyhow::Error::msg)?;
        let mut stop = self.shutdown.subscribe();
        let jobs = tokio::spawn(async move {
            let signal = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
                Ok(())
            };
            if let Err(e) = monitor.run_with_signal(signal).await {
                tracing::error!(error = %e, "job monitor stopped with an error");
            }
        });
        match self.server {
            Some((server, addr)) => {
                tracing::info!(%addr, public_url = %self.state.public_url, "web server started");
                server.await.context("web server")?;
                let _ = self.shutdown.send(true);
            }
            None => {
                tracing::info!("workers started (no web server)");
            }
        }
        jobs.await.context("job monitor task")?;
        release_active_runs(&self.state.jobs).await;
        Ok(())
    }
}

/// Hands the runs this process did not finish back to the queue, so another
/// process (or this one, restarted) runs them at once rather than after their lease.
async fn release_active_runs(jobs: &JobContext) {
    match tokio::time::timeout(RELEASE_BUDGET, jobs.release_active_runs()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(released)) => tracing::info!(released, "handed unfinished runs back to the queue"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not hand unfinished runs back; their leases will expire")
        }
        Err(_) => {
            tracing::warn!("store too slow to hand unfinished runs back; their leases will expire")
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
