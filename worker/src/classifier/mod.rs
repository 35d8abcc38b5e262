//! The Auto classifier (paperless-ngx `document_create_classifier`,
//! `../shared/specs/matching-index-files.md` §3): learns correspondent, document type, storage
//! path and tags of AUTO objects from the archive, and predicts them for the consume step and
//! the retagger.
//!
//! - [`text`]: preprocessing and the vectoriser (1–2-grams, `min_df`).
//! - [`model`]: sparse softmax / logistic models with a fixed seed.
//! - here: the [`Classifier`] (vocabulary + four heads + what it was trained on), its model
//!   file (own format: magic, version, HMAC-SHA256, JSON; upstream's pickle cannot be read, so
//!   a moved-in archive simply trains again), and [`current`], the per-process cache that
//!   picks up a newly trained file without a restart.

pub mod model;
pub mod text;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use paperboy_shared::config::Config;
use paperboy_shared::{Classify, ErrorClass};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::matching::assign::Predictions;
use model::{MultiLabel, SingleLabel};
use text::Vocabulary;

/// Bumped whenever features, models or the file layout change: an older file is ignored (with
/// a warning) and the next training run replaces it.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"PBCLSFR\n";

/// A trained classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classifier {
    pub format_version: u32,
    /// Largest `modified` (RFC 3339) of the training documents.
    pub last_modified: String,
    /// SHA-256 (hex) over the labels, spec §3.3.
    pub fingerprint: String,
    pub documents: usize,
    pub vocabulary: Vocabulary,
    pub correspondent: Option<SingleLabel>,
    pub document_type: Option<SingleLabel>,
    pub storage_path: Option<SingleLabel>,
    pub tags: Option<MultiLabel>,
}

/// Tag outputs count when their probability exceeds this (upstream's multi-label threshold).
pub const TAG_THRESHOLD: f32 = 0.5;

impl Classifier {
    /// What the classifier says for one text; `threshold` is the least probability a
    /// correspondent, type or storage path needs (`PAPERBOY_CLASSIFIER_THRESHOLD`).
    pub fn predict(&self, content: &str, threshold: f32) -> Predictions {
        let row = self.vocabulary.row(content);
        let one = |m: &Option<SingleLabel>| m.as_ref().and_then(|m| m.predict(&row, threshold));
        Predictions {
            correspondent: one(&self.correspondent),
            document_type: one(&self.document_type),
            storage_path: one(&self.storage_path),
            tags: self
                .tags
                .as_ref()
                .map(|m| m.predict(&row, TAG_THRESHOLD))
                .unwrap_or_default(),
        }
    }
}

/// Builds the spec §3.3 fingerprint incrementally, one document at a time in id order.
#[derive(Clone)]
pub struct Fingerprint(Sha256);

impl Default for Fingerprint {
    fn default() -> Self {
        use sha2::Digest;
        Fingerprint(Sha256::new())
    }
}

impl Fingerprint {
    /// Upstream's byte order: type label, correspondent label, each AUTO tag id, storage path
    /// label, each a 4-byte little-endian signed integer.
    pub fn add(&mut self, doc_type: i64, correspondent: i64, tags: &[i64], storage_path: i64) {
        use sha2::Digest;
        let mut put = |v: i64| self.0.update((v as i32).to_le_bytes());
        put(doc_type);
        put(correspondent);
        for &t in tags {
            put(t);
        }
        put(storage_path);
    }

    pub fn hex(self) -> String {
        use sha2::Digest;
        hex::encode(self.0.finalize())
    }
}

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("classifier model {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "classifier model {path} is corrupt or was signed with another key ({why}); it is ignored and the next `paperboy train-classifier` replaces it"
    )]
    Corrupt { path: PathBuf, why: String },
    #[error(
        "classifier model {path} has format version {found}, this paperboy writes {FORMAT_VERSION}; it is ignored and the next `paperboy train-classifier` replaces it"
    )]
    Incompatible { path: PathBuf, found: u32 },
}

impl Classify for ModelError {
    fn class(&self) -> ErrorClass {
        match self {
            ModelError::Io { .. } => ErrorClass::Transient,
            ModelError::Corrupt { .. } | ModelError::Incompatible { .. } => ErrorClass::Permanent,
        }
    }
}

/// Where the model file lives: `PAPERBOY_MODEL_FILE`, else `DATA_DIR/classification_model.paperboy`.
pub fn model_path(config: &Config) -> PathBuf {
    config
        .model_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("classification_model.paperboy"))
}

/// The signing key: `PAPERBOY_SECRET_KEY` (or paperless's `PAPERLESS_SECRET_KEY`), else a
/// random key kept in `DATA_DIR/classifier.key` (created on first use, mode 0600), shared by
/// every worker that shares the data folder.
pub fn signing_key(config: &Config) -> Result<Vec<u8>, ModelError> {
    if let Some(k) = &config.secret_key {
        return Ok(k.expose().as_bytes().to_vec());
    }
    let path = config.data_dir.join("classifier.key");
    let io = |source| ModelError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(k) if !k.trim().is_empty() => return Ok(k.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    std::fs::create_dir_all(&config.data_dir).map_err(io)?;
    let key: [u8; 32] = rand::random();
    let tmp = config
        .data_dir
        .join(format!(".classifier.key.{}", ulid::Ulid::new()));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(hex::encode(key).as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    // A hard link never replaces: if another worker made a key first, theirs wins.
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(hex::encode(key).into_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)
                .map_err(io)?
                .trim()
                .as_bytes()
                .to_vec())
        }
        Err(e) => Err(io(e)),
    }
}

fn mac(key: &[u8], version: u32, payload: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(MAGIC);
    m.update(&version.to_le_bytes());
    m.update(payload);
    m
}

/// The file's bytes: magic, format version (u32 LE), HMAC-SHA256 over magic + version +
/// payload, payload (JSON).
pub fn encode(c: &Classifier, key: &[u8]) -> Vec<u8> {
    let payload = serde_json::to_vec(c).expect("a classifier always serializes");
    let tag = mac(key, c.format_version, &payload).finalize().into_bytes();
    let mut out = Vec::with_capacity(payload.len() + 44);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&c.format_version.to_le_bytes());
    out.extend_from_slice(&tag);
    out.extend_from_slice(&payload);
    out
}

pub fn decode(bytes: &[u8], key: &[u8], path: &Path) -> Result<Classifier, ModelError> {
    let corrupt = |why: &str| ModelError::Corrupt {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if bytes.len() < 44 || &bytes[..8] != MAGIC {
        return Err(corrupt("not a paperboy classifier file"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let (tag, payload) = bytes[12..].split_at(32);
    mac(key, version, payload)
        .verify_slice(tag)
        .map_err(|_| corrupt("signature mismatch"))?;
    if version != FORMAT_VERSION {
        return Err(ModelError::Incompatible {
            path: path.to_path_buf(),
            found: version,
        });
    }
    serde_json::from_slice(payload).map_err(|e| corrupt(&e.to_string()))
}

/// Reads the model file: `Ok(None)` when there is none.
pub fn load(config: &Config) -> Result<Option<Classifier>, ModelError> {
    let path = model_path(config);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ModelError::Io { path, source }),
    };
    decode(&bytes, &signing_key(config)?, &path).map(Some)
}

/// Writes the model file atomically (temp file, fsync, rename).
pub fn save(config: &Config, c: &Classifier) -> Result<PathBuf, ModelError> {
    let path = model_path(config);
    let bytes = encode(c, &signing_key(config)?);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    paperboy_shared::media::write_atomic(&path, &bytes).map_err(|e| ModelError::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(path)
}

/// Removes the model file (no AUTO objects left); true if there was one.
pub fn remove(config: &Config) -> Result<bool, ModelError> {
    let path = model_path(config);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ModelError::Io { path, source }),
    }
}

type Stamp = (PathBuf, u64, Option<SystemTime>);

static CACHE: Mutex<Option<(Stamp, Option<Arc<Classifier>>)>> = Mutex::new(None);

/// The current model, loaded once per file version: a `stat` per call, a reload when the
/// file's size or mtime changed (a new training run on any worker). A missing, corrupt or
/// incompatible file means no classifier (logged once per file version): matching then works
/// on rules alone.
pub fn current(config: &Config) -> Option<Arc<Classifier>> {
    let path = model_path(config);
    let stamp = match std::fs::metadata(&path) {
        Ok(m) => (path.clone(), m.len(), m.modified().ok()),
        Err(_) => (path.clone(), 0, None),
    };
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((s, c)) = cache.as_ref()
        && *s == stamp
    {
        return c.clone();
    }
    let loaded = match load(config) {
        Ok(c) => c.map(Arc::new),
        Err(e) => {
            tracing::warn!(error = %e, "no classifier");
            None
        }
    };
    *cache = Some((stamp, loaded.clone()));
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Classifier {
        let mut df = std::collections::HashMap::new();
        text::count_df("invoice from acme", &mut df);
        let vocabulary = Vocabulary::from_df(df, 1, 0.0, 100);
        let rows = vec![vocabulary.row("invoice from acme")];
        Classifier {
            format_version: FORMAT_VERSION,
            last_modified: "2026-01-01T00:00:00Z".into(),
            fingerprint: "ab".into(),
            documents: 1,
            correspondent: SingleLabel::train(&rows, &[3], vocabulary.len(), &model::TRAIN),
            document_type: None,
            storage_path: None,
            tags: None,
            vocabulary,
        }
    }

    #[test]
    fn a_file_round_trips_and_any_tampering_is_refused() {
        let c = sample();
        let p = Path::new("model");
        let bytes = encode(&c, b"key");
        assert_eq!(decode(&bytes, b"key", p).unwrap(), c);
        // Spec §8.5 C10: zeros, short, tampered payload, another key.
        let corrupt =
            |b: &[u8], k: &[u8]| matches!(decode(b, k, p), Err(ModelError::Corrupt { .. }));
        assert!(corrupt(&[0u8; 64], b"key"));
        assert!(corrupt(&bytes[..32], b"key"));
        let mut tampered = bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(corrupt(&tampered, b"key"));
        assert!(corrupt(&bytes, b"other key"));
        // C9: another format version, correctly signed.
        let newer = Classifier {
            format_version: FORMAT_VERSION + 1,
            ..c
        };
        assert!(matches!(
            decode(&encode(&newer, b"key"), b"key", p),
            Err(ModelError::Incompatible { found, .. }) if found == FORMAT_VERSION + 1
        ));
    }

    #[test]
    fn the_fingerprint_follows_every_label() {
        let fp = |t: i64, c: i64, tags: &[i64], s: i64| {
            let mut f = Fingerprint::default();
            f.add(t, c, tags, s);
            f.hex()
        };
        let base = fp(-1, 3, &[12], -1);
        assert_eq!(base, fp(-1, 3, &[12], -1));
        assert_ne!(base, fp(-1, 4, &[12], -1));
        assert_ne!(base, fp(-1, 3, &[], -1));
        assert_ne!(base, fp(2, 3, &[12], -1));
    }

    #[test]
    fn predict_uses_the_threshold() {
        let c = sample();
        assert_eq!(c.predict("Invoice from ACME", 0.5).correspondent, Some(3));
        assert_eq!(c.predict("nothing in common", 0.5).correspondent, None);
    }
}
