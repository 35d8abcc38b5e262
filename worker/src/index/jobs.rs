//! The job handlers: `index_reindex`, `index_optimize`, `index_update` (queue `index`).
//!
//! Each takes the writer lease first ([`WriterLease`]): if another worker writes, it waits a
//! few seconds and then fails transiently, so the job comes back with backoff and this worker
//! goes on with other queues.

use std::collections::HashSet;
use std::time::Duration;

use paperboy_shared::db::{documents, index as db_index};
use paperboy_shared::job::{INDEX_PENDING, INDEX_QUEUE, Job};
use serde_json::{Value, json};
use tokio::task::block_in_place;

use super::IndexError;
use super::lease::WriterLease;
use super::store::{self, IndexSettings, Pointer, Writer};
use crate::jobs::{JobContext, JobError};

/// Rows read from the database per step of a reindex.
const PAGE: i64 = 500;
/// Ids committed together by an update.
const UPDATE_BATCH: usize = 500;
/// How long a job waits for a lease another worker holds before it fails transiently.
const LEASE_WAIT: Duration = Duration::from_secs(5);

fn token(ctx: &JobContext) -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{}", std::process::id(), ctx.id)
}

async fn take_lease(ctx: &JobContext) -> Result<WriterLease, IndexError> {
    WriterLease::acquire(&ctx.queue, token(ctx), ctx.config.lease, LEASE_WAIT).await
}

/// `document_index reindex [--if-needed]`.
pub async fn reindex(if_needed: bool, ctx: &JobContext) -> Result<Value, JobError> {
    let s = IndexSettings::from_config(&ctx.config)?;
    if if_needed && store::needs_rebuild(&s).is_none() {
        return Ok(json!({"up_to_date": true, "message": "Search index is up to date."}));
    }
    let lease = take_lease(ctx).await?;
    let r: Result<Value, IndexError> = async {
        if if_needed && store::needs_rebuild(&s).is_none() {
            return Ok(json!({"up_to_date": true, "message": "Search index is up to date."}));
        }
        rebuild(&s, ctx, &lease).await
    }
    .await;
    lease.release().await;
    Ok(r?)
}

/// Builds a new generation from every live document and swaps it in; the old one answers
/// searches until the pointer moves. Needs the lease.
async fn rebuild(
    s: &IndexSettings,
    ctx: &JobContext,
    lease: &WriterLease,
) -> Result<Value, IndexError> {
    let old = store::read_pointer(&s.dir).map(|p| p.generation);
    // Leftovers of interrupted reindexes (never the live generation).
    let keep: Vec<&str> = old.iter().map(String::as_str).collect();
    let stale = store::remove_generations_except(s, &keep);
    if !stale.is_empty() {
        tracing::info!(removed = ?stale, "removed index generations of interrupted reindexes");
    }
    let total = documents::count(&ctx.db).await?.max(0) as u64;
    let (name, opened) = store::create_generation(s)?;
    let path = s.dir.join(&name);
    tracing::info!(generation = %name, documents = total, "reindex started");
    let filled = async {
        let mut w = Writer::open(&opened.index, opened.fields, lease.term(), &path)?;
        let mut after = 0;
        let mut n: u64 = 0;
        ctx.progress(0, total, "indexing documents");
        loop {
            if ctx.is_cancelled() {
                return Err(IndexError::Cancelled);
            }
            let rows = db_index::rows_after(&ctx.db, after, PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.document.id;
            block_in_place(|| w.add(&rows))?;
            n += rows.len() as u64;
            ctx.progress(n, total.max(n), "indexing documents");
        }
        lease.confirm().await?;
        // One segment before the swap: a search then walks one term dictionary and one
        // postings list per term instead of one per segment.
        block_in_place(|| {
            w.commit()?;
            w.merge_all()?;
            w.garbage_collect()?;
            w.finish()
        })?;
        Ok(n)
    }
    .await;
    let n = match filled {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&path);
            return Err(e);
        }
    };
    // The swap: only a holder that still has the lease moves the pointer.
    if let Err(e) = lease.confirm().await {
        let _ = std::fs::remove_dir_all(&path);
        return Err(e);
    }
    let pointer = Pointer {
        documents: n,
        built_at: chrono::Utc::now().to_rfc3339(),
        ..opened.pointer
    };
    store::swap_to(s, &pointer)?;
    let removed = store::remove_generations_except(s, &[name.as_str()]);
    tracing::info!(generation = %name, documents = n, replaced = ?old, "reindex done, index swapped");
    Ok(json!({
        "generation": name,
        "documents": n,
        "replaced": old,
        "removed_generations": removed,
    }))
}

/// Up to `n` ids of the pending set (sorted; they stay in it until committed).
async fn pending_batch(ctx: &JobContext, n: usize) -> Result<Vec<i64>, IndexError> {
    let n = n.min(1_000_000);
    let mut ids = ctx
        .queue
        .pending_peek(INDEX_QUEUE, INDEX_PENDING, n)
        .await?;
    ids.sort_unstable();
    Ok(ids)
}

/// `document_index optimize`: one segment, unused files removed.
pub async fn optimize(ctx: &JobContext) -> Result<Value, JobError> {
    let s = IndexSettings::from_config(&ctx.config)?;
    let lease = take_lease(ctx).await?;
    let r: Result<Value, IndexError> = async {
        let Some(o) = store::open_live(&s)? else {
            return Err(IndexError::Missing);
        };
        let path = s.dir.join(&o.pointer.generation);
        let mut w = Writer::open(&o.index, o.fields, lease.term(), &path)?;
        lease.confirm().await?;
        let (before, after) = block_in_place(|| w.merge_all())?;
        let removed = block_in_place(|| w.garbage_collect())?;
        block_in_place(|| w.finish())?;
        Ok(json!({
            "generation": o.pointer.generation,
            "segments_before": before,
            "segments_after": after,
            "files_removed": removed,
        }))
    }
    .await;
    lease.release().await;
    Ok(r?)
}

/// Queues an index update of `ids` through the pending set: they join it, and a flush job
/// (`IndexUpdate` with no ids) is queued. Many consumed documents then make few commits.
pub async fn queue_pending(ctx: &JobContext, ids: &[i64]) -> Result<(), JobError> {
    ctx.queue
        .pending_add(INDEX_QUEUE, INDEX_PENDING, ids)
        .await?;
    ctx.enqueue(&Job::IndexUpdate { ids: Vec::new() }).await?;
    Ok(())
}

/// Adds, replaces or removes these documents' entries (no ids: the pending set's, in batches
/// that leave the set only once committed). With no current index (none yet, or an older
/// schema or language) it rebuilds instead, which includes them.
pub async fn update(ids: Vec<i64>, ctx: &JobContext) -> Result<Value, JobError> {
    let s = IndexSettings::from_config(&ctx.config)?;
    // Some: the ids given, sorted and deduplicated; None: the pending set.
    let mut given = if ids.is_empty() {
        // Nothing pending (an earlier flush took it): done without the writer or a commit.
        if ctx.queue.pending_len(INDEX_QUEUE, INDEX_PENDING).await? == 0 {
            return Ok(json!({"updated": 0, "removed": 0, "pending": 0}));
        }
        None
    } else {
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    };
    let total = given.as_ref().map_or(0, |ids| ids.len() as u64);
    let lease = take_lease(ctx).await?;
    let r: Result<Value, IndexError> = async {
        let Some(o) = store::open_live(&s)? else {
            let why = store::needs_rebuild(&s).unwrap_or_default();
            tracing::info!(reason = %why, "index update found no current index: rebuilding");
            // The pending ids read before the rebuild are in it: drop them from the set.
            let pending = match given {
                None => pending_batch(ctx, usize::MAX).await?,
                Some(_) => Vec::new(),
            };
            let v = rebuild(&s, ctx, &lease).await?;
            ctx.queue
                .pending_done(INDEX_QUEUE, INDEX_PENDING, &pending)
                .await?;
            return Ok(json!({"rebuilt": v}));
        };
        let path = s.dir.join(&o.pointer.generation);
        let mut w = Writer::open(&o.index, o.fields, lease.term(), &path)?;
        let (mut updated, mut removed, mut commits) = (0u64, 0u64, 0u64);
        let mut given = given.take().map(|ids| ids.into_iter());
        let mut done = 0u64;
        loop {
            let chunk: Vec<i64> = match given.as_mut() {
                Some(it) => it.by_ref().take(UPDATE_BATCH).collect(),
                None => pending_batch(ctx, UPDATE_BATCH).await?,
            };
            if chunk.is_empty() {
                break;
            }
            let rows = db_index::rows(&ctx.db, &chunk).await?;
            let present: HashSet<i64> = rows.iter().map(|r| r.document.id).collect();
            block_in_place(|| {
                for id in chunk.iter().filter(|id| !present.contains(id)) {
                    w.delete(*id);
                    removed += 1;
                }
                w.upsert(&rows)
            })?;
            updated += rows.len() as u64;
            lease.confirm().await?;
            block_in_place(|| w.commit())?;
            commits += 1;
            if given.is_none() {
                ctx.queue
                    .pending_done(INDEX_QUEUE, INDEX_PENDING, &chunk)
                    .await?;
            }
            done += chunk.len() as u64;
            ctx.progress(done, total.max(done), "updating the index");
        }
        block_in_place(|| w.finish())?;
        Ok(json!({
            "generation": o.pointer.generation,
            "updated": updated,
            "removed": removed,
            "commits": commits,
            "term": lease.term(),
        }))
    }
    .await;
    lease.release().await;
    Ok(r?)
}
