//! The consumption-folder watcher inside real `paperboy-worker` processes, against the real Redis:
//! files dropped into the folder become consume jobs exactly once, also with two workers on one
//! folder; ignored names and sub-folders stay; files a dead watcher had claimed come back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paperboy_shared::job::Job;
use paperboy_shared::queue::{JobRecord, Queue};
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::binary;

/// A folder to watch, a data folder, a private Redis prefix.
struct Setup {
    redis: TestRedis,
    dir: tempfile::TempDir,
}

/// A worker process, killed when dropped.
struct Worker(tokio::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("consume")).unwrap();
        Setup {
            redis: TestRedis::new(),
            dir,
        }
    }

    fn consume(&self) -> PathBuf {
        self.dir.path().join("consume")
    }

    fn worker(&self, extra: &[(&str, &str)]) -> Worker {
        let mut cmd = tokio::process::Command::new(binary("paperboy-worker"));
        cmd.args(["run", "--queues", "consume"])
            .env("PAPERBOY_REDIS_URL", &self.redis.url)
            .env("PAPERBOY_REDIS_PREFIX", &self.redis.prefix)
            .env("PAPERBOY_DATA_DIR", self.dir.path().join("data"))
            .env("PAPERBOY_MEDIA_ROOT", self.dir.path().join("media"))
            .env("PAPERBOY_CONSUMPTION_DIR", self.consume())
            .env("PAPERBOY_CONSUMER_STABILITY_DELAY", "0.5")
            .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
            .env("PAPERBOY_LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Worker(cmd.spawn().expect("start paperboy-worker"))
    }

    /// The worker's default SQLite database, migrated.
    async fn migrated_db(&self) -> (String, paperboy_shared::db::Db) {
        let url = format!(
            "sqlite://{}?mode=rwc",
            self.dir.path().join("data/paperboy.sqlite3").display()
        );
        std::fs::create_dir_all(self.dir.path().join("data")).unwrap();
        let db = paperboy_shared::db::Db::connect(&url).await.unwrap();
        paperboy_shared::db::migrate::migrate_latest(&db)
            .await
            .unwrap();
        (url, db)
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.consume().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// Every consume job of the instance, by the source file it came from.
async fn jobs_by_source(q: &Queue) -> HashMap<String, Vec<JobRecord>> {
    let mut out: HashMap<String, Vec<JobRecord>> = HashMap::new();
    for r in q.list(Some("consume"), None, 1000).await.unwrap() {
        if let Ok(Job::Consume(a)) = r.job() {
            out.entry(a.source.clone().unwrap_or_default())
                .or_default()
                .push(r);
        }
    }
    out
}

/// Polls until `n` distinct sources have jobs, or panics after `secs`.
async fn wait_for_sources(q: &Queue, n: usize, secs: u64) -> HashMap<String, Vec<JobRecord>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let jobs = jobs_by_source(q).await;
        if jobs.len() >= n {
            return jobs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} files became consume jobs within {secs} s: {:?}",
            jobs.len(),
            jobs.keys().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn remaining(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_dropped_file_becomes_one_consume_job_and_leaves_the_folder() {
    let s = Setup::new();
    // Present before the worker starts: the first scan takes it.
    s.write("early.txt", "early bird");
    s.write("._early.txt", "macOS resource fork");
    s.write("sub/nested.txt", "not recursive: stays");
    let _db = s.migrated_db().await;
    let _w = s.worker(&[]);
    let q = s.redis.queue().await;
    // Dropped while it runs: inotify wakes it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write("late.txt", "late bird");

    let jobs = wait_for_sources(&q, 2, 20).await;
    assert_eq!(
        jobs.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        ["early.txt", "late.txt"].map(String::from).into()
    );
    for (source, recs) in &jobs {
        assert_eq!(recs.len(), 1, "{source} enqueued {} times", recs.len());
        let Ok(Job::Consume(a)) = recs[0].job() else {
            panic!("not a consume job")
        };
        assert_eq!(&a.original_filename, source);
        assert!(a.staged.ends_with(&format!("/{source}")), "{}", a.staged);
        assert!(a.tags.is_empty());
    }
    // Give a wrong double-take a chance to show, then check the folder.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        jobs_by_source(&q)
            .await
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        2
    );
    assert_eq!(remaining(&s.consume()), ["._early.txt", "sub/nested.txt"]);
}

#[tokio::test]
async fn two_workers_on_one_folder_take_each_file_once() {
    let s = Setup::new();
    let _db = s.migrated_db().await;
    let _a = s.worker(&[]);
    let _b = s.worker(&[]);
    let q = s.redis.queue().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..20 {
        s.write(&format!("doc-{i:02}.txt"), &format!("document number {i}"));
    }
    let jobs = wait_for_sources(&q, 20, 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // All twenty consumed: none was refused as a duplicate of a double take.
    for (source, recs) in wait_all_terminal(&q, 60).await {
        assert_eq!(
            recs[0].state,
            paperboy_shared::queue::JobState::Succeeded,
            "{source}: {:?}",
            recs[0].errors
        );
    }
    let jobs_after = jobs_by_source(&q).await;
    assert_eq!(jobs_after.len(), 20);
    for (source, recs) in &jobs_after {
        assert_eq!(recs.len(), 1, "{source} enqueued {} times", recs.len());
    }
    assert_eq!(jobs.len(), 20);
    assert!(
        remaining(&s.consume()).is_empty(),
        "{:?}",
        remaining(&s.consume())
    );
}

#[tokio::test]
async fn recursive_polling_mode_and_files_claimed_by_a_dead_watcher() {
    let s = Setup::new();
    // A watcher died after claiming this file: the next one must put it back and take it.
    s.write(
        ".paperboy/01JDEADWATCHER000000000000/claimed.txt",
        "was claimed",
    );
    s.write("Bank/2024/statement.txt", "statement");
    s.write("@eaDir/thumb.txt", "synology junk: stays");
    // Sub-folders become tags: the watcher needs the schema.
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        s.dir.path().join("data/paperboy.sqlite3").display()
    );
    std::fs::create_dir_all(s.dir.path().join("data")).unwrap();
    let db = paperboy_shared::db::Db::connect(&db_url).await.unwrap();
    paperboy_shared::db::migrate::migrate_latest(&db)
        .await
        .unwrap();
    let _w = s.worker(&[
        ("PAPERBOY_CONSUMER_POLLING", "1"),
        ("PAPERBOY_CONSUMER_RECURSIVE", "true"),
        ("PAPERBOY_CONSUMER_SUBDIRS_AS_TAGS", "true"),
        ("PAPERBOY_DATABASE_URL", &db_url),
    ]);
    let q = s.redis.queue().await;
    let jobs = wait_for_sources(&q, 2, 20).await;
    assert!(jobs.contains_key("claimed.txt"), "{:?}", jobs.keys());
    assert_eq!(remaining(&s.consume()), ["@eaDir/thumb.txt"]);

    let Ok(Job::Consume(a)) = jobs["Bank/2024/statement.txt"][0].job() else {
        panic!("not a consume job")
    };
    let mut names = Vec::new();
    for id in &a.tags {
        names.push(
            paperboy_shared::db::tags::get(&db, *id)
                .await
                .unwrap()
                .unwrap()
                .name,
        );
    }
    assert_eq!(names, ["Bank", "2024"]);
    let Ok(Job::Consume(c)) = jobs["claimed.txt"][0].job() else {
        panic!("not a consume job")
    };
    assert!(c.tags.is_empty());
}

/// Polls until every job of the instance is terminal, or panics after `secs`.
async fn wait_all_terminal(q: &Queue, secs: u64) -> HashMap<String, Vec<JobRecord>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let jobs = jobs_by_source(q).await;
        if jobs.values().flatten().all(|r| r.state.is_terminal()) {
            return jobs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consume jobs not finished within {secs} s: {:?}",
            jobs.values()
                .flatten()
                .map(|r| (r.id.clone(), r.state))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_watched_file_is_consumed_and_a_refused_one_is_put_in_failed() {
    let s = Setup::new();
    let (_url, db) = s.migrated_db().await;
    let _w = s.worker(&[]);
    let q = s.redis.queue().await;
    s.write("notes.txt", "Meeting notes of 12.03.2024: nothing decided.");
    // Not a type paperboy takes (an ELF header).
    std::fs::write(
        s.consume().join("program.bin"),
        b"\x7fELF\x02\x01\x01\0binary",
    )
    .unwrap();
    wait_for_sources(&q, 2, 20).await;
    let jobs = wait_all_terminal(&q, 30).await;

    let ok = &jobs["notes.txt"][0];
    assert_eq!(
        ok.state,
        paperboy_shared::queue::JobState::Succeeded,
        "{ok:?}"
    );
    let id = ok.result.as_ref().unwrap()["document_id"].as_i64().unwrap();
    let doc = paperboy_shared::db::documents::get(&db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.original_filename.as_deref(), Some("notes.txt"));
    assert!(doc.content.contains("nothing decided"), "{:?}", doc.content);

    let bad = &jobs["program.bin"][0];
    assert_eq!(bad.state, paperboy_shared::queue::JobState::Dead, "{bad:?}");
    let msg = &bad.errors.last().unwrap().message;
    assert!(msg.contains("failed"), "{msg}");
    assert_eq!(remaining(&s.consume()), ["failed/program.bin"]);
    assert_eq!(
        std::fs::read(s.consume().join("failed/program.bin")).unwrap(),
        b"\x7fELF\x02\x01\x01\0binary"
    );
}
