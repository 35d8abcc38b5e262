//! `sanity_check` end to end (spec §6, §8.4): documents planted straight into a database (both
//! engines) and a media folder, every kind of problem planted once, a real worker serving
//! `sanity_check` and `sanity_check_batch`; and `paperboy sanity-check --wait`'s exit code.
//!
//! Needs `cargo build -p paperboy-worker -p paperboy` first.

mod files_common;

use std::os::unix::fs::PermissionsExt;

use files_common::{Archive, Plant};
use paperboy_shared::db::{documents, files};
use paperboy_shared::job::Job;
use paperboy_shared::media::Folder;
use paperboy_shared::queue::JobState;
use paperboy_tests::db::TestDb;
use paperboy_tests::worker::binary;
use serde_json::Value;

const QUEUES: &str = "sanity_check,sanity_check_batch";

/// The messages the report holds for document `id`.
fn messages(report: &Value, id: i64) -> Vec<String> {
    report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] == id)
        .flat_map(|d| d["messages"].as_array().unwrap().clone())
        .map(|m| {
            format!(
                "{}: {}",
                m["level"].as_str().unwrap(),
                m["message"].as_str().unwrap()
            )
        })
        .collect()
}

fn global(report: &Value) -> Vec<String> {
    report["global"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_string())
        .collect()
}

/// Makes a file unreadable: mode 000, or (as root, who reads anything) a symbolic link loop
/// in its place.
fn make_unreadable(path: &std::path::Path) {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        std::fs::remove_file(path).unwrap();
        std::os::unix::fs::symlink(path, path).unwrap();
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
}

/// S1, S2, S16, S23: an empty archive, then one healthy document, with ignored litter.
async fn clean_archive_reports_nothing(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let _w = a.worker(QUEUES, &[]);
    let r = a.run(&Job::SanityCheck {}).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let report = r.result.unwrap();
    assert_eq!(report["total_issue_count"], 0, "{report}");
    assert_eq!(report["summary"], "No issues detected.");

    a.plant(Plant::pdf("healthy", b"%PDF-healthy")).await;
    for litter in [".DS_Store", "desktop.ini", "media.lock"] {
        std::fs::write(a.media.root().join(litter), b"x").unwrap();
    }
    std::fs::create_dir_all(a.media.dir(Folder::Originals).join("@eaDir/a")).unwrap();
    std::fs::write(
        a.media
            .dir(Folder::Originals)
            .join("@eaDir/a/SYNOINDEX_MEDIA_INFO"),
        b"x",
    )
    .unwrap();
    std::fs::write(a.media.dir(Folder::Originals).join("._x.pdf"), b"x").unwrap();
    let r = a.run(&Job::SanityCheck {}).await;
    let report = r.result.unwrap();
    assert_eq!(report["total_issue_count"], 0, "{report}");
    assert_eq!(report["documents_checked"], 1);
    assert!(!report["has_errors"].as_bool().unwrap());
}

/// S3–S15, S22 (as a fix: the ignore globs work), S24 and MD5 checksums of old imports.
async fn every_planted_problem_is_found(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let healthy = a.plant(Plant::pdf("healthy", b"%PDF-1")).await;
    let no_thumb = a.plant(Plant::pdf("no thumbnail", b"%PDF-2")).await;
    std::fs::remove_file(a.media.thumbnail(no_thumb)).unwrap();
    let bad_thumb = a.plant(Plant::pdf("unreadable thumbnail", b"%PDF-3")).await;
    make_unreadable(&a.media.thumbnail(bad_thumb));
    let no_orig = a.plant(Plant::pdf("no original", b"%PDF-4")).await;
    std::fs::remove_file(a.media.original(&format!("{no_orig:07}.pdf")).unwrap()).unwrap();
    let bad_orig = a.plant(Plant::pdf("unreadable original", b"%PDF-5")).await;
    make_unreadable(&a.media.original(&format!("{bad_orig:07}.pdf")).unwrap());
    let bad_sum = a.plant(Plant::pdf("bad checksum", b"%PDF-6")).await;
    let no_arch_name = a
        .plant(Plant::pdf("archive checksum, no name", b"%PDF-7"))
        .await;
    let no_arch_sum = a
        .plant(Plant::pdf("archive name, no checksum", b"%PDF-8"))
        .await;
    let no_arch = a.plant(Plant::pdf("archive missing", b"%PDF-9")).await;
    std::fs::remove_file(a.media.archive(&format!("{no_arch:07}.pdf")).unwrap()).unwrap();
    let bad_arch_sum = a
        .plant(Plant::pdf("archive checksum wrong", b"%PDF-10"))
        .await;
    let bad_arch = a.plant(Plant::pdf("archive unreadable", b"%PDF-11")).await;
    make_unreadable(&a.media.archive(&format!("{bad_arch:07}.pdf")).unwrap());
    let no_archive_at_all = a.plant(Plant::pdf("no archive at all", b"%PDF-12")).await;
    std::fs::remove_file(
        a.media
            .archive(&format!("{no_archive_at_all:07}.pdf"))
            .unwrap(),
    )
    .unwrap();
    let no_text = a
        .plant(Plant {
            content: "",
            ..Plant::pdf("no text", b"%PDF-13")
        })
        .await;
    let trashed = a.plant(Plant::pdf("in the trash", b"%PDF-14")).await;
    let md5_ok = a.plant(Plant::pdf("old import", b"%PDF-15")).await;
    let md5_bad = a.plant(Plant::pdf("old import, changed", b"%PDF-16")).await;
    let zeros = "0".repeat(64);
    {
        use sqlx::Executor;
        let real_md5 = {
            use md5::Digest;
            hex::encode(md5::Md5::digest(b"%PDF-15"))
        };
        let stmts = [
            format!("UPDATE documents SET checksum = '{zeros}' WHERE id = {bad_sum}"),
            format!("UPDATE documents SET archive_filename = NULL WHERE id = {no_arch_name}"),
            format!("UPDATE documents SET archive_checksum = NULL WHERE id = {no_arch_sum}"),
            format!("UPDATE documents SET archive_checksum = '{zeros}' WHERE id = {bad_arch_sum}"),
            format!(
                "UPDATE documents SET archive_checksum = NULL, archive_filename = NULL \
                 WHERE id = {no_archive_at_all}"
            ),
            format!("UPDATE documents SET checksum = '{real_md5}' WHERE id = {md5_ok}"),
            format!(
                "UPDATE documents SET checksum = '{}' WHERE id = {md5_bad}",
                "1".repeat(32)
            ),
        ];
        for s in stmts {
            a.db.pool.execute(sqlx::AssertSqlSafe(s)).await.unwrap();
        }
        let mut tx = a.db.begin().await.unwrap();
        documents::trash(&mut tx, trashed).await.unwrap();
        tx.commit().await.unwrap();
    }
    std::fs::write(a.media.dir(Folder::Originals).join("orphan.pdf"), b"x").unwrap();
    std::fs::write(a.media.dir(Folder::Originals).join("._x.pdf"), b"x").unwrap();

    let _w = a.worker(QUEUES, &[]);
    let r = a.run(&Job::SanityCheck {}).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let report = r.result.unwrap();
    let one = |id: i64| messages(&report, id);
    assert_eq!(one(healthy), Vec::<String>::new());
    assert_eq!(
        one(no_thumb),
        ["error: Thumbnail of document does not exist."]
    );
    assert_eq!(one(bad_thumb).len(), 1);
    assert!(one(bad_thumb)[0].starts_with("error: Cannot read thumbnail file of document: "));
    assert_eq!(
        one(no_orig),
        ["error: Original of document does not exist."]
    );
    assert!(one(bad_orig)[0].starts_with("error: Cannot read original file of document: "));
    let bad = one(bad_sum);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("Checksum mismatch. Stored: ") && bad[0].contains(&zeros),
        "{bad:?}"
    );
    assert_eq!(
        one(no_arch_name),
        ["error: Document has an archive file checksum, but no archive filename."]
    );
    assert_eq!(
        one(no_arch_sum),
        ["error: Document has an archive file, but its checksum is missing."]
    );
    assert_eq!(
        one(no_arch),
        ["error: Archived version of document does not exist."]
    );
    assert!(one(bad_arch_sum)[0].starts_with("error: Checksum mismatch of archived document."));
    assert!(one(bad_arch)[0].starts_with("error: Cannot read archive file of document: "));
    assert_eq!(one(no_archive_at_all), Vec::<String>::new());
    assert_eq!(one(no_text), ["info: Document contains no OCR data"]);
    assert_eq!(
        one(trashed),
        Vec::<String>::new(),
        "trash is checked, and clean"
    );
    assert_eq!(
        one(md5_ok),
        Vec::<String>::new(),
        "MD5 of an old import matches"
    );
    assert!(
        one(md5_bad)[0].contains("Checksum mismatch"),
        "{:?}",
        one(md5_bad)
    );

    // Orphans: the stray file, not the ignored AppleDouble one, not the files of the archive
    // version a row lost (no_arch_name's archive file is not referenced any more).
    let g = global(&report);
    assert!(
        g.iter()
            .any(|m| m.starts_with("Orphaned file in media dir: ")
                && m.ends_with("originals/orphan.pdf")),
        "{g:?}"
    );
    assert!(
        g.iter()
            .any(|m| m.ends_with(&format!("archive/{no_arch_name:07}.pdf"))),
        "{g:?}"
    );
    assert!(!g.iter().any(|m| m.contains("._x.pdf")), "{g:?}");
    assert_eq!(g.len(), 2, "{g:?}");
    let errors = [
        no_thumb,
        bad_thumb,
        no_orig,
        bad_orig,
        bad_sum,
        no_arch_name,
        no_arch_sum,
        no_arch,
        bad_arch_sum,
        bad_arch,
        md5_bad,
    ];
    assert_eq!(report["documents_with_errors"], errors.len());
    assert_eq!(report["documents_with_infos"], 1);
    assert_eq!(report["global_warnings"], 2);
    assert_eq!(report["total_issue_count"], errors.len() + 2);
    assert_eq!(
        report["summary"],
        format!(
            "{} document(s) with errors, 1 document(s) with infos, 2 global warning(s) found. Check logs for details.",
            errors.len()
        )
    );
    assert_eq!(
        report["documents_checked"].as_u64().unwrap() as usize,
        files::file_rows_after(&a.db, 0, 1000).await.unwrap().len()
    );
}

/// `paperboy sanity-check --wait`: the report grouped by document, exit 1 with errors, 0
/// without.
async fn cli_exit_code_follows_the_report(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let id = a.plant(Plant::pdf("gone", b"%PDF-gone")).await;
    let _w = a.worker(QUEUES, &[]);
    let cli = |args: &[&str]| {
        std::process::Command::new(binary("paperboy"))
            .env_clear()
            .env("PAPERBOY_REDIS_URL", &a.redis.url)
            .env("PAPERBOY_REDIS_PREFIX", &a.redis.prefix)
            .args(args)
            .output()
            .unwrap()
    };
    let ok = cli(&["document_sanity_checker", "--wait", "--timeout", "60"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("No issues detected."));
    std::fs::remove_file(a.media.original(&format!("{id:07}.pdf")).unwrap()).unwrap();
    let bad = cli(&["sanity-check", "--wait", "--timeout", "60"]);
    let out = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("#{id} gone"))
            && out.contains("Original of document does not exist."),
        "{out}"
    );
    assert!(
        out.contains("1 document(s) with errors found. Check logs for details."),
        "{out}"
    );
    let json = cli(&["sanity-check", "--wait", "--json", "--timeout", "60"]);
    assert_eq!(json.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["result"]["documents"][0]["id"], id);
}

paperboy_tests::on_both_engines!(
    clean_archive_reports_nothing,
    every_planted_problem_is_found,
    cli_exit_code_follows_the_report,
);
