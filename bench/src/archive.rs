//! `paperboy-bench archive`: archive versions of the fixture scans (the six files paperless-ngx
//! 3.0.5 OCR'd, 7 pages), by paperboy (`paperboy archive` over one worker process) and by
//! Debian's `ocrmypdf` (same tesseract, same languages, `--output-type pdfa`), one file after
//! the other. Prints pages per second, word accuracy (share of paperless's OCR words that
//! `pdftotext` finds in the archive file: the reference is paperless's own OCR text, so 100 %
//! means "as good as paperless", not "perfect") and archive size.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use paperboy_shared::job::{ConsumeArgs, Job};
use paperboy_shared::queue::{JobState, Queue};
use paperboy_shared::staging;
use serde_json::Value;

pub struct Args {
    pub redis_url: String,
    pub bin_dir: PathBuf,
    pub fixtures: PathBuf,
    /// Skip the ocrmypdf side.
    pub no_ocrmypdf: bool,
}

const SCANS: &[&str] = &[
    "scan_bank_statement_2024-05.png",
    "scan_electricity_bill_2024-04.pdf",
    "scan_insurance_renewal.jpg",
    "receipt_grocery.jpg",
    "scan_phone_bill.pdf",
    "Archive/old_photo_caption.png",
];
const LANGUAGES: &str = "eng+deu";

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(
    args: &Args,
    dir: &Path,
    prefix: &str,
    queues: &str,
    env: &[(&str, &str)],
) -> Result<Worker> {
    let bin = args.bin_dir.join("paperboy-worker");
    let child = Command::new(&bin)
        .args(["run", "--queues", queues])
        .env("PAPERBOY_REDIS_URL", &args.redis_url)
        .env("PAPERBOY_REDIS_PREFIX", prefix)
        .env("PAPERBOY_DATABASE_URL", db_url(dir))
        .env("PAPERBOY_DATA_DIR", dir.join("data"))
        .env("PAPERBOY_MEDIA_ROOT", dir.join("media"))
        .env("PAPERBOY_CONSUMPTION_DIR", dir.join("consume"))
        .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
        .env("PAPERBOY_LOG_LEVEL", "warn")
        .env("PAPERBOY_OCR_LANGUAGE", LANGUAGES)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} (build it first)", bin.display()))?;
    Ok(Worker(child))
}

fn db_url(dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.join("paperboy.sqlite3").display()
    )
}

async fn wait(queue: &Queue, id: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let r = queue.get(id).await?;
        if r.state == JobState::Succeeded {
            return Ok(r.result.unwrap_or_default());
        }
        if r.state.is_terminal() {
            bail!("job {id} ended {}: {:?}", r.state, r.errors.last());
        }
        if Instant::now() > deadline {
            bail!("job {id} still running after an hour");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn words(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

fn pdftotext(path: &Path) -> Result<String> {
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(path)
        .arg("-")
        .output()
        .context("pdftotext (apt install poppler-utils)")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Found words / reference words, over all files.
fn accuracy(reference: &HashMap<String, String>, outputs: &[(String, PathBuf)]) -> Result<f64> {
    let (mut found, mut total) = (0usize, 0usize);
    for (name, pdf) in outputs {
        let want = words(&reference[name]);
        let got = words(&pdftotext(pdf)?);
        found += want.intersection(&got).count();
        total += want.len();
    }
    Ok(found as f64 / total.max(1) as f64)
}

fn size(outputs: &[(String, PathBuf)]) -> u64 {
    outputs
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

pub async fn run(args: Args) -> Result<()> {
    let input = args.fixtures.join("consume-input");
    let manifest: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(args.fixtures.join("export-plain/manifest.json"))
            .with_context(|| format!("the fixtures in {}", args.fixtures.display()))?,
    )?;
    let reference: HashMap<String, String> = manifest
        .iter()
        .filter(|r| r["model"] == "documents.document")
        .map(|r| {
            (
                r["fields"]["original_filename"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["fields"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let files: Vec<PathBuf> = SCANS.iter().map(|s| input.join(s)).collect();
    let name_of = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();

    // paperboy: consume without OCR or archive (cheap), then time `paperboy archive`.
    let dir = tempfile::tempdir()?;
    let prefix = format!("pbbench:archive:{}", ulid::Ulid::new());
    let bin = args.bin_dir.join("paperboy-worker");
    let ok = Command::new(&bin)
        .arg("migrate")
        .env("PAPERBOY_DATABASE_URL", db_url(dir.path()))
        .env("PAPERBOY_DATA_DIR", dir.path().join("data"))
        .stdout(Stdio::null())
        .status()?;
    if !ok.success() {
        bail!("{} migrate failed", bin.display());
    }
    let queue = Queue::connect(&args.redis_url, &prefix).await?;
    let mut ids = HashMap::new();
    {
        let _w = worker(
            &args,
            dir.path(),
            &prefix,
            "consume,thumbnails",
            &[
                ("PAPERBOY_OCR_MODE", "off"),
                ("PAPERBOY_ARCHIVE_FILE_GENERATION", "never"),
            ],
        )?;
        for f in &files {
            let staged =
                staging::stage_into(&dir.path().join("data").join(staging::STAGING_DIR), f)?;
            let job = Job::Consume(ConsumeArgs {
                staged: staged.relative,
                original_filename: staged.original_filename,
                tags: vec![],
                source: None,
                ..Default::default()
            });
            let id = queue.enqueue(&job).await?.id().to_string();
            let r = wait(&queue, &id).await?;
            ids.insert(
                name_of(f),
                r["document_id"].as_i64().context("document_id")?,
            );
        }
    }
    let _w = worker(&args, dir.path(), &prefix, "archive_run,archive", &[])?;
    while queue.workers().await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let id = queue
        .enqueue(&Job::Archive {
            document: None,
            overwrite: false,
        })
        .await?
        .id()
        .to_string();
    let result = wait(&queue, &id).await?;
    let ours_secs = started.elapsed().as_secs_f64();
    let pages = result["pages"].as_u64().unwrap_or(0);
    if result["archived"].as_u64() != Some(files.len() as u64) {
        bail!(
            "paperboy archived {} of {} files: {result}",
            result["archived"],
            files.len()
        );
    }
    let ours: Vec<(String, PathBuf)> = ids
        .iter()
        .map(|(n, id)| {
            (
                n.clone(),
                dir.path().join(format!("media/archive/{id:07}.pdf")),
            )
        })
        .collect();
    let ours_acc = accuracy(&reference, &ours)?;
    let ours_size = size(&ours);

    println!("| measure | paperboy | ocrmypdf |");
    println!("|---|---|---|");
    let mut theirs_row = (
        "not run".to_string(),
        "not run".to_string(),
        "not run".to_string(),
    );
    if !args.no_ocrmypdf {
        let out_dir = tempfile::tempdir()?;
        let started = Instant::now();
        let mut theirs = Vec::new();
        for f in &files {
            let out = out_dir.path().join(format!("{}.pdf", name_of(f)));
            let mut c = Command::new("ocrmypdf");
            c.args(["-q", "-l", LANGUAGES, "--output-type", "pdfa"]);
            if f.extension().is_some_and(|e| e != "pdf") {
                // The A4 estimate paperless uses for images without DPI.
                let w = image::image_dimensions(f)?.0;
                c.args([
                    "--image-dpi",
                    &((w as f64 / 8.27).round() as u32).to_string(),
                ]);
            }
            let st = c
                .arg(f)
                .arg(&out)
                .env("OMP_THREAD_LIMIT", "1")
                .stdout(Stdio::null())
                .status()
                .context("ocrmypdf (apt install ocrmypdf)")?;
            if !st.success() {
                bail!("ocrmypdf failed on {}", f.display());
            }
            theirs.push((name_of(f), out));
        }
        let secs = started.elapsed().as_secs_f64();
        theirs_row = (
            format!("{:.2} ({:.1} s)", pages as f64 / secs, secs),
            format!("{:.1} %", accuracy(&reference, &theirs)? * 100.0),
            format!("{} kB", size(&theirs) / 1000),
        );
    }
    println!(
        "| pages/s ({pages} pages, {} files) | {:.2} ({ours_secs:.1} s) | {} |",
        files.len(),
        pages as f64 / ours_secs,
        theirs_row.0
    );
    println!(
        "| word accuracy (paperless's OCR words found by pdftotext) | {:.1} % | {} |",
        ours_acc * 100.0,
        theirs_row.1
    );
    println!(
        "| archive size, all files | {} kB | {} |",
        ours_size / 1000,
        theirs_row.2
    );
    Ok(())
}
