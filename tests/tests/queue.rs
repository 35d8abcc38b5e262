//! The Redis queue against a real Redis, one private prefix per test.

use std::time::Duration;

use paperboy_shared::ErrorClass;
use paperboy_shared::job::{ConsumeArgs, Job, JobKind};
use paperboy_shared::queue::{
    Enqueued, ErrorRecord, Fetched, JobState, Maintenance, Outcome, Progress, Queue, QueueError,
    Reported, WorkerInfo, WorkerOptions,
};
use paperboy_tests::redis::{TestRedis, test_options};
use paperboy_tests::worker::eventually;
use serde_json::json;

fn ping() -> Job {
    Job::Ping {
        sleep_ms: 0,
        fail: None,
    }
}

fn err(attempt: u32, msg: &str, class: ErrorClass) -> ErrorRecord {
    ErrorRecord {
        attempt,
        at_ms: 1_700_000_000_000 + attempt as i64,
        class,
        message: msg.to_string(),
        worker: "w1".into(),
    }
}

#[tokio::test]
async fn fifo_enqueue_fetch_report_succeeded_with_result() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = test_options(Duration::from_secs(30));
    let mut ids = Vec::new();
    for _ in 0..5 {
        match q.enqueue(&ping()).await.unwrap() {
            Enqueued::New(id) => ids.push(id),
            e => panic!("expected a new job, got {e:?}"),
        }
    }
    assert_eq!(q.get(&ids[0]).await.unwrap().state, JobState::Waiting);
    let got = q.fetch("w1", "ping", 3, &opts).await.unwrap();
    let got_ids: Vec<_> = got.iter().map(|f| f.id.clone()).collect();
    assert_eq!(got_ids, ids[..3].to_vec(), "oldest first");
    assert_eq!(got[0].starts, 1);
    assert_eq!(got[0].queue, "ping");
    let job: Job = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(job, ping());

    let r = q.get(&ids[0]).await.unwrap();
    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.worker.as_deref(), Some("w1"));
    assert!(r.started_at_ms.is_some());

    let rep = q
        .report(
            "w1",
            "ping",
            &ids[0],
            Outcome::Succeeded(json!({"pong": true})),
        )
        .await
        .unwrap();
    assert_eq!(rep, Reported::Succeeded);
    let r = q.get(&ids[0]).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    assert_eq!(r.result, Some(json!({"pong": true})));
    assert!(r.finished_at_ms.is_some());

    let rest = q.fetch("w1", "ping", 10, &opts).await.unwrap();
    assert_eq!(
        rest.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
        ids[3..].to_vec()
    );
    let s = q.stats("ping").await.unwrap();
    assert_eq!((s.waiting, s.running, s.finished), (0, 4, 1));
}

// ---- helpers ---------------------------------------------------------------------------------

const Q: &str = "ping";

fn consume(staged: &str) -> Job {
    Job::Consume(ConsumeArgs {
        staged: staged.to_string(),
        original_filename: "x.pdf".into(),
        tags: vec![],
        source: None,
        ..Default::default()
    })
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn new_id(q: &Queue, job: &Job) -> String {
    match q.enqueue(job).await.unwrap() {
        Enqueued::New(id) => id,
        e => panic!("expected a new job, got {e:?}"),
    }
}

/// Fetches exactly `id` (the only waiting job of `queue`) for `worker`.
async fn take(q: &Queue, worker: &str, queue: &str, id: &str, opts: &WorkerOptions) -> Fetched {
    let mut got = q.fetch(worker, queue, 10, opts).await.unwrap();
    assert_eq!(got.len(), 1, "one job fetched: {got:?}");
    let f = got.pop().unwrap();
    assert_eq!(f.id, id);
    f
}

fn failed(attempt: u32, msg: &str, class: ErrorClass, retry_in: Option<Duration>) -> Outcome {
    Outcome::Failed {
        error: err(attempt, msg, class),
        retry_in,
    }
}

/// Runs `maintain` until a pass recovered or poisoned something (the lease must expire first).
async fn maintain_until_recovery(q: &Queue, queue: &str, opts: &WorkerOptions) -> Maintenance {
    eventually(
        "maintain to take back the jobs of an expired lease",
        Duration::from_secs(10),
        || async {
            let m = q.maintain(queue, opts).await.unwrap();
            (m.recovered + m.poisoned > 0).then_some(m)
        },
    )
    .await
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---- at least once, fencing ------------------------------------------------------------------

#[tokio::test]
async fn an_expired_lease_hands_the_job_to_another_worker_and_fences_the_first() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let short = test_options(ms(200));
    let id = new_id(&q, &ping()).await;
    let f = take(&q, "dies", Q, &id, &short).await;
    assert_eq!(f.starts, 1);
    // Nobody else can take it while it runs.
    assert!(q.fetch("other", Q, 10, &short).await.unwrap().is_empty());

    // "dies" never heartbeats: once its lease expires, maintenance puts the job back.
    let m = maintain_until_recovery(&q, Q, &short).await;
    assert_eq!((m.recovered, m.poisoned), (1, 0));
    let r = q.get(&id).await.unwrap();
    assert_eq!(r.state, JobState::Waiting);
    assert_eq!(r.recovered, 1);
    assert_eq!(r.starts, 1);

    let f2 = take(&q, "other", Q, &id, &short).await;
    assert_eq!(f2.starts, 2);
    assert_eq!(q.get(&id).await.unwrap().worker.as_deref(), Some("other"));

    // The first worker comes back to life: its report is ignored, its heartbeat says "lost".
    let late = q
        .report("dies", Q, &id, Outcome::Succeeded(json!("late")))
        .await
        .unwrap();
    assert_eq!(late, Reported::Stale);
    let hb = q
        .heartbeat("dies", &[Q.to_string()], &short, &[(Q.into(), id.clone())])
        .await
        .unwrap();
    assert_eq!(hb.lost, vec![Q.to_string()]);
    assert_eq!(hb.gone, vec![id.clone()], "told to stop its run");
    assert_eq!(q.get(&id).await.unwrap().state, JobState::Running);

    let rep = q
        .report("other", Q, &id, Outcome::Succeeded(json!("ok")))
        .await
        .unwrap();
    assert_eq!(rep, Reported::Succeeded);
    let r = q.get(&id).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    assert_eq!(r.result, Some(json!("ok")));
}

#[tokio::test]
async fn a_job_taken_back_and_fetched_again_by_the_same_worker_is_held_again() {
    // The worker was too slow (frozen past its lease): its job went back and it fetched it
    // again before its next heartbeat. The heartbeat says the lease was lost, but the job is
    // held again: only the runs asked about that are no longer held are to be stopped.
    let t = TestRedis::new();
    let q = t.queue().await;
    let short = test_options(ms(200));
    let id = new_id(&q, &ping()).await;
    let other = new_id(&q, &ping()).await;
    assert_eq!(q.fetch("slow", Q, 10, &short).await.unwrap().len(), 2);
    let m = maintain_until_recovery(&q, Q, &short).await;
    assert_eq!(m.recovered, 2);
    // One goes to another worker, the other back to "slow".
    let to_fast = q.fetch("fast", Q, 1, &short).await.unwrap().pop().unwrap();
    let again = q.fetch("slow", Q, 1, &short).await.unwrap().pop().unwrap();
    assert_eq!(again.starts, 2);
    let mut both = vec![to_fast.id.clone(), again.id.clone()];
    both.sort();
    let mut want = vec![id.clone(), other.clone()];
    want.sort();
    assert_eq!(both, want);
    // "slow" asks about the runs it had before (both): only the one now run by "fast" is gone.
    let hb = q
        .heartbeat(
            "slow",
            &[Q.to_string()],
            &short,
            &[(Q.into(), id.clone()), (Q.into(), other.clone())],
        )
        .await
        .unwrap();
    assert_eq!(hb.lost, vec![Q.to_string()]);
    assert_eq!(hb.gone, vec![to_fast.id.clone()]);
    assert_eq!(
        q.report("slow", Q, &again.id, Outcome::Succeeded(json!(2)))
            .await
            .unwrap(),
        Reported::Succeeded
    );
    assert_eq!(
        q.report("slow", Q, &to_fast.id, Outcome::Succeeded(json!(1)))
            .await
            .unwrap(),
        Reported::Stale
    );
}

#[tokio::test]
async fn an_id_a_late_blmove_moves_to_a_worker_whose_jobs_were_taken_back_comes_back() {
    // "w" stopped heartbeating (stalled) but its blocking fetch was still waiting in Redis: after
    // `recover` took its job back, that BLMOVE moves the job into w's inflight list, and then
    // "w" dies before `start`. Nothing would look at that list again.
    let t = TestRedis::new();
    let q = t.queue().await;
    let short = test_options(ms(150));
    let id = new_id(&q, &ping()).await;
    take(&q, "w", Q, &id, &short).await;
    assert_eq!(maintain_until_recovery(&q, Q, &short).await.recovered, 1);
    let k = q.keys();
    let mut raw = t.raw().await;
    // What the pending BLMOVE does once the id is back in waiting.
    let moved: Option<String> = ::redis::cmd("LMOVE")
        .arg(k.waiting(Q))
        .arg(k.inflight(Q, "w"))
        .arg("RIGHT")
        .arg("LEFT")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(moved.as_deref(), Some(id.as_str()));
    assert!(q.fetch("other", Q, 10, &short).await.unwrap().is_empty());
    // A little later maintenance looks at w's inflight list once more and gives it back.
    let f = eventually(
        "the late-moved job to be waiting again",
        Duration::from_secs(10),
        || async {
            q.maintain(Q, &short).await.unwrap();
            q.fetch("other", Q, 1, &short).await.unwrap().pop()
        },
    )
    .await;
    assert_eq!(f.id, id);
    assert_eq!(f.starts, 2);
    assert!(
        !t.keys().await.contains(&k.inflight(Q, "w")),
        "w's inflight list is gone"
    );
}

#[tokio::test]
async fn a_heartbeating_worker_keeps_its_job_past_the_lease() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let short = test_options(ms(300));
    let id = new_id(&q, &ping()).await;
    take(&q, "alive", Q, &id, &short).await;
    // Five leases long: heartbeats every 100 ms, maintenance every 50 ms.
    let until = std::time::Instant::now() + ms(1500);
    let mut last_hb = std::time::Instant::now();
    while std::time::Instant::now() < until {
        if last_hb.elapsed() >= ms(100) {
            let hb = q
                .heartbeat("alive", &[Q.to_string()], &short, &[(Q.into(), id.clone())])
                .await
                .unwrap();
            assert!(hb.lost.is_empty(), "lease lost while heartbeating");
            assert!(hb.gone.is_empty(), "job taken while heartbeating");
            last_hb = std::time::Instant::now();
        }
        let m = q.maintain(Q, &short).await.unwrap();
        assert_eq!(m, Maintenance::default(), "nothing to recover");
        tokio::time::sleep(ms(50)).await;
    }
    let r = q.get(&id).await.unwrap();
    assert_eq!((r.state, r.starts, r.recovered), (JobState::Running, 1, 0));
    assert_eq!(
        q.report("alive", Q, &id, Outcome::Succeeded(json!(1)))
            .await
            .unwrap(),
        Reported::Succeeded
    );
}

// ---- poison ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_job_whose_worker_always_dies_is_dead_after_max_starts() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let short = test_options(ms(150));
    let max_starts = JobKind::Ping.policy().max_starts;
    let id = new_id(&q, &ping()).await;
    for start in 1..=max_starts {
        let worker = format!("doomed-{start}");
        let f = take(&q, &worker, Q, &id, &short).await;
        assert_eq!(f.starts, start);
        let m = maintain_until_recovery(&q, Q, &short).await;
        if start < max_starts {
            assert_eq!((m.recovered, m.poisoned), (1, 0), "start {start}");
            assert_eq!(q.get(&id).await.unwrap().state, JobState::Waiting);
        } else {
            assert_eq!((m.recovered, m.poisoned), (0, 1), "start {start}");
        }
    }
    let r = q.get(&id).await.unwrap();
    assert_eq!(r.state, JobState::Dead);
    assert_eq!(r.starts, max_starts);
    assert_eq!(r.recovered, max_starts - 1);
    let last = r.errors.last().expect("an error record says why");
    assert_eq!(last.class, ErrorClass::Permanent);
    assert!(
        last.message
            .contains(&format!("died {max_starts} times (poison job?)")),
        "{}",
        last.message
    );
    assert_eq!(last.worker, format!("doomed-{max_starts}"));
    let dead = q.list(Some(Q), Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(q.counters(Q).await.unwrap().get("dead"), Some(&1));
    // Nothing comes back on its own.
    assert!(q.fetch("w", Q, 10, &short).await.unwrap().is_empty());
}

#[tokio::test]
async fn failed_attempts_are_not_counted_as_crashes() {
    // A start that ended with a reported failure is not a start "without an end": a job that
    // failed twice (transient) and then lost its worker once has crashed once, not three times.
    let t = TestRedis::new();
    let q = t.queue().await;
    let short = test_options(ms(150));
    let id = new_id(&q, &ping()).await;
    for attempt in 1..=2 {
        let w = format!("w{attempt}");
        take(&q, &w, Q, &id, &short).await;
        let rep = q
            .report(
                &w,
                Q,
                &id,
                failed(attempt, "flaky", ErrorClass::Transient, Some(ms(0))),
            )
            .await
            .unwrap();
        assert_eq!(rep, Reported::Retrying);
        assert_eq!(q.maintain(Q, &short).await.unwrap().promoted, 1);
    }
    take(&q, "crashes", Q, &id, &short).await;
    let m = maintain_until_recovery(&q, Q, &short).await;
    assert_eq!((m.recovered, m.poisoned), (1, 0), "one crash is not poison");
    let r = q.get(&id).await.unwrap();
    assert_eq!((r.state, r.attempts, r.starts), (JobState::Waiting, 2, 3));
    let f = take(&q, "w4", Q, &id, &short).await;
    assert_eq!(f.starts, 4);
    assert_eq!(
        q.report("w4", Q, &id, Outcome::Succeeded(json!(1)))
            .await
            .unwrap(),
        Reported::Succeeded
    );
}

// ---- retries ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_transient_failure_is_scheduled_with_backoff_then_succeeds() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = test_options(Duration::from_secs(30));
    let id = new_id(&q, &ping()).await;
    take(&q, "w1", Q, &id, &opts).await;
    let before = now_ms();
    let rep = q
        .report(
            "w1",
            Q,
            &id,
            failed(1, "network down", ErrorClass::Transient, Some(ms(800))),
        )
        .await
        .unwrap();
    assert_eq!(rep, Reported::Retrying);
    let r = q.get(&id).await.unwrap();
    assert_eq!(r.state, JobState::Scheduled);
    assert_eq!(r.attempts, 1);
    let run_at = r.run_at_ms.expect("a scheduled job has run_at");
    assert!(
        run_at >= before + 700 && run_at <= now_ms() + 900,
        "run_at {run_at} is ~800 ms after {before}"
    );
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].message, "network down");
    assert_eq!(r.errors[0].class, ErrorClass::Transient);
    let listed = q
        .list(Some(Q), Some(JobState::Scheduled), 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(q.stats(Q).await.unwrap().scheduled, 1);

    // Not due yet: not promoted, not fetchable.
    assert_eq!(q.maintain(Q, &opts).await.unwrap().promoted, 0);
    assert!(q.fetch("w2", Q, 10, &opts).await.unwrap().is_empty());

    // Due: promoted to waiting, runs again with its attempt count.
    eventually(
        "the retry to become due",
        Duration::from_secs(5),
        || async { (q.maintain(Q, &opts).await.unwrap().promoted == 1).then_some(()) },
    )
    .await;
    assert!(now_ms() >= run_at, "promoted before run_at");
    let f = take(&q, "w2", Q, &id, &opts).await;
    assert_eq!((f.attempts, f.starts), (1, 2));
    assert_eq!(
        q.report("w2", Q, &id, Outcome::Succeeded(json!("second time")))
            .await
            .unwrap(),
        Reported::Succeeded
    );
    let r = q.get(&id).await.unwrap();
    assert_eq!((r.state, r.attempts), (JobState::Succeeded, 1));
    assert_eq!(r.run_at_ms, None);
    let c = q.counters(Q).await.unwrap();
    assert_eq!((c["failed"], c["retried"], c["succeeded"]), (1, 1, 1));
}

#[tokio::test]
async fn transient_failures_die_after_max_attempts() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = test_options(Duration::from_secs(30));
    let max = JobKind::Ping.policy().max_attempts;
    let id = new_id(&q, &ping()).await;
    assert_eq!(q.get(&id).await.unwrap().max_attempts, max);
    for attempt in 1..=max {
        let f = take(&q, "w", Q, &id, &opts).await;
        assert_eq!(f.attempts, attempt - 1);
        let rep = q
            .report(
                "w",
                Q,
                &id,
                failed(
                    attempt,
                    &format!("try {attempt}"),
                    ErrorClass::Transient,
                    Some(ms(0)),
                ),
            )
            .await
            .unwrap();
        if attempt < max {
            assert_eq!(rep, Reported::Retrying);
            assert_eq!(q.maintain(Q, &opts).await.unwrap().promoted, 1);
        } else {
            assert_eq!(rep, Reported::Dead);
        }
    }
    let r = q.get(&id).await.unwrap();
    assert_eq!((r.state, r.attempts), (JobState::Dead, max));
    let msgs: Vec<_> = r.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["try 1", "try 2", "try 3"]);
}

#[tokio::test]
async fn a_permanent_failure_goes_straight_to_dead_with_its_message() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = test_options(Duration::from_secs(30));
    let id = new_id(&q, &ping()).await;
    take(&q, "w", Q, &id, &opts).await;
    let rep = q
        .report(
            "w",
            Q,
            &id,
            failed(1, "file is not a PDF", ErrorClass::Permanent, None),
        )
        .await
        .unwrap();
    assert_eq!(rep, Reported::Dead);
    let r = q.get(&id).await.unwrap();
    assert_eq!((r.state, r.attempts), (JobState::Dead, 1));
    assert!(r.attempts < r.max_attempts, "attempts were left");
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].message, "file is not a PDF");
    assert_eq!(r.errors[0].class, ErrorClass::Permanent);
    assert!(r.finished_at_ms.is_some());
    let s = q.stats(Q).await.unwrap();
    assert_eq!((s.dead, s.scheduled, s.running), (1, 0, 0));
}

// ---- dead set, cancel ------------------------------------------------------------------------

/// Fetches every waiting job of `queue` and reports it dead (permanent). Returns their ids.
async fn kill_all_waiting(q: &Queue, queue: &str) -> Vec<String> {
    let opts = test_options(Duration::from_secs(30));
    let got = q.fetch("killer", queue, 1000, &opts).await.unwrap();
    for f in &got {
        let rep = q
            .report(
                "killer",
                queue,
                &f.id,
                failed(1, "killed by the test", ErrorClass::Permanent, None),
            )
            .await
            .unwrap();
        assert_eq!(rep, Reported::Dead);
    }
    got.into_iter().map(|f| f.id).collect()
}

#[tokio::test]
async fn dead_jobs_are_listed_shown_and_retried_one_or_all_in_steps() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let jobs: Vec<Job> = (0..250).map(|_| ping()).collect();
    assert_eq!(q.enqueue_many(&jobs).await.unwrap().len(), 250);
    let dead = kill_all_waiting(&q, Q).await;
    assert_eq!(dead.len(), 250);
    let waiting = new_id(&q, &ping()).await;

    // List by state: newest first, bounded by the limit.
    let listed = q.list(Some(Q), Some(JobState::Dead), 10).await.unwrap();
    assert_eq!(listed.len(), 10);
    assert!(listed.iter().all(|r| r.state == JobState::Dead));
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let w = q.list(None, Some(JobState::Waiting), 10).await.unwrap();
    assert_eq!(
        w.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [&waiting]
    );
    assert_eq!(q.stats(Q).await.unwrap().dead, 250);

    // Show one.
    let r = q.get(&dead[0]).await.unwrap();
    assert_eq!(r.state, JobState::Dead);
    assert_eq!(r.errors[0].message, "killed by the test");

    // Retry one: back to waiting, attempts and starts reset.
    q.retry(&dead[0]).await.unwrap();
    let r = q.get(&dead[0]).await.unwrap();
    assert_eq!((r.state, r.attempts, r.starts), (JobState::Waiting, 0, 0));
    assert_eq!(r.finished_at_ms, None);
    // Only dead, failed or cancelled jobs can be retried.
    match q.retry(&waiting).await {
        Err(QueueError::WrongState { state, .. }) => assert_eq!(state, JobState::Waiting),
        other => panic!("retrying a waiting job: {other:?}"),
    }
    assert!(matches!(
        q.retry("01NOSUCHJOB0000000000000000").await,
        Err(QueueError::NotFound(_))
    ));

    // Retry all: the other 249, in steps of ≤ 100.
    assert_eq!(q.retry_all_dead(Some(Q)).await.unwrap(), 249);
    assert!(
        q.list(Some(Q), Some(JobState::Dead), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let s = q.stats(Q).await.unwrap();
    assert_eq!((s.dead, s.waiting), (0, 251));
    assert_eq!(q.retry_all_dead(None).await.unwrap(), 0);
    // Each is queued once: all 251 fetched, none twice.
    let opts = test_options(Duration::from_secs(30));
    let mut ids: Vec<String> = q
        .fetch("w", Q, 1000, &opts)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 251);
}

#[tokio::test]
async fn a_dead_unique_job_is_not_retried_while_its_key_is_held() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let job = consume("01A/scan.pdf");
    let old = new_id(&q, &job).await;
    kill_all_waiting(&q, "consume").await;
    // The key was freed at death: an equal job can be enqueued again.
    let new = new_id(&q, &job).await;
    match q.retry(&old).await {
        Err(QueueError::WrongState { action, .. }) => {
            assert!(action.contains("unique"), "{action}")
        }
        other => panic!("retry while the unique key is held: {other:?}"),
    }
    assert_eq!(q.retry_all_dead(Some("consume")).await.unwrap(), 0);
    assert_eq!(q.get(&old).await.unwrap().state, JobState::Dead);
    // Once the holder is gone, the retry works and takes the key.
    q.cancel(&new).await.unwrap();
    assert_eq!(q.retry_all_dead(Some("consume")).await.unwrap(), 1);
    assert_eq!(q.get(&old).await.unwrap().state, JobState::Waiting);
    assert_eq!(q.enqueue(&job).await.unwrap(), Enqueued::Existing(old));
}

#[tokio::test]
async fn cancel_ends_waiting_and_scheduled_jobs_and_asks_running_ones() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = test_options(Duration::from_secs(30));
    let queues = [Q.to_string()];

    // Waiting: cancelled at once, skipped by fetch.
    let a = new_id(&q, &ping()).await;
    let b = new_id(&q, &ping()).await;
    assert_eq!(q.cancel(&a).await.unwrap(), JobState::Cancelled);
    let got = q.fetch("w", Q, 10, &opts).await.unwrap();
    assert_eq!(got.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), [&b]);
    assert_eq!(q.get(&a).await.unwrap().state, JobState::Cancelled);

    // Running: asked; the worker learns it at its heartbeat and reports cancelled.
    assert_eq!(q.cancel(&b).await.unwrap(), JobState::Running);
    assert!(q.get(&b).await.unwrap().cancel_requested);
    let hb = q
        .heartbeat("w", &queues, &opts, &[(Q.into(), b.clone())])
        .await
        .unwrap();
    assert_eq!(hb.cancel, vec![b.clone()]);
    assert!(hb.gone.is_empty());
    assert_eq!(
        q.report("w", Q, &b, Outcome::Cancelled).await.unwrap(),
        Reported::Cancelled
    );
    assert_eq!(q.get(&b).await.unwrap().state, JobState::Cancelled);

    // Scheduled (retrying): cancelled at once, never promoted.
    let c = new_id(&q, &ping()).await;
    take(&q, "w", Q, &c, &opts).await;
    q.report(
        "w",
        Q,
        &c,
        failed(1, "x", ErrorClass::Transient, Some(ms(0))),
    )
    .await
    .unwrap();
    assert_eq!(q.cancel(&c).await.unwrap(), JobState::Cancelled);
    assert_eq!(q.maintain(Q, &opts).await.unwrap().promoted, 0);
    assert_eq!(q.stats(Q).await.unwrap().scheduled, 0);

    // Terminal jobs cannot be cancelled; unknown ids are not found.
    match q.cancel(&c).await {
        Err(QueueError::WrongState { state, .. }) => assert_eq!(state, JobState::Cancelled),
        other => panic!("cancelling a cancelled job: {other:?}"),
    }
    assert!(matches!(
        q.cancel("01NOSUCHJOB0000000000000000").await,
        Err(QueueError::NotFound(_))
    ));

    // A cancelled job can be retried, and then runs exactly once.
    q.retry(&a).await.unwrap();
    q.retry(&c).await.unwrap();
    let mut got: Vec<String> = q
        .fetch("w", Q, 10, &opts)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    got.sort();
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(got, want);
    let cancelled = q
        .list(Some(Q), Some(JobState::Cancelled), 10)
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1, "only b is still cancelled");
}

#[tokio::test]
async fn a_running_job_asked_to_cancel_whose_worker_dies_is_cancelled_not_rerun() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let short = test_options(ms(150));
    let id = new_id(&q, &ping()).await;
    take(&q, "dies", Q, &id, &short).await;
    assert_eq!(q.cancel(&id).await.unwrap(), JobState::Running);
    // "dies" never heartbeats (so never hears of the cancel): its lease runs out.
    let r = eventually(
        "the cancelled job of a dead worker to end",
        Duration::from_secs(10),
        || async {
            q.maintain(Q, &short).await.unwrap();
            q.get(&id).await.ok().filter(|r| r.state.is_terminal())
        },
    )
    .await;
    assert_eq!(r.state, JobState::Cancelled);
    assert_eq!(r.recovered, 0);
    assert!(q.fetch("other", Q, 10, &short).await.unwrap().is_empty());
    let s = q.stats(Q).await.unwrap();
    assert_eq!((s.running, s.finished), (0, 1));
}

// ---- unique jobs -----------------------------------------------------------------------------

#[tokio::test]
async fn an_equal_unique_job_returns_the_existing_id_until_it_finishes() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = test_options(Duration::from_secs(30));
    let job = consume("01B/invoice.pdf");
    let first = new_id(&q, &job).await;
    let same = Enqueued::Existing(first.clone());
    // Queued.
    assert_eq!(q.enqueue(&job).await.unwrap(), same);
    // Another key is another job.
    let other = new_id(&q, &consume("01B/other.pdf")).await;
    assert_ne!(other, first);
    // In one batch, too.
    assert_eq!(
        q.enqueue_many(&[job.clone(), job.clone()]).await.unwrap(),
        [same.clone(), same.clone()]
    );
    // Running.
    let mut got = q.fetch("w", "consume", 1, &opts).await.unwrap();
    assert_eq!(got.pop().unwrap().id, first);
    assert_eq!(q.enqueue(&job).await.unwrap(), same);
    // Waiting for a retry.
    q.report(
        "w",
        "consume",
        &first,
        failed(1, "x", ErrorClass::Transient, Some(ms(0))),
    )
    .await
    .unwrap();
    assert_eq!(q.get(&first).await.unwrap().state, JobState::Scheduled);
    assert_eq!(q.enqueue(&job).await.unwrap(), same);
    // Finished: a new job.
    q.maintain("consume", &opts).await.unwrap();
    let f = q.fetch("w", "consume", 10, &opts).await.unwrap();
    assert!(f.iter().any(|f| f.id == first));
    q.report("w", "consume", &first, Outcome::Succeeded(json!(1)))
        .await
        .unwrap();
    let second = new_id(&q, &job).await;
    assert_ne!(second, first);
    assert_eq!(q.enqueue(&job).await.unwrap(), Enqueued::Existing(second));
    // Not unique: always new.
    let (a, b) = (new_id(&q, &ping()).await, new_id(&q, &ping()).await);
    assert_ne!(a, b);
}

// ---- retention -------------------------------------------------------------------------------

#[tokio::test]
async fn cleanup_removes_finished_jobs_after_retention_in_bounded_steps_leaving_no_key() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let keep = test_options(Duration::from_secs(30));
    let info = WorkerInfo {
        id: "w".into(),
        host: "test".into(),
        pid: std::process::id(),
        queues: vec![Q.into(), "consume".into()],
        started_at_ms: now_ms(),
        last_seen_ms: now_ms(),
        running: vec![],
    };
    q.register_worker(&info, &keep).await.unwrap();
    let jobs: Vec<Job> = (0..250).map(|_| ping()).collect();
    q.enqueue_many(&jobs).await.unwrap();
    let got = q.fetch("w", Q, 1000, &keep).await.unwrap();
    assert_eq!(got.len(), 250);
    for f in &got {
        q.report("w", Q, &f.id, Outcome::Succeeded(json!({"n": 1})))
            .await
            .unwrap();
    }
    // A unique job that succeeded and one that died, on another queue.
    let u = new_id(&q, &consume("01C/a.pdf")).await;
    q.fetch("w", "consume", 1, &keep).await.unwrap();
    q.report("w", "consume", &u, Outcome::Succeeded(json!(1)))
        .await
        .unwrap();
    let d = new_id(&q, &consume("01C/b.pdf")).await;
    q.fetch("w", "consume", 1, &keep).await.unwrap();
    q.report(
        "w",
        "consume",
        &d,
        failed(1, "x", ErrorClass::Permanent, None),
    )
    .await
    .unwrap();
    // A job cancelled while waiting: its id stays in the waiting list (no O(n) LREM) until a
    // fetch skips it, also once cleanup deleted the job.
    let c = new_id(&q, &ping()).await;
    q.cancel(&c).await.unwrap();
    assert!(
        t.keys().await.len() > 250,
        "job hashes exist before cleanup"
    );

    // Within retention: nothing goes.
    assert_eq!(q.maintain(Q, &keep).await.unwrap().cleaned, 0);
    assert_eq!(q.get(&got[0].id).await.unwrap().state, JobState::Succeeded);

    // Past retention: ≤ 100 per pass.
    let expired = WorkerOptions {
        retention: Duration::ZERO,
        dead_retention: Duration::ZERO,
        ..keep.clone()
    };
    let mut passes = Vec::new();
    loop {
        let n = q.maintain(Q, &expired).await.unwrap().cleaned;
        if n == 0 {
            break;
        }
        passes.push(n);
        assert!(passes.len() < 10, "cleanup does not end: {passes:?}");
    }
    assert_eq!(passes, [100, 100, 51]);
    assert!(q.fetch("w", Q, 10, &keep).await.unwrap().is_empty());
    assert_eq!(q.stats(Q).await.unwrap().waiting, 0);
    assert!(matches!(
        q.get(&got[0].id).await,
        Err(QueueError::NotFound(_))
    ));
    assert_eq!(q.stats(Q).await.unwrap().finished, 0);
    // The succeeded and the dead one.
    assert_eq!(q.maintain("consume", &expired).await.unwrap().cleaned, 2);

    // The unique key went with the job: an equal job is new.
    assert!(matches!(q.get(&u).await, Err(QueueError::NotFound(_))));
    q.unregister_worker("w", &info.queues).await.unwrap();
    let mut left = t.keys().await;
    left.sort();
    let k = q.keys();
    assert_eq!(
        left,
        [k.stats("consume"), k.stats(Q)],
        "only counters are left"
    );
    let again = new_id(&q, &consume("01C/a.pdf")).await;
    assert_ne!(again, u);
}

#[tokio::test]
async fn dead_jobs_are_kept_for_the_dead_retention() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let id = new_id(&q, &ping()).await;
    kill_all_waiting(&q, Q).await;
    let finished_gone = WorkerOptions {
        retention: Duration::ZERO,
        ..test_options(Duration::from_secs(30))
    };
    assert_eq!(q.maintain(Q, &finished_gone).await.unwrap().cleaned, 0);
    assert_eq!(q.get(&id).await.unwrap().state, JobState::Dead);
    let all_gone = WorkerOptions {
        dead_retention: Duration::ZERO,
        ..finished_gone
    };
    assert_eq!(q.maintain(Q, &all_gone).await.unwrap().cleaned, 1);
    assert!(matches!(q.get(&id).await, Err(QueueError::NotFound(_))));
}

// ---- prefix isolation ------------------------------------------------------------------------

#[tokio::test]
async fn two_prefixes_do_not_see_each_other_and_queue_keys_share_a_hash_tag() {
    let a = TestRedis::new();
    let b = TestRedis::new();
    let qa = a.queue().await;
    let qb = b.queue().await;
    let short = test_options(ms(150));

    let p = new_id(&qa, &ping()).await;
    let c = new_id(&qa, &consume("01D/x.pdf")).await;
    let th = new_id(
        &qa,
        &Job::Thumbnails {
            document: None,
            batch: None,
        },
    )
    .await;
    qa.fetch("wa", Q, 1, &short).await.unwrap();
    qa.fetch("wa", "consume", 1, &short).await.unwrap();
    qa.report(
        "wa",
        "consume",
        &c,
        failed(1, "x", ErrorClass::Transient, Some(ms(60_000))),
    )
    .await
    .unwrap();
    let info = WorkerInfo {
        id: "wa".into(),
        host: "test".into(),
        pid: 1,
        queues: vec![Q.into()],
        started_at_ms: now_ms(),
        last_seen_ms: now_ms(),
        running: vec![],
    };
    qa.register_worker(&info, &short).await.unwrap();

    // B sees nothing of A.
    for id in [&p, &c, &th] {
        assert!(matches!(qb.get(id).await, Err(QueueError::NotFound(_))));
        assert!(matches!(qb.cancel(id).await, Err(QueueError::NotFound(_))));
    }
    assert!(qb.list(None, None, 100).await.unwrap().is_empty());
    for queue in ["ping", "consume", "thumbnails"] {
        let s = qb.stats(queue).await.unwrap();
        assert_eq!((s.waiting, s.scheduled, s.running), (0, 0, 0), "{queue}");
        assert!(qb.fetch("wb", queue, 10, &short).await.unwrap().is_empty());
    }
    assert!(qb.workers().await.unwrap().is_empty());
    assert_eq!(qb.retry_all_dead(None).await.unwrap(), 0);
    // Its unique keys are its own.
    assert!(matches!(
        qb.enqueue(&consume("01D/x.pdf")).await.unwrap(),
        Enqueued::New(_)
    ));
    // B's maintenance does not recover A's expired lease; A's does.
    tokio::time::sleep(ms(400)).await;
    assert_eq!(qb.maintain(Q, &short).await.unwrap().recovered, 0);
    assert_eq!(qa.get(&p).await.unwrap().state, JobState::Running);
    assert_eq!(maintain_until_recovery(&qa, Q, &short).await.recovered, 1);
    assert_eq!(qa.list(None, None, 100).await.unwrap().len(), 3);

    // Every key of a queue carries the hash tag `{<prefix>:<queue>}` right after the prefix.
    let keys = a.keys().await;
    assert!(keys.len() >= 8, "{keys:?}");
    let mut tagged = 0;
    for key in &keys {
        if key == &qa.keys().workers() || key.starts_with(&format!("{}:worker:", a.prefix)) {
            continue; // the instance-wide worker registry
        }
        let ok = ["ping", "consume", "thumbnails"]
            .iter()
            .any(|q| key.starts_with(&format!("{p}:{{{p}:{q}}}:", p = a.prefix)));
        assert!(ok, "{key} lacks its queue's hash tag");
        tagged += 1;
    }
    assert!(tagged >= 6, "{keys:?}");
    assert!(b.keys().await.iter().all(|k| !k.contains(&a.prefix)));
}

// ---- progress --------------------------------------------------------------------------------

#[tokio::test]
async fn progress_is_recorded_while_running_only() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = test_options(Duration::from_secs(30));
    let id = new_id(&q, &ping()).await;
    let p = Progress {
        done: 3,
        total: 10,
        message: "page 3".into(),
    };
    // Not running yet: ignored.
    q.progress(Q, &id, &p).await.unwrap();
    assert_eq!(q.get(&id).await.unwrap().progress, Progress::default());
    take(&q, "w", Q, &id, &opts).await;
    q.progress(Q, &id, &p).await.unwrap();
    assert_eq!(q.get(&id).await.unwrap().progress, p);
    q.report("w", Q, &id, Outcome::Succeeded(json!(1)))
        .await
        .unwrap();
    // A late write after the end changes nothing.
    let late = Progress {
        done: 9,
        ..p.clone()
    };
    q.progress(Q, &id, &late).await.unwrap();
    let r = q.get(&id).await.unwrap();
    assert_eq!((r.state, r.progress), (JobState::Succeeded, p));
}
