//! The `paperboy` CLI as a user runs it: the real binary against the real Redis, each test with
//! its own key prefix and data folder.
//!
//! Needs the binary built first: `cargo build -p paperboy` (and `-p paperboy-worker` for the
//! end-to-end tests).

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use paperboy_shared::db::{Engine, NewDocument, documents, migrate, tags};
use paperboy_shared::job::{Job, JobKind};
use paperboy_shared::queue::{
    ErrorRecord, JobState, Outcome, Queue, Reported, WorkerInfo, WorkerOptions,
};
use paperboy_tests::db::TestDb;
use paperboy_tests::worker::binary;
use serde_json::Value;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// One test's private instance: a Redis prefix and a data folder.
struct Instance {
    prefix: String,
    data: tempfile::TempDir,
    queue: Queue,
}

impl Instance {
    async fn new() -> Instance {
        let prefix = format!("pbtest:cli:{}", ulid::Ulid::new());
        let queue = Queue::connect(REDIS_URL, &prefix)
            .await
            .expect("Redis at 127.0.0.1:6379 (start redis-server)");
        Instance {
            prefix,
            data: tempfile::tempdir().expect("temp dir"),
            queue,
        }
    }

    fn command(&self, bin: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(binary(bin));
        // Only our settings: nothing from the developer's environment leaks in.
        c.env_clear()
            .env("PAPERBOY_REDIS_URL", REDIS_URL)
            .env("PAPERBOY_REDIS_PREFIX", &self.prefix)
            .env("PAPERBOY_DATA_DIR", self.data.path().join("data"))
            .env("PAPERBOY_MEDIA_ROOT", self.data.path().join("media"))
            .env(
                "PAPERBOY_DATABASE_URL",
                format!(
                    "sqlite://{}?mode=rwc",
                    self.data.path().join("paperboy.sqlite3").display()
                ),
            )
            .kill_on_drop(true);
        c
    }

    /// Runs `paperboy ARGS`, within a generous safety bound.
    async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            self.command("paperboy").args(args).output(),
        )
        .await
        .unwrap_or_else(|_| panic!("paperboy {args:?} did not end within 60 s"))
        .expect("run paperboy");
        Run::from(out, args)
    }

    /// Runs `paperboy ARGS` with extra settings.
    async fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut c = self.command("paperboy");
        c.args(args).envs(env.iter().copied());
        let out = tokio::time::timeout(Duration::from_secs(60), c.output())
            .await
            .unwrap_or_else(|_| panic!("paperboy {args:?} did not end within 60 s"))
            .expect("run paperboy");
        Run::from(out, args)
    }

    /// Starts a `paperboy-worker` serving `queues` on this instance (killed when dropped).
    fn worker(&self, queues: &str) -> tokio::process::Child {
        self.command("paperboy-worker")
            .args(["--queues", queues])
            .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
            .env("PAPERBOY_LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start paperboy-worker")
    }

    fn staging(&self) -> PathBuf {
        self.data.path().join("data").join("staging")
    }

    async fn jobs(&self, queue: &str) -> Vec<paperboy_shared::queue::JobRecord> {
        self.queue.list(Some(queue), None, 100).await.unwrap()
    }
}

impl Drop for Instance {
    /// Deletes every key of this instance, also when the test failed.
    fn drop(&mut self) {
        let Ok(mut con) = redis::Client::open(REDIS_URL).and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut con)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut con);
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output, args: &[&str]) -> Run {
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "paperboy {args:?} → {}\n--- stdout\n{}--- stderr\n{}",
            r.code, r.stdout, r.stderr
        );
        r
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// `{"id":..,"status":..}` of an enqueue with `--json`.
    fn enqueued(&self) -> (String, String) {
        assert_eq!(self.code, 0, "{}", self.stderr);
        let v = self.json();
        (
            v["id"].as_str().expect("id").to_string(),
            v["status"].as_str().expect("status").to_string(),
        )
    }
}

fn worker_opts() -> WorkerOptions {
    WorkerOptions {
        lease: Duration::from_secs(30),
        retention: Duration::from_secs(3600),
        dead_retention: Duration::from_secs(3600),
    }
}

/// Makes job `id` of `queue` dead the way a worker would: fetch it, report a permanent failure.
async fn kill(q: &Queue, queue: &str, id: &str) {
    let worker = format!("test:{}:{}", std::process::id(), ulid::Ulid::new());
    let opts = worker_opts();
    q.register_worker(
        &WorkerInfo {
            id: worker.clone(),
            host: "test".into(),
            pid: std::process::id(),
            queues: vec![queue.to_string()],
            started_at_ms: chrono::Utc::now().timestamp_millis(),
            last_seen_ms: chrono::Utc::now().timestamp_millis(),
            running: vec![],
        },
        &opts,
    )
    .await
    .unwrap();
    let fetched = q.fetch(&worker, queue, 10, &opts).await.unwrap();
    assert!(
        fetched.iter().any(|f| f.id == id),
        "job {id} was not fetched"
    );
    for f in fetched {
        let outcome = Outcome::Failed {
            error: ErrorRecord {
                attempt: f.attempts + 1,
                at_ms: chrono::Utc::now().timestamp_millis(),
                class: paperboy_shared::ErrorClass::Permanent,
                message: "killed by the test".into(),
                worker: worker.clone(),
            },
            retry_in: None,
        };
        assert_eq!(
            q.report(&worker, queue, &f.id, outcome).await.unwrap(),
            Reported::Dead
        );
    }
    q.unregister_worker(&worker, &[queue.to_string()])
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_subcommand_is_a_usage_error() {
    let t = Instance::new().await;
    let r = t.run(&["frobnicate"]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("frobnicate"), "{}", r.stderr);
    let r = t.run(&["--help"]).await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("3  Redis unreachable"),
        "exit codes in --help"
    );
}

#[tokio::test]
async fn unreachable_redis_exits_3_without_the_password() {
    let t = Instance::new().await;
    for args in [
        &["--redis-url", "redis://:hunter2@127.0.0.1:1", "ping"][..],
        &["--redis-url", "redis://:hunter2@127.0.0.1:1", "status"][..],
    ] {
        let r = t.run(args).await;
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("cannot reach Redis at redis://:***@127.0.0.1:1"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("is redis-server running? set PAPERBOY_REDIS_URL")
        );
        assert!(
            !r.stderr.contains("hunter2"),
            "password leaked: {}",
            r.stderr
        );
    }
}

#[tokio::test]
async fn ping_enqueues_a_job_silently_or_as_json() {
    let t = Instance::new().await;
    // Not a terminal, no --json: silent success, as cron wants.
    let r = t.run(&["ping"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(t.jobs("ping").await.len(), 1);

    let r = t.run(&["ping", "--sleep", "1.5", "--json"]).await;
    let (id, status) = r.enqueued();
    assert_eq!(status, "new");
    let job = t.queue.get(&id).await.unwrap();
    assert_eq!(job.state, JobState::Waiting);
    assert_eq!(job.kind, "ping");
    assert_eq!(
        job.job().unwrap(),
        Job::Ping {
            sleep_ms: 1500,
            fail: None
        }
    );
    assert_eq!(t.jobs("ping").await.len(), 2);
}

#[tokio::test]
async fn waiting_without_a_worker_times_out_with_exit_4() {
    let t = Instance::new().await;
    let r = t.run(&["ping", "--wait", "--timeout", "1"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    let jobs = t.jobs("ping").await;
    assert_eq!(jobs.len(), 1);
    let id = &jobs[0].id;
    assert!(r.stderr.contains("goes on"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("paperboy jobs show {id}")),
        "{}",
        r.stderr
    );
    // The job is still there, waiting for a worker.
    assert_eq!(t.queue.get(id).await.unwrap().state, JobState::Waiting);

    // --json reports the same, as JSON.
    let r = t.run(&["ping", "--json", "--timeout", "0.2"]).await;
    assert_eq!(r.code, 4);
    let v = r.json();
    assert_eq!(v["state"], "waiting");
    assert_eq!(v["timed_out"], true);
}

#[tokio::test]
async fn a_unique_job_enqueued_twice_keeps_one_id() {
    let t = Instance::new().await;
    let (first, status) = t.run(&["thumbnails", "--json"]).await.enqueued();
    assert_eq!(status, "new");
    let (second, status) = t.run(&["document_thumbnails", "--json"]).await.enqueued();
    assert_eq!(status, "existing");
    assert_eq!(first, second);
    let r = t.run(&["thumbnails"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert_eq!(t.jobs("thumbnails").await.len(), 1);
}

#[tokio::test]
async fn jobs_show_describes_a_job() {
    let t = Instance::new().await;
    let (id, _) = t.run(&["ping", "--sleep", "2", "--json"]).await.enqueued();
    let r = t.run(&["jobs", "show", &id]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        id.as_str(),
        "kind:",
        "ping",
        "state:       waiting",
        r#"{"sleep_ms":2000}"#,
        "errors:      none",
    ] {
        assert!(r.stdout.contains(want), "{want:?} missing:\n{}", r.stdout);
    }
    let v = t.run(&["jobs", "show", &id, "--json"]).await.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["state"], "waiting");

    let list = t
        .run(&["--json", "jobs", "list", "--queue", "ping"])
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = t.run(&["jobs", "list"]).await;
    assert!(r.stdout.contains(&id), "{}", r.stdout);

    let r = t.run(&["jobs", "show", "01NOSUCHJOB000000000000000"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("01NOSUCHJOB"), "{}", r.stderr);
}

#[tokio::test]
async fn cancel_a_waiting_job() {
    let t = Instance::new().await;
    let (id, _) = t.run(&["ping", "--json"]).await.enqueued();
    let r = t.run(&["jobs", "cancel", &id]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = t.run(&["jobs", "show", &id]).await;
    assert!(r.stdout.contains("state:       cancelled"), "{}", r.stdout);
    assert_eq!(t.queue.get(&id).await.unwrap().state, JobState::Cancelled);
}

#[tokio::test]
async fn retry_dead_jobs_one_or_all() {
    let t = Instance::new().await;
    let (a, _) = t.run(&["ping", "--json"]).await.enqueued();
    kill(&t.queue, "ping", &a).await;
    assert_eq!(t.queue.get(&a).await.unwrap().state, JobState::Dead);

    let dead = t
        .run(&["jobs", "list", "--state", "dead", "--json"])
        .await
        .json();
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["id"], a.as_str());
    let r = t.run(&["jobs", "show", &a]).await;
    assert!(r.stdout.contains("killed by the test"), "{}", r.stdout);

    let r = t.run(&["jobs", "retry", &a]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(t.queue.get(&a).await.unwrap().state, JobState::Waiting);

    // Dead again, then back with --all-dead.
    kill(&t.queue, "ping", &a).await;
    let r = t
        .run(&["jobs", "retry", "--all-dead", "--queue", "ping", "--json"])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["retried"], 1);
    assert_eq!(t.queue.get(&a).await.unwrap().state, JobState::Waiting);
}

#[tokio::test]
async fn consume_of_a_missing_file_enqueues_nothing() {
    let t = Instance::new().await;
    let real = t.data.path().join("real.pdf");
    std::fs::write(&real, b"%PDF-1.4").unwrap();
    let missing = t.data.path().join("missing.pdf");
    let r = t
        .run(&["consume", real.to_str().unwrap(), missing.to_str().unwrap()])
        .await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(missing.to_str().unwrap()),
        "the message names the path: {}",
        r.stderr
    );
    assert!(t.jobs("consume").await.is_empty());
    // Not even the good file was staged.
    assert!(
        !t.staging().exists() || std::fs::read_dir(t.staging()).unwrap().next().is_none(),
        "nothing staged"
    );

    let r = t.run(&["consume", t.data.path().to_str().unwrap()]).await;
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    assert!(t.jobs("consume").await.is_empty());
}

#[tokio::test]
async fn consume_stages_a_copy_and_enqueues_a_job_per_file() {
    let t = Instance::new().await;
    let a = t.data.path().join("Invoice 2024-03.pdf");
    let b = t.data.path().join("notes.txt");
    std::fs::write(&a, b"%PDF-1.4 invoice bytes").unwrap();
    std::fs::write(&b, b"meeting notes").unwrap();
    let r = t
        .run(&[
            "document_consumer",
            "--json",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, src) in lines.iter().zip([&a, &b]) {
        assert_eq!(line["status"], "new");
        let job = t.queue.get(line["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(job.kind, JobKind::Consume.name());
        let Job::Consume(args) = job.job().unwrap() else {
            panic!("a consume job")
        };
        let name = src.file_name().unwrap().to_str().unwrap();
        assert_eq!(args.original_filename, name);
        let staged = t.staging().join(&args.staged);
        assert_eq!(staged.file_name().unwrap().to_str().unwrap(), name);
        assert_eq!(
            std::fs::read(&staged).unwrap(),
            std::fs::read(src).unwrap(),
            "the staged copy has the same bytes"
        );
    }
    // The originals stay where they were.
    assert!(a.exists() && b.exists());
}

#[tokio::test]
async fn status_and_settings_answer() {
    let t = Instance::new().await;
    t.run(&["ping"]).await;
    let r = t.run(&["status"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for q in ["ping", "consume", "thumbnails"] {
        assert!(r.stdout.contains(q), "{q} missing:\n{}", r.stdout);
    }
    let v = t.run(&["status", "--json"]).await.json();
    let ping = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "ping")
        .expect("ping queue");
    assert_eq!(ping["waiting"], 1);

    let r = t.run(&["settings"]).await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains(&t.prefix), "{}", r.stdout);
    let md = t.run(&["settings", "--markdown"]).await;
    assert!(md.stdout.starts_with("| setting |"), "{}", md.stdout);
    let v = t.run(&["settings", "--json"]).await.json();
    assert!(v.as_array().unwrap().len() > 10);
}

/// Stops a worker the way a supervisor does (SIGTERM) and waits for it.
async fn stop(mut worker: tokio::process::Child) {
    if let Some(pid) = worker.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let ended = tokio::time::timeout(Duration::from_secs(60), worker.wait()).await;
    assert!(
        ended.is_ok(),
        "the worker did not stop within 60 s of SIGTERM"
    );
}

#[tokio::test]
async fn ping_wait_round_trips_through_a_worker() {
    let t = Instance::new().await;
    let worker = t.worker("ping");
    let r = t.run(&["ping", "--wait", "--timeout", "50"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "", "not a terminal: nothing to say on success");

    let r = t.run(&["ping", "--wait", "--json", "--sleep", "0.3"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"]["pong"], true);
    assert_eq!(v["result"]["slept_ms"], 300);
    assert_eq!(v["timed_out"], false);
    stop(worker).await;
}

#[tokio::test]
async fn ping_wait_on_a_failing_job_exits_1_with_the_error() {
    let t = Instance::new().await;
    let worker = t.worker("ping");
    let r = t
        .run(&["ping", "--wait", "--timeout", "50", "--fail", "permanent"])
        .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("is dead"), "{}", r.stderr);
    assert!(
        r.stderr.contains("ping asked to fail (permanent)"),
        "{}",
        r.stderr
    );
    let dead = t
        .queue
        .list(Some("ping"), Some(JobState::Dead), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    stop(worker).await;
}

#[tokio::test]
async fn documents_list_and_show_read_the_database_on_both_engines() {
    let t = Instance::new().await;
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let db = TestDb::new(engine).await;
        migrate::migrate_latest(&db.db).await.unwrap();
        let mut tx = db.db.begin().await.unwrap();
        let mut ids = Vec::new();
        for (n, title) in ["ACME invoice 2024-03", "Bank statement"]
            .iter()
            .enumerate()
        {
            let id = documents::insert(
                &mut tx,
                &NewDocument {
                    title: title.to_string(),
                    content: "Invoice number 42 total 19.99 EUR".into(),
                    mime_type: "application/pdf".into(),
                    checksum: format!("{:064x}", n + 1),
                    created: "2024-03-01".into(),
                    page_count: Some(1),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            ids.push(id);
        }
        let tag = tags::get_or_create_by_name(&mut tx, "invoice")
            .await
            .unwrap();
        documents::add_tags(&mut tx, ids[0], &[tag]).await.unwrap();
        tx.commit().await.unwrap();

        let env = [("PAPERBOY_DATABASE_URL", db.url.as_str())];
        let list = t.run_with(&env, &["documents", "list", "--json"]).await;
        assert_eq!(list.code, 0, "{engine:?}: {}", list.stderr);
        let v = list.json();
        let got: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect();
        assert_eq!(got, ids, "{engine:?}");
        assert_eq!(v[0]["title"], "ACME invoice 2024-03");

        let page = t
            .run_with(
                &env,
                &[
                    "documents",
                    "list",
                    "--limit",
                    "1",
                    "--after",
                    &ids[0].to_string(),
                ],
            )
            .await;
        assert!(page.stdout.contains("Bank statement"), "{}", page.stdout);
        assert!(!page.stdout.contains("ACME"), "{}", page.stdout);

        let show = t
            .run_with(&env, &["documents", "show", &ids[0].to_string()])
            .await;
        assert_eq!(show.code, 0, "{}", show.stderr);
        for want in [
            "ACME invoice 2024-03",
            "2024-03-01",
            "invoice (#",
            "application/pdf",
            "Invoice number 42",
        ] {
            assert!(
                show.stdout.contains(want),
                "{engine:?}: {want:?} missing:\n{}",
                show.stdout
            );
        }
        let missing = t.run_with(&env, &["documents", "show", "999999"]).await;
        assert_eq!(missing.code, 1);
        assert!(
            missing.stderr.contains("no document with id 999999"),
            "{}",
            missing.stderr
        );
        db.cleanup().await;
    }

    // A SQLite file that does not exist is reported, not created.
    let nowhere = t.data.path().join("nowhere.sqlite3");
    let url = format!("sqlite://{}?mode=rwc", nowhere.display());
    let r = t
        .run_with(
            &[("PAPERBOY_DATABASE_URL", url.as_str())],
            &["documents", "list"],
        )
        .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no database at"), "{}", r.stderr);
    assert!(!nowhere.exists());
}

/// A fake worker: takes the next job of `queue` (within a safety bound) and ends it with `outcome`.
async fn answer_next(q: &Queue, queue: &str, outcome: Outcome) -> String {
    let worker = format!("fake:{}:{}", std::process::id(), ulid::Ulid::new());
    let opts = worker_opts();
    let now = chrono::Utc::now().timestamp_millis();
    q.register_worker(
        &WorkerInfo {
            id: worker.clone(),
            host: "fake".into(),
            pid: std::process::id(),
            queues: vec![queue.to_string()],
            started_at_ms: now,
            last_seen_ms: now,
            running: vec![],
        },
        &opts,
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        if let Some(f) = q.fetch(&worker, queue, 1, &opts).await.unwrap().pop() {
            break f;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {queue} job within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    q.report(&worker, queue, &job.id, outcome).await.unwrap();
    q.unregister_worker(&worker, &[queue.to_string()])
        .await
        .unwrap();
    job.id
}

#[tokio::test]
async fn consume_wait_prints_the_new_document_id() {
    let t = Instance::new().await;
    let file = t.data.path().join("scan.pdf");
    std::fs::write(&file, b"%PDF-1.4 scan").unwrap();
    let cli = t
        .command("paperboy")
        .args([
            "consume",
            "--wait",
            "--timeout",
            "50",
            file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = answer_next(
        &t.queue,
        "consume",
        Outcome::Succeeded(serde_json::json!({"document_id": 4242, "title": "scan"})),
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(60), cli.wait_with_output())
        .await
        .expect("paperboy consume --wait ends once the job is done")
        .unwrap();
    let r = Run::from(out, &["consume", "--wait"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "4242\n");
    assert_eq!(t.queue.get(&id).await.unwrap().state, JobState::Succeeded);
}
