//! `paperboy-bench classifier`: the Auto classifier on the bench corpus, and the retagger's
//! throughput.
//!
//! The corpus is generated with every object on AUTO. Every fifth live document (and every
//! document the generator put in the inbox) gets the inbox tag: inbox documents are not
//! learned from, so they are the held-out split. A real worker trains (`train_classifier`:
//! time, the worker's peak RSS), then `retagger -c -T -t -s -f --inbox-only --suggest` reports
//! what the classifier would change on the held-out documents: a field it would not change is
//! a field it predicted right. Beside it, the majority baseline: the most common value of each
//! field among the training documents. Last, a real retagger run over every document.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use paperboy_shared::db::{self, Db, retag};
use paperboy_shared::job::{Job, RetagArgs};
use serde_json::Value;

use crate::consume::{WorkerSpec, start_worker, wait_job};
use crate::corpus;

pub struct Args {
    pub redis_url: String,
    pub bin_dir: PathBuf,
    pub docs: usize,
    pub seed: u64,
}

/// A document's four fields as the classifier sees them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Truth {
    correspondent: Option<i64>,
    document_type: Option<i64>,
    storage_path: Option<i64>,
    tags: BTreeSet<i64>,
}

/// Share of `held` whose field equals the most common value of that field in `training`.
fn majority<T: Eq + std::hash::Hash + Clone>(training: &[T], held: &[T]) -> f64 {
    let mut counts: HashMap<&T, usize> = HashMap::new();
    for t in training {
        *counts.entry(t).or_default() += 1;
    }
    let Some((top, _)) = counts.into_iter().max_by_key(|(_, n)| *n) else {
        return 0.0;
    };
    held.iter().filter(|t| *t == top).count() as f64 / held.len().max(1) as f64
}

pub async fn run(args: Args) -> Result<()> {
    let (scratch, db_url, summary) = corpus::scratch(args.docs, args.seed, true).await?;
    let db = Db::connect(&db_url).await?;
    let inbox = db::tags::inbox_tags(&db)
        .await?
        .first()
        .copied()
        .context("the corpus has no inbox tag")?;
    let auto_tags: BTreeSet<i64> = db::classifier::auto_objects(&db)
        .await?
        .tags
        .into_iter()
        .collect();

    // Hold out every fifth document; read every document's fields.
    let mut training = Vec::new();
    let mut held = Vec::new();
    let mut after = i64::MIN;
    loop {
        let ids = retag::ids(&db, retag::RetagFilter::default(), after, 500).await?;
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            break;
        };
        after = last;
        let mut tx = db.begin().await?;
        for &id in ids.iter().filter(|id| *id % 5 == 0) {
            db::documents::add_tags(&mut tx, id, &[inbox]).await?;
        }
        tx.commit().await?;
        for d in retag::docs_in_range(&db, first, last).await? {
            let truth = Truth {
                correspondent: d.correspondent_id,
                document_type: d.document_type_id,
                storage_path: d.storage_path_id,
                tags: d
                    .tags
                    .iter()
                    .copied()
                    .filter(|t| auto_tags.contains(t))
                    .collect(),
            };
            if d.tags.contains(&inbox) {
                held.push(truth);
            } else {
                training.push(truth);
            }
        }
    }
    drop(db);

    let prefix = format!("pbbench:classifier:{}", ulid::Ulid::new());
    let (queue, worker) = start_worker(&WorkerSpec {
        redis_url: &args.redis_url,
        bin_dir: &args.bin_dir,
        db_url: &db_url,
        dir: scratch.path(),
        prefix: &prefix,
        queues: "train_classifier,retagger,retagger_batch",
        env: &[("PAPERBOY_SCHEDULER", "false")],
    })
    .await?;
    let rss_idle = worker.peak_rss_mib();
    let start = Instant::now();
    let id = queue
        .enqueue(&Job::TrainClassifier {})
        .await?
        .id()
        .to_string();
    let trained = wait_job(&queue, &id, async |_| Ok(())).await?;
    let train_wall = start.elapsed().as_secs_f64();
    let rss_trained = worker.peak_rss_mib();
    let result = trained.result.unwrap_or(Value::Null);

    let all = RetagArgs {
        correspondent: true,
        tags: true,
        document_type: true,
        storage_path: true,
        ..Default::default()
    };
    let id = queue
        .enqueue(&Job::Retagger(RetagArgs {
            inbox_only: true,
            overwrite: true,
            suggest: true,
            ..all.clone()
        }))
        .await?
        .id()
        .to_string();
    let suggested = wait_job(&queue, &id, async |_| Ok(()))
        .await?
        .result
        .unwrap_or(Value::Null);
    let mut wrong: HashMap<&str, usize> = HashMap::new();
    for row in suggested["changes"].as_array().into_iter().flatten() {
        for f in ["correspondent", "document_type", "storage_path"] {
            if !row[f].is_null() {
                *wrong.entry(f).or_default() += 1;
            }
        }
        let tag_changed = [&row["tags_added"], &row["tags_removed"]].iter().any(|v| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .any(|t| t.as_i64().is_some_and(|t| auto_tags.contains(&t)))
            })
        });
        if tag_changed {
            *wrong.entry("tags").or_default() += 1;
        }
    }

    let start = Instant::now();
    let id = queue.enqueue(&Job::Retagger(all)).await?.id().to_string();
    let retagged = wait_job(&queue, &id, async |_| Ok(()))
        .await?
        .result
        .unwrap_or(Value::Null);
    let retag_secs = start.elapsed().as_secs_f64();
    crate::queue::cleanup(&args.redis_url, &prefix).await?;

    let n = held.len().max(1) as f64;
    let acc = |f: &str| 100.0 * (1.0 - *wrong.get(f).unwrap_or(&0) as f64 / n);
    let pick = |v: &[Truth], f: fn(&Truth) -> Option<i64>| v.iter().map(f).collect::<Vec<_>>();
    let base =
        |f: fn(&Truth) -> Option<i64>| 100.0 * majority(&pick(&training, f), &pick(&held, f));
    let tags_base = 100.0
        * majority(
            &training.iter().map(|t| t.tags.clone()).collect::<Vec<_>>(),
            &held.iter().map(|t| t.tags.clone()).collect::<Vec<_>>(),
        );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "## Classifier ({cores} cores; bench corpus of {} documents, seed {}, every object AUTO)\n",
        summary.documents, args.seed
    );
    println!(
        "Training: {} documents, vocabulary {} terms, {} s in the job ({train_wall:.1} s enqueue → done); worker peak RSS {} MiB (idle {} MiB).\n",
        result["documents"],
        result["vocabulary"],
        result["seconds"],
        rss_trained.map_or("?".into(), |m| format!("{m:.0}")),
        rss_idle.map_or("?".into(), |m| format!("{m:.0}")),
    );
    println!(
        "| field (held-out: {} documents) | classifier accuracy | majority baseline |",
        held.len()
    );
    println!("|---|---|---|");
    println!(
        "| correspondent | {:.1} % | {:.1} % |",
        acc("correspondent"),
        base(|t| t.correspondent)
    );
    println!(
        "| document type | {:.1} % | {:.1} % |",
        acc("document_type"),
        base(|t| t.document_type)
    );
    println!(
        "| storage path | {:.1} % | {:.1} % |",
        acc("storage_path"),
        base(|t| t.storage_path)
    );
    println!(
        "| tags (exact set of AUTO tags) | {:.1} % | {tags_base:.1} % |",
        acc("tags")
    );
    let docs = retagged["documents"].as_f64().unwrap_or(0.0);
    println!(
        "\n`retagger -c -T -t -s` over all {docs} documents (classifier predictions): {retag_secs:.2} s, {:.0} documents/s",
        docs / retag_secs
    );
    Ok(())
}
