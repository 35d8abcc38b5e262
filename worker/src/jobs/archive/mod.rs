//! Archive versions: a searchable PDF/A-2b beside each original (paperless-ngx's
//! `document_archiver`, `../shared/specs/mail-archive-consume.md` §2).
//!
//! Whether a document gets one (§2.3, [`should_produce`]): text files never; `always` /
//! `never` as said; `auto`: images yes, PDFs unless born-digital. How ([`build`]):
//!
//! | input | OCR (the mode table of [`super::ocr::needs_ocr`]) | archive file |
//! |---|---|---|
//! | image | yes (unless `off`) | the image as one page + the invisible OCR words ([`pdf::write`]): a grey/RGB JPEG or a PNG without transparency byte for byte ([`source`]), other images decoded and stored as JPEG |
//! | PDF that needs OCR (`auto` without text layer, `force`, `redo`) | yes: pages in parallel, the first `PAPERBOY_OCR_PAGES` OCR'd | a page that is one scanned image keeps that image (OCR'd at its own resolution, [`source::pdf_page`]); any other page rendered (hayro, `PAPERBOY_OCR_DPI`) and stored as JPEG; + the words |
//! | PDF, no OCR (born-digital under `auto` with `always`; any PDF under `off`) | no | the original's pages kept, marked PDF/A-2b ([`pdf::stamp_pdfa`]) |
//!
//! Encrypted and digitally signed PDFs and GnuPG-era originals get no archive: the run notes
//! why in `DATA_DIR/archive-notes/<id>.json` (no database column needed) and later runs skip
//! them without `--overwrite` (upstream re-tries them on every run). So are documents that need
//! none under the current settings (upstream re-parses born-digital PDFs on every run); such a
//! note is void once `PAPERBOY_OCR_MODE` or `PAPERBOY_ARCHIVE_FILE_GENERATION` change.
//!
//! Writing ([`run_document`]): the new file is written under a name no row uses (temp file,
//! fsync, hard link: never replaces), the row is pointed at it (name, SHA-256, content from OCR)
//! in one transaction guarded by the archive name it had, and only after the commit the old
//! archive file is removed (upstream leaks them). A failure before the commit removes the new
//! file.
//!
//! Jobs: `Job::Archive` (queue `archive_run`) pages the documents to look at and fans out one
//! `Job::ArchiveDocument` each (queue `archive`, CPU-heavy: every worker serving it
//! takes its share), waits for them in order and sums up; cancelling it cancels the rest; a
//! re-run skips what is done. The consume pipeline's `archive` step uses [`build`] on the
//! staged file and its `store` step writes the file with the document.

pub mod pdf;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use paperboy_shared::config::{ArchiveGeneration, Config, names};
use paperboy_shared::db::{Document, documents};
use paperboy_shared::job::Job;
use paperboy_shared::media::{self, Folder, Media};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;

use super::consume::detect::{self, FileType};
use super::consume::text;
use super::ocr::{self, OcrEngine, OcrError, OcrPage};
use super::{JobContext, JobError, render};

/// Documents per page of ids read by the run.
pub const PAGE: i64 = 500;
/// JPEG quality of rendered and re-encoded page images.
pub const JPEG_QUALITY: u8 = 85;
/// Folder of the notes, in DATA_DIR.
pub const NOTES_DIR: &str = "archive-notes";

/// §2.3: whether a file of `kind` gets an archive version.
pub fn should_produce(generation: ArchiveGeneration, kind: FileType, born_digital: bool) -> bool {
    match (generation, kind) {
        (_, FileType::Text) => false,
        (ArchiveGeneration::Always, _) => true,
        (ArchiveGeneration::Never, _) => false,
        (ArchiveGeneration::Auto, FileType::Pdf) => !born_digital,
        (ArchiveGeneration::Auto, _) => true,
    }
}

/// Why a PDF must not be rewritten: encrypted, or digitally signed (a new file would break
/// the signature). None for an ordinary PDF (or one lopdf cannot read: the build says why).
pub fn protected(bytes: &[u8]) -> Option<String> {
    let doc = match lopdf::Document::load_mem(bytes) {
        Ok(d) => d,
        Err(lopdf::Error::Decryption(_)) => return Some("the PDF is encrypted".into()),
        Err(_) => {
            // lopdf may refuse an encrypted file it cannot decrypt with the empty password.
            let tail = &bytes[bytes.len().saturating_sub(4096)..];
            return memchr_find(tail, b"/Encrypt").then(|| "the PDF is encrypted".into());
        }
    };
    // lopdf decrypts a file with the empty user password on load: `was_encrypted` tells.
    if doc.is_encrypted() || doc.was_encrypted() || doc.trailer.get(b"Encrypt").is_ok() {
        return Some("the PDF is encrypted".into());
    }
    let signed = (|| {
        let catalog = doc.catalog().ok()?;
        let form = match catalog.get(b"AcroForm").ok()? {
            lopdf::Object::Reference(id) => doc.get_dictionary(*id).ok()?,
            o => o.as_dict().ok()?,
        };
        let flags = form.get(b"SigFlags").ok()?.as_i64().ok()?;
        Some(flags & 1 == 1)
    })()
    .unwrap_or(false);
    signed
        .then(|| "the PDF is digitally signed (a rewritten file would break the signature)".into())
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What [`build`] made.
#[derive(Debug, Default)]
pub struct Built {
    pub pdf: Vec<u8>,
    /// The OCR text, when OCR ran and found some (else the content stays as it is).
    pub text: Option<String>,
    pub ocr_ran: bool,
    pub pages: usize,
    /// Pages OCR could not read; the archive has them without text.
    pub problems: Vec<String>,
}

/// What became of a document.
#[derive(Debug)]
pub enum Outcome {
    Built(Built),
    /// No archive under the settings (`reason` says why).
    NotNeeded(String),
    /// Must not or cannot get one (encrypted, signed).
    Refused(String),
}

/// Why building failed for this document.
fn bad(msg: impl Into<String>) -> JobError {
    JobError::Permanent(msg.into())
}

fn ocr_error(e: OcrError) -> JobError {
    JobError::Permanent(e.to_string())
}

/// Builds the archive version of `bytes` (of type `kind`; `text_layer` and `tagged` as text
/// extraction found them) as the settings say.
pub async fn build(
    config: &Config,
    kind: FileType,
    bytes: Arc<Vec<u8>>,
    text_layer: &str,
    tagged: bool,
    meta: pdf::Meta,
) -> Result<Outcome, JobError> {
    let born_digital = kind == FileType::Pdf && ocr::born_digital(text_layer, tagged);
    if !should_produce(config.archive_file_generation, kind, born_digital) {
        return Ok(Outcome::NotNeeded(format!(
            "no archive version: {} with {}={} and {}={}",
            match kind {
                FileType::Text => "a text file",
                FileType::Pdf if born_digital => "a born-digital PDF",
                FileType::Pdf => "a PDF",
                _ => "an image",
            },
            names::OCR_MODE,
            mode_name(config),
            names::ARCHIVE_FILE_GENERATION,
            config.archive_file_generation.name()
        )));
    }
    if kind == FileType::Pdf {
        let b = bytes.clone();
        if let Some(why) = blocking("reading the PDF", move || protected(&b)).await? {
            return Ok(Outcome::Refused(why));
        }
        let b = bytes.clone();
        let pages = blocking("counting pages", move || text::pdf_page_count(&b))
            .await?
            .map_err(bad)?;
        let max = config.archive_max_pages;
        if max > 0 && pages > i64::from(max) {
            return Err(bad(format!(
                "the PDF has {pages} pages, more than {} allows ({max})",
                names::ARCHIVE_MAX_PAGES
            )));
        }
    }
    let ocr = ocr::needs_ocr(config.ocr_mode, kind, text_layer, tagged);
    let built = match kind {
        FileType::Pdf if !ocr => {
            let b = bytes.clone();
            let pdf = blocking("marking the PDF as PDF/A", move || {
                pdf::stamp_pdfa(&b, &meta)
            })
            .await?
            .map_err(bad)?;
            Built {
                pdf,
                pages: 0,
                ..Built::default()
            }
        }
        FileType::Pdf => rasterized_pdf(config, bytes, meta).await?,
        _ => image_page(config, kind, bytes, ocr, meta).await?,
    };
    Ok(Outcome::Built(built))
}

fn mode_name(config: &Config) -> &'static str {
    use paperboy_shared::config::OcrMode::*;
    match config.ocr_mode {
        Auto => "auto",
        Force => "force",
        Redo => "redo",
        Off => "off",
    }
}

async fn blocking<T, F>(what: &str, f: F) -> Result<T, JobError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Permanent(format!("{what} crashed: {e}")))
}

/// A decoded or rendered page image as JPEG: one component when `gray`.
fn encode_jpeg(image: &RgbImage, gray: bool) -> Result<pdf::Image, String> {
    let (w, h) = image.dimensions();
    let mut data = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, JPEG_QUALITY);
    let r = if gray {
        let luma: Vec<u8> = image.pixels().map(|p| p[0]).collect();
        enc.encode(&luma, w, h, image::ExtendedColorType::L8)
    } else {
        enc.encode(image.as_raw(), w, h, image::ExtendedColorType::Rgb8)
    };
    r.map_err(|e| format!("cannot encode the page image: {e}"))?;
    Ok(pdf::Image {
        data,
        width: w,
        height: h,
        bits: 8,
        color: if gray {
            pdf::Color::Gray
        } else {
            pdf::Color::Rgb
        },
        encoding: pdf::Encoding::Jpeg,
    })
}

/// A page ready for OCR: the image that goes into the archive and, when the page is OCR'd,
/// the file the engine reads (the same pixels).
struct Prepared {
    image: pdf::Image,
    ocr_input: Option<PathBuf>,
}

/// A decoded or rendered page: JPEG for the archive, PNM for the engine (no compression to
/// wait for; the file lives for one run).
fn prepare_pixels(image: &RgbImage, dir: &Path, name: &str, ocr: bool) -> Result<Prepared, String> {
    let gray = source::is_gray(image);
    let ocr_input = if ocr {
        let path = dir.join(format!("{name}.pnm"));
        source::write_pnm(image, gray, &path)?;
        Some(path)
    } else {
        None
    };
    Ok(Prepared {
        image: encode_jpeg(image, gray)?,
        ocr_input,
    })
}

/// An original's image kept as it is, and (when OCR'd) its bytes as a file for the engine.
fn prepare_kept(image: pdf::Image, dir: &Path, name: &str, ocr: bool) -> Result<Prepared, String> {
    let ocr_input = if ocr {
        Some(source::ocr_input(&image, dir, name)?)
    } else {
        None
    };
    Ok(Prepared { image, ocr_input })
}

/// The words of a prepared page (page `number`, 1-based); a failure is noted in `problems`
/// and the page goes into the archive without text. The engine's input file is removed.
async fn read_page(
    engine: &dyn OcrEngine,
    prepared: &Prepared,
    dpi: u32,
    number: usize,
    problems: &mut Vec<String>,
) -> Option<OcrPage> {
    let path = prepared.ocr_input.as_ref()?;
    let read = engine.page(path, Some(dpi.max(1))).await;
    let _ = std::fs::remove_file(path);
    match read {
        Ok(p) => Some(p),
        Err(e) => {
            problems.push(format!("page {number}: {e}"));
            None
        }
    }
}

/// An image file as a one-page archive. A PNG or JPEG the PDF can carry as is goes in
/// unchanged and is read by the engine as it is; other images are decoded (first frame,
/// EXIF rotation applied, alpha flattened on white) and stored as JPEG.
async fn image_page(
    config: &Config,
    kind: FileType,
    bytes: Arc<Vec<u8>>,
    ocr: bool,
    meta: pdf::Meta,
) -> Result<Built, JobError> {
    let max = config.ocr_max_image_pixels;
    let dir = tempfile::tempdir().map_err(|e| JobError::Transient(format!("temp folder: {e}")))?;
    let (prepared, own_dpi) = {
        let (b, dir) = (bytes.clone(), dir.path().to_path_buf());
        blocking("decoding the image", move || {
            let kept = match kind {
                FileType::Jpeg => source::jpeg(&b),
                FileType::Png => source::png(&b),
                _ => None,
            };
            match kept {
                Some((image, dpi)) => {
                    render::within_pixel_limit(kind, image.width, image.height, max)?;
                    Ok((prepare_kept(image, &dir, "page", ocr)?, dpi))
                }
                None => {
                    let image = render::decode_image_limited(kind, &b, max)?;
                    Ok::<_, String>((prepare_pixels(&image, &dir, "page", ocr)?, None))
                }
            }
        })
        .await?
        .map_err(bad)?
    };
    let (w, h) = (prepared.image.width, prepared.image.height);
    // paperless: the image's own DPI, else the configured one, else the width taken as an
    // A4 page (8.27 in).
    let dpi = own_dpi
        .or(config.ocr_image_dpi.map(|d| d as f32))
        .unwrap_or_else(|| (w as f32 / 8.27).max(1.0));
    let mut built = Built {
        pages: 1,
        ..Built::default()
    };
    let mut words = None;
    if ocr {
        let engine = ocr::engine(config);
        engine.check().await.map_err(ocr_error)?;
        built.ocr_ran = true;
        words = read_page(
            engine.as_ref(),
            &prepared,
            dpi.round() as u32,
            1,
            &mut built.problems,
        )
        .await;
    }
    built.text = words
        .as_ref()
        .map(|p| text::normalize(&p.text()))
        .filter(|t| !t.trim().is_empty());
    let page = pdf::Page {
        image: prepared.image,
        width_pt: w as f32 * 72.0 / dpi,
        height_pt: h as f32 * 72.0 / dpi,
        ocr: words,
    };
    built.pdf = blocking("writing the archive PDF", move || {
        pdf::write(&[page], &meta)
    })
    .await?;
    Ok(built)
}

/// One page of a PDF on its way to the archive.
enum Sheet {
    /// The page's one image, kept as it is.
    Kept(pdf::Image),
    /// The page rendered.
    Rendered(RgbImage),
}

/// A PDF page by page as an archive, the pages OCR'd in parallel (as many at once as this
/// process has cores; [`ocr::slots`] bounds tesseract across all jobs). A page that is one
/// scanned image keeps that image and is OCR'd at its resolution; any other page is rendered
/// (hayro, `PAPERBOY_OCR_DPI`) and stored as JPEG. Pages past `PAPERBOY_OCR_PAGES` are not
/// OCR'd.
async fn rasterized_pdf(
    config: &Config,
    bytes: Arc<Vec<u8>>,
    meta: pdf::Meta,
) -> Result<Built, JobError> {
    use futures::StreamExt;
    let engine = ocr::engine(config);
    engine.check().await.map_err(ocr_error)?;
    tracing::debug!(engine = engine.name(), "rasterizing and reading a PDF");
    let dir = tempfile::tempdir().map_err(|e| JobError::Transient(format!("temp folder: {e}")))?;
    let (dpi, max_pixels) = (config.ocr_dpi, config.ocr_max_image_pixels);
    let ocr_limit = config.ocr_pages as usize;
    let parallel = ocr::parallelism();
    // Renderer (blocking, one page ahead) → pages prepared and OCR'd `parallel` at a time,
    // in order. At most `parallel + 2` pages' pixels are held at once.
    let (tx, rx) = tokio::sync::mpsc::channel::<(usize, Sheet, (f32, f32))>(1);
    let renderer = tokio::task::spawn_blocking(move || {
        render::for_each_page(bytes.to_vec(), 0, |i, _n, page| {
            let sheet = match source::pdf_page(page, max_pixels) {
                Some(image) => (Sheet::Kept(image), render::page_size(page, i + 1)?),
                None => {
                    let (image, size) = render::render_page(page, i + 1, dpi, max_pixels)?;
                    (Sheet::Rendered(image), size)
                }
            };
            Ok(tx.blocking_send((i, sheet.0, sheet.1)).is_ok())
        })
    });
    let sheets = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|sheet| (sheet, rx))
    });
    let engine = engine.as_ref();
    let dir_path = dir.path().to_path_buf();
    let pages: Vec<Result<(pdf::Page, Vec<String>), JobError>> = sheets
        .map(|(i, sheet, (pw, ph))| {
            let dir = dir_path.clone();
            async move {
                let want_ocr = ocr_limit == 0 || i < ocr_limit;
                let name = format!("page-{:05}", i + 1);
                let prepared = blocking("preparing a page", move || match sheet {
                    Sheet::Kept(image) => prepare_kept(image, &dir, &name, want_ocr),
                    Sheet::Rendered(image) => prepare_pixels(&image, &dir, &name, want_ocr),
                })
                .await?
                .map_err(|e| bad(format!("page {}: {e}", i + 1)))?;
                let image_dpi = (prepared.image.width as f32 * 72.0 / pw).round() as u32;
                let mut problems = Vec::new();
                let words = read_page(engine, &prepared, image_dpi, i + 1, &mut problems).await;
                let page = pdf::Page {
                    image: prepared.image,
                    width_pt: pw,
                    height_pt: ph,
                    ocr: words,
                };
                Ok((page, problems))
            }
        })
        .buffered(parallel)
        .collect()
        .await;
    match renderer.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(bad(e)),
        Err(e) => return Err(bad(format!("the renderer crashed: {e}"))),
    }
    let mut built = Built {
        ocr_ran: true,
        ..Built::default()
    };
    let mut texts = Vec::new();
    let mut out = Vec::with_capacity(pages.len());
    for page in pages {
        let (page, problems) = page?;
        built.problems.extend(problems);
        if let Some(w) = &page.ocr {
            texts.push(w.text());
        }
        out.push(page);
    }
    if out.is_empty() {
        return Err(bad("the PDF has no pages"));
    }
    built.pages = out.len();
    let text = text::normalize(&texts.join("\n"));
    built.text = Some(text).filter(|t| !t.trim().is_empty());
    built.pdf = blocking("writing the archive PDF", move || pdf::write(&out, &meta)).await?;
    Ok(built)
}

// ---- where archive files go ------------------------------------------------------------------

/// The archive name of a document whose original is `original` (`2024/invoice.jpg` →
/// `2024/invoice.pdf`, the default `0000042.jpg` → `0000042.pdf`), the `n`th candidate
/// (`_01`, `_02`, … as paperless).
pub fn archive_name(original: &str, n: usize) -> String {
    let p = Path::new(original);
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".into());
    let name = if n == 0 {
        format!("{stem}.pdf")
    } else {
        format!("{stem}_{n:02}.pdf")
    };
    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => format!("{}/{name}", d.to_string_lossy()),
        None => name,
    }
}

/// Writes the archive file under the first free candidate name that is not `avoid` (the
/// document's current archive file, removed only after the commit); never replaces a file.
pub fn write_archive_file(
    media: &Media,
    original: &str,
    avoid: Option<&str>,
    pdf: &[u8],
) -> Result<String, media::MediaError> {
    let mut n = 0;
    loop {
        let name = archive_name(original, n);
        n += 1;
        if Some(name.as_str()) == avoid {
            continue;
        }
        match media.write_new(Folder::Archive, &name, pdf) {
            Ok(_) => return Ok(name),
            Err(media::MediaError::Exists { .. }) if n < 1000 => continue,
            Err(e) => return Err(e),
        }
    }
}

// ---- notes on documents that get no archive --------------------------------------------------

/// Why a document has no archive version, kept so that later runs skip it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// `refused` (encrypted, signed, GnuPG) or `not_needed` (the settings).
    pub kind: String,
    pub reason: String,
    /// The original's checksum when noted: a changed original voids the note.
    pub checksum: String,
    /// `mode/generation` when noted: a `not_needed` note is void under other settings.
    pub settings: String,
    pub at: String,
}

fn settings_key(config: &Config) -> String {
    format!(
        "{}/{}",
        mode_name(config),
        config.archive_file_generation.name()
    )
}

fn note_path(config: &Config, id: i64) -> PathBuf {
    config.data_dir.join(NOTES_DIR).join(format!("{id}.json"))
}

/// The document's note, if one is still valid under the settings (`checksum`: the original's,
/// when known).
pub fn valid_note(config: &Config, id: i64, checksum: Option<&str>) -> Option<Note> {
    let text = std::fs::read_to_string(note_path(config, id)).ok()?;
    let note: Note = serde_json::from_str(&text).ok()?;
    if checksum.is_some_and(|c| c != note.checksum) {
        return None;
    }
    if note.kind != "refused" && note.settings != settings_key(config) {
        return None;
    }
    Some(note)
}

fn write_note(config: &Config, doc: &Document, kind: &str, reason: &str) {
    let note = Note {
        kind: kind.into(),
        reason: reason.into(),
        checksum: doc.checksum.clone(),
        settings: settings_key(config),
        at: chrono::Utc::now().to_rfc3339(),
    };
    let body = serde_json::to_vec_pretty(&note).expect("a note serializes");
    if let Err(e) = media::write_atomic(&note_path(config, doc.id), &body) {
        tracing::warn!(document_id = doc.id, error = %e, "cannot write the archive note");
    }
}

fn remove_note(config: &Config, id: i64) {
    let _ = std::fs::remove_file(note_path(config, id));
}

// ---- the jobs --------------------------------------------------------------------------------

/// `Job::Archive`: fan out one `Job::ArchiveDocument` per document to look at, wait, sum up.
pub async fn run(
    document: Option<i64>,
    overwrite: bool,
    ctx: &JobContext,
) -> Result<Value, JobError> {
    let config = ctx.config();
    let mut children: Vec<(i64, String)> = Vec::new();
    let mut noted = 0u64;
    let enqueue = |id: i64| Job::ArchiveDocument {
        document: id,
        overwrite,
    };
    if let Some(id) = document {
        let e = ctx.enqueue(&enqueue(id)).await?;
        children.push((id, e.id().to_string()));
    } else {
        let mut after = 0;
        loop {
            ctx.check_cancelled()?;
            let ids = documents::archive_candidates(ctx.db(), after, PAGE, overwrite).await?;
            let Some(&last) = ids.last() else { break };
            after = last;
            for id in ids {
                if !overwrite && valid_note(config, id, None).is_some() {
                    noted += 1;
                    continue;
                }
                let e = ctx.enqueue(&enqueue(id)).await?;
                children.push((id, e.id().to_string()));
            }
            ctx.progress(
                0,
                children.len() as u64,
                format!("{} documents queued", children.len()),
            );
        }
    }
    let ids: Vec<String> = children.iter().map(|(_, j)| j.clone()).collect();
    let total = ids.len() as u64;
    let (mut archived, mut skipped, mut failed) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    let mut pages = 0u64;
    let mut workers = std::collections::BTreeSet::new();
    // Documents whose content the OCR replaced: the index follows, in one update.
    let mut reindex = Vec::new();
    for (i, (doc, _)) in children.iter().enumerate() {
        match ctx.wait_child(&ids, i).await? {
            Ok(record) => {
                workers.extend(record.worker.clone());
                let r = record.result.unwrap_or_default();
                if r["archived"].as_bool() == Some(true) {
                    archived += 1;
                    pages += r["pages"].as_u64().unwrap_or(0);
                    if r["content_updated"].as_bool() == Some(true) {
                        reindex.push(*doc);
                    }
                } else {
                    skipped += 1;
                }
            }
            Err(why) => {
                failed += 1;
                if failures.len() < 1000 {
                    failures.push(json!({"document_id": doc, "error": why}));
                }
            }
        }
        ctx.progress(
            i as u64 + 1,
            total,
            format!("{} of {total} documents ({archived} archived)", i + 1),
        );
    }
    let index_update = if reindex.is_empty() {
        None
    } else {
        match ctx.enqueue(&Job::IndexUpdate { ids: reindex }).await {
            Ok(e) => Some(e.id().to_string()),
            Err(e) => {
                // The archive files and rows are in; only the search lags (a reindex mends it).
                tracing::warn!(error = %e, "cannot queue the index update of the archived documents");
                None
            }
        }
    };
    Ok(json!({
        "documents": total,
        "archived": archived,
        "index_update": index_update,
        "skipped": skipped,
        "skipped_noted": noted,
        "failed": failed,
        "failures": failures,
        "pages": pages,
        "overwrite": overwrite,
        // Which workers made them (horizontal scale, visible).
        "workers": workers,
    }))
}

/// `Job::ArchiveDocument`: the archive version of one document.
pub async fn run_document(id: i64, overwrite: bool, ctx: &JobContext) -> Result<Value, JobError> {
    let config = ctx.config();
    let skip = |reason: &str| Ok(json!({"document_id": id, "archived": false, "reason": reason}));
    let Some(doc) = documents::get(ctx.db(), id).await? else {
        return Err(bad(format!("document {id} does not exist")));
    };
    if doc.in_trash() {
        return skip("in the trash");
    }
    if !overwrite && doc.archive_filename.is_some() {
        return skip("has an archive version (use --overwrite to make it again)");
    }
    if !overwrite && let Some(note) = valid_note(config, id, Some(&doc.checksum)) {
        return skip(&note.reason);
    }
    if doc.storage_type.as_str() == "gpg" {
        let why = "the original is GnuPG-encrypted (run `paperboy decrypt-documents` first)";
        write_note(config, &doc, "refused", why);
        return skip(why);
    }
    let media = Media::from_config(config);
    let filename = doc
        .filename
        .clone()
        .ok_or_else(|| bad(format!("document {id} has no original file name")))?;
    let path = media
        .original(&filename)
        .map_err(JobError::from_classified)?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        let msg = format!("cannot read the original {}: {e}", path.display());
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => bad(msg),
            _ => JobError::Transient(msg),
        }
    })?;
    let bytes = Arc::new(bytes);
    let Some(kind) = detect::detect(&bytes) else {
        let why = format!(
            "the original is not a type the archiver reads ({})",
            detect::describe_unknown(&bytes)
        );
        write_note(config, &doc, "refused", &why);
        return skip(&why);
    };
    // The born-digital test looks at the original's own text layer (the content may be OCR
    // text or edited).
    let (text_layer, tagged) = if kind == FileType::Pdf {
        let b = bytes.clone();
        blocking("text extraction", move || {
            let text = text::extract(FileType::Pdf, &b)
                .map(|(t, _)| t)
                .unwrap_or_default();
            (text, text::pdf_is_tagged(&b))
        })
        .await?
    } else {
        (String::new(), false)
    };
    ctx.check_cancelled()?;
    let meta = pdf::Meta {
        title: doc.title.clone(),
        created: chrono::Utc::now(),
    };
    let built = match build(config, kind, bytes, &text_layer, tagged, meta).await? {
        Outcome::Built(b) => b,
        Outcome::NotNeeded(why) => {
            write_note(config, &doc, "not_needed", &why);
            return skip(&why);
        }
        Outcome::Refused(why) => {
            tracing::warn!(document_id = id, "no archive version: {why}");
            write_note(config, &doc, "refused", &why);
            return skip(&why);
        }
    };
    ctx.check_cancelled()?;
    let checksum = hex::encode(sha2::Sha256::digest(&built.pdf));
    let old = doc.archive_filename.clone();
    let new_name = {
        let (media, filename, old, pdf) = (media.clone(), filename.clone(), old.clone(), built.pdf);
        blocking("writing the archive file", move || {
            write_archive_file(&media, &filename, old.as_deref(), &pdf)
        })
        .await?
        .map_err(JobError::from_classified)?
    };
    let committed = async {
        let mut tx = ctx.db().begin().await?;
        let ok = documents::set_archive(
            &mut tx,
            id,
            old.as_deref(),
            &new_name,
            &checksum,
            built.text.as_deref(),
        )
        .await?;
        if !ok {
            return Err(JobError::Transient(format!(
                "document {id} changed while its archive version was made; trying again"
            )));
        }
        tx.commit()
            .await
            .map_err(paperboy_shared::db::DbError::from)?;
        Ok::<(), JobError>(())
    }
    .await;
    if let Err(e) = committed {
        if let Err(r) = media.remove(Folder::Archive, &new_name) {
            tracing::error!(document_id = id, error = %r, "cannot remove an uncommitted archive file");
        }
        return Err(e);
    }
    if let Some(old) = old.as_deref().filter(|o| *o != new_name)
        && let Err(e) = media.remove(Folder::Archive, old)
    {
        tracing::warn!(document_id = id, error = %e, "cannot remove the old archive file {old}");
    }
    remove_note(config, id);
    if !built.problems.is_empty() {
        tracing::warn!(document_id = id, problems = %built.problems.join("; "), "OCR of some pages failed");
    }
    tracing::info!(document_id = id, archive = %new_name, pages = built.pages, "archived");
    Ok(json!({
        "document_id": id,
        "archived": true,
        "archive_filename": new_name,
        "archive_checksum": checksum,
        "pages": built.pages,
        "ocr": built.ocr_ran,
        "content_updated": built.text.is_some(),
        "ocr_error": (!built.problems.is_empty()).then(|| built.problems.join("; ")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_decision_of_paperless_3_0_5() {
        use ArchiveGeneration::*;
        use FileType::*;
        let rows = [
            (Auto, Pdf, false, true),
            (Auto, Pdf, true, false),
            (Auto, Png, false, true),
            (Auto, Jpeg, false, true),
            (Auto, Text, false, false),
            (Always, Pdf, true, true),
            (Always, Text, false, false),
            (Never, Pdf, false, false),
            (Never, Png, false, false),
        ];
        for (g, k, born, want) in rows {
            assert_eq!(should_produce(g, k, born), want, "{g:?} {k:?} born={born}");
        }
    }

    #[test]
    fn archive_names_follow_the_original() {
        assert_eq!(archive_name("0000042.jpg", 0), "0000042.pdf");
        assert_eq!(
            archive_name("2024/ACME/invoice.pdf", 0),
            "2024/ACME/invoice.pdf"
        );
        assert_eq!(
            archive_name("2024/ACME/invoice.pdf", 2),
            "2024/ACME/invoice_02.pdf"
        );
    }

    #[test]
    fn a_new_archive_file_never_replaces_and_avoids_the_current_one() {
        let tmp = tempfile::tempdir().unwrap();
        let media = Media::new(tmp.path());
        let a = write_archive_file(&media, "0000001.png", None, b"one").unwrap();
        assert_eq!(a, "0000001.pdf");
        let b = write_archive_file(&media, "0000001.png", Some(&a), b"two").unwrap();
        assert_eq!(b, "0000001_01.pdf");
        assert_eq!(std::fs::read(media.archive(&a).unwrap()).unwrap(), b"one");
        // The name after `b` was taken: the next free one, never over a file.
        let c = write_archive_file(&media, "0000001.png", Some(&b), b"three").unwrap();
        assert_eq!(c, "0000001_02.pdf");
    }

    #[test]
    fn encrypted_and_signed_pdfs_are_refused() {
        use lopdf::{Object, dictionary};
        let mut doc = lopdf::Document::with_version("1.7");
        let pages = doc.new_object_id();
        let page = doc.add_object(dictionary! {"Type" => "Page", "Parent" => pages});
        doc.objects.insert(
            pages,
            Object::Dictionary(
                dictionary! {"Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1},
            ),
        );
        let form = doc.add_object(dictionary! {"Fields" => Vec::<Object>::new(), "SigFlags" => 3});
        let catalog =
            doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages, "AcroForm" => form});
        doc.trailer.set("Root", catalog);
        let mut signed = Vec::new();
        doc.save_to(&mut signed).unwrap();
        assert!(protected(&signed).unwrap().contains("signed"));
        let archive = pdf::write(
            &[],
            &pdf::Meta {
                title: "t".into(),
                created: chrono::Utc::now(),
            },
        );
        assert_eq!(protected(&archive), None);
    }
}
