//! The queue guarantees with real `paperboy-worker` processes: killed, stopped, restarted, cut
//! off from Redis. Each test has its own key prefix (or its own redis-server).
//!
//! Needs the binary built first: `cargo build -p paperboy-worker`.

use std::time::Duration;

use paperboy_shared::ErrorClass;
use paperboy_shared::job::{Job, JobKind};
use paperboy_shared::queue::{Enqueued, JobRecord, JobState, Queue};
use paperboy_tests::redis::{RedisServer, TestRedis};
use paperboy_tests::worker::{WorkerBuilder, WorkerProcess, eventually};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ping(sleep_ms: u64) -> Job {
    Job::Ping {
        sleep_ms,
        fail: None,
    }
}

async fn enqueue(q: &Queue, job: &Job) -> String {
    match q.enqueue(job).await.expect("enqueue") {
        Enqueued::New(id) => id,
        e => panic!("expected a new job, got {e:?}"),
    }
}

/// Waits until job `id` is in `state`.
async fn wait_state(q: &Queue, id: &str, state: JobState, timeout: Duration) -> JobRecord {
    let what = format!("job {id} to be {state}");
    eventually(&what, timeout, || async {
        q.get(id).await.ok().filter(|r| r.state == state)
    })
    .await
}

/// The pid inside a worker id `host:pid:random`.
fn pid_of(worker_id: &str) -> u32 {
    worker_id
        .split(':')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("worker id {worker_id:?} is not host:pid:random"))
}

/// The pid of the process that ran a ping job (from its result).
fn result_pid(r: &JobRecord) -> u32 {
    r.result
        .as_ref()
        .and_then(|v| v["pid"].as_u64())
        .unwrap_or_else(|| panic!("ping result without a pid: {:?}", r.result)) as u32
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Spawns a worker and waits until it registered.
async fn started(q: &Queue, b: &WorkerBuilder) -> WorkerProcess {
    let w = b.spawn();
    w.wait_registered(q, secs(20)).await;
    w
}

// ---- at least once ---------------------------------------------------------------------------

#[tokio::test]
async fn a_sigkilled_workers_job_runs_again_on_another_worker_after_the_lease() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let b = WorkerBuilder::new(&t.url, &t.prefix).lease_secs(2);
    let mut first = started(&q, &b).await;
    let id = enqueue(&q, &ping(2000)).await;
    let r = wait_state(&q, &id, JobState::Running, secs(10)).await;
    assert_eq!(pid_of(r.worker.as_deref().unwrap()), first.pid);

    let second = started(&q, &b).await;
    first.kill();
    let killed_at = now_ms();

    let r = wait_state(&q, &id, JobState::Succeeded, secs(20)).await;
    assert_eq!(result_pid(&r), second.pid, "the second worker ran it");
    assert_eq!(pid_of(r.worker.as_deref().unwrap()), second.pid);
    assert_eq!((r.starts, r.recovered, r.attempts), (2, 1, 0));
    // Taken back only once the killed worker's lease (2 s, renewed every ~0.7 s, so ≥ 1.3 s
    // after the kill; 0.5 s leaves room for a late heartbeat on a loaded machine) ran out.
    let restarted = r.started_at_ms.unwrap();
    assert!(
        restarted >= killed_at + 500,
        "restarted {} ms after the kill: before the lease expired",
        restarted - killed_at
    );
    assert_eq!(q.counters("ping").await.unwrap().get("recovered"), Some(&1));
}

#[tokio::test]
async fn two_live_workers_run_every_job_exactly_once() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let concurrency = 2;
    let b = WorkerBuilder::new(&t.url, &t.prefix)
        .lease_secs(1)
        .concurrency(concurrency);
    let w1 = b.spawn();
    let w2 = b.spawn();
    w1.wait_registered(&q, secs(20)).await;
    w2.wait_registered(&q, secs(20)).await;

    let n = 24;
    let jobs: Vec<Job> = (0..n).map(|_| ping(150)).collect();
    let ids: Vec<String> = q
        .enqueue_many(&jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id().to_string())
        .collect();
    let records: Vec<JobRecord> = eventually("every job to succeed", secs(30), || async {
        let mut out = Vec::new();
        for id in &ids {
            let r = q.get(id).await.ok()?;
            if r.state != JobState::Succeeded {
                return None;
            }
            out.push(r);
        }
        Some(out)
    })
    .await;

    let mut per_worker: std::collections::HashMap<u32, Vec<(i64, i64)>> = Default::default();
    for r in &records {
        assert_eq!(
            (r.starts, r.recovered, r.attempts),
            (1, 0, 0),
            "job {} ran once",
            r.id
        );
        let pid = pid_of(r.worker.as_deref().unwrap());
        assert_eq!(result_pid(r), pid, "the recorded worker ran it");
        per_worker
            .entry(pid)
            .or_default()
            .push((r.started_at_ms.unwrap(), r.finished_at_ms.unwrap()));
    }
    assert_eq!(
        per_worker.len(),
        2,
        "both workers took jobs: {per_worker:?}"
    );
    // No worker ever ran more than `concurrency` jobs at once.
    for (pid, spans) in &per_worker {
        // The most runs at one moment is reached at some run's start.
        for (s, _) in spans {
            let overlapping = spans.iter().filter(|(s2, f2)| s2 <= s && s < f2).count();
            assert!(
                overlapping <= concurrency,
                "worker {pid} ran {overlapping} jobs at once"
            );
        }
    }
    let c = q.counters("ping").await.unwrap();
    assert_eq!(c.get("succeeded"), Some(&(n as u64)));
    assert_eq!(c.get("recovered"), None);
    assert_eq!(q.stats("ping").await.unwrap().running, 0);
}

#[tokio::test]
async fn a_job_longer_than_the_lease_is_not_stolen_from_a_live_worker() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let b = WorkerBuilder::new(&t.url, &t.prefix).lease_secs(2);
    let w1 = started(&q, &b).await;
    let id = enqueue(&q, &ping(5000)).await;
    let r = wait_state(&q, &id, JobState::Running, secs(10)).await;
    assert_eq!(pid_of(r.worker.as_deref().unwrap()), w1.pid);
    // An idle second worker runs maintenance every second for the whole job.
    let _w2 = started(&q, &b).await;
    let r = wait_state(&q, &id, JobState::Succeeded, secs(20)).await;
    assert_eq!(
        (r.starts, r.recovered),
        (1, 0),
        "2.5 lease lengths, never taken back"
    );
    assert_eq!(result_pid(&r), w1.pid);
    assert_eq!(q.counters("ping").await.unwrap().get("recovered"), None);
}

// ---- poison ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_job_whose_worker_is_killed_every_time_ends_dead_after_max_starts() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let max_starts = JobKind::Ping.policy().max_starts;
    let b = WorkerBuilder::new(&t.url, &t.prefix).lease_secs(1);
    let id = enqueue(&q, &ping(60_000)).await;
    // Each new worker takes the job back from the killed one (its maintenance), runs it, and
    // is killed in turn.
    for start in 1..=max_starts {
        let mut victim = started(&q, &b).await;
        let what = format!("start {start} of the job on pid {}", victim.pid);
        eventually(&what, secs(15), || async {
            let r = q.get(&id).await.ok()?;
            (r.state == JobState::Running && r.starts == start).then_some(())
        })
        .await;
        assert_eq!(
            pid_of(q.get(&id).await.unwrap().worker.as_deref().unwrap()),
            victim.pid
        );
        victim.kill();
    }
    // The next worker's maintenance sends it to dead instead of running it a fourth time.
    let _last = started(&q, &b).await;
    let r = wait_state(&q, &id, JobState::Dead, secs(15)).await;
    assert_eq!(r.starts, max_starts);
    assert_eq!(r.recovered, max_starts - 1);
    let e = r.errors.last().unwrap();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(
        e.message
            .contains(&format!("died {max_starts} times (poison job?)")),
        "{}",
        e.message
    );
}

// ---- retries ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_transient_failure_is_retried_with_backoff_until_max_attempts() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let _w = started(&q, &WorkerBuilder::new(&t.url, &t.prefix)).await;
    let policy = JobKind::Ping.policy();
    let id = enqueue(
        &q,
        &Job::Ping {
            sleep_ms: 0,
            fail: Some("transient".into()),
        },
    )
    .await;
    // Seen waiting for its retry, with a run_at in the future.
    let s = wait_state(&q, &id, JobState::Scheduled, secs(10)).await;
    assert!(s.attempts >= 1);
    let run_at = s.run_at_ms.expect("run_at of a scheduled job");
    let fail_at = s.errors.last().unwrap().at_ms;
    assert!(
        run_at > fail_at,
        "run_at {run_at} after the failure {fail_at}"
    );

    let r = wait_state(&q, &id, JobState::Dead, secs(20)).await;
    assert_eq!(r.attempts, policy.max_attempts);
    assert_eq!(r.starts, policy.max_attempts);
    assert_eq!(r.errors.len(), policy.max_attempts as usize);
    for (i, e) in r.errors.iter().enumerate() {
        assert_eq!(e.attempt, i as u32 + 1);
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(e.message, "ping asked to fail (transient)");
    }
    // Each retry waited at least the backoff (base · 2^(n-1), jitter ≥ −25 %).
    for (n, pair) in r.errors.windows(2).enumerate() {
        let min = (policy.backoff_base.as_millis() as f64 * 2f64.powi(n as i32) * 0.75) as i64;
        let gap = pair[1].at_ms - pair[0].at_ms;
        assert!(
            gap >= min,
            "retry {} after {gap} ms, backoff ≥ {min} ms",
            n + 1
        );
    }
    let c = q.counters("ping").await.unwrap();
    assert_eq!((c["failed"], c["retried"], c["dead"]), (3, 2, 1));
}

// ---- graceful stop ---------------------------------------------------------------------------

#[tokio::test]
async fn sigterm_lets_a_job_shorter_than_the_grace_finish_and_exits_0() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let b = WorkerBuilder::new(&t.url, &t.prefix).grace_secs(5);
    let mut w = started(&q, &b).await;
    let id = enqueue(&q, &ping(1500)).await;
    wait_state(&q, &id, JobState::Running, secs(10)).await;
    w.terminate();
    let status = w.wait_exit(secs(15)).await;
    assert_eq!(status.code(), Some(0), "clean stop:\n{}", w.log());
    let r = q.get(&id).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded, "finished within the grace");
    assert_eq!(result_pid(&r), w.pid);
    assert!(
        q.workers().await.unwrap().iter().all(|x| x.pid != w.pid),
        "unregistered"
    );
}

#[tokio::test]
async fn sigterm_gives_back_a_job_longer_than_the_grace_and_exits_non_zero() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let b = WorkerBuilder::new(&t.url, &t.prefix)
        .grace_secs(1)
        .lease_secs(30);
    let mut w = started(&q, &b).await;
    let id = enqueue(&q, &ping(3000)).await;
    wait_state(&q, &id, JobState::Running, secs(10)).await;
    w.terminate();
    let status = w.wait_exit(secs(15)).await;
    assert_ne!(status.code(), Some(0), "jobs were given back:\n{}", w.log());
    assert_eq!(status.code(), Some(3), "exit code 3 = jobs released");
    // Given back at once (the 30 s lease did not have to expire), the start not counted.
    let r = q.get(&id).await.unwrap();
    assert_eq!(r.state, JobState::Waiting);
    assert_eq!((r.starts, r.recovered), (0, 0));
    assert!(q.workers().await.unwrap().is_empty(), "unregistered");

    let other = started(&q, &b).await;
    let r = wait_state(&q, &id, JobState::Succeeded, secs(15)).await;
    assert_eq!(result_pid(&r), other.pid);
    assert_eq!(r.starts, 1);
}

#[tokio::test]
async fn a_second_sigterm_skips_the_rest_of_the_grace() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let b = WorkerBuilder::new(&t.url, &t.prefix).grace_secs(60);
    let mut w = started(&q, &b).await;
    let id = enqueue(&q, &ping(60_000)).await;
    wait_state(&q, &id, JobState::Running, secs(10)).await;
    w.terminate();
    // Still waiting for the job within its 60 s grace.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(w.is_running(), "stopped before the grace ended");
    let asked = std::time::Instant::now();
    w.terminate();
    let status = w.wait_exit(secs(10)).await;
    assert_eq!(status.code(), Some(3), "{}", w.log());
    assert!(asked.elapsed() < secs(10));
    let r = q.get(&id).await.unwrap();
    assert_eq!((r.state, r.starts), (JobState::Waiting, 0));
}

// ---- cancel ----------------------------------------------------------------------------------

#[tokio::test]
async fn cancelling_a_running_job_stops_it_on_its_worker() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let w = started(&q, &WorkerBuilder::new(&t.url, &t.prefix).lease_secs(1)).await;
    let id = enqueue(&q, &ping(30_000)).await;
    wait_state(&q, &id, JobState::Running, secs(10)).await;
    assert_eq!(q.cancel(&id).await.unwrap(), JobState::Running);
    // Learnt at the next heartbeat (a third of the lease), stopped at the handler's next check.
    let r = wait_state(&q, &id, JobState::Cancelled, secs(5)).await;
    assert_eq!(r.attempts, 0, "a cancel is not a failure");
    assert_eq!(pid_of(r.worker.as_deref().unwrap()), w.pid);
    assert_eq!(q.stats("ping").await.unwrap().running, 0);
    // The worker takes the next job.
    let next = enqueue(&q, &ping(0)).await;
    wait_state(&q, &next, JobState::Succeeded, secs(10)).await;
}

// ---- identity --------------------------------------------------------------------------------

#[tokio::test]
async fn workers_started_together_differ_and_a_quick_restart_takes_jobs_at_once() {
    let t = TestRedis::new();
    let q = t.queue().await;
    let b = WorkerBuilder::new(&t.url, &t.prefix).lease_secs(30);
    let mut a = b.spawn();
    let c = b.spawn();
    let ia = a.wait_registered(&q, secs(20)).await;
    let ic = c.wait_registered(&q, secs(20)).await;
    assert_ne!(ia.id, ic.id);
    assert_eq!(ia.host, ic.host);
    assert_eq!(pid_of(&ia.id), a.pid);
    assert_eq!(pid_of(&ic.id), c.pid);
    // `paperboy status --json` lists both, by these ids.
    let out = std::process::Command::new(paperboy_tests::worker::binary("paperboy"))
        .args(["status", "--json"])
        .env_clear()
        .env("PAPERBOY_REDIS_URL", &t.url)
        .env("PAPERBOY_REDIS_PREFIX", &t.prefix)
        .output()
        .expect("run paperboy status (cargo build -p paperboy)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let mut listed: Vec<&str> = v["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    listed.sort();
    let mut want = vec![ia.id.as_str(), ic.id.as_str()];
    want.sort();
    assert_eq!(listed, want);
    drop(c);

    // SIGKILL and start again at once: the new process is a new worker (its old lease, still
    // 30 s long, does not stand in its way) and runs a job right away.
    a.kill();
    let a2 = b.spawn();
    let i2 = a2.wait_registered(&q, secs(20)).await;
    assert_ne!(i2.id, ia.id);
    let enqueued = std::time::Instant::now();
    let id = enqueue(&q, &ping(0)).await;
    let r = wait_state(&q, &id, JobState::Succeeded, secs(10)).await;
    assert_eq!(result_pid(&r), a2.pid);
    assert!(
        enqueued.elapsed() < secs(5),
        "took {:?}: not at once",
        enqueued.elapsed()
    );
}

// ---- Redis outages ---------------------------------------------------------------------------

#[tokio::test]
async fn a_worker_rides_out_a_redis_restart() {
    let mut redis = RedisServer::start();
    let prefix = format!("pbtest:{}", ulid::Ulid::new());
    let q = Queue::connect(&redis.url(), &prefix).await.unwrap();
    let mut w = WorkerBuilder::new(&redis.url(), &prefix)
        .lease_secs(2)
        .spawn();
    w.wait_registered(&q, secs(20)).await;
    eventually("/readyz to answer 200", secs(10), || async {
        (w.http_get("/readyz")?.0 == 200).then_some(())
    })
    .await;
    let id = enqueue(&q, &ping(0)).await;
    wait_state(&q, &id, JobState::Succeeded, secs(10)).await;

    redis.stop();
    let (code, body) = eventually("/readyz to fail without Redis", secs(15), || async {
        w.http_get("/readyz").filter(|(c, _)| *c != 200)
    })
    .await;
    assert_eq!(code, 503);
    assert!(body.contains("redis"), "{body}");
    // Still running (and alive) a while later.
    tokio::time::sleep(secs(2)).await;
    assert!(w.is_running(), "the worker exited:\n{}", w.log());
    assert_eq!(w.http_get("/healthz").map(|r| r.0), Some(200));

    redis.restart();
    eventually("/readyz to answer 200 again", secs(20), || async {
        (w.http_get("/readyz")?.0 == 200).then_some(())
    })
    .await;
    // The restarted Redis is empty: the worker registers again and runs new jobs.
    let q = Queue::connect(&redis.url(), &prefix).await.unwrap();
    let id = enqueue(&q, &ping(0)).await;
    let r = wait_state(&q, &id, JobState::Succeeded, secs(20)).await;
    assert_eq!(result_pid(&r), w.pid);
    w.wait_registered(&q, secs(10)).await;
    assert!(w.is_running());
}

// ---- fencing ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_worker_frozen_past_its_lease_does_not_strand_the_job_it_takes_again() {
    // The worker is frozen (SIGSTOP: a VM pause, a stalled host) longer than its lease; its job
    // is taken back. When it thaws, its heartbeat learns the lease was lost and the same worker
    // may take the job again at once: the job must still end (no run stopped without a report
    // while the job stays "running").
    let t = TestRedis::new();
    let q = t.queue().await;
    let opts = paperboy_tests::redis::test_options(secs(1));
    let mut w = started(
        &q,
        &WorkerBuilder::new(&t.url, &t.prefix)
            .lease_secs(1)
            .concurrency(2),
    )
    .await;
    let id = enqueue(&q, &ping(1500)).await;
    wait_state(&q, &id, JobState::Running, secs(10)).await;
    w.signal("STOP");
    // This test is the sweeper: the frozen worker's lease runs out, the job goes back.
    let m = eventually(
        "the frozen worker's job to be taken back",
        secs(10),
        || async {
            let m = q.maintain("ping", &opts).await.ok()?;
            (m.recovered > 0).then_some(m)
        },
    )
    .await;
    assert_eq!(m.recovered, 1);
    w.signal("CONT");
    let r = wait_state(&q, &id, JobState::Succeeded, secs(15)).await;
    assert_eq!(result_pid(&r), w.pid);
    assert_eq!(r.recovered, 1);
    assert!(w.is_running());
}

#[tokio::test]
async fn a_job_running_through_a_redis_freeze_longer_than_the_lease_still_ends() {
    // Redis stops answering (SIGSTOP: connections stay open, data kept) for longer than the
    // lease: when it thaws, the worker's lease has expired in Redis' clock and its own
    // maintenance may take its job back while the job still runs. Whatever the order, the job
    // must end, at least once, and the worker must be ready again.
    let redis = RedisServer::start();
    let prefix = format!("pbtest:{}", ulid::Ulid::new());
    let q = Queue::connect(&redis.url(), &prefix).await.unwrap();
    let w = WorkerBuilder::new(&redis.url(), &prefix)
        .lease_secs(1)
        .spawn();
    w.wait_registered(&q, secs(20)).await;
    let id = enqueue(&q, &ping(2500)).await;
    wait_state(&q, &id, JobState::Running, secs(10)).await;
    redis.pause();
    let (code, _) = eventually(
        "/readyz to fail while Redis is frozen",
        secs(10),
        || async { w.http_get("/readyz").filter(|(c, _)| *c != 200) },
    )
    .await;
    assert_eq!(code, 503);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.resume();
    let r = wait_state(&q, &id, JobState::Succeeded, secs(20)).await;
    assert_eq!(result_pid(&r), w.pid);
    eventually("/readyz to answer 200 again", secs(20), || async {
        (w.http_get("/readyz")?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(q.stats("ping").await.unwrap().running, 0);
}

#[tokio::test]
async fn a_worker_started_before_redis_waits_for_it() {
    let mut redis = RedisServer::start();
    redis.stop();
    let prefix = format!("pbtest:{}", ulid::Ulid::new());
    let mut w = WorkerBuilder::new(&redis.url(), &prefix).spawn();
    let (code, body) = eventually("/readyz to fail without Redis", secs(10), || async {
        w.http_get("/readyz").filter(|(c, _)| *c != 200)
    })
    .await;
    assert_eq!(code, 503);
    assert!(body.contains("redis"), "{body}");
    tokio::time::sleep(secs(1)).await;
    assert!(w.is_running(), "gave up on Redis:\n{}", w.log());
    redis.restart();
    let q = Queue::connect(&redis.url(), &prefix).await.unwrap();
    w.wait_registered(&q, secs(20)).await;
    let id = enqueue(&q, &ping(0)).await;
    let r = wait_state(&q, &id, JobState::Succeeded, secs(10)).await;
    assert_eq!(result_pid(&r), w.pid);
}

#[tokio::test]
async fn sigterm_while_redis_is_frozen_still_ends_the_worker_in_bounded_time() {
    // Redis stops answering while a job runs past the grace: the worker cannot give the job
    // back (its lease brings it back later) but must still exit, non-zero, in bounded time.
    let redis = RedisServer::start();
    let prefix = format!("pbtest:{}", ulid::Ulid::new());
    let q = Queue::connect(&redis.url(), &prefix).await.unwrap();
    let mut w = WorkerBuilder::new(&redis.url(), &prefix)
        .lease_secs(2)
        .grace_secs(1)
        .spawn();
    w.wait_registered(&q, secs(20)).await;
    let id = enqueue(&q, &ping(60_000)).await;
    wait_state(&q, &id, JobState::Running, secs(10)).await;
    redis.pause();
    let asked = std::time::Instant::now();
    w.terminate();
    let status = w.wait_exit(secs(90)).await;
    let took = asked.elapsed();
    eprintln!("exited {status} after {took:?}");
    assert_eq!(status.code(), Some(3), "{}", w.log());
    redis.resume();
    assert!(took < secs(15), "took {took:?} to stop");
    // Its lease brings the job back.
    let opts = paperboy_tests::redis::test_options(secs(2));
    eventually("the job to come back", secs(10), || async {
        q.maintain("ping", &opts).await.ok()?;
        let r = q.get(&id).await.ok()?;
        (r.state == JobState::Waiting).then_some(())
    })
    .await;
}
