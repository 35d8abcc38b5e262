//! `paperboy-bench corpus` on a temporary SQLite database and media root: counts, files,
//! matching algorithms, hierarchy, custom field types, trash, determinism.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use paperboy_shared::db::{
    CUSTOM_FIELD_TYPES, Db, correspondents, document_types, documents, extras, storage_paths, tags,
};
use sha2::{Digest, Sha256};

const DOCS: usize = 50;

fn sqlite_url(dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.join("paperboy.sqlite3").display()
    )
}

fn run_corpus(dir: &Path, seed: u64) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_paperboy-bench"))
        .args([
            "corpus",
            "--docs",
            &DOCS.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(["--batch", "20"])
        .args(["--database-url", &sqlite_url(dir)])
        .arg("--media-root")
        .arg(dir.join("media"))
        // Settings the test does not pass must not leak in from the environment.
        .env_remove("PAPERBOY_DATABASE_URL")
        .env_remove("PAPERBOY_MEDIA_ROOT")
        .env("PAPERBOY_DATA_DIR", dir.join("data"))
        .output()
        .expect("running paperboy-bench")
}

/// (id, checksum, title, filename) of every document, trash included.
async fn fingerprint(db: &Db) -> Vec<(i64, String, String, Option<String>)> {
    let ids = documents::ids_after_including_trash(db, 0, 10_000)
        .await
        .unwrap();
    let mut out = Vec::new();
    for id in ids {
        let d = documents::get(db, id).await.unwrap().unwrap();
        out.push((d.id, d.checksum, d.title, d.filename));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn corpus_of_fifty_documents() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_corpus(dir.path(), 7);
    assert!(
        out.status.success(),
        "corpus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| in the trash | 2 |"), "{table}");

    let db = Db::connect(&sqlite_url(dir.path())).await.unwrap();
    let ids = documents::ids_after_including_trash(&db, 0, 10_000)
        .await
        .unwrap();
    assert_eq!(ids.len(), DOCS);
    // Every 29th document from the 8th is in the trash: 2 of 50.
    assert_eq!(documents::count(&db).await.unwrap(), DOCS as i64 - 2);

    // Files: originals/0000042.<ext> with the recorded checksum, and a WebP thumbnail.
    let media = dir.path().join("media");
    let mut mimes = BTreeSet::new();
    let (mut text_pdfs, mut scanned_pdfs) = (0, 0);
    let mut trashed = 0;
    let mut tagged = 0;
    let (mut smallest, mut largest) = (u64::MAX, 0u64);
    for &id in &ids {
        let d = documents::get(&db, id).await.unwrap().unwrap();
        let name = d.filename.clone().expect("every document has a file");
        assert!(name.starts_with(&format!("{id:07}.")), "{name}");
        let bytes = std::fs::read(media.join("originals").join(&name)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), d.checksum, "{name}");
        match d.mime_type.as_str() {
            "application/pdf" => {
                assert!(bytes.starts_with(b"%PDF-1.4"), "{name}");
                // A PDF reader agrees on the page count.
                let pdf = lopdf::Document::load_mem(&bytes).expect("a readable PDF");
                assert_eq!(Some(pdf.get_pages().len() as i64), d.page_count, "{name}");
                // Born-digital ones have a text layer that reads back as the content.
                let text = pdf_extract::extract_text_from_mem(&bytes).unwrap_or_default();
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.is_empty() {
                    scanned_pdfs += 1;
                } else {
                    text_pdfs += 1;
                    let content: Vec<&str> = d.content.split_whitespace().collect();
                    assert_eq!(words, content, "{name}");
                }
            }
            "image/png" | "image/jpeg" => {
                image::load_from_memory(&bytes).expect("a readable scan image");
            }
            "text/plain" => assert_eq!(String::from_utf8(bytes.clone()).unwrap(), d.content),
            other => panic!("unexpected MIME type {other}"),
        }
        smallest = smallest.min(bytes.len() as u64);
        largest = largest.max(bytes.len() as u64);
        mimes.insert(d.mime_type.clone());
        let thumb = std::fs::read(media.join("thumbnails").join(format!("{id:07}.webp"))).unwrap();
        assert!(
            thumb.starts_with(b"RIFF") && &thumb[8..12] == b"WEBP",
            "thumbnail of {id}"
        );
        trashed += d.in_trash() as usize;
        tagged += !d.tags.is_empty() as usize;
        assert!(!d.title.is_empty());
    }
    assert!(
        text_pdfs > 0 && scanned_pdfs > 0,
        "{text_pdfs} {scanned_pdfs}"
    );
    assert_eq!(trashed, 2);
    assert!(tagged > DOCS / 2, "{tagged} tagged documents");
    assert_eq!(mimes.len(), 4, "{mimes:?}");
    assert!(smallest < 20_000, "smallest file {smallest} bytes");
    assert!(largest > 50_000, "largest file {largest} bytes");
    // No temporary files left behind.
    for sub in ["originals", "thumbnails"] {
        let n = std::fs::read_dir(media.join(sub)).unwrap().count();
        assert_eq!(n, DOCS, "{sub}");
    }

    // Every matching algorithm on every kind of object.
    let all: BTreeSet<i64> = (0..=6).collect();
    let algs = |v: Vec<i64>| v.into_iter().collect::<BTreeSet<_>>();
    let c = correspondents::list(&db).await.unwrap();
    assert_eq!(algs(c.iter().map(|x| x.matching_algorithm).collect()), all);
    let t = document_types::list(&db).await.unwrap();
    assert_eq!(algs(t.iter().map(|x| x.matching_algorithm).collect()), all);
    let s = storage_paths::list(&db).await.unwrap();
    assert_eq!(algs(s.iter().map(|x| x.matching_algorithm).collect()), all);
    assert!(s.iter().all(|p| p.path.contains("{{")));
    let tg = tags::list(&db).await.unwrap();
    assert_eq!(algs(tg.iter().map(|x| x.matching_algorithm).collect()), all);

    // Tags: one inbox tag, a hierarchy three levels deep.
    assert_eq!(tags::inbox_tags(&db).await.unwrap().len(), 1);
    let parent = |id: i64| tg.iter().find(|t| t.id == id).unwrap().tn_parent_id;
    assert!(
        tg.iter().any(|t| t.tn_parent_id.and_then(parent).is_some()),
        "a grandchild tag"
    );

    // Custom fields of every data type, each with values; notes.
    let counts = extras::custom_field_value_counts(&db).await.unwrap();
    assert_eq!(counts.len(), CUSTOM_FIELD_TYPES.len(), "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n > 0), "{counts:?}");
    assert!(extras::note_count(&db).await.unwrap() > 0);

    // A second run into the same archive is refused (it would mix two corpora).
    let again = run_corpus(dir.path(), 7);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already has documents"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Same seed, same archive.
    let dir2 = tempfile::tempdir().unwrap();
    assert!(run_corpus(dir2.path(), 7).status.success());
    let db2 = Db::connect(&sqlite_url(dir2.path())).await.unwrap();
    assert_eq!(fingerprint(&db).await, fingerprint(&db2).await);
    db.close().await;
    db2.close().await;
}
