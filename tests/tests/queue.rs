//! The Redis queue against a real Redis, one private prefix per test.

use std::time::Duration;

use paperboy_shared::ErrorClass;
use paperboy_shared::job::Job;
use paperboy_shared::queue::{Enqueued, ErrorRecord, JobState, Outcome, Reported};
use paperboy_tests::redis::{TestRedis, test_options};
use serde_json::json;

fn ping() -> Job {
    Job::Ping {
        sleep_ms: 0,
        fail: None,
    }
}

#[allow(dead_code)] // used by the tests that follow
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
