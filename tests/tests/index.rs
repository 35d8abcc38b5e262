//! The full-text index end to end: real `paperboy-worker` processes on a private Redis prefix
//! and a fresh database (SQLite and PostgreSQL), searched through `paperboy-worker search`.
//!
//! - consume → visible in search; retag → the new tag is searchable; autocomplete and
//!   more-like-this on what was consumed;
//! - reindex builds a new generation and swaps the pointer; `--if-needed` does nothing on a
//!   current index;
//! - SIGKILL during a reindex: the old generation still answers, the pointer is unchanged, and
//!   the job, taken back after the lease, finishes on another worker;
//! - the writer lease: while someone else holds it no job writes; two workers serving `index`
//!   get through a burst of updates without ever meeting on the index writer lock;
//! - edits made outside paperboy (tag or correspondent renamed, type set, trashed, deleted)
//!   reach the index through `paperboy index update`.
//!
//! Needs `cargo build -p paperboy-worker` first.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paperboy_shared::db::{Db, NewDocument, NewTag, documents, migrate, tags};
use paperboy_shared::job::{ConsumeArgs, INDEX_PENDING, INDEX_QUEUE, Job, RetagArgs};
use paperboy_shared::queue::{JobRecord, JobState, LeaseOp, LeaseState, Queue};
use paperboy_shared::staging;
use paperboy_tests::db::TestDb;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::{WorkerBuilder, WorkerProcess, binary, eventually};
use serde_json::Value;

struct Archive {
    redis: TestRedis,
    queue: Queue,
    db: Db,
    db_url: String,
    dir: tempfile::TempDir,
}

impl Archive {
    async fn new(tdb: &TestDb) -> Archive {
        migrate::migrate_latest(&tdb.db).await.expect("migrate");
        let redis = TestRedis::new();
        let queue = redis.queue().await;
        Archive {
            queue,
            redis,
            db: tdb.db.clone(),
            db_url: tdb.url.clone(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn index_dir(&self) -> PathBuf {
        self.data().join("index")
    }

    /// A worker on `queues` sharing this archive's folders and database; lease 2 s.
    fn worker(&self, queues: &str) -> WorkerProcess {
        WorkerBuilder::new(&self.redis.url, &self.redis.prefix)
            .queues(queues)
            .concurrency(2)
            .lease_secs(2)
            .env("PAPERBOY_DATA_DIR", self.data().to_str().unwrap())
            .env(
                "PAPERBOY_MEDIA_ROOT",
                self.dir.path().join("media").to_str().unwrap(),
            )
            .env(
                "PAPERBOY_CONSUMPTION_DIR",
                self.dir.path().join("consume").to_str().unwrap(),
            )
            .env("PAPERBOY_DATABASE_URL", &self.db_url)
            .env("PAPERBOY_OCR_MODE", "off")
            .spawn()
    }

    async fn wait(&self, id: &str, timeout: Duration) -> JobRecord {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.queue.get(id).await.unwrap();
            if r.state.is_terminal() {
                return r;
            }
            assert!(Instant::now() < deadline, "job {id} did not end: {r:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    async fn run(&self, job: Job) -> Value {
        let id = self.queue.enqueue(&job).await.unwrap().id().to_string();
        let r = self.wait(&id, Duration::from_secs(120)).await;
        assert_eq!(r.state, JobState::Succeeded, "{job:?}: {:?}", r.errors);
        r.result.unwrap()
    }

    /// `paperboy-worker search --json ARGS`: (exit code, parsed stdout).
    fn search_raw(&self, args: &[&str]) -> (i32, Value, String) {
        let out = std::process::Command::new(binary("paperboy-worker"))
            .env_clear()
            .env("PAPERBOY_DATA_DIR", self.data())
            .env("PAPERBOY_LOG_LEVEL", "warn")
            .arg("search")
            .arg("--json")
            .args(args)
            .output()
            .expect("run paperboy-worker search");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), v, stderr)
    }

    /// Ids the query finds (sorted); None when the search fails (no index yet).
    fn search(&self, query: &str) -> Option<Vec<i64>> {
        let (code, v, _) = self.search_raw(&[query, "--limit", "10000"]);
        if code != 0 {
            return None;
        }
        let mut ids: Vec<i64> = v["results"]
            .as_array()?
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        Some(ids)
    }

    async fn until_found(&self, query: &str, want: &[i64]) {
        let what = format!("{query:?} to find {want:?}");
        eventually(&what, Duration::from_secs(30), || async {
            (self.search(query).as_deref() == Some(want)).then_some(())
        })
        .await;
    }

    fn generation(&self) -> String {
        let p: Value =
            serde_json::from_slice(&std::fs::read(self.index_dir().join("current.json")).unwrap())
                .unwrap();
        p["generation"].as_str().unwrap().to_string()
    }

    fn generations(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.index_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("gen-"))
            .collect();
        v.sort();
        v
    }

    async fn consume_text(&self, name: &str, text: &str) -> i64 {
        let src = self.dir.path().join(name);
        std::fs::write(&src, text).unwrap();
        let staged = staging::stage_into(&self.data().join(staging::STAGING_DIR), &src).unwrap();
        let res = self
            .run(Job::Consume(ConsumeArgs {
                staged: staged.relative.clone(),
                original_filename: staged.original_filename.clone(),
                tags: vec![],
                source: None,
                ..Default::default()
            }))
            .await;
        res["document_id"].as_i64().unwrap()
    }

    /// Rows straight into the database (no job, so no index update).
    async fn insert_docs(&self, from: usize, n: usize, word: &str, filler: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut tx = self.db.begin().await.unwrap();
        for i in from..from + n {
            let id = documents::insert(
                &mut tx,
                &NewDocument {
                    title: format!("{word} document {i}"),
                    content: format!("{word} {filler} number{i}"),
                    mime_type: "text/plain".into(),
                    checksum: format!("{i:064x}"),
                    created: "2024-05-01".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            ids.push(id);
        }
        tx.commit().await.unwrap();
        ids
    }
}

fn path_exists(p: &Path) -> bool {
    p.exists()
}

async fn consume_and_retag_are_visible_in_search(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let _w = a.worker("all");
    let id = a
        .consume_text(
            "widgets.txt",
            "Invoice for blue widgets from the ACME Corporation, total 120 EUR",
        )
        .await;
    a.until_found("widgets", &[id]).await;
    a.until_found("\"blue widgets\" AND acme", &[id]).await;
    assert_eq!(a.search("widgets AND NOT invoice"), Some(vec![]));
    assert_eq!(a.search("created:[1990-01-01 to *]"), Some(vec![id]));

    // Snippet with the match highlighted, and the title.
    let (code, v, err) = a.search_raw(&["widgets"]);
    assert_eq!(code, 0, "{err}");
    let hit = &v["results"][0];
    assert_eq!(hit["title"], "widgets");
    let (s, e) = (
        hit["highlighted"][0][0].as_u64().unwrap() as usize,
        hit["highlighted"][0][1].as_u64().unwrap() as usize,
    );
    assert_eq!(&hit["snippet"].as_str().unwrap()[s..e], "widgets");

    // A second document, then retagging by a rule: the tag becomes searchable.
    let other = a
        .consume_text("bank.txt", "Monthly statement of your bank account")
        .await;
    a.until_found("statement", &[other]).await;
    let mut tx = a.db.begin().await.unwrap();
    tags::insert(
        &mut tx,
        &NewTag {
            name: "hardware".into(),
            matching_algorithm: 1,
            r#match: "widgets".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(a.search("tag:hardware"), Some(vec![]));
    a.run(Job::Retagger(RetagArgs {
        tags: true,
        ..Default::default()
    }))
    .await;
    a.until_found("tag:hardware", &[id]).await;

    // Autocomplete and more-like-this.
    let (code, v, err) = a.search_raw(&["--complete", "WID"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["words"][0]["word"], "widgets");
    let (code, v, err) = a.search_raw(&["--like", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"].as_i64() != Some(id)),
        "{v}"
    );
    // A broken query: exit 2 with the parser's message.
    let (code, _, err) = a.search_raw(&["title:(unclosed"]);
    assert_eq!(code, 2, "{err}");
    tdb.cleanup().await;
}

async fn reindex_swaps_in_a_new_generation(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let _w = a.worker("index");
    // No index yet: search says so (exit 1), reindex --if-needed builds one.
    let (code, _, err) = a.search_raw(&["anything"]);
    assert_eq!(code, 1, "{err}");
    let first = a.insert_docs(0, 30, "alpha", "text").await;
    let r = a.run(Job::IndexReindex { if_needed: true }).await;
    assert_eq!(r["documents"], 30, "{r}");
    let g1 = a.generation();
    assert_eq!(a.search("alpha").unwrap(), first);
    // Up to date: nothing done.
    let r = a.run(Job::IndexReindex { if_needed: true }).await;
    assert_eq!(r["up_to_date"], true, "{r}");
    assert_eq!(a.generation(), g1);

    let second = a.insert_docs(100, 20, "beta", "text").await;
    assert_eq!(a.search("beta"), Some(vec![]), "rows alone are not indexed");
    let r = a.run(Job::IndexReindex { if_needed: false }).await;
    assert_eq!(r["documents"], 50, "{r}");
    let g2 = a.generation();
    assert_ne!(g1, g2);
    assert_eq!(
        a.generations(),
        std::slice::from_ref(&g2),
        "the old generation is removed"
    );
    assert_eq!(a.search("beta").unwrap(), second);
    assert_eq!(a.search("alpha").unwrap(), first);

    // Updates by id: a deleted row leaves the index, an unknown id is harmless.
    let gone = first[0];
    sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(gone)
        .execute(&a.db.pool)
        .await
        .unwrap();
    let r = a
        .run(Job::IndexUpdate {
            ids: vec![gone, 999_999],
        })
        .await;
    assert_eq!(r["removed"], 2, "{r}");
    assert_eq!(a.search("alpha").unwrap(), first[1..].to_vec());

    // Optimize merges to one segment and keeps the documents.
    let r = a.run(Job::IndexOptimize {}).await;
    assert_eq!(r["segments_after"], 1, "{r}");
    assert_eq!(a.search("beta").unwrap(), second);
    tdb.cleanup().await;
}

async fn a_reindex_killed_midway_leaves_the_old_index_answering(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let mut w1 = a.worker("index");
    let old = a.insert_docs(0, 5, "alpha", "short").await;
    a.run(Job::IndexReindex { if_needed: false }).await;
    let g1 = a.generation();
    // Enough rows that the rebuild takes a while (debug build).
    let filler = "lorem ipsum dolor sit amet consectetur ".repeat(60);
    let mut new = Vec::new();
    for chunk in 0..8 {
        new.extend(
            a.insert_docs(1000 + chunk * 1000, 1000, "beta", &filler)
                .await,
        );
    }
    let id = a
        .queue
        .enqueue(&Job::IndexReindex { if_needed: false })
        .await
        .unwrap()
        .id()
        .to_string();
    // SIGKILL once it has indexed some rows but not swapped.
    eventually(
        "the reindex to be half way",
        Duration::from_secs(60),
        || async {
            let r = a.queue.get(&id).await.ok()?;
            assert!(
                !r.state.is_terminal(),
                "the reindex ended before the kill: {r:?}"
            );
            (r.state == JobState::Running && r.progress.done >= 500).then_some(())
        },
    )
    .await;
    w1.kill();
    assert_eq!(a.generation(), g1, "the pointer did not move");
    assert_eq!(a.search("alpha").unwrap(), old, "the old index answers");
    assert_eq!(a.search("beta"), Some(vec![]));
    assert!(
        a.generations().len() >= 2,
        "the half-built generation is beside the live one: {:?}",
        a.generations()
    );
    // Another worker takes the job back after the lease and finishes it.
    let _w2 = a.worker("index");
    let r = a.wait(&id, Duration::from_secs(300)).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert_ne!(a.generation(), g1);
    assert_eq!(a.generations(), [a.generation()], "leftovers removed");
    assert_eq!(a.search("beta").unwrap().len(), new.len());
    assert!(!path_exists(&a.index_dir().join(&g1)));
    tdb.cleanup().await;
}

async fn the_writer_lease_keeps_one_writer_across_workers(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let docs = a.insert_docs(0, 40, "gamma", "text").await;
    // Someone else holds the writer lease: no worker may write.
    let held = a
        .queue
        .lease(
            INDEX_QUEUE,
            "writer",
            "test-holder",
            Duration::from_secs(60),
            LeaseOp::Acquire,
        )
        .await
        .unwrap();
    assert!(matches!(held, LeaseState::Held(_)), "{held:?}");
    let w1 = a.worker("index");
    let w2 = a.worker("index");
    w1.wait_registered(&a.queue, Duration::from_secs(10)).await;
    w2.wait_registered(&a.queue, Duration::from_secs(10)).await;
    let id = a
        .queue
        .enqueue(&Job::IndexReindex { if_needed: false })
        .await
        .unwrap()
        .id()
        .to_string();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let r = a.queue.get(&id).await.unwrap();
    assert!(!r.state.is_terminal(), "{r:?}");
    assert!(
        !a.index_dir().join("current.json").exists(),
        "nothing was written while the lease was held elsewhere"
    );
    assert!(
        r.errors.iter().any(|e| e.message.contains("busy")),
        "the job says why it waits: {:?}",
        r.errors
    );
    let released = a
        .queue
        .lease(
            INDEX_QUEUE,
            "writer",
            "test-holder",
            Duration::from_secs(60),
            LeaseOp::Release,
        )
        .await
        .unwrap();
    assert_eq!(released, LeaseState::Released(true));
    let r = a.wait(&id, Duration::from_secs(120)).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert_eq!(a.search("gamma").unwrap(), docs);

    // A burst of updates on both workers: all succeed, none ever met another writer on the
    // index's own lock (a second IndexWriter on the folder fails with LockBusy).
    let more = a.insert_docs(500, 40, "delta", "text").await;
    let jobs: Vec<Job> = more
        .iter()
        .map(|id| Job::IndexUpdate { ids: vec![*id] })
        .collect();
    let ids: Vec<String> = a
        .queue
        .enqueue_many(&jobs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id().to_string())
        .collect();
    let mut workers = std::collections::BTreeSet::new();
    let mut terms = Vec::new();
    for id in &ids {
        let r = a.wait(id, Duration::from_secs(180)).await;
        assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
        for e in &r.errors {
            assert!(
                !e.message.to_lowercase().contains("lock"),
                "two writers met: {}",
                e.message
            );
        }
        workers.insert(r.worker.clone());
        terms.push(r.result.as_ref().unwrap()["term"].as_u64().unwrap());
    }
    assert_eq!(a.search("delta").unwrap(), more);
    // Every job held its own lease term: no two writes shared one.
    let mut sorted = terms.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), terms.len(), "{terms:?}");
    assert!(!workers.is_empty());
    tdb.cleanup().await;
}

/// `paperboy index update …` through the CLI, waiting for its jobs.
fn cli_index_update(a: &Archive, args: &[&str]) {
    let out = std::process::Command::new(binary("paperboy"))
        .env_clear()
        .env("PAPERBOY_REDIS_URL", &a.redis.url)
        .env("PAPERBOY_REDIS_PREFIX", &a.redis.prefix)
        .env("PAPERBOY_DATABASE_URL", &a.db_url)
        .env("PAPERBOY_DATA_DIR", a.data())
        .args(["index", "update", "--wait", "--timeout", "60"])
        .args(args)
        .output()
        .expect("run paperboy index update");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "index update {args:?}: {stderr}"
    );
}

async fn sql(a: &Archive, q: &'static str, id: i64) {
    sqlx::query(q).bind(id).execute(&a.db.pool).await.unwrap();
}

/// Every way a document changes reaches the index: consume and retag queue their own updates
/// (above); edits made outside paperboy (a tag or correspondent renamed, a document type set,
/// a document trashed or deleted) through `paperboy index update`.
async fn every_kind_of_change_reaches_the_index(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let _w = a.worker("all");
    let id = a
        .consume_text(
            "hooli.txt",
            "Quarterly invoice from Hooli for cloud storage",
        )
        .await;
    a.until_found("quarterly", &[id]).await;
    let others = a.insert_docs(0, 3, "spare", "text").await;
    let spare: Vec<String> = others.iter().map(|i| i.to_string()).collect();
    let spare: Vec<&str> = spare.iter().map(String::as_str).collect();
    cli_index_update(&a, &spare);
    assert_eq!(a.search("spare").unwrap(), others);

    // A tag added in SQL, then renamed: the documents carrying it follow.
    let tag: i64 = sqlx::query_scalar("INSERT INTO tags (name) VALUES ('bills') RETURNING id")
        .fetch_one(&a.db.pool)
        .await
        .unwrap();
    let mut tx = a.db.begin().await.unwrap();
    documents::add_tags(&mut tx, id, &[tag]).await.unwrap();
    documents::add_tags(&mut tx, others[0], &[tag])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    cli_index_update(&a, &["--tag", &tag.to_string()]);
    assert_eq!(a.search("tag:bills").unwrap(), vec![id, others[0]]);
    sql(&a, "UPDATE tags SET name = 'receipts' WHERE id = $1", tag).await;
    cli_index_update(&a, &["--tag", &tag.to_string()]);
    assert_eq!(a.search("tag:receipts").unwrap(), vec![id, others[0]]);
    assert_eq!(a.search("tag:bills"), Some(vec![]));

    // A correspondent set and renamed, a document type and a storage path set.
    let corr: i64 =
        sqlx::query_scalar("INSERT INTO correspondents (name) VALUES ('hooli') RETURNING id")
            .fetch_one(&a.db.pool)
            .await
            .unwrap();
    sqlx::query("UPDATE documents SET correspondent_id = $1 WHERE id = $2")
        .bind(corr)
        .bind(id)
        .execute(&a.db.pool)
        .await
        .unwrap();
    cli_index_update(&a, &["--correspondent", &corr.to_string()]);
    assert_eq!(a.search("correspondent:hooli").unwrap(), vec![id]);
    sql(
        &a,
        "UPDATE correspondents SET name = 'piedpiper' WHERE id = $1",
        corr,
    )
    .await;
    cli_index_update(&a, &["--correspondent", &corr.to_string()]);
    assert_eq!(a.search("correspondent:piedpiper").unwrap(), vec![id]);
    assert_eq!(a.search("correspondent:hooli"), Some(vec![]));
    let ty: i64 =
        sqlx::query_scalar("INSERT INTO document_types (name) VALUES ('statement') RETURNING id")
            .fetch_one(&a.db.pool)
            .await
            .unwrap();
    sqlx::query("UPDATE documents SET document_type_id = $1 WHERE id = $2")
        .bind(ty)
        .bind(others[1])
        .execute(&a.db.pool)
        .await
        .unwrap();
    cli_index_update(&a, &["--document-type", &ty.to_string()]);
    assert_eq!(a.search("type:statement").unwrap(), vec![others[1]]);

    // Trashed, then deleted for good: out of the index.
    let mut tx = a.db.begin().await.unwrap();
    documents::trash(&mut tx, others[0]).await.unwrap();
    tx.commit().await.unwrap();
    cli_index_update(&a, &[&others[0].to_string()]);
    assert_eq!(a.search("spare").unwrap(), vec![others[1], others[2]]);
    assert_eq!(a.search("tag:receipts").unwrap(), vec![id]);
    sql(&a, "DELETE FROM documents WHERE id = $1", others[2]).await;
    cli_index_update(&a, &[&others[2].to_string()]);
    assert_eq!(a.search("spare").unwrap(), vec![others[1]]);

    // Nothing named: a clear error, no job.
    let out = std::process::Command::new(binary("paperboy"))
        .env_clear()
        .env("PAPERBOY_REDIS_URL", &a.redis.url)
        .env("PAPERBOY_REDIS_PREFIX", &a.redis.prefix)
        .args(["index", "update"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tag"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tdb.cleanup().await;
}

/// Consume queues its ids through the pending set: a burst of documents becomes one commit, and
/// the flush jobs that find the set empty commit nothing.
async fn a_burst_of_pending_documents_is_committed_in_batches(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let first = a.insert_docs(0, 5, "gamma", "text").await;
    let _w = a.worker("index");
    a.run(Job::IndexReindex { if_needed: false }).await;
    assert_eq!(a.search("gamma").unwrap(), first);
    let burst = a.insert_docs(100, 40, "omega", "text").await;
    // What 40 consumes do: each id into the set, then a flush job each.
    a.queue
        .pending_add(INDEX_QUEUE, INDEX_PENDING, &burst)
        .await
        .unwrap();
    let jobs: Vec<Job> = (0..burst.len())
        .map(|_| Job::IndexUpdate { ids: vec![] })
        .collect();
    let ids: Vec<String> = a
        .queue
        .enqueue_many(&jobs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id().to_string())
        .collect();
    let (mut commits, mut updated) = (0, 0);
    for id in &ids {
        let r = a.wait(id, Duration::from_secs(120)).await;
        assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
        let v = r.result.unwrap();
        commits += v["commits"].as_u64().unwrap_or(0);
        updated += v["updated"].as_u64().unwrap();
    }
    assert_eq!(updated, burst.len() as u64, "each pending id once");
    assert_eq!(commits, 1, "one batch of 40 ids, one commit");
    assert_eq!(a.search("omega").unwrap(), burst);
    assert_eq!(
        a.queue
            .pending_len(INDEX_QUEUE, INDEX_PENDING)
            .await
            .unwrap(),
        0
    );
    tdb.cleanup().await;
}

paperboy_tests::on_both_engines!(
    consume_and_retag_are_visible_in_search,
    reindex_swaps_in_a_new_generation,
    a_reindex_killed_midway_leaves_the_old_index_answering,
    the_writer_lease_keeps_one_writer_across_workers,
    every_kind_of_change_reaches_the_index,
    a_burst_of_pending_documents_is_committed_in_batches,
);
