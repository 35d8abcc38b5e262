//! The archive PDF: each page is its image drawn full page with an invisible text layer on
//! top (text render mode 3) placed word by word on the OCR boxes, identified as PDF/A-2b.
//! Pure and blocking: call from `spawn_blocking`.
//!
//! - Text: a Type0 font (Identity-H) over a CIDFontType2 whose every CID draws glyph 1 of
//!   tesseract's 572-byte "GlyphLessFont" (`assets/glyphless.ttf`, copied from Debian's
//!   `tesseract-ocr` `tessdata/pdf.ttf`, Apache-2.0): an empty glyph 500/1000 wide. A CID is
//!   the UTF-16 code unit of the character (outside the BMP: U+FFFD), and the ToUnicode CMap
//!   maps every CID to itself, so copy, search and `pdftotext` give the OCR text back, umlauts
//!   included. Each word but the last of a line carries its trailing space, scaled (`Tz`) to
//!   reach the next word, so extractors see the spaces and do not glue words.
//! - PDF/A-2b identification: an XMP metadata stream (`pdfaid:part` 2, `conformance` B, title
//!   and dates equal to the Info dictionary's), an sRGB OutputIntent (`GTS_PDFA1`) with the ICC
//!   profile `assets/sRGB.icc` (Debian `icc-profiles-free`, zlib licence; ICC v2 display class),
//!   a file ID, the binary header comment, every font embedded, no transparency, no
//!   encryption. Not validated with veraPDF here (none installed): the identification and the
//!   structure (`qpdf --check`) are tested.

use pdf_writer::types::{
    CidFontType, FontFlags, OutputIntentSubtype, SystemInfo, TextRenderingMode,
};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::jobs::ocr::OcrPage;

/// tesseract's glyphless font (one empty glyph, 500 units wide).
pub const GLYPHLESS_TTF: &[u8] = include_bytes!("../../../assets/glyphless.ttf");
/// sRGB IEC61966-2.1 (ICC v2), from Debian's icc-profiles-free.
pub const SRGB_ICC: &[u8] = include_bytes!("../../../assets/sRGB.icc");
/// Advance of every glyph of the glyphless font, in 1/1000 of the font size.
const GLYPH_WIDTH: f32 = 500.0;

/// How the bytes of a page image are encoded (what the image XObject's filter says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A JPEG file (`DCTDecode`).
    Jpeg,
    /// zlib data of rows each led by a PNG filter byte: a PNG file's IDAT data, or a PDF
    /// image with `FlateDecode` and a PNG predictor (`/Predictor 15`).
    PngRows,
    /// zlib data of plain rows (`FlateDecode` without a predictor).
    Flate,
}

/// The colour space of a page image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Color {
    Gray,
    Rgb,
    /// A palette of RGB triplets (`Indexed` over `DeviceRGB`).
    Indexed(Vec<u8>),
}

impl Color {
    /// Components per pixel in the image data.
    pub fn components(&self) -> u8 {
        match self {
            Color::Rgb => 3,
            Color::Gray | Color::Indexed(_) => 1,
        }
    }
}

/// A page image, encoded as it goes into the file (an original's bytes kept as they are, or
/// a rendered page as JPEG).
#[derive(Debug, Clone)]
pub struct Image {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Bits per component: 8, or 1/2/4 for grey and palette images.
    pub bits: u8,
    pub color: Color,
    pub encoding: Encoding,
}

/// One page of the archive file.
#[derive(Debug, Clone)]
pub struct Page {
    pub image: Image,
    /// Page size in points (the image fills it).
    pub width_pt: f32,
    pub height_pt: f32,
    /// The words to lay over it (boxes in pixels of an image of `ocr.width × ocr.height`).
    pub ocr: Option<OcrPage>,
}

/// What goes into the Info dictionary and the XMP packet.
#[derive(Debug, Clone)]
pub struct Meta {
    pub title: String,
    pub created: chrono::DateTime<chrono::Utc>,
}

fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// The ToUnicode CMap: every 2-byte code maps to the same UTF-16 code unit (surrogates left
/// out: they are never written).
pub fn to_unicode_cmap() -> Vec<u8> {
    let mut ranges = Vec::new();
    for hi in 0u32..=0xFF {
        if (0xD8..=0xDF).contains(&hi) {
            continue;
        }
        ranges.push(format!("<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>"));
    }
    let mut s = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    for chunk in ranges.chunks(100) {
        s.push_str(&format!("{} beginbfrange\n", chunk.len()));
        for r in chunk {
            s.push_str(r);
            s.push('\n');
        }
        s.push_str("endbfrange\n");
    }
    s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    s.into_bytes()
}

/// The 2-byte codes of `text` (UTF-16 code units; characters outside the BMP become U+FFFD).
fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 2);
    for c in text.chars() {
        let u = if (c as u32) <= 0xFFFF {
            c as u32 as u16
        } else {
            0xFFFD
        };
        out.extend_from_slice(&u.to_be_bytes());
    }
    out
}

fn pdf_date(t: &chrono::DateTime<chrono::Utc>) -> pdf_writer::Date {
    use chrono::{Datelike, Timelike};
    pdf_writer::Date::new(t.year().clamp(0, 9999) as u16)
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The XMP packet of a PDF/A-2b file.
pub fn xmp(meta: &Meta, producer: &str) -> Vec<u8> {
    let date = meta.created.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
<rdf:Description rdf:about=\"\" xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\" \
xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" \
xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\">\n\
<pdfaid:part>2</pdfaid:part>\n<pdfaid:conformance>B</pdfaid:conformance>\n\
<dc:format>application/pdf</dc:format>\n\
<dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>\n\
<xmp:CreateDate>{date}</xmp:CreateDate>\n<xmp:ModifyDate>{date}</xmp:ModifyDate>\n\
<xmp:MetadataDate>{date}</xmp:MetadataDate>\n<xmp:CreatorTool>{producer}</xmp:CreatorTool>\n\
<pdf:Producer>{producer}</pdf:Producer>\n\
</rdf:Description>\n</rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>",
        title = xml_escape(&meta.title),
    )
    .into_bytes()
}

/// Producer / CreatorTool of archive files.
pub fn producer() -> String {
    format!("paperboy {}", env!("CARGO_PKG_VERSION"))
}

/// The content stream of one page: the image, then the invisible words.
fn page_content(page: &Page, image: Name, font: Name) -> Vec<u8> {
    let mut c = Content::new();
    c.save_state();
    c.transform([page.width_pt, 0.0, 0.0, page.height_pt, 0.0, 0.0]);
    c.x_object(image);
    c.restore_state();
    if let Some(ocr) = page.ocr.as_ref().filter(|o| o.width > 0 && o.height > 0) {
        let sx = page.width_pt / ocr.width as f32;
        let sy = page.height_pt / ocr.height as f32;
        c.begin_text();
        c.set_text_rendering_mode(TextRenderingMode::Invisible);
        for line in ocr.lines() {
            // The line's box: words share its baseline (its bottom) and height.
            let top = line.iter().map(|w| w.top).min().unwrap_or(0);
            let bottom = line.iter().map(|w| w.top + w.height).max().unwrap_or(0);
            let size = ((bottom - top) as f32 * sy).max(1.0);
            let baseline = page.height_pt - bottom as f32 * sy;
            for (i, w) in line.iter().enumerate() {
                let next = line.get(i + 1);
                let mut text = w.text.clone();
                let span_px = match next {
                    Some(n) if n.left > w.left => {
                        text.push(' ');
                        n.left - w.left
                    }
                    _ => w.width,
                };
                let chars = text.chars().count().max(1) as f32;
                let natural = chars * GLYPH_WIDTH / 1000.0 * size;
                let target = (span_px as f32 * sx).max(0.1);
                c.set_font(font, size);
                c.set_horizontal_scaling(100.0 * target / natural);
                c.set_text_matrix([1.0, 0.0, 0.0, 1.0, w.left as f32 * sx, baseline]);
                c.show(Str(&encode(&text)));
            }
        }
        c.end_text();
    }
    c.finish().into_vec()
}

/// The archive PDF of `pages`.
pub fn write(pages: &[Page], meta: &Meta) -> Vec<u8> {
    let mut alloc = Ref::new(1);
    let mut next = || alloc.bump();
    let catalog_id = next();
    let pages_id = next();
    let info_id = next();
    let xmp_id = next();
    let icc_id = next();
    let type0_id = next();
    let cid_id = next();
    let descriptor_id = next();
    let font_file_id = next();
    let cmap_id = next();
    let gid_map_id = next();
    let page_ids: Vec<(Ref, Ref, Ref)> = pages.iter().map(|_| (next(), next(), next())).collect();

    let mut pdf = Pdf::new();
    pdf.set_version(1, 7);
    let producer = producer();

    // Catalog: pages, XMP, the sRGB output intent.
    {
        let mut cat = pdf.catalog(catalog_id);
        cat.pages(pages_id);
        cat.metadata(xmp_id);
        let mut intents = cat.output_intents();
        let mut intent = intents.push();
        intent
            .subtype(OutputIntentSubtype::PDFA)
            .output_condition_identifier(TextStr("sRGB IEC61966-2.1"))
            .info(TextStr("sRGB IEC61966-2.1"))
            .dest_output_profile(icc_id);
        intent.finish();
        intents.finish();
    }
    {
        let mut info = pdf.document_info(info_id);
        info.title(TextStr(&meta.title));
        info.producer(TextStr(&producer));
        info.creator(TextStr(&producer));
        info.creation_date(pdf_date(&meta.created));
        info.modified_date(pdf_date(&meta.created));
    }
    let xmp = xmp(meta, &producer);
    pdf.metadata(xmp_id, &xmp);
    let icc = deflate(SRGB_ICC);
    pdf.icc_profile(icc_id, &icc)
        .n(3)
        .range([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
        .filter(Filter::FlateDecode);

    // The glyphless font.
    let font_name = Name(b"GlyphLessFont");
    pdf.type0_font(type0_id)
        .base_font(font_name)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_id)
        .to_unicode(cmap_id);
    pdf.cid_font(cid_id)
        .subtype(CidFontType::Type2)
        .base_font(font_name)
        .system_info(SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        })
        .font_descriptor(descriptor_id)
        .default_width(GLYPH_WIDTH)
        .cid_to_gid_map_stream(gid_map_id);
    pdf.font_descriptor(descriptor_id)
        .name(font_name)
        .flags(FontFlags::FIXED_PITCH | FontFlags::SYMBOLIC)
        .bbox(Rect::new(0.0, 0.0, GLYPH_WIDTH, 1000.0))
        .italic_angle(0.0)
        .ascent(1000.0)
        .descent(-1.0)
        .cap_height(1000.0)
        .stem_v(80.0)
        .font_file2(font_file_id);
    let font_file = deflate(GLYPHLESS_TTF);
    pdf.stream(font_file_id, &font_file)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), GLYPHLESS_TTF.len() as i32);
    let cmap = deflate(&to_unicode_cmap());
    pdf.stream(cmap_id, &cmap).filter(Filter::FlateDecode);
    // Every CID → glyph 1.
    let gid_map: Vec<u8> = std::iter::repeat_n([0u8, 1u8], 65536).flatten().collect();
    let gid_map = deflate(&gid_map);
    pdf.stream(gid_map_id, &gid_map).filter(Filter::FlateDecode);

    pdf.pages(pages_id)
        .kids(page_ids.iter().map(|(p, _, _)| *p))
        .count(pages.len() as i32);
    for (page, (page_id, image_id, content_id)) in pages.iter().zip(&page_ids) {
        let image_name = Name(b"Im0");
        let font = Name(b"F0");
        {
            let mut p = pdf.page(*page_id);
            p.parent(pages_id)
                .media_box(Rect::new(0.0, 0.0, page.width_pt, page.height_pt))
                .contents(*content_id);
            let mut res = p.resources();
            res.x_objects().pair(image_name, *image_id);
            res.fonts().pair(font, type0_id);
        }
        write_image(&mut pdf, *image_id, &page.image);
        let content = deflate(&page_content(page, image_name, font));
        pdf.stream(*content_id, &content)
            .filter(Filter::FlateDecode);
    }
    // A file ID (PDF/A): a digest of the content.
    let id = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(meta.title.as_bytes());
        h.update(meta.created.to_rfc3339().as_bytes());
        for p in pages {
            h.update(&p.image.data[..p.image.data.len().min(65536)]);
        }
        h.finalize()[..16].to_vec()
    };
    pdf.set_file_id((id.clone(), id));
    pdf.finish()
}

/// The image XObject of a page image.
fn write_image(pdf: &mut Pdf, id: Ref, image: &Image) {
    let mut img = pdf.image_xobject(id, &image.data);
    img.width(image.width as i32)
        .height(image.height as i32)
        .bits_per_component(i32::from(image.bits));
    match image.encoding {
        Encoding::Jpeg => {
            img.filter(Filter::DctDecode);
        }
        Encoding::Flate => {
            img.filter(Filter::FlateDecode);
        }
        Encoding::PngRows => {
            img.filter(Filter::FlateDecode);
            img.decode_parms()
                .predictor(pdf_writer::types::Predictor::PngOptimum)
                .colors(i32::from(image.color.components()))
                .bits_per_component(i32::from(image.bits))
                .columns(image.width as i32);
        }
    }
    match &image.color {
        Color::Gray => {
            img.color_space_name(Name(b"DeviceGray"));
        }
        Color::Rgb => {
            img.color_space_name(Name(b"DeviceRGB"));
        }
        Color::Indexed(palette) => {
            let entries = (palette.len() / 3).clamp(1, 256) as i32;
            img.color_space()
                .indexed(Name(b"DeviceRGB"), entries - 1, palette);
        }
    }
}

/// An existing PDF (born-digital: its pages kept as they are) marked PDF/A-2b: the XMP packet
/// and the sRGB output intent added to its catalog. Its fonts and colours are not converted
/// (paperless runs Ghostscript for that), so a PDF that breaks PDF/A rules in other ways only
/// carries the identification.
pub fn stamp_pdfa(original: &[u8], meta: &Meta) -> Result<Vec<u8>, String> {
    use lopdf::{Object, Stream, dictionary};
    let mut doc = lopdf::Document::load_mem(original)
        .map_err(|e| format!("cannot read the PDF to mark it PDF/A: {e}"))?;
    if doc.is_encrypted() || doc.was_encrypted() {
        return Err("the PDF is encrypted".into());
    }
    let producer = producer();
    let xmp_id = doc.add_object(Stream::new(
        dictionary! {"Type" => "Metadata", "Subtype" => "XML"},
        xmp(meta, &producer),
    ));
    let mut icc = Stream::new(dictionary! {"N" => 3}, SRGB_ICC.to_vec());
    let _ = icc.compress();
    let icc_id = doc.add_object(icc);
    let intent = dictionary! {
        "Type" => "OutputIntent",
        "S" => "GTS_PDFA1",
        "OutputConditionIdentifier" => Object::string_literal("sRGB IEC61966-2.1"),
        "Info" => Object::string_literal("sRGB IEC61966-2.1"),
        "DestOutputProfile" => icc_id,
    };
    let catalog = doc
        .catalog_mut()
        .map_err(|e| format!("the PDF has no catalog: {e}"))?;
    catalog.set("Metadata", xmp_id);
    catalog.set("OutputIntents", vec![Object::Dictionary(intent)]);
    if doc.version.as_str() < "1.4" {
        doc.version = "1.7".into();
    }
    let mut out = Vec::new();
    doc.save_to(&mut out)
        .map_err(|e| format!("cannot write the PDF/A copy: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::ocr::OcrWord;

    fn jpeg(w: u32, h: u32) -> Image {
        let img = image::GrayImage::from_pixel(w, h, image::Luma([255]));
        let mut data = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, 80)
            .encode_image(&img)
            .unwrap();
        Image {
            data,
            width: w,
            height: h,
            bits: 8,
            color: Color::Gray,
            encoding: Encoding::Jpeg,
        }
    }

    fn word(text: &str, left: u32, top: u32, width: u32, line: u32) -> OcrWord {
        OcrWord {
            text: text.into(),
            left,
            top,
            width,
            height: 40,
            line: (1, 1, line),
            conf: 95.0,
        }
    }

    fn sample() -> Vec<u8> {
        let ocr = OcrPage {
            width: 1240,
            height: 1754,
            words: vec![
                word("Grüße", 100, 100, 220, 1),
                word("aus", 335, 100, 120, 1),
                word("Köln", 100, 200, 200, 2),
            ],
        };
        let pages = vec![
            Page {
                image: jpeg(1240, 1754),
                width_pt: 595.0,
                height_pt: 842.0,
                ocr: Some(ocr),
            },
            Page {
                image: jpeg(620, 877),
                width_pt: 595.0,
                height_pt: 842.0,
                ocr: None,
            },
        ];
        write(
            &pages,
            &Meta {
                title: "Rechnung <Müller & Söhne>".into(),
                created: chrono::DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z")
                    .unwrap()
                    .into(),
            },
        )
    }

    #[test]
    fn the_archive_parses_back_with_its_text_font_and_pdfa_identification() {
        let bytes = sample();
        let doc = lopdf::Document::load_mem(&bytes).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
        let catalog = doc.catalog().unwrap();
        // XMP: pdfaid part 2, conformance B, the escaped title.
        let xmp_id = catalog.get(b"Metadata").unwrap().as_reference().unwrap();
        let xmp = doc.get_object(xmp_id).unwrap().as_stream().unwrap();
        let xmp = String::from_utf8(xmp.content.clone()).unwrap();
        assert!(xmp.contains("<pdfaid:part>2</pdfaid:part>"), "{xmp}");
        assert!(xmp.contains("<pdfaid:conformance>B</pdfaid:conformance>"));
        assert!(xmp.contains("Rechnung &lt;Müller &amp; Söhne&gt;"));
        // The sRGB output intent with its ICC profile.
        let intents = catalog.get(b"OutputIntents").unwrap().as_array().unwrap();
        let intent = intents[0].as_dict().unwrap();
        assert_eq!(intent.get(b"S").unwrap().as_name().unwrap(), b"GTS_PDFA1");
        let icc = intent
            .get(b"DestOutputProfile")
            .unwrap()
            .as_reference()
            .unwrap();
        let mut icc = doc.get_object(icc).unwrap().as_stream().unwrap().clone();
        icc.decompress().unwrap();
        assert_eq!(icc.content, SRGB_ICC);
        // The page's font: Type0 with an embedded font file and a ToUnicode CMap.
        let page1 = *doc.get_pages().get(&1).unwrap();
        let fonts = doc.get_page_fonts(page1).unwrap();
        let font = fonts.values().next().unwrap();
        assert_eq!(font.get(b"Subtype").unwrap().as_name().unwrap(), b"Type0");
        let to_unicode = font.get(b"ToUnicode").unwrap().as_reference().unwrap();
        let mut cmap = doc
            .get_object(to_unicode)
            .unwrap()
            .as_stream()
            .unwrap()
            .clone();
        cmap.decompress().unwrap();
        let cmap = String::from_utf8(cmap.content).unwrap();
        assert!(cmap.contains("<0000> <FFFF>") && cmap.contains("<0000> <00FF> <0000>"));
        let descendants = font.get(b"DescendantFonts").unwrap().as_array().unwrap();
        let cid = doc
            .get_dictionary(descendants[0].as_reference().unwrap())
            .unwrap();
        let descriptor = doc
            .get_dictionary(cid.get(b"FontDescriptor").unwrap().as_reference().unwrap())
            .unwrap();
        assert!(descriptor.get(b"FontFile2").is_ok());
        // The text layer: invisible, the words as UTF-16 with their spaces.
        let content = String::from_utf8_lossy(&doc.get_page_content(page1)).into_owned();
        assert!(content.contains("3 Tr"), "{content}");
        let ops = lopdf::content::Content::decode(&doc.get_page_content(page1)).unwrap();
        let shown: Vec<String> = ops
            .operations
            .iter()
            .filter(|o| o.operator == "Tj")
            .map(|o| {
                let b = o.operands[0].as_str().unwrap();
                let units: Vec<u16> = b
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).unwrap()
            })
            .collect();
        assert_eq!(shown, ["Grüße ", "aus", "Köln"]);
        // Info and XMP agree on the title.
        let info = doc.trailer.get(b"Info").unwrap().as_reference().unwrap();
        let info = doc.get_dictionary(info).unwrap();
        assert!(info.get(b"Title").is_ok() && info.get(b"Producer").is_ok());
        assert!(doc.trailer.get(b"ID").is_ok(), "a file ID");
    }

    #[test]
    fn pdftotext_reads_umlauts_and_spaces_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.pdf");
        std::fs::write(&path, sample()).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args(["-enc", "UTF-8"])
            .arg(&path)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils; scripts/services.sh installs it)");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Grüße aus"), "{text:?}");
        assert!(text.contains("Köln"), "{text:?}");
    }

    #[test]
    fn non_bmp_characters_become_the_replacement_character() {
        assert_eq!(encode("a😀"), vec![0, b'a', 0xFF, 0xFD]);
        assert_eq!(encode("ü"), vec![0, 0xFC]);
    }

    #[test]
    fn a_born_digital_pdf_is_stamped_keeping_its_pages() {
        let archive = sample();
        let meta = Meta {
            title: "x".into(),
            created: chrono::Utc::now(),
        };
        // Stamping any PDF (here: our own output) keeps its pages and adds the intent.
        let stamped = stamp_pdfa(&archive, &meta).unwrap();
        let doc = lopdf::Document::load_mem(&stamped).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
        assert!(doc.catalog().unwrap().get(b"OutputIntents").is_ok());
        assert!(stamp_pdfa(b"%PDF-1.4 broken", &meta).is_err());
    }
}
