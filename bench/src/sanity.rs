//! `paperboy-bench sanity`: the sanity checker and the renamer on the bench corpus (issue 7).
//!
//! The corpus is generated into a scratch SQLite archive. One real `paperboy-worker` (queues
//! `sanity_check,sanity_check_batch,renamer`, no scheduler) runs `sanity_check` `--runs` times
//! (enqueue → done; it hashes every original and archive file and reads every thumbnail).
//! The baseline is `find MEDIA -type f -print0 | xargs -0 sha256sum > /dev/null` over every
//! file under the media root, `--runs` times before the first sanity check and `--runs` times
//! after the last. Page caches cannot be dropped here: the corpus was just written, so every
//! file is in the page cache for both (CPU-bound hashing, not disk reads).
//!
//! Then a second worker on the same archive with `PAPERBOY_FILENAME_FORMAT` set to
//! [`TEMPLATE`] runs the renamer (`renamer`, not a dry run): enqueue → every batch done, the
//! number of files whose name changed (the media tree listed before and after). The rough
//! baseline is `cp -al` of `originals/` and `archive/` into a scratch folder on the same file
//! system: making that many hard links, no unlinks, no database. A last sanity check confirms
//! the renamed archive.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use paperboy_shared::job::Job;
use paperboy_shared::media::{ARCHIVE_DIR, ORIGINALS_DIR, THUMBNAILS_DIR};
use paperboy_shared::queue::Queue;
use serde_json::Value;

use crate::consume::{WorkerSpec, drain, start_worker, wait_job};
use crate::corpus;
use crate::queue::percentile;

pub struct Args {
    pub redis_url: String,
    pub bin_dir: PathBuf,
    pub docs: usize,
    pub seed: u64,
    /// Sanity checks, and `sha256sum` runs before and after them.
    pub runs: usize,
}

/// The renamer's new template.
pub const TEMPLATE: &str = "{{ created_year }}/{{ correspondent }}/{{ title }}";

const QUEUES: &str = "sanity_check,sanity_check_batch,renamer";

/// Every file under `dir` (recursively) with its size; empty when `dir` is missing.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) => out.push((e.path(), m.len())),
                Err(_) => {}
            }
        }
    }
    out
}

/// (files, bytes) under the given folders of `media`.
fn count(media: &Path, dirs: &[&str]) -> (usize, u64) {
    dirs.iter()
        .flat_map(|d| files_under(&media.join(d)))
        .fold((0, 0), |(n, b), f| (n + 1, b + f.1))
}

/// Relative names of the files under `originals/` and `archive/`.
fn names(media: &Path) -> HashSet<PathBuf> {
    [ORIGINALS_DIR, ARCHIVE_DIR]
        .iter()
        .flat_map(|d| files_under(&media.join(d)))
        .filter_map(|(p, _)| p.strip_prefix(media).ok().map(Path::to_path_buf))
        .collect()
}

/// Seconds of a `sh -c script` with `$1` = `arg`.
pub fn shell_seconds(script: &str, arg: &Path) -> Result<f64> {
    let start = Instant::now();
    let status = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(arg)
        .status()
        .with_context(|| format!("running {script}"))?;
    if !status.success() {
        bail!("{script} failed");
    }
    Ok(start.elapsed().as_secs_f64())
}

fn sha256sum_runs(media: &Path, runs: usize) -> Result<Vec<f64>> {
    let mut v = (0..runs)
        .map(|_| {
            shell_seconds(
                "find \"$1\" -type f -print0 | xargs -0 sha256sum > /dev/null",
                media,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v)
}

/// One `sanity_check`: seconds enqueue → done and the report.
async fn sanity_check(queue: &Queue) -> Result<(f64, Value)> {
    let start = Instant::now();
    let id = queue.enqueue(&Job::SanityCheck {}).await?.id().to_string();
    let done = wait_job(queue, &id, async |_| Ok(())).await?;
    Ok((
        start.elapsed().as_secs_f64(),
        done.result.unwrap_or(Value::Null),
    ))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn rss(v: Option<f64>) -> String {
    v.map_or("?".into(), |m| format!("{m:.0} MiB"))
}

/// "median (min–max)" of sorted seconds.
fn spread(v: &[f64]) -> String {
    format!(
        "{:.2} s ({:.2}–{:.2})",
        percentile(v, 0.5),
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

pub async fn run(args: Args) -> Result<()> {
    let runs = args.runs.max(1);
    let (scratch, db_url, summary) = corpus::scratch(args.docs, args.seed, false).await?;
    let media = scratch.path().join("media");
    let (all_files, all_bytes) = count(&media, &[ORIGINALS_DIR, THUMBNAILS_DIR, ARCHIVE_DIR]);
    let (hashed_files, hashed_bytes) = count(&media, &[ORIGINALS_DIR, ARCHIVE_DIR]);
    let (media_files, _) = count(&media, &["."]);

    // Sanity checks between the two baselines.
    let sha_before = sha256sum_runs(&media, runs)?;
    let prefix = format!("pbbench:sanity:{}", ulid::Ulid::new());
    let spec = WorkerSpec {
        redis_url: &args.redis_url,
        bin_dir: &args.bin_dir,
        db_url: &db_url,
        dir: scratch.path(),
        prefix: &prefix,
        queues: QUEUES,
        env: &[("PAPERBOY_SCHEDULER", "false")],
    };
    let (queue, worker) = start_worker(&spec).await?;
    let rss_idle = worker.peak_rss_mib();
    let mut checks = Vec::new();
    let mut report = Value::Null;
    for _ in 0..runs {
        let (secs, r) = sanity_check(&queue).await?;
        checks.push(secs);
        report = r;
    }
    checks.sort_by(|a, b| a.total_cmp(b));
    let rss_sanity = worker.peak_rss_mib();
    drop(worker);
    let sha_after = sha256sum_runs(&media, runs)?;

    // The renamer after a template change, on a fresh worker.
    let links = scratch.path().join("links");
    std::fs::create_dir(&links)?;
    // The corpus may have no archive versions: link only the folders that exist.
    let cp_script = format!(
        "for d in {ORIGINALS_DIR} {ARCHIVE_DIR}; do [ ! -d \"$1/$d\" ] || cp -al \"$1/$d\" \"$1/../links/\" || exit 1; done; sync"
    );
    let cp_al = shell_seconds(&cp_script, &media)?;
    std::fs::remove_dir_all(&links)?;
    let before = names(&media);
    let rename_prefix = format!("pbbench:sanity:{}", ulid::Ulid::new());
    let (queue, worker) = start_worker(&WorkerSpec {
        prefix: &rename_prefix,
        env: &[
            ("PAPERBOY_SCHEDULER", "false"),
            ("PAPERBOY_FILENAME_FORMAT", TEMPLATE),
        ],
        ..spec
    })
    .await?;
    let rss_rename_idle = worker.peak_rss_mib();
    let start = Instant::now();
    let id = queue
        .enqueue(&Job::Renamer {
            dry_run: false,
            batch: None,
        })
        .await?
        .id()
        .to_string();
    let coordinator = wait_job(&queue, &id, async |_| Ok(()))
        .await?
        .result
        .unwrap_or(Value::Null);
    let batches = coordinator["batches"].as_u64().unwrap_or(0);
    let dead = drain(&queue, "renamer", 1 + batches).await?;
    let rename_secs = start.elapsed().as_secs_f64();
    let rss_rename = worker.peak_rss_mib();
    let after = names(&media);
    let moved = before.difference(&after).count();
    let (after_secs, after_report) = sanity_check(&queue).await?;
    drop(worker);
    crate::queue::cleanup(&args.redis_url, &prefix).await?;
    crate::queue::cleanup(&args.redis_url, &rename_prefix).await?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sanity_med = percentile(&checks, 0.5);
    let ratio = |v: &[f64]| sanity_med / percentile(v, 0.5);
    println!(
        "## Sanity check and renamer ({cores} cores; bench corpus of {} documents, seed {}; one worker, default concurrency; {runs} runs each, median (min–max))\n",
        summary.documents, args.seed
    );
    println!(
        "Media root: {media_files} files; originals + thumbnails + archive {all_files} files, {:.1} MiB; the sanity check hashes the {hashed_files} originals and archive files ({:.1} MiB) and reads the thumbnails. Every file is in the page cache (the corpus was just written; caches cannot be dropped here).\n",
        mib(all_bytes),
        mib(hashed_bytes)
    );
    println!("| what | time | files/s | MiB/s | worker peak RSS | ratio |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, v: &[f64], files: usize, bytes: Option<u64>, rss: &str, ratio: &str| {
        let m = percentile(v, 0.5);
        println!(
            "| {name} | {} | {:.0} | {} | {rss} | {ratio} |",
            spread(v),
            files as f64 / m,
            bytes.map_or("–".into(), |b| format!("{:.0}", mib(b) / m))
        );
    };
    row(
        "`sanity_check` (enqueue → done)",
        &checks,
        hashed_files,
        Some(hashed_bytes),
        &format!("{} (idle {})", rss(rss_sanity), rss(rss_idle)),
        "1.00",
    );
    row(
        "`sha256sum`, before",
        &sha_before,
        all_files,
        Some(all_bytes),
        "–",
        &format!("sanity / this: {:.2}", ratio(&sha_before)),
    );
    row(
        "`sha256sum`, after",
        &sha_after,
        all_files,
        Some(all_bytes),
        "–",
        &format!("sanity / this: {:.2}", ratio(&sha_after)),
    );
    row(
        &format!("`renamer` (enqueue → {batches} batches done), {moved} files moved"),
        &[rename_secs],
        moved,
        None,
        &format!("{} (idle {})", rss(rss_rename), rss(rss_rename_idle)),
        &format!("renamer / `cp -al`: {:.1}", rename_secs / cp_al),
    );
    row(
        "`cp -al` of originals/ + archive/ (links only)",
        &[cp_al],
        hashed_files,
        None,
        "–",
        "",
    );
    println!(
        "\nSanity report (last run before renaming): {} documents checked, {} issues: {}",
        report["documents_checked"], report["total_issue_count"], report["summary"]
    );
    println!(
        "After renaming ({dead} dead renamer jobs): sanity check {after_secs:.2} s, {} documents checked, {} issues: {}",
        after_report["documents_checked"],
        after_report["total_issue_count"],
        after_report["summary"]
    );
    println!(
        "Target: sanity check within 1.3× of `sha256sum`: {} (median ratio {:.2} before, {:.2} after).",
        if ratio(&sha_before).max(ratio(&sha_after)) <= 1.3 {
            "met"
        } else {
            "not met"
        },
        ratio(&sha_before),
        ratio(&sha_after)
    );
    Ok(())
}
