//! The consume pipeline end to end: a real `paperboy-worker` process (serving `consume` and
//! `thumbnails`) on a private Redis prefix, a fresh database on SQLite and on PostgreSQL (every
//! case runs on both, `sqlite::<case>` / `postgres::<case>`), its own data, media and
//! consumption folders. Files are staged and enqueued through the shared library, as the CLI
//! does.
//!
//! Input: the real files paperless-ngx 3.0.5 consumed, `shared/fixtures/paperless-3.0.5/
//! consume-input/` next to the repository, checked against what paperless made of them
//! (`export-plain/manifest.json`).
//!
//! Needs `cargo build -p paperboy-worker -p paperboy` first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paperboy_shared::db::{Db, NewDocument, documents, migrate, tags};
use paperboy_shared::job::{ConsumeArgs, Job};
use paperboy_shared::queue::{JobRecord, JobState, Queue};
use paperboy_shared::staging;
use paperboy_tests::db::TestDb;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::binary;
use serde_json::Value;

/// `shared/fixtures/paperless-3.0.5` beside the repository (CI clones `shared/` next to it).
fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/paperless-3.0.5");
    assert!(
        dir.join("consume-input").is_dir() && dir.join("export-plain/manifest.json").is_file(),
        "the paperless fixtures are missing: expected {} (with consume-input/ and \
         export-plain/manifest.json); clone the shared repository next to this one",
        dir.display()
    );
    dir
}

/// Every file under `consume-input/`, sorted.
fn fixture_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixtures().join("consume-input"), &mut out);
    out.sort();
    assert!(
        out.len() >= 20,
        "expected the 22 fixture files, found {}",
        out.len()
    );
    out
}

/// What paperless stored for each original file name (`documents.document` fields).
fn manifest() -> HashMap<String, Value> {
    let text = std::fs::read_to_string(fixtures().join("export-plain/manifest.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .filter(|r| r["model"] == "documents.document")
        .map(|r| {
            let f = r["fields"].clone();
            (f["original_filename"].as_str().unwrap().to_string(), f)
        })
        .collect()
}

/// One test's private archive: Redis prefix, database, folders, and a worker serving them.
struct Archive {
    redis: TestRedis,
    queue: Queue,
    db: Db,
    dir: tempfile::TempDir,
    worker: Option<tokio::process::Child>,
}

impl Archive {
    async fn new(tdb: &TestDb) -> Archive {
        Archive::with_env(tdb, &[]).await
    }

    /// [`Archive::new`] with extra settings for the worker.
    async fn with_env(tdb: &TestDb, env: &[(&str, &str)]) -> Archive {
        migrate::migrate_latest(&tdb.db).await.expect("migrate");
        let redis = TestRedis::new();
        let queue = redis.queue().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("consume")).unwrap();
        let mut a = Archive {
            redis,
            queue,
            db: tdb.db.clone(),
            dir,
            worker: None,
        };
        a.worker = Some(a.spawn_worker(&tdb.url, env));
        a
    }

    fn spawn_worker(&self, db_url: &str, env: &[(&str, &str)]) -> tokio::process::Child {
        self.worker_command(db_url, env)
            .args(["--queues", "consume,thumbnails"])
            .spawn()
            .expect("start paperboy-worker")
    }

    /// `paperboy-worker` with this archive's settings (and `env` on top).
    fn worker_command(&self, db_url: &str, env: &[(&str, &str)]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(binary("paperboy-worker"));
        c.env_clear()
            // tesseract is found on PATH.
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // The languages paperless read the fixtures with.
            .env("PAPERBOY_OCR_LANGUAGE", "eng+deu")
            .envs(env.iter().copied())
            .env("PAPERBOY_REDIS_URL", &self.redis.url)
            .env("PAPERBOY_REDIS_PREFIX", &self.redis.prefix)
            .env("PAPERBOY_DATA_DIR", self.data())
            .env("PAPERBOY_MEDIA_ROOT", self.media())
            .env("PAPERBOY_CONSUMPTION_DIR", self.consume_dir())
            .env("PAPERBOY_DATABASE_URL", db_url)
            .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
            .env("PAPERBOY_LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn media(&self) -> PathBuf {
        self.dir.path().join("media")
    }
    fn consume_dir(&self) -> PathBuf {
        self.dir.path().join("consume")
    }
    fn staging(&self) -> PathBuf {
        self.data().join(staging::STAGING_DIR)
    }

    /// Stages `file` as the CLI does, enqueues its consume job and waits for its end.
    async fn consume(&self, file: &Path, source: Option<&str>) -> (JobRecord, PathBuf) {
        self.consume_args(file, source, vec![]).await
    }

    async fn consume_with(&self, file: &Path, tags: Vec<i64>) -> (JobRecord, PathBuf) {
        self.consume_args(file, None, tags).await
    }

    async fn consume_args(
        &self,
        file: &Path,
        source: Option<&str>,
        tags: Vec<i64>,
    ) -> (JobRecord, PathBuf) {
        let staged = staging::stage_into(&self.staging(), file).expect("stage");
        let job = Job::Consume(ConsumeArgs {
            staged: staged.relative.clone(),
            original_filename: staged.original_filename.clone(),
            tags,
            source: source.map(str::to_string),
            ..Default::default()
        });
        let id = self.queue.enqueue(&job).await.unwrap().id().to_string();
        (self.wait(&id).await, staged.path)
    }

    async fn wait(&self, id: &str) -> JobRecord {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = self.queue.get(id).await.unwrap();
            if r.state.is_terminal() {
                return r;
            }
            assert!(
                !matches!(r.state, JobState::Scheduled),
                "job {id} failed transiently (is being retried): {:?}",
                r.errors
            );
            assert!(Instant::now() < deadline, "job {id} did not end: {r:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    fn files_in(&self, folder: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.media().join(folder))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn error_of(r: &JobRecord) -> String {
    r.errors
        .last()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// Width and height of a lossy WebP (simple `VP8 ` format, what the worker writes).
fn webp_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 30, "WebP too short");
    assert_eq!(&bytes[..4], b"RIFF", "not a RIFF file");
    assert_eq!(&bytes[8..12], b"WEBP", "not WebP");
    assert_eq!(&bytes[12..16], b"VP8 ", "not a lossy WebP");
    assert_eq!(&bytes[23..26], &[0x9d, 0x01, 0x2a], "bad VP8 start code");
    let w = u16::from_le_bytes([bytes[26], bytes[27]]) & 0x3fff;
    let h = u16::from_le_bytes([bytes[28], bytes[29]]) & 0x3fff;
    (u32::from(w), u32::from(h))
}

/// The words of a text, sorted.
fn words(s: &str) -> Vec<&str> {
    let mut w: Vec<&str> = s.split_whitespace().collect();
    w.sort_unstable();
    w
}

/// Share of the distinct words (3+ letters or digits, lower case) of `want` that `got` has.
fn word_overlap(want: &str, got: &str) -> f64 {
    let set = |s: &str| -> std::collections::BTreeSet<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase)
            .collect()
    };
    let (want, got) = (set(want), set(got));
    assert!(!want.is_empty(), "paperless found no words");
    want.intersection(&got).count() as f64 / want.len() as f64
}

/// Created dates that paperless's users changed by hand after consumption (the content says
/// otherwise).
const CREATED_EDITED_BY_HAND: &[&str] = &["tax_assessment_2023.pdf"];

/// Files with no date in their name or text: paperless took the day it consumed them, we the
/// file's modification time (the staged copy's here: today).
const CREATED_FROM_THE_CONSUME_DAY: &[&str] = &["old_photo_caption.png"];

// ---- the cases ------------------------------------------------------------------------------

async fn every_fixture_file(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let want = manifest();
    let started = Instant::now();
    let files = fixture_files();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(file).unwrap();
        let (r, staged) = a.consume(file, None).await;
        assert_eq!(r.state, JobState::Succeeded, "{name}: {:?}", r.errors);
        let result = r.result.clone().unwrap();
        let id = result["document_id"]
            .as_i64()
            .expect("document_id in the result");
        let doc = documents::get(&a.db, id).await.unwrap().unwrap();
        let pl = want
            .get(&name)
            .unwrap_or_else(|| panic!("{name} not in the manifest"));
        let pl_mime = pl["mime_type"].as_str().unwrap();
        let has_archive = !pl["archive_checksum"].is_null();

        assert_eq!(
            doc.checksum,
            pl["checksum"].as_str().unwrap(),
            "{name} checksum"
        );
        assert_eq!(doc.mime_type, pl_mime, "{name} mime type");
        assert_eq!(doc.original_filename.as_deref(), Some(name.as_str()));
        let stem = Path::new(&name).file_stem().unwrap().to_string_lossy();
        assert_eq!(doc.title, stem, "{name} title");
        assert_eq!(result["title"], doc.title.as_str());

        // Pages: paperless's count for PDFs; images and text are one page here (paperless
        // leaves page_count empty for them).
        let pages = if pl_mime == "application/pdf" {
            pl["page_count"].as_i64().unwrap()
        } else {
            1
        };
        assert_eq!(doc.page_count, Some(pages), "{name} page count");

        // Text: PDFs with a text layer and text files as paperless read them; scans (the ones
        // paperless OCR'd into an archive version) through tesseract, as paperless: (nearly) all
        // of paperless's words are found, though it cleans and deskews pages first and renders
        // PDFs with Ghostscript; we do neither (100% on these six when this was written).
        let pl_content = pl["content"].as_str().unwrap();
        assert_eq!(
            result["ocr"], has_archive,
            "{name}: OCR'd exactly the scans"
        );
        assert!(
            result["ocr_error"].is_null(),
            "{name}: {}",
            result["ocr_error"]
        );
        if has_archive {
            let found = word_overlap(pl_content, &doc.content);
            eprintln!(
                "{name}: {:.0}% of paperless's OCR words found",
                found * 100.0
            );
            assert!(
                found >= 0.95,
                "{name}: only {:.0}% of paperless's words in our OCR text {:?}",
                found * 100.0,
                doc.content
            );
        } else if pl_mime == "text/plain" {
            assert_eq!(doc.content, pl_content, "{name} content");
        } else {
            // Same words; the order may differ where a PDF draws text out of reading order
            // (the warranty's "ASN00042" label comes first in its content stream).
            assert_eq!(words(&doc.content), words(pl_content), "{name} content");
        }

        // The created date: from the content like paperless where there is text.
        if !CREATED_EDITED_BY_HAND.contains(&name.as_str())
            && !CREATED_FROM_THE_CONSUME_DAY.contains(&name.as_str())
        {
            assert_eq!(
                doc.created,
                pl["created"].as_str().unwrap(),
                "{name} created"
            );
        }

        // Files: the original byte for byte, the thumbnail a lossy WebP ≤ 500 px wide.
        let filename = doc.filename.clone().expect("filename set");
        assert_eq!(
            filename,
            format!(
                "{id:07}.{}",
                Path::new(&filename).extension().unwrap().to_string_lossy()
            )
        );
        let stored = std::fs::read(a.media().join("originals").join(&filename)).unwrap();
        assert!(stored == input, "{name}: stored original differs");
        let thumb = std::fs::read(a.media().join("thumbnails").join(format!("{id:07}.webp")))
            .unwrap_or_else(|e| panic!("{name}: thumbnail: {e}"));
        assert!(
            result["thumbnail_error"].is_null(),
            "{name}: placeholder thumbnail: {}",
            result["thumbnail_error"]
        );
        let (w, h) = webp_size(&thumb);
        assert!(
            (100..=500).contains(&w) && h >= 100,
            "{name}: thumbnail {w}×{h}"
        );

        // The staged copy is gone.
        assert!(
            !staged.exists(),
            "{name}: staged copy left at {}",
            staged.display()
        );
    }
    assert_eq!(documents::count(&a.db).await.unwrap(), files.len() as i64);
    eprintln!(
        "{} fixture files consumed in {:.1} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    tdb.cleanup().await;
}

/// A scan of the fixtures (a PNG paperless OCR'd).
fn fixture_scan() -> PathBuf {
    fixture_files()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .expect("a PNG among the fixtures")
}

async fn ocr_mode_off_stores_images_without_text(tdb: TestDb) {
    let a = Archive::with_env(&tdb, &[("PAPERBOY_OCR_MODE", "off")]).await;
    let (r, _) = a.consume(&fixture_scan(), None).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let result = r.result.unwrap();
    assert_eq!(result["ocr"], false);
    let id = result["document_id"].as_i64().unwrap();
    let doc = documents::get(&a.db, id).await.unwrap().unwrap();
    assert_eq!(doc.content, "");
    tdb.cleanup().await;
}

async fn a_missing_ocr_language_fails_with_the_package_to_install(tdb: TestDb) {
    let a = Archive::with_env(&tdb, &[("PAPERBOY_OCR_LANGUAGE", "eng+qqq")]).await;
    let (r, staged) = a.consume(&fixture_scan(), None).await;
    assert_eq!(r.state, JobState::Dead);
    let err = error_of(&r);
    assert!(
        err.contains("\"qqq\"")
            && err.contains("tesseract-ocr-qqq")
            && err.contains("PAPERBOY_OCR_LANGUAGE"),
        "{err}"
    );
    assert!(staged.exists(), "the input is kept for a retry");
    assert_eq!(documents::count(&a.db).await.unwrap(), 0);
    tdb.cleanup().await;
}

async fn bad_file_is_refused_and_kept(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    // An .exe-like blob, dropped into the consumption folder.
    let mut blob = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec();
    blob.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let src = a.consume_dir().join("setup.pdf");
    std::fs::write(&src, &blob).unwrap();
    let (r, staged) = a.consume(&src, Some("setup.pdf")).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    assert_eq!(r.attempts, 1, "a permanent error is not retried");
    let err = error_of(&r);
    assert!(err.contains("setup.pdf"), "{err}");
    assert!(err.contains("Windows executable"), "{err}");
    assert!(err.contains("PDF, PNG, JPEG"), "{err}");
    assert!(
        err.contains(&staged.display().to_string()),
        "says where the input is: {err}"
    );
    // The staged copy stays, the source went to failed/ (not deleted).
    assert_eq!(std::fs::read(&staged).unwrap(), blob);
    assert!(!src.exists());
    assert_eq!(
        std::fs::read(a.consume_dir().join("failed/setup.pdf")).unwrap(),
        blob
    );
    assert!(err.contains("failed"), "{err}");

    // Random bytes without a source: refused, staged copy kept.
    let noise: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(40503) >> 7) as u8 ^ 0xA5)
        .collect();
    let f = a.dir.path().join("noise.bin");
    std::fs::write(&f, &noise).unwrap();
    let (r, staged) = a.consume(&f, None).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    assert!(
        error_of(&r).contains("unsupported file type"),
        "{}",
        error_of(&r)
    );
    assert!(staged.exists());

    assert_eq!(documents::count(&a.db).await.unwrap(), 0);
    assert!(a.files_in("originals").is_empty());
    assert!(a.files_in("thumbnails").is_empty());
    tdb.cleanup().await;
}

async fn duplicate_is_refused(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let file = fixtures().join("consume-input/meeting_notes.txt");
    // The first one comes from the consumption folder: consumed, it goes (as in paperless).
    let src = a.consume_dir().join("meeting_notes.txt");
    std::fs::copy(&file, &src).unwrap();
    let (first, _) = a.consume(&src, Some("meeting_notes.txt")).await;
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.errors);
    assert!(!src.exists(), "the consumed source file is removed");
    let id = first.result.unwrap()["document_id"].as_i64().unwrap();
    let (second, staged) = a.consume(&file, None).await;
    assert_eq!(second.state, JobState::Dead, "{second:?}");
    let err = error_of(&second);
    assert!(
        err.contains(&format!("duplicate of meeting_notes (#{id})")),
        "{err}"
    );
    assert!(staged.exists(), "the refused input is kept");
    assert_eq!(documents::count(&a.db).await.unwrap(), 1);
    assert_eq!(a.files_in("originals"), vec![format!("{id:07}.txt")]);
    tdb.cleanup().await;
}

async fn tags_from_the_job(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let mut tx = a.db.begin().await.unwrap();
    let tag = tags::get_or_create_by_name(&mut tx, "Archive")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let file = fixtures().join("consume-input/acme_invoice_2024-06.pdf");
    let (r, _) = a.consume_with(&file, vec![tag]).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let id = r.result.unwrap()["document_id"].as_i64().unwrap();
    assert_eq!(
        documents::get(&a.db, id).await.unwrap().unwrap().tags,
        vec![tag]
    );

    // An unknown tag id is refused, nothing stored.
    let file = fixtures().join("consume-input/car_repair_invoice.pdf");
    let (r, staged) = a.consume_with(&file, vec![tag + 1000]).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    assert!(error_of(&r).contains("unknown tag"), "{}", error_of(&r));
    assert!(staged.exists());
    assert_eq!(documents::count(&a.db).await.unwrap(), 1);
    assert_eq!(a.files_in("originals"), vec![format!("{id:07}.pdf")]);
    assert_eq!(a.files_in("thumbnails"), vec![format!("{id:07}.webp")]);
    tdb.cleanup().await;
}

/// The same content twice at once (two jobs running side by side on one worker): exactly one
/// document, the other job refused as a duplicate.
async fn concurrent_duplicates_make_one_document(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let file = fixtures().join("consume-input/employment_contract.pdf");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let staged = staging::stage_into(&a.staging(), &file).unwrap();
        let job = Job::Consume(ConsumeArgs {
            staged: staged.relative.clone(),
            original_filename: staged.original_filename.clone(),
            tags: vec![],
            source: None,
            ..Default::default()
        });
        ids.push(a.queue.enqueue(&job).await.unwrap().id().to_string());
    }
    let mut states = Vec::new();
    for id in &ids {
        let r = a.wait(id).await;
        if r.state == JobState::Dead {
            assert!(error_of(&r).contains("duplicate"), "{}", error_of(&r));
        }
        states.push(r.state);
    }
    let ok = states.iter().filter(|s| **s == JobState::Succeeded).count();
    assert_eq!(ok, 1, "{states:?}");
    assert_eq!(documents::count(&a.db).await.unwrap(), 1);
    assert_eq!(a.files_in("originals").len(), 1);
    assert_eq!(a.files_in("thumbnails").len(), 1);
    tdb.cleanup().await;
}

/// The user's way: `paperboy consume --wait FILE` against a real worker prints the new
/// document's id.
async fn cli_consume_wait_prints_the_document_id(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let file = fixtures().join("consume-input/medical_letter_smith.pdf");
    let mut c = a.worker_command(&tdb.url, &[]);
    let c = c.as_std_mut();
    let out = tokio::process::Command::new(binary("paperboy"))
        .env_clear()
        .envs(
            c.get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .args([
            "consume",
            "--wait",
            "--timeout",
            "60",
            file.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not an id: {stdout:?}"));
    let doc = documents::get(&a.db, id)
        .await
        .unwrap()
        .expect("the printed document");
    assert_eq!(doc.title, "medical_letter_smith");
    assert_eq!(doc.created, "2024-04-08");
    tdb.cleanup().await;
}

/// A consume job re-run after its first attempt committed (the worker died before reporting):
/// the marker next to the staged copy names the document; the re-run answers with it instead
/// of refusing a duplicate.
async fn rerun_after_commit_is_not_a_duplicate(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let file = fixtures().join("consume-input/rent_agreement.pdf");
    let (first, _) = a.consume(&file, None).await;
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.errors);
    let id = first.result.unwrap()["document_id"].as_i64().unwrap();
    // The state a crash right after the commit leaves: staged copy and marker still there.
    let staged = staging::stage_into(&a.staging(), &file).unwrap();
    std::fs::write(
        staged.path.parent().unwrap().join(".paperboy-document-id"),
        id.to_string(),
    )
    .unwrap();
    let job = Job::Consume(ConsumeArgs {
        staged: staged.relative.clone(),
        original_filename: staged.original_filename.clone(),
        tags: vec![],
        source: None,
        ..Default::default()
    });
    let jid = a.queue.enqueue(&job).await.unwrap().id().to_string();
    let r = a.wait(&jid).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert_eq!(r.result.unwrap()["document_id"], id);
    assert!(!staged.path.exists(), "staged copy removed");
    assert_eq!(documents::count(&a.db).await.unwrap(), 1);
    // A marker naming a document with other content is ignored: a real duplicate is refused.
    let staged = staging::stage_into(&a.staging(), &file).unwrap();
    std::fs::write(
        staged.path.parent().unwrap().join(".paperboy-document-id"),
        "999",
    )
    .unwrap();
    let job = Job::Consume(ConsumeArgs {
        staged: staged.relative.clone(),
        original_filename: staged.original_filename.clone(),
        tags: vec![],
        source: None,
        ..Default::default()
    });
    let jid = a.queue.enqueue(&job).await.unwrap().id().to_string();
    let r = a.wait(&jid).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    assert!(error_of(&r).contains("duplicate"), "{}", error_of(&r));
    tdb.cleanup().await;
}

/// With PAPERBOY_CONSUMER_DELETE_DUPLICATES a refused duplicate is deleted, not kept.
async fn delete_duplicates_setting(tdb: TestDb) {
    let a = Archive::with_env(&tdb, &[("PAPERLESS_CONSUMER_DELETE_DUPLICATES", "true")]).await;
    let file = fixtures().join("consume-input/meeting_notes.txt");
    let (first, _) = a.consume(&file, None).await;
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.errors);
    let src = a.consume_dir().join("again.txt");
    std::fs::copy(&file, &src).unwrap();
    let (second, staged) = a.consume(&src, Some("again.txt")).await;
    assert_eq!(second.state, JobState::Dead, "{second:?}");
    let err = error_of(&second);
    assert!(err.contains("duplicate of meeting_notes"), "{err}");
    assert!(err.contains("deleted"), "{err}");
    assert!(!staged.exists());
    assert!(!src.exists());
    assert!(!a.consume_dir().join("failed").exists());
    tdb.cleanup().await;
}

async fn db_failure_leaves_no_file(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    // A row that already claims the file name the next document gets (id 2): the consume's
    // UPDATE of its file name fails after the files were written, inside the transaction.
    let mut tx = a.db.begin().await.unwrap();
    let first = documents::insert(
        &mut tx,
        &NewDocument {
            title: "squatter".into(),
            mime_type: "text/plain".into(),
            checksum: "0".repeat(64),
            created: "2024-01-01".into(),
            filename: Some("0000002.txt".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(first, 1);

    let file = fixtures().join("consume-input/meeting_notes.txt");
    let (r, staged) = a.consume(&file, None).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    let err = error_of(&r);
    assert!(err.to_lowercase().contains("unique"), "{err}");
    // No row, no file, the input kept.
    assert_eq!(documents::count(&a.db).await.unwrap(), 1);
    assert!(
        a.files_in("originals").is_empty(),
        "{:?}",
        a.files_in("originals")
    );
    assert!(
        a.files_in("thumbnails").is_empty(),
        "{:?}",
        a.files_in("thumbnails")
    );
    assert!(staged.exists());
    tdb.cleanup().await;
}

async fn thumbnails_regenerate(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let mut ids = Vec::new();
    for name in [
        "acme_invoice_2024-03.pdf",
        "receipt_grocery.jpg",
        "meeting_notes.txt",
    ] {
        let (r, _) = a
            .consume(&fixtures().join("consume-input").join(name), None)
            .await;
        assert_eq!(r.state, JobState::Succeeded, "{name}: {:?}", r.errors);
        ids.push(r.result.unwrap()["document_id"].as_i64().unwrap());
    }
    let thumb = |id: i64| a.media().join("thumbnails").join(format!("{id:07}.webp"));
    let before = std::fs::read(thumb(ids[0])).unwrap();
    for id in &ids {
        std::fs::remove_file(thumb(*id)).unwrap();
    }

    // One document.
    let job = a
        .queue
        .enqueue(&Job::Thumbnails {
            document: Some(ids[0]),
            batch: None,
        })
        .await
        .unwrap();
    let r = a.wait(job.id()).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert_eq!(
        std::fs::read(thumb(ids[0])).unwrap(),
        before,
        "same code, same thumbnail"
    );

    // Every document: fans out batches.
    let job = a
        .queue
        .enqueue(&Job::Thumbnails {
            document: None,
            batch: None,
        })
        .await
        .unwrap();
    let r = a.wait(job.id()).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert_eq!(r.result.as_ref().unwrap()["documents"], 3);
    assert_eq!(r.result.as_ref().unwrap()["batches"], 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ids.iter().all(|id| thumb(*id).exists()) {
        assert!(
            Instant::now() < deadline,
            "the batch did not regenerate every thumbnail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &ids {
        let (w, _) = webp_size(&std::fs::read(thumb(*id)).unwrap());
        assert!(w <= 500);
    }

    // A missing document is a permanent failure.
    let job = a
        .queue
        .enqueue(&Job::Thumbnails {
            document: Some(999),
            batch: None,
        })
        .await
        .unwrap();
    let r = a.wait(job.id()).await;
    assert_eq!(r.state, JobState::Dead);
    assert!(
        error_of(&r).contains("document 999 not found"),
        "{}",
        error_of(&r)
    );
    tdb.cleanup().await;
}

// ---- both engines -----------------------------------------------------------------------------

paperboy_tests::on_both_engines!(
    every_fixture_file,
    ocr_mode_off_stores_images_without_text,
    a_missing_ocr_language_fails_with_the_package_to_install,
    bad_file_is_refused_and_kept,
    duplicate_is_refused,
    db_failure_leaves_no_file,
    thumbnails_regenerate,
    tags_from_the_job,
    delete_duplicates_setting,
    rerun_after_commit_is_not_a_duplicate,
    concurrent_duplicates_make_one_document,
    cli_consume_wait_prints_the_document_id,
);
