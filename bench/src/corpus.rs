//! `paperboy-bench corpus --docs N --seed S`: writes a realistic archive straight into the
//! database and the media store (not through consume), for later benchmarks.
//!
//! What it makes, deterministically from the seed:
//! - users, correspondents, document types, storage paths and tags (with a parent hierarchy and
//!   an inbox tag), every kind with each matching algorithm 0..=6;
//! - one custom field of every data type;
//! - documents: born-digital PDFs (1–5 pages with a text layer), scanned PDFs (one JPEG per
//!   page, no text layer), PNG and JPEG "scans", plain text files; from a few KB to a few MB;
//!   with tags, notes, custom field values, archive serial numbers; some in the trash;
//! - `originals/0000042.<ext>` and `thumbnails/0000042.webp` for each, written as a temporary
//!   file then renamed.
//!
//! Streaming: documents are generated in batches on worker threads (each document from its own
//! RNG seeded by (seed, index), so the result does not depend on the thread count) and inserted
//! one transaction per batch; at most about three batches are in memory.
//!
//! Scan pages come from a small pool of synthetic page images made once per run; each file still
//! has unique bytes (its own PDF info dictionary, JPEG comment or PNG text chunk), so checksums
//! are unique, as on a real archive.

mod pdf;
mod words;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{Duration as Days, NaiveDate};
use image::{ExtendedColorType, GrayImage, ImageEncoder};
use paperboy_shared::config::Config;
use paperboy_shared::db::custom_fields::TextColumn;
use paperboy_shared::db::{
    self, CUSTOM_FIELD_TYPES, Db, NewDocument, NewMatchable, NewTag, NewUser, documents, extras,
    matching, migrate,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use words::*;

pub struct Args {
    pub docs: usize,
    pub seed: u64,
    pub batch: usize,
    pub database_url: Option<String>,
    pub media_root: Option<PathBuf>,
    /// Generator threads (0 = number of cores).
    pub threads: usize,
    /// Every correspondent, type, storage path and tag (but the inbox tag) uses AUTO
    /// (the classifier bench); otherwise the algorithms cycle through 0..=6.
    pub all_auto: bool,
}

/// What a run made (printed as a table; the test reads it too).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub documents: usize,
    pub trashed: usize,
    pub bytes: u64,
    pub largest: u64,
    pub smallest: u64,
    pub by_kind: [usize; KINDS.len()],
    pub notes: usize,
    pub field_values: usize,
    pub seconds: f64,
}

/// File kinds: (name, extension, MIME type).
pub const KINDS: &[(&str, &str, &str)] = &[
    ("born-digital PDF", "pdf", "application/pdf"),
    ("scanned PDF", "pdf", "application/pdf"),
    ("PNG scan", "png", "image/png"),
    ("JPEG scan", "jpg", "image/jpeg"),
    ("text file", "txt", "text/plain"),
];

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The RNG of one document (or one pool image): depends only on the seed and the index.
fn rng_for(seed: u64, stream: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix64(
        seed ^ splitmix64(stream.wrapping_mul(0x1_0000_0001) ^ index),
    ))
}

// ---- objects ---------------------------------------------------------------------------------

/// Ids of the objects documents point at.
struct Objects {
    users: Vec<i64>,
    correspondents: Vec<(i64, &'static str, &'static str)>,
    document_types: Vec<(i64, &'static str, &'static str)>,
    storage_paths: Vec<i64>,
    /// Tags without the inbox tag.
    tags: Vec<i64>,
    inbox: i64,
    /// (id, data type), in [`CUSTOM_FIELD_TYPES`] order.
    fields: Vec<(i64, &'static str)>,
    select_options: Vec<String>,
}

/// The match text for algorithm `alg` of an object called `name` whose documents use `words`.
fn match_text(alg: i64, name: &str, words: &str) -> String {
    match alg {
        matching::ANY | matching::ALL => words.to_string(),
        matching::LITERAL => name.to_string(),
        matching::REGEX => {
            let first = name.split_whitespace().next().unwrap_or(name);
            format!(r"{}\s+\w+.*(no|nr)\.?\s*\d+", regex_escape(first))
        }
        matching::FUZZY => {
            // The name with two letters swapped: a near miss fuzzy matching still finds.
            let mut c: Vec<char> = name.to_lowercase().chars().collect();
            if c.len() > 3 {
                c.swap(1, 2);
            }
            c.into_iter().collect()
        }
        _ => String::new(), // NONE, AUTO
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if "\\.+*?()|[]{}^$".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

async fn create_objects(db: &Db, rng: &mut StdRng, all_auto: bool) -> Result<Objects> {
    let auto = |alg: i64| if all_auto { matching::AUTO } else { alg };
    let mut tx = db.begin().await?;
    let mut users = Vec::new();
    for (i, name) in USERS.iter().enumerate() {
        users.push(
            db::users::insert(
                &mut tx,
                &NewUser {
                    username: name.to_string(),
                    email: format!("{name}@example.org"),
                    first_name: name[..1].to_uppercase() + &name[1..],
                    is_superuser: i == 0,
                    is_staff: i == 0,
                    ..Default::default()
                },
            )
            .await?,
        );
    }
    let mut correspondents = Vec::new();
    for (i, (name, words)) in CORRESPONDENTS.iter().enumerate() {
        let alg = auto((i % 7) as i64);
        let id = db::correspondents::insert(
            &mut tx,
            &NewMatchable {
                name: name.to_string(),
                owner_id: Some(users[0]),
                r#match: match_text(alg, name, words),
                matching_algorithm: alg,
                is_insensitive: i % 5 != 4,
            },
        )
        .await?;
        correspondents.push((id, *name, *words));
    }
    let mut document_types = Vec::new();
    for (i, (name, word)) in DOCUMENT_TYPES.iter().enumerate() {
        // Offset so that type i and correspondent i do not share an algorithm.
        let alg = auto(((i + 3) % 7) as i64);
        let id = db::document_types::insert(
            &mut tx,
            &NewMatchable {
                name: name.to_string(),
                owner_id: Some(users[0]),
                r#match: match_text(alg, name, &word.to_lowercase()),
                matching_algorithm: alg,
                is_insensitive: true,
            },
        )
        .await?;
        document_types.push((id, *name, *word));
    }
    let mut storage_paths = Vec::new();
    for (i, (name, template)) in STORAGE_PATHS.iter().enumerate() {
        let alg = auto((i % 7) as i64);
        let id = db::storage_paths::insert(
            &mut tx,
            &NewMatchable {
                name: name.to_string(),
                owner_id: Some(users[0]),
                r#match: match_text(alg, name, &name.to_lowercase()),
                matching_algorithm: alg,
                is_insensitive: true,
            },
            template,
        )
        .await?;
        storage_paths.push(id);
    }
    let mut tag_ids: Vec<i64> = Vec::new();
    let mut inbox = 0;
    for (i, (name, parent)) in TAGS.iter().enumerate() {
        let is_inbox = i == 0;
        let alg = if is_inbox {
            matching::NONE
        } else {
            auto((i % 7) as i64)
        };
        let color = format!("#{:06x}", rng.random_range(0..0x100_0000u32));
        let id = db::tags::insert(
            &mut tx,
            &NewTag {
                name: name.to_string(),
                owner_id: if i % 9 == 8 { Some(users[1]) } else { None },
                color,
                is_inbox_tag: is_inbox,
                r#match: match_text(alg, name, &name.to_lowercase()),
                matching_algorithm: alg,
                is_insensitive: i % 4 != 3,
                tn_parent_id: parent.map(|p| tag_ids[p]),
            },
        )
        .await?;
        if is_inbox {
            inbox = id;
        }
        tag_ids.push(id);
    }
    let select_options: Vec<String> = ["Low", "Normal", "High", "Urgent"]
        .iter()
        .enumerate()
        .map(|(i, _)| format!("opt{:04x}", splitmix64(i as u64) & 0xffff))
        .collect();
    let options: Vec<serde_json::Value> = ["Low", "Normal", "High", "Urgent"]
        .iter()
        .zip(&select_options)
        .map(|(label, id)| serde_json::json!({"id": id, "label": label}))
        .collect();
    let select_extra = serde_json::json!({ "select_options": options }).to_string();
    let mut fields = Vec::new();
    for t in CUSTOM_FIELD_TYPES {
        let (name, extra) = match *t {
            "string" => ("Invoice number", None),
            "url" => ("Customer portal", None),
            "date" => ("Due date", None),
            "boolean" => ("Paid", None),
            "integer" => ("Copies", None),
            "float" => ("VAT rate", None),
            "monetary" => ("Amount", Some(r#"{"default_currency": "EUR"}"#.to_string())),
            "documentlink" => ("Related documents", None),
            "select" => ("Priority", Some(select_extra.clone())),
            "longtext" => ("Summary", None),
            other => bail!("no corpus value for custom field type {other}"),
        };
        let id = db::custom_fields::insert(&mut tx, name, t, extra.as_deref()).await?;
        fields.push((id, *t));
    }
    tx.commit().await?;
    Ok(Objects {
        users,
        correspondents,
        document_types,
        storage_paths,
        tags: tag_ids[1..].to_vec(),
        inbox,
        fields,
        select_options,
    })
}

// ---- page images -----------------------------------------------------------------------------

struct Scan {
    jpeg: Vec<u8>,
    png: Vec<u8>,
    width: u32,
    height: u32,
}

/// Synthetic page images and thumbnails, made once per run.
struct Pool {
    pages: Vec<Scan>,
    /// A few large, noisy pages (MB-sized files).
    big: Vec<Scan>,
    thumbs: Vec<Vec<u8>>,
}

/// A page image: paper with scan noise, a letterhead, text lines as dark word blocks.
fn page_image(rng: &mut StdRng, width: u32, height: u32, noise: u8) -> GrayImage {
    let mut img = GrayImage::new(width, height);
    let paper: u8 = rng.random_range(232..=250);
    // Cheap per-pixel noise (xorshift), seeded from the page's RNG.
    let mut x: u64 = rng.random::<u64>() | 1;
    for p in img.pixels_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = if noise == 0 {
            0
        } else {
            (x % (2 * noise as u64 + 1)) as i16 - noise as i16
        };
        p.0[0] = (paper as i16 + n).clamp(0, 255) as u8;
    }
    let margin = width / 10;
    let line_h = (height / 60).max(3);
    let mut y = height / 12;
    // Letterhead.
    let head_w = rng.random_range(width / 5..width / 3);
    fill(&mut img, margin, y, head_w, line_h * 2, 40);
    y += line_h * 4;
    while y + line_h < height - height / 10 {
        if rng.random_bool(0.12) {
            y += line_h; // paragraph break
            continue;
        }
        let mut xpos = margin;
        let end = width - margin - rng.random_range(0..width / 4);
        while xpos < end {
            let w = rng.random_range(line_h..line_h * 5).min(end - xpos);
            fill(
                &mut img,
                xpos,
                y,
                w,
                line_h * 2 / 3,
                rng.random_range(20..90),
            );
            xpos += w + line_h / 2 + 1;
        }
        y += line_h + line_h / 2;
    }
    img
}

fn fill(img: &mut GrayImage, x0: u32, y0: u32, w: u32, h: u32, v: u8) {
    for y in y0..(y0 + h).min(img.height()) {
        for x in x0..(x0 + w).min(img.width()) {
            img.put_pixel(x, y, image::Luma([v]));
        }
    }
}

fn encode_jpeg(img: &GrayImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::L8,
    )?;
    Ok(out)
}

fn encode_png(img: &GrayImage) -> Result<Vec<u8>> {
    // A bilevel (fax-like) version: what a document scanner in black-and-white mode gives.
    let bw = GrayImage::from_fn(img.width(), img.height(), |x, y| {
        image::Luma([if img.get_pixel(x, y).0[0] < 160 {
            0
        } else {
            255
        }])
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        bw.as_raw(),
        bw.width(),
        bw.height(),
        ExtendedColorType::L8,
    )?;
    Ok(out)
}

fn encode_webp_thumb(img: &GrayImage) -> Result<Vec<u8>> {
    let mut small = image::imageops::resize(img, 200, 283, image::imageops::FilterType::Triangle);
    // 16 gray levels: the scan noise would make a lossless WebP needlessly large.
    for p in small.pixels_mut() {
        p.0[0] = (p.0[0] & 0xF0) | 0x08;
    }
    let rgb = image::DynamicImage::ImageLuma8(small).to_rgb8();
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out).write_image(
        rgb.as_raw(),
        rgb.width(),
        rgb.height(),
        ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

impl Pool {
    fn new(seed: u64) -> Result<Pool> {
        const PAGES: usize = 16;
        const BIG: usize = 3;
        let make = |i: usize| -> Result<(Scan, Vec<u8>)> {
            let mut rng = rng_for(seed, 1, i as u64);
            // A4 at about 72 dpi; a third at 100 dpi.
            let (w, h) = if i.is_multiple_of(3) {
                (827, 1169)
            } else {
                (595, 842)
            };
            let img = page_image(&mut rng, w, h, 6);
            let scan = Scan {
                jpeg: encode_jpeg(&img, rng.random_range(55..80))?,
                png: encode_png(&img)?,
                width: w,
                height: h,
            };
            Ok((scan, encode_webp_thumb(&img)?))
        };
        let make_big = |i: usize| -> Result<Scan> {
            let mut rng = rng_for(seed, 2, i as u64);
            // A4 at 200 dpi, heavy noise, high quality: 1–3 MB per page.
            let (w, h) = (1654, 2339);
            let img = page_image(&mut rng, w, h, 24);
            Ok(Scan {
                jpeg: encode_jpeg(&img, 92)?,
                png: encode_png(&img)?,
                width: w,
                height: h,
            })
        };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (pages, big) = std::thread::scope(|s| -> Result<_> {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || -> Result<(Vec<_>, Vec<_>)> {
                        let small = (0..PAGES)
                            .filter(|i| i % threads == t)
                            .map(|i| make(i).map(|r| (i, r)))
                            .collect::<Result<Vec<_>>>()?;
                        let big = (0..BIG)
                            .filter(|i| i % threads == t)
                            .map(|i| make_big(i).map(|r| (i, r)))
                            .collect::<Result<Vec<_>>>()?;
                        Ok((small, big))
                    })
                })
                .collect();
            let mut pages = Vec::new();
            let mut big = Vec::new();
            for h in handles {
                let (p, b) = h.join().expect("pool thread panicked")?;
                pages.extend(p);
                big.extend(b);
            }
            pages.sort_by_key(|(i, _)| *i);
            big.sort_by_key(|(i, _)| *i);
            Ok((pages, big))
        })?;
        let (pages, thumbs) = pages.into_iter().map(|(_, r)| r).unzip();
        Ok(Pool {
            pages,
            big: big.into_iter().map(|(_, s)| s).collect(),
            thumbs,
        })
    }
}

/// A JPEG with a comment segment (`COM`) right after SOI: same picture, unique bytes.
fn jpeg_with_comment(jpeg: &[u8], comment: &str) -> Vec<u8> {
    let c = &comment.as_bytes()[..comment.len().min(60_000)];
    let mut out = Vec::with_capacity(jpeg.len() + c.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((c.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(c);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG with a `tEXt` chunk after IHDR: same picture, unique bytes.
fn png_with_text(png: &[u8], text: &str) -> Vec<u8> {
    // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
    let at = 33;
    let mut chunk = Vec::new();
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(b"Comment\0");
    chunk.extend(text.bytes().filter(|b| b.is_ascii()));
    let mut out = Vec::with_capacity(png.len() + chunk.len() + 8);
    out.extend_from_slice(&png[..at]);
    out.extend_from_slice(&((chunk.len() - 4) as u32).to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    out.extend_from_slice(&png[at..]);
    out
}

// ---- documents -------------------------------------------------------------------------------

enum FieldValue {
    Text(TextColumn, String),
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Indexes of earlier documents of this run.
    Links(Vec<usize>),
}

/// One generated document, its files already written under temporary names.
struct GenDoc {
    index: usize,
    kind: usize,
    new: NewDocument,
    original: NamedTempFile,
    thumbnail: NamedTempFile,
    size: u64,
    tags: Vec<i64>,
    notes: Vec<(Option<i64>, String)>,
    fields: Vec<(i64, FieldValue)>,
    trashed: bool,
}

struct Generator {
    seed: u64,
    objects: Objects,
    pool: Pool,
    originals: PathBuf,
    thumbnails: PathBuf,
}

fn words(rng: &mut StdRng, n: usize) -> Vec<&'static str> {
    (0..n).map(|_| *WORDS.choose(rng).expect("words")).collect()
}

fn sentence(rng: &mut StdRng) -> String {
    let n = rng.random_range(5..14);
    let mut s = words(rng, n).join(" ");
    if let Some(f) = s.get_mut(0..1) {
        f.make_ascii_uppercase();
    }
    s.push('.');
    s
}

/// Wraps text into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

struct Letter<'a> {
    correspondent: Option<&'a str>,
    correspondent_words: &'a str,
    type_word: &'a str,
    created: NaiveDate,
    reference: u64,
}

/// The text of one page of a letter, as lines.
fn page_text(rng: &mut StdRng, l: &Letter<'_>, page: usize, pages: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if page == 0 {
        if let Some(c) = l.correspondent {
            lines.push(c.to_string());
        }
        lines.push(format!(
            "{} Street {}, {} {}",
            words(rng, 1)[0].to_ascii_uppercase(),
            rng.random_range(1..200),
            rng.random_range(10000..99999),
            ["Springfield", "Riverton", "Lakeside", "Hillview"]
                .choose(rng)
                .unwrap()
        ));
        lines.push(String::new());
        lines.push(format!("Date: {}", l.created.format("%d.%m.%Y")));
        lines.push(format!(
            "{} no. {} / customer nr {}",
            l.type_word,
            l.reference,
            rng.random_range(100_000..999_999)
        ));
        lines.push(String::new());
        lines.push("Dear customer,".to_string());
    }
    let target = rng.random_range(26..44);
    while lines.len() < target {
        let mut para = String::new();
        for _ in 0..rng.random_range(2..6) {
            para.push_str(&sentence(rng));
            para.push(' ');
        }
        if rng.random_bool(0.3) {
            para.push_str(l.correspondent_words);
            para.push_str(&format!(
                " total EUR {}.{:02}. ",
                rng.random_range(5..4000),
                rng.random_range(0..100)
            ));
        }
        lines.extend(wrap(&para, 88));
        lines.push(String::new());
    }
    if page + 1 == pages {
        lines.push("Kind regards,".to_string());
        lines.push(l.correspondent.unwrap_or("Customer service").to_string());
    } else {
        lines.push(format!("Page {} of {pages}", page + 1));
    }
    lines
}

fn date_between(rng: &mut StdRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days();
    from + Days::days(rng.random_range(0..=span))
}

fn temp_with(dir: &Path, bytes: &[u8]) -> Result<NamedTempFile> {
    let mut f = tempfile::Builder::new()
        .prefix(".corpus-")
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    f.write_all(bytes)?;
    f.flush()?;
    // Temporary files are private (0600); archive files are not.
    use std::os::unix::fs::PermissionsExt;
    f.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    Ok(f)
}

impl Generator {
    fn document(&self, index: usize) -> Result<GenDoc> {
        let rng = &mut rng_for(self.seed, 3, index as u64);
        let o = &self.objects;
        // Kind: 40 % born-digital PDF, 25 % scanned PDF, 10 % PNG, 10 % JPEG, 15 % text.
        let kind = match rng.random_range(0..100) {
            0..40 => 0,
            40..65 => 1,
            65..75 => 2,
            75..85 => 3,
            _ => 4,
        };
        let (_, ext, mime) = KINDS[kind];
        let correspondent = rng
            .random_bool(0.85)
            .then(|| *o.correspondents.choose(rng).unwrap());
        let doc_type = rng
            .random_bool(0.8)
            .then(|| *o.document_types.choose(rng).unwrap());
        let storage_path = rng
            .random_bool(0.3)
            .then(|| *o.storage_paths.choose(rng).unwrap());
        let created = date_between(
            rng,
            NaiveDate::from_ymd_opt(2012, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        );
        let added = created.and_hms_opt(0, 0, 0).unwrap()
            + Days::days(rng.random_range(0..40))
            + chrono::Duration::seconds(rng.random_range(0..86_400));
        let added = db::to_rfc3339(added.and_utc());
        let letter = Letter {
            correspondent: correspondent.map(|c| c.1),
            correspondent_words: correspondent.map_or("", |c| c.2),
            type_word: doc_type.map_or("Document", |t| t.2),
            created,
            reference: rng.random_range(10_000..99_999_999),
        };
        let title = match (correspondent, doc_type) {
            (Some(c), Some(t)) => format!("{} {} {}", c.1, t.2, created.format("%Y-%m")),
            (None, Some(t)) => format!("{} {}", t.2, letter.reference),
            (Some(c), None) => format!("{} {}", c.1, created.format("%Y-%m-%d")),
            (None, None) => {
                let w = words(rng, 3).join(" ");
                format!("Scan {} {w}", created.format("%Y%m%d"))
            }
        };
        let author = letter.correspondent.unwrap_or("unknown");
        let unique = format!("paperboy-bench corpus seed {} document {index}", self.seed);
        let pdf_info_id = format!(
            "{:016x}{:016x}",
            splitmix64(self.seed),
            splitmix64(index as u64)
        );
        let pdf_date = format!("D:{}120000", created.format("%Y%m%d"));
        let info = pdf::Info {
            title: &title,
            author,
            date: &pdf_date,
            id: &pdf_info_id,
        };
        // Content (the text layer, or what OCR would have read) and the file.
        let (bytes, content, pages, thumb) = match kind {
            0 => {
                let n = rng.random_range(1..=5);
                let texts: Vec<Vec<String>> =
                    (0..n).map(|p| page_text(rng, &letter, p, n)).collect();
                let content = texts
                    .iter()
                    .map(|l| l.join("\n"))
                    .collect::<Vec<_>>()
                    .join("\n\n");
                let pages: Vec<pdf::Page> = texts.into_iter().map(pdf::Page::Text).collect();
                (
                    pdf::write(&pages, &info),
                    content,
                    Some(n as i64),
                    rng.random_range(0..self.pool.thumbs.len()),
                )
            }
            1 => {
                let n = *[1usize, 1, 1, 2, 2, 3].choose(rng).unwrap();
                let big = rng.random_bool(0.04);
                let scans: Vec<&Scan> = (0..n)
                    .map(|_| {
                        if big {
                            self.pool.big.choose(rng).unwrap()
                        } else {
                            self.pool.pages.choose(rng).unwrap()
                        }
                    })
                    .collect();
                let pages: Vec<pdf::Page> = scans
                    .iter()
                    .map(|s| pdf::Page::Jpeg {
                        data: &s.jpeg,
                        width: s.width,
                        height: s.height,
                    })
                    .collect();
                let content = if rng.random_bool(0.1) {
                    String::new() // OCR found nothing
                } else {
                    (0..n)
                        .map(|p| page_text(rng, &letter, p, n).join("\n"))
                        .collect::<Vec<_>>()
                        .join("\n\n")
                };
                (
                    pdf::write(&pages, &info),
                    content,
                    Some(n as i64),
                    rng.random_range(0..self.pool.thumbs.len()),
                )
            }
            2 | 3 => {
                let big = rng.random_bool(0.03);
                let i;
                let scan = if big {
                    i = rng.random_range(0..self.pool.big.len());
                    &self.pool.big[i]
                } else {
                    i = rng.random_range(0..self.pool.pages.len());
                    &self.pool.pages[i]
                };
                let bytes = if kind == 2 {
                    png_with_text(&scan.png, &unique)
                } else {
                    jpeg_with_comment(&scan.jpeg, &unique)
                };
                let content = page_text(rng, &letter, 0, 1).join("\n");
                (bytes, content, Some(1), i % self.pool.thumbs.len())
            }
            _ => {
                // A few KB up to ~200 KB of plain text.
                let target = if rng.random_bool(0.1) {
                    rng.random_range(40_000..200_000)
                } else {
                    rng.random_range(800..12_000)
                };
                let mut text = page_text(rng, &letter, 0, 1).join("\n");
                text.push('\n');
                while text.len() < target {
                    let mut para = String::new();
                    for _ in 0..rng.random_range(3..8) {
                        para.push_str(&sentence(rng));
                        para.push(' ');
                    }
                    for l in wrap(&para, 78) {
                        text.push_str(&l);
                        text.push('\n');
                    }
                    text.push('\n');
                }
                (
                    text.clone().into_bytes(),
                    text,
                    None,
                    rng.random_range(0..self.pool.thumbs.len()),
                )
            }
        };
        let checksum = hex::encode(Sha256::digest(&bytes));
        let original_filename = match (kind, correspondent) {
            (2 | 3, _) | (1, None) => format!(
                "scan_{}_{:03}.{ext}",
                created.format("%Y-%m-%d"),
                index % 1000
            ),
            (_, Some(c)) => format!(
                "{}_{}.{ext}",
                c.1.replace([' ', '.'], "_"),
                created.format("%Y%m%d")
            ),
            _ => format!("document-{}.{ext}", letter.reference),
        };
        let owner = match rng.random_range(0..10) {
            0 => None,
            1 => Some(o.users[1]),
            2 => Some(o.users[2]),
            _ => Some(o.users[0]),
        };
        let new = NewDocument {
            title,
            content,
            mime_type: mime.to_string(),
            checksum,
            archive_checksum: None,
            page_count: pages,
            created: created.format("%Y-%m-%d").to_string(),
            added: Some(added),
            filename: None,
            archive_filename: None,
            original_filename: Some(original_filename),
            // Unique by construction: derived from the index.
            archive_serial_number: rng.random_bool(0.35).then_some(index as i64 + 1),
            owner_id: owner,
            correspondent_id: correspondent.map(|c| c.0),
            document_type_id: doc_type.map(|t| t.0),
            storage_path_id: storage_path,
            ..Default::default()
        };
        // Tags: 0–4, plus the inbox tag on about one in eight.
        let mut tags: Vec<i64> = (0..rng.random_range(0..=4))
            .map(|_| *o.tags.choose(rng).unwrap())
            .collect();
        if rng.random_bool(0.125) {
            tags.push(o.inbox);
        }
        tags.sort_unstable();
        tags.dedup();
        let notes = if rng.random_bool(0.15) {
            (0..rng.random_range(1..=3))
                .map(|_| {
                    let user = *o.users.choose(rng).unwrap();
                    (Some(user), NOTES.choose(rng).unwrap().to_string())
                })
                .collect()
        } else {
            Vec::new()
        };
        // Custom fields: field (index mod 10) always, so every type has values in any corpus of
        // ten or more documents; up to two more at random.
        let mut chosen = vec![index % o.fields.len()];
        for _ in 0..rng.random_range(0..=2) {
            chosen.push(rng.random_range(0..o.fields.len()));
        }
        chosen.sort_unstable();
        chosen.dedup();
        let mut fields = Vec::new();
        for f in chosen {
            let (id, t) = o.fields[f];
            let v = match t {
                "string" => FieldValue::Text(
                    TextColumn::Text,
                    format!(
                        "INV-{}-{}",
                        created.format("%Y"),
                        rng.random_range(1000..99999)
                    ),
                ),
                "url" => FieldValue::Text(
                    TextColumn::Url,
                    format!(
                        "https://portal.example.com/documents/{}",
                        rng.random_range(1..1_000_000)
                    ),
                ),
                "date" => FieldValue::Text(
                    TextColumn::Date,
                    (created + Days::days(rng.random_range(7..60)))
                        .format("%Y-%m-%d")
                        .to_string(),
                ),
                "boolean" => FieldValue::Bool(rng.random_bool(0.6)),
                "integer" => FieldValue::Int(rng.random_range(1..10)),
                "float" => FieldValue::Float(*[7.0, 19.0, 5.5, 10.0, 20.0].choose(rng).unwrap()),
                "monetary" => FieldValue::Text(
                    TextColumn::Monetary,
                    format!(
                        "{}{}.{:02}",
                        ["EUR", "EUR", "USD", "CHF"].choose(rng).unwrap(),
                        rng.random_range(1..5000),
                        rng.random_range(0..100)
                    ),
                ),
                "documentlink" if index > 0 => FieldValue::Links(
                    (0..rng.random_range(1..=3))
                        .map(|_| rng.random_range(0..index))
                        .collect(),
                ),
                "documentlink" => continue,
                "select" => FieldValue::Text(
                    TextColumn::Select,
                    o.select_options.choose(rng).unwrap().clone(),
                ),
                "longtext" => FieldValue::Text(
                    TextColumn::LongText,
                    (0..rng.random_range(2..6))
                        .map(|_| sentence(rng))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                other => bail!("no corpus value for custom field type {other}"),
            };
            fields.push((id, v));
        }
        // About 3 % in the trash (every 29th, offset 7: a 50-document corpus has two).
        let trashed = index % 29 == 7;
        let size = bytes.len() as u64;
        let original = temp_with(&self.originals, &bytes)?;
        let thumbnail = temp_with(&self.thumbnails, &self.pool.thumbs[thumb])?;
        Ok(GenDoc {
            index,
            kind,
            new,
            original,
            thumbnail,
            size,
            tags,
            notes,
            fields,
            trashed,
        })
    }

    /// Documents `range`, on `threads` threads, in index order.
    fn batch(&self, range: std::ops::Range<usize>, threads: usize) -> Result<Vec<GenDoc>> {
        let start = range.start;
        let mut out: Vec<GenDoc> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let range = range.clone();
                    s.spawn(move || {
                        range
                            .filter(|i| (i - start) % threads == t)
                            .map(|i| self.document(i))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.join().expect("generator thread panicked")?);
            }
            Ok::<_, anyhow::Error>(all)
        })?;
        out.sort_by_key(|d| d.index);
        Ok(out)
    }
}

fn dir_is_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Inserts one batch in one transaction; renames its files into place.
async fn insert_batch(
    db: &Db,
    docs: Vec<GenDoc>,
    ids: &mut Vec<i64>,
    summary: &mut Summary,
) -> Result<()> {
    let mut tx = db.begin().await?;
    for d in docs {
        let id = documents::insert(&mut tx, &d.new).await?;
        debug_assert_eq!(ids.len(), d.index);
        ids.push(id);
        let (_, ext, _) = KINDS[d.kind];
        let name = format!("{id:07}.{ext}");
        documents::set_files(&mut tx, id, Some(&name), None, None).await?;
        if !d.tags.is_empty() {
            documents::add_tags(&mut tx, id, &d.tags).await?;
        }
        for (user, note) in &d.notes {
            db::notes::insert(&mut tx, id, *user, note).await?;
        }
        for (field, v) in &d.fields {
            match v {
                FieldValue::Text(col, s) => {
                    db::custom_fields::set_text_value(&mut tx, id, *field, *col, s).await?;
                }
                FieldValue::Bool(b) => {
                    extras::set_bool_value(&mut tx, id, *field, *b).await?;
                }
                FieldValue::Int(n) => {
                    extras::set_int_value(&mut tx, id, *field, *n).await?;
                }
                FieldValue::Float(x) => {
                    extras::set_float_value(&mut tx, id, *field, *x).await?;
                }
                FieldValue::Links(idx) => {
                    let linked: Vec<i64> = idx.iter().map(|&i| ids[i]).collect();
                    db::custom_fields::set_text_value(
                        &mut tx,
                        id,
                        *field,
                        TextColumn::DocumentIds,
                        &serde_json::to_string(&linked)?,
                    )
                    .await?;
                }
            }
        }
        if d.trashed {
            documents::trash(&mut tx, id).await?;
            summary.trashed += 1;
        }
        // Files into place before the commit: a crash leaves orphan files, never rows without
        // files.
        let dir = d
            .original
            .path()
            .parent()
            .expect("temp file in a folder")
            .to_path_buf();
        d.original
            .persist(dir.join(&name))
            .with_context(|| format!("renaming the original of document {id}"))?;
        let tdir = d
            .thumbnail
            .path()
            .parent()
            .expect("temp file in a folder")
            .to_path_buf();
        d.thumbnail
            .persist(tdir.join(format!("{id:07}.webp")))
            .with_context(|| format!("renaming the thumbnail of document {id}"))?;
        summary.documents += 1;
        summary.bytes += d.size;
        summary.largest = summary.largest.max(d.size);
        summary.smallest = if summary.smallest == 0 {
            d.size
        } else {
            summary.smallest.min(d.size)
        };
        summary.by_kind[d.kind] += 1;
        summary.notes += d.notes.len();
        summary.field_values += d.fields.len();
    }
    tx.commit().await?;
    Ok(())
}

/// A corpus in a fresh temporary folder: `paperboy.sqlite3` (its URL returned) and `media/`.
pub async fn scratch(
    docs: usize,
    seed: u64,
    all_auto: bool,
) -> Result<(tempfile::TempDir, String, Summary)> {
    let dir = tempfile::tempdir()?;
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("paperboy.sqlite3").display()
    );
    let summary = generate(&Args {
        docs,
        seed,
        batch: 500,
        database_url: Some(db_url.clone()),
        media_root: Some(dir.path().join("media")),
        threads: 0,
        all_auto,
    })
    .await?;
    Ok((dir, db_url, summary))
}

/// Generates the corpus; returns what it made.
pub async fn generate(args: &Args) -> Result<Summary> {
    let began = Instant::now();
    let mut config = Config::from_env()?;
    if let Some(u) = &args.database_url {
        config.database_url = u.clone();
    }
    if let Some(m) = &args.media_root {
        config.media_root = m.clone();
    }
    let db = Db::connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {}", db::redact_url(&config.database_url)))?;
    migrate::migrate_latest(&db).await?;
    if !documents::ids_after_including_trash(&db, 0, 1)
        .await?
        .is_empty()
        || !db::tags::list(&db).await?.is_empty()
    {
        bail!(
            "the database {} already has documents or tags: the corpus goes into an empty archive",
            db::redact_url(&config.database_url)
        );
    }
    let originals = config.media_root.join("originals");
    let thumbnails = config.media_root.join("thumbnails");
    for d in [&originals, &thumbnails] {
        if !dir_is_empty(d)? {
            bail!(
                "{} is not empty: the corpus goes into an empty media root",
                d.display()
            );
        }
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }

    let mut rng = rng_for(args.seed, 0, 0);
    let objects = create_objects(&db, &mut rng, args.all_auto).await?;
    let pool = Pool::new(args.seed)?;
    eprintln!(
        "corpus: objects and {} page images ready after {:.1} s",
        pool.pages.len() + pool.big.len(),
        began.elapsed().as_secs_f64()
    );
    let generator = Arc::new(Generator {
        seed: args.seed,
        objects,
        pool,
        originals,
        thumbnails,
    });
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        args.threads
    };
    let batch = args.batch.max(1);
    let n = args.docs;
    // One batch being generated while the previous one is inserted.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<GenDoc>>>(1);
    let producer = {
        let g = generator.clone();
        std::thread::spawn(move || {
            let mut start = 0;
            while start < n {
                let end = (start + batch).min(n);
                let r = g.batch(start..end, threads);
                let failed = r.is_err();
                if tx.blocking_send(r).is_err() || failed {
                    break;
                }
                start = end;
            }
        })
    };
    let mut ids: Vec<i64> = Vec::with_capacity(n);
    let mut summary = Summary::default();
    let mut last_report = Instant::now();
    while let Some(b) = rx.recv().await {
        insert_batch(&db, b?, &mut ids, &mut summary).await?;
        if last_report.elapsed().as_secs_f64() >= 5.0 {
            last_report = Instant::now();
            eprintln!(
                "corpus: {}/{n} documents, {:.0} docs/s",
                summary.documents,
                summary.documents as f64 / began.elapsed().as_secs_f64()
            );
        }
    }
    producer.join().expect("producer thread panicked");
    if summary.documents != n {
        bail!("only {} of {n} documents were generated", summary.documents);
    }
    db.close().await;
    summary.seconds = began.elapsed().as_secs_f64();
    Ok(summary)
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub async fn run(args: Args) -> Result<()> {
    let s = generate(&args).await?;
    println!(
        "## Bench corpus ({} documents, seed {})\n",
        s.documents, args.seed
    );
    println!("| measure | value |\n|---|---|");
    for (i, (name, _, _)) in KINDS.iter().enumerate() {
        println!("| {name}s | {} |", s.by_kind[i]);
    }
    println!("| in the trash | {} |", s.trashed);
    println!("| notes | {} |", s.notes);
    println!("| custom field values | {} |", s.field_values);
    println!(
        "| originals | {} (smallest {}, largest {}) |",
        human(s.bytes),
        human(s.smallest),
        human(s.largest)
    );
    println!(
        "| time | {:.1} s ({:.0} documents/s) |",
        s.seconds,
        s.documents as f64 / s.seconds
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_wrappers_keep_images_valid() {
        let mut rng = rng_for(1, 9, 0);
        let img = page_image(&mut rng, 120, 170, 4);
        let jpeg = jpeg_with_comment(&encode_jpeg(&img, 70).unwrap(), "doc 1");
        let png = png_with_text(&encode_png(&img).unwrap(), "doc 1");
        for bytes in [&jpeg, &png] {
            let back = image::load_from_memory(bytes).unwrap();
            assert_eq!((back.width(), back.height()), (120, 170));
        }
        assert_ne!(
            jpeg_with_comment(&encode_jpeg(&img, 70).unwrap(), "doc 2"),
            jpeg
        );
    }

    #[test]
    fn documents_depend_only_on_seed_and_index() {
        let mut a = rng_for(7, 3, 42);
        let mut b = rng_for(7, 3, 42);
        let mut c = rng_for(7, 3, 43);
        let (x, y, z): (u64, u64, u64) = (a.random(), b.random(), c.random());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn every_algorithm_has_a_sensible_match_text() {
        for alg in 0..=6 {
            let m = match_text(alg, "Acme Insurance", "policy premium");
            match alg {
                matching::NONE | matching::AUTO => assert!(m.is_empty()),
                matching::REGEX => {
                    let re = regex_lite_check(&m);
                    assert!(re, "{m}");
                }
                _ => assert!(!m.is_empty()),
            }
        }
    }

    /// The regex match text names the first word and a number pattern.
    fn regex_lite_check(m: &str) -> bool {
        m.starts_with("Acme") && m.contains(r"\d+")
    }
}
