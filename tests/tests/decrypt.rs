//! `decrypt_documents` end to end (spec `export-import.md` §7): GnuPG-era documents (the
//! fixtures of `shared/fixtures/gnupg`, passphrase `test`, binary and ASCII-armored) planted in
//! a database (both engines) and a media folder; a real worker with `PAPERBOY_PASSPHRASE_FILE`.
//!
//! Needs a worker with GnuPG support (the `gpg` feature, on by default): `cargo build -p
//! paperboy-worker`, then `cargo test -p paperboy-tests --test decrypt`.

#![cfg(feature = "gpg")]

mod files_common;

use std::path::{Path, PathBuf};

use files_common::{Archive, sha256_of};
use paperboy_shared::db::{NewDocument, StorageType, documents};
use paperboy_shared::job::{ExportArgs, Job};
use paperboy_shared::media::Folder;
use paperboy_shared::queue::JobState;
use paperboy_tests::db::TestDb;

const PDF_SHA256: &str = "a81b16b6b313cfd7e60eb7b12598d1343b58622b4030cfa19a2724a02e98db1b";
const WEBP_SHA256: &str = "c3e46806e6f8969b3e657bb121e3f9681e139734a876b9e1f3b7c86a8e668e12";

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/gnupg")
        .join(name);
    assert!(p.is_file(), "fixture {} missing", p.display());
    p
}

/// An encrypted document: row (storage type gpg, checksum of the plaintext) and files.
async fn plant_gpg(a: &Archive, title: &str, filename: &str, source: &str) -> i64 {
    let mut tx = a.db.begin().await.unwrap();
    let id = documents::insert(
        &mut tx,
        &NewDocument {
            title: title.into(),
            content: "text".into(),
            mime_type: "application/pdf".into(),
            checksum: PDF_SHA256.into(),
            created: "2019-01-01".into(),
            original_filename: Some("scan.pdf".into()),
            storage_type: StorageType::Gpg,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    documents::set_files(&mut tx, id, Some(filename), None, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let dest = a.media.original(filename).unwrap();
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(fixture(source), &dest).unwrap();
    std::fs::copy(
        fixture("0000004.webp.gpg"),
        a.media
            .dir(Folder::Thumbnails)
            .join(format!("{id:07}.webp.gpg")),
    )
    .unwrap();
    id
}

fn passphrase_file(a: &Archive, pass: &str) -> String {
    let p = a.dir.path().join(format!("passphrase-{pass}"));
    std::fs::write(&p, format!("{pass}\n")).unwrap();
    p.to_string_lossy().into_owned()
}

/// Binary and armored originals decrypt, keep their folder and lose `.gpg`; thumbnails too;
/// the passphrase never is in the job.
async fn binary_and_armored_documents_decrypt(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let bin = plant_gpg(&a, "binary", "2020/0000004.pdf.gpg", "0000004.pdf.gpg").await;
    let asc = plant_gpg(&a, "armored", "armored.pdf.gpg", "0000004.pdf.asc").await;
    let pass = passphrase_file(&a, "test");
    let _w = a.worker("decrypt_documents", &[("PAPERBOY_PASSPHRASE_FILE", &pass)]);
    let r = a.run(&Job::DecryptDocuments {}).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    assert_eq!(
        r.job,
        serde_json::json!({"kind": "decrypt_documents", "args": {}})
    );
    let res = r.result.unwrap();
    assert_eq!(res["decrypted"], 2, "{res}");
    for (id, name) in [(bin, "2020/0000004.pdf"), (asc, "armored.pdf")] {
        let d = documents::get(&a.db, id).await.unwrap().unwrap();
        assert_eq!(d.storage_type, StorageType::Unencrypted);
        assert_eq!(d.filename.as_deref(), Some(name));
        assert_eq!(sha256_of(&a.media.original(name).unwrap()), PDF_SHA256);
        assert!(!a.media.original(&format!("{name}.gpg")).unwrap().exists());
        assert_eq!(sha256_of(&a.media.thumbnail(id)), WEBP_SHA256);
        assert!(
            !a.media
                .dir(Folder::Thumbnails)
                .join(format!("{id:07}.webp.gpg"))
                .exists()
        );
    }
    // Run again: nothing left to do.
    let again = a.run(&Job::DecryptDocuments {}).await;
    assert_eq!(again.result.unwrap()["decrypted"], 0);
}

/// A wrong passphrase is a clear error and changes nothing; with the right one it resumes.
async fn a_wrong_passphrase_changes_nothing(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let id = plant_gpg(&a, "binary", "0000004.pdf.gpg", "0000004.pdf.gpg").await;
    let before = (a.files(Folder::Originals), a.files(Folder::Thumbnails));
    let wrong = passphrase_file(&a, "wrong");
    let mut w = a.worker("decrypt_documents", &[("PAPERBOY_PASSPHRASE_FILE", &wrong)]);
    let r = a.run(&Job::DecryptDocuments {}).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    let msg = &r.errors.last().unwrap().message;
    assert!(msg.contains("wrong passphrase"), "{msg}");
    assert_eq!(
        (a.files(Folder::Originals), a.files(Folder::Thumbnails)),
        before
    );
    let d = documents::get(&a.db, id).await.unwrap().unwrap();
    assert_eq!(d.storage_type, StorageType::Gpg);
    assert_eq!(d.filename.as_deref(), Some("0000004.pdf.gpg"));
    w.kill();
    // No passphrase at all: says which setting.
    let mut w = a.worker("decrypt_documents", &[]);
    let r = a.run(&Job::DecryptDocuments {}).await;
    assert!(
        r.errors
            .last()
            .unwrap()
            .message
            .contains("PAPERBOY_PASSPHRASE")
    );
    w.kill();
    let right = passphrase_file(&a, "test");
    let _w = a.worker("decrypt_documents", &[("PAPERBOY_PASSPHRASE_FILE", &right)]);
    let r = a.run(&Job::DecryptDocuments {}).await;
    assert_eq!(r.result.unwrap()["decrypted"], 1);
    assert_eq!(a.files(Folder::Originals), ["0000004.pdf"]);
}

/// `paperboy export` of an archive with a GnuPG-era document: without `PAPERBOY_PASSPHRASE`
/// a clear error naming both fixes and no manifest; with it the original and the thumbnail are
/// exported decrypted (checked against the checksum) and the record names the plaintext, so
/// paperboy's and paperless-ngx 3.x's importers take it; the archive itself stays as it was.
async fn export_decrypts_gnupg_era_documents(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let id = plant_gpg(&a, "binary", "2020/0000004.pdf.gpg", "0000004.pdf.gpg").await;
    let out = tempfile::tempdir().unwrap();
    let job = Job::Export(ExportArgs {
        target: out.path().display().to_string(),
        ..Default::default()
    });
    let mut w = a.worker("export", &[]);
    let r = a.run(&job).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    let e = &r.errors.last().unwrap().message;
    assert!(
        e.contains("GnuPG-encrypted")
            && e.contains("PAPERBOY_PASSPHRASE")
            && e.contains("decrypt-documents"),
        "{e}"
    );
    assert!(!out.path().join("manifest.json").exists());
    w.kill();
    let pass = passphrase_file(&a, "test");
    let _w = a.worker("export", &[("PAPERBOY_PASSPHRASE_FILE", &pass)]);
    let r = a.run(&job).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let manifest: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let rec = manifest
        .iter()
        .find(|r| r["model"] == "documents.document" && r["pk"] == id)
        .expect("the document's record");
    assert_eq!(rec["fields"]["filename"], "2020/0000004.pdf");
    let file = |key: &str| out.path().join(rec[key].as_str().unwrap());
    assert_eq!(sha256_of(&file("__exported_file_name__")), PDF_SHA256);
    assert_eq!(sha256_of(&file("__exported_thumbnail_name__")), WEBP_SHA256);
    // Again: the plaintexts carry their sources' mtimes, so neither is decrypted again. With
    // -c the original is compared with its checksum instead (it matches; the thumbnail, with
    // no checksum, by its mtime). A plaintext whose mtime differs is decrypted again.
    for compare_checksums in [false, true] {
        let again = a
            .run(&Job::Export(ExportArgs {
                target: out.path().display().to_string(),
                compare_checksums,
                ..Default::default()
            }))
            .await;
        assert_eq!(again.state, JobState::Succeeded, "{:?}", again.errors);
        let res = again.result.unwrap();
        assert_eq!(
            (
                res["files_unchanged"].as_u64(),
                res["files_copied"].as_u64()
            ),
            (Some(2), Some(0)),
            "-c {compare_checksums}: {res}"
        );
    }
    std::fs::File::options()
        .write(true)
        .open(file("__exported_thumbnail_name__"))
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    let again = a.run(&job).await;
    assert_eq!(again.state, JobState::Succeeded, "{:?}", again.errors);
    let res = again.result.unwrap();
    assert_eq!(
        (
            res["files_unchanged"].as_u64(),
            res["files_copied"].as_u64()
        ),
        (Some(1), Some(1)),
        "{res}"
    );
    assert_eq!(sha256_of(&file("__exported_thumbnail_name__")), WEBP_SHA256);
    // -z: the scratch folder gets the plaintext too (a GnuPG-era file is never hard-linked).
    let z = tempfile::tempdir().unwrap();
    let r = a
        .run(&Job::Export(ExportArgs {
            target: z.path().display().to_string(),
            zip: true,
            zip_name: Some("e".into()),
            ..Default::default()
        }))
        .await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(z.path().join("e.zip")).unwrap()).unwrap();
    let mut entry = zip
        .by_name(rec["__exported_file_name__"].as_str().unwrap())
        .unwrap();
    let mut plain = vec![];
    std::io::Read::read_to_end(&mut entry, &mut plain).unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&plain)), PDF_SHA256);
    drop(entry);
    let d = documents::get(&a.db, id).await.unwrap().unwrap();
    assert_eq!(d.storage_type, StorageType::Gpg);
    assert_eq!(a.files(Folder::Originals), ["2020/0000004.pdf.gpg"]);
}

paperboy_tests::on_both_engines!(
    binary_and_armored_documents_decrypt,
    a_wrong_passphrase_changes_nothing,
    export_decrypts_gnupg_era_documents,
);
