//! `decrypt_documents` (spec `export-import.md` §7): the files of GnuPG-era documents
//! (`storage_type` gpg, imported from paperless ≤ 2.20) decrypted with the passphrase of the
//! worker's `PAPERBOY_PASSPHRASE` setting (or `_FILE`; never a job argument, so it never
//! reaches Redis).
//!
//! Per document, resumable and without loss:
//! 1. decrypt the original (binary or ASCII-armored OpenPGP, symmetric; rPGP) and check the
//!    plaintext against the stored checksum (SHA-256, or MD5 of old imports): a wrong
//!    passphrase or a damaged file is an error for that document and changes nothing;
//! 2. decrypt the thumbnail (`<id>.webp.gpg`, or `.png.gpg` of 1.8–1.16 installs); a missing
//!    or undecryptable one is reported (regenerate it with `paperboy thumbnails`);
//! 3. write the plaintext original under its new name without replacing anything: the
//!    template's name if one is set, else the old name minus `.gpg` (keeping its folder,
//!    unlike paperless 2.14–2.20); a file already there with the right content (an earlier
//!    run that died) is adopted;
//! 4. the row becomes `unencrypted` with the new name (guarded by the old one), then the
//!    `.gpg` files go.

use std::path::Path;

use paperboy_shared::db::{DbError, files};
use paperboy_shared::media::{self, Folder, Media, MediaError};
use serde_json::json;
use sha2::Digest;

use super::{JobContext, JobError};
use crate::filenames::{self, FilenameSettings, NameInfo, Namer};

/// Ids per page of the document listing.
const PAGE: i64 = 100;

/// Without the `gpg` feature: every decryption is refused, so nothing changes.
#[cfg(not(feature = "gpg"))]
pub fn decrypt(_bytes: &[u8], _passphrase: &str) -> Result<Vec<u8>, String> {
    Err(
        "this paperboy-worker was built without GnuPG support (build it with its default feature \
         `gpg`)"
            .into(),
    )
}

/// Decrypts a symmetric OpenPGP message (binary or armored). Errors say what went wrong,
/// never the passphrase.
#[cfg(feature = "gpg")]
pub fn decrypt(bytes: &[u8], passphrase: &str) -> Result<Vec<u8>, String> {
    use pgp::composed::Message;
    use std::io::Cursor;
    let armored = bytes
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(10)
        .eq(b"-----BEGIN".iter());
    let msg = if armored {
        Message::from_armor(Cursor::new(bytes)).map(|(m, _)| m)
    } else {
        Message::from_bytes(Cursor::new(bytes))
    }
    .map_err(|e| format!("not an OpenPGP message: {e}"))?;
    let mut msg = msg
        .decrypt_with_password(&passphrase.into())
        .map_err(|e| format!("cannot decrypt (wrong passphrase?): {e}"))?;
    if msg.is_compressed() {
        msg = msg
            .decompress()
            .map_err(|e| format!("cannot decompress: {e}"))?;
    }
    msg.as_data_vec()
        .map_err(|e| format!("cannot decrypt (wrong passphrase?): {e}"))
}

/// The hex digest of `bytes` of the kind `like` is (32 characters: MD5, else SHA-256).
pub fn digest(bytes: &[u8], like: &str) -> String {
    if like.len() == 32 {
        hex::encode(md5::Md5::digest(bytes))
    } else {
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

/// The plaintext name of an encrypted original (`2020/foo.pdf.gpg` → `2020/foo.pdf`).
pub fn plain_name(encrypted: &str) -> Option<&str> {
    encrypted.strip_suffix(".gpg").filter(|n| !n.is_empty())
}

/// The encrypted thumbnail of a GnuPG-era document that is there: `<id>.webp.gpg`, or the
/// `.png.gpg` of a 1.8–1.16 install (spec §7).
pub fn encrypted_thumbnail(media: &Media, id: i64) -> Option<std::path::PathBuf> {
    let thumbs = media.dir(Folder::Thumbnails);
    [
        thumbs.join(format!("{id:07}.webp.gpg")),
        thumbs.join(format!("{id:07}.png.gpg")),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// What happened to one document.
enum Outcome {
    Decrypted { filename: String, thumbnail: bool },
    Failed(String),
}

async fn decrypt_one(
    ctx: &JobContext,
    media: &Media,
    settings: &FilenameSettings,
    passphrase: &str,
    id: i64,
) -> Result<Outcome, JobError> {
    let Some(data) = files::naming_of(ctx.db(), id).await? else {
        return Ok(Outcome::Failed("document not found".into()));
    };
    let doc = &data.document;
    let Some(old) = doc.filename.clone() else {
        return Ok(Outcome::Failed("document has no file name".into()));
    };
    let Some(plain) = plain_name(&old).map(str::to_string) else {
        return Ok(Outcome::Failed(format!(
            "Abort: encrypted file {old} does not end with .gpg"
        )));
    };
    let enc_path = media.original(&old).map_err(JobError::from_classified)?;
    let encrypted = match std::fs::read(&enc_path) {
        Ok(b) => b,
        Err(e) => {
            return Ok(Outcome::Failed(format!(
                "cannot read {}: {e}",
                enc_path.display()
            )));
        }
    };
    let pass = passphrase.to_string();
    let plaintext = tokio::task::spawn_blocking(move || decrypt(&encrypted, &pass))
        .await
        .map_err(|e| JobError::Permanent(format!("decryption crashed: {e}")))?;
    let plaintext = match plaintext {
        Ok(p) => p,
        Err(e) => return Ok(Outcome::Failed(format!("{old}: {e}"))),
    };
    if digest(&plaintext, &doc.checksum) != doc.checksum.to_ascii_lowercase() {
        return Ok(Outcome::Failed(format!(
            "{old}: the decrypted file does not match the stored checksum (wrong passphrase or \
             damaged file); nothing changed"
        )));
    }

    // The thumbnail: decrypt it if it is there.
    let enc_thumb = encrypted_thumbnail(media, id);
    let thumb_plain = match &enc_thumb {
        Some(p) => std::fs::read(p)
            .map_err(|e| e.to_string())
            .and_then(|b| decrypt(&b, passphrase))
            .inspect_err(
                |e| tracing::warn!(document_id = id, error = %e, "thumbnail not decrypted"),
            )
            .ok(),
        None => None,
    };

    // The new name: the template's, else the old one without `.gpg`.
    let mut info = NameInfo::from_data(&data);
    info.filename = Some(plain.clone());
    let namer = Namer::new(&info, settings);
    let from_template = filenames::template_source(&info, settings).is_some();
    let dir = media.dir(Folder::Originals);
    let mut target = if from_template {
        filenames::unique_original(&namer, &dir, None)
    } else {
        plain.clone()
    };
    let mut counter = 1;
    loop {
        match media.write_new(Folder::Originals, &target, &plaintext) {
            Ok(_) => break,
            Err(MediaError::Exists { path }) => {
                if std::fs::read(&path).is_ok_and(|b| b == plaintext) {
                    break; // written by an earlier run that died before the update
                }
                target = if from_template {
                    filenames::unique_original(&namer, &dir, None)
                } else {
                    counter_name(&plain, counter)
                };
                counter += 1;
                if counter > 100 {
                    return Ok(Outcome::Failed(format!("no free name for {plain}")));
                }
            }
            Err(e) => return Err(JobError::from_classified(e)),
        }
    }
    if let Some(t) = &thumb_plain {
        media
            .write_thumbnail(id, t)
            .map_err(JobError::from_classified)?;
    }
    let mut tx = ctx.db().begin().await?;
    let done = files::set_decrypted(&mut tx, id, Some(&old), &target).await?;
    tx.commit().await.map_err(DbError::from)?;
    if !done {
        return Ok(Outcome::Failed(
            "the document changed meanwhile; decrypted copy left beside it".into(),
        ));
    }
    let _ = media::remove_file(&enc_path);
    if let Some(parent) = enc_path.parent() {
        media::remove_empty_dirs(parent, &dir);
    }
    if let (Some(p), Some(_)) = (&enc_thumb, &thumb_plain) {
        let _ = media::remove_file(p);
    }
    Ok(Outcome::Decrypted {
        filename: target,
        thumbnail: thumb_plain.is_some(),
    })
}

/// `a/b.pdf`, counter 1 → `a/b_01.pdf`.
fn counter_name(name: &str, counter: u32) -> String {
    let p = Path::new(name);
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let ext = p
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let file = format!("{stem}_{counter:02}{ext}");
    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => format!("{}/{file}", d.to_string_lossy()),
        None => file,
    }
}

pub async fn run(ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let Some(passphrase) = ctx.config().passphrase.clone() else {
        return Err(JobError::Permanent(format!(
            "Passphrase not defined. Set {} (or {}_FILE) in the environment of the workers \
             serving the decrypt_documents queue",
            paperboy_shared::config::names::PASSPHRASE,
            paperboy_shared::config::names::PASSPHRASE
        )));
    };
    let settings = FilenameSettings::from_config(ctx.config()).map_err(JobError::Permanent)?;
    let media = Media::from_config(ctx.config());
    let (mut decrypted, mut failed, mut no_thumb) = (Vec::new(), Vec::new(), Vec::new());
    let mut after = 0;
    loop {
        ctx.check_cancelled()?;
        let ids = files::gpg_ids_after(ctx.db(), after, PAGE).await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        for id in ids {
            ctx.progress(decrypted.len() as u64, 0, format!("document {id}"));
            tracing::info!(document_id = id, "Decrypting document");
            match decrypt_one(ctx, &media, &settings, passphrase.expose(), id).await? {
                Outcome::Decrypted {
                    filename,
                    thumbnail,
                } => {
                    if !thumbnail {
                        no_thumb.push(id);
                    }
                    decrypted.push(json!({"document_id": id, "filename": filename}));
                }
                Outcome::Failed(e) => {
                    tracing::warn!(document_id = id, error = %e, "not decrypted");
                    failed.push(json!({"document_id": id, "error": e}));
                }
            }
        }
    }
    if !failed.is_empty() && decrypted.is_empty() {
        return Err(JobError::Permanent(format!(
            "no document decrypted: {}",
            failed[0]["error"].as_str().unwrap_or_default()
        )));
    }
    Ok(json!({
        "decrypted": decrypted.len(),
        "documents": decrypted,
        "failed": failed,
        "thumbnails_missing": no_thumb,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_gpg_and_keep_their_folder() {
        assert_eq!(plain_name("2020/foo.pdf.gpg"), Some("2020/foo.pdf"));
        assert_eq!(plain_name("0000004.pdf.gpg"), Some("0000004.pdf"));
        assert_eq!(plain_name("0000004.pdf"), None);
        assert_eq!(plain_name(".gpg"), None);
        assert_eq!(counter_name("2020/foo.pdf", 1), "2020/foo_01.pdf");
        assert_eq!(counter_name("foo", 12), "foo_12");
    }
}

#[cfg(all(test, feature = "gpg"))]
mod gpg_tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/gnupg")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    const PDF_SHA256: &str = "a81b16b6b313cfd7e60eb7b12598d1343b58622b4030cfa19a2724a02e98db1b";

    #[test]
    fn binary_and_armored_originals_decrypt() {
        for name in ["0000004.pdf.gpg", "0000004.pdf.asc"] {
            let plain = decrypt(&fixture(name), "test").unwrap();
            assert_eq!(plain.len(), 23_578, "{name}");
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&plain)),
                PDF_SHA256,
                "{name}"
            );
            assert_eq!(
                hex::encode(md5::Md5::digest(&plain)),
                "82186aaa94f0b98697d704b90fd1c072"
            );
        }
        let thumb = decrypt(&fixture("0000004.webp.gpg"), "test").unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&thumb)),
            "c3e46806e6f8969b3e657bb121e3f9681e139734a876b9e1f3b7c86a8e668e12"
        );
    }

    #[test]
    fn a_wrong_passphrase_is_an_error() {
        for name in ["0000004.pdf.gpg", "0000004.pdf.asc"] {
            let err = decrypt(&fixture(name), "wrong").unwrap_err();
            assert!(err.contains("wrong passphrase"), "{name}: {err}");
            assert!(!err.contains("wrong\""), "{err}");
        }
        assert!(decrypt(b"%PDF-1.4 plain", "test").is_err());
    }
}
