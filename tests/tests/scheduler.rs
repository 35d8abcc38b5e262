//! The periodic schedule with real `paperboy-worker` processes against a real Redis: one
//! leader fires each tick once, another worker takes over when it dies, a tick whose previous
//! job is still queued is skipped, and ticks missed while no worker ran are not replayed.
//!
//! The `ping` canary entry (`PAPERBOY_PING_CRON`) on a per-second schedule stands in for the
//! periodic jobs: the mechanism is the same for every entry.
//!
//! Needs the binary built first: `cargo build -p paperboy-worker`.

use std::time::{Duration, Instant};

use paperboy_shared::queue::Queue;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::{WorkerBuilder, WorkerProcess, eventually};

const EVERY_SECOND: &str = "* * * * * *";

fn worker(r: &TestRedis, queues: &str) -> WorkerProcess {
    WorkerBuilder::new(&r.url, &r.prefix)
        .queues(queues)
        .lease_secs(2)
        .env("PAPERBOY_PING_CRON", EVERY_SECOND)
        .spawn()
}

async fn enqueued(q: &Queue) -> u64 {
    q.counters("ping")
        .await
        .unwrap()
        .get("enqueued")
        .copied()
        .unwrap_or(0)
}

async fn leader(q: &Queue) -> String {
    eventually("a scheduler leader", Duration::from_secs(20), || async {
        q.leader().await.unwrap()
    })
    .await
}

/// The worker id is `host:pid:random`.
fn pid_of(worker_id: &str) -> u32 {
    worker_id.split(':').nth(1).unwrap().parse().unwrap()
}

fn metric(w: &WorkerProcess, line_start: &str) -> Option<f64> {
    let (_, body) = w.http_get("/metrics")?;
    body.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_workers_fires_each_tick_and_the_other_takes_over_when_it_dies() {
    let r = TestRedis::new();
    let q = r.queue().await;
    let mut workers = [worker(&r, "ping"), worker(&r, "ping")];
    let first = leader(&q).await;
    let (leading, other) = if pid_of(&first) == workers[0].pid {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(pid_of(&first), workers[leading].pid);
    eventually("the leader's gauge", Duration::from_secs(10), || async {
        (metric(&workers[leading], "paperboy_scheduler_leader ") == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(
        metric(&workers[other], "paperboy_scheduler_leader "),
        Some(0.0)
    );

    // Six seconds of per-second ticks: about six pings, never twelve.
    let (n0, t0) = (enqueued(&q).await, Instant::now());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (n1, secs) = (enqueued(&q).await, t0.elapsed().as_secs_f64());
    let fired = (n1 - n0) as f64;
    assert!(
        fired <= secs + 1.0 && fired >= secs - 3.0,
        "{fired} ticks fired in {secs:.1} s by two workers"
    );

    // The leader dies without resigning: the other takes over within the lease (2 s) and
    // fires the next ticks.
    workers[leading].kill();
    let killed_at = Instant::now();
    let next = eventually("a new leader", Duration::from_secs(10), || async {
        q.leader().await.unwrap().filter(|l| *l != first)
    })
    .await;
    assert_eq!(pid_of(&next), workers[other].pid);
    let took = killed_at.elapsed();
    assert!(took <= Duration::from_secs(5), "took over after {took:?}");
    let n2 = enqueued(&q).await;
    eventually(
        "ticks from the new leader",
        Duration::from_secs(10),
        || async { (enqueued(&q).await >= n2 + 2).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_whose_job_is_still_queued_is_skipped() {
    let r = TestRedis::new();
    let q = r.queue().await;
    // Nobody serves `ping`: the first tick's job stays waiting.
    let w = worker(&r, "consume");
    leader(&q).await;
    eventually("the first tick", Duration::from_secs(10), || async {
        (enqueued(&q).await == 1).then_some(())
    })
    .await;
    let skipped = r#"paperboy_scheduler_ticks_total{entry="ping",outcome="skipped"} "#;
    eventually("three skipped ticks", Duration::from_secs(10), || async {
        (metric(&w, skipped).unwrap_or(0.0) >= 3.0).then_some(())
    })
    .await;
    assert_eq!(enqueued(&q).await, 1, "no pile-up");
    assert_eq!(q.stats("ping").await.unwrap().waiting, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_missed_while_no_worker_ran_fire_once_not_once_each() {
    let r = TestRedis::new();
    let q = r.queue().await;
    let mut a = worker(&r, "ping");
    leader(&q).await;
    eventually("a first tick", Duration::from_secs(10), || async {
        (enqueued(&q).await >= 1).then_some(())
    })
    .await;
    a.kill();
    // Eight ticks pass with no worker at all.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let before = enqueued(&q).await;
    let b = worker(&r, "ping");
    let led = eventually(
        "the new worker to lead",
        Duration::from_secs(20),
        || async {
            q.leader()
                .await
                .unwrap()
                .filter(|l| pid_of(l) == b.pid)
                .map(|_| Instant::now())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(led.elapsed())).await;
    let fired = enqueued(&q).await - before;
    // One catch-up tick, then the regular per-second ones: not the eight missed.
    assert!(
        (1..=3).contains(&fired),
        "{fired} ticks in the first 1.5 s of the new leader"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_the_scheduler_off_never_leads() {
    let r = TestRedis::new();
    let q = r.queue().await;
    let w = WorkerBuilder::new(&r.url, &r.prefix)
        .env("PAPERBOY_PING_CRON", EVERY_SECOND)
        .env("PAPERBOY_SCHEDULER", "false")
        .spawn();
    w.wait_registered(&q, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(q.leader().await.unwrap(), None);
    assert_eq!(enqueued(&q).await, 0);
}

#[test]
fn a_bad_schedule_stops_the_worker_at_start_naming_the_setting() {
    let r = TestRedis::new();
    let out = std::process::Command::new(paperboy_tests::worker::binary("paperboy-worker"))
        .env_clear()
        .env("PAPERBOY_REDIS_URL", &r.url)
        .env("PAPERBOY_REDIS_PREFIX", &r.prefix)
        .env("PAPERBOY_PING_CRON", "every day at noon")
        .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PAPERBOY_PING_CRON") && err.contains("disable"),
        "{err}"
    );
}
