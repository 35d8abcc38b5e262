//! Thumbnails: the one function both `consume` and `thumbnails` use. Blocking and CPU-heavy:
//! call from `spawn_blocking`.
//!
//! - PDF: the first page rendered with hayro (pure Rust) at twice the target width on white,
//!   then scaled down (smoother than rendering small).
//! - Images: decoded with `image` (first frame of a GIF/TIFF; JPEG EXIF orientation applied).
//! - Text: like paperless, the text is drawn with a font: we lay out the first lines in Courier
//!   on an A4 page of a small generated PDF (lopdf) and render that with hayro (its standard-14
//!   fonts are built in), so there is no font file or text rasterizer to ship.
//!
//! The result is at most `max_width` pixels wide (never upscaled), lossy WebP (quality 85)
//! through the `webp` crate (`image` only writes lossless WebP).

use std::io::Cursor;

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::Pdf;
use hayro::hayro_syntax::page::Page;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::vello_cpu::peniko::ImageAlphaType;
use hayro::{PixmapSettings, RenderCache, RenderSettings};
use image::{DynamicImage, ImageDecoder, ImageFormat, RgbImage};

use super::consume::detect::FileType;

/// WebP quality of thumbnails (paperless uses 85 through ImageMagick/vips).
pub const WEBP_QUALITY: f32 = 85.0;
/// Longest side a page is rendered at before it is scaled down (hayro's pixmaps are u16).
const MAX_RENDER_SIDE: f32 = 8000.0;
/// Lines and columns of a text thumbnail page.
const TEXT_LINES: usize = 38;
const TEXT_COLUMNS: usize = 53;

/// A WebP thumbnail of `bytes` (of type `kind`), at most `max_width` pixels wide.
pub fn thumbnail(kind: FileType, bytes: &[u8], max_width: u32) -> Result<Vec<u8>, String> {
    let max_width = max_width.max(1);
    let image = match kind {
        FileType::Pdf => render_first_page(bytes.to_vec(), max_width.saturating_mul(2))?,
        FileType::Text => {
            let text = String::from_utf8_lossy(bytes);
            render_first_page(text_page_pdf(&text)?, max_width.saturating_mul(2))?
        }
        FileType::Png | FileType::Jpeg | FileType::Tiff | FileType::Webp | FileType::Gif => {
            decode_image(kind, bytes)?
        }
    };
    Ok(encode_webp(&shrink(image, max_width)))
}

/// A stand-in thumbnail: "no preview" and `label`, drawn like a text file.
pub fn placeholder(label: &str, max_width: u32) -> Result<Vec<u8>, String> {
    let text = format!("\n\n      (no preview)\n\n{label}");
    let page = render_first_page(text_page_pdf(&text)?, max_width.max(1).saturating_mul(2))?;
    Ok(encode_webp(&shrink(page, max_width.max(1))))
}

/// Scales down to `max_width` (keeping the aspect ratio), never up.
fn shrink(image: RgbImage, max_width: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    if w <= max_width {
        return image;
    }
    let new_h = ((h as f64) * (max_width as f64) / (w as f64))
        .round()
        .max(1.0) as u32;
    image::imageops::resize(
        &image,
        max_width,
        new_h,
        image::imageops::FilterType::Triangle,
    )
}

fn encode_webp(image: &RgbImage) -> Vec<u8> {
    let (w, h) = image.dimensions();
    webp::Encoder::from_rgb(image.as_raw(), w, h)
        .encode(WEBP_QUALITY)
        .to_vec()
}

/// Opens a PDF for rendering; the error says what is wrong with it.
pub fn load_pdf(pdf: Vec<u8>) -> Result<Pdf, String> {
    Pdf::new(pdf).map_err(|e| match e {
        hayro::hayro_syntax::LoadPdfError::Decryption(d) => {
            format!("cannot render the PDF: it is encrypted ({d:?})")
        }
        hayro::hayro_syntax::LoadPdfError::Invalid => {
            "cannot render the PDF: it is damaged or not a PDF".to_string()
        }
    })
}

/// The first page of a PDF, `width` pixels wide (within hayro's limits), on white.
fn render_first_page(pdf: Vec<u8>, width: u32) -> Result<RgbImage, String> {
    let pdf = load_pdf(pdf)?;
    let pages = pdf.pages();
    let page = pages
        .first()
        .ok_or_else(|| "cannot render the PDF: it has no pages".to_string())?;
    let (pw, _) = page_size(page, 1)?;
    render_scaled(page, width as f32 / pw)
}

/// Hands pages `1..=limit` (every page for `limit` 0) of `pdf` to `each(index, count, page)`
/// in order; `each` returns false to stop early. Returns the number of pages handed over.
pub fn for_each_page(
    pdf: Vec<u8>,
    limit: usize,
    mut each: impl FnMut(usize, usize, &Page<'_>) -> Result<bool, String>,
) -> Result<usize, String> {
    let pdf = load_pdf(pdf)?;
    let pages = pdf.pages();
    let count = if limit == 0 {
        pages.len()
    } else {
        pages.len().min(limit)
    };
    for (i, page) in pages.iter().take(count).enumerate() {
        if !each(i, count, page)? {
            return Ok(i + 1);
        }
    }
    Ok(count)
}

/// Page `number` (1-based, for messages) at `dpi`, or at the resolution that keeps it within
/// `max_pixels` (0: no limit); with its size in points.
pub fn render_page(
    page: &Page<'_>,
    number: usize,
    dpi: u32,
    max_pixels: u64,
) -> Result<(RgbImage, (f32, f32)), String> {
    let (pw, ph) = page_size(page, number)?;
    // PDF user space is in points: 72 per inch.
    let mut scale = dpi as f32 / 72.0;
    let pixels = (pw * scale) as f64 * (ph * scale) as f64;
    if max_pixels > 0 && pixels > max_pixels as f64 {
        scale *= (max_pixels as f64 / pixels).sqrt() as f32;
    }
    Ok((render_scaled(page, scale)?, (pw, ph)))
}

/// Width and height of page `number` in points (rotation applied); an error for an empty page.
pub fn page_size(page: &Page<'_>, number: usize) -> Result<(f32, f32), String> {
    let (pw, ph) = page.render_dimensions();
    if !(pw > 0.0 && ph > 0.0) {
        return Err(format!(
            "cannot render the PDF: its page {number} is {pw}×{ph}"
        ));
    }
    Ok((pw, ph))
}

/// Width and height an image file declares (read from its header, nothing decoded).
pub fn image_dimensions(kind: FileType, bytes: &[u8]) -> Result<(u32, u32), String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes));
    reader.set_format(image_format(kind));
    reader
        .into_dimensions()
        .map_err(|e| format!("cannot read the {} image: {e}", kind.mime()))
}

/// [`decode_image`], refusing (before decoding) an image of more than `max_pixels` pixels
/// (0: no limit), and never allocating more than the limit allows (a decompression bomb whose
/// header lies fails in the decoder).
pub fn decode_image_limited(
    kind: FileType,
    bytes: &[u8],
    max_pixels: u64,
) -> Result<RgbImage, String> {
    if max_pixels > 0 {
        let (w, h) = image_dimensions(kind, bytes)?;
        within_pixel_limit(kind, w, h, max_pixels)?;
    }
    decode_image(kind, bytes)
}

/// An error when a `w`×`h` image is more than `max_pixels` pixels (0: no limit).
pub fn within_pixel_limit(kind: FileType, w: u32, h: u32, max_pixels: u64) -> Result<(), String> {
    let pixels = u64::from(w) * u64::from(h);
    if max_pixels > 0 && pixels > max_pixels {
        return Err(format!(
            "the {} image is {w}×{h} = {pixels} pixels, more than the limit of {max_pixels} \
             ({}; 0 disables it)",
            kind.mime(),
            paperboy_shared::config::names::OCR_MAX_IMAGE_PIXELS
        ));
    }
    Ok(())
}

fn image_format(kind: FileType) -> ImageFormat {
    match kind {
        FileType::Png => ImageFormat::Png,
        FileType::Jpeg => ImageFormat::Jpeg,
        FileType::Tiff => ImageFormat::Tiff,
        FileType::Webp => ImageFormat::WebP,
        FileType::Gif => ImageFormat::Gif,
        FileType::Pdf | FileType::Text => unreachable!("not an image type"),
    }
}

/// One page at `scale` pixels per point (capped at hayro's largest pixmap), flattened on white.
/// A cache per page: hayro's cache cannot be cleared and would grow with every page.
fn render_scaled<'a>(page: &'a Page<'a>, scale: f32) -> Result<RgbImage, String> {
    let (pw, ph) = page.render_dimensions();
    let scale = scale.min(MAX_RENDER_SIDE / pw).min(MAX_RENDER_SIDE / ph);
    let cache = RenderCache::new();
    let pixmap = hayro::render(
        page,
        &cache,
        &InterpreterSettings::default(),
        &RenderSettings::default(),
        &PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    let (w, h) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
    if w == 0 || h == 0 {
        return Err("cannot render the PDF: the page rendered empty".into());
    }
    let rgba = pixmap.take_rgba8(ImageAlphaType::Alpha);
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| {
            // On a white background every pixel is opaque; blend anyway in case.
            let a = u16::from(p[3]);
            let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
            [blend(p[0]), blend(p[1]), blend(p[2])]
        })
        .collect();
    RgbImage::from_raw(w, h, rgb).ok_or_else(|| "cannot render the PDF: bad pixmap size".into())
}

/// An image file decoded to RGB on white (first frame; JPEG EXIF orientation applied).
pub fn decode_image(kind: FileType, bytes: &[u8]) -> Result<RgbImage, String> {
    let format = match kind {
        FileType::Png => ImageFormat::Png,
        FileType::Jpeg => ImageFormat::Jpeg,
        FileType::Tiff => ImageFormat::Tiff,
        FileType::Webp => ImageFormat::WebP,
        FileType::Gif => ImageFormat::Gif,
        FileType::Pdf | FileType::Text => unreachable!("not an image type"),
    };
    let mut reader = image::ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode the {} image: {e}", kind.mime()))?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("cannot decode the {} image: {e}", kind.mime()))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(flatten_on_white(img))
}

/// RGB on white (transparent pixels of a PNG/GIF become white, not black).
fn flatten_on_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(src[3]);
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        *dst = image::Rgb([blend(src[0]), blend(src[1]), blend(src[2])]);
    }
    out
}

/// A one-page A4 PDF showing the first lines of `text` in Courier 16 pt (long lines wrapped,
/// characters outside WinAnsi shown as `?`).
fn text_page_pdf(text: &str) -> Result<Vec<u8>, String> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};

    let mut lines = Vec::new();
    'outer: for line in text.lines() {
        let chars: Vec<char> = line
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        if chars.is_empty() {
            lines.push(Vec::new());
        }
        for chunk in chars.chunks(TEXT_COLUMNS) {
            lines.push(chunk.iter().map(|c| win_ansi(*c)).collect::<Vec<u8>>());
            if lines.len() >= TEXT_LINES {
                break 'outer;
            }
        }
        if lines.len() >= TEXT_LINES {
            break;
        }
    }

    let mut ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 16.into()]),
        Operation::new("TL", vec![20.into()]),
        Operation::new("Td", vec![40.into(), 790.into()]),
    ];
    for line in lines {
        ops.push(Operation::new("Tj", vec![Object::string_literal(line)]));
        ops.push(Operation::new("T*", vec![]));
    }
    ops.push(Operation::new("ET", vec![]));

    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Courier",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let content = Content { operations: ops }
        .encode()
        .map_err(|e| format!("cannot lay out the text thumbnail: {e}"))?;
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out)
        .map_err(|e| format!("cannot write the text thumbnail page: {e}"))?;
    Ok(out)
}

/// WinAnsi (≈ Latin-1 for U+00A0..U+00FF) byte of a character, `?` when it has none.
fn win_ansi(c: char) -> u8 {
    match c as u32 {
        0x20..=0x7E | 0xA0..=0xFF => c as u32 as u8,
        0x20AC => 0x80, // €
        _ => b'?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(webp: &[u8]) -> DynamicImage {
        assert_eq!(&webp[..4], b"RIFF");
        assert_eq!(&webp[8..12], b"WEBP");
        image::load_from_memory_with_format(webp, ImageFormat::WebP).unwrap()
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn images_are_scaled_down_to_the_width_never_up() {
        let t = thumbnail(FileType::Png, &png(1200, 600), 500).unwrap();
        let img = decode(&t);
        assert_eq!((img.width(), img.height()), (500, 250));
        let t = thumbnail(FileType::Png, &png(100, 80), 500).unwrap();
        let img = decode(&t);
        assert_eq!((img.width(), img.height()), (100, 80));
    }

    #[test]
    fn every_image_type_decodes() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(900, 300, |x, _| {
            image::Rgba([200, 10, 10, if x < 450 { 255 } else { 0 }])
        }));
        for (kind, format) in [
            (FileType::Png, ImageFormat::Png),
            (FileType::Tiff, ImageFormat::Tiff),
            (FileType::Gif, ImageFormat::Gif),
            (FileType::Webp, ImageFormat::WebP),
        ] {
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, format).unwrap();
            let bytes = out.into_inner();
            assert_eq!(crate::jobs::consume::detect::detect(&bytes), Some(kind));
            let t = decode(&thumbnail(kind, &bytes, 500).unwrap()).to_rgb8();
            assert_eq!(t.dimensions(), (500, 167), "{kind:?}");
            // Opaque red stays red, transparent becomes white (not black).
            let left = t.get_pixel(100, 80);
            let right = t.get_pixel(400, 80);
            assert!(left[0] > 150 && left[1] < 80, "{kind:?} left {left:?}");
            assert!(right[0] > 200 && right[1] > 200, "{kind:?} right {right:?}");
        }
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img.to_rgb8())
            .write_to(&mut out, ImageFormat::Jpeg)
            .unwrap();
        let t = decode(&thumbnail(FileType::Jpeg, &out.into_inner(), 500).unwrap());
        assert_eq!(t.width(), 500);
    }

    #[test]
    fn text_is_rendered_on_an_a4_page() {
        let t = thumbnail(
            FileType::Text,
            "Meeting notes\nGrüße – €5\n".as_bytes(),
            500,
        )
        .unwrap();
        let img = decode(&t).to_rgb8();
        assert_eq!(img.width(), 500);
        assert!((700..=710).contains(&img.height()), "{}", img.height());
        // Some ink near the top left, white elsewhere.
        let dark = img.pixels().filter(|p| p[0] < 160).count();
        assert!(dark > 100, "text was drawn ({dark} dark pixels)");
        assert!(img.get_pixel(499, 703)[0] > 200);
    }

    #[test]
    fn placeholder_is_a_page_sized_webp() {
        let img = decode(&placeholder("scan.pdf\n(application/pdf)", 500).unwrap());
        assert_eq!(img.width(), 500);
        assert!(img.height() > 600);
    }

    #[test]
    fn damaged_input_is_an_error() {
        let err = thumbnail(FileType::Pdf, b"%PDF-1.4 nothing", 500).unwrap_err();
        assert!(err.contains("cannot render the PDF"), "{err}");
        let err = thumbnail(FileType::Png, b"\x89PNG\r\n\x1a\nbroken", 500).unwrap_err();
        assert!(err.contains("image/png"), "{err}");
    }
}
