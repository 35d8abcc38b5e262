//! The worker runtime: fetch loops (one per queue, `concurrency` jobs at once), job supervision
//! (panics, progress, cancellation, reports), heartbeats with fencing, the maintenance tick,
//! health probes and the graceful stop.
//!
//! Tasks of a running worker:
//! - one fetch loop per queue: takes up to the free slots with `fetch`; when nothing waits,
//!   blocks up to [`BLOCK`] on its own connection (`fetch_blocking`), so a new job starts within
//!   milliseconds without polling;
//! - per job a supervisor task that runs the handler in a task of its own (a panic becomes a
//!   permanent failure, never a crash) and reports the outcome;
//! - heartbeat every lease/3: renews the leases, learns cancel requests, lost leases (register
//!   again) and which of its runs it no longer holds (fencing: exactly those runs are stopped
//!   without a report, another worker has the jobs);
//! - maintenance every [`MAINTAIN_EVERY`]: `maintain` of every served queue, queue gauges;
//! - probes every second: Redis and the database answer (`/readyz`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paperboy_shared::config::Config;
use paperboy_shared::db::Db;
use paperboy_shared::job::{Job, JobKind, all_queues, backoff};
use paperboy_shared::queue::{
    BlockingConn, ErrorRecord, Fetched, Outcome, Progress, Queue, QueueError, Reported, WorkerInfo,
    WorkerOptions,
};
use paperboy_shared::{Classify, ErrorClass};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{AbortHandle, JoinHandle};

use crate::http::Health;
use crate::jobs::{self, JobContext, JobError, ProgressSink};
use crate::metrics::{Metrics, UNKNOWN_KIND};

/// Longest wait of one blocking fetch (also the longest delay before a stop request is seen by
/// a fetch loop).
pub const BLOCK: Duration = Duration::from_secs(1);
/// Period of the maintenance tick.
pub const MAINTAIN_EVERY: Duration = Duration::from_secs(1);
/// Queue gauges are refreshed every this many maintenance ticks.
const STATS_EVERY_TICKS: u32 = 5;
/// Period of the Redis/database probes behind `/readyz`.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Progress writes per job are at most one per this period.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// After a stop request, how long each step that needs Redis may take: waiting for the fetch
/// loops (beyond [`BLOCK`]), giving the unfinished jobs back, ending the background loops,
/// unregistering. When Redis does not answer, the stop still ends in bounded time (about the
/// grace period plus four of these); the jobs not given back return when the lease expires.
const STOP_STEP: Duration = Duration::from_secs(2);

/// Exit codes of `paperboy-worker run` (also in `--help`).
pub mod exit {
    /// Stopped on request; every running job finished within the grace period.
    pub const CLEAN: i32 = 0;
    /// Fatal error: invalid settings, the HTTP address cannot be bound, an internal failure.
    pub const FATAL: i32 = 1;
    /// Stopped on request with jobs still running after the grace period: they were given back
    /// to the queue (or, if Redis was unreachable, come back when the lease expires).
    pub const JOBS_RELEASED: i32 = 3;
}

/// What `run` needs beyond the settings file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Served queues, deduplicated, in order.
    pub queues: Vec<String>,
    /// Jobs at once, per queue.
    pub concurrency: HashMap<String, usize>,
    pub opts: WorkerOptions,
    pub grace: Duration,
}

/// `a,b` or `all` into queue names; unknown names are an error that lists the valid ones.
pub fn parse_queues(spec: &str) -> Result<Vec<String>, String> {
    let valid = all_queues();
    let mut out: Vec<String> = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "all" {
            for q in &valid {
                if !out.iter().any(|o| o == q) {
                    out.push(q.to_string());
                }
            }
        } else if valid.contains(&name) {
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        } else {
            return Err(format!(
                "unknown queue {name:?} in --queues/PAPERBOY_QUEUES; valid: all, {}",
                valid.join(", ")
            ));
        }
    }
    if out.is_empty() {
        return Err(
            "--queues/PAPERBOY_QUEUES names no queue; use `all` or e.g. `ping,consume`".into(),
        );
    }
    Ok(out)
}

/// Default jobs at once for a queue: the number of cores if a kind on it is CPU-heavy, else 8.
pub fn default_concurrency(queue: &str, cores: usize) -> usize {
    let heavy = JobKind::ALL
        .iter()
        .any(|k| k.queue() == queue && k.policy().cpu_heavy);
    if heavy { cores.max(1) } else { 8 }
}

/// Whether a queue runs one job at a time per worker (the index: one writer).
pub fn single_consumer(queue: &str) -> bool {
    JobKind::ALL
        .iter()
        .any(|k| k.queue() == queue && k.single_consumer())
}

/// `host:pid:random`: unique per process, never configured.
pub fn worker_identity(host: &str, pid: u32) -> String {
    format!("{host}:{pid}:{:08x}", rand::random::<u32>())
}

/// The kind named in a payload, for metrics labels, even when the payload does not parse.
fn kind_label(payload: &str) -> &'static str {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("kind")
                .and_then(|k| k.as_str())
                .and_then(JobKind::from_name)
        })
        .map(JobKind::name)
        .unwrap_or(UNKNOWN_KIND)
}

/// The message of a handler's panic.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Delays after Redis errors: 100 ms, doubling, at most 5 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    pub const MAX: Duration = Duration::from_secs(5);

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

/// How a job's handler ended, as the runtime sees it.
#[derive(Debug)]
enum Ended {
    Ok(serde_json::Value),
    Err(JobError),
    /// Aborted by the runtime (fencing or the end of the grace period): no report.
    Aborted,
}

/// Turns a handler's result into what the queue is told.
fn outcome_of(
    ended: Ended,
    cancel_requested: bool,
    kind: Option<JobKind>,
    attempts_before: u32,
    worker: &str,
    jitter: f64,
) -> Option<Outcome> {
    match ended {
        Ended::Aborted => None,
        Ended::Ok(v) => Some(Outcome::Succeeded(v)),
        Ended::Err(_) if cancel_requested => Some(Outcome::Cancelled),
        Ended::Err(e) => {
            let attempt = attempts_before + 1;
            let retry_in = match (e.class(), kind) {
                (ErrorClass::Transient, Some(k)) => Some(backoff(&k.policy(), attempt, jitter)),
                _ => None,
            };
            Some(Outcome::Failed {
                error: ErrorRecord {
                    attempt,
                    at_ms: chrono::Utc::now().timestamp_millis(),
                    class: e.class(),
                    message: e.to_string(),
                    worker: worker.to_string(),
                },
                retry_in,
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The handler runs.
    Handling,
    /// The handler ended; the outcome is being reported.
    Reporting,
    /// The queue's lease was lost: stopped, not reported.
    Fenced,
    /// Unfinished at the end of the grace period: stopped, given back.
    Released,
}

struct Running {
    /// Which run of the job this is. A job taken back (this worker's lease expired) can come
    /// back to this same worker while the first run still ends: the entry belongs to the newest
    /// run, and an older run's supervisor must neither report nor remove it.
    run: u64,
    queue: String,
    kind: &'static str,
    cancel: watch::Sender<bool>,
    abort: Option<AbortHandle>,
    phase: Phase,
}

/// A connected, registered worker.
struct Worker {
    id: String,
    info: WorkerInfo,
    queue: Queue,
    db: Db,
    config: Arc<Config>,
    settings: Settings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    running: Mutex<HashMap<String, Running>>,
    /// Source of `Running::run`.
    runs: AtomicU64,
}

/// A stop request: the number of SIGTERM/SIGINT received (0 = none; 2 = hurry, skip the rest of
/// the grace period).
pub type StopSignal = watch::Receiver<u32>;

/// Resolves when the stop signal reaches `n` (or its sender is gone).
async fn stop_reached(stop: &mut StopSignal, n: u32) {
    let _ = stop.wait_for(|v| *v >= n).await;
}

async fn ended(end: &mut watch::Receiver<bool>) {
    let _ = end.wait_for(|v| *v).await;
}

/// Sleeps `d` unless the stop signal comes first; true if it came.
async fn sleep_or_stop(d: Duration, stop: &mut StopSignal) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop_reached(stop, 1) => true,
    }
}

// ---- connecting ------------------------------------------------------------------------------

async fn connect_queue(
    config: &Config,
    health: &Health,
    metrics: &Metrics,
    stop: &mut StopSignal,
) -> Option<Queue> {
    let mut b = Backoff::default();
    loop {
        match Queue::connect(&config.redis_url, &config.redis_prefix).await {
            Ok(q) => {
                health.redis_ok();
                metrics.redis_up(true, None);
                return Some(q);
            }
            Err(e) => {
                health.redis_err(&e);
                metrics.redis_up(false, Some(&e.to_string()));
                if e.class() == ErrorClass::Permanent && !e.is_unreachable() {
                    tracing::error!(error = %e, "cannot use the Redis settings; retrying anyway");
                }
            }
        }
        if sleep_or_stop(b.next_delay(), stop).await {
            return None;
        }
    }
}

async fn connect_db(
    config: &Config,
    health: &Health,
    metrics: &Metrics,
    stop: &mut StopSignal,
) -> Option<Db> {
    let mut b = Backoff::default();
    let mut logged = false;
    loop {
        match dbconn::connect(&config.database_url).await {
            Ok(db) => {
                health.db_ok();
                metrics.db_up(true, None);
                return Some(db);
            }
            Err(e) => {
                if !logged {
                    tracing::warn!(error = %e, "database unreachable; retrying");
                    logged = true;
                }
                health.db_err(&e);
                metrics.db_up(false, Some(&e.to_string()));
            }
        }
        if sleep_or_stop(b.next_delay(), stop).await {
            return None;
        }
    }
}

/// Database calls of the runtime, in one place.
mod dbconn {
    use paperboy_shared::db::{Db, DbError};

    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::connect(url).await
    }

    pub async fn ping(db: &Db) -> Result<(), DbError> {
        db.ping().await
    }
}

// ---- the worker ------------------------------------------------------------------------------

/// Runs the worker until a stop request; returns the process exit code.
pub async fn run(
    config: Arc<Config>,
    settings: Settings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    mut stop: StopSignal,
) -> i32 {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    let pid = std::process::id();
    let id = worker_identity(&host, pid);
    tracing::info!(
        worker = %id,
        queues = ?settings.queues,
        concurrency = ?settings.concurrency,
        lease_secs = settings.opts.lease.as_secs_f64(),
        grace_secs = settings.grace.as_secs_f64(),
        "worker starting"
    );

    let (queue, db) = {
        let mut s1 = stop.clone();
        let mut s2 = stop.clone();
        tokio::join!(
            connect_queue(&config, &health, &metrics, &mut s1),
            connect_db(&config, &health, &metrics, &mut s2)
        )
    };
    let (Some(queue), Some(db)) = (queue, db) else {
        tracing::info!("stopped before connecting");
        return exit::CLEAN;
    };

    let info = WorkerInfo {
        id: id.clone(),
        host,
        pid,
        queues: settings.queues.clone(),
        started_at_ms: chrono::Utc::now().timestamp_millis(),
        last_seen_ms: chrono::Utc::now().timestamp_millis(),
        running: Vec::new(),
    };
    let worker = Arc::new(Worker {
        id,
        info,
        queue,
        db,
        config,
        settings,
        metrics,
        health,
        running: Mutex::new(HashMap::new()),
        runs: AtomicU64::new(0),
    });

    // Register (retrying while Redis is away).
    let mut b = Backoff::default();
    loop {
        match worker
            .queue
            .register_worker(&worker.info, &worker.settings.opts)
            .await
        {
            Ok(()) => break,
            Err(e) => worker.redis_failed("register", &e),
        }
        if sleep_or_stop(b.next_delay(), &mut stop).await {
            return exit::CLEAN;
        }
    }
    worker.health.redis_ok();
    tracing::info!(worker = %worker.id, "worker registered, taking jobs");

    // `end` stops the background loops once the running jobs are done (they need heartbeats
    // until then).
    let (end_tx, end_rx) = watch::channel(false);
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let background = vec![
        spawn_guarded(
            "heartbeat",
            fatal_tx.clone(),
            worker.clone().heartbeat_loop(end_rx.clone()),
        ),
        spawn_guarded(
            "maintenance",
            fatal_tx.clone(),
            worker.clone().maintenance_loop(end_rx.clone()),
        ),
        spawn_guarded(
            "probe",
            fatal_tx.clone(),
            worker.clone().probe_loop(end_rx.clone()),
        ),
    ];
    // The fetch loops stop on a request, or when another loop died.
    let (fetch_stop_tx, fetch_stop) = watch::channel(0u32);
    let mut fetchers = Vec::new();
    for q in worker.settings.queues.clone() {
        let n = worker
            .settings
            .concurrency
            .get(&q)
            .copied()
            .unwrap_or(1)
            .max(1);
        let sem = Arc::new(Semaphore::new(n));
        fetchers.push(spawn_guarded(
            "fetch",
            fatal_tx.clone(),
            worker.clone().fetch_loop(q, sem, fetch_stop.clone()),
        ));
    }
    drop(fatal_tx);
    // The schedule (only the elected worker fires it) stops with the fetch loops.
    let scheduler = tokio::spawn(crate::scheduler::run(
        worker.id.clone(),
        worker.queue.clone(),
        worker.config.clone(),
        worker.metrics.clone(),
        fetch_stop.clone(),
    ));

    // Run until asked to stop, or until a loop died (a bug: stop as gracefully as possible).
    let mut code = exit::CLEAN;
    tokio::select! {
        _ = stop_reached(&mut stop, 1) => {
            tracing::info!(
                grace_secs = worker.settings.grace.as_secs_f64(),
                "stop requested: no new jobs, waiting for the running ones"
            );
        }
        Some(what) = fatal_rx.recv() => {
            tracing::error!(what, "a worker loop failed; stopping");
            worker.health.set_live(Some(format!("{what} loop failed")));
            code = exit::FATAL;
        }
    }
    let _ = fetch_stop_tx.send(1);
    let _ = tokio::time::timeout(STOP_STEP, scheduler).await;
    // A fetch loop stops within BLOCK when Redis answers; when it does not, do not wait for
    // it (it starts nothing any more: a job it gets now is given back).
    let fetchers_stopped =
        tokio::time::timeout(BLOCK + STOP_STEP, futures::future::join_all(fetchers))
            .await
            .is_ok();

    // Wait for the running jobs, at most the grace period (a second signal cuts it short).
    let deadline = tokio::time::Instant::now() + worker.settings.grace;
    loop {
        if worker.running.lock().expect("running lock").is_empty() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = stop_reached(&mut stop, 2) => {
                tracing::warn!("second stop request: not waiting for the grace period");
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let released = worker.release_unfinished().await;
    if released > 0 && code == exit::CLEAN {
        code = exit::JOBS_RELEASED;
    }
    // Reports in flight finish (bounded).
    let until = Instant::now() + Duration::from_secs(10);
    while !worker.running.lock().expect("running lock").is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let _ = end_tx.send(true);
    let _ = tokio::time::timeout(STOP_STEP, futures::future::join_all(background)).await;
    if !fetchers_stopped {
        // A fetch loop may still get an id moved into this worker's inflight list: keep the
        // lease, so that `recover` gives it back once the lease expires.
        tracing::warn!(
            worker = %worker.id,
            code,
            "worker stopped without unregistering (Redis does not answer); its lease expires"
        );
        return code;
    }
    let queues = worker.settings.queues.clone();
    match tokio::time::timeout(
        STOP_STEP,
        worker.queue.unregister_worker(&worker.id, &queues),
    )
    .await
    {
        Ok(Ok(())) => tracing::info!(worker = %worker.id, released, code, "worker stopped"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not unregister (the entry expires with the lease)");
        }
        Err(_) => tracing::warn!(
            "could not unregister: Redis does not answer (the entry expires with the lease)"
        ),
    }
    code
}

/// Spawns a loop; if it panics, `fatal` hears about it.
fn spawn_guarded(
    what: &'static str,
    fatal: tokio::sync::mpsc::UnboundedSender<String>,
    fut: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let inner = tokio::spawn(fut);
    tokio::spawn(async move {
        if let Err(e) = inner.await
            && e.is_panic()
        {
            let msg = panic_message(e.into_panic());
            let _ = fatal.send(format!("{what}: {msg}"));
        }
    })
}

impl Worker {
    fn redis_failed(&self, what: &str, e: &QueueError) {
        tracing::warn!(op = what, error = %e, "Redis call failed; retrying with backoff");
        self.health.redis_err(format!("{what}: {e}"));
        self.metrics.redis_up(false, None);
    }

    fn redis_answered(&self) {
        self.health.redis_ok();
    }

    // ---- fetching ----------------------------------------------------------------------------

    async fn fetch_loop(self: Arc<Self>, q: String, sem: Arc<Semaphore>, mut stop: StopSignal) {
        let opts = self.settings.opts.clone();
        let mut blocking: Option<BlockingConn> = None;
        let mut b = Backoff::default();
        loop {
            if *stop.borrow() > 0 {
                break;
            }
            // One free slot at least.
            let first = tokio::select! {
                p = sem.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = stop_reached(&mut stop, 1) => break,
            };
            let mut permits = vec![first];
            while let Ok(p) = sem.clone().try_acquire_owned() {
                permits.push(p);
            }
            match self.queue.fetch(&self.id, &q, permits.len(), &opts).await {
                Ok(jobs) if !jobs.is_empty() => {
                    b.reset();
                    self.redis_answered();
                    for job in jobs {
                        if *stop.borrow() > 0 {
                            // Stopping (the fetch answered late): start nothing new.
                            self.give_back(job).await;
                            continue;
                        }
                        match permits.pop() {
                            Some(p) => self.start(job, p),
                            None => self.give_back(job).await,
                        }
                    }
                    continue;
                }
                Ok(_) => {
                    b.reset();
                }
                Err(e) => {
                    self.redis_failed("fetch", &e);
                    drop(permits);
                    if sleep_or_stop(b.next_delay(), &mut stop).await {
                        break;
                    }
                    continue;
                }
            }
            // Nothing waits: block until a job comes (at most BLOCK) on our own connection.
            permits.truncate(1);
            let conn = match blocking.as_mut() {
                Some(c) => c,
                None => match self.queue.blocking_connection().await {
                    Ok(c) => blocking.insert(c),
                    Err(e) => {
                        self.redis_failed("blocking connection", &e);
                        drop(permits);
                        if sleep_or_stop(b.next_delay(), &mut stop).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            // Not cancelled on stop: a job could be moved to us in the middle; at most BLOCK.
            match self
                .queue
                .fetch_blocking(conn, &self.id, &q, BLOCK, &opts)
                .await
            {
                Ok(Some(job)) => {
                    if *stop.borrow() > 0 {
                        self.give_back(job).await;
                        break;
                    }
                    let p = permits
                        .pop()
                        .expect("one permit kept for the blocking fetch");
                    self.start(job, p);
                }
                Ok(None) => {}
                Err(e) => {
                    // The connection may be broken: open a new one next time.
                    blocking = None;
                    self.redis_failed("blocking fetch", &e);
                    drop(permits);
                    if sleep_or_stop(b.next_delay(), &mut stop).await {
                        break;
                    }
                }
            }
        }
        tracing::debug!(queue = %q, "fetch loop stopped");
    }

    /// A job fetched but not started (stopping): back to waiting.
    async fn give_back(&self, job: Fetched) {
        if let Err(e) = self.queue.release(&self.id, &job.queue, &job.id).await {
            self.redis_failed("release", &e);
        }
    }

    // ---- running one job ---------------------------------------------------------------------

    fn start(self: &Arc<Self>, fetched: Fetched, permit: OwnedSemaphorePermit) {
        let parsed: Result<Job, String> = serde_json::from_str(&fetched.payload).map_err(|e| {
            format!(
                "job {} has arguments this version cannot read ({e}); was it enqueued by a newer paperboy?",
                fetched.id
            )
        });
        let kind = match &parsed {
            Ok(j) => j.kind().name(),
            Err(_) => kind_label(&fetched.payload),
        };
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let older = self.running.lock().expect("running lock").insert(
            fetched.id.clone(),
            Running {
                run,
                queue: fetched.queue.clone(),
                kind,
                cancel: cancel_tx,
                abort: None,
                phase: Phase::Handling,
            },
        );
        // Fetched again while an earlier run of it is still here: the job was taken back from
        // this worker (lease expired) and given to it anew, so the earlier run is fenced.
        if let Some(old) = older
            && old.phase == Phase::Handling
        {
            if let Some(a) = &old.abort {
                a.abort();
            }
            self.metrics.job_fenced(&fetched.id, old.kind, &old.queue);
        }
        self.metrics.job_started(
            &fetched.id,
            kind,
            &fetched.queue,
            fetched.attempts + 1,
            fetched.starts,
        );
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            this.supervise(fetched, run, parsed, kind, cancel_rx).await;
        });
    }

    async fn supervise(
        self: Arc<Self>,
        fetched: Fetched,
        run: u64,
        parsed: Result<Job, String>,
        kind: &'static str,
        cancel_rx: watch::Receiver<bool>,
    ) {
        let began = Instant::now();
        let job_kind = parsed.as_ref().ok().map(Job::kind);
        let ended = match parsed {
            Err(reason) => Ended::Err(JobError::Permanent(reason)),
            Ok(job) => {
                let (sink, writer) = self.progress_writer(&fetched.queue, &fetched.id);
                let ctx = JobContext {
                    id: fetched.id.clone(),
                    config: self.config.clone(),
                    db: self.db.clone(),
                    queue: self.queue.clone(),
                    progress_sink: sink,
                    cancelled: cancel_rx.clone(),
                };
                let handler = tokio::spawn(async move { jobs::run(job, &ctx).await });
                {
                    let mut running = self.running.lock().expect("running lock");
                    match running.get_mut(&fetched.id) {
                        Some(r) if r.run == run && r.phase == Phase::Handling => {
                            r.abort = Some(handler.abort_handle());
                        }
                        _ => handler.abort(),
                    }
                }
                let res = handler.await;
                writer.abort();
                match res {
                    Ok(Ok(v)) => Ended::Ok(v),
                    Ok(Err(e)) => Ended::Err(e),
                    Err(e) if e.is_panic() => Ended::Err(JobError::Permanent(format!(
                        "the {kind} handler panicked: {}",
                        panic_message(e.into_panic())
                    ))),
                    Err(_) => Ended::Aborted,
                }
            }
        };
        let took = began.elapsed();
        self.metrics.job_ended(kind, took);

        // Report unless the job was fenced or released meanwhile.
        let report = {
            let mut running = self.running.lock().expect("running lock");
            match running.get_mut(&fetched.id) {
                Some(r) if r.run == run && r.phase == Phase::Handling => {
                    r.phase = Phase::Reporting;
                    true
                }
                _ => false,
            }
        };
        if report {
            let cancel_requested = *cancel_rx.borrow();
            let outcome = outcome_of(
                ended,
                cancel_requested,
                job_kind,
                fetched.attempts,
                &self.id,
                rand::random::<f64>(),
            );
            if let Some(outcome) = outcome {
                self.report(&fetched, kind, outcome, took).await;
            }
        }
        let mut running = self.running.lock().expect("running lock");
        if running.get(&fetched.id).is_some_and(|r| r.run == run) {
            running.remove(&fetched.id);
        }
    }

    /// A throttled, asynchronous progress writer: the handler's calls only replace the latest
    /// value; a task writes it at most every [`PROGRESS_EVERY`].
    fn progress_writer(&self, queue: &str, id: &str) -> (ProgressSink, JoinHandle<()>) {
        let (tx, mut rx) = watch::channel::<Option<Progress>>(None);
        let sink: ProgressSink = Arc::new(move |p: Progress| {
            tx.send_replace(Some(p));
        });
        let q = self.queue.clone();
        let (queue, id) = (queue.to_string(), id.to_string());
        let writer = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                if let Some(p) = p
                    && let Err(e) = q.progress(&queue, &id, &p).await
                {
                    tracing::debug!(job = %id, error = %e, "progress not written");
                }
                tokio::time::sleep(PROGRESS_EVERY).await;
            }
        });
        (sink, writer)
    }

    /// Reports an outcome, retrying while Redis is away (bounded: past twice the lease the job
    /// has been taken back anyway).
    async fn report(
        &self,
        fetched: &Fetched,
        kind: &'static str,
        outcome: Outcome,
        took: Duration,
    ) {
        let give_up = Instant::now() + (self.settings.opts.lease * 2).max(Duration::from_secs(10));
        let mut b = Backoff::default();
        let reported = loop {
            match self
                .queue
                .report(&self.id, &fetched.queue, &fetched.id, outcome.clone())
                .await
            {
                Ok(r) => {
                    self.redis_answered();
                    break r;
                }
                Err(e) if e.is_transient() && Instant::now() < give_up => {
                    self.redis_failed("report", &e);
                    tokio::time::sleep(b.next_delay()).await;
                }
                Err(e) => {
                    tracing::error!(
                        job = %fetched.id,
                        kind,
                        error = %e,
                        "could not report the job's outcome; it comes back when the lease expires"
                    );
                    return;
                }
            }
        };
        match (&outcome, reported) {
            (_, Reported::Stale) => self.metrics.job_stale(&fetched.id, kind),
            (Outcome::Succeeded(_), _) => self.metrics.job_succeeded(&fetched.id, kind, took),
            (Outcome::Cancelled, _) => self.metrics.job_cancelled(&fetched.id, kind),
            (Outcome::Failed { error, .. }, r) => {
                self.metrics
                    .job_failed(&fetched.id, kind, &error.message, r)
            }
        }
    }

    /// Stops (without a report) every job still in its handler and gives it back. Returns how
    /// many.
    async fn release_unfinished(&self) -> usize {
        let victims: Vec<(String, String, &'static str)> = {
            let mut running = self.running.lock().expect("running lock");
            running
                .iter_mut()
                .filter(|(_, r)| r.phase == Phase::Handling)
                .map(|(id, r)| {
                    r.phase = Phase::Released;
                    let _ = r.cancel.send(true);
                    if let Some(a) = &r.abort {
                        a.abort();
                    }
                    (id.clone(), r.queue.clone(), r.kind)
                })
                .collect()
        };
        // All of them within STOP_STEP: a Redis that does not answer must not hold the stop.
        let deadline = tokio::time::Instant::now() + STOP_STEP;
        for (id, queue, kind) in &victims {
            let mut b = Backoff::default();
            let mut given_back = false;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match tokio::time::timeout(left, self.queue.release(&self.id, queue, id)).await {
                    Ok(Ok(())) => {
                        given_back = true;
                        break;
                    }
                    Ok(Err(e)) => {
                        self.redis_failed("release", &e);
                        tokio::time::sleep(b.next_delay().min(left)).await;
                    }
                    Err(_) => break,
                }
            }
            if given_back {
                self.metrics.job_released(id, kind);
            } else {
                tracing::warn!(
                    job = %id,
                    kind,
                    "unfinished at the end of the grace period and not given back (Redis does \
                     not answer); it comes back when this worker's lease expires"
                );
            }
        }
        victims.len()
    }

    /// The runs (queue, job id, run) in their handler: what the heartbeat asks about.
    fn handling(&self) -> Vec<(String, String, u64)> {
        let running = self.running.lock().expect("running lock");
        running
            .iter()
            .filter(|(_, r)| r.phase == Phase::Handling)
            .map(|(id, r)| (r.queue.clone(), id.clone(), r.run))
            .collect()
    }

    /// These runs' jobs were taken back (this worker's lease expired): they now belong to
    /// someone else. Stop them, report nothing. Only the runs asked about: a job fetched again
    /// since (a newer run) is this worker's again and keeps running.
    fn fence(&self, asked: &[(String, String, u64)], gone: &[String]) {
        let mut running = self.running.lock().expect("running lock");
        for (queue, id, run) in asked.iter().filter(|(_, id, _)| gone.contains(id)) {
            if let Some(r) = running.get_mut(id)
                && r.run == *run
                && r.phase == Phase::Handling
            {
                r.phase = Phase::Fenced;
                if let Some(a) = &r.abort {
                    a.abort();
                }
                self.metrics.job_fenced(id, r.kind, queue);
            }
        }
    }

    // ---- background loops --------------------------------------------------------------------

    async fn heartbeat_loop(self: Arc<Self>, mut end: watch::Receiver<bool>) {
        let every = (self.settings.opts.lease / 3).max(Duration::from_millis(100));
        let mut b = Backoff::default();
        loop {
            // Taken before the call: a job fetched while it runs is not asked about.
            let asked = self.handling();
            let holding: Vec<(String, String)> = asked
                .iter()
                .map(|(q, id, _)| (q.clone(), id.clone()))
                .collect();
            let wait = match self
                .queue
                .heartbeat(
                    &self.id,
                    &self.settings.queues,
                    &self.settings.opts,
                    &holding,
                )
                .await
            {
                Ok(reply) => {
                    b.reset();
                    self.redis_answered();
                    if !reply.cancel.is_empty() {
                        let running = self.running.lock().expect("running lock");
                        for id in &reply.cancel {
                            if let Some(r) = running.get(id) {
                                tracing::info!(job = %id, "cancel requested");
                                let _ = r.cancel.send(true);
                            }
                        }
                    }
                    if !reply.gone.is_empty() {
                        self.fence(&asked, &reply.gone);
                    }
                    if !reply.lost.is_empty() {
                        for q in &reply.lost {
                            tracing::warn!(queue = %q, "lease lost (this worker was too slow or Redis lost its data)");
                        }
                        // Take a fresh lease so that this worker serves again.
                        if let Err(e) = self
                            .queue
                            .register_worker(&self.info, &self.settings.opts)
                            .await
                        {
                            self.redis_failed("register", &e);
                        }
                    }
                    every
                }
                Err(e) => {
                    self.redis_failed("heartbeat", &e);
                    b.next_delay().min(every)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ended(&mut end) => break,
            }
        }
    }

    async fn maintenance_loop(self: Arc<Self>, mut end: watch::Receiver<bool>) {
        let mut tick: u32 = 0;
        loop {
            for q in &self.settings.queues {
                match self.queue.maintain(q, &self.settings.opts).await {
                    Ok(m) => self.metrics.maintained(q, &m),
                    Err(e) => {
                        self.redis_failed("maintain", &e);
                        break;
                    }
                }
            }
            if tick.is_multiple_of(STATS_EVERY_TICKS) {
                self.refresh_gauges().await;
            }
            tick = tick.wrapping_add(1);
            tokio::select! {
                _ = tokio::time::sleep(MAINTAIN_EVERY) => {}
                _ = ended(&mut end) => break,
            }
        }
    }

    async fn refresh_gauges(&self) {
        for q in &self.settings.queues {
            match self.queue.stats(q).await {
                Ok(s) => self.metrics.queue_stats(&s),
                Err(e) => {
                    self.redis_failed("stats", &e);
                    return;
                }
            }
        }
        match self.queue.workers().await {
            Ok(w) => self.metrics.workers_live(w.len()),
            Err(e) => self.redis_failed("workers", &e),
        }
    }

    async fn probe_loop(self: Arc<Self>, mut end: watch::Receiver<bool>) {
        loop {
            match tokio::time::timeout(PROBE_TIMEOUT, self.queue.ping()).await {
                Ok(Ok(())) => {
                    self.health.redis_ok();
                    self.metrics.redis_up(true, None);
                }
                Ok(Err(e)) => {
                    self.health.redis_err(&e);
                    self.metrics.redis_up(false, Some(&e.to_string()));
                }
                Err(_) => {
                    self.health.redis_err("no answer within 2 s");
                    self.metrics.redis_up(false, Some("no answer within 2 s"));
                }
            }
            match tokio::time::timeout(PROBE_TIMEOUT, dbconn::ping(&self.db)).await {
                Ok(Ok(())) => {
                    self.health.db_ok();
                    self.metrics.db_up(true, None);
                }
                Ok(Err(e)) => {
                    self.health.db_err(&e);
                    self.metrics.db_up(false, Some(&e.to_string()));
                }
                Err(_) => {
                    self.health.db_err("no answer within 2 s");
                    self.metrics.db_up(false, Some("no answer within 2 s"));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(PROBE_EVERY) => {}
                _ = ended(&mut end) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_parse_all_lists_and_rejects_unknown() {
        assert_eq!(
            parse_queues("all").unwrap(),
            all_queues()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            parse_queues(" ping , ping,consume").unwrap(),
            ["ping", "consume"]
        );
        let e = parse_queues("ping,bogus").unwrap_err();
        assert!(e.contains("\"bogus\"") && e.contains("valid: all"), "{e}");
        assert!(parse_queues(" , ").is_err());
    }

    #[test]
    fn cpu_heavy_queues_default_to_the_core_count() {
        assert_eq!(default_concurrency("thumbnails", 2), 2);
        assert_eq!(default_concurrency("ping", 2), 8);
        assert_eq!(default_concurrency("consume", 16), 8);
    }

    #[test]
    fn identities_are_host_pid_random_and_differ() {
        let a = worker_identity("h", 42);
        let b = worker_identity("h", 42);
        assert!(a.starts_with("h:42:"), "{a}");
        assert_eq!(a.split(':').count(), 3);
        assert_ne!(a, b);
    }

    #[test]
    fn backoff_doubles_from_100ms_to_5s() {
        let mut b = Backoff::default();
        let d: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(d, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn kind_label_survives_bad_payloads() {
        assert_eq!(
            kind_label(r#"{"kind":"ping","args":{"sleep_ms":"x"}}"#),
            "ping"
        );
        assert_eq!(kind_label(r#"{"kind":"nope"}"#), UNKNOWN_KIND);
        assert_eq!(kind_label("not json"), UNKNOWN_KIND);
    }

    #[test]
    fn outcomes_follow_the_error_class() {
        let ok = outcome_of(
            Ended::Ok(serde_json::json!(1)),
            false,
            Some(JobKind::Ping),
            0,
            "w",
            0.5,
        );
        assert!(matches!(ok, Some(Outcome::Succeeded(_))));

        let t = outcome_of(
            Ended::Err(JobError::Transient("net".into())),
            false,
            Some(JobKind::Ping),
            1,
            "w",
            0.5,
        );
        let Some(Outcome::Failed { error, retry_in }) = t else {
            panic!("expected a failure, got {t:?}")
        };
        assert_eq!(error.attempt, 2);
        assert_eq!(error.class, ErrorClass::Transient);
        assert_eq!(error.message, "net");
        assert_eq!(error.worker, "w");
        assert_eq!(retry_in, Some(backoff(&JobKind::Ping.policy(), 2, 0.5)));

        let p = outcome_of(
            Ended::Err(JobError::Permanent("bad".into())),
            false,
            Some(JobKind::Ping),
            0,
            "w",
            0.5,
        );
        assert!(matches!(p, Some(Outcome::Failed { retry_in: None, .. })));

        // A bad payload has no kind: never retried.
        let bad = outcome_of(
            Ended::Err(JobError::Transient("x".into())),
            false,
            None,
            0,
            "w",
            0.5,
        );
        assert!(matches!(bad, Some(Outcome::Failed { retry_in: None, .. })));

        let c = outcome_of(
            Ended::Err(JobError::Permanent("cancelled".into())),
            true,
            Some(JobKind::Ping),
            0,
            "w",
            0.5,
        );
        assert!(matches!(c, Some(Outcome::Cancelled)));
        assert!(outcome_of(Ended::Aborted, false, Some(JobKind::Ping), 0, "w", 0.5).is_none());
    }

    #[test]
    fn panic_messages_are_extracted() {
        assert_eq!(panic_message(Box::new("boom")), "boom");
        assert_eq!(panic_message(Box::new(String::from("bang"))), "bang");
        assert_eq!(panic_message(Box::new(3)), "(no message)");
    }
}
