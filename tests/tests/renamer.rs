//! `renamer` end to end (spec §5.9–5.10, §8.3 F15, F17, F18, F60): documents planted in a
//! database (both engines) and a media folder, a real worker with a file name template; a dry
//! run touches nothing; a worker SIGKILLed at random points leaves every row pointing at files
//! that exist and loses no file; consume names new documents by the template.
//!
//! Needs `cargo build -p paperboy-worker -p paperboy` first.

mod files_common;

use std::collections::BTreeMap;
use std::time::Duration;

use files_common::{Archive, Plant, sha256_of};
use paperboy_shared::db::{NewMatchable, correspondents, documents};
use paperboy_shared::job::Job;
use paperboy_shared::media::Folder;
use paperboy_shared::queue::JobState;
use paperboy_tests::db::TestDb;
use paperboy_tests::worker::eventually;
use rand::Rng;

/// (filename, archive_filename) of every document, by id.
async fn names(a: &Archive) -> BTreeMap<i64, (Option<String>, Option<String>)> {
    let mut out = BTreeMap::new();
    for d in documents::list(&a.db, 0, 10_000).await.unwrap() {
        out.insert(d.id, (d.filename, d.archive_filename));
    }
    out
}

/// Every row names files that exist with their stored checksums, and no other file is left
/// in originals/ or archive/ (nothing lost, nothing doubled).
async fn assert_consistent(a: &Archive, expect_no_leftovers: bool) {
    let mut referenced = (Vec::new(), Vec::new());
    for d in documents::list(&a.db, 0, 10_000).await.unwrap() {
        let f = d.filename.clone().unwrap();
        let p = a.media.original(&f).unwrap();
        assert!(
            p.is_file(),
            "document {} names a missing original {f}",
            d.id
        );
        assert_eq!(sha256_of(&p), d.checksum, "document {} original {f}", d.id);
        referenced.0.push(f);
        if let Some(af) = &d.archive_filename {
            let p = a.media.archive(af).unwrap();
            assert!(
                p.is_file(),
                "document {} names a missing archive {af}",
                d.id
            );
            assert_eq!(
                Some(sha256_of(&p)),
                d.archive_checksum,
                "document {} archive",
                d.id
            );
            referenced.1.push(af.clone());
        }
    }
    if expect_no_leftovers {
        referenced.0.sort();
        referenced.1.sort();
        assert_eq!(
            a.files(Folder::Originals),
            referenced.0,
            "originals/ holds other files"
        );
        let mut archive = a.files(Folder::Archive);
        archive.retain(|f| f != "none/my_doc.pdf");
        assert_eq!(archive, referenced.1, "archive/ holds other files");
    }
}

async fn wait_for_names(a: &Archive, want: &BTreeMap<i64, (Option<String>, Option<String>)>) {
    eventually(
        "the renamer's batches to finish",
        Duration::from_secs(60),
        || async { (names(a).await == *want).then_some(()) },
    )
    .await;
}

fn n(s: &str) -> Option<String> {
    Some(s.to_string())
}

/// F15, F17, F18, F60: names from the template, counters for equal titles, archives beside
/// their originals, a foreign file never touched, old files and empty folders gone.
async fn renames_to_the_template(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let acme = {
        let mut tx = a.db.begin().await.unwrap();
        let id = correspondents::insert(&mut tx, &NewMatchable::named("Acme"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let my_doc = a.plant(Plant::pdf("my_doc", b"%PDF-my")).await;
    let q1 = a.plant(Plant::pdf("qwe", b"%PDF-q1")).await;
    let q2 = a.plant(Plant::pdf("qwe", b"%PDF-q2")).await;
    let jpeg = a
        .plant(Plant {
            mime: "image/jpeg",
            ext: "jpg",
            ..Plant::pdf("test", b"\xff\xd8\xffjpeg")
        })
        .await;
    let acme_doc = a
        .plant(Plant {
            correspondent: Some(acme),
            archive: None,
            ..Plant::pdf("invoice", b"%PDF-acme")
        })
        .await;
    // F18: a foreign file already at the archive's target.
    std::fs::create_dir_all(a.media.dir(Folder::Archive).join("none")).unwrap();
    std::fs::write(
        a.media.dir(Folder::Archive).join("none/my_doc.pdf"),
        b"foreign",
    )
    .unwrap();

    let env = [("PAPERBOY_FILENAME_FORMAT", "{correspondent}/{title}")];
    let _w = a.worker("renamer", &env);
    // A dry run lists and touches nothing.
    let before = names(&a).await;
    let files_before = a.files(Folder::Originals);
    let dry = a
        .run(&Job::Renamer {
            dry_run: true,
            batch: None,
        })
        .await;
    assert_eq!(dry.state, JobState::Succeeded, "{:?}", dry.errors);
    let moves = dry.result.unwrap()["moves"].as_array().unwrap().len();
    assert_eq!(moves, 5);
    assert_eq!(names(&a).await, before);
    assert_eq!(a.files(Folder::Originals), files_before);

    let r = a
        .run(&Job::Renamer {
            dry_run: false,
            batch: None,
        })
        .await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let mut want = BTreeMap::new();
    want.insert(my_doc, (n("none/my_doc.pdf"), n("none/my_doc_01.pdf")));
    want.insert(q1, (n("none/qwe.pdf"), n("none/qwe.pdf")));
    want.insert(q2, (n("none/qwe_01.pdf"), n("none/qwe_01.pdf")));
    want.insert(jpeg, (n("none/test.jpg"), n("none/test.pdf")));
    want.insert(acme_doc, (n("Acme/invoice.pdf"), None));
    wait_for_names(&a, &want).await;
    assert_consistent(&a, true).await;
    assert_eq!(
        std::fs::read(a.media.dir(Folder::Archive).join("none/my_doc.pdf")).unwrap(),
        b"foreign"
    );
    // No leftovers at the top level, no journal.
    assert!(a.files(Folder::Originals).iter().all(|f| f.contains('/')));
    assert_eq!(
        std::fs::read_dir(a.data().join("renamer"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );

    // Back to the default names: the folders they leave empty go, the roots stay.
    drop(_w);
    let _w = a.worker("renamer", &[]);
    a.run(&Job::Renamer {
        dry_run: false,
        batch: None,
    })
    .await;
    let back: BTreeMap<_, _> = want
        .keys()
        .map(|id| {
            let ext = if *id == jpeg { "jpg" } else { "pdf" };
            let arch = (*id != acme_doc).then(|| format!("{id:07}.pdf"));
            (*id, (Some(format!("{id:07}.{ext}")), arch))
        })
        .collect();
    wait_for_names(&a, &back).await;
    assert_consistent(&a, true).await;
    assert!(!a.media.dir(Folder::Originals).join("none").exists());
    assert!(!a.media.dir(Folder::Originals).join("Acme").exists());
    assert!(a.media.dir(Folder::Originals).is_dir());
}

/// A worker SIGKILLed at random points of renaming runs (the template flips between two
/// folders each round): after every kill every row names existing files with the right
/// content; a last complete run leaves exactly one file per name and an empty journal.
async fn killed_at_random_points_the_archive_stays_consistent(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let title = format!("doc {i}");
        let body = format!("%PDF-{i}");
        let arch = format!("%PDF-archive-{i}");
        ids.push(
            a.plant(Plant {
                archive: Some(arch.as_bytes()),
                ..Plant::pdf(&title, body.as_bytes())
            })
            .await,
        );
    }
    let mut rng = rand::rng();
    for round in 0..8 {
        let folder = if round % 2 == 0 {
            "A/{title}"
        } else {
            "B/{title}"
        };
        let mut w = a.worker("renamer", &[("PAPERBOY_FILENAME_FORMAT", folder)]);
        a.queue
            .enqueue(&Job::Renamer {
                dry_run: false,
                batch: None,
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..600))).await;
        w.kill();
        assert_consistent(&a, false).await;
    }
    // Let the leases of the killed workers' jobs run out, then one complete run.
    let _w = a.worker("renamer", &[("PAPERBOY_FILENAME_FORMAT", "C/{title}")]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.run(&Job::Renamer {
        dry_run: false,
        batch: None,
    })
    .await;
    let want: BTreeMap<_, _> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                *id,
                (
                    Some(format!("C/doc {i}.pdf")),
                    Some(format!("C/doc {i}.pdf")),
                ),
            )
        })
        .collect();
    wait_for_names(&a, &want).await;
    // Batches of the killed runs that come back late find nothing to do.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(names(&a).await, want);
    assert_consistent(&a, true).await;
    // A worker killed inside an atomic write may leave its temporary file; never an entry.
    let left: Vec<String> = std::fs::read_dir(a.data().join("renamer"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| n.starts_with(".media-") && n.ends_with(".part")),
        "journal entries left: {left:?}"
    );
}

/// Consume names a new document by the template; a second with the same title gets `_01`.
async fn consume_names_new_documents_by_the_template(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let _w = a.worker(
        "consume",
        &[("PAPERBOY_FILENAME_FORMAT", "{correspondent}/{title}")],
    );
    let src = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for (dir, text) in [("a", "first note"), ("b", "second note")] {
        let f = src.path().join(dir).join("note.txt");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, text).unwrap();
        let staged = paperboy_shared::staging::stage_into(
            &a.data().join(paperboy_shared::staging::STAGING_DIR),
            &f,
        )
        .unwrap();
        let r = a
            .run(&Job::Consume(paperboy_shared::job::ConsumeArgs {
                staged: staged.relative.clone(),
                original_filename: staged.original_filename.clone(),
                tags: vec![],
                source: None,
                ..Default::default()
            }))
            .await;
        assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
        ids.push(r.result.unwrap()["document_id"].as_i64().unwrap());
    }
    let got: Vec<_> = names(&a).await.into_values().collect();
    assert_eq!(
        got,
        [(n("none/note.txt"), None), (n("none/note_01.txt"), None)]
    );
    assert_eq!(
        std::fs::read(a.media.original("none/note_01.txt").unwrap()).unwrap(),
        b"second note"
    );
    assert_consistent(&a, true).await;
}

paperboy_tests::on_both_engines!(
    consume_names_new_documents_by_the_template,
    renames_to_the_template,
    killed_at_random_points_the_archive_stays_consistent,
);
