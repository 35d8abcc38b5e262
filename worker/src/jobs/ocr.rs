//! OCR with tesseract: the text of images and of PDFs without a usable text layer.
//!
//! What is OCR'd follows paperless-ngx 3.0.5's decision table
//! (`../shared/specs/mail-archive-consume.md` §2.2), for the text only (the searchable archive
//! PDF is the archive job's):
//!
//! | mode | input | OCR? | text |
//! |---|---|---|---|
//! | off | any | no | the PDF's text layer, "" for images |
//! | auto | born-digital PDF | no | the text layer |
//! | auto | other PDF, image | yes | OCR text (the text layer if OCR finds nothing) |
//! | force, redo | PDF, image | yes | OCR text (the text layer if OCR finds nothing) |
//!
//! "Born-digital": the text layer is non-empty and the PDF is tagged (`/MarkInfo /Marked true`)
//! or has more than 50 characters of text. Text files are never OCR'd.
//!
//! How, and where we differ from paperless (which runs OCRmyPDF: Ghostscript + tesseract):
//! - PDF pages are rendered in-process with hayro at `PAPERBOY_OCR_DPI` (300) and handed to the
//!   `tesseract` CLI one page at a time as PNG in a private temp folder, so memory holds one
//!   page. No Ghostscript, no unpaper (paperless's `clean` is not done).
//! - Images are decoded (first frame, EXIF orientation applied, alpha flattened on white) and
//!   written as PNG; a multi-page TIFF is given to tesseract as is, so every page is read.
//! - `OMP_THREAD_LIMIT=1` as paperless: workers run several jobs at once, tesseract's own
//!   threads would only fight them.
//! - Every tesseract run has a timeout (`PAPERBOY_OCR_TIMEOUT_SECS`); a page that times out or
//!   that tesseract fails on is skipped and named in `ocr_error`: the document is still stored
//!   with the text found (paperless fails the whole consumption on most OCR errors).
//! - A missing `tesseract` binary or language pack fails the job with the fix in the message;
//!   the input is kept, and `paperboy jobs retry` consumes it once tesseract is installed.
//!
//! The tesseract CLI rather than a binding: the `tesseract`/`leptess` crates need the C
//! libraries' headers at build time and would tie the worker's build to them; the CLI is what
//! every distribution ships (`tesseract-ocr`), and one process per page costs little next to
//! the OCR itself.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use image::RgbImage;
use paperboy_shared::config::{Config, OcrMode, names};
use thiserror::Error;
use tokio::process::Command;

use super::consume::detect::FileType;
use super::consume::text::normalize;
use super::render;

/// Characters of text layer above which a PDF is born-digital (paperless: `len(text) > 50`).
const BORN_DIGITAL_CHARS: usize = 50;

/// Why OCR could not run at all (as opposed to a page it failed on).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OcrError {
    #[error(
        "tesseract is not installed or not on PATH ({0}); install it (Debian: apt install tesseract-ocr tesseract-ocr-eng) or set {mode}=off",
        mode = names::OCR_MODE
    )]
    NotInstalled(String),
    #[error(
        "tesseract has no data for the language {0:?} of {lang}; install it (Debian: apt install tesseract-ocr-{0}) or change {lang}",
        lang = names::OCR_LANGUAGE
    )]
    MissingLanguage(String),
    #[error("cannot prepare the file for OCR: {0}")]
    Prepare(String),
}

/// What the OCR step decided and found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OcrOutcome {
    /// The text to store (normalised like the text layer).
    pub text: String,
    /// Whether tesseract ran.
    pub ran: bool,
    /// Pages OCR'd (of a PDF or TIFF: as many as were given to tesseract).
    pub pages: usize,
    /// Pages that could not be OCR'd and why; the document is stored anyway.
    pub problems: Vec<String>,
}

/// Whether a file of `kind` with text layer `text_layer` is OCR'd in `mode` (spec §2.2).
pub fn needs_ocr(mode: OcrMode, kind: FileType, text_layer: &str, tagged: bool) -> bool {
    match (mode, kind) {
        (_, FileType::Text) | (OcrMode::Off, _) => false,
        (OcrMode::Force | OcrMode::Redo, _) => true,
        (OcrMode::Auto, FileType::Pdf) => !born_digital(text_layer, tagged),
        (OcrMode::Auto, _) => true,
    }
}

/// paperless's predicate: some text, and tagged or more than 50 characters of it.
pub fn born_digital(text_layer: &str, tagged: bool) -> bool {
    let text = text_layer.trim();
    !text.is_empty() && (tagged || text.chars().count() > BORN_DIGITAL_CHARS)
}

/// OCRs `bytes` (of type `kind`) as configured, or not, per [`needs_ocr`]. `text_layer` is
/// what text extraction found; it is kept when OCR does not run or finds nothing.
pub async fn run(
    config: &Config,
    kind: FileType,
    bytes: std::sync::Arc<Vec<u8>>,
    text_layer: &str,
    tagged: bool,
) -> Result<OcrOutcome, OcrError> {
    if !needs_ocr(config.ocr_mode, kind, text_layer, tagged) {
        return Ok(OcrOutcome {
            text: text_layer.to_string(),
            ..OcrOutcome::default()
        });
    }
    let tesseract = Tesseract::from_config(config);
    tesseract.check().await?;
    let dir = tempfile::tempdir().map_err(|e| OcrError::Prepare(format!("temp folder: {e}")))?;
    let mut out = OcrOutcome {
        ran: true,
        ..OcrOutcome::default()
    };
    let mut texts = Vec::new();
    match kind {
        FileType::Pdf => {
            // Render one page, OCR it, then the next: a channel of one page between the
            // renderer (blocking) and tesseract (async).
            let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, RgbImage)>(1);
            let (limit, dpi) = (config.ocr_pages as usize, config.ocr_dpi);
            let renderer = tokio::task::spawn_blocking(move || {
                render::render_pages(bytes.to_vec(), limit, dpi, |i, _count, image| {
                    Ok(tx.blocking_send((i, image)).is_ok())
                })
            });
            while let Some((i, image)) = rx.recv().await {
                let path = dir.path().join(format!("page-{:05}.png", i + 1));
                let written = tokio::task::spawn_blocking({
                    let path = path.clone();
                    move || image.save_with_format(&path, image::ImageFormat::Png)
                })
                .await;
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        out.problems
                            .push(format!("page {}: cannot write it for OCR: {e}", i + 1));
                        continue;
                    }
                    Err(e) => {
                        out.problems.push(format!("page {}: {e}", i + 1));
                        continue;
                    }
                }
                out.pages += 1;
                match tesseract.read(&path).await {
                    Ok(text) => texts.push(text),
                    Err(problem) => out.problems.push(format!("page {}: {problem}", i + 1)),
                }
                let _ = std::fs::remove_file(&path);
            }
            match renderer.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => out.problems.push(e),
                Err(e) => out.problems.push(format!("the renderer crashed: {e}")),
            }
        }
        FileType::Tiff => {
            let path = dir.path().join("image.tiff");
            tokio::fs::write(&path, &*bytes)
                .await
                .map_err(|e| OcrError::Prepare(format!("write {}: {e}", path.display())))?;
            out.pages = 1;
            match tesseract.read(&path).await {
                Ok(text) => texts.push(text),
                Err(problem) => out.problems.push(problem),
            }
        }
        FileType::Png | FileType::Jpeg | FileType::Webp | FileType::Gif => {
            let path = dir.path().join("image.png");
            let image_path = path.clone();
            tokio::task::spawn_blocking(move || {
                let image = render::decode_image(kind, &bytes)?;
                image
                    .save_with_format(&image_path, image::ImageFormat::Png)
                    .map_err(|e| format!("write {}: {e}", image_path.display()))
            })
            .await
            .map_err(|e| OcrError::Prepare(e.to_string()))?
            .map_err(OcrError::Prepare)?;
            out.pages = 1;
            match tesseract.read(&path).await {
                Ok(text) => texts.push(text),
                Err(problem) => out.problems.push(problem),
            }
        }
        FileType::Text => unreachable!("needs_ocr is false for text"),
    }
    let text = normalize(&texts.join("\n"));
    out.text = if text.trim().is_empty() {
        // paperless: no OCR text ⇒ the original text, if any.
        text_layer.to_string()
    } else {
        text
    };
    Ok(out)
}

/// How tesseract is called.
struct Tesseract {
    binary: String,
    language: String,
    timeout: Duration,
}

impl Tesseract {
    fn from_config(config: &Config) -> Tesseract {
        Tesseract {
            binary: "tesseract".into(),
            language: config.ocr_language.clone(),
            timeout: config.ocr_timeout,
        }
    }

    /// The binary runs and knows every configured language.
    async fn check(&self) -> Result<(), OcrError> {
        let output = Command::new(&self.binary)
            .arg("--list-langs")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(30), output)
            .await
            .map_err(|_| OcrError::NotInstalled("`tesseract --list-langs` hung".into()))?
            .map_err(|e| OcrError::NotInstalled(format!("{}: {e}", self.binary)))?;
        // Older versions print the list on stderr.
        let listing = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let known: Vec<&str> = listing.lines().map(str::trim).collect();
        for lang in self.language.split('+') {
            if !known.contains(&lang) {
                return Err(OcrError::MissingLanguage(lang.to_string()));
            }
        }
        Ok(())
    }

    /// The text tesseract reads in one image file; an error string names what went wrong.
    async fn read(&self, image: &Path) -> Result<String, String> {
        let child = Command::new(&self.binary)
            .arg(image)
            .arg("stdout")
            .arg("-l")
            .arg(&self.language)
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let output = match tokio::time::timeout(self.timeout, child).await {
            Err(_) => {
                return Err(format!(
                    "tesseract took longer than {} s (raise {})",
                    self.timeout.as_secs(),
                    names::OCR_TIMEOUT_SECS
                ));
            }
            Ok(Err(e)) => return Err(format!("cannot run {}: {e}", self.binary)),
            Ok(Ok(o)) => o,
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            return Err(format!(
                "tesseract failed ({}): {}",
                output.status,
                last.unwrap_or("no message")
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "This is a born-digital letter with a text layer of more than fifty chars.";

    #[test]
    fn the_decision_table_of_paperless_3_0_5() {
        use FileType::*;
        use OcrMode::*;
        // (mode, kind, text layer, tagged) → OCR?
        let rows: &[(OcrMode, FileType, &str, bool, bool)] = &[
            (Off, Pdf, "", false, false),
            (Off, Png, "", false, false),
            (Auto, Pdf, LONG, false, false),
            (Auto, Pdf, "short text", true, false),
            (Auto, Pdf, "short text", false, true),
            (Auto, Pdf, "", true, true),
            (Auto, Pdf, "   \n ", false, true),
            (Auto, Png, "", false, true),
            (Auto, Jpeg, "", false, true),
            (Auto, Tiff, "", false, true),
            (Force, Pdf, LONG, true, true),
            (Redo, Pdf, LONG, false, true),
            (Force, Gif, "", false, true),
            (Auto, Text, "", false, false),
            (Force, Text, "", false, false),
        ];
        for &(mode, kind, text, tagged, expected) in rows {
            assert_eq!(
                needs_ocr(mode, kind, text, tagged),
                expected,
                "{mode:?} {kind:?} {text:?} tagged={tagged}"
            );
        }
    }

    #[test]
    fn born_digital_needs_more_than_50_characters_unless_tagged() {
        let fifty = "x".repeat(50);
        let fifty_one = "x".repeat(51);
        assert!(!born_digital(&fifty, false));
        assert!(born_digital(&fifty_one, false));
        assert!(born_digital("x", true));
        assert!(!born_digital("", true));
    }
}
