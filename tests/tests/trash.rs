//! `empty_trash` end to end on both engines: documents planted straight into a database and a
//! media folder, some in the trash for longer than the delay; a real worker; the intent files a
//! killed run leaves; `paperboy empty-trash --wait`.
//!
//! Needs `cargo build -p paperboy-worker -p paperboy` first.

mod files_common;

use files_common::{Archive, Plant};
use paperboy_shared::db::{documents, to_rfc3339};
use paperboy_shared::job::Job;
use paperboy_shared::media::Folder;
use paperboy_shared::queue::JobState;
use paperboy_tests::db::TestDb;
use paperboy_tests::worker::binary;
use sqlx::Executor;

const QUEUES: &str = "empty_trash,index";

/// Puts document `id` in the trash `days` days ago, with a note.
async fn trash_days_ago(a: &Archive, id: i64, days: i64) {
    let at = to_rfc3339(chrono::Utc::now() - chrono::Duration::days(days));
    for s in [
        format!("UPDATE documents SET deleted_at = '{at}' WHERE id = {id}"),
        format!("INSERT INTO notes (note, created, document_id) VALUES ('n', '{at}', {id})"),
    ] {
        a.db.pool.execute(sqlx::AssertSqlSafe(s)).await.unwrap();
    }
}

async fn count(a: &Archive, sql: String) -> i64 {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(&a.db.pool)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

fn files_of(id: i64) -> (String, String, String) {
    (
        format!("{id:07}.pdf"),
        format!("{id:07}.pdf"),
        format!("{id:07}.webp"),
    )
}

async fn only_expired_documents_go_with_their_files_and_rows(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let live = a.plant(Plant::pdf("live", b"%PDF-live")).await;
    let recent = a
        .plant(Plant::pdf("trashed yesterday", b"%PDF-recent"))
        .await;
    let old = a.plant(Plant::pdf("trashed long ago", b"%PDF-old")).await;
    trash_days_ago(&a, recent, 1).await;
    trash_days_ago(&a, old, 40).await;

    let _w = a.worker(QUEUES, &[]);
    let r = a.run(&Job::EmptyTrash {}).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let res = r.result.unwrap();
    assert_eq!(res["deleted"], 1, "{res}");
    assert_eq!(res["ids"], serde_json::json!([old]));
    assert_eq!(res["delay_days"], 30);

    assert!(documents::get(&a.db, old).await.unwrap().is_none());
    assert!(documents::get(&a.db, recent).await.unwrap().is_some());
    assert!(documents::get(&a.db, live).await.unwrap().is_some());
    assert_eq!(
        count(
            &a,
            format!("SELECT COUNT(*) FROM notes WHERE document_id = {old}")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &a,
            format!("SELECT COUNT(*) FROM notes WHERE document_id = {recent}")
        )
        .await,
        1
    );
    let (o, ar, t) = files_of(old);
    assert!(!a.files(Folder::Originals).contains(&o));
    assert!(!a.files(Folder::Archive).contains(&ar));
    assert!(!a.files(Folder::Thumbnails).contains(&t));
    for id in [live, recent] {
        let (o, ar, t) = files_of(id);
        assert!(a.files(Folder::Originals).contains(&o));
        assert!(a.files(Folder::Archive).contains(&ar));
        assert!(a.files(Folder::Thumbnails).contains(&t));
    }
    // Nothing left half-done.
    let intents = a.data().join("empty-trash");
    assert_eq!(std::fs::read_dir(&intents).unwrap().count(), 0);

    // A second run finds nothing; a delay of one day takes yesterday's.
    let r = a.run(&Job::EmptyTrash {}).await;
    assert_eq!(r.result.unwrap()["deleted"], 0);
    drop(_w);
    let _w = a.worker(QUEUES, &[("PAPERBOY_EMPTY_TRASH_DELAY", "0")]);
    let r = a.run(&Job::EmptyTrash {}).await;
    let res = r.result.unwrap();
    // 0 is raised to paperless's minimum of 1 day: yesterday's document (trashed 24 h ago,
    // a moment before the cutoff) goes.
    assert_eq!(res["delay_days"], 1, "{res}");
    assert_eq!(res["ids"], serde_json::json!([recent]));
    assert!(documents::get(&a.db, live).await.unwrap().is_some());
}

async fn a_trash_folder_keeps_the_files(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let old = a.plant(Plant::pdf("kept", b"%PDF-kept")).await;
    trash_days_ago(&a, old, 31).await;
    // A name already taken in the trash folder is not overwritten.
    let keep = a.dir.path().join("kept-files");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::write(keep.join(format!("{old:07}.pdf")), b"someone else's").unwrap();

    let _w = a.worker(
        QUEUES,
        &[("PAPERBOY_EMPTY_TRASH_DIR", keep.to_str().unwrap())],
    );
    let r = a.run(&Job::EmptyTrash {}).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert!(documents::get(&a.db, old).await.unwrap().is_none());
    let mut names: Vec<String> = std::fs::read_dir(&keep)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let n = format!("{old:07}");
    assert_eq!(
        names,
        [
            format!("{n} (1).pdf"),
            format!("{n} (2).pdf"),
            format!("{n}.pdf")
        ]
    );
    assert_eq!(
        std::fs::read(keep.join(format!("{n}.pdf"))).unwrap(),
        b"someone else's"
    );
    // The original and the archive version, byte for byte.
    let mut kept: Vec<Vec<u8>> = [1, 2]
        .iter()
        .map(|i| std::fs::read(keep.join(format!("{n} ({i}).pdf"))).unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, [b"%PDF-archive".to_vec(), b"%PDF-kept".to_vec()]);
    assert!(a.files(Folder::Originals).is_empty());
    assert!(a.files(Folder::Archive).is_empty());
}

/// What a run killed between its steps leaves behind (an intent file), the next run finishes:
/// row deleted but files still there → the files go; row still there → the whole deletion.
async fn a_run_finishes_what_a_killed_run_began(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let row_gone = a.plant(Plant::pdf("row gone", b"%PDF-a")).await;
    let row_there = a.plant(Plant::pdf("row there", b"%PDF-b")).await;
    let restored = a.plant(Plant::pdf("restored", b"%PDF-c")).await;
    for id in [row_gone, row_there, restored] {
        trash_days_ago(&a, id, 45).await;
    }
    let cutoff = to_rfc3339(chrono::Utc::now() - chrono::Duration::days(30));
    let intents = a.data().join("empty-trash");
    std::fs::create_dir_all(&intents).unwrap();
    for id in [row_gone, row_there, restored] {
        let (o, ar, _) = files_of(id);
        let intent = serde_json::json!({
            "id": id, "cutoff": cutoff, "originals": [o], "archives": [ar],
            "thumbnails": [id], "moved": false,
        });
        std::fs::write(intents.join(format!("{id}.json")), intent.to_string()).unwrap();
    }
    std::fs::write(intents.join("999.json"), b"{ torn").unwrap();
    a.db.pool
        .execute(sqlx::AssertSqlSafe(format!(
            "DELETE FROM documents WHERE id = {row_gone}"
        )))
        .await
        .unwrap();
    a.db.pool
        .execute(sqlx::AssertSqlSafe(format!(
            "UPDATE documents SET deleted_at = NULL WHERE id = {restored}"
        )))
        .await
        .unwrap();

    let _w = a.worker(QUEUES, &[]);
    let r = a.run(&Job::EmptyTrash {}).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let res = r.result.unwrap();
    assert_eq!(res["resumed"], 3, "{res}");
    assert_eq!(
        res["ids"],
        serde_json::json!([row_gone, row_there]),
        "{res}"
    );
    let (o, _, _) = files_of(restored);
    assert_eq!(a.files(Folder::Originals), [o]);
    assert_eq!(a.files(Folder::Archive).len(), 1);
    assert_eq!(a.files(Folder::Thumbnails).len(), 1);
    assert!(documents::get(&a.db, restored).await.unwrap().is_some());
    assert_eq!(std::fs::read_dir(&intents).unwrap().count(), 0);
}

async fn cli_empty_trash_waits_and_reports(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let old = a.plant(Plant::pdf("old", b"%PDF-cli")).await;
    trash_days_ago(&a, old, 60).await;
    let _w = a.worker(QUEUES, &[]);
    let out = std::process::Command::new(binary("paperboy"))
        .env_clear()
        .env("PAPERBOY_REDIS_URL", &a.redis.url)
        .env("PAPERBOY_REDIS_PREFIX", &a.redis.prefix)
        .args(["--json", "empty-trash", "--wait", "--timeout", "60"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Not a terminal: the summary line is for people; scripts read the JSON.
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["state"], "succeeded", "{line}");
    assert_eq!(line["result"]["deleted"], 1, "{line}");
    assert_eq!(line["result"]["ids"], serde_json::json!([old]), "{line}");
    assert!(documents::get(&a.db, old).await.unwrap().is_none());
}

paperboy_tests::on_both_engines!(
    only_expired_documents_go_with_their_files_and_rows,
    a_trash_folder_keeps_the_files,
    a_run_finishes_what_a_killed_run_began,
    cli_empty_trash_waits_and_reports,
);
