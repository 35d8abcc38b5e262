//! Harness: real `paperboy-worker` processes.
//!
//! [`WorkerBuilder`] spawns `target/<profile>/paperboy-worker` (build it first:
//! `cargo build -p paperboy-worker`) with only the settings a test gives it: a Redis URL and a
//! private prefix, a short lease and grace period, its own data folder and SQLite database, and
//! an HTTP server on a free port (the bound address is read from `PAPERBOY_ADDR_FILE`).
//! [`WorkerProcess`] is killed (SIGKILL) on drop, so a failing test leaves no orphan; if the test
//! is panicking, the worker's log is printed.
//!
//! [`eventually`] polls a condition up to a deadline and panics with a message saying what did
//! not happen: tests never sleep and hope.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use paperboy_shared::queue::{Queue, WorkerInfo};

/// `target/<profile>/<name>`, next to the running test's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent() // deps
        .and_then(Path::parent) // debug
        .expect("the test executable lives in target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p {name}` first",
        bin.display()
    );
    bin
}

/// Polls `check` every 50 ms until it returns `Some`, at most `timeout`; panics with `what`
/// otherwise.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerBuilder {
    redis_url: String,
    prefix: String,
    queues: String,
    concurrency: usize,
    lease_secs: u64,
    grace_secs: u64,
    env: Vec<(String, String)>,
}

impl WorkerBuilder {
    /// A worker on `prefix` serving `ping`, 2 jobs at once, lease 2 s, grace 2 s.
    pub fn new(redis_url: &str, prefix: &str) -> Self {
        WorkerBuilder {
            redis_url: redis_url.to_string(),
            prefix: prefix.to_string(),
            queues: "ping".into(),
            concurrency: 2,
            lease_secs: 2,
            grace_secs: 2,
            env: Vec::new(),
        }
    }

    pub fn queues(mut self, q: &str) -> Self {
        self.queues = q.to_string();
        self
    }

    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// `PAPERBOY_LEASE_SECS` (whole seconds, at least 1).
    pub fn lease_secs(mut self, s: u64) -> Self {
        self.lease_secs = s;
        self
    }

    /// `PAPERBOY_GRACE_SECS`.
    pub fn grace_secs(mut self, s: u64) -> Self {
        self.grace_secs = s;
        self
    }

    /// Any other setting.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Starts the process and waits (≤ 20 s) until its HTTP server listens. Not necessarily
    /// registered yet: see [`WorkerProcess::wait_registered`].
    pub fn spawn(&self) -> WorkerProcess {
        let dir = tempfile::tempdir().expect("temp dir for a worker");
        let addr_file = dir.path().join("addr");
        let log_path = dir.path().join("worker.log");
        let log = std::fs::File::create(&log_path).expect("worker log file");
        let mut cmd = std::process::Command::new(binary("paperboy-worker"));
        // Only our settings: nothing from the developer's environment leaks in.
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PAPERBOY_REDIS_URL", &self.redis_url)
            .env("PAPERBOY_REDIS_PREFIX", &self.prefix)
            .env("PAPERBOY_QUEUES", &self.queues)
            .env("PAPERBOY_CONCURRENCY", self.concurrency.to_string())
            .env("PAPERBOY_LEASE_SECS", self.lease_secs.to_string())
            .env("PAPERBOY_GRACE_SECS", self.grace_secs.to_string())
            .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
            .env("PAPERBOY_ADDR_FILE", &addr_file)
            .env("PAPERBOY_DATA_DIR", dir.path().join("data"))
            .env("PAPERBOY_MEDIA_ROOT", dir.path().join("media"))
            .env(
                "PAPERBOY_DATABASE_URL",
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("paperboy.sqlite3").display()
                ),
            )
            .env("PAPERBOY_LOG_LEVEL", "info")
            // The 10-minute mail schedule would enqueue fetches in tests about other things.
            .env("PAPERBOY_EMAIL_TASK_CRON", "disable")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log);
        let child = cmd.spawn().expect("start paperboy-worker");
        let pid = child.id();
        let mut w = WorkerProcess {
            child,
            pid,
            addr: None,
            log_path,
            exited: None,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file)
                && let Ok(a) = s.trim().parse::<SocketAddr>()
            {
                w.addr = Some(a);
                break;
            }
            if let Some(status) = w.try_wait() {
                panic!(
                    "paperboy-worker exited ({status}) before listening:\n{}",
                    w.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "paperboy-worker did not listen within 20 s:\n{}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        w
    }
}

/// A running `paperboy-worker`; SIGKILLed on drop.
pub struct WorkerProcess {
    child: Child,
    pub pid: u32,
    addr: Option<SocketAddr>,
    log_path: PathBuf,
    exited: Option<ExitStatus>,
    _dir: tempfile::TempDir,
}

impl WorkerProcess {
    /// The address of its HTTP server.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("listening")
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Its exit status, if it ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait on the worker");
        }
        self.exited
    }

    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// SIGKILL, then reap it.
    pub fn kill(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// Sends SIGTERM (a supervisor's stop request).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`, ...).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid);
    }

    /// Waits up to `timeout` for the process to end; panics otherwise.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let what = format!("worker {} to exit", self.pid);
        eventually(&what, timeout, || {
            let s = self.try_wait();
            async move { s }
        })
        .await
    }

    /// `GET path` on its HTTP server: `(status code, body)`, or None if it does not answer.
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr(), path)
    }

    /// Its entry in the worker registry once registered (≤ `timeout`).
    pub async fn wait_registered(&self, q: &Queue, timeout: Duration) -> WorkerInfo {
        let what = format!("worker pid {} to register", self.pid);
        let pid = self.pid;
        eventually(&what, timeout, || async move {
            q.workers().await.ok()?.into_iter().find(|w| w.pid == pid)
        })
        .await
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // A stopped process dies of SIGKILL too.
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- log of paperboy-worker pid {} ---\n{}--- end of log ---",
                self.pid,
                self.log()
            );
        }
    }
}

/// A minimal HTTP/1.1 GET (no client dependency): `(status code, body)`.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let code = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}
