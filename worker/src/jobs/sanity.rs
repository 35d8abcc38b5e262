//! `sanity_check` (paperless's `document_sanity_checker`, spec §6): every document's files and
//! checksums, and the files nobody references.
//!
//! - The coordinator (`Job::SanityCheck`) walks the media root first (names only; the ignore
//!   list `PAPERBOY_SANITY_IGNORE` is globs matched against every path component, so `._*` and
//!   `@eaDir` work, unlike upstream), then streams the documents by id in pages of [`BATCH`]
//!   (trash included): each page is enqueued as a `Job::SanityCheckBatch` and its referenced
//!   names are struck from the walked set. What is left is orphaned (a global warning). Then
//!   it waits for the batches and merges their reports, grouped by document.
//! - A batch (`Job::SanityCheckBatch`) runs the checks of §6 in order, hashing the files in
//!   parallel on every core (rayon; each file read once in 1 MiB chunks; SHA-256, or MD5 where
//!   the stored checksum has 32 hex digits, i.e. an old import).
//! - The result is the report: `documents` (id, title, messages with level and text),
//!   `global`, the counters of §6 and the summary sentence. A report with errors is still the
//!   job's result (the job succeeds); `paperboy sanity-check --wait` exits 1 then.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use paperboy_shared::db::files::{self, FileRow};
use paperboy_shared::job::Job;
use paperboy_shared::media::{self, Folder, Media};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;

use super::{JobContext, JobError};

/// Documents per batch job.
pub const BATCH: i64 = 500;

/// The media lock file paperless keeps in the media root (never an orphan).
const MEDIA_LOCK: &str = "media.lock";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub level: Level,
    pub message: String,
}

/// The messages about one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocReport {
    pub id: i64,
    pub title: String,
    pub messages: Vec<Message>,
}

fn error(m: impl Into<String>) -> Message {
    Message {
        level: Level::Error,
        message: m.into(),
    }
}

// ---- the checks of one document -------------------------------------------------------------

/// Which digest a stored checksum is: 32 hex digits MD5 (paperless ≤ 2), else SHA-256.
fn digest_file(path: &Path, stored: &str) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    if stored.len() == 32 {
        let mut h = md5::Md5::new();
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    } else {
        let mut h = sha2::Sha256::new();
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    }
}

/// Readable: open it and read a byte (mode 000 fails here even for an empty file's open).
fn readable(path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut b = [0u8; 1];
    f.read(&mut b).map(|_| ())
}

/// The file at `name` in `folder`: missing (None), unreadable, or its digest.
enum FileState {
    Missing,
    Unreadable(std::io::Error),
    Digest(Option<String>),
}

fn look(path: Option<PathBuf>, stored: Option<&str>) -> FileState {
    let Some(path) = path else {
        return FileState::Missing;
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return FileState::Missing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileState::Missing,
        Err(e) => return FileState::Unreadable(e),
    }
    match stored {
        None => match readable(&path) {
            Ok(()) => FileState::Digest(None),
            Err(e) => FileState::Unreadable(e),
        },
        Some(stored) => match digest_file(&path, stored) {
            Ok(d) => FileState::Digest(Some(d)),
            Err(e) => FileState::Unreadable(e),
        },
    }
}

/// §6 step 2 for one document, in the table's order.
pub fn check_document(media: &Media, doc: &FileRow) -> Vec<Message> {
    let mut out = Vec::new();
    let gpg = doc.storage_type == "gpg";
    // 1–2: the thumbnail (GnuPG-era documents: `.webp.gpg`).
    let thumb = if gpg {
        media
            .dir(Folder::Thumbnails)
            .join(format!("{:07}.webp.gpg", doc.id))
    } else {
        media.thumbnail(doc.id)
    };
    match look(Some(thumb), None) {
        FileState::Missing => out.push(error("Thumbnail of document does not exist.")),
        FileState::Unreadable(e) => out.push(error(format!(
            "Cannot read thumbnail file of document: {e}"
        ))),
        FileState::Digest(_) => {}
    }
    // 3–5: the original (checksums are of the plaintext: not checked for encrypted files).
    let original = doc.filename.as_deref().and_then(|f| media.original(f).ok());
    let stored = (!gpg).then_some(doc.checksum.as_str());
    match look(original, stored) {
        FileState::Missing => out.push(error("Original of document does not exist.")),
        FileState::Unreadable(e) => {
            out.push(error(format!("Cannot read original file of document: {e}")))
        }
        FileState::Digest(Some(d)) if d != doc.checksum.to_ascii_lowercase() => out.push(error(
            format!("Checksum mismatch. Stored: {}, actual: {d}.", doc.checksum),
        )),
        FileState::Digest(_) => {}
    }
    // 6–10: the archive version (exclusive cases).
    match (&doc.archive_checksum, &doc.archive_filename) {
        (Some(_), None) => out.push(error(
            "Document has an archive file checksum, but no archive filename.",
        )),
        (None, Some(_)) => out.push(error(
            "Document has an archive file, but its checksum is missing.",
        )),
        (Some(sum), Some(name)) => match look(media.archive(name).ok(), Some(sum)) {
            FileState::Missing => out.push(error("Archived version of document does not exist.")),
            FileState::Unreadable(e) => {
                out.push(error(format!("Cannot read archive file of document: {e}")))
            }
            FileState::Digest(Some(d)) if d != sum.to_ascii_lowercase() => out.push(error(
                format!("Checksum mismatch of archived document. Stored: {sum}, actual: {d}."),
            )),
            FileState::Digest(_) => {}
        },
        (None, None) => {}
    }
    // 11: no text.
    if doc.content_empty {
        out.push(Message {
            level: Level::Info,
            message: "Document contains no OCR data".into(),
        });
    }
    out
}

/// The files a document references, relative to the media root.
pub fn referenced(doc: &FileRow) -> Vec<String> {
    let mut v = Vec::with_capacity(3);
    let thumb = if doc.storage_type == "gpg" {
        format!("{}/{:07}.webp.gpg", media::THUMBNAILS_DIR, doc.id)
    } else {
        format!(
            "{}/{}",
            media::THUMBNAILS_DIR,
            media::thumbnail_filename(doc.id)
        )
    };
    v.push(thumb);
    if let Some(f) = &doc.filename {
        v.push(format!("{}/{f}", media::ORIGINALS_DIR));
    }
    if let Some(a) = &doc.archive_filename {
        v.push(format!("{}/{a}", media::ARCHIVE_DIR));
    }
    v
}

// ---- orphans --------------------------------------------------------------------------------

/// `*` and `?` globs against one name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Every file under the media root (relative paths), except ignored names (any component
/// matching a glob: a matching folder is skipped whole) and the media lock.
pub fn present_files(root: &Path, ignore: &[String]) -> std::io::Result<HashSet<String>> {
    let mut out = HashSet::new();
    if !root.exists() {
        return Ok(out);
    }
    let ignored = |name: &str| ignore.iter().any(|g| glob_match(g, name));
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !ignored(&e.file_name().to_string_lossy()));
    for entry in walker {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("walked under the root")
            .to_string_lossy()
            .into_owned();
        if rel == MEDIA_LOCK {
            continue;
        }
        out.insert(rel);
    }
    Ok(out)
}

// ---- the report -----------------------------------------------------------------------------

/// The whole report, as stored in the job result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub documents: Vec<DocReport>,
    pub global: Vec<Message>,
    pub documents_checked: u64,
    pub document_count: usize,
    pub documents_with_errors: usize,
    pub documents_with_warnings: usize,
    pub documents_with_infos: usize,
    pub global_warnings: usize,
    pub total_issue_count: usize,
    pub has_errors: bool,
    pub summary: String,
}

impl Report {
    pub fn new(mut documents: Vec<DocReport>, global: Vec<Message>, checked: u64) -> Report {
        documents.retain(|d| !d.messages.is_empty());
        documents.sort_by_key(|d| d.id);
        let with = |l: Level| {
            documents
                .iter()
                .filter(|d| d.messages.iter().any(|m| m.level == l))
                .count()
        };
        let (errs, warns, infos) = (with(Level::Error), with(Level::Warning), with(Level::Info));
        let global_warnings = global.iter().filter(|m| m.level == Level::Warning).count();
        let total = documents
            .iter()
            .flat_map(|d| &d.messages)
            .filter(|m| m.level != Level::Info)
            .count()
            + global_warnings;
        let summary = summary(errs, warns, infos, global_warnings);
        Report {
            document_count: documents.len(),
            documents,
            global,
            documents_checked: checked,
            documents_with_errors: errs,
            documents_with_warnings: warns,
            documents_with_infos: infos,
            global_warnings,
            total_issue_count: total,
            has_errors: errs > 0,
            summary,
        }
    }
}

/// paperless's task result sentence.
pub fn summary(errors: usize, warnings: usize, infos: usize, global: usize) -> String {
    let parts: Vec<String> = [
        (errors, "document(s) with errors"),
        (warnings, "document(s) with warnings"),
        (infos, "document(s) with infos"),
        (global, "global warning(s)"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        return "No issues detected.".into();
    }
    let mut s = format!("{} found.", parts.join(", "));
    if errors > 0 {
        s.push_str(" Check logs for details.");
    }
    s
}

// ---- the jobs -------------------------------------------------------------------------------

pub async fn run_batch(ids: Vec<i64>, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let rows = files::file_rows(ctx.db(), &ids).await?;
    let media = Media::from_config(ctx.config());
    let total = rows.len() as u64;
    ctx.progress(0, total, "checking");
    let docs = tokio::task::spawn_blocking(move || {
        rows.par_iter()
            .map(|d| DocReport {
                id: d.id,
                title: d.title.clone(),
                messages: check_document(&media, d),
            })
            .filter(|r| !r.messages.is_empty())
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| JobError::Permanent(format!("sanity check crashed: {e}")))?;
    ctx.progress(total, total, "done");
    Ok(json!({"checked": total, "documents": docs}))
}

pub async fn run(ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let media = Media::from_config(ctx.config());
    let root = media.root().to_path_buf();
    let ignore = ctx.config().sanity_ignore.clone();
    ctx.progress(0, 0, "listing the media folder");
    let mut present = tokio::task::spawn_blocking(move || present_files(&root, &ignore))
        .await
        .map_err(|e| JobError::Permanent(format!("walking the media folder crashed: {e}")))?
        .map_err(|e| JobError::Transient(format!("cannot list the media folder: {e}")))?;

    // Stream the documents: one batch job per page, strike their files from the walked set.
    let mut after = 0;
    let mut batches = Vec::new();
    let mut checked = 0u64;
    loop {
        ctx.check_cancelled()?;
        let rows = files::file_rows_after(ctx.db(), after, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        checked += rows.len() as u64;
        for r in &rows {
            for f in referenced(r) {
                present.remove(&f);
            }
        }
        let ids = rows.iter().map(|r| r.id).collect();
        let e = ctx.enqueue(&Job::SanityCheckBatch { ids }).await?;
        batches.push(e.id().to_string());
        ctx.progress(
            0,
            batches.len() as u64,
            format!("{checked} documents queued"),
        );
    }
    let mut orphans: Vec<String> = present.into_iter().collect();
    orphans.sort();
    let global: Vec<Message> = orphans
        .iter()
        .map(|rel| Message {
            level: Level::Warning,
            message: format!(
                "Orphaned file in media dir: {}",
                absolute(media.root()).join(rel).display()
            ),
        })
        .collect();

    // Wait for the batches, in order (they run in parallel on every worker).
    let mut documents = Vec::new();
    let total = batches.len() as u64;
    for (i, id) in batches.iter().enumerate() {
        let record = ctx
            .wait_child(&batches, i)
            .await?
            .map_err(|why| JobError::Transient(format!("sanity check batch {id} {why}")))?;
        if let Some(docs) = record.result.as_ref().and_then(|r| r.get("documents")) {
            let docs: Vec<DocReport> = serde_json::from_value(docs.clone())
                .map_err(|e| JobError::Permanent(format!("batch {id}: bad result: {e}")))?;
            documents.extend(docs);
        }
        ctx.progress(i as u64 + 1, total, "batches checked");
    }
    let report = Report::new(documents, global, checked);
    log_report(&report);
    serde_json::to_value(&report).map_err(|e| JobError::Permanent(e.to_string()))
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// paperless's log output of a check.
fn log_report(r: &Report) {
    if r.documents.is_empty() && r.global.is_empty() {
        tracing::info!("Sanity checker detected no issues.");
        return;
    }
    for d in &r.documents {
        tracing::info!(
            "Detected following issue(s) with document #{}, titled {}",
            d.id,
            d.title
        );
        for m in &d.messages {
            match m.level {
                Level::Error => tracing::error!("{}", m.message),
                Level::Warning => tracing::warn!("{}", m.message),
                Level::Info => tracing::info!("{}", m.message),
            }
        }
    }
    for m in &r.global {
        tracing::warn!("{}", m.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("._*", "._x.pdf"));
        assert!(glob_match(".DS_Store", ".DS_Store"));
        assert!(!glob_match(".DS_Store", "x.DS_Store"));
        assert!(glob_match("@eaDir", "@eaDir"));
        assert!(glob_match(".media-*.part", ".media-abc.part"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
    }

    fn msg(level: Level) -> Message {
        Message {
            level,
            message: "m".into(),
        }
    }

    /// S17: two errors, two warnings, two infos on one document and a global warning.
    #[test]
    fn s17_counters() {
        let doc = DocReport {
            id: 1,
            title: "t".into(),
            messages: vec![
                msg(Level::Error),
                msg(Level::Error),
                msg(Level::Warning),
                msg(Level::Warning),
                msg(Level::Info),
                msg(Level::Info),
            ],
        };
        let r = Report::new(vec![doc], vec![msg(Level::Warning)], 1);
        assert_eq!(r.document_count, 1);
        assert_eq!(r.documents_with_errors, 1);
        assert_eq!(r.documents_with_warnings, 1);
        assert_eq!(r.documents_with_infos, 1);
        assert_eq!(r.global_warnings, 1);
        assert_eq!(r.total_issue_count, 5);
        assert!(r.has_errors);
    }

    /// S25 / S26 and S1: the summary sentences.
    #[test]
    fn s25_s26_summaries() {
        assert_eq!(summary(0, 0, 1, 0), "1 document(s) with infos found.");
        assert_eq!(
            summary(1, 0, 0, 0),
            "1 document(s) with errors found. Check logs for details."
        );
        assert_eq!(summary(0, 0, 0, 0), "No issues detected.");
        assert_eq!(
            summary(2, 1, 0, 3),
            "2 document(s) with errors, 1 document(s) with warnings, 3 global warning(s) found. Check logs for details."
        );
        let only_infos = Report::new(
            vec![DocReport {
                id: 1,
                title: "t".into(),
                messages: vec![msg(Level::Info)],
            }],
            vec![],
            1,
        );
        assert!(!only_infos.has_errors);
        assert_eq!(only_infos.total_issue_count, 0);
    }
}
