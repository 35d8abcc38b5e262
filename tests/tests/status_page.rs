//! The status page (`/status` on the worker's HTTP port) opened in headless Chromium, as a person
//! would: a real worker with a running job (with progress), a job waiting for its retry and a
//! dead one, and what the rendered page says about each.
//!
//! Needs `cargo build -p paperboy-worker` and Debian's `chromium` (scripts/services.sh
//! `ensure_tools` installs it).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use paperboy_shared::job::Job;
use paperboy_shared::queue::{JobState, Queue};
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::{WorkerBuilder, eventually};

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("headless Chromium is needed: apt install chromium (scripts/services.sh does)")
}

/// The page's DOM after Chromium loaded and laid it out.
fn open_in_chromium(url: &str, profile: &std::path::Path) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

/// The rendered text of the element with `id` (tags stripped, whitespace collapsed).
fn section(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let rest = &dom[start..];
    let end = if rest.starts_with("id=") && dom[..start].ends_with("<p ") {
        rest.find("</p>").unwrap()
    } else {
        rest.find("</table>").unwrap()
    };
    let mut text = String::new();
    let mut in_tag = false;
    for c in rest[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn state(q: &Queue, id: &str, want: JobState) {
    eventually(&format!("{id} {want}"), Duration::from_secs(20), || async {
        (q.get(id).await.ok()?.state == want).then_some(())
    })
    .await;
}

fn ping(sleep_ms: u64, fail: Option<&str>) -> Job {
    Job::Ping {
        sleep_ms,
        fail: fail.map(str::to_string),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_queues_workers_running_jobs_retries_and_the_dead_set() {
    let r = TestRedis::new();
    let q = r.queue().await;
    let w = WorkerBuilder::new(&r.url, &r.prefix)
        .queues("ping")
        .concurrency(3)
        .spawn();
    let info = w.wait_registered(&q, Duration::from_secs(20)).await;

    let dead = q
        .enqueue(&ping(0, Some("<b>boom</b>")))
        .await
        .unwrap()
        .id()
        .to_string();
    state(&q, &dead, JobState::Dead).await;
    let retrying = q
        .enqueue(&ping(0, Some("transient")))
        .await
        .unwrap()
        .id()
        .to_string();
    // Ping retries after 0.2 s and 0.4 s: it is dead after its 3 attempts by the time the page
    // is read (a retry's own section shows while one waits; see the unit tests).
    state(&q, &retrying, JobState::Dead).await;
    let long = q
        .enqueue(&ping(60_000, None))
        .await
        .unwrap()
        .id()
        .to_string();
    state(&q, &long, JobState::Running).await;
    eventually(
        "progress on the long job",
        Duration::from_secs(10),
        || async { (q.get(&long).await.ok()?.progress.done > 0).then_some(()) },
    )
    .await;

    let profile = tempfile::tempdir().unwrap();
    let dom = open_in_chromium(&format!("http://{}/status", w.addr()), profile.path());
    assert!(dom.contains("<title>paperboy status</title>"), "{dom}");

    // Queues: ping has one running, two dead.
    let queues = section(&dom, "queues");
    assert!(
        queues.contains("ping 0 0 1 2"),
        "the ping row reads waiting 0, scheduled 0, running 1, dead 2: {queues}"
    );
    // The worker, by id and pid, with its running job.
    let workers = section(&dom, "workers");
    assert!(workers.contains(&info.id), "{workers}");
    assert!(workers.contains(&info.pid.to_string()), "{workers}");
    // The running job with a progress bar and its numbers.
    assert!(dom.contains("<progress"), "a progress bar");
    let running = section(&dom, "running");
    assert!(
        running.contains(&long) && running.contains("/ 60000 sleeping"),
        "{running}"
    );
    // The dead jobs with their attempts and errors, escaped (shown as text).
    assert_eq!(section(&dom, "retrying"), "id=\"retrying\" None.");
    let dead_text = section(&dom, "dead");
    assert!(dead_text.contains(&dead), "{dead_text}");
    assert!(
        dead_text.contains(&retrying)
            && dead_text.contains("3 / 3")
            && dead_text.contains("ping asked to fail (transient)"),
        "{dead_text}"
    );
    assert!(
        dom.contains("&lt;b&gt;boom&lt;/b&gt;") && !dom.contains("<b>boom</b>"),
        "the error is shown as text, not markup"
    );
    // The scheduler's leader is this worker.
    assert!(dom.contains(&format!("scheduler leader: <span class=\"ok\">{}", info.id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_page_says_so() {
    // A worker pointed at a port where no Redis listens still serves the page.
    let w = WorkerBuilder::new("redis://:sekrit@127.0.0.1:1", "pb-status-test").spawn();
    let (code, body) = w.http_get("/status").expect("the page answers");
    assert_eq!(code, 503);
    assert!(body.contains("Cannot read the queues"), "{body}");
    assert!(!body.contains("sekrit"), "no password: {body}");
}
