//! `consume`: one staged file into the archive.
//!
//! A pipeline of small steps over a [`ConsumeState`], run in the order of [`STEPS`]; adding a
//! step is one function and one line there. Each step reads what earlier steps filled in and
//! fills in its own part; CPU-heavy steps (text extraction, rendering) run in
//! `spawn_blocking`.
//!
//! 1. `read`: the staged copy (`staging::resolve`) and its modification time,
//! 2. `detect`: the type by content (magic bytes), refusing anything else,
//! 3. `checksum`: SHA-256, and refuse a duplicate of any document (trash included),
//! 4. `text`: content and page count,
//! 5. `ocr`: tesseract, for images and for PDFs without a usable text layer, as
//!    `PAPERBOY_OCR_MODE` says ([`super::ocr`]); pages it fails on are named in the result's
//!    `ocr_error`, the document is stored anyway,
//!    then `archive`: when the document gets an archive version
//!    (`PAPERBOY_ARCHIVE_FILE_GENERATION`, [`super::archive`]) the OCR happens here instead,
//!    in the same pass that builds the searchable PDF/A (the `ocr` step leaves it), and
//!    `store` writes the archive file with the original; a document the archiver refuses
//!    (encrypted, signed) or fails on is stored without one (`archive_error` in the result),
//!    with the `ocr` step's text,
//!    then `match`: the matching rules ([`crate::matching`]) on the content: correspondent,
//!    document type and storage path take the first match (by name), tags take every match
//!    (with their ancestors), and the inbox tags are added,
//! 6. `title`: the file name's stem (as paperless),
//! 7. `date`: the created date from the file name / content ([`dates`]), else the file's mtime,
//!    else today,
//! 8. `thumbnail`: WebP, at most `PAPERBOY_THUMBNAIL_WIDTH` wide ([`super::render`]); if the
//!    renderer fails on a file the earlier steps could read, a placeholder (the file name) is
//!    stored instead and the result carries `thumbnail_error`,
//! 9. `store`: ONE transaction inserting the document and its tags; the original and the
//!    thumbnail are written atomically before the commit and removed again if anything fails
//!    before it is committed, so no row points at a missing file and no file is left without
//!    its row.
//!
//! Before the commit, a marker next to the staged copy records the new document's id: a job
//! re-run after a crash past the commit (at-least-once delivery) finds it and answers with that
//! document instead of refusing its own work as a duplicate.
//!
//! After success the staged copy is removed, and so is `args.source` (the file in the
//! consumption folder), as paperless deletes a consumed input. A transient error keeps it (the job is retried);
//! a permanent one keeps it too (the message says where) and, if the file came from the
//! consumption folder (`args.source`), moves that file to `CONSUMPTION_DIR/failed/`.

pub mod dates;
pub mod detect;
pub mod text;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use paperboy_shared::db::{ChecksumMatch, DbError, NewDocument, documents};
use paperboy_shared::job::ConsumeArgs;
use paperboy_shared::media::{self, Folder, Media};
use paperboy_shared::{Classify, config::names, staging};
use serde_json::json;
use sha2::{Digest, Sha256};

use self::dates::{DateOrder, DateRules};
use self::detect::FileType;
use super::{JobContext, JobError};
use crate::filenames::{self, FilenameSettings, NameInfo, Namer};

/// Longest title (paperless truncates to 127 characters).
pub const TITLE_MAX: usize = 127;

/// Name of the folder, inside the consumption folder, that failed inputs are moved to.
pub const FAILED_DIR: &str = "failed";

/// What the steps know about the file so far.
#[derive(Debug)]
pub struct ConsumeState {
    pub args: ConsumeArgs,
    pub staged_path: PathBuf,
    pub bytes: Arc<Vec<u8>>,
    pub modified: Option<DateTime<Utc>>,
    pub kind: Option<FileType>,
    pub checksum: String,
    pub content: String,
    pub page_count: Option<i64>,
    pub title: String,
    pub created: Option<NaiveDate>,
    pub thumbnail: Option<Vec<u8>>,
    /// Why the thumbnail is a placeholder.
    pub thumbnail_error: Option<String>,
    /// The archive version the `archive` step built (PDF bytes), and why there is none.
    pub archive: Option<Vec<u8>>,
    pub archive_wanted: bool,
    pub archive_error: Option<String>,
    /// Whether tesseract read the file, and what it could not read.
    pub ocr_ran: bool,
    pub ocr_error: Option<String>,
    pub document_id: Option<i64>,
    /// What the `match` step assigned.
    pub assigned: crate::matching::assign::Assignment,
    /// Set by a step that refused the input as a duplicate (for the failed-input handling).
    pub duplicate_of: Option<i64>,
}

impl ConsumeState {
    pub fn new(args: ConsumeArgs) -> ConsumeState {
        ConsumeState {
            args,
            staged_path: PathBuf::new(),
            bytes: Arc::default(),
            modified: None,
            kind: None,
            checksum: String::new(),
            content: String::new(),
            page_count: None,
            title: String::new(),
            created: None,
            thumbnail: None,
            thumbnail_error: None,
            archive: None,
            archive_wanted: false,
            archive_error: None,
            ocr_ran: false,
            ocr_error: None,
            document_id: None,
            assigned: Default::default(),
            duplicate_of: None,
        }
    }

    fn kind(&self) -> FileType {
        self.kind.expect("the detect step runs before this one")
    }
}

/// One step: reads and fills the state.
pub type Step =
    for<'a> fn(&'a mut ConsumeState, &'a JobContext) -> BoxFuture<'a, Result<(), JobError>>;

/// The pipeline, in order: (name for progress and logs, step).
pub const STEPS: &[(&str, Step)] = &[
    ("read", read),
    ("detect", detect_type),
    ("checksum", checksum),
    ("text", extract_text),
    ("ocr", ocr),
    ("archive", archive),
    ("match", match_rules),
    ("title", title),
    ("date", created_date),
    ("thumbnail", thumbnail),
    ("store", store),
];

pub async fn run(args: ConsumeArgs, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let mut st = ConsumeState::new(args);
    let total = STEPS.len() as u64;
    for (i, (name, step)) in STEPS.iter().enumerate() {
        ctx.check_cancelled()?;
        ctx.progress(i as u64, total, *name);
        if let Err(e) = step(&mut st, ctx).await {
            return Err(failed(&st, ctx, name, e).await);
        }
        if st.document_id.is_some() {
            // Stored (or found stored by an earlier attempt of this very job).
            break;
        }
    }
    let id = st.document_id.expect("the store step sets the document id");
    ctx.progress(total, total, "done");
    // The index follows the stored row (its own queue): the id joins the pending set and a
    // flush is queued; whichever flush runs first commits every pending id in batches. A
    // failure here loses nothing stored.
    if let Err(e) = crate::index::jobs::queue_pending(ctx, &[id]).await {
        tracing::warn!(document_id = id, error = %e, "cannot queue the index update");
    }
    if let Err(e) = staging::remove(ctx.config(), &st.args.staged) {
        // The document is in; a leftover staged copy is only litter.
        tracing::warn!(staged = %st.args.staged, error = %e, "cannot remove the staged copy");
    }
    // As paperless: a file picked up from the consumption folder goes once it is consumed.
    if let Some(src) = &st.args.source {
        match source_path(ctx.config(), src) {
            Some(path) => {
                if let Err(e) = media::remove_file(&path) {
                    tracing::warn!(source = %path.display(), error = %e, "cannot remove the consumed file");
                }
            }
            None => {
                tracing::warn!(source = %src, "source outside the consumption folder left alone")
            }
        }
    }
    tracing::info!(document_id = id, title = %st.title, "consumed {}", st.args.original_filename);
    Ok(json!({
        "document_id": id,
        "title": st.title,
        "checksum": st.checksum,
        "mime_type": st.kind().mime(),
        "page_count": st.page_count,
        "created": st.created.map(|d| d.format("%Y-%m-%d").to_string()),
        "thumbnail_error": st.thumbnail_error,
        "ocr": st.ocr_ran,
        "ocr_error": st.ocr_error,
        "archive": st.archive_wanted && st.archive_error.is_none(),
        "archive_error": st.archive_error,
    }))
}

/// What happens to the input when a step fails: transient errors keep everything for the
/// retry; permanent ones keep the staged copy (or delete it for a duplicate when
/// `CONSUMER_DELETE_DUPLICATES` is on) and move `args.source` to the failed folder.
async fn failed(st: &ConsumeState, ctx: &JobContext, step: &str, e: JobError) -> JobError {
    let JobError::Permanent(msg) = e else {
        tracing::warn!(step, error = %e, "consume of {} failed; will retry", st.args.original_filename);
        return e;
    };
    if ctx.is_cancelled() {
        return JobError::Permanent(msg);
    }
    let config = ctx.config();
    let mut msg = msg;
    if st.duplicate_of.is_some() && config.consumer_delete_duplicates {
        let _ = staging::remove(config, &st.args.staged);
        if let Some(path) = st
            .args
            .source
            .as_deref()
            .and_then(|s| source_path(config, s))
        {
            let _ = std::fs::remove_file(path);
        }
        msg.push_str(&format!(
            " (the input was deleted: {} is on)",
            names::CONSUMER_DELETE_DUPLICATES
        ));
        return JobError::Permanent(msg);
    }
    if !st.staged_path.as_os_str().is_empty() {
        msg.push_str(&format!(
            " (the staged copy is kept at {})",
            st.staged_path.display()
        ));
    }
    if let Some(src) = &st.args.source {
        match move_to_failed(config, src, &st.staged_path) {
            Ok(Some(to)) => msg.push_str(&format!("; {src} was moved to {}", to.display())),
            Ok(None) => {}
            Err(e) => msg.push_str(&format!(
                "; {src} could not be moved to the failed folder: {e}"
            )),
        }
    }
    tracing::warn!(step, error = %msg, "consume of {} failed", st.args.original_filename);
    JobError::Permanent(msg)
}

/// `args.source` as a path inside the consumption folder (relative to it, or absolute under
/// it); None for anything else (`..`, another folder): consume never deletes or moves files
/// outside the consumption folder.
fn source_path(config: &paperboy_shared::config::Config, source: &str) -> Option<PathBuf> {
    use std::path::Component;
    let p = Path::new(source);
    let rel = if p.is_absolute() {
        p.strip_prefix(&config.consumption_dir).ok()?
    } else {
        p
    };
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && rel.components().next().is_some()).then(|| config.consumption_dir.join(rel))
}

/// Moves the source file to `CONSUMPTION_DIR/failed/<name>` (never deletes it; a name already
/// taken gets ` (1)`, ` (2)`, … before its extension). The folder watcher takes a file out of
/// the folder as soon as it is enqueued: then the staged copy is *copied* there instead (and
/// stays staged, so `paperboy jobs retry` still finds it). None if neither exists.
fn move_to_failed(
    config: &paperboy_shared::config::Config,
    source: &str,
    staged: &Path,
) -> std::io::Result<Option<PathBuf>> {
    let Some(from) = source_path(config, source) else {
        return Err(std::io::Error::other(
            "it is not a file inside the consumption folder",
        ));
    };
    let copy_staged = !from.exists();
    if copy_staged && (staged.as_os_str().is_empty() || !staged.is_file()) {
        return Ok(None);
    }
    let dir = config.consumption_dir.join(FAILED_DIR);
    std::fs::create_dir_all(&dir)?;
    let name = from
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let to = media::free_name(&dir, &name);
    if copy_staged {
        std::fs::copy(staged, &to)?;
        std::fs::File::open(&to)?.sync_all()?;
        return Ok(Some(to));
    }
    match std::fs::rename(&from, &to) {
        Ok(()) => Ok(Some(to)),
        // Another file system: copy, flush, then remove the source.
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            std::fs::copy(&from, &to)?;
            std::fs::File::open(&to)?.sync_all()?;
            std::fs::remove_file(&from)?;
            Ok(Some(to))
        }
        Err(e) => Err(e),
    }
}

/// Runs CPU-heavy work off the async threads; a panic becomes a permanent error.
async fn blocking<T, F>(what: &str, f: F) -> Result<T, JobError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Permanent(format!("{what} crashed: {e}")))
}

fn classified<E: Classify + std::fmt::Display>(e: E) -> JobError {
    JobError::from_classified(e)
}

// ---- the steps ------------------------------------------------------------------------------

fn read<'a>(st: &'a mut ConsumeState, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        st.staged_path = staging::resolve(ctx.config(), &st.args.staged).map_err(classified)?;
        let path = st.staged_path.clone();
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            let msg = format!(
                "cannot read the staged file {} of {}: {e}",
                path.display(),
                st.args.original_filename
            );
            match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    JobError::Permanent(msg)
                }
                _ => JobError::Transient(msg),
            }
        })?;
        st.modified = tokio::fs::metadata(&path)
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .map(DateTime::<Utc>::from);
        st.bytes = Arc::new(bytes);
        Ok(())
    })
}

fn detect_type<'a>(
    st: &'a mut ConsumeState,
    _ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        match detect::detect(&st.bytes) {
            Some(kind) => {
                st.kind = Some(kind);
                Ok(())
            }
            None => Err(JobError::Permanent(format!(
                "{}: unsupported file type: its content is {}; consume accepts {}",
                st.args.original_filename,
                detect::describe_unknown(&st.bytes),
                detect::ACCEPTED
            ))),
        }
    })
}

fn checksum<'a>(
    st: &'a mut ConsumeState,
    ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let bytes = st.bytes.clone();
        st.checksum = blocking("checksum", move || hex::encode(Sha256::digest(&bytes[..]))).await?;
        // A job runs at least once: if an earlier attempt committed the document and then died
        // (before reporting, before removing the staged copy), its marker names the document.
        if let Some(id) = read_marker(&st.staged_path)
            && let Some(doc) = documents::get(ctx.db(), id).await?
            && doc.checksum == st.checksum
        {
            tracing::info!(
                document_id = id,
                "already consumed by an earlier attempt of this job"
            );
            st.title = doc.title;
            st.page_count = doc.page_count;
            st.created = NaiveDate::parse_from_str(&doc.created, "%Y-%m-%d").ok();
            st.document_id = Some(id);
            return Ok(());
        }
        // Early, before the expensive steps; `store` checks again under a lock.
        if let Some(dup) = documents::find_by_checksum(ctx.db(), &st.checksum).await? {
            return Err(duplicate(st, &dup));
        }
        Ok(())
    })
}

/// paperless's message for a refused duplicate.
fn duplicate(st: &mut ConsumeState, dup: &ChecksumMatch) -> JobError {
    st.duplicate_of = Some(dup.id);
    JobError::Permanent(format!(
        "Not consuming {}: it is a duplicate of {} (#{}){}",
        st.args.original_filename,
        dup.title,
        dup.id,
        if dup.in_trash {
            ". Note: the existing document is in the trash"
        } else {
            ""
        }
    ))
}

fn extract_text<'a>(
    st: &'a mut ConsumeState,
    _ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let (kind, bytes) = (st.kind(), st.bytes.clone());
        let (content, pages) = blocking("text extraction", move || text::extract(kind, &bytes))
            .await?
            .map_err(|e| JobError::Permanent(format!("{}: {e}", st.args.original_filename)))?;
        st.content = content;
        st.page_count = Some(pages);
        Ok(())
    })
}

fn ocr<'a>(st: &'a mut ConsumeState, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let tagged = is_tagged(st).await?;
        let born = st.kind() == FileType::Pdf && super::ocr::born_digital(&st.content, tagged);
        st.archive_wanted =
            super::archive::should_produce(ctx.config().archive_file_generation, st.kind(), born);
        if st.archive_wanted {
            // The `archive` step OCRs while it builds the archive version.
            return Ok(());
        }
        plain_ocr(st, ctx, tagged).await
    })
}

async fn is_tagged(st: &ConsumeState) -> Result<bool, JobError> {
    if st.kind() != FileType::Pdf {
        return Ok(false);
    }
    let bytes = st.bytes.clone();
    blocking("reading the PDF catalog", move || {
        text::pdf_is_tagged(&bytes)
    })
    .await
}

/// The archive version, OCR'd in the same pass; on a refusal or failure the document is
/// stored without one, with the text of a plain OCR run.
fn archive<'a>(
    st: &'a mut ConsumeState,
    ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        if !st.archive_wanted {
            return Ok(());
        }
        let tagged = is_tagged(st).await?;
        let meta = super::archive::pdf::Meta {
            title: title_from_filename(&st.args.original_filename),
            created: Utc::now(),
        };
        let config = ctx.config();
        let built = super::archive::build(
            config,
            st.kind(),
            st.bytes.clone(),
            &st.content,
            tagged,
            meta,
        )
        .await;
        let why = match built {
            Ok(super::archive::Outcome::Built(b)) => {
                st.ocr_ran = b.ocr_ran;
                if !b.problems.is_empty() {
                    st.ocr_error = Some(b.problems.join("; "));
                }
                if let Some(text) = b.text {
                    st.content = text;
                }
                st.archive = Some(b.pdf);
                return Ok(());
            }
            Ok(super::archive::Outcome::NotNeeded(why))
            | Ok(super::archive::Outcome::Refused(why)) => why,
            Err(JobError::Transient(e)) => return Err(JobError::Transient(e)),
            Err(e) => e.to_string(),
        };
        tracing::warn!(reason = %why, "no archive version for {}", st.args.original_filename);
        st.archive_error = Some(why.clone());
        plain_ocr(st, ctx, tagged).await.map_err(|e| match e {
            JobError::Permanent(m) => {
                JobError::Permanent(format!("{m} (no archive version: {why})"))
            }
            other => other,
        })
    })
}

async fn plain_ocr(st: &mut ConsumeState, ctx: &JobContext, tagged: bool) -> Result<(), JobError> {
    {
        let (kind, bytes) = (st.kind(), st.bytes.clone());
        let outcome = super::ocr::run(ctx.config(), kind, bytes, &st.content, tagged)
            .await
            .map_err(|e| JobError::Permanent(format!("{}: {e}", st.args.original_filename)))?;
        if !outcome.problems.is_empty() {
            let problems = outcome.problems.join("; ");
            tracing::warn!(problems = %problems, "OCR of {} was incomplete", st.args.original_filename);
            st.ocr_error = Some(problems);
        }
        st.ocr_ran = outcome.ran;
        st.content = outcome.text;
        Ok(())
    }
}

fn match_rules<'a>(
    st: &'a mut ConsumeState,
    ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let objects = crate::matching::load(ctx.db()).await?;
        let content = st.content.clone();
        // AUTO objects come from the classifier's predictions (none without a model).
        let model = crate::classifier::current(ctx.config());
        let threshold = ctx.config().classifier_threshold;
        st.assigned = blocking("matching", move || {
            let predicted = model
                .map(|m| m.predict(&content, threshold))
                .unwrap_or_default();
            crate::matching::assign::for_new_document(&objects, &content, None, &predicted)
        })
        .await?;
        Ok(())
    })
}

fn title<'a>(
    st: &'a mut ConsumeState,
    _ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        // A mail rule's title (subject or attachment name) wins over the file name's stem.
        st.title = match st.args.title.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => t.chars().take(TITLE_MAX).collect(),
            _ => title_from_filename(&st.args.original_filename),
        };
        Ok(())
    })
}

/// paperless: the file name's stem, truncated to 127 characters.
pub fn title_from_filename(name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string());
    let stem = Path::new(&base)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or(base);
    stem.chars().take(TITLE_MAX).collect()
}

fn created_date<'a>(
    st: &'a mut ConsumeState,
    ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let rules = date_rules(ctx.config(), Utc::now().date_naive())?;
        let found = rules.created(&st.args.original_filename, &st.content);
        // paperless: parsed date, else the input file's modification time (staging keeps it).
        st.created =
            Some(found.unwrap_or_else(|| st.modified.unwrap_or_else(Utc::now).date_naive()));
        Ok(())
    })
}

/// The date rules of the settings; a bad order setting is a permanent error naming it.
pub fn date_rules(
    config: &paperboy_shared::config::Config,
    today: NaiveDate,
) -> Result<DateRules, JobError> {
    let bad = |name: &str, v: &str| {
        JobError::Permanent(format!(
            "setting {name}={v:?} is not a date order: use DMY, MDY, YMD, YDM, DYM or MYD"
        ))
    };
    let order = DateOrder::parse(&config.date_order)
        .ok_or_else(|| bad(names::DATE_ORDER, &config.date_order))?;
    let filename_order = match &config.filename_date_order {
        Some(o) => Some(DateOrder::parse(o).ok_or_else(|| bad(names::FILENAME_DATE_ORDER, o))?),
        None => None,
    };
    Ok(DateRules {
        order,
        filename_order,
        ignore: config.ignore_dates.clone(),
        today,
    })
}

fn thumbnail<'a>(
    st: &'a mut ConsumeState,
    ctx: &'a JobContext,
) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let (kind, bytes) = (st.kind(), st.bytes.clone());
        let width = ctx.config().thumbnail_width;
        let rendered = blocking("thumbnail rendering", move || {
            super::render::thumbnail(kind, &bytes, width)
        })
        .await
        .and_then(|r| r.map_err(JobError::Permanent));
        let webp = match rendered {
            Ok(webp) => webp,
            // The file was readable (type, text, pages): archive it with a placeholder rather
            // than refuse it; `paperboy thumbnails --document N` can try again later.
            Err(e) => {
                tracing::warn!(error = %e, "no thumbnail for {}; using a placeholder", st.args.original_filename);
                st.thumbnail_error = Some(e.to_string());
                let label = format!("{}\n({})", st.args.original_filename, kind.mime());
                blocking("placeholder rendering", move || {
                    super::render::placeholder(&label, width)
                })
                .await?
                .map_err(|e| JobError::Permanent(format!("{}: {e}", st.args.original_filename)))?
            }
        };
        st.thumbnail = Some(webp);
        Ok(())
    })
}

fn store<'a>(st: &'a mut ConsumeState, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let media = Media::from_config(ctx.config());
        let kind = st.kind();
        let new = NewDocument {
            title: st.title.clone(),
            content: st.content.clone(),
            mime_type: kind.mime().to_string(),
            checksum: st.checksum.clone(),
            page_count: st.page_count,
            created: st
                .created
                .expect("the date step runs before store")
                .format("%Y-%m-%d")
                .to_string(),
            original_filename: Some(st.args.original_filename.clone()),
            // What the job says (a mail rule) wins over the matching rules.
            correspondent_id: st.args.correspondent.or(st.assigned.correspondent),
            document_type_id: st.args.document_type.or(st.assigned.document_type),
            owner_id: st.args.owner,
            storage_path_id: st.assigned.storage_path,
            ..Default::default()
        };
        let thumb = st
            .thumbnail
            .clone()
            .expect("the thumbnail step runs before store");

        let mut tx = ctx.db().begin().await?;
        // Two jobs with the same content at once: the second waits here, then sees the first.
        documents::lock_checksum(&mut tx, ctx.db().engine, &st.checksum).await?;
        if let Some(dup) = documents::find_by_checksum_in(&mut tx, &st.checksum).await? {
            return Err(duplicate(st, &dup));
        }
        let id = documents::insert(&mut tx, &new).await?;
        documents::add_tags(&mut tx, id, &st.args.tags)
            .await
            .map_err(|e| tag_error(e, &st.args.tags))?;
        documents::add_tags(&mut tx, id, &st.assigned.tags).await?;
        // The name: the template's (storage path or PAPERBOY_FILENAME_FORMAT) when there is
        // one, else paperless's default `0000042.<ext>`.
        let namer = template_namer(ctx, &mut tx, id).await?;
        let default_name = media::default_filename(id, kind.extension());

        // Files first (atomically), then the row points at them, then commit; on any failure
        // before the commit the files go again.
        let marker = marker_path(&st.staged_path);
        let archive = st.archive.take();
        let archive_checksum = archive
            .as_ref()
            .map(|pdf| hex::encode(Sha256::digest(&pdf[..])));
        let written = {
            let (media, bytes) = (media.clone(), st.bytes.clone());
            let marker = marker.clone();
            blocking("writing the files", move || {
                let filename =
                    write_files(&media, id, namer.as_ref(), &default_name, &bytes, &thumb)?;
                let archive_name = match &archive {
                    Some(pdf) => Some(
                        super::archive::write_archive_file(&media, &filename, None, pdf)
                            .inspect_err(|_| remove_files(&media, id, &filename))?,
                    ),
                    None => None,
                };
                let remove_all = |media: &Media| {
                    remove_files(media, id, &filename);
                    if let Some(a) = &archive_name {
                        let _ = media.remove(Folder::Archive, a);
                    }
                };
                // Names the document for a re-run of this job after a crash past the commit.
                media::write_atomic(&marker, id.to_string().as_bytes())
                    .inspect_err(|_| remove_all(&media))
                    .map(|()| (filename.clone(), archive_name.clone()))
            })
            .await?
        };
        let (filename, archive_name) = match &written {
            Ok((name, archive)) => (name.clone(), archive.clone()),
            Err(_) => (String::new(), None),
        };
        let result = async {
            let (filename, archive_name) = written.map_err(classified)?;
            documents::set_files(
                &mut tx,
                id,
                Some(&filename),
                archive_name.as_deref(),
                archive_checksum.as_deref(),
            )
            .await?;
            tx.commit().await.map_err(DbError::from)?;
            Ok::<(), JobError>(())
        }
        .await;
        if let Err(e) = result {
            // The transaction (if not committed) rolls back when dropped; the files go now.
            if !filename.is_empty() {
                remove_files(&media, id, &filename);
            }
            if let Some(a) = &archive_name {
                let _ = media.remove(Folder::Archive, a);
            }
            let _ = media::remove_file(&marker);
            return Err(e);
        }
        st.document_id = Some(id);
        Ok(())
    })
}

/// Name of the marker file, next to the staged copy, that records the stored document's id.
pub const MARKER: &str = ".paperboy-document-id";

fn marker_path(staged: &Path) -> PathBuf {
    staged
        .parent()
        .map(|d| d.join(MARKER))
        .unwrap_or_else(|| PathBuf::from(MARKER))
}

/// The document id an earlier attempt recorded next to the staged copy, if any.
fn read_marker(staged: &Path) -> Option<i64> {
    std::fs::read_to_string(marker_path(staged))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Tag ids that do not exist are the caller's mistake.
fn tag_error(e: DbError, tags: &[i64]) -> JobError {
    if e.is_foreign_key_violation() {
        JobError::Permanent(format!("unknown tag among {tags:?}: {e}"))
    } else {
        JobError::from(e)
    }
}

/// The [`Namer`] of a new document when a template names it (its storage path or
/// `PAPERBOY_FILENAME_FORMAT`); None for the default name. Read inside the store transaction,
/// so it sees the row and tags just written.
async fn template_namer(
    ctx: &JobContext,
    tx: &mut paperboy_shared::db::Tx,
    id: i64,
) -> Result<Option<Namer>, JobError> {
    let settings = FilenameSettings::from_config(ctx.config()).map_err(JobError::Permanent)?;
    let Some(data) = paperboy_shared::db::files::naming(tx, id).await? else {
        return Ok(None);
    };
    let info = NameInfo::from_data(&data);
    if filenames::template_source(&info, &settings).is_none() {
        return Ok(None);
    }
    Ok(Some(Namer::new(&info, &settings)))
}

/// Writes the original and the thumbnail of document `id`; returns the original's name. With a
/// template the name is the first free one (`qwe.pdf`, `qwe_01.pdf`, …), taken without ever
/// replacing a file (another job may take the same name at the same moment). On failure
/// nothing is left behind.
fn write_files(
    media: &Media,
    id: i64,
    namer: Option<&Namer>,
    default_name: &str,
    original: &[u8],
    thumbnail: &[u8],
) -> Result<String, media::MediaError> {
    let filename = match namer {
        None => {
            media.write(Folder::Originals, default_name, original)?;
            default_name.to_string()
        }
        Some(namer) => {
            let dir = media.dir(Folder::Originals);
            let mut tries = 0;
            loop {
                let name = filenames::unique_original(namer, &dir, None);
                match media.write_new(Folder::Originals, &name, original) {
                    Ok(_) => break name,
                    Err(media::MediaError::Exists { .. }) if tries < 100 => tries += 1,
                    Err(e) => return Err(e),
                }
            }
        }
    };
    if let Err(e) = media.write_thumbnail(id, thumbnail) {
        remove_files(media, id, &filename);
        return Err(e);
    }
    Ok(filename)
}

fn remove_files(media: &Media, id: i64, filename: &str) {
    for r in [
        media.remove(Folder::Originals, filename),
        media::remove_file(&media.thumbnail(id)),
    ] {
        if let Err(e) = r {
            tracing::error!(document_id = id, error = %e, "cannot remove a file of a document that was not stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_the_stem_truncated() {
        assert_eq!(
            title_from_filename("acme_invoice_2024-03.pdf"),
            "acme_invoice_2024-03"
        );
        assert_eq!(title_from_filename("meeting_notes.txt"), "meeting_notes");
        assert_eq!(title_from_filename("archive.tar.gz"), "archive.tar");
        assert_eq!(title_from_filename("noext"), "noext");
        assert_eq!(title_from_filename(".hidden"), ".hidden");
        assert_eq!(title_from_filename("sub/dir/Scan 1.PDF"), "Scan 1");
        let long = format!("{}.pdf", "ä".repeat(200));
        assert_eq!(title_from_filename(&long).chars().count(), TITLE_MAX);
    }

    #[test]
    fn steps_are_in_the_documented_order() {
        let names: Vec<_> = STEPS.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "read",
                "detect",
                "checksum",
                "text",
                "ocr",
                "archive",
                "match",
                "title",
                "date",
                "thumbnail",
                "store"
            ]
        );
    }

    #[test]
    fn date_rules_from_settings() {
        let mut c = paperboy_shared::config::Config::from(&std::collections::HashMap::<
            String,
            String,
        >::new())
        .unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert!(date_rules(&c, today).is_ok());
        c.date_order = "XYZ".into();
        let err = date_rules(&c, today).unwrap_err().to_string();
        assert!(err.contains("PAPERBOY_DATE_ORDER"), "{err}");
        c.date_order = "MDY".into();
        c.filename_date_order = Some("YMD".into());
        let r = date_rules(&c, today).unwrap();
        assert_eq!(
            r.created("Scan - 2022-02-01.pdf", "03/04/2020"),
            NaiveDate::from_ymd_opt(2022, 2, 1)
        );
        // PAPERBOY_IGNORE_DATES reaches the rules.
        c.ignore_dates = vec![NaiveDate::from_ymd_opt(2022, 2, 1).unwrap()];
        let r = date_rules(&c, today).unwrap();
        assert_eq!(
            r.created("Scan - 2022-02-01.pdf", "03/04/2020"),
            NaiveDate::from_ymd_opt(2020, 3, 4)
        );
    }

    #[test]
    fn failed_inputs_move_never_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = paperboy_shared::config::Config::from(&std::collections::HashMap::<
            String,
            String,
        >::new())
        .unwrap();
        c.consumption_dir = tmp.path().to_path_buf();
        std::fs::write(tmp.path().join("bad.exe"), b"MZ1").unwrap();
        let none = Path::new("");
        let to = move_to_failed(&c, "bad.exe", none).unwrap().unwrap();
        assert_eq!(to, tmp.path().join("failed/bad.exe"));
        std::fs::write(tmp.path().join("bad.exe"), b"MZ2").unwrap();
        let abs = tmp.path().join("bad.exe");
        let to2 = move_to_failed(&c, abs.to_str().unwrap(), none)
            .unwrap()
            .unwrap();
        assert_eq!(to2, tmp.path().join("failed/bad (1).exe"));
        assert_eq!(std::fs::read(&to).unwrap(), b"MZ1");
        assert_eq!(std::fs::read(&to2).unwrap(), b"MZ2");
        assert_eq!(move_to_failed(&c, "gone.pdf", none).unwrap(), None);
        // Taken by the watcher: the staged copy is copied to failed/ and stays staged.
        let staged = tmp.path().join("staged-gone.pdf");
        std::fs::write(&staged, b"%PDF-broken").unwrap();
        let to3 = move_to_failed(&c, "gone.pdf", &staged).unwrap().unwrap();
        assert_eq!(to3, tmp.path().join("failed/gone.pdf"));
        assert_eq!(std::fs::read(&to3).unwrap(), b"%PDF-broken");
        assert!(staged.exists());
        // Never outside the consumption folder.
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("keep.pdf");
        std::fs::write(&victim, b"x").unwrap();
        assert!(move_to_failed(&c, victim.to_str().unwrap(), none).is_err());
        assert!(move_to_failed(&c, "../keep.pdf", none).is_err());
        assert!(victim.exists());
        assert_eq!(source_path(&c, "a/../b.pdf"), None);
        assert_eq!(source_path(&c, ""), None);
        assert_eq!(
            source_path(&c, "Archive/x.pdf"),
            Some(tmp.path().join("Archive/x.pdf"))
        );
    }
}
