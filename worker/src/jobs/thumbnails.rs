//! `thumbnails`: regenerate WebP thumbnails with the same code as consume
//! ([`super::render::thumbnail`]).
//!
//! - `document: Some(id)`: that document;
//! - `batch: Some(ids)`: those documents, one after the other (progress per document; a document
//!   that cannot be rendered is reported in the result and does not stop the batch);
//! - neither: every live document, by fanning out batches of [`BATCH`] ids (paged from the
//!   database by id, never all at once) as `thumbnails` jobs.
//!
//! The source is the archive version when there is one (as paperless), else the original.

use paperboy_shared::db::{StorageType, documents};
use paperboy_shared::job::Job;
use paperboy_shared::media::{Media, MediaError};
use paperboy_shared::{Classify, ErrorClass};
use serde_json::json;

use super::consume::detect;
use super::{JobContext, JobError};

/// Documents per fanned-out batch.
pub const BATCH: i64 = 100;

pub async fn run(
    document: Option<i64>,
    batch: Option<Vec<i64>>,
    ctx: &JobContext,
) -> Result<serde_json::Value, JobError> {
    match (document, batch) {
        (Some(id), _) => {
            ctx.progress(0, 1, format!("document {id}"));
            let path = regenerate(ctx, id).await?;
            ctx.progress(1, 1, "done");
            Ok(json!({"document_id": id, "thumbnail": path}))
        }
        (None, Some(ids)) => run_batch(ids, ctx).await,
        (None, None) => fan_out(ctx).await,
    }
}

async fn run_batch(ids: Vec<i64>, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let total = ids.len() as u64;
    let mut done = 0u64;
    let mut failed = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        ctx.check_cancelled()?;
        ctx.progress(i as u64, total, format!("document {id}"));
        match regenerate(ctx, *id).await {
            Ok(_) => done += 1,
            // Worth a retry of the whole batch (regenerating is idempotent).
            Err(e @ JobError::Transient(_)) => return Err(e),
            Err(JobError::Permanent(msg)) => {
                tracing::warn!(document_id = id, error = %msg, "thumbnail not regenerated");
                failed.push(json!({"document_id": id, "error": msg}));
            }
        }
    }
    ctx.progress(total, total, "done");
    Ok(json!({"regenerated": done, "failed": failed}))
}

async fn fan_out(ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let mut after = 0;
    let mut batches = 0u64;
    let mut docs = 0u64;
    loop {
        ctx.check_cancelled()?;
        let ids = documents::ids_after(ctx.db(), after, BATCH).await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        docs += ids.len() as u64;
        ctx.enqueue(&Job::Thumbnails {
            document: None,
            batch: Some(ids),
        })
        .await?;
        batches += 1;
        ctx.progress(docs, docs, format!("{batches} batches queued"));
    }
    Ok(json!({"batches": batches, "documents": docs}))
}

/// Renders and writes the thumbnail of one document; returns its path.
async fn regenerate(ctx: &JobContext, id: i64) -> Result<String, JobError> {
    let doc = documents::get(ctx.db(), id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("document {id} not found")))?;
    if doc.storage_type == StorageType::Gpg {
        return Err(JobError::Permanent(format!(
            "document {id} is GnuPG-encrypted: decrypt it first"
        )));
    }
    let media = Media::from_config(ctx.config());
    let source = match (&doc.archive_filename, &doc.filename) {
        (Some(a), _) => media.archive(a),
        (None, Some(f)) => media.original(f),
        (None, None) => {
            return Err(JobError::Permanent(format!(
                "document {id} has no file to render a thumbnail from"
            )));
        }
    }
    .map_err(media_error)?;
    let bytes = tokio::fs::read(&source).await.map_err(|e| {
        let msg = format!("document {id}: cannot read {}: {e}", source.display());
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                JobError::Permanent(msg)
            }
            _ => JobError::Transient(msg),
        }
    })?;
    let kind = detect::detect(&bytes).ok_or_else(|| {
        JobError::Permanent(format!(
            "document {id}: {} is of a type that has no thumbnail ({})",
            source.display(),
            detect::describe_unknown(&bytes)
        ))
    })?;
    let width = ctx.config().thumbnail_width;
    let webp = tokio::task::spawn_blocking(move || super::render::thumbnail(kind, &bytes, width))
        .await
        .map_err(|e| JobError::Permanent(format!("document {id}: rendering crashed: {e}")))?
        .map_err(|e| JobError::Permanent(format!("document {id}: {e}")))?;
    let path = tokio::task::spawn_blocking(move || media.write_thumbnail(id, &webp))
        .await
        .map_err(|e| JobError::Transient(format!("document {id}: writing crashed: {e}")))?
        .map_err(media_error)?;
    Ok(path.display().to_string())
}

fn media_error(e: MediaError) -> JobError {
    match e.class() {
        ErrorClass::Transient => JobError::Transient(e.to_string()),
        ErrorClass::Permanent => JobError::Permanent(e.to_string()),
    }
}
