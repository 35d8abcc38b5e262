//! `paperboy-bench transfer`: `paperboy export` and `paperboy import` on the bench corpus
//! (issue 4).
//!
//! For each corpus size: the corpus is generated into a scratch SQLite archive. A baseline:
//! `find media -type f -print0 | xargs -0 sha256sum`. Then [`FRESH_RUNS`] times, in turn: `cp -a`
//! of the whole media tree into a new folder on the same file system (timed alone, then with the
//! `sync` that makes it durable, since the export makes its files durable before it renames the
//! manifest in), a fresh export into a new empty folder, and a fresh export with `--no-sync`
//! (which, as `cp -a`, does not wait for the disk) into another. Pairs in turn, and nothing deleted
//! until the size's run ends, because on this shared machine one copy of the tree can take 1.6 s
//! or 12 s (other engineers' builds write to the same disk; a `rm -rf` of a big tree slows the
//! next writes): the table gives the median of each and every single figure. Each job runs on a
//! fresh `paperboy-worker` (queues `export,import`, no scheduler) so its peak RSS (`VmHWM`)
//! belongs to that one job, enqueue → done:
//!
//! 1. a fresh export into an empty folder ([`FRESH_RUNS`] times, beside `cp -a`), then one
//!    with `--no-sync`;
//! 2. the same export again with nothing changed (incremental: nothing copied);
//! 3. the same again with `-c` (every exported original hashed against its database checksum);
//! 4. an export with `-z` into another empty folder;
//! 5. the import of export 1 into an empty archive (a new SQLite database and media root).
//!
//! A `sync` runs (untimed) before every measurement, so no step pays for the dirty pages of the
//! one before. The page cache cannot be dropped here: the corpus was just written, so reads come
//! from memory for every row.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use paperboy_shared::job::{ExportArgs, ImportArgs, Job};
use serde_json::Value;

use crate::consume::{WorkerSpec, start_worker, wait_job};
use crate::corpus;
use crate::sanity::{files_under, shell_seconds};

pub struct Args {
    pub redis_url: String,
    pub bin_dir: PathBuf,
    /// Corpus sizes, one run each.
    pub docs: Vec<usize>,
    pub seed: u64,
}

const QUEUES: &str = "export,import";

/// Fresh exports (each beside a `cp -a`) per corpus size.
const FRESH_RUNS: usize = 3;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One job: seconds enqueue → done, the worker's peak RSS (and idle RSS), its result.
struct Measured {
    secs: f64,
    rss: Option<f64>,
    idle: Option<f64>,
    result: Value,
}

struct Run {
    docs: usize,
    files: usize,
    bytes: u64,
    corpus_secs: f64,
    /// One per fresh export, in turn with them.
    cp_a: Vec<f64>,
    sync_after_cp: Vec<f64>,
    sha256sum: f64,
    fresh: Vec<Measured>,
    /// `--no-sync`, one after each of `fresh`.
    no_sync: Vec<Measured>,
    incremental: Measured,
    checksums: Measured,
    zip: Measured,
    zip_bytes: u64,
    import: Measured,
    export_files: usize,
    export_bytes: u64,
}

fn sync() -> Result<f64> {
    let start = Instant::now();
    if !Command::new("sync")
        .status()
        .context("running sync")?
        .success()
    {
        bail!("sync failed");
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Runs `job` on a fresh worker over (`db_url`, `dir`), measured.
async fn measure(args: &Args, db_url: &str, dir: &Path, job: Job) -> Result<Measured> {
    sync()?;
    let prefix = format!("pbbench:transfer:{}", ulid::Ulid::new());
    let (queue, worker) = start_worker(&WorkerSpec {
        redis_url: &args.redis_url,
        bin_dir: &args.bin_dir,
        db_url,
        dir,
        prefix: &prefix,
        queues: QUEUES,
        env: &[("PAPERBOY_SCHEDULER", "false")],
    })
    .await?;
    let idle = worker.peak_rss_mib();
    let start = Instant::now();
    let id = queue.enqueue(&job).await?.id().to_string();
    let done = wait_job(&queue, &id, async |_| Ok(())).await;
    let secs = start.elapsed().as_secs_f64();
    let rss = worker.peak_rss_mib();
    drop(worker);
    crate::queue::cleanup(&args.redis_url, &prefix).await?;
    Ok(Measured {
        secs,
        rss,
        idle,
        result: done?.result.unwrap_or(Value::Null),
    })
}

fn export_job(target: &Path, edit: impl FnOnce(&mut ExportArgs)) -> Job {
    let mut a = ExportArgs {
        target: target.display().to_string(),
        ..Default::default()
    };
    edit(&mut a);
    Job::Export(a)
}

async fn run_one(args: &Args, docs: usize) -> Result<Run> {
    eprintln!("transfer bench: generating a corpus of {docs} documents");
    let (scratch, db_url, summary) = corpus::scratch(docs, args.seed, false).await?;
    let dir = scratch.path();
    let media = dir.join("media");
    let all = files_under(&media);
    let (files, bytes) = (all.len(), all.iter().map(|f| f.1).sum::<u64>());
    drop(all);

    eprintln!("transfer bench: baseline sha256sum over {files} files");
    sync()?;
    let sha256sum = shell_seconds(
        "find \"$1\" -type f -print0 | xargs -0 sha256sum > /dev/null",
        &media,
    )?;

    let (mut cp_a, mut sync_after_cp, mut fresh, mut no_sync) = (vec![], vec![], vec![], vec![]);
    for i in 0..FRESH_RUNS {
        eprintln!(
            "transfer bench: cp -a, then a fresh export ({}/{FRESH_RUNS})",
            i + 1
        );
        sync()?;
        cp_a.push(shell_seconds(
            &format!("cp -a \"$1/media\" \"$1/cp-a-{i}\""),
            dir,
        )?);
        sync_after_cp.push(sync()?);
        let out = dir.join(format!("export-{i}"));
        std::fs::create_dir(&out)?;
        fresh.push(measure(args, &db_url, dir, export_job(&out, |_| {})).await?);
        let out = dir.join(format!("export-no-sync-{i}"));
        std::fs::create_dir(&out)?;
        let m = measure(args, &db_url, dir, export_job(&out, |a| a.no_sync = true)).await?;
        if m.result["synced"] != false
            || m.result["files_copied"] != fresh[i].result["files_copied"]
        {
            bail!("the --no-sync export is not the fresh export: {}", m.result);
        }
        no_sync.push(m);
    }
    let out = dir.join("export-0");
    eprintln!("transfer bench: incremental export, nothing changed");
    let incremental = measure(args, &db_url, dir, export_job(&out, |_| {})).await?;
    if incremental.result["files_copied"] != 0 {
        bail!(
            "the incremental export copied files: {}",
            incremental.result
        );
    }
    eprintln!("transfer bench: export -c");
    let checksums = measure(
        args,
        &db_url,
        dir,
        export_job(&out, |a| a.compare_checksums = true),
    )
    .await?;
    if checksums.result["files_copied"] != 0 {
        bail!("the -c export copied files: {}", checksums.result);
    }
    let exported = files_under(&out);
    let (export_files, export_bytes) = (exported.len(), exported.iter().map(|f| f.1).sum::<u64>());
    drop(exported);

    let zip_dir = dir.join("zip");
    std::fs::create_dir(&zip_dir)?;
    eprintln!("transfer bench: export -z");
    let zip = measure(
        args,
        &db_url,
        dir,
        export_job(&zip_dir, |a| {
            a.zip = true;
            a.zip_name = Some("bench".into());
        }),
    )
    .await?;
    let zip_bytes = std::fs::metadata(zip_dir.join("bench.zip"))
        .context("the zip export wrote no bench.zip")?
        .len();
    std::fs::remove_dir_all(&zip_dir)?;

    eprintln!("transfer bench: import into an empty archive");
    let target = tempfile::tempdir_in(dir)?;
    let target_db = format!(
        "sqlite://{}?mode=rwc",
        target.path().join("paperboy.sqlite3").display()
    );
    let import = measure(
        args,
        &target_db,
        target.path(),
        Job::Import(ImportArgs {
            source: out.display().to_string(),
            ..Default::default()
        }),
    )
    .await?;
    let imported = import.result["imported"]["documents.document"]
        .as_u64()
        .unwrap_or(0);
    if imported != summary.documents as u64 {
        bail!(
            "the import brought {imported} documents, the corpus has {}: {}",
            summary.documents,
            import.result
        );
    }
    Ok(Run {
        docs: summary.documents,
        files,
        bytes,
        corpus_secs: summary.seconds,
        cp_a,
        sync_after_cp,
        sha256sum,
        fresh,
        no_sync,
        incremental,
        checksums,
        zip,
        zip_bytes,
        import,
        export_files,
        export_bytes,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn rss(m: &Measured) -> String {
    match (m.rss, m.idle) {
        (Some(p), Some(i)) => format!("{p:.0} MiB (idle {i:.0})"),
        (Some(p), None) => format!("{p:.0} MiB"),
        _ => "?".into(),
    }
}

pub async fn run(args: Args) -> Result<()> {
    let mut runs = Vec::new();
    for &docs in &args.docs {
        runs.push(run_one(&args, docs).await?);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "## Export and import ({cores} cores; bench corpus seed {}, SQLite; one fresh worker per job, queues `export,import`)\n",
        args.seed
    );
    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Run) -> String| {
        table.push((name.to_string(), runs.iter().map(f).collect()));
    };
    let durable = |r: &Run| {
        median(
            &r.cp_a
                .iter()
                .zip(&r.sync_after_cp)
                .map(|(a, b)| a + b)
                .collect::<Vec<_>>(),
        )
    };
    let cp = |r: &Run| median(&r.cp_a);
    let fresh = |r: &Run| median(&r.fresh.iter().map(|m| m.secs).collect::<Vec<_>>());
    let no_sync = |r: &Run| median(&r.no_sync.iter().map(|m| m.secs).collect::<Vec<_>>());
    row("corpus generation", &|r| format!("{:.1} s", r.corpus_secs));
    row("media root", &|r| {
        format!("{} files, {:.0} MiB", r.files, mib(r.bytes))
    });
    row("baseline `cp -a` of the media root (median; each)", &|r| {
        format!("{:.2} s ({} s)", cp(r), list(&r.cp_a))
    });
    row("baseline `cp -a` + `sync` (median)", &|r| {
        format!("{:.2} s", durable(r))
    });
    row("baseline `sha256sum` of every file", &|r| {
        format!("{:.2} s", r.sha256sum)
    });
    row("fresh export, enqueue → done (median; each)", &|r| {
        format!(
            "**{:.2} s** ({:.2}× `cp -a`, {:.2}× `cp -a` + `sync`; {} s; {} files copied)",
            fresh(r),
            fresh(r) / cp(r),
            fresh(r) / durable(r),
            list(&r.fresh.iter().map(|m| m.secs).collect::<Vec<_>>()),
            r.fresh[0].result["files_copied"]
        )
    });
    row("fresh export ÷ the `cp -a` just before it, each", &|r| {
        list(
            &r.fresh
                .iter()
                .zip(&r.cp_a)
                .map(|(f, c)| f.secs / c)
                .collect::<Vec<_>>(),
        )
    });
    row(
        "fresh export `--no-sync`, enqueue → done (median; each)",
        &|r| {
            format!(
                "**{:.2} s** ({:.2}× `cp -a`; {} s)",
                no_sync(r),
                no_sync(r) / cp(r),
                list(&r.no_sync.iter().map(|m| m.secs).collect::<Vec<_>>()),
            )
        },
    );
    row(
        "fresh export `--no-sync` ÷ the `cp -a` before it, each",
        &|r| {
            list(
                &r.no_sync
                    .iter()
                    .zip(&r.cp_a)
                    .map(|(f, c)| f.secs / c)
                    .collect::<Vec<_>>(),
            )
        },
    );
    row("export written", &|r| {
        format!("{} files, {:.0} MiB", r.export_files, mib(r.export_bytes))
    });
    row("incremental export, nothing changed", &|r| {
        format!(
            "**{:.2} s** ({} copied, {} unchanged)",
            r.incremental.secs,
            r.incremental.result["files_copied"],
            r.incremental.result["files_unchanged"]
        )
    });
    row("incremental export with `-c` (checksums)", &|r| {
        format!(
            "{:.2} s ({:.2}× `sha256sum`; {} copied)",
            r.checksums.secs,
            r.checksums.secs / r.sha256sum,
            r.checksums.result["files_copied"]
        )
    });
    row("export with `-z`", &|r| {
        format!(
            "{:.2} s ({:.2}× `cp -a` + `sync`; zip {:.0} MiB)",
            r.zip.secs,
            r.zip.secs / durable(r),
            mib(r.zip_bytes)
        )
    });
    row("import into an empty archive", &|r| {
        format!(
            "{:.2} s ({:.2}× `cp -a` + `sync`; {} files)",
            r.import.secs,
            r.import.secs / durable(r),
            r.import.result["files"]
        )
    });
    row("worker peak RSS: fresh export (the first)", &|r| {
        rss(&r.fresh[0])
    });
    row(
        "worker peak RSS: fresh export `--no-sync` (the first)",
        &|r| rss(&r.no_sync[0]),
    );
    row("worker peak RSS: incremental", &|r| rss(&r.incremental));
    row("worker peak RSS: `-c`", &|r| rss(&r.checksums));
    row("worker peak RSS: `-z`", &|r| rss(&r.zip));
    row("worker peak RSS: import", &|r| rss(&r.import));
    let sizes: Vec<String> = runs
        .iter()
        .map(|r| format!("{} documents", r.docs))
        .collect();
    println!("| measure | {} |", sizes.join(" | "));
    println!("|---|{}", "---|".repeat(runs.len()));
    for (name, cells) in &table {
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!();
    for r in &runs {
        let met = |ok: bool| if ok { "met" } else { "not met" };
        println!(
            "{} documents: fresh export within 1.5× of `cp -a` (medians): with `--no-sync`, as `cp -a` not waiting for the disk: {} ({:.2}×); durable (the default): {} ({:.2}×; {:.2}× of `cp -a` + `sync`); incremental with no change ≤ 2 s: {} ({:.2} s).",
            r.docs,
            met(no_sync(r) <= 1.5 * cp(r)),
            no_sync(r) / cp(r),
            met(fresh(r) <= 1.5 * cp(r)),
            fresh(r) / cp(r),
            fresh(r) / durable(r),
            met(r.incremental.secs <= 2.0),
            r.incremental.secs
        );
    }
    Ok(())
}
