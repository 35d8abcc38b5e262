//! `paperboy-bench archive`: archive versions of scanned pages by paperboy (`paperboy archive`
//! over one worker process with its default concurrency) and by Debian's `ocrmypdf` on the
//! same files, in one run, with the same tesseract and languages. Two groups of files:
//!
//! - the fixture scans (the six files paperless-ngx 3.0.5 OCR'd, 7 pages): pages per second,
//!   word accuracy (the share of paperless's OCR words that `pdftotext` finds in the archive
//!   file: the reference is paperless's own OCR text, so 100 % means "as good as paperless",
//!   not "perfect") and archive size;
//! - scans of the bench corpus (`corpus::generate`: scanned PDFs of 1–5 JPEG pages, PNG and
//!   JPEG scans; synthetic pages of word blocks, so no accuracy): pages per second and size.
//!
//! ocrmypdf runs twice per group: as paperless runs it (one file after the other, its default
//! `--jobs` = the number of cores, pages of a file in parallel) and with one process per core
//! (`--jobs 1` each), the most this machine gets out of it. Both get `-l`, `--output-type
//! pdfa` (paperless's default), `--image-dpi` for images (the A4 estimate paperless uses) and
//! `OMP_THREAD_LIMIT=1`, as paperboy's tesseract. The load average is printed before each
//! measurement.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use paperboy_shared::job::{ConsumeArgs, Job};
use paperboy_shared::staging;
use serde_json::Value;

use crate::consume::{WorkerSpec, corpus_originals, start_worker, wait_job};

pub struct Args {
    pub redis_url: String,
    pub bin_dir: PathBuf,
    pub fixtures: PathBuf,
    /// Skip the ocrmypdf side.
    pub no_ocrmypdf: bool,
    /// Bench corpus files (scanned PDFs and image scans, half each); 0 skips that group.
    pub corpus_files: usize,
    pub seed: u64,
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

/// Found words / reference words, over all files (`outputs`: input file → archive file).
fn accuracy(reference: &HashMap<String, String>, outputs: &[(PathBuf, PathBuf)]) -> Result<f64> {
    let (mut found, mut total) = (0usize, 0usize);
    for (input, pdf) in outputs {
        let want = words(&reference[&name_of(input)]);
        let got = words(&pdftotext(pdf)?);
        found += want.intersection(&got).count();
        total += want.len();
    }
    Ok(found as f64 / total.max(1) as f64)
}

fn size(outputs: &[(PathBuf, PathBuf)]) -> u64 {
    outputs
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// One side's result on a group.
struct Measured {
    secs: f64,
    outputs: Vec<(PathBuf, PathBuf)>,
    load: String,
}

/// paperboy: the files consumed without OCR or archive (cheap), then `paperboy archive` over
/// every document timed. Returns the measurement and the pages archived.
async fn paperboy(args: &Args, files: &[PathBuf], out: &Path) -> Result<(Measured, u64)> {
    let prefix = format!("pbbench:archive:{}", ulid::Ulid::new());
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        out.join("paperboy.sqlite3").display()
    );
    let consume_env = [
        ("PAPERBOY_OCR_MODE", "off"),
        ("PAPERBOY_ARCHIVE_FILE_GENERATION", "never"),
    ];
    let archive_env = [("PAPERBOY_OCR_LANGUAGE", LANGUAGES)];
    let spec = |queues, env| WorkerSpec {
        redis_url: &args.redis_url,
        bin_dir: &args.bin_dir,
        db_url: &db_url,
        dir: out,
        prefix: &prefix,
        queues,
        env,
    };
    let mut ids = Vec::new();
    {
        let (queue, _w) = start_worker(&spec("consume,thumbnails", &consume_env)).await?;
        for f in files {
            let staged = staging::stage_into(&out.join("data").join(staging::STAGING_DIR), f)?;
            let job = Job::Consume(ConsumeArgs {
                staged: staged.relative,
                original_filename: staged.original_filename,
                ..Default::default()
            });
            let id = queue.enqueue(&job).await?.id().to_string();
            let r = wait_job(&queue, &id, async |_| Ok(())).await?;
            let result = r.result.unwrap_or_default();
            ids.push(result["document_id"].as_i64().context("document_id")?);
        }
    }
    let (queue, _w) = start_worker(&spec("archive_run,archive", &archive_env)).await?;
    let load = load();
    let started = Instant::now();
    let job = Job::Archive {
        document: None,
        overwrite: false,
    };
    let id = queue.enqueue(&job).await?.id().to_string();
    let r = wait_job(&queue, &id, async |_| Ok(())).await?;
    let secs = started.elapsed().as_secs_f64();
    let result: Value = r.result.unwrap_or_default();
    if result["archived"].as_u64() != Some(files.len() as u64) {
        bail!(
            "paperboy archived {} of {} files: {result}",
            result["archived"],
            files.len()
        );
    }
    let outputs = files
        .iter()
        .zip(&ids)
        .map(|(f, id)| (f.clone(), out.join(format!("media/archive/{id:07}.pdf"))))
        .collect();
    let pages = result["pages"].as_u64().unwrap_or(0);
    Ok((
        Measured {
            secs,
            outputs,
            load,
        },
        pages,
    ))
}

/// ocrmypdf on every file, `processes` at a time (each with `--jobs` `jobs`, or its default
/// when `None`).
fn ocrmypdf(
    files: &[PathBuf],
    out: &Path,
    processes: usize,
    jobs: Option<usize>,
) -> Result<Measured> {
    let load = load();
    let started = Instant::now();
    let mut outputs = Vec::new();
    for chunk in files.chunks(processes.max(1)) {
        let mut running = Vec::new();
        for f in chunk {
            let target = out.join(format!("{}.pdf", name_of(f)));
            let mut c = Command::new("ocrmypdf");
            c.args(["-q", "-l", LANGUAGES, "--output-type", "pdfa"]);
            if let Some(j) = jobs {
                c.args(["--jobs", &j.to_string()]);
            }
            if f.extension().is_some_and(|e| e != "pdf") {
                // The A4 estimate paperless uses for images without DPI.
                let w = image::image_dimensions(f)?.0;
                c.args([
                    "--image-dpi",
                    &((w as f64 / 8.27).round() as u32).to_string(),
                ]);
            }
            let child = c
                .arg(f)
                .arg(&target)
                .env("OMP_THREAD_LIMIT", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("ocrmypdf (apt install ocrmypdf)")?;
            running.push((f.clone(), target, child));
        }
        for (f, target, mut child) in running {
            if !child.wait()?.success() {
                bail!("ocrmypdf failed on {}", f.display());
            }
            outputs.push((f, target));
        }
    }
    Ok(Measured {
        secs: started.elapsed().as_secs_f64(),
        outputs,
        load,
    })
}

/// The table of one group.
async fn group(
    args: &Args,
    title: &str,
    files: &[PathBuf],
    reference: Option<&HashMap<String, String>>,
) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scratch = tempfile::tempdir()?;
    let ours_dir = scratch.path().join("paperboy");
    std::fs::create_dir_all(&ours_dir)?;
    let (ours, pages) = paperboy(args, files, &ours_dir).await?;
    let mut sides = vec![("paperboy".to_string(), ours)];
    if !args.no_ocrmypdf {
        for (name, processes, jobs) in [
            (
                format!("ocrmypdf, files in turn, --jobs {cores} (default)"),
                1,
                None,
            ),
            (
                format!("ocrmypdf, {cores} files at once, --jobs 1"),
                cores,
                Some(1),
            ),
        ] {
            let dir = scratch.path().join(format!("ocrmypdf-{processes}"));
            std::fs::create_dir_all(&dir)?;
            sides.push((name, ocrmypdf(files, &dir, processes, jobs)?));
        }
    }
    println!("\n{title}: {} files, {pages} pages\n", files.len());
    println!("| | pages/s | seconds | word accuracy | archive size | load before |");
    println!("|---|---|---|---|---|---|");
    for (name, m) in &sides {
        let acc = match reference {
            Some(r) => format!("{:.1} %", accuracy(r, &m.outputs)? * 100.0),
            None => "n/a (no known text)".into(),
        };
        println!(
            "| {name} | {:.2} | {:.1} | {acc} | {} kB | {} |",
            pages as f64 / m.secs,
            m.secs,
            size(&m.outputs) / 1000,
            m.load
        );
    }
    if let [(_, ours), (_, theirs), ..] = sides.as_slice() {
        println!(
            "\npaperboy / ocrmypdf (default): {:.2}× the pages per second",
            theirs.secs / ours.secs
        );
    }
    Ok(())
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
            let field = |k: &str| r["fields"][k].as_str().unwrap_or_default().to_string();
            (field("original_filename"), field("content"))
        })
        .collect();
    let files: Vec<PathBuf> = SCANS.iter().map(|s| input.join(s)).collect();
    group(&args, "Fixture scans", &files, Some(&reference)).await?;

    if args.corpus_files > 0 {
        let scratch = tempfile::tempdir()?;
        let docs = (args.corpus_files * 10).max(100);
        let originals = corpus_originals(scratch.path(), docs, args.seed).await?;
        let half = args.corpus_files.div_ceil(2);
        let scanned_pdf = |p: &PathBuf| {
            std::fs::read(p).is_ok_and(|b| b.windows(15).any(|w| w == b"/Subtype /Image"))
        };
        let pdfs = originals
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pdf") && scanned_pdf(p))
            .take(half);
        let images = originals
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
            .take(args.corpus_files - half);
        let files: Vec<PathBuf> = pdfs.chain(images).cloned().collect();
        group(&args, "Bench corpus scans", &files, None).await?;
    }
    Ok(())
}
