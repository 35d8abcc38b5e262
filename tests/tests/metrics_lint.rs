//! Metric names and help texts pass `promtool check metrics` (Prometheus' own linter), on a real
//! worker's `/metrics` after it ran jobs, so the names the alert rules and the dashboard use are
//! valid. promtool comes with Debian's `prometheus` package (scripts/check-deploy.sh installs it;
//! scripts/test.sh runs that first).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use paperboy_shared::job::Job;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::{WorkerBuilder, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_metrics_pass_promtool() {
    let r = TestRedis::new();
    let q = r.queue().await;
    let w = WorkerBuilder::new(&r.url, &r.prefix).spawn();
    w.wait_registered(&q, Duration::from_secs(20)).await;
    let id = q
        .enqueue(&Job::Ping {
            sleep_ms: 0,
            fail: None,
        })
        .await
        .unwrap()
        .id()
        .to_string();
    eventually("the ping to finish", Duration::from_secs(20), || async {
        q.get(&id).await.ok()?.state.is_terminal().then_some(())
    })
    .await;
    let (code, body) = w.http_get("/metrics").expect("/metrics answers");
    assert_eq!(code, 200);
    assert!(
        body.contains("paperboy_jobs_succeeded_total{kind=\"ping\"} 1"),
        "{body}"
    );
    assert!(body.contains("paperboy_scheduler_leader 1"), "{body}");

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed: apt install --no-install-recommends prometheus (scripts/check-deploy.sh does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}"
    );
}
