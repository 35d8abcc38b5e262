//! Text and page count of a file. Blocking and CPU-heavy: call from `spawn_blocking`.
//!
//! - PDF: the text layer through `pdf-extract` (best word spacing), `lopdf` as a fallback when
//!   pdf-extract fails or panics on a file; page count from `lopdf` (hayro if lopdf cannot load
//!   the file). A scan without a text layer gets empty content here; the `ocr` step reads it.
//! - Text files: the text as is (a UTF-8 BOM dropped).
//! - Images: empty content here (the `ocr` step reads them), one page.

use super::detect::FileType;

/// Content and page count of `bytes` of type `kind`.
pub fn extract(kind: FileType, bytes: &[u8]) -> Result<(String, i64), String> {
    match kind {
        FileType::Pdf => {
            let pages = pdf_page_count(bytes)?;
            Ok((normalize(&pdf_text(bytes)), pages))
        }
        FileType::Text => {
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
            Ok((text.to_string(), 1))
        }
        // Images get their text from the `ocr` step.
        _ => Ok((String::new(), 1)),
    }
}

/// Whether the PDF declares itself tagged (`/MarkInfo << /Marked true >>` in its catalog), one
/// half of paperless's born-digital test.
pub fn pdf_is_tagged(bytes: &[u8]) -> bool {
    let Ok(doc) = lopdf::Document::load_mem(bytes) else {
        return false;
    };
    let marked = || -> Option<bool> {
        let catalog = doc.catalog().ok()?;
        let info = catalog.get(b"MarkInfo").ok()?;
        let info = match info {
            lopdf::Object::Reference(id) => doc.get_dictionary(*id).ok()?,
            other => other.as_dict().ok()?,
        };
        info.get(b"Marked").ok()?.as_bool().ok()
    };
    marked().unwrap_or(false)
}

/// Number of pages; an error if neither lopdf nor hayro can read the file (a broken PDF).
pub fn pdf_page_count(bytes: &[u8]) -> Result<i64, String> {
    match lopdf::Document::load_mem(bytes) {
        Ok(doc) => Ok(doc.get_pages().len() as i64),
        Err(lopdf_err) => match hayro_syntax::Pdf::new(bytes.to_vec()) {
            Ok(pdf) => Ok(pdf.pages().len() as i64),
            Err(e) => Err(format!(
                "cannot read the PDF (lopdf: {lopdf_err}; hayro: {e:?})"
            )),
        },
    }
}

/// The text layer, or "" when there is none or it cannot be read. pdf-extract can panic on
/// unusual fonts: a panic is caught and lopdf tried instead.
fn pdf_text(bytes: &[u8]) -> String {
    let extracted = std::panic::catch_unwind(|| {
        let mut doc = pdf_extract::Document::load_mem(bytes)?;
        if doc.is_encrypted() {
            // Readable with the empty user password, like most "protected" PDFs.
            doc.decrypt("")?;
        }
        let mut out = TextOutput::default();
        pdf_extract::output_doc(&doc, &mut out)?;
        Ok::<_, pdf_extract::OutputError>(out.text)
    });
    match extracted {
        Ok(Ok(text)) => return text,
        Ok(Err(e)) => tracing::debug!(error = %e, "pdf-extract failed; trying lopdf"),
        Err(_) => tracing::debug!("pdf-extract panicked; trying lopdf"),
    }
    let Ok(doc) = lopdf::Document::load_mem(bytes) else {
        return String::new();
    };
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    doc.extract_text(&pages).unwrap_or_default()
}

/// pdf-extract's plain-text layout, with one change: text that jumps back to the left starts a
/// new line even when it moved down only a little. (pdf-extract glues such text to the previous
/// word: the fixture warranty draws its "ASN00042" label right of and slightly above the
/// heading, and got "ASN00042Warranty certificate".)
#[derive(Default)]
struct TextOutput {
    text: String,
    page_height: f64,
    last_end: f64,
    last_y: f64,
    first_char: bool,
    any: bool,
}

impl pdf_extract::OutputDev for TextOutput {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &pdf_extract::MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), pdf_extract::OutputError> {
        self.page_height = media_box.ury - media_box.lly;
        if self.any {
            self.text.push('\n');
        }
        self.any = false;
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), pdf_extract::OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &pdf_extract::Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        ch: &str,
    ) -> Result<(), pdf_extract::OutputError> {
        // Device position with the y axis pointing down, and the font size after the text
        // matrix (side of the square with the area of the transformed size vector).
        let (x, y) = (trm.m31, self.page_height - trm.m32);
        let vx = font_size * (trm.m11 + trm.m21);
        let vy = font_size * (trm.m12 + trm.m22);
        let size = (vx * vy).abs().sqrt();
        if self.first_char && self.any {
            let dy = (y - self.last_y).abs();
            if dy > size * 1.5 {
                self.text.push('\n');
            } else if x < self.last_end - size * 0.5 {
                // Back to the left: a new line (or column), never glued to the last word.
                self.text.push('\n');
            } else if x > self.last_end + size * 0.1 {
                self.text.push(' ');
            }
        }
        self.text.push_str(ch);
        self.first_char = false;
        self.any = true;
        self.last_y = y;
        self.last_end = x + width * size;
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.first_char = true;
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), pdf_extract::OutputError> {
        Ok(())
    }
}

/// Trims each line's trailing blanks and the text's blank lines at both ends, and collapses runs
/// of more than one empty line (pdf-extract separates pages with blank lines).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run > 0 {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_trims_and_collapses_blank_lines() {
        assert_eq!(normalize("\n\n a  \n\n\n\nb\nc  \n\n"), " a\n\nb\nc");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn text_files_as_is_images_empty() {
        let (t, p) = extract(FileType::Text, "\u{feff}Grüße\n".as_bytes()).unwrap();
        assert_eq!((t.as_str(), p), ("Grüße\n", 1));
        let (t, p) = extract(FileType::Png, b"\x89PNG").unwrap();
        assert_eq!((t.as_str(), p), ("", 1));
    }

    #[test]
    fn broken_pdf_is_an_error() {
        let err = extract(FileType::Pdf, b"%PDF-1.4 not really").unwrap_err();
        assert!(err.contains("cannot read the PDF"), "{err}");
    }
}
