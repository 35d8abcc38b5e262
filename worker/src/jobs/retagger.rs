//! `retagger` (paperless `document_retagger`): re-applies matching rules to documents already
//! in the archive (`../shared/specs/matching-index-files.md` §2; the decision per document is
//! [`crate::matching::assign::retag`]).
//!
//! - `Job::Retagger`: without any of `-c -T -t -s` it does nothing and says so. Otherwise it
//!   pages the ids of the live documents passing `--inbox-only` / `--id-range` ([`BATCH`] at a
//!   time, never all at once), enqueues one `Job::RetaggerBatch` per page (its own queue, so a
//!   parent waiting for its batches never holds the slot they need), waits for them and sums
//!   their counts into one result.
//! - `Job::RetaggerBatch`: loads and compiles the rules, reads its documents (effective
//!   content, tags), decides, and (unless `--suggest`) writes every change of the batch in ONE
//!   transaction. A retry recomputes from the rows, so it is idempotent.
//!
//! Deliberate differences from upstream: documents in id order (upstream: newest created
//! first; the result is the same); counts are real changes (upstream counts tags removed and
//! re-added by `-f` both ways); a changed document's `modified` is bumped (upstream saves only
//! the changed column); object-level view permissions are not modelled (owners see their own
//! and unowned objects, superusers all).

use paperboy_shared::db::documents;
use paperboy_shared::db::retag::{self, Field, RetagDoc, RetagFilter};
use paperboy_shared::job::{Job, RETAG_NO_TARGETS, RetagArgs};
use serde_json::{Value, json};

use super::{JobContext, JobError};
use crate::matching::ObjectKind;
use crate::matching::assign::{self, Change, DocState, Objects, RetagOptions};

/// Documents per batch.
pub const BATCH: i64 = 200;

/// Most change rows kept in the parent's result (the counts are always complete).
pub const MAX_ROWS: usize = 10_000;

const COUNTERS: [&str; 6] = [
    "documents",
    "correspondents_set",
    "document_types_set",
    "tags_added",
    "tags_removed",
    "storage_paths_set",
];

pub async fn run(args: RetagArgs, ctx: &JobContext) -> Result<Value, JobError> {
    if !args.has_target() {
        tracing::info!("{RETAG_NO_TARGETS}");
        return Ok(json!({"message": RETAG_NO_TARGETS, "documents": 0, "batches": 0}));
    }
    let filter = filter(&args);
    let mut after = i64::MIN;
    let mut children = Vec::new();
    let mut queued = 0u64;
    loop {
        ctx.check_cancelled()?;
        let ids = retag::ids(ctx.db(), filter, after, BATCH).await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        queued += ids.len() as u64;
        let e = ctx
            .enqueue(&Job::RetaggerBatch {
                args: args.clone(),
                ids,
            })
            .await?;
        children.push(e.id().to_string());
        ctx.progress(0, queued, format!("{} batches queued", children.len()));
    }
    let mut totals = json!({});
    for k in COUNTERS {
        totals[k] = json!(0);
    }
    let mut rows: Vec<Value> = Vec::new();
    let mut truncated = false;
    for (i, id) in children.iter().enumerate() {
        let record = ctx.wait_child(&children, i).await?.map_err(|why| {
            JobError::Permanent(format!(
                "retagger batch {id} {why} (earlier batches' changes are committed; \
                 run the retagger again)"
            ))
        })?;
        let result = record.result.unwrap_or_default();
        for k in COUNTERS {
            totals[k] = json!(totals[k].as_u64().unwrap_or(0) + result[k].as_u64().unwrap_or(0));
        }
        if let Some(changes) = result["changes"].as_array() {
            for c in changes {
                if rows.len() < MAX_ROWS {
                    rows.push(c.clone());
                } else {
                    truncated = true;
                }
            }
        }
        let done = totals["documents"].as_u64().unwrap_or(0);
        ctx.progress(
            done,
            queued,
            format!("{} of {} batches", i + 1, children.len()),
        );
    }
    totals["batches"] = json!(children.len());
    totals["suggest"] = json!(args.suggest);
    totals["changes"] = json!(rows);
    if truncated {
        totals["changes_truncated"] = json!(true);
    }
    Ok(totals)
}

fn filter(args: &RetagArgs) -> RetagFilter {
    let (lo, hi) = args.id_range.unwrap_or((i64::MIN, i64::MAX));
    RetagFilter {
        inbox_only: args.inbox_only,
        lo,
        hi,
    }
}

fn options(args: &RetagArgs) -> RetagOptions {
    RetagOptions {
        correspondent: args.correspondent,
        tags: args.tags,
        document_type: args.document_type,
        storage_path: args.storage_path,
        use_first: args.use_first,
        overwrite: args.overwrite,
    }
}

/// One batch: decide every document, then write all changes in one transaction.
pub async fn run_batch(
    args: RetagArgs,
    ids: Vec<i64>,
    ctx: &JobContext,
) -> Result<Value, JobError> {
    let (Some(&first), Some(&last)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(json!({"documents": 0}));
    };
    let objects = crate::matching::load(ctx.db()).await?;
    let docs: Vec<RetagDoc> = retag::docs_in_range(ctx.db(), first, last)
        .await?
        .into_iter()
        .filter(|d| ids.contains(&d.id))
        .collect();
    let opts = options(&args);
    let total = docs.len() as u64;
    let model = crate::classifier::current(ctx.config());
    let threshold = ctx.config().classifier_threshold;
    let decided = tokio::task::spawn_blocking(move || {
        let changes: Vec<(RetagDoc, Change)> = docs
            .into_iter()
            .map(|d| {
                let state = DocState {
                    id: d.id,
                    owner: d.owner_id,
                    correspondent: d.correspondent_id,
                    document_type: d.document_type_id,
                    storage_path: d.storage_path_id,
                    tags: d.tags.clone(),
                    content: d.content.clone(),
                };
                let predicted = model
                    .as_ref()
                    .map(|m| m.predict(&state.content, threshold))
                    .unwrap_or_default();
                let c = assign::retag(&objects, &state, &opts, &predicted);
                (d, c)
            })
            .collect();
        (objects, changes)
    })
    .await
    .map_err(|e| JobError::Permanent(format!("retagger batch crashed: {e}")))?;
    let (objects, changes) = decided;
    ctx.check_cancelled()?;
    let mut counts = [0u64; 6];
    counts[0] = total;
    let mut rows = Vec::new();
    let mut tx = if args.suggest {
        None
    } else {
        Some(ctx.db().begin().await?)
    };
    for (doc, c) in &changes {
        if c.is_empty() {
            continue;
        }
        counts[1] += c.correspondent.is_some() as u64;
        counts[2] += c.document_type.is_some() as u64;
        counts[3] += c.tags_added.len() as u64;
        counts[4] += c.tags_removed.len() as u64;
        counts[5] += c.storage_path.is_some() as u64;
        rows.push(row(&objects, doc, c));
        let Some(tx) = tx.as_mut() else { continue };
        for (field, f) in [
            (Field::Correspondent, c.correspondent),
            (Field::DocumentType, c.document_type),
            (Field::StoragePath, c.storage_path),
        ] {
            if let Some(f) = f {
                retag::set_field(tx, doc.id, field, f.to).await?;
            }
        }
        documents::remove_tags(tx, doc.id, &c.tags_removed).await?;
        documents::add_tags(tx, doc.id, &c.tags_added).await?;
    }
    if let Some(tx) = tx {
        tx.commit()
            .await
            .map_err(paperboy_shared::db::DbError::from)?;
        let ids: Vec<i64> = changes
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(d, _)| d.id)
            .collect();
        if !ids.is_empty()
            && let Err(e) = ctx.enqueue(&Job::IndexUpdate { ids }).await
        {
            tracing::warn!(error = %e, "cannot queue the index update of a retagger batch");
        }
    }
    ctx.progress(total, total, "done");
    let mut out = json!({"changes": rows});
    for (k, v) in COUNTERS.iter().zip(counts) {
        out[*k] = json!(v);
    }
    Ok(out)
}

/// One change for the report: names, not ids (ids alongside).
fn row(objects: &Objects, doc: &RetagDoc, c: &Change) -> Value {
    let field = |kind: ObjectKind, f: Option<assign::FieldChange>| {
        f.map(|f| {
            let name = |id: Option<i64>| id.and_then(|i| objects.name(kind, i)).map(str::to_string);
            json!({"from": f.from, "to": f.to, "from_name": name(f.from), "to_name": name(f.to)})
        })
    };
    let names = |ids: &[i64]| {
        let mut v: Vec<String> = ids
            .iter()
            .map(|i| {
                objects
                    .name(ObjectKind::Tag, *i)
                    .map_or_else(|| i.to_string(), str::to_string)
            })
            .collect();
        v.sort();
        v
    };
    json!({
        "document_id": doc.id,
        "document": format!("{} {}", doc.created, doc.title),
        "correspondent": field(ObjectKind::Correspondent, c.correspondent),
        "document_type": field(ObjectKind::DocumentType, c.document_type),
        "storage_path": field(ObjectKind::StoragePath, c.storage_path),
        "tags_added": c.tags_added,
        "tags_removed": c.tags_removed,
        "tags_added_names": names(&c.tags_added),
        "tags_removed_names": names(&c.tags_removed),
    })
}
