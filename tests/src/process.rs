//! The real `sluice` binary as a child process: `sluice admin …` to provision a
//! tenant and an API key, `sluice serve` until it is ready, then SIGKILL (a crash),
//! SIGTERM (a shutdown), and the process's peak memory. Used by the crash and
//! shutdown tests and by the benchmarks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long `sluice serve` may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The `sluice` binary: `SLUICE_BIN`, or the one built beside the running executable
/// (`target/<profile>/sluice` for a binary, its parent for a test in `deps/`).
pub fn sluice_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SLUICE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current executable path");
    let found = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("sluice"))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "no sluice binary beside {}: build it with `cargo build -p sluice-server --bin sluice` \
             (tests/run.sh does) or set SLUICE_BIN",
            exe.display()
        )
    })
}

/// A free `127.0.0.1:PORT` to bind a server to.
pub fn free_address() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .to_string()
}

/// How to run `sluice` on one data directory: its environment and admin commands.
#[derive(Debug, Clone)]
/// A tenant made by [`Sluice::provision`].
pub struct Provisioned {
    pub key: String,
    /// Where the tenant's SQLite connectors may point.
    pub sqlite_dir: PathBuf,
}

pub struct Sluice {
    data_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Sluice {
    /// The embedded SQLite store in `data_dir`, private callback targets allowed,
    /// warnings-only logs.
    pub fn new(data_dir: &Path) -> Self {
        std::fs::create_dir_all(data_dir).expect("data dir");
        Self {
            data_dir: data_dir.to_path_buf(),
            env: vec![
                ("SLUICE_ALLOW_PRIVATE_TARGETS".into(), "true".into()),
                ("SLUICE_ALLOW_PRIVATE_DATABASES".into(), "true".into()),
                ("SLUICE_MIN_SCHEDULE_SECS".into(), "1".into()),
                ("RUST_LOG".into(), "warn".into()),
            ],
        }
    }

    /// Sets one more `SLUICE_*` (or other) variable for every process started.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The default `SLUICE_SQLITE_ROOT`; each tenant's files go in its own
    /// directory in it (see [`Provisioned::sqlite_dir`]).
    pub fn sqlite_root(&self) -> PathBuf {
        let root = self.data_dir.join("sqlite");
        std::fs::create_dir_all(&root).expect("sqlite root");
        root
    }

    fn command(&self) -> Command {
        let mut command = Command::new(sluice_binary());
        command
            .env_remove("SLUICE_DATABASE_URL")
            .env("SLUICE_DATA_DIR", &self.data_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `sluice admin ARGS` and returns its trimmed standard output.
    pub fn admin(&self, args: &[&str]) -> String {
        let output = self
            .command()
            .arg("admin")
            .args(args)
            .output()
            .expect("run sluice admin");
        assert!(
            output.status.success(),
            "sluice admin {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Creates a tenant with its owner and returns a new API key of that tenant,
    /// and the tenant's own SQLite directory (created) for its source files.
    pub fn provision(&self, tenant: &str, email: &str, password: &str) -> Provisioned {
        let tenant_id = self.admin(&[
            "tenant-create",
            "--name",
            tenant,
            "--email",
            email,
            "--password",
            password,
        ]);
        let key = self.admin(&["apikey-create", "--tenant", tenant]);
        let sqlite_dir = self.sqlite_root().join(&tenant_id);
        std::fs::create_dir_all(&sqlite_dir).expect("tenant SQLite directory");
        Provisioned { key, sqlite_dir }
    }

    /// Starts `sluice serve` on `bind` and waits until `/readyz` answers 200. Its
    /// log (standard error) goes to a new file in the data directory.
    pub async fn serve(&self, bind: &str) -> ServeProcess {
        let log = self
            .data_dir
            .join(format!("serve-{}.log", uuid::Uuid::new_v4().simple()));
        let child = self
            .command()
            .arg("serve")
            .env("SLUICE_BIND", bind)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("serve log file"))
            .spawn()
            .expect("start sluice serve");
        let mut process = ServeProcess {
            child,
            base_url: format!("http://{bind}"),
            log,
        };
        process.wait_until_ready().await;
        process
    }
}

/// A running `sluice serve`, killed (and reaped) when dropped, even if a test fails.
pub struct ServeProcess {
    child: Child,
    pub base_url: String,
    log: PathBuf,
}

impl ServeProcess {
    async fn wait_until_ready(&mut self) {
        let ready = self.url("/readyz");
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sluice serve exited with {status}: {}", self.log_tail());
            }
            if reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "sluice serve never became ready on {}: {}",
            self.base_url,
            self.log_tail()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no cleanup, exactly like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: what a service manager or a container runtime sends to stop it.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's peak resident memory so far (VmHWM), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log.display())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
