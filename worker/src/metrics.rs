//! Prometheus metrics (one registry, served at `/metrics`) and the runtime's events.
//!
//! Every event the runtime observes goes through one method here that writes one log line and
//! updates the metrics, so logs and metrics never disagree (the "events" style of vector).
//! Labels are job kinds, queue names and job states only: never a URL or anything secret.

use std::time::Duration;

use paperboy_shared::job::JobKind;
use paperboy_shared::queue::{Maintenance, QueueStats, Reported};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Label used for a job whose payload could not be parsed (its kind is unknown).
pub const UNKNOWN_KIND: &str = "unknown";

/// Buckets of `paperboy_job_duration_seconds`: from a ping (ms) to an OCR run of a large scan
/// (up to an hour).
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1200.0, 1800.0, 3600.0,
];

/// Every metric of a worker process.
pub struct Metrics {
    registry: Registry,
    started: IntCounterVec,
    succeeded: IntCounterVec,
    failed: IntCounterVec,
    retried: IntCounterVec,
    dead: IntCounterVec,
    cancelled: IntCounterVec,
    stale: IntCounterVec,
    released: IntCounterVec,
    recovered: IntCounterVec,
    poisoned: IntCounterVec,
    duration: HistogramVec,
    running: IntGaugeVec,
    queue_jobs: IntGaugeVec,
    oldest_waiting: GaugeVec,
    workers_live: IntGauge,
    redis_up: IntGauge,
    db_up: IntGauge,
    scheduler_leader: IntGauge,
    scheduled: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Metrics {
    /// Creates the registry. Per-kind series start at 0 for every kind (and per-queue series for
    /// every served queue), so dashboards see them before the first job.
    pub fn new(queues: &[String]) -> Self {
        let r = Registry::new();
        let m = Metrics {
            started: counter(
                &r,
                "paperboy_jobs_started_total",
                "Jobs this worker started.",
                "kind",
            ),
            succeeded: counter(
                &r,
                "paperboy_jobs_succeeded_total",
                "Jobs this worker finished successfully.",
                "kind",
            ),
            failed: counter(
                &r,
                "paperboy_jobs_failed_total",
                "Job runs that ended in an error (retried or dead).",
                "kind",
            ),
            retried: counter(
                &r,
                "paperboy_jobs_retried_total",
                "Failed job runs scheduled for a retry.",
                "kind",
            ),
            dead: counter(
                &r,
                "paperboy_jobs_dead_total",
                "Jobs this worker sent to the dead set (permanent error or attempts exhausted).",
                "kind",
            ),
            cancelled: counter(
                &r,
                "paperboy_jobs_cancelled_total",
                "Running jobs that stopped because someone cancelled them.",
                "kind",
            ),
            stale: counter(
                &r,
                "paperboy_jobs_stale_total",
                "Job results ignored because this worker had lost the job (lease expired).",
                "kind",
            ),
            released: counter(
                &r,
                "paperboy_jobs_released_total",
                "Unfinished jobs given back to the queue at a graceful stop.",
                "kind",
            ),
            recovered: counter(
                &r,
                "paperboy_jobs_recovered_total",
                "Jobs taken back from workers whose lease expired (by this worker's maintenance).",
                "queue",
            ),
            poisoned: counter(
                &r,
                "paperboy_jobs_poisoned_total",
                "Jobs sent to dead because they were started too often without finishing.",
                "queue",
            ),
            duration: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "paperboy_job_duration_seconds",
                        "Run time of jobs, from start to report.",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                    &["kind"],
                )
                .expect("valid metric");
                r.register(Box::new(h.clone()))
                    .expect("metric registered once");
                h
            },
            running: {
                let g = IntGaugeVec::new(
                    Opts::new("paperboy_jobs_running", "Jobs running in this worker now."),
                    &["kind"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone()))
                    .expect("metric registered once");
                g
            },
            queue_jobs: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "paperboy_queue_jobs",
                        "Jobs in a queue by state (refreshed every few seconds).",
                    ),
                    &["queue", "state"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone()))
                    .expect("metric registered once");
                g
            },
            oldest_waiting: {
                let g = GaugeVec::new(
                    Opts::new(
                        "paperboy_queue_oldest_waiting_seconds",
                        "Age of the oldest waiting job of a queue (0 when none waits).",
                    ),
                    &["queue"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone()))
                    .expect("metric registered once");
                g
            },
            workers_live: gauge(
                &r,
                "paperboy_workers_live",
                "Live workers of this instance (all hosts), as last seen.",
            ),
            redis_up: gauge(
                &r,
                "paperboy_redis_up",
                "1 when Redis answered the last check, else 0.",
            ),
            db_up: gauge(
                &r,
                "paperboy_database_up",
                "1 when the database answered the last check, else 0.",
            ),
            scheduler_leader: gauge(
                &r,
                "paperboy_scheduler_leader",
                "1 while this worker holds the scheduler's leader lease (the sum over workers should be 1).",
            ),
            scheduled: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "paperboy_scheduler_ticks_total",
                        "Schedule ticks this worker fired, by entry and outcome (enqueued; skipped: the previous job still queued or running; error).",
                    ),
                    &["entry", "outcome"],
                )
                .expect("valid metric");
                r.register(Box::new(c.clone()))
                    .expect("metric registered once");
                c
            },
            registry: r,
        };
        for kind in JobKind::ALL {
            let k = [kind.name()];
            for c in [
                &m.started,
                &m.succeeded,
                &m.failed,
                &m.retried,
                &m.dead,
                &m.cancelled,
            ] {
                c.with_label_values(&k);
            }
            m.running.with_label_values(&k);
        }
        for q in queues {
            m.recovered.with_label_values(&[q.as_str()]);
            m.poisoned.with_label_values(&[q.as_str()]);
        }
        m
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding metrics to memory cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }

    // ---- events ------------------------------------------------------------------------------

    pub fn job_started(&self, id: &str, kind: &str, queue: &str, attempt: u32, start: u32) {
        tracing::info!(job = id, kind, queue, attempt, start, "job started");
        self.started.with_label_values(&[kind]).inc();
        self.running.with_label_values(&[kind]).inc();
    }

    /// The handler is done (whatever the outcome): the running gauge and the duration.
    pub fn job_ended(&self, kind: &str, took: Duration) {
        self.running.with_label_values(&[kind]).dec();
        self.duration
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    pub fn job_succeeded(&self, id: &str, kind: &str, took: Duration) {
        tracing::info!(
            job = id,
            kind,
            took_ms = took.as_millis() as u64,
            "job succeeded"
        );
        self.succeeded.with_label_values(&[kind]).inc();
    }

    /// A failure was reported; `reported` says what the queue made of it.
    pub fn job_failed(&self, id: &str, kind: &str, error: &str, reported: Reported) {
        self.failed.with_label_values(&[kind]).inc();
        match reported {
            Reported::Retrying => {
                tracing::warn!(job = id, kind, error, "job failed, will be retried");
                self.retried.with_label_values(&[kind]).inc();
            }
            Reported::Dead => {
                tracing::error!(job = id, kind, error, "job failed for good, now dead");
                self.dead.with_label_values(&[kind]).inc();
            }
            other => tracing::warn!(job = id, kind, error, ?other, "job failed"),
        }
    }

    pub fn job_cancelled(&self, id: &str, kind: &str) {
        tracing::info!(job = id, kind, "job cancelled");
        self.cancelled.with_label_values(&[kind]).inc();
    }

    /// The queue ignored a report: this worker no longer held the job.
    pub fn job_stale(&self, id: &str, kind: &str) {
        tracing::warn!(
            job = id,
            kind,
            "result ignored: this worker lost the job (lease expired), another worker has it"
        );
        self.stale.with_label_values(&[kind]).inc();
    }

    /// A job stopped locally without a report because the lease of its queue was lost.
    pub fn job_fenced(&self, id: &str, kind: &str, queue: &str) {
        tracing::warn!(
            job = id,
            kind,
            queue,
            "job stopped: this worker's lease on the queue expired and the job was taken back"
        );
    }

    pub fn job_released(&self, id: &str, kind: &str) {
        tracing::warn!(
            job = id,
            kind,
            "job unfinished at the end of the grace period, given back to the queue"
        );
        self.released.with_label_values(&[kind]).inc();
    }

    pub fn maintained(&self, queue: &str, m: &Maintenance) {
        if m.recovered > 0 || m.poisoned > 0 {
            tracing::warn!(
                queue,
                recovered = m.recovered,
                poisoned = m.poisoned,
                "took jobs back from workers whose lease expired"
            );
        }
        if m.promoted > 0 || m.cleaned > 0 {
            tracing::debug!(
                queue,
                promoted = m.promoted,
                cleaned = m.cleaned,
                "maintenance"
            );
        }
        self.recovered
            .with_label_values(&[queue])
            .inc_by(m.recovered);
        self.poisoned.with_label_values(&[queue]).inc_by(m.poisoned);
    }

    pub fn queue_stats(&self, s: &QueueStats) {
        let q = s.queue.as_str();
        for (state, n) in [
            ("waiting", s.waiting),
            ("scheduled", s.scheduled),
            ("running", s.running),
            ("finished", s.finished),
            ("dead", s.dead),
        ] {
            self.queue_jobs
                .with_label_values(&[q, state])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.oldest_waiting
            .with_label_values(&[q])
            .set(s.oldest_waiting_ms.unwrap_or(0).max(0) as f64 / 1000.0);
    }

    pub fn workers_live(&self, n: usize) {
        self.workers_live.set(n as i64);
    }

    /// Result of a Redis check; logs only on a change.
    pub fn redis_up(&self, up: bool, error: Option<&str>) {
        let was = self.redis_up.get() == 1;
        if up && !was {
            tracing::info!("Redis answers");
        } else if !up && (was || error.is_some()) {
            tracing::warn!(error = error.unwrap_or(""), "Redis does not answer");
        }
        self.redis_up.set(up as i64);
    }

    /// This worker became or stopped being the scheduler's leader.
    pub fn scheduler_leader(&self, worker: &str, leading: bool, entries: usize) {
        if leading {
            tracing::info!(
                worker,
                entries,
                "scheduler: this worker leads and fires the schedule"
            );
        } else {
            tracing::info!(worker, "scheduler: this worker no longer leads");
        }
        self.scheduler_leader.set(leading as i64);
    }

    /// A schedule tick fired: its job enqueued (`new`), skipped because the entry's previous
    /// job is still queued or running, or (no id) not enqueued at all.
    pub fn scheduled(
        &self,
        entry: &str,
        tick: chrono::DateTime<chrono::Utc>,
        job: Option<&str>,
        new: bool,
    ) {
        let tick = tick.to_rfc3339();
        let outcome = match (job, new) {
            (Some(id), true) => {
                tracing::info!(entry, %tick, job = id, "scheduler: tick fired");
                "enqueued"
            }
            (Some(id), false) => {
                tracing::info!(entry, %tick, running = id, "scheduler: tick skipped, the previous job is still queued or running");
                "skipped"
            }
            (None, _) => "error",
        };
        self.scheduled.with_label_values(&[entry, outcome]).inc();
    }

    /// Result of a database check; logs only on a change.
    pub fn db_up(&self, up: bool, error: Option<&str>) {
        let was = self.db_up.get() == 1;
        if up && !was {
            tracing::info!("database answers");
        } else if !up && was {
            tracing::warn!(error = error.unwrap_or(""), "database does not answer");
        }
        self.db_up.set(up as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_with_their_labels() {
        let m = Metrics::new(&["ping".to_string()]);
        m.job_started("a", "ping", "ping", 1, 1);
        m.job_ended("ping", Duration::from_millis(20));
        m.job_succeeded("a", "ping", Duration::from_millis(20));
        m.job_failed("b", "ping", "boom", Reported::Retrying);
        m.job_failed("c", "ping", "boom", Reported::Dead);
        let text = m.render();
        assert!(
            text.contains("paperboy_jobs_started_total{kind=\"ping\"} 1"),
            "{text}"
        );
        assert!(text.contains("paperboy_jobs_succeeded_total{kind=\"ping\"} 1"));
        assert!(text.contains("paperboy_jobs_failed_total{kind=\"ping\"} 2"));
        assert!(text.contains("paperboy_jobs_retried_total{kind=\"ping\"} 1"));
        assert!(text.contains("paperboy_jobs_dead_total{kind=\"ping\"} 1"));
        assert!(text.contains("paperboy_jobs_running{kind=\"ping\"} 0"));
        assert!(text.contains("paperboy_job_duration_seconds_count{kind=\"ping\"} 1"));
        assert!(text.contains("paperboy_job_duration_seconds_bucket{kind=\"ping\",le=\"3600\"} 1"));
        // every kind is there from the start
        assert!(text.contains("paperboy_jobs_started_total{kind=\"consume\"} 0"));
        assert!(text.contains("paperboy_jobs_recovered_total{queue=\"ping\"} 0"));
    }

    #[test]
    fn queue_stats_and_maintenance_update_gauges() {
        let m = Metrics::new(&["ping".to_string()]);
        m.queue_stats(&QueueStats {
            queue: "ping".into(),
            waiting: 3,
            scheduled: 1,
            running: 2,
            finished: 10,
            dead: 0,
            oldest_waiting_ms: Some(1500),
        });
        m.maintained(
            "ping",
            &Maintenance {
                recovered: 2,
                poisoned: 1,
                ..Default::default()
            },
        );
        m.workers_live(2);
        m.redis_up(true, None);
        let text = m.render();
        assert!(text.contains("paperboy_queue_jobs{queue=\"ping\",state=\"waiting\"} 3"));
        assert!(text.contains("paperboy_queue_jobs{queue=\"ping\",state=\"running\"} 2"));
        assert!(text.contains("paperboy_queue_oldest_waiting_seconds{queue=\"ping\"} 1.5"));
        assert!(text.contains("paperboy_jobs_recovered_total{queue=\"ping\"} 2"));
        assert!(text.contains("paperboy_jobs_poisoned_total{queue=\"ping\"} 1"));
        assert!(text.contains("paperboy_workers_live 2"));
        assert!(text.contains("paperboy_redis_up 1"));
    }
}
