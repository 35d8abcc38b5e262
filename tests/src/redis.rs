//! Harness: a private key prefix on the real Redis for each test.
//!
//! Redis is `PAPERBOY_TEST_REDIS_URL` or `redis://127.0.0.1:6379`. Every [`TestRedis`] has its
//! own prefix `pbtest:<ulid>`; dropping it deletes every key under the prefix (SCAN + DEL), so
//! tests of several helpers can run at once against one Redis.

use paperboy_shared::queue::{Queue, WorkerOptions};
use std::time::Duration;

/// The Redis URL the tests use.
pub fn redis_url() -> String {
    std::env::var("PAPERBOY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A private prefix; its keys are deleted on drop.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    pub fn new() -> Self {
        TestRedis {
            url: redis_url(),
            prefix: format!("pbtest:{}", ulid::Ulid::new()),
        }
    }

    /// A queue client on this prefix.
    pub async fn queue(&self) -> Queue {
        Queue::connect(&self.url, &self.prefix)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test Redis at {}: {e}", self.url))
    }

    /// A raw async connection (for white-box checks).
    pub async fn raw(&self) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(self.url.as_str())
            .expect("test Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to the test Redis")
    }

    /// Every key under this prefix (SCAN, not KEYS).
    pub async fn keys(&self) -> Vec<String> {
        let mut con = self.raw().await;
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.pattern())
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .expect("SCAN");
            out.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        out
    }

    fn pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop may run outside (or at the end of) a runtime.
        let Ok(client) = ::redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let mut cursor: u64 = 0;
        loop {
            let r: Result<(u64, Vec<String>), _> = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.pattern())
                .arg("COUNT")
                .arg(1000)
                .query(&mut con);
            let Ok((next, keys)) = r else { return };
            if !keys.is_empty() {
                let _: Result<i64, _> = ::redis::cmd("DEL").arg(&keys).query(&mut con);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

/// Worker options for tests: a short lease so that recovery is quick.
pub fn test_options(lease: Duration) -> WorkerOptions {
    WorkerOptions {
        lease,
        retention: Duration::from_secs(3600),
        dead_retention: Duration::from_secs(7 * 24 * 3600),
    }
}

/// A private `redis-server` on a free loopback port, for tests that stop and restart Redis
/// (never the shared one). No persistence: a restart comes back empty. Killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// Starts one on a free port and waits (≤ 10 s) until it answers PING.
    pub fn start() -> Self {
        // A free port: bind port 0, note the port, let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut s = RedisServer { port, child: None };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills it (SIGKILL: as abrupt as a crash) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing answers, its data is kept.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} {pid} (redis-server) failed");
    }

    /// (Re)starts it on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server (is it installed?)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let up = ::redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut con| ::redis::cmd("PING").query::<String>(&mut con))
                .is_ok();
            if up {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {} did not answer within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
