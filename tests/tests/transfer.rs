//! Export / import end to end: a real `paperboy-worker` (queues `export,import`) per archive on a
//! private Redis prefix and a fresh database, on SQLite and PostgreSQL (`sqlite::<case>`,
//! `postgres::<case>`). Input: the real paperless-ngx 3.0.5 export in
//! `shared/fixtures/paperless-3.0.5/export-plain/`.
//!
//! Needs `cargo build -p paperboy-worker -p paperboy` first.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paperboy_shared::db::transfer::{self, MODELS, RowData};
use paperboy_shared::db::{Db, migrate};
use paperboy_shared::job::{ExportArgs, ImportArgs, Job};
use paperboy_shared::queue::{JobRecord, JobState, Queue};
use paperboy_tests::db::TestDb;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::binary;
use serde_json::Value;

fn fixture() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/paperless-3.0.5/export-plain");
    assert!(
        dir.join("manifest.json").is_file(),
        "fixture missing: {}",
        dir.display()
    );
    dir
}

struct Archive {
    _redis: TestRedis,
    queue: Queue,
    db: Db,
    dir: tempfile::TempDir,
    _worker: tokio::process::Child,
}

impl Archive {
    async fn new(tdb: &TestDb) -> Archive {
        Archive::with_env(tdb, &[]).await
    }

    /// An archive whose worker has these settings on top.
    async fn with_env(tdb: &TestDb, env: &[(&str, &str)]) -> Archive {
        migrate::migrate_latest(&tdb.db).await.expect("migrate");
        let redis = TestRedis::new();
        let queue = redis.queue().await;
        let dir = tempfile::tempdir().unwrap();
        let worker = tokio::process::Command::new(binary("paperboy-worker"))
            .env_clear()
            .env("PAPERBOY_REDIS_URL", &redis.url)
            .env("PAPERBOY_REDIS_PREFIX", &redis.prefix)
            .env("PAPERBOY_DATA_DIR", dir.path().join("data"))
            .env("PAPERBOY_MEDIA_ROOT", dir.path().join("media"))
            .env("PAPERBOY_CONSUMPTION_DIR", dir.path().join("consume"))
            .env("PAPERBOY_DATABASE_URL", &tdb.url)
            .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
            .env("PAPERBOY_LOG_LEVEL", "warn")
            .envs(env.iter().copied())
            .args(["--queues", "export,import"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start paperboy-worker");
        Archive {
            _redis: redis,
            queue,
            db: tdb.db.clone(),
            dir,
            _worker: worker,
        }
    }

    fn media(&self) -> PathBuf {
        self.dir.path().join("media")
    }

    /// Puts a passphrase where the CLI would and returns its name.
    fn passphrase(&self, p: &str) -> String {
        let d = self.dir.path().join("data/secrets");
        std::fs::create_dir_all(&d).unwrap();
        let name = format!("{}.passphrase", ulid::Ulid::new());
        std::fs::write(d.join(&name), p).unwrap();
        name
    }

    async fn run(&self, job: Job) -> JobRecord {
        let id = self.queue.enqueue(&job).await.unwrap().id().to_string();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let r = self.queue.get(&id).await.unwrap();
            if r.state.is_terminal() {
                return r;
            }
            assert!(
                !matches!(r.state, JobState::Scheduled),
                "job failed transiently: {:?}",
                r.errors
            );
            assert!(Instant::now() < deadline, "job {id} did not end: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn import(&self, source: &Path) -> JobRecord {
        self.import_with(ImportArgs {
            source: source.display().to_string(),
            ..Default::default()
        })
        .await
    }

    async fn import_with(&self, args: ImportArgs) -> JobRecord {
        self.run(Job::Import(args)).await
    }

    async fn export(&self, args: ExportArgs) -> JobRecord {
        self.run(Job::Export(args)).await
    }

    /// Every stored row of every model, by label.
    async fn rows(&self) -> BTreeMap<&'static str, Vec<RowData>> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        let mut out = BTreeMap::new();
        for m in MODELS {
            let rows = transfer::rows_after(&mut conn, m, 0, 1_000_000)
                .await
                .unwrap();
            let mut all = rows;
            for l in m.m2m {
                let links = transfer::links_between(&mut conn, l, 0, i64::MAX)
                    .await
                    .unwrap();
                // Links folded into the comparison as extra pseudo rows.
                all.push(RowData {
                    pk: -1,
                    vals: links
                        .iter()
                        .map(|(a, b)| paperboy_shared::db::transfer::Val::Text(format!("{a}-{b}")))
                        .collect(),
                });
            }
            out.insert(m.label, all);
        }
        out
    }

    /// Relative path → bytes of every file in the media root.
    fn media_files(&self) -> BTreeMap<String, Vec<u8>> {
        files_under(&self.media())
    }
}

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn succeeded(r: &JobRecord) -> Value {
    assert_eq!(r.state, JobState::Succeeded, "job failed: {:?}", r.errors);
    r.result.clone().unwrap_or(Value::Null)
}

fn failed(r: &JobRecord) -> String {
    assert!(
        matches!(r.state, JobState::Dead | JobState::Failed),
        "job did not fail: {r:?}"
    );
    format!("{:?}", r.errors)
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in files_under(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

async fn assert_empty(a: &Archive) {
    for (label, rows) in a.rows().await {
        assert!(
            rows.iter().all(|r| r.pk == -1 && r.vals.is_empty()),
            "{label} has rows after a refused import"
        );
    }
    let left: Vec<String> = a.media_files().into_keys().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    let staging: Vec<_> = std::fs::read_dir(a.media())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with(".paperboy"))
                .collect()
        })
        .unwrap_or_default();
    assert!(staging.is_empty(), "staging left: {staging:?}");
}

async fn fixture_import_keeps_everything(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let res = succeeded(&a.import(&fixture()).await);
    let imported = &res["imported"];
    assert_eq!(imported["documents.document"], 22, "{res}");
    assert_eq!(imported["documents.tag"], 11);
    assert_eq!(imported["documents.correspondent"], 8);
    assert_eq!(imported["documents.documenttype"], 7);
    assert_eq!(imported["documents.storagepath"], 3);
    assert_eq!(imported["documents.customfield"], 10);
    assert_eq!(imported["documents.customfieldinstance"], 18);
    assert_eq!(imported["documents.note"], 3);
    assert_eq!(imported["auth.user"], 3);
    assert_eq!(imported["paperless_mail.mailrule"], 1);
    assert_eq!(res["skipped_models"]["auth.permission"], 166);
    assert_eq!(res["files"], 22 + 22 + 6);
    // Every original and archive file is where the record says, with its checksum.
    let manifest: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("manifest.json")).unwrap())
            .unwrap();
    let files = a.media_files();
    for r in manifest
        .iter()
        .filter(|r| r["model"] == "documents.document")
    {
        let f = &r["fields"];
        let orig = &files[&format!("originals/{}", f["filename"].as_str().unwrap())];
        assert_eq!(sha256(orig), f["checksum"].as_str().unwrap());
        if let Some(an) = f["archive_filename"].as_str() {
            assert_eq!(
                sha256(&files[&format!("archive/{an}")]),
                f["archive_checksum"].as_str().unwrap()
            );
        }
        let thumb = format!("thumbnails/{:07}.webp", r["pk"].as_i64().unwrap());
        assert_eq!(
            files[&thumb],
            std::fs::read(fixture().join(r["__exported_thumbnail_name__"].as_str().unwrap()))
                .unwrap()
        );
    }
    // A second import into the now non-empty archive is refused.
    let e = failed(&a.import(&fixture()).await);
    assert!(e.contains("not empty"), "{e}");
}

async fn round_trip_is_byte_for_byte(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    succeeded(&a.import(&fixture()).await);
    let target = tempfile::tempdir().unwrap();
    let res = succeeded(
        &a.export(ExportArgs {
            target: target.path().display().to_string(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(res["documents"], 22, "{res}");
    assert!(
        target
            .path()
            .join("2024-03-12 ACME Corp acme_invoice_2024-03.pdf")
            .is_file()
    );
    assert!(
        target
            .path()
            .join("2023-09-01 employment_contract_01.pdf")
            .is_file()
    );
    let tdb2 = TestDb::new(tdb.db.engine).await;
    let b = Archive::new(&tdb2).await;
    succeeded(&b.import(target.path()).await);
    assert_eq!(a.rows().await, b.rows().await);
    assert_eq!(a.media_files(), b.media_files());

    // Nothing changed: nothing copied; -cj leaves the manifest untouched.
    let args = ExportArgs {
        target: target.path().display().to_string(),
        compare_json: true,
        ..Default::default()
    };
    let mtime = || {
        std::fs::metadata(target.path().join("manifest.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = mtime();
    let res = succeeded(&a.export(args.clone()).await);
    assert_eq!(res["files_copied"], 0, "{res}");
    assert_eq!(res["json_unchanged"], 2, "{res}");
    assert_eq!(mtime(), before);
    // -c: checksums compared; a damaged exported file is copied again.
    let victim = target
        .path()
        .join("2024-03-12 ACME Corp acme_invoice_2024-03.pdf");
    let good = std::fs::read(&victim).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 0xff;
    std::fs::write(&victim, &bad).unwrap();
    let res = succeeded(
        &a.export(ExportArgs {
            compare_checksums: true,
            ..args.clone()
        })
        .await,
    );
    assert_eq!(res["files_copied"], 1, "{res}");
    assert_eq!(std::fs::read(&victim).unwrap(), good);
    // -d removes a stray file and a symlink, never what the symlink points at.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.txt"), b"keep").unwrap();
    std::fs::create_dir_all(target.path().join("stray")).unwrap();
    std::fs::write(target.path().join("stray/old.pdf"), b"old").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("keep.txt"),
        target.path().join("link.pdf"),
    )
    .unwrap();
    let res = succeeded(
        &a.export(ExportArgs {
            delete: true,
            ..args.clone()
        })
        .await,
    );
    assert_eq!(res["deleted"], 2, "{res}");
    assert!(!target.path().join("stray").exists());
    assert!(std::fs::symlink_metadata(target.path().join("link.pdf")).is_err());
    assert_eq!(
        std::fs::read(outside.path().join("keep.txt")).unwrap(),
        b"keep"
    );
    // --data-only with --delete is refused.
    let e = failed(
        &a.export(ExportArgs {
            data_only: true,
            delete: true,
            ..args.clone()
        })
        .await,
    );
    assert!(e.contains("--data-only with --delete"), "{e}");
    // Split manifests, folder prefixes, zip: each imports whole.
    for (i, variant) in [
        ExportArgs {
            split_manifest: true,
            use_folder_prefix: true,
            ..Default::default()
        },
        ExportArgs {
            zip: true,
            zip_name: Some("backup".into()),
            ..Default::default()
        },
    ]
    .into_iter()
    .enumerate()
    {
        let t = tempfile::tempdir().unwrap();
        succeeded(
            &a.export(ExportArgs {
                target: t.path().display().to_string(),
                ..variant.clone()
            })
            .await,
        );
        let src = if variant.zip {
            t.path().join("backup.zip")
        } else {
            t.path().to_path_buf()
        };
        if variant.split_manifest {
            assert!(
                t.path()
                    .join("json/2024-03-12 ACME Corp acme_invoice_2024-03-manifest.json")
                    .is_file()
            );
        }
        let tdb3 = TestDb::new(tdb.db.engine).await;
        let c = Archive::new(&tdb3).await;
        succeeded(&c.import(&src).await);
        assert_eq!(a.rows().await, c.rows().await, "variant {i}");
        assert_eq!(a.media_files(), c.media_files(), "variant {i}");
    }
    tdb2.cleanup().await;
}

async fn passphrase_round_trip_and_wrong_passphrase(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    succeeded(&a.import(&fixture()).await);
    let t = tempfile::tempdir().unwrap();
    let name = a.passphrase("securepassword");
    succeeded(
        &a.export(ExportArgs {
            target: t.path().display().to_string(),
            data_only: true,
            passphrase_file: Some(name.clone()),
            ..Default::default()
        })
        .await,
    );
    assert!(
        !a.dir.path().join("data/secrets").join(&name).exists(),
        "passphrase file not removed"
    );
    let manifest = std::fs::read_to_string(t.path().join("manifest.json")).unwrap();
    assert!(!manifest.contains("imap-secret-password"));
    assert!(manifest.contains("\"password\": \"674141414141"));
    let tdb2 = TestDb::new(tdb.db.engine).await;
    let b = Archive::new(&tdb2).await;
    let src = t.path().display().to_string();
    let e = failed(
        &b.import_with(ImportArgs {
            source: src.clone(),
            data_only: true,
            ..Default::default()
        })
        .await,
    );
    assert!(e.contains("No passphrase was given"), "{e}");
    let e = failed(
        &b.import_with(ImportArgs {
            source: src.clone(),
            data_only: true,
            passphrase_file: Some(b.passphrase("wrong")),
            ..Default::default()
        })
        .await,
    );
    assert!(e.contains("passphrase is wrong"), "{e}");
    assert_empty(&b).await;
    succeeded(
        &b.import_with(ImportArgs {
            source: src,
            data_only: true,
            passphrase_file: Some(b.passphrase("securepassword")),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(a.rows().await, b.rows().await);
    tdb2.cleanup().await;
}

/// A copy of the fixture whose manifest `edit` changes.
fn hostile_copy(edit: impl FnOnce(&mut Vec<Value>, &Path)) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), t.path());
    let p = t.path().join("manifest.json");
    let mut m: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut m, t.path());
    std::fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
    t
}

fn first_doc(m: &mut [Value]) -> &mut Value {
    m.iter_mut()
        .find(|r| r["model"] == "documents.document")
        .unwrap()
}

async fn hostile_exports_are_refused_and_leave_nothing(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let cases: Vec<(&str, tempfile::TempDir)> = vec![
        (
            "checksum mismatch",
            hostile_copy(|m, root| {
                let n = first_doc(m)["__exported_file_name__"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(root.join(n))
                    .unwrap();
                f.write_all(b"tampered").unwrap();
            }),
        ),
        (
            "does not appear to be in the source directory",
            hostile_copy(|m, _| {
                first_doc(m)["__exported_file_name__"] = "noexist.pdf".into();
            }),
        ),
        (
            "leads out of the export",
            hostile_copy(|m, _| {
                first_doc(m)["__exported_file_name__"] = "../../etc/passwd".into();
            }),
        ),
        (
            "symbolic link",
            hostile_copy(|m, root| {
                let n = first_doc(m)["__exported_file_name__"]
                    .as_str()
                    .unwrap()
                    .to_string();
                std::fs::rename(root.join(&n), root.join("real.bin")).unwrap();
                std::os::unix::fs::symlink(root.join("real.bin"), root.join(&n)).unwrap();
            }),
        ),
        (
            "does not refer to an actual document file",
            hostile_copy(|m, _| {
                first_doc(m)
                    .as_object_mut()
                    .unwrap()
                    .remove("__exported_file_name__");
            }),
        ),
        (
            "which is not in the export",
            hostile_copy(|m, _| {
                first_doc(m)["fields"]["correspondent"] = 999.into();
            }),
        ),
        (
            "Could not coerce",
            hostile_copy(|m, _| {
                first_doc(m)["fields"]["page_count"] = "many".into();
            }),
        ),
    ];
    for (expect, dir) in &cases {
        let e = failed(&a.import(dir.path()).await);
        assert!(e.contains(expect), "{expect}: {e}");
        assert_empty(&a).await;
    }
    // Zip slip and a truncated zip.
    let z = tempfile::tempdir().unwrap();
    let slip = z.path().join("slip.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&slip).unwrap());
        w.start_file("manifest.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"[]").unwrap();
        w.start_file("../evil.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"evil").unwrap();
        w.finish().unwrap();
    }
    let e = failed(&a.import(&slip).await);
    assert!(e.contains("zip entry"), "{e}");
    assert!(!z.path().join("evil.txt").exists() && !a.dir.path().join("data/evil.txt").exists());
    let t = tempfile::tempdir().unwrap();
    let full = tempfile::tempdir().unwrap();
    let src_db = TestDb::new(tdb.db.engine).await;
    let src_archive = Archive::new(&src_db).await;
    succeeded(&src_archive.import(&fixture()).await);
    succeeded(
        &src_archive
            .export(ExportArgs {
                target: full.path().display().to_string(),
                zip: true,
                zip_name: Some("x".into()),
                ..Default::default()
            })
            .await,
    );
    let bytes = std::fs::read(full.path().join("x.zip")).unwrap();
    let truncated = t.path().join("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = failed(&a.import(&truncated).await);
    assert!(e.contains("zip"), "{e}");
    assert_empty(&a).await;
}

/// `-f`: files named by the storage layer's templates (spec §1.6, test cases 3 and 10), folders
/// included, derived files beside their original; the export imports back row for row.
async fn export_f_names_files_by_the_filename_format(tdb: TestDb) {
    let a = Archive::with_env(
        &tdb,
        &[(
            "PAPERBOY_FILENAME_FORMAT",
            "{created_year}/{correspondent}/{title}",
        )],
    )
    .await;
    succeeded(&a.import(&fixture()).await);
    let target = tempfile::tempdir().unwrap();
    let res = succeeded(
        &a.export(ExportArgs {
            target: target.path().display().to_string(),
            use_filename_format: true,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(res["documents"], 22, "{res}");
    // The storage path's template wins; the others follow PAPERBOY_FILENAME_FORMAT; a version
    // gets `_v1`.
    let dir = target.path().join("finance/2024/ACME Corp");
    let listing: Vec<String> = walkdir::WalkDir::new(target.path())
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            e.path()
                .strip_prefix(target.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(
        dir.join("acme_invoice_2024-03.pdf").is_file(),
        "{res} {listing:?}"
    );
    assert!(dir.join("acme_invoice_2024-03-thumbnail.webp").is_file());
    for name in [
        "2024/ACME Corp/warranty_certificate.pdf",
        "2024/none/Grocery receipt-archive.pdf",
        "2023/none/employment_contract_v1.pdf",
    ] {
        assert!(target.path().join(name).is_file(), "{name}: {listing:?}");
    }
    // No file at the top but the manifests: every name went through the template.
    let top: Vec<String> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        top.iter().all(|n| n.ends_with(".json")),
        "files outside the template's folders: {top:?}"
    );
    let tdb2 = TestDb::new(tdb.db.engine).await;
    let b = Archive::new(&tdb2).await;
    succeeded(&b.import(target.path()).await);
    assert_eq!(a.rows().await, b.rows().await);
}

paperboy_tests::on_both_engines!(
    export_f_names_files_by_the_filename_format,
    fixture_import_keeps_everything,
    round_trip_is_byte_for_byte,
    passphrase_round_trip_and_wrong_passphrase,
    hostile_exports_are_refused_and_leave_nothing,
);
