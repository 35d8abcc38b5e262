//! `paperboy-bench consume`: files per second through a real worker's consume pipeline, for
//! born-digital PDFs, scanned PDFs and image scans (OCR on and off), and thumbnails per second
//! of the `thumbnails` job, beside `cp` of the same files in the same run.
//!
//! The files come from the bench corpus (`corpus::generate` into a scratch archive); each group
//! is then consumed into a fresh SQLite archive by one `paperboy-worker` with its default
//! concurrency, from the first enqueue to the last job done.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use paperboy_shared::job::{ConsumeArgs, Job, JobKind};
use paperboy_shared::queue::{JobRecord, JobState, Queue};
use paperboy_shared::staging;

use crate::corpus;

pub struct Args {
    pub redis_url: String,
    pub bin_dir: PathBuf,
    /// Corpus documents to draw the files from.
    pub docs: usize,
    pub seed: u64,
    /// Files per group at most.
    pub files: usize,
}

/// One group of files to consume.
struct Group {
    name: &'static str,
    files: Vec<PathBuf>,
    ocr_mode: &'static str,
}

pub struct Worker {
    child: Child,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh archive (folders, SQLite) and a worker serving it.
pub struct Archive {
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub db_url: String,
    pub queue: Queue,
    pub worker: Worker,
}

/// A `paperboy-worker` on a migrated database: what it serves and where its data lives.
pub struct WorkerSpec<'a> {
    pub redis_url: &'a str,
    pub bin_dir: &'a Path,
    pub db_url: &'a str,
    /// Holds `data/`, `media/`, `consume/`.
    pub dir: &'a Path,
    pub prefix: &'a str,
    pub queues: &'a str,
    pub env: &'a [(&'a str, &'a str)],
}

/// Migrates the database, starts the worker and waits until it registered.
pub async fn start_worker(w: &WorkerSpec<'_>) -> Result<(Queue, Worker)> {
    let bin = w.bin_dir.join("paperboy-worker");
    let migrate = Command::new(&bin)
        .arg("migrate")
        .env("PAPERBOY_DATABASE_URL", w.db_url)
        .env("PAPERBOY_DATA_DIR", w.dir.join("data"))
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {} migrate (build it first)", bin.display()))?;
    if !migrate.success() {
        bail!("{} migrate failed", bin.display());
    }
    let child = Command::new(&bin)
        .args(["run", "--queues", w.queues])
        .env("PAPERBOY_REDIS_URL", w.redis_url)
        .env("PAPERBOY_REDIS_PREFIX", w.prefix)
        .env("PAPERBOY_DATABASE_URL", w.db_url)
        .env("PAPERBOY_DATA_DIR", w.dir.join("data"))
        .env("PAPERBOY_MEDIA_ROOT", w.dir.join("media"))
        .env("PAPERBOY_CONSUMPTION_DIR", w.dir.join("consume"))
        .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
        .env("PAPERBOY_LOG_LEVEL", "warn")
        .envs(w.env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let worker = Worker { child };
    let queue = Queue::connect(w.redis_url, w.prefix).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.workers().await?.is_empty() {
        if Instant::now() > deadline {
            bail!("the worker did not register within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((queue, worker))
}

/// Waits until job `id` ends (polling every 10 ms, `on` called after each look); its record
/// if it succeeded, an error otherwise.
pub async fn wait_job(
    queue: &Queue,
    id: &str,
    mut on: impl AsyncFnMut(&JobRecord) -> Result<()>,
) -> Result<JobRecord> {
    let deadline = Instant::now() + Duration::from_secs(7200);
    loop {
        let r = queue.get(id).await?;
        on(&r).await?;
        if r.state.is_terminal() {
            if r.state != JobState::Succeeded {
                bail!(
                    "job {id} ({}) ended {}: {:?}",
                    r.kind,
                    r.state,
                    r.errors.last()
                );
            }
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!("job {id} did not end within 2 h");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Worker {
    /// Peak resident memory of the worker process so far (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

impl Archive {
    /// A temporary folder, a SQLite archive in it and a Redis prefix `pbbench:<tag>:<ulid>`, with
    /// one worker serving `queues` (extra environment `env`).
    pub async fn start(
        redis_url: &str,
        bin_dir: &Path,
        tag: &str,
        queues: &str,
        env: &[(&str, &str)],
    ) -> Result<Archive> {
        let dir = tempfile::tempdir()?;
        let prefix = format!("pbbench:{tag}:{}", ulid::Ulid::new());
        let db_url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("paperboy.sqlite3").display()
        );
        let (queue, worker) = start_worker(&WorkerSpec {
            redis_url,
            bin_dir,
            db_url: &db_url,
            dir: dir.path(),
            prefix: &prefix,
            queues,
            env,
        })
        .await?;
        Ok(Archive {
            dir,
            prefix,
            db_url,
            queue,
            worker,
        })
    }

    /// Waits until `queue` has nothing waiting, scheduled or running and at least `done` jobs
    /// ended; returns the number of dead jobs.
    async fn drain(&self, queue: &str, done: u64) -> Result<u64> {
        drain(&self.queue, queue, done).await
    }
}

/// Waits until `name` has nothing waiting, scheduled or running and at least `done` jobs
/// ended; returns the number of dead jobs.
pub async fn drain(queue: &Queue, name: &str, done: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let s = queue.stats(name).await?;
        if s.waiting + s.scheduled + s.running == 0 && s.finished + s.dead >= done {
            return Ok(s.dead);
        }
        if Instant::now() > deadline {
            bail!("{name}: jobs still running after an hour");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The corpus's scanned PDFs hold page images and no text; its born-digital ones text and no
/// image (both name the font in their page resources, so the font says nothing).
fn classify(path: &Path) -> Option<usize> {
    let ext = path.extension()?.to_str()?;
    match ext {
        "pdf" => {
            let bytes = std::fs::read(path).ok()?;
            let has_image = bytes.windows(15).any(|w| w == b"/Subtype /Image");
            Some(if has_image { 1 } else { 0 })
        }
        "png" | "jpg" => Some(2),
        _ => None,
    }
}

/// Seconds `cp` takes to copy `files` into a fresh folder (flushed with `sync`).
fn cp_seconds(files: &[PathBuf]) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    let status = Command::new("cp")
        .args(files)
        .arg(dir.path())
        .status()
        .context("running cp")?;
    let _ = Command::new("sync").status();
    if !status.success() {
        bail!("cp failed");
    }
    Ok(start.elapsed().as_secs_f64())
}

/// A bench corpus of `docs` documents generated into `scratch`; its originals, sorted.
pub async fn corpus_originals(scratch: &Path, docs: usize, seed: u64) -> Result<Vec<PathBuf>> {
    let media = scratch.join("media");
    corpus::generate(&corpus::Args {
        docs,
        seed,
        batch: 500,
        database_url: Some(format!(
            "sqlite://{}?mode=rwc",
            scratch.join("corpus.sqlite3").display()
        )),
        media_root: Some(media.clone()),
        threads: 0,
        all_auto: false,
    })
    .await?;
    let mut originals: Vec<PathBuf> = std::fs::read_dir(media.join("originals"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    originals.sort();
    Ok(originals)
}

pub async fn run(args: Args) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let originals = corpus_originals(scratch.path(), args.docs, args.seed).await?;
    let mut by_kind: [Vec<PathBuf>; 3] = Default::default();
    for p in originals {
        if let Some(k) = classify(&p)
            && by_kind[k].len() < args.files
        {
            by_kind[k].push(p);
        }
    }
    let [born, scanned, images] = by_kind;
    let groups = [
        Group {
            name: "born-digital PDFs",
            files: born,
            ocr_mode: "auto",
        },
        Group {
            name: "scanned PDFs, OCR",
            files: scanned.clone(),
            ocr_mode: "auto",
        },
        Group {
            name: "scanned PDFs, OCR off",
            files: scanned,
            ocr_mode: "off",
        },
        Group {
            name: "PNG/JPEG scans, OCR",
            files: images.clone(),
            ocr_mode: "auto",
        },
        Group {
            name: "PNG/JPEG scans, OCR off",
            files: images,
            ocr_mode: "off",
        },
    ];

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "## Consume ({cores} cores; files from the bench corpus, seed {}; one worker, default concurrency)\n",
        args.seed
    );
    println!("| input | files | MiB | consume s | files/s | MiB/s | `cp` s | dead |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut thumbs = None;
    for g in &groups {
        if g.files.is_empty() {
            println!("| {} | 0 | – | – | – | – | – | – |", g.name);
            continue;
        }
        let bytes: u64 = g
            .files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum();
        let mib = bytes as f64 / (1u64 << 20) as f64;
        let cp = cp_seconds(&g.files)?;
        let archive = Archive::start(
            &args.redis_url,
            &args.bin_dir,
            "consume",
            "consume,thumbnails",
            &[("PAPERBOY_OCR_MODE", g.ocr_mode)],
        )
        .await?;
        let staging_root = archive.dir.path().join("data").join(staging::STAGING_DIR);
        let mut jobs = Vec::with_capacity(g.files.len());
        for f in &g.files {
            let staged = staging::stage_into(&staging_root, f)?;
            jobs.push(Job::Consume(ConsumeArgs {
                staged: staged.relative,
                original_filename: staged.original_filename,
                tags: vec![],
                source: None,
                ..Default::default()
            }));
        }
        let start = Instant::now();
        archive.queue.enqueue_many(&jobs).await?;
        let dead = archive
            .drain(JobKind::Consume.queue(), jobs.len() as u64)
            .await?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "| {} | {} | {mib:.1} | {secs:.2} | {:.1} | {:.1} | {cp:.3} | {dead} |",
            g.name,
            g.files.len(),
            g.files.len() as f64 / secs,
            mib / secs,
        );
        if thumbs.is_none() && g.name.starts_with("born-digital") {
            // Regenerate every thumbnail of this archive (fans out in batches).
            let start = Instant::now();
            archive
                .queue
                .enqueue(&Job::Thumbnails {
                    document: None,
                    batch: None,
                })
                .await?;
            let dead = archive.drain(JobKind::Thumbnails.queue(), 1).await?;
            thumbs = Some((g.files.len(), start.elapsed().as_secs_f64(), dead));
        }
        crate::queue::cleanup(&args.redis_url, &archive.prefix).await?;
    }
    if let Some((n, secs, dead)) = thumbs {
        println!(
            "\n`thumbnails` (all documents) over the {n} born-digital PDFs: {secs:.2} s, {:.1} thumbnails/s, {dead} dead jobs",
            n as f64 / secs
        );
    }
    Ok(())
}
