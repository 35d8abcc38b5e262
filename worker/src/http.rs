//! The worker's HTTP server: `/metrics` (Prometheus text format), `/healthz` (liveness: the
//! process runs its loops), `/readyz` (Redis and the database answered recently), `/status`
//! (the cluster's status page for people, [`crate::status_page`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// How long a successful check counts as "recent" for `/readyz`.
pub const FRESH: Duration = Duration::from_secs(5);

/// The last known state of one dependency (Redis or the database).
#[derive(Debug, Default)]
struct Probe {
    last_ok: Option<Instant>,
    /// The last failure and when it happened.
    last_err: Option<(Instant, String)>,
}

impl Probe {
    fn problem(&self, name: &str, now: Instant) -> Option<String> {
        match (&self.last_ok, &self.last_err) {
            (_, Some((at, e))) if self.last_ok.is_none_or(|ok| *at >= ok) => {
                Some(format!("{name}: {e}"))
            }
            (None, _) => Some(format!("{name}: not checked yet")),
            (Some(ok), _) if now.duration_since(*ok) > FRESH => Some(format!(
                "{name}: no answer for {} s",
                now.duration_since(*ok).as_secs()
            )),
            _ => None,
        }
    }
}

/// Liveness and readiness, shared by the runtime (which writes) and the HTTP server (reads).
#[derive(Debug, Default)]
pub struct Health {
    redis: Mutex<Probe>,
    db: Mutex<Probe>,
    /// Set once the runtime's loops run; cleared when they stop.
    live: Mutex<Option<String>>,
}

impl Health {
    pub fn redis_ok(&self) {
        self.redis.lock().expect("health lock").last_ok = Some(Instant::now());
    }

    pub fn redis_err(&self, error: impl std::fmt::Display) {
        self.redis.lock().expect("health lock").last_err =
            Some((Instant::now(), error.to_string()));
    }

    pub fn db_ok(&self) {
        self.db.lock().expect("health lock").last_ok = Some(Instant::now());
    }

    pub fn db_err(&self, error: impl std::fmt::Display) {
        self.db.lock().expect("health lock").last_err = Some((Instant::now(), error.to_string()));
    }

    /// `None` while the loops run, else why not.
    pub fn set_live(&self, problem: Option<String>) {
        *self.live.lock().expect("health lock") = problem;
    }

    /// Ok, or the reasons the worker cannot take jobs now.
    pub fn readiness(&self) -> Result<(), String> {
        let now = Instant::now();
        let problems: Vec<String> = [
            self.redis
                .lock()
                .expect("health lock")
                .problem("redis", now),
            self.db
                .lock()
                .expect("health lock")
                .problem("database", now),
        ]
        .into_iter()
        .flatten()
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn liveness(&self) -> Result<(), String> {
        match &*self.live.lock().expect("health lock") {
            None => Ok(()),
            Some(p) => Err(p.clone()),
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    status: Arc<StatusSource>,
}

/// Where the status page reads from: its own Redis connection, made at the first request (the
/// server starts before the runtime has connected).
pub struct StatusSource {
    redis_url: String,
    prefix: String,
    queue: tokio::sync::OnceCell<paperboy_shared::queue::Queue>,
}

impl StatusSource {
    pub fn new(redis_url: &str, prefix: &str) -> StatusSource {
        StatusSource {
            redis_url: redis_url.to_string(),
            prefix: prefix.to_string(),
            queue: tokio::sync::OnceCell::new(),
        }
    }

    async fn queue(
        &self,
    ) -> Result<&paperboy_shared::queue::Queue, paperboy_shared::queue::QueueError> {
        self.queue
            .get_or_try_init(|| {
                paperboy_shared::queue::Queue::connect(&self.redis_url, &self.prefix)
            })
            .await
    }
}

async fn status(State(s): State<AppState>) -> impl IntoResponse {
    let html = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
    let snapshot = match s.status.queue().await {
        Ok(q) => crate::status_page::Snapshot::read(q).await,
        Err(e) => Err(e),
    };
    match snapshot {
        Ok(snap) => (StatusCode::OK, html, crate::status_page::render(&snap)),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            html,
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta http-equiv=\"refresh\" content=\"5\"><title>paperboy status</title></head>\
                 <body><h1>paperboy status</h1><p class=\"bad\">Cannot read the queues: {}</p>\
                 </body></html>\n",
                crate::status_page::esc(&e.to_string())
            ),
        ),
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.liveness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

async fn index() -> impl IntoResponse {
    "paperboy-worker: /status /metrics /healthz /readyz\n"
}

pub fn router(metrics_: Arc<Metrics>, health: Arc<Health>, status_: Arc<StatusSource>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            metrics: metrics_,
            health,
            status: status_,
        })
}

/// Binds `addr` (port 0 picks a free port), logs the bound address and, if `addr_file` is
/// given, writes it there (atomically: tests and supervisors read it).
pub async fn bind(addr: &str, addr_file: Option<&Path>) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (PAPERBOY_METRICS_ADDR / --metrics-addr)")
    })?;
    let bound: SocketAddr = listener.local_addr()?;
    tracing::info!("listening on {bound}");
    if let Some(path) = addr_file {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
            .with_context(|| format!("cannot write the address file {}", path.display()))?;
        std::fs::write(tmp.path(), bound.to_string())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)
            .with_context(|| format!("cannot write the address file {}", path.display()))?;
    }
    Ok(listener)
}

/// Serves until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    status: Arc<StatusSource>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(metrics, health, status))
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_both_answered() {
        let h = Health::default();
        let e = h.readiness().unwrap_err();
        assert!(e.contains("redis: not checked yet"), "{e}");
        h.redis_ok();
        let e = h.readiness().unwrap_err();
        assert!(e.contains("database"), "{e}");
        assert!(!e.contains("redis"), "{e}");
        h.db_ok();
        assert_eq!(h.readiness(), Ok(()));
    }

    #[test]
    fn a_failure_after_success_makes_it_not_ready_until_next_success() {
        let h = Health::default();
        h.redis_ok();
        h.db_ok();
        h.redis_err("connection refused");
        let e = h.readiness().unwrap_err();
        assert!(e.contains("redis: connection refused"), "{e}");
        h.redis_ok();
        assert_eq!(h.readiness(), Ok(()));
    }

    #[test]
    fn liveness_reports_the_problem() {
        let h = Health::default();
        assert!(h.liveness().is_ok());
        h.set_live(Some("stopping".into()));
        assert_eq!(h.liveness(), Err("stopping".into()));
    }
}
