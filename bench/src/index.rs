//! `paperboy-bench index`: the full-text index on the bench corpus (issue 6).
//!
//! For each corpus size: the corpus is generated into a scratch SQLite archive, one real
//! `paperboy-worker` (queue `index` only, no scheduler) runs `index_reindex` (enqueue → done,
//! the worker's peak RSS, the index's size on disk). Then searches, measured as a user gets
//! them: `paperboy search` runs the `paperboy-worker search` process, which opens the index,
//! searches, builds snippets and prints, so every sample is one whole process (the worker
//! binary has no library an in-process reader could come from). `paperboy-worker --version`
//! gives the process start floor, and `paperboy search` (one more exec in front) is measured
//! too. The baseline is `grep` over the same titles and contents exported to one file, one
//! document a line (it counts every matching line; the index ranks, takes the best 25 and
//! makes their snippets). Last, update latency: a document gets a new tag, an `index_update`
//! for it is enqueued, and searches for that tag run back to back until one returns the
//! document.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use paperboy_shared::db::{self, Db, index as db_index};
use paperboy_shared::job::Job;
use paperboy_shared::queue::Queue;
use serde_json::Value;

use crate::consume::wait_job;
use crate::consume::{Worker, WorkerSpec, start_worker};
use crate::corpus;
use crate::queue::percentile;

pub struct Args {
    pub redis_url: String,
    pub bin_dir: PathBuf,
    /// Corpus sizes, one run each.
    pub docs: Vec<usize>,
    pub seed: u64,
    /// Search processes per query.
    pub samples: usize,
    /// Update latency samples.
    pub updates: usize,
}

/// The fixed query set: (kind, query, the `grep` pipeline doing the same over the text file).
const QUERIES: &[(&str, &str, Option<&str>)] = &[
    (
        "single word",
        "warranty",
        Some("grep -c -i -w warranty \"$1\""),
    ),
    (
        "two words",
        "mortgage interest",
        Some("grep -i -w mortgage \"$1\" | grep -c -i -w interest"),
    ),
    (
        "phrase",
        "\"monthly fee\"",
        Some("grep -c -i -F 'monthly fee' \"$1\""),
    ),
    ("field:value", "tag:banking", None),
    ("date range", "created:[2020-01-01 to 2020-12-31]", None),
];

/// Results shown per search (the CLI's default).
const LIMIT: &str = "25";

/// Latencies in ms, sorted.
struct Lat(Vec<f64>);

impl Lat {
    fn new(mut v: Vec<f64>) -> Lat {
        v.sort_by(|a, b| a.total_cmp(b));
        Lat(v)
    }
    fn p(&self, q: f64) -> f64 {
        percentile(&self.0, q)
    }
    fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }
    fn p50_p99(&self) -> String {
        format!("{} / {}", ms(self.p(0.5)), ms(self.p(0.99)))
    }
    fn p50_max(&self) -> String {
        format!("{} / {}", ms(self.p(0.5)), ms(self.max()))
    }
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What one corpus size measured.
struct Run {
    docs: usize,
    indexed: u64,
    corpus_secs: f64,
    text_mib: f64,
    reindex_secs: f64,
    rss_idle: Option<f64>,
    rss_peak: Option<f64>,
    index_mib: f64,
    /// Per query: latencies and the number of results returned (at most [`LIMIT`]).
    queries: Vec<(Lat, u64)>,
    all: Lat,
    cli: Lat,
    floor: Lat,
    /// Per query: `grep` latency and its count (None: no baseline).
    grep: Vec<Option<(Lat, u64)>>,
    enqueue_done: Lat,
    enqueue_visible: Lat,
    done_visible: Lat,
}

/// The search command of `bin` (`paperboy-worker search` or `paperboy search`) on this archive.
fn search_command(bin: &Path, dir: &Path, query: &str) -> Command {
    let mut c = Command::new(bin);
    c.args(["search", "--json", "--limit", LIMIT, query])
        .env("PAPERBOY_DATA_DIR", dir.join("data"))
        .env("PAPERBOY_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs `c`, returns (wall ms, stdout); fails on a non-zero exit.
fn timed(c: &mut Command) -> Result<(f64, Vec<u8>)> {
    let t = Instant::now();
    let out = c.output().with_context(|| format!("running {c:?}"))?;
    let elapsed = t.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        bail!("{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((elapsed, out.stdout))
}

/// The ids a `search --json` printed.
fn result_ids(stdout: &[u8]) -> Result<Vec<u64>> {
    let v: Value = serde_json::from_slice(stdout).context("parsing the search's JSON")?;
    Ok(v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["id"].as_u64())
        .collect())
}

/// Writes every indexed document's title and content on one line each; returns the live ids
/// and the file's size in bytes.
async fn export_text(db: &Db, path: &Path) -> Result<(Vec<i64>, u64)> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let rows = db_index::rows_after(db, after, 500).await?;
        let Some(last) = rows.last() else { break };
        after = last.document.id;
        for r in &rows {
            ids.push(r.document.id);
            let text = format!("{} {}", r.document.title, r.document.content);
            let line: Vec<&str> = text.split_whitespace().collect();
            writeln!(out, "{}", line.join(" "))?;
        }
    }
    out.flush()?;
    Ok((ids, std::fs::metadata(path)?.len()))
}

fn dir_bytes(dir: &Path) -> u64 {
    crate::sanity::files_under(dir).iter().map(|f| f.1).sum()
}

/// A tag name of letters only (one token whatever the tokenizer), unique per sample.
fn marker(mut i: usize) -> String {
    let mut s = String::from("idxbench");
    loop {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

/// One update sample: tags `doc` with a new tag, enqueues its `index_update` and searches for
/// the tag back to back until the document shows. Returns (enqueue → done, enqueue → visible,
/// done → visible) in ms; "visible" is the start of the first search that returned it, and
/// done → visible is 0 when that search started before the job reported done.
async fn update_sample(
    db: &Db,
    queue: &Queue,
    worker_bin: &Path,
    dir: &Path,
    doc: i64,
    i: usize,
) -> Result<(f64, f64, f64)> {
    let name = marker(i);
    let mut tx = db.begin().await?;
    let tag = db::tags::get_or_create_by_name(&mut tx, &name).await?;
    db::documents::add_tags(&mut tx, doc, &[tag]).await?;
    tx.commit().await?;
    let query = format!("tag:{name}");
    let enqueued = now_ms();
    let id = queue
        .enqueue(&Job::IndexUpdate { ids: vec![doc] })
        .await?
        .id()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let visible = loop {
        let started = now_ms();
        let (_, out) = timed(&mut search_command(worker_bin, dir, &query))?;
        if result_ids(&out)?.contains(&(doc as u64)) {
            break started;
        }
        if Instant::now() > deadline {
            bail!("document {doc} not found by {query:?} 60 s after its index_update");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let done = wait_job(queue, &id, async |_| Ok(()))
        .await?
        .finished_at_ms
        .context("a finished job without finished_at")?;
    Ok((
        (done - enqueued) as f64,
        (visible - enqueued) as f64,
        (visible - done).max(0) as f64,
    ))
}

async fn run_one(args: &Args, docs: usize) -> Result<Run> {
    eprintln!("index bench: generating a corpus of {docs} documents");
    let (scratch, db_url, summary) = corpus::scratch(docs, args.seed, false).await?;
    let dir = scratch.path();
    let db = Db::connect(&db_url).await?;
    let text_file = dir.join("text.txt");
    let (ids, text_bytes) = export_text(&db, &text_file).await?;
    if ids.is_empty() {
        bail!("the corpus has no live documents");
    }

    let prefix = format!("pbbench:index:{}", ulid::Ulid::new());
    let (queue, worker): (Queue, Worker) = start_worker(&WorkerSpec {
        redis_url: &args.redis_url,
        bin_dir: &args.bin_dir,
        db_url: &db_url,
        dir,
        prefix: &prefix,
        queues: "index",
        env: &[("PAPERBOY_SCHEDULER", "false")],
    })
    .await?;
    let result = measure(args, &db, &queue, &worker, dir, &text_file, &ids).await;
    crate::queue::cleanup(&args.redis_url, &prefix).await?;
    let mut run = result?;
    run.docs = summary.documents;
    run.corpus_secs = summary.seconds;
    run.text_mib = text_bytes as f64 / (1u64 << 20) as f64;
    Ok(run)
}

async fn measure(
    args: &Args,
    db: &Db,
    queue: &Queue,
    worker: &Worker,
    dir: &Path,
    text_file: &Path,
    ids: &[i64],
) -> Result<Run> {
    let worker_bin = args.bin_dir.join("paperboy-worker");
    let cli_bin = args.bin_dir.join("paperboy");

    eprintln!("index bench: reindex of {} documents", ids.len());
    let rss_idle = worker.peak_rss_mib();
    let start = Instant::now();
    let id = queue
        .enqueue(&Job::IndexReindex { if_needed: false })
        .await?
        .id()
        .to_string();
    let reindexed = wait_job(queue, &id, async |_| Ok(()))
        .await?
        .result
        .unwrap_or_default();
    let reindex_secs = start.elapsed().as_secs_f64();
    let rss_peak = worker.peak_rss_mib();
    let indexed = reindexed["documents"].as_u64().unwrap_or(0);
    let index_mib = dir_bytes(&dir.join("data").join("index")) as f64 / (1u64 << 20) as f64;

    eprintln!(
        "index bench: {} searches per query, process by process",
        args.samples
    );
    let mut per_query: Vec<Vec<f64>> = vec![Vec::new(); QUERIES.len()];
    let mut counts = vec![0u64; QUERIES.len()];
    // One warm-up each (page cache), then the queries in turn.
    for (i, (kind, q, _)) in QUERIES.iter().enumerate() {
        let (_, out) = timed(&mut search_command(&worker_bin, dir, q))?;
        counts[i] = result_ids(&out)?.len() as u64;
        if counts[i] == 0 {
            bail!("the {kind} query {q:?} finds nothing on this corpus");
        }
    }
    for _ in 0..args.samples {
        for (i, (_, q, _)) in QUERIES.iter().enumerate() {
            per_query[i].push(timed(&mut search_command(&worker_bin, dir, q))?.0);
        }
    }
    let all = Lat::new(per_query.concat());
    let queries: Vec<(Lat, u64)> = per_query.into_iter().map(Lat::new).zip(counts).collect();

    let cli_samples = (args.samples / 4).max(1);
    let mut cli = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..cli_samples {
        for (_, q, _) in QUERIES {
            cli.push(timed(&mut search_command(&cli_bin, dir, q))?.0);
            floor.push(
                timed(
                    Command::new(&worker_bin)
                        .arg("--version")
                        .stdout(Stdio::null()),
                )?
                .0,
            );
        }
    }

    eprintln!("index bench: grep baseline");
    let grep_samples = args.samples.clamp(1, 20);
    let mut grep = Vec::new();
    for (_, _, pipeline) in QUERIES {
        let Some(p) = pipeline else {
            grep.push(None);
            continue;
        };
        let mut sh = Command::new("sh");
        sh.args(["-c", p, "sh"]).arg(text_file);
        let (_, out) = timed(&mut sh)?;
        let count: u64 = String::from_utf8_lossy(&out).trim().parse().unwrap_or(0);
        let mut v = Vec::new();
        for _ in 0..grep_samples {
            v.push(timed(&mut sh)?.0);
        }
        grep.push(Some((Lat::new(v), count)));
    }

    eprintln!("index bench: {} update samples", args.updates);
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.updates {
        let doc = ids[(i * 7919 + 13) % ids.len()];
        let (x, y, z) = update_sample(db, queue, &worker_bin, dir, doc, i).await?;
        a.push(x);
        b.push(y);
        c.push(z);
    }

    Ok(Run {
        docs: 0,
        indexed,
        corpus_secs: 0.0,
        text_mib: 0.0,
        reindex_secs,
        rss_idle,
        rss_peak,
        index_mib,
        queries,
        all,
        cli: Lat::new(cli),
        floor: Lat::new(floor),
        grep,
        enqueue_done: Lat::new(a),
        enqueue_visible: Lat::new(b),
        done_visible: Lat::new(c),
    })
}

fn mib(v: Option<f64>) -> String {
    v.map_or("?".into(), |m| format!("{m:.0} MiB"))
}

pub async fn run(args: Args) -> Result<()> {
    let mut runs = Vec::new();
    for &docs in &args.docs {
        runs.push(run_one(&args, docs).await?);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "## Full-text index ({cores} cores; bench corpus seed {}, SQLite; one worker on queue `index`)\n",
        args.seed
    );
    print!("| measure |");
    for r in &runs {
        print!(" {} documents |", r.docs);
    }
    print!("\n|---|");
    for _ in &runs {
        print!("---|");
    }
    println!();
    let row = |name: &str, f: &dyn Fn(&Run) -> String| {
        print!("| {name} |");
        for r in &runs {
            print!(" {} |", f(r));
        }
        println!();
    };
    row("corpus generation", &|r| format!("{:.1} s", r.corpus_secs));
    row("title + content text (the grep file)", &|r| {
        format!("{:.0} MiB", r.text_mib)
    });
    row("reindex, enqueue → done", &|r| {
        format!(
            "{:.1} s ({} documents, {:.0}/s)",
            r.reindex_secs,
            r.indexed,
            r.indexed as f64 / r.reindex_secs
        )
    });
    row("worker peak RSS (VmHWM) after the reindex", &|r| {
        format!("{} (idle {})", mib(r.rss_peak), mib(r.rss_idle))
    });
    row("index on disk", &|r| format!("{:.0} MiB", r.index_mib));
    for (i, (kind, q, _)) in QUERIES.iter().enumerate() {
        row(
            &format!("search p50 / p99, {kind} `{}`", q.replace('|', "\\|")),
            &|r| {
                let (l, n) = &r.queries[i];
                format!("{} ({n} results)", l.p50_p99())
            },
        );
    }
    row(
        &format!("search p50 / p99, all queries ({} samples)", {
            runs.first().map_or(0, |r| r.all.0.len())
        }),
        &|r| r.all.p50_p99(),
    );
    row(
        "`paperboy search` (CLI, execs the worker), all queries",
        &|r| r.cli.p50_p99(),
    );
    row("process start floor `paperboy-worker --version`", &|r| {
        r.floor.p50_p99()
    });
    for (i, (kind, _, pipeline)) in QUERIES.iter().enumerate() {
        if pipeline.is_none() {
            continue;
        }
        row(
            &format!("baseline `grep`, {kind}: p50 / p99"),
            &|r| match &r.grep[i] {
                Some((l, n)) => format!("{} ({n} lines)", l.p50_p99()),
                None => "–".into(),
            },
        );
    }
    row(
        &format!(
            "update: enqueue → job done, p50 / max ({} samples)",
            args.updates
        ),
        &|r| r.enqueue_done.p50_max(),
    );
    row("update: enqueue → visible in a search, p50 / max", &|r| {
        r.enqueue_visible.p50_max()
    });
    row(
        "update: job done → visible in a search, p50 / max",
        &|r| r.done_visible.p50_max(),
    );
    println!(
        "\nSearch rows: one `paperboy-worker search --json --limit {LIMIT} QUERY` process per sample \
         (open the index, search, 25 snippets, print), the queries in turn after one warm-up each. \
         Visible: the start of the first search that returned the document (searches back to back, \
         10 ms apart); 0 when it started before the job reported done."
    );
    println!("\nTargets (issue 6):");
    for r in &runs {
        let p99 = r.all.p(0.99);
        let worst = r.queries.iter().map(|(l, _)| l.p(0.99)).fold(0.0, f64::max);
        let vis = r.done_visible.max();
        println!(
            "- {} documents: search p99 ≤ 50 ms: {} (all queries {}, worst query {}); update visible ≤ 2 s after its job: {} (max {}; enqueue → visible max {})",
            r.docs,
            if p99 <= 50.0 && worst <= 50.0 {
                "met"
            } else {
                "not met"
            },
            ms(p99),
            ms(worst),
            if vis <= 2000.0 { "met" } else { "not met" },
            ms(vis),
            ms(r.enqueue_visible.max()),
        );
    }
    Ok(())
}
