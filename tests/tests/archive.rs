//! Archive versions end to end: real `paperboy-worker` processes, real tesseract, the fixture
//! scans paperless-ngx 3.0.5 archived, checked with poppler's `pdftotext` and `qpdf --check`.
//! Every case runs on SQLite and PostgreSQL.
//!
//! Needs `cargo build -p paperboy-worker -p paperboy` first, and tesseract (eng, deu),
//! poppler-utils and qpdf (`scripts/services.sh` installs them).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use paperboy_shared::db::{Document, documents, migrate};
use paperboy_shared::job::{ConsumeArgs, Job};
use paperboy_shared::queue::{JobRecord, JobState, Queue};
use paperboy_shared::staging;
use paperboy_tests::db::TestDb;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::{WorkerBuilder, WorkerProcess};
use serde_json::Value;
use sha2::Digest;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/paperless-3.0.5");
    assert!(
        dir.join("consume-input").is_dir(),
        "the paperless fixtures are missing: expected {}",
        dir.display()
    );
    dir
}

fn input(name: &str) -> PathBuf {
    let base = fixtures().join("consume-input");
    [base.join(name), base.join("Archive").join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// paperless's content of each original file name.
fn paperless_content() -> HashMap<String, String> {
    let text = std::fs::read_to_string(fixtures().join("export-plain/manifest.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .filter(|r| r["model"] == "documents.document")
        .map(|r| {
            let f = &r["fields"];
            (
                f["original_filename"].as_str().unwrap().to_string(),
                f["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The scans paperless OCR'd into archive versions.
const SCANS: &[&str] = &[
    "scan_bank_statement_2024-05.png",
    "scan_electricity_bill_2024-04.pdf",
    "scan_insurance_renewal.jpg",
    "receipt_grocery.jpg",
    "scan_phone_bill.pdf",
    "old_photo_caption.png",
];

/// Share of the distinct words (3+ characters, lower case) of `want` that `got` has.
fn word_overlap(want: &str, got: &str) -> f64 {
    let set = |s: &str| -> BTreeSet<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase)
            .collect()
    };
    let (want, got) = (set(want), set(got));
    assert!(!want.is_empty(), "no words to look for");
    want.intersection(&got).count() as f64 / want.len() as f64
}

fn pdftotext(path: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (apt install poppler-utils)");
    assert!(
        out.status.success(),
        "pdftotext {}: {:?}",
        path.display(),
        out
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `qpdf --check` passes, the file carries the PDF/A-2b identification, and its checksum is
/// the row's.
fn check_archive_file(path: &Path, doc: &Document) {
    let out = Command::new("qpdf")
        .arg("--check")
        .arg(path)
        .output()
        .expect("qpdf (apt install qpdf)");
    assert!(
        out.status.success(),
        "qpdf --check {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(path).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"<pdfaid:part>2</pdfaid:part>"),
        "{}: XMP part",
        path.display()
    );
    assert!(has(b"<pdfaid:conformance>B</pdfaid:conformance>"));
    assert!(
        has(b"/GTS_PDFA1"),
        "{}: the sRGB output intent",
        path.display()
    );
    assert_eq!(
        doc.archive_checksum.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()),
        "archive checksum"
    );
}

/// One test's archive: Redis prefix, database, folders.
struct Archive {
    redis: TestRedis,
    queue: Queue,
    tdb: TestDb,
    dir: tempfile::TempDir,
}

impl Archive {
    async fn new(tdb: TestDb) -> Archive {
        migrate::migrate_latest(&tdb.db).await.expect("migrate");
        let redis = TestRedis::new();
        let queue = redis.queue().await;
        let dir = tempfile::tempdir().unwrap();
        Archive {
            redis,
            queue,
            tdb,
            dir,
        }
    }

    fn media(&self) -> PathBuf {
        self.dir.path().join("media")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A worker serving `queues` on this archive, with `env` on top.
    fn worker(&self, queues: &str, env: &[(&str, &str)]) -> WorkerProcess {
        let mut b = WorkerBuilder::new(&self.redis.url, &self.redis.prefix)
            .queues(queues)
            .lease_secs(10)
            .env("PAPERBOY_OCR_LANGUAGE", "eng+deu")
            .env("PAPERBOY_DATABASE_URL", &self.tdb.url)
            .env("PAPERBOY_DATA_DIR", self.data().to_str().unwrap())
            .env("PAPERBOY_MEDIA_ROOT", self.media().to_str().unwrap())
            .env(
                "PAPERBOY_CONSUMPTION_DIR",
                self.dir.path().join("consume").to_str().unwrap(),
            );
        for (k, v) in env {
            b = b.env(k, v);
        }
        b.spawn()
    }

    async fn enqueue_wait(&self, job: &Job, secs: u64) -> JobRecord {
        let id = self.queue.enqueue(job).await.unwrap().id().to_string();
        self.wait(&id, secs).await
    }

    async fn wait(&self, id: &str, secs: u64) -> JobRecord {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.queue.get(id).await.unwrap();
            if r.state.is_terminal() {
                return r;
            }
            assert!(
                !matches!(r.state, JobState::Scheduled),
                "job {id} failed transiently: {:?}",
                r.errors
            );
            assert!(Instant::now() < deadline, "job {id} did not end: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stages and consumes a file; its document.
    async fn consume(&self, file: &Path) -> (JobRecord, Option<Document>) {
        let staged =
            staging::stage_into(&self.data().join(staging::STAGING_DIR), file).expect("stage");
        let job = Job::Consume(ConsumeArgs {
            staged: staged.relative.clone(),
            original_filename: staged.original_filename.clone(),
            tags: vec![],
            source: None,
            ..Default::default()
        });
        let r = self.enqueue_wait(&job, 300).await;
        let doc = match r.result.as_ref().and_then(|v| v["document_id"].as_i64()) {
            Some(id) => documents::get(&self.tdb.db, id).await.unwrap(),
            None => None,
        };
        (r, doc)
    }

    fn archive_path(&self, doc: &Document) -> PathBuf {
        self.media().join("archive").join(
            doc.archive_filename
                .as_deref()
                .expect("an archive file name"),
        )
    }

    fn archive_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.media().join("archive"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
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

// ---- the cases ------------------------------------------------------------------------------

/// Consume makes the archive version of every scan (images, image-only PDFs): its extracted
/// text has the page's words, it passes qpdf, it is identified as PDF/A-2b.
async fn scans_get_searchable_pdfa_archives_when_consumed(tdb: TestDb) {
    let a = Archive::new(tdb).await;
    let _w = a.worker("consume,thumbnails", &[]);
    let want = paperless_content();
    for name in SCANS {
        let started = Instant::now();
        let (r, doc) = a.consume(&input(name)).await;
        assert_eq!(r.state, JobState::Succeeded, "{name}: {:?}", r.errors);
        let result = r.result.clone().unwrap();
        assert_eq!(result["archive"], true, "{name}: {result}");
        assert!(result["archive_error"].is_null(), "{name}: {result}");
        let doc = doc.unwrap();
        let path = a.archive_path(&doc);
        check_archive_file(&path, &doc);
        // The scans' page images go in as they are (JPEG bytes, PNG rows, a scanned PDF's
        // image): the archive is the original plus a text layer, font and ICC profile, not a
        // re-encoded (larger) page.
        let original = std::fs::metadata(input(name)).unwrap().len();
        let archive = std::fs::metadata(&path).unwrap().len();
        assert!(
            archive < original + 40_000,
            "{name}: archive {archive} bytes for an original of {original}"
        );
        let text = pdftotext(&path);
        let found = word_overlap(&want[*name], &text);
        eprintln!(
            "{name}: {:.0}% of paperless's words in pdftotext of our archive ({:.1} s)",
            found * 100.0,
            started.elapsed().as_secs_f64()
        );
        assert!(
            found >= 0.9,
            "{name}: only {:.0}% of paperless's words in {text:?}",
            found * 100.0
        );
        // The content is the OCR text too.
        assert!(
            word_overlap(&want[*name], &doc.content) >= 0.9,
            "{name} content"
        );
        // Words are not glued together: a two-word phrase of the page comes out with a space.
        assert!(
            text.split_whitespace().count() >= doc.content.split_whitespace().count() / 2,
            "{name}: words glued in {text:?}"
        );
    }
    // (Umlauts through the text layer: none of these scans has any; the PDF writer's unit test
    // `pdftotext_reads_umlauts_and_spaces_back` checks them with pdftotext.)
    a.tdb.cleanup().await;
}

/// Born-digital PDFs follow the mode table: `auto`/`auto` stores no archive; the archiver
/// under `always` keeps their pages (text still extractable) and marks them PDF/A; `never`
/// makes none for a scan either.
async fn born_digital_pdfs_follow_the_mode_table(tdb: TestDb) {
    let a = Archive::new(tdb).await;
    let mut w = a.worker(
        "consume,thumbnails",
        &[("PAPERBOY_ARCHIVE_FILE_GENERATION", "never")],
    );
    let (r, doc) = a.consume(&input("acme_invoice_2024-03.pdf")).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let born = doc.unwrap();
    assert_eq!(born.archive_filename, None, "never: no archive");
    let (r, scan) = a.consume(&input("scan_electricity_bill_2024-04.pdf")).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let scan = scan.unwrap();
    assert_eq!(
        scan.archive_filename, None,
        "never: no archive for a scan either"
    );
    assert!(
        !scan.content.trim().is_empty(),
        "never: OCR text all the same"
    );
    w.kill();

    // auto: the born-digital PDF needs none (noted, so the next run does not look again),
    // the scan gets one.
    let _w = a.worker("archive_run,archive", &[]);
    let run = a
        .enqueue_wait(
            &Job::Archive {
                document: None,
                overwrite: false,
            },
            300,
        )
        .await;
    assert_eq!(run.state, JobState::Succeeded, "{:?}", run.errors);
    let res = run.result.unwrap();
    assert_eq!(
        (res["archived"].as_u64(), res["skipped"].as_u64()),
        (Some(1), Some(1)),
        "{res}"
    );
    let born_now = documents::get(&a.tdb.db, born.id).await.unwrap().unwrap();
    assert_eq!(born_now.archive_filename, None);
    let scan_now = documents::get(&a.tdb.db, scan.id).await.unwrap().unwrap();
    check_archive_file(&a.archive_path(&scan_now), &scan_now);
    let again = a
        .enqueue_wait(
            &Job::Archive {
                document: None,
                overwrite: false,
            },
            120,
        )
        .await;
    let res = again.result.unwrap();
    assert_eq!(res["documents"], 0, "{res}");
    assert_eq!(res["skipped_noted"], 1, "{res}");
    drop(_w);

    // always: the born-digital PDF is kept page for page and marked PDF/A.
    let _w = a.worker(
        "archive_run,archive",
        &[("PAPERBOY_ARCHIVE_FILE_GENERATION", "always")],
    );
    let run = a
        .enqueue_wait(
            &Job::Archive {
                document: Some(born.id),
                overwrite: false,
            },
            300,
        )
        .await;
    assert_eq!(run.state, JobState::Succeeded, "{:?}", run.errors);
    let born_now = documents::get(&a.tdb.db, born.id).await.unwrap().unwrap();
    let path = a.archive_path(&born_now);
    check_archive_file(&path, &born_now);
    let text = pdftotext(&path);
    assert!(word_overlap(&born.content, &text) >= 0.95, "{text:?}");
    assert_eq!(born_now.content, born.content, "no OCR: content unchanged");
    a.tdb.cleanup().await;
}

/// `paperboy archive` fans out one job per document over two worker processes, skips what
/// is archived on a re-run, and `--overwrite` replaces an archive file (new name first,
/// the old one removed after the commit).
async fn the_archiver_fans_out_across_two_workers(tdb: TestDb) {
    let a = Archive::new(tdb).await;
    let mut w = a.worker(
        "consume,thumbnails",
        &[("PAPERBOY_ARCHIVE_FILE_GENERATION", "never")],
    );
    let mut ids = Vec::new();
    for name in SCANS {
        let (r, doc) = a.consume(&input(name)).await;
        assert_eq!(r.state, JobState::Succeeded, "{name}: {:?}", r.errors);
        ids.push(doc.unwrap().id);
    }
    w.kill();
    let w1 = a.worker("archive_run,archive", &[("PAPERBOY_CONCURRENCY", "1")]);
    let w2 = a.worker("archive", &[("PAPERBOY_CONCURRENCY", "1")]);
    let run = a
        .enqueue_wait(
            &Job::Archive {
                document: None,
                overwrite: false,
            },
            600,
        )
        .await;
    assert_eq!(
        run.state,
        JobState::Succeeded,
        "{:?}\n{}\n{}",
        run.errors,
        w1.log(),
        w2.log()
    );
    let res = run.result.unwrap();
    assert_eq!(res["archived"].as_u64(), Some(SCANS.len() as u64), "{res}");
    assert_eq!(res["failed"], 0, "{res}");
    let workers = res["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "both workers took documents: {res}");
    for id in &ids {
        let d = documents::get(&a.tdb.db, *id).await.unwrap().unwrap();
        check_archive_file(&a.archive_path(&d), &d);
    }
    assert_eq!(a.archive_files().len(), SCANS.len());
    // The OCR text replaced their content: one index update for all of them is queued.
    let upd = res["index_update"]
        .as_str()
        .unwrap_or_else(|| panic!("an index update queued: {res}"));
    let rec = a.queue.get(upd).await.unwrap();
    let Ok(Job::IndexUpdate { ids: mut queued }) = rec.job() else {
        panic!("an index_update job: {rec:?}")
    };
    queued.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(queued, want, "{rec:?}");

    // Re-run: nothing to do.
    let again = a
        .enqueue_wait(
            &Job::Archive {
                document: None,
                overwrite: false,
            },
            120,
        )
        .await;
    assert_eq!(again.result.unwrap()["documents"], 0);

    // --overwrite of one document: a new file under a new name, the old one gone.
    let before = documents::get(&a.tdb.db, ids[0]).await.unwrap().unwrap();
    let r = a
        .enqueue_wait(
            &Job::Archive {
                document: Some(ids[0]),
                overwrite: true,
            },
            300,
        )
        .await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let after = documents::get(&a.tdb.db, ids[0]).await.unwrap().unwrap();
    assert_ne!(after.archive_filename, before.archive_filename);
    assert!(
        !a.archive_path(&before).exists(),
        "the old archive file is removed"
    );
    check_archive_file(&a.archive_path(&after), &after);
    assert_eq!(a.archive_files().len(), SCANS.len(), "no file leaked");
    a.tdb.cleanup().await;
}

/// Hostile input fails that document with a clear message, quickly, and the worker carries
/// on: a pixel bomb (a PNG header claiming 60000×60000), a PDF with more pages than allowed,
/// an encrypted PDF (noted: not retried by the next run).
async fn hostile_input_fails_that_document_only(tdb: TestDb) {
    let a = Archive::new(tdb).await;
    let _w = a.worker(
        "consume,thumbnails,archive_run,archive",
        &[("PAPERBOY_ARCHIVE_MAX_PAGES", "1")],
    );
    let tmp = tempfile::tempdir().unwrap();
    // A PNG whose header says 60000×60000 (3.6 G pixels), with a tiny body.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut chunk = |body: &[u8]| {
        png.extend_from_slice(&(body.len() as u32 - 4).to_be_bytes());
        png.extend_from_slice(body);
        png.extend_from_slice(&crc32(body).to_be_bytes());
    };
    chunk(&ihdr);
    // The start of a deflate stream of zeros (a real bomb compresses 10 GB into a few MB).
    chunk(b"IDAT\x78\x9c\x63\x60\x18\x05");
    chunk(b"IEND");
    let bomb = tmp.path().join("bomb.png");
    std::fs::write(&bomb, &png).unwrap();
    let started = Instant::now();
    let (r, _) = a.consume(&bomb).await;
    assert!(started.elapsed() < Duration::from_secs(60));
    let msg = match r.state {
        JobState::Succeeded => r.result.clone().unwrap()["archive_error"].to_string(),
        _ => error_of(&r),
    };
    assert!(
        msg.contains("pixels"),
        "the pixel limit is named: {msg} ({r:?})"
    );

    // Two pages with a limit of one.
    let (r, doc) = a.consume(&input("scan_phone_bill.pdf")).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let res = r.result.unwrap();
    assert!(
        res["archive_error"]
            .as_str()
            .unwrap_or_default()
            .contains("PAPERBOY_ARCHIVE_MAX_PAGES"),
        "{res}"
    );
    assert_eq!(doc.unwrap().archive_filename, None);

    // Encrypted (qpdf, AES-256, empty user password): stored, no archive, noted.
    let enc = tmp.path().join("encrypted_scan.pdf");
    let st = Command::new("qpdf")
        .args(["--encrypt", "", "owner-secret", "256", "--"])
        .arg(input("scan_electricity_bill_2024-04.pdf"))
        .arg(&enc)
        .status()
        .unwrap();
    assert!(st.success());
    let (r, doc) = a.consume(&enc).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let res = r.result.unwrap();
    assert!(
        res["archive_error"]
            .as_str()
            .unwrap_or_default()
            .contains("encrypted"),
        "{res}"
    );
    let doc = doc.unwrap();
    assert_eq!(doc.archive_filename, None);
    // The archiver notes it once, then skips it.
    let run = a
        .enqueue_wait(
            &Job::Archive {
                document: Some(doc.id),
                overwrite: false,
            },
            120,
        )
        .await;
    let res = run.result.unwrap();
    assert_eq!(res["archived"], 0, "{res}");
    let run = a
        .enqueue_wait(
            &Job::Archive {
                document: None,
                overwrite: false,
            },
            120,
        )
        .await;
    let res = run.result.unwrap();
    assert!(res["skipped_noted"].as_u64().unwrap() >= 1, "{res}");
    // A truncated PDF fails with a clear message; the worker lives on and takes the next one.
    let bytes = std::fs::read(input("scan_phone_bill.pdf")).unwrap();
    let broken = tmp.path().join("broken.pdf");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let (r, _) = a.consume(&broken).await;
    if r.state == JobState::Succeeded {
        let res = r.result.clone().unwrap();
        assert!(
            !res["archive_error"].is_null() || res["archive"] == true,
            "{res}"
        );
    } else {
        assert!(error_of(&r).contains("PDF"), "{}", error_of(&r));
    }
    let (r, doc) = a.consume(&input("receipt_grocery.jpg")).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert!(doc.unwrap().archive_filename.is_some());
    a.tdb.cleanup().await;
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

paperboy_tests::on_both_engines!(
    scans_get_searchable_pdfa_archives_when_consumed,
    born_digital_pdfs_follow_the_mode_table,
    the_archiver_fans_out_across_two_workers,
    hostile_input_fails_that_document_only,
);
