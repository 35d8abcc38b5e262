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
//! - A PDF page that is one scanned image is read at that image's resolution, the image
//!   handed to tesseract as it is (`archive::source`); other pages are rendered in-process
//!   with hayro at `PAPERBOY_OCR_DPI` (300; lower for a page larger than
//!   `PAPERBOY_OCR_MAX_IMAGE_PIXELS`) and written as PNM (no compression) in a private temp
//!   folder. Pages are read in parallel, one page rendered ahead, so memory holds a few
//!   pages. No Ghostscript, no unpaper (paperless's `clean` is not done).
//! - Images are decoded (first frame, EXIF orientation applied, alpha flattened on white) and
//!   written as PNM; a multi-page TIFF is given to tesseract as is, so every page is read.
//! - `OMP_THREAD_LIMIT=1` as paperless: workers run several jobs at once, tesseract's own
//!   threads would only fight them; [`slots`] lets one tesseract per core run in the process.
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

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use paperboy_shared::config::{Config, OcrMode, names};
use thiserror::Error;
use tokio::process::Command;

use super::archive::source;
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
            // The renderer (blocking) writes each page's OCR input (a scanned page's own
            // image, else the page rendered, as PNM) one page ahead; pages are read in
            // parallel (tesseract bounded by `slots`), their texts kept in order.
            use futures::StreamExt;
            let (tx, rx) = tokio::sync::mpsc::channel::<(usize, Result<PathBuf, String>)>(1);
            let (limit, dpi) = (config.ocr_pages as usize, config.ocr_dpi);
            let max_pixels = config.ocr_max_image_pixels;
            let folder = dir.path().to_path_buf();
            let renderer = tokio::task::spawn_blocking(move || {
                render::for_each_page(bytes.to_vec(), limit, |i, _count, page| {
                    let name = format!("page-{:05}", i + 1);
                    let input = match source::pdf_page(page, max_pixels) {
                        Some(image) => source::ocr_input(&image, &folder, &name),
                        None => render::render_page(page, i + 1, dpi, max_pixels).and_then(
                            |(image, _)| {
                                let path = folder.join(format!("{name}.pnm"));
                                let gray = source::is_gray(&image);
                                source::write_pnm(&image, gray, &path).map(|()| path)
                            },
                        ),
                    };
                    Ok(tx.blocking_send((i, input)).is_ok())
                })
            });
            let inputs = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|input| (input, rx))
            });
            let tesseract = &tesseract;
            let read: Vec<(usize, Result<String, String>)> = inputs
                .map(|(i, input)| async move {
                    let text = match input {
                        Ok(path) => {
                            let text = tesseract.read(&path).await;
                            let _ = std::fs::remove_file(&path);
                            text
                        }
                        Err(e) => Err(format!("cannot prepare it for OCR: {e}")),
                    };
                    (i, text)
                })
                .buffered(parallelism())
                .collect()
                .await;
            for (i, text) in read {
                out.pages += 1;
                match text {
                    Ok(text) => texts.push(text),
                    Err(problem) => out.problems.push(format!("page {}: {problem}", i + 1)),
                }
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
            let path = dir.path().join("image.pnm");
            let image_path = path.clone();
            let max_pixels = config.ocr_max_image_pixels;
            tokio::task::spawn_blocking(move || {
                let image = render::decode_image_limited(kind, &bytes, max_pixels)?;
                let gray = source::is_gray(&image);
                source::write_pnm(&image, gray, &image_path)
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

/// One word an OCR engine read, in pixels of the page image (origin top left).
#[derive(Debug, Clone, PartialEq)]
pub struct OcrWord {
    pub text: String,
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    /// Which line the word is on (block, paragraph, line), in reading order.
    pub line: (u32, u32, u32),
    /// Confidence 0–100.
    pub conf: f32,
}

/// The words of one page image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OcrPage {
    /// Size of the image the boxes refer to.
    pub width: u32,
    pub height: u32,
    pub words: Vec<OcrWord>,
}

impl OcrPage {
    /// The words grouped by line, in reading order.
    pub fn lines(&self) -> Vec<&[OcrWord]> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..=self.words.len() {
            if i == self.words.len() || self.words[i].line != self.words[start].line {
                if i > start {
                    out.push(&self.words[start..i]);
                }
                start = i;
            }
        }
        out
    }

    /// The page's text: words joined by spaces, lines by newlines, paragraphs by a blank line
    /// (what tesseract's own text output looks like).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut last: Option<(u32, u32)> = None;
        for line in self.lines() {
            let (b, p, _) = line[0].line;
            if let Some(prev) = last {
                out.push('\n');
                if prev != (b, p) {
                    out.push('\n');
                }
            }
            last = Some((b, p));
            let words: Vec<&str> = line.iter().map(|w| w.text.as_str()).collect();
            out.push_str(&words.join(" "));
        }
        out
    }
}

/// An OCR engine: the words, with boxes, of one page image. Implementations must survive
/// hostile images (run the recogniser where a crash cannot take the worker down).
pub trait OcrEngine: Send + Sync {
    fn name(&self) -> &'static str;
    /// The engine can run with the configured languages.
    fn check(&self) -> futures::future::BoxFuture<'_, Result<(), OcrError>>;
    /// The words of the image file at `image`; `dpi` if the caller knows it. An error string
    /// says what went wrong with this page.
    fn page<'a>(
        &'a self,
        image: &'a Path,
        dpi: Option<u32>,
    ) -> futures::future::BoxFuture<'a, Result<OcrPage, String>>;
}

/// The engine of the settings: tesseract (the `ocrs` engine is not built: its models cannot
/// be obtained here).
pub fn engine(config: &Config) -> Box<dyn OcrEngine> {
    Box::new(Tesseract::from_config(config))
}

impl OcrEngine for Tesseract {
    fn name(&self) -> &'static str {
        "tesseract"
    }

    fn check(&self) -> futures::future::BoxFuture<'_, Result<(), OcrError>> {
        Box::pin(Tesseract::check(self))
    }

    fn page<'a>(
        &'a self,
        image: &'a Path,
        dpi: Option<u32>,
    ) -> futures::future::BoxFuture<'a, Result<OcrPage, String>> {
        Box::pin(async move {
            let mut args = vec!["tsv".to_string()];
            if let Some(d) = dpi {
                args.splice(0..0, ["--dpi".to_string(), d.to_string()]);
            }
            let tsv = self.run(image, &args).await?;
            parse_tsv(&tsv)
        })
    }
}

/// Parses tesseract's `tsv` output: level 1 rows give the page size, level 5 rows the words.
pub fn parse_tsv(tsv: &str) -> Result<OcrPage, String> {
    let mut page = OcrPage::default();
    let mut lines = tsv.lines();
    let header = lines.next().unwrap_or_default();
    if !header.starts_with("level") {
        return Err(format!("tesseract gave no TSV (first line {header:?})"));
    }
    for row in lines {
        let f: Vec<&str> = row.split('\t').collect();
        if f.len() < 12 {
            continue;
        }
        let n = |i: usize| f[i].trim().parse::<u32>().unwrap_or(0);
        match f[0] {
            "1" if page.width == 0 => {
                page.width = n(8);
                page.height = n(9);
            }
            "5" => {
                let text = f[11..].join("\t").trim().to_string();
                if text.is_empty() {
                    continue;
                }
                page.words.push(OcrWord {
                    text,
                    left: n(6),
                    top: n(7),
                    width: n(8),
                    height: n(9),
                    line: (n(2), n(3), n(4)),
                    conf: f[10].trim().parse().unwrap_or(0.0),
                });
            }
            _ => {}
        }
    }
    Ok(page)
}

/// Tesseract processes one worker process runs at once: one per core. Jobs that OCR (several
/// documents at once, and the pages of one document in parallel) share them, so the cores are
/// busy and never oversubscribed; tesseract itself runs single-threaded
/// (`OMP_THREAD_LIMIT=1`), as paperless has OCRmyPDF run it.
pub fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(parallelism()))
}

/// The cores this process may use.
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How tesseract is called.
pub struct Tesseract {
    binary: String,
    language: String,
    timeout: Duration,
}

impl Tesseract {
    pub fn from_config(config: &Config) -> Tesseract {
        Tesseract {
            binary: "tesseract".into(),
            language: config.ocr_language.clone(),
            timeout: config.ocr_timeout,
        }
    }

    /// The binary runs and knows every configured language (asked once per process and
    /// language list: a document's job does not pay for a `--list-langs` run each time).
    async fn check(&self) -> Result<(), OcrError> {
        static CHECKED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
        let key = (self.binary.clone(), self.language.clone());
        if CHECKED.lock().is_ok_and(|c| c.contains(&key)) {
            return Ok(());
        }
        self.list_langs().await?;
        if let Ok(mut c) = CHECKED.lock() {
            c.push(key);
        }
        Ok(())
    }

    async fn list_langs(&self) -> Result<(), OcrError> {
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
        self.run(image, &[]).await
    }

    /// `tesseract IMAGE stdout -l LANG ARGS…` in a child process (a crash or a hang on a
    /// hostile image ends that process, not the worker), with the timeout; its stdout.
    async fn run(&self, image: &Path, args: &[String]) -> Result<String, String> {
        // One tesseract at a time per core in this process, whichever job asks.
        let _slot = slots()
            .acquire()
            .await
            .map_err(|_| "the OCR slots are closed".to_string())?;
        let child = Command::new(&self.binary)
            .arg(image)
            .arg("stdout")
            .arg("-l")
            .arg(&self.language)
            .args(args)
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
    fn tsv_words_lines_and_text() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
1\t1\t0\t0\t0\t0\t0\t0\t2480\t3508\t-1\t\n\
4\t1\t1\t1\t1\t0\t100\t200\t900\t40\t-1\t\n\
5\t1\t1\t1\t1\t1\t100\t200\t300\t40\t96.5\tGrüße\n\
5\t1\t1\t1\t1\t2\t450\t200\t200\t40\t91\taus\n\
5\t1\t1\t1\t2\t1\t100\t260\t300\t40\t90\tMünchen\n\
5\t1\t2\t1\t1\t1\t100\t400\t300\t40\t90\tEnde\n\
5\t1\t2\t1\t1\t2\t500\t400\t300\t40\t-1\t \n";
        let page = parse_tsv(tsv).unwrap();
        assert_eq!((page.width, page.height), (2480, 3508));
        assert_eq!(page.words.len(), 4);
        assert_eq!(page.words[0].text, "Grüße");
        assert_eq!(page.words[0].conf, 96.5);
        assert_eq!(page.lines().len(), 3);
        assert_eq!(page.text(), "Grüße aus\nMünchen\n\nEnde");
        assert!(parse_tsv("Error").is_err());
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
