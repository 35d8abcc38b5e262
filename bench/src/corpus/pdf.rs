//! A tiny PDF 1.4 writer for the corpus: pages of Helvetica text (a real text layer that text
//! extraction reads back), or pages that are one JPEG each (a "scanned" PDF, no text layer).

/// A page: text lines, or a grayscale JPEG with its pixel size.
pub enum Page<'a> {
    Text(Vec<String>),
    Jpeg {
        data: &'a [u8],
        width: u32,
        height: u32,
    },
}

/// Document information (`/Info`): also what makes two PDFs with equal pages differ.
pub struct Info<'a> {
    pub title: &'a str,
    pub author: &'a str,
    /// `D:YYYYMMDDHHmmSS`.
    pub date: &'a str,
    /// Hex, the file identifier (`/ID`).
    pub id: &'a str,
}

/// A4 in points.
const PAGE_W: f64 = 595.0;
const PAGE_H: f64 = 842.0;

/// Escapes a string for a PDF literal `( … )`; non-ASCII bytes become `?` (WinAnsi Helvetica).
fn literal(s: &str, out: &mut Vec<u8>) {
    out.push(b'(');
    for c in s.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            ' '..='~' => out.push(c as u8),
            _ => out.push(b'?'),
        }
    }
    out.push(b')');
}

struct Writer {
    buf: Vec<u8>,
    offsets: Vec<usize>,
}

impl Writer {
    /// Starts object number `offsets.len() + 1`.
    fn begin(&mut self) -> usize {
        self.offsets.push(self.buf.len());
        let n = self.offsets.len();
        self.buf
            .extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        n
    }

    fn end(&mut self) {
        self.buf.extend_from_slice(b"\nendobj\n");
    }

    fn dict_obj(&mut self, dict: &str) -> usize {
        let n = self.begin();
        self.buf.extend_from_slice(dict.as_bytes());
        self.end();
        n
    }

    fn stream_obj(&mut self, dict_extra: &str, data: &[u8]) -> usize {
        let n = self.begin();
        self.buf.extend_from_slice(
            format!("<< /Length {}{} >>\nstream\n", data.len(), dict_extra).as_bytes(),
        );
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\nendstream");
        self.end();
        n
    }
}

/// The bytes of a PDF with these pages.
pub fn write(pages: &[Page<'_>], info: &Info<'_>) -> Vec<u8> {
    let mut w = Writer {
        buf: Vec::with_capacity(4096),
        offsets: Vec::new(),
    };
    w.buf.extend_from_slice(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    // Fixed numbers: 1 catalog, 2 page tree, 3 font; pages follow.
    let n_pages = pages.len();
    // Each page takes: page object, content stream, and (scans) an image: 3 numbers per page,
    // so page i's object is 4 + 3 i.
    let page_obj = |i: usize| 4 + 3 * i;
    w.dict_obj("<< /Type /Catalog /Pages 2 0 R >>");
    let kids: Vec<String> = (0..n_pages)
        .map(|i| format!("{} 0 R", page_obj(i)))
        .collect();
    w.dict_obj(&format!(
        "<< /Type /Pages /Kids [{}] /Count {n_pages} >>",
        kids.join(" ")
    ));
    w.dict_obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    for (i, page) in pages.iter().enumerate() {
        let me = page_obj(i);
        let contents = me + 1;
        let image = me + 2;
        w.dict_obj(&format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
             /Resources << /Font << /F1 3 0 R >> /XObject << /Im1 {image} 0 R >> >> \
             /Contents {contents} 0 R >>"
        ));
        match page {
            Page::Text(lines) => {
                let mut s = Vec::with_capacity(lines.len() * 80);
                s.extend_from_slice(b"BT\n/F1 10.5 Tf\n14 TL\n56 780 Td\n");
                for line in lines {
                    literal(line, &mut s);
                    s.extend_from_slice(b" Tj T*\n");
                }
                s.extend_from_slice(b"ET");
                w.stream_obj("", &s);
                // An empty placeholder keeps the numbering regular.
                w.dict_obj("null");
            }
            Page::Jpeg {
                data,
                width,
                height,
            } => {
                let s = format!("q\n{PAGE_W} 0 0 {PAGE_H} 0 0 cm\n/Im1 Do\nQ");
                w.stream_obj("", s.as_bytes());
                w.stream_obj(
                    &format!(
                        " /Type /XObject /Subtype /Image /Width {width} /Height {height} \
                         /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode"
                    ),
                    data,
                );
            }
        }
    }
    let info_obj = {
        let n = w.begin();
        let mut d = Vec::new();
        d.extend_from_slice(b"<< /Title ");
        literal(info.title, &mut d);
        d.extend_from_slice(b" /Author ");
        literal(info.author, &mut d);
        d.extend_from_slice(b" /Producer (paperboy-bench corpus) /CreationDate ");
        literal(info.date, &mut d);
        d.extend_from_slice(b" >>");
        w.buf.extend_from_slice(&d);
        w.end();
        n
    };
    let xref = w.buf.len();
    let size = w.offsets.len() + 1;
    let mut tail = format!("xref\n0 {size}\n0000000000 65535 f \n");
    for off in &w.offsets {
        tail.push_str(&format!("{off:010} 00000 n \n"));
    }
    tail.push_str(&format!(
        "trailer\n<< /Size {size} /Root 1 0 R /Info {info_obj} 0 R /ID [<{id}> <{id}>] >>\n\
         startxref\n{xref}\n%%EOF\n",
        id = info.id
    ));
    w.buf.extend_from_slice(tail.as_bytes());
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xref_offsets_point_at_objects() {
        let pdf = write(
            &[
                Page::Text(vec!["Hello (world)".into(), "second line".into()]),
                Page::Text(vec!["page two".into()]),
            ],
            &Info {
                title: "T",
                author: "A",
                date: "D:20240101000000",
                id: "00ff",
            },
        );
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4"));
        assert!(text.ends_with("%%EOF\n"));
        assert!(text.contains("(Hello \\(world\\)) Tj"));
        assert!(text.contains("/Count 2"));
        let start: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[start..].starts_with(b"xref\n"));
        // Every in-use xref entry points at "N 0 obj".
        let table = String::from_utf8(pdf[start..].to_vec()).unwrap();
        let entries: Vec<&str> = table
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .collect();
        assert_eq!(entries.len(), 3 + 3 * 2 + 1);
        for (i, line) in entries.iter().enumerate() {
            let off: usize = line[..10].parse().unwrap();
            let want = format!("{} 0 obj", i + 1);
            assert!(pdf[off..].starts_with(want.as_bytes()), "object {}", i + 1);
        }
    }
}
