//! File type by content (magic bytes), never by the name: a `.pdf` that is a ZIP is refused, a
//! scan named `scan` without extension is accepted.

/// The types consume accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Pdf,
    Png,
    Jpeg,
    Tiff,
    Webp,
    Gif,
    Text,
}

/// What the error message lists as accepted.
pub const ACCEPTED: &str = "PDF, PNG, JPEG, TIFF, WebP, GIF, plain text (UTF-8)";

impl FileType {
    pub fn mime(self) -> &'static str {
        match self {
            FileType::Pdf => "application/pdf",
            FileType::Png => "image/png",
            FileType::Jpeg => "image/jpeg",
            FileType::Tiff => "image/tiff",
            FileType::Webp => "image/webp",
            FileType::Gif => "image/gif",
            FileType::Text => "text/plain",
        }
    }

    /// Extension of the stored original (paperless names it after the MIME type).
    pub fn extension(self) -> &'static str {
        match self {
            FileType::Pdf => "pdf",
            FileType::Png => "png",
            FileType::Jpeg => "jpg",
            FileType::Tiff => "tiff",
            FileType::Webp => "webp",
            FileType::Gif => "gif",
            FileType::Text => "txt",
        }
    }
}

/// The type of `bytes`, or None if consume does not take it.
pub fn detect(bytes: &[u8]) -> Option<FileType> {
    // PDF: the header may follow some junk; readers accept it within the first 1024 bytes.
    let head = &bytes[..bytes.len().min(1024)];
    if find(head, b"%PDF-").is_some() {
        return Some(FileType::Pdf);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(FileType::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(FileType::Jpeg);
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Some(FileType::Tiff);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some(FileType::Webp);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some(FileType::Gif);
    }
    if is_plain_text(bytes) {
        return Some(FileType::Text);
    }
    None
}

/// Valid UTF-8 (a BOM is fine), not empty, and no control characters but tab, line feed,
/// carriage return and form feed (so no NUL, and binaries that happen to be valid UTF-8 are
/// not text).
fn is_plain_text(bytes: &[u8]) -> bool {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    !body.is_empty()
        && !body
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
        && std::str::from_utf8(body).is_ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A short description of content we refuse, for the error message.
pub fn describe_unknown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    let known: &[(&[u8], &str)] = &[
        (b"MZ", "a Windows executable"),
        (b"\x7fELF", "an ELF executable"),
        (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"Rar!", "a RAR archive"),
        (b"7z\xBC\xAF", "a 7-Zip archive"),
        (b"BM", "a BMP image"),
        (b"\xD0\xCF\x11\xE0", "an old Microsoft Office document"),
    ];
    for (magic, what) in known {
        if bytes.starts_with(magic) {
            return (*what).into();
        }
    }
    if bytes.contains(&0) {
        "binary data".into()
    } else {
        "text that is not valid UTF-8".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic_bytes() {
        assert_eq!(detect(b"%PDF-1.7\n..."), Some(FileType::Pdf));
        assert_eq!(detect(b"\r\n%PDF-1.4 junk first"), Some(FileType::Pdf));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0"), Some(FileType::Png));
        assert_eq!(
            detect(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(FileType::Jpeg)
        );
        assert_eq!(detect(b"II*\0\x08\0\0\0"), Some(FileType::Tiff));
        assert_eq!(detect(b"MM\0*\0\0\0\x08"), Some(FileType::Tiff));
        assert_eq!(detect(b"RIFF\x10\0\0\0WEBPVP8 "), Some(FileType::Webp));
        assert_eq!(detect(b"GIF89a\x01\0"), Some(FileType::Gif));
        assert_eq!(
            detect("Grüße, 2024-07-02\n".as_bytes()),
            Some(FileType::Text)
        );
        assert_eq!(detect(b"\xEF\xBB\xBFwith BOM"), Some(FileType::Text));
    }

    #[test]
    fn refuses_binaries_and_broken_text() {
        for (bytes, what) in [
            (&b"MZ\x90\0\x03\0\0\0"[..], "Windows executable"),
            (&b"\x7fELF\x02\x01"[..], "ELF"),
            (&b"PK\x03\x04\x14\0"[..], "ZIP"),
            (&b"plain\0with NUL"[..], "binary"),
            (&b"latin1 \xE9t\xE9"[..], "not valid UTF-8"),
            (&b""[..], "empty"),
            (&b"RIFF\0\0\0\0WAVEfmt "[..], "binary"),
        ] {
            assert_eq!(detect(bytes), None, "{bytes:?}");
            let d = describe_unknown(bytes);
            assert!(d.contains(what), "{d} for {bytes:?}");
        }
    }

    #[test]
    fn mime_and_extension() {
        assert_eq!(FileType::Jpeg.mime(), "image/jpeg");
        assert_eq!(FileType::Jpeg.extension(), "jpg");
        assert_eq!(FileType::Text.extension(), "txt");
    }
}
