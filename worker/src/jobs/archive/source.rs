//! Page images taken from the original as they are, without decoding or re-encoding them:
//! what keeps archive files small and the archiver fast (paperless's OCRmyPDF keeps the
//! images of a scanned PDF too, and img2pdf embeds PNG and JPEG data as is).
//!
//! - [`jpeg`]: a baseline/progressive grey or RGB JPEG without an EXIF rotation goes into the
//!   PDF byte for byte (`DCTDecode`).
//! - [`png`]: a non-interlaced grey, RGB or palette PNG without transparency goes in as its
//!   IDAT data (`FlateDecode` with the PNG predictor, as img2pdf does).
//! - [`pdf_page`]: a page of a scanned PDF that only draws one grey/RGB image over the whole
//!   page (`DCTDecode`, or `FlateDecode` with or without a PNG predictor) keeps that image.
//!
//! The OCR engine reads the same pixels: [`ocr_input`] writes the image as a file tesseract
//! reads (the JPEG as is, the PNG rows as a PNG, plain rows as PNM), at the image's own
//! resolution (OCRmyPDF too OCRs a scanned page at its image's resolution). Anything else is
//! decoded or rendered by the caller.
//!
//! Pure and blocking.

use std::path::{Path, PathBuf};

use hayro::hayro_syntax::Filter;
use hayro::hayro_syntax::content::ops::TypedInstruction;
use hayro::hayro_syntax::object::{Array, Dict, Name};
use hayro::hayro_syntax::page::{Page, Rotation};

use super::pdf::{Color, Encoding, Image};

/// A JPEG that can go into the PDF as is (8-bit grey or RGB, not CMYK, no EXIF rotation to
/// apply); its density in dots per inch when the JFIF header gives one.
pub fn jpeg(bytes: &[u8]) -> Option<(Image, Option<f32>)> {
    use image::ImageDecoder;
    let mut dec = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(bytes)).ok()?;
    let color = match dec.color_type() {
        image::ColorType::L8 => Color::Gray,
        image::ColorType::Rgb8 => Color::Rgb,
        _ => return None,
    };
    if !matches!(
        dec.orientation(),
        Ok(image::metadata::Orientation::NoTransforms)
    ) {
        return None;
    }
    let (width, height) = dec.dimensions();
    let image = Image {
        data: bytes.to_vec(),
        width,
        height,
        bits: 8,
        color,
        encoding: Encoding::Jpeg,
    };
    Some((image, jfif_dpi(bytes)))
}

/// The density of a JFIF APP0 segment (units 1: per inch, 2: per cm).
fn jfif_dpi(bytes: &[u8]) -> Option<f32> {
    let app0 = bytes.get(2..20)?;
    if app0[0] != 0xFF || app0[1] != 0xE0 || &app0[4..9] != b"JFIF\0" {
        return None;
    }
    let x = f32::from(u16::from_be_bytes([app0[12], app0[13]]));
    let dpi = match app0[11] {
        1 => x,
        2 => x * 2.54,
        _ => return None,
    };
    (dpi >= 1.0).then_some(dpi)
}

/// A PNG whose IDAT data can go into the PDF as is: bit depth 8 (1, 2, 4 also for grey and
/// palette images), grey / RGB / palette, not interlaced, no transparency. Its density in
/// dots per inch when a `pHYs` chunk gives one.
pub fn png(bytes: &[u8]) -> Option<(Image, Option<f32>)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut rest = bytes.strip_prefix(SIGNATURE)?;
    let (mut header, mut palette, mut dpi) = (None, None, None);
    let mut data = Vec::new();
    while rest.len() >= 12 {
        let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
        let kind = &rest[4..8];
        let body = rest.get(8..8 + len)?;
        rest = rest.get(12 + len..)?;
        match kind {
            b"IHDR" if body.len() == 13 => header = Some(body.to_vec()),
            b"PLTE" => palette = Some(body.to_vec()),
            b"IDAT" => data.extend_from_slice(body),
            b"tRNS" => return None,
            b"pHYs" if body.len() == 9 && body[8] == 1 => {
                let per_metre = u32::from_be_bytes(body[..4].try_into().ok()?);
                dpi = Some(per_metre as f32 * 0.0254).filter(|d| *d >= 1.0);
            }
            b"IEND" => break,
            _ => {}
        }
    }
    let h = header?;
    let width = u32::from_be_bytes(h[..4].try_into().ok()?);
    let height = u32::from_be_bytes(h[4..8].try_into().ok()?);
    let (bits, color_type, interlace) = (h[8], h[9], h[12]);
    if interlace != 0 || width == 0 || height == 0 || data.is_empty() {
        return None;
    }
    let color = match (color_type, bits) {
        (0, 1 | 2 | 4 | 8) => Color::Gray,
        (2, 8) => Color::Rgb,
        (3, 1 | 2 | 4 | 8) => Color::Indexed(palette.filter(|p| p.len() >= 3)?),
        _ => return None,
    };
    let image = Image {
        data,
        width,
        height,
        bits,
        color,
        encoding: Encoding::PngRows,
    };
    Some((image, dpi))
}

/// How far (in points) the image may miss the page's edges and still count as covering it.
const COVER_SLACK: f64 = 1.0;

/// The one image a scanned PDF page consists of (`q`, `cm`, `Do`, `Q` only; the image drawn
/// upright over the whole page, which is not rotated), if it can be kept as it is. `None`:
/// render the page instead.
pub fn pdf_page(page: &Page<'_>, max_pixels: u64) -> Option<Image> {
    if !matches!(page.rotation(), Rotation::None) {
        return None;
    }
    let mut stack = Vec::new();
    let mut ctm = [1.0f64, 0.0, 0.0, 1.0, 0.0, 0.0];
    let mut drawn = None;
    let mut ops = page.typed_operations();
    while let Some(op) = ops.next() {
        match op {
            TypedInstruction::SaveState(_) => stack.push(ctm),
            TypedInstruction::RestoreState(_) => ctm = stack.pop()?,
            TypedInstruction::Transform(t) => {
                let m = [t.0, t.1, t.2, t.3, t.4, t.5].map(|n| n.as_f64());
                ctm = multiply(m, ctm);
            }
            TypedInstruction::XObject(x) if drawn.is_none() => drawn = Some((x.0.clone(), ctm)),
            _ => return None,
        }
    }
    let (name, [a, b, c, d, e, f]) = drawn?;
    let crop = page.intersected_crop_box();
    let near = |x: f64, y: f64| (x - y).abs() <= COVER_SLACK;
    if !(b == 0.0
        && c == 0.0
        && near(a, crop.width())
        && near(d, crop.height())
        && near(e, crop.x0)
        && near(f, crop.y0))
    {
        return None;
    }
    let stream = page.resources().get_x_object(&name)?;
    let dict = stream.dict();
    let is = |key: &str, value: &[u8]| dict.get::<Name<'_>>(key).is_some_and(|n| &*n == value);
    if !is("Subtype", b"Image")
        || dict.get::<bool>("ImageMask").unwrap_or(false)
        || ["SMask", "Mask", "Decode", "F", "Alternates", "OC"]
            .iter()
            .any(|k| dict.contains_key(k))
    {
        return None;
    }
    let width = dict.get::<u32>("Width")?;
    let height = dict.get::<u32>("Height")?;
    if width == 0 || height == 0 {
        return None;
    }
    if max_pixels > 0 && u64::from(width) * u64::from(height) > max_pixels {
        return None;
    }
    let color = if is("ColorSpace", b"DeviceGray") {
        Color::Gray
    } else if is("ColorSpace", b"DeviceRGB") {
        Color::Rgb
    } else {
        return None;
    };
    if dict.get::<u16>("BitsPerComponent")? != 8 {
        return None;
    }
    let filters = stream.filters();
    let [filter] = filters.as_slice() else {
        return None;
    };
    let params = dict
        .get::<Dict<'_>>("DecodeParms")
        .or_else(|| {
            dict.get::<Array<'_>>("DecodeParms")
                .and_then(|a| a.iter::<Dict<'_>>().next())
        })
        .unwrap_or_default();
    let data = stream.raw_data().into_owned();
    let encoding = match filter {
        Filter::DctDecode => {
            // The JPEG's own components must agree with the colour space (no CMYK, no
            // Adobe-inverted data).
            let (jpeg, _) = jpeg(&data)?;
            if jpeg.color != color || (jpeg.width, jpeg.height) != (width, height) {
                return None;
            }
            Encoding::Jpeg
        }
        Filter::FlateDecode => {
            let predictor = params.get::<u16>("Predictor").unwrap_or(1);
            let colors = params.get::<u16>("Colors").unwrap_or(1);
            let bits = params.get::<u16>("BitsPerComponent").unwrap_or(8);
            let columns = params.get::<u32>("Columns").unwrap_or(1);
            match predictor {
                1 => Encoding::Flate,
                10..=15
                    if colors == u16::from(color.components()) && bits == 8 && columns == width =>
                {
                    Encoding::PngRows
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(Image {
        data,
        width,
        height,
        bits: 8,
        color,
        encoding,
    })
}

/// `m` × `ctm` (PDF's row-vector convention: `m` applies first).
fn multiply(m: [f64; 6], ctm: [f64; 6]) -> [f64; 6] {
    let [a, b, c, d, e, f] = m;
    let [a2, b2, c2, d2, e2, f2] = ctm;
    [
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    ]
}

/// Writes `image` into `dir` as a file tesseract reads (`name` plus an extension): a JPEG as
/// is, PNG rows wrapped in a PNG, plain rows as PNM (the zlib data inflated to at most the
/// size the header says, so a lying stream cannot blow up).
pub fn ocr_input(image: &Image, dir: &Path, name: &str) -> Result<PathBuf, String> {
    let (ext, bytes) = match image.encoding {
        Encoding::Jpeg => ("jpg", image.data.clone()),
        Encoding::PngRows => ("png", wrap_png(image)),
        Encoding::Flate => ("pnm", flate_to_pnm(image)?),
    };
    let path = dir.join(format!("{name}.{ext}"));
    std::fs::write(&path, bytes)
        .map_err(|e| format!("cannot write {} for OCR: {e}", path.display()))?;
    Ok(path)
}

/// A PNG file of PNG rows (IHDR, PLTE for a palette, one IDAT, IEND).
fn wrap_png(image: &Image) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let color_type = match image.color {
        Color::Gray => 0,
        Color::Rgb => 2,
        Color::Indexed(_) => 3,
    };
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&image.width.to_be_bytes());
    ihdr.extend_from_slice(&image.height.to_be_bytes());
    ihdr.extend_from_slice(&[image.bits, color_type, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    if let Color::Indexed(palette) = &image.color {
        chunk(&mut out, b"PLTE", palette);
    }
    chunk(&mut out, b"IDAT", &image.data);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A PNM file (P5 grey / P6 RGB) of plain 8-bit rows.
fn flate_to_pnm(image: &Image) -> Result<Vec<u8>, String> {
    let (magic, comps) = match image.color {
        Color::Gray => ("P5", 1),
        Color::Rgb => ("P6", 3),
        Color::Indexed(_) => return Err("a palette image has no plain rows".into()),
    };
    let size = image.width as usize * image.height as usize * comps;
    let pixels = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&image.data, size)
        .map_err(|e| format!("the page image does not inflate: {e:?}"))?;
    if pixels.len() < size {
        return Err(format!(
            "the page image has {} of the {size} bytes its size needs",
            pixels.len()
        ));
    }
    let mut out = format!("{magic}\n{} {}\n255\n", image.width, image.height).into_bytes();
    out.extend_from_slice(&pixels);
    Ok(out)
}

/// Whether every pixel is grey.
pub fn is_gray(image: &image::RgbImage) -> bool {
    image.pixels().all(|p| p[0] == p[1] && p[1] == p[2])
}

/// A rendered or decoded page as PNM (grey when every pixel is), for the OCR engine: no
/// compression to spend time on, the file lives for one tesseract run.
pub fn write_pnm(image: &image::RgbImage, gray: bool, path: &Path) -> Result<(), String> {
    let (w, h) = image.dimensions();
    let mut out = format!("{}\n{w} {h}\n255\n", if gray { "P5" } else { "P6" }).into_bytes();
    if gray {
        out.extend(image.pixels().map(|p| p[0]));
    } else {
        out.extend_from_slice(image.as_raw());
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write {} for OCR: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient() -> image::GrayImage {
        image::GrayImage::from_fn(64, 40, |x, y| image::Luma([(x * 3 + y) as u8]))
    }

    #[test]
    fn png_rows_are_kept_and_come_back_as_the_same_pixels() {
        let gray = image::DynamicImage::ImageLuma8(gradient());
        let (img, dpi) = png(&encode(gray.clone(), image::ImageFormat::Png)).unwrap();
        assert_eq!((img.width, img.height, img.bits), (64, 40, 8));
        assert_eq!(
            (img.color.clone(), img.encoding),
            (Color::Gray, Encoding::PngRows)
        );
        assert_eq!(dpi, None);
        // The rewrapped PNG decodes to the original pixels.
        let tmp = tempfile::tempdir().unwrap();
        let path = ocr_input(&img, tmp.path(), "p").unwrap();
        let back = image::open(&path).unwrap().to_luma8();
        assert_eq!(back, gradient());
        // Transparency: not kept (the caller flattens it).
        let rgba = image::DynamicImage::ImageRgba8(gray.to_rgba8());
        assert!(png(&encode(rgba, image::ImageFormat::Png)).is_none());
        assert!(png(b"\x89PNG\r\n\x1a\nbroken").is_none());
    }

    #[test]
    fn jpegs_are_kept_with_their_density() {
        let rgb =
            image::DynamicImage::ImageRgb8(image::DynamicImage::ImageLuma8(gradient()).to_rgb8());
        let mut bytes = encode(rgb, image::ImageFormat::Jpeg);
        let (img, _) = jpeg(&bytes).unwrap();
        assert_eq!(
            (img.width, img.height, img.encoding),
            (64, 40, Encoding::Jpeg)
        );
        assert_eq!(img.data, bytes);
        // A JFIF header saying 200 dpi.
        let app0 = [
            0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 1, 0, 200, 0, 200, 0, 0,
        ];
        bytes.splice(2..2, app0);
        assert_eq!(jfif_dpi(&bytes), Some(200.0));
    }

    #[test]
    fn plain_rows_become_pnm_and_a_short_stream_is_an_error() {
        let pixels = gradient().into_raw();
        let image = Image {
            data: miniz_oxide::deflate::compress_to_vec_zlib(&pixels, 6),
            width: 64,
            height: 40,
            bits: 8,
            color: Color::Gray,
            encoding: Encoding::Flate,
        };
        let tmp = tempfile::tempdir().unwrap();
        let path = ocr_input(&image, tmp.path(), "p").unwrap();
        // (The `image` crate is built without PNM; tesseract's leptonica reads it.)
        let mut want = b"P5\n64 40\n255\n".to_vec();
        want.extend_from_slice(&pixels);
        assert_eq!(std::fs::read(&path).unwrap(), want);
        let short = Image {
            height: 80,
            ..image
        };
        assert!(ocr_input(&short, tmp.path(), "q").is_err());
    }

    fn fixture(name: &str) -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/paperless-3.0.5/consume-input");
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    #[test]
    fn a_scanned_pdf_page_keeps_its_image_and_a_text_page_does_not() {
        let mut kept = Vec::new();
        crate::jobs::render::for_each_page(fixture("scan_phone_bill.pdf"), 0, |_, _, page| {
            kept.push(pdf_page(page, 0));
            Ok(true)
        })
        .unwrap();
        assert_eq!(kept.len(), 2);
        for image in kept {
            let image = image.expect("the page's one image is kept");
            assert_eq!((image.width, image.height), (1654, 2338));
            assert_eq!((image.color, image.bits), (Color::Gray, 8));
        }
        // Over the pixel limit: rendered (at a lower DPI) instead.
        crate::jobs::render::for_each_page(fixture("scan_phone_bill.pdf"), 1, |_, _, page| {
            assert!(pdf_page(page, 1000).is_none());
            Ok(true)
        })
        .unwrap();
        crate::jobs::render::for_each_page(fixture("acme_invoice_2024-03.pdf"), 0, |_, _, page| {
            assert!(pdf_page(page, 0).is_none(), "a text page is rendered");
            Ok(true)
        })
        .unwrap();
    }

    #[test]
    fn matrices_compose_in_pdf_order() {
        // Translate then scale: the scale applies to the translated space's unit.
        let m = multiply(
            [2.0, 0.0, 0.0, 3.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 1.0, 10.0, 20.0],
        );
        assert_eq!(m, [2.0, 0.0, 0.0, 3.0, 10.0, 20.0]);
    }
}
