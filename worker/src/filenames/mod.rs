//! File names of originals and archive versions from templates, as paperless-ngx 3.0.5 makes
//! them (spec `matching-index-files.md` §5).
//!
//! - The template is the document's storage path (for a version row: its root's), else
//!   `PAPERBOY_FILENAME_FORMAT` converted from the legacy `{placeholder}` syntax, else none
//!   (the default name `0000042.pdf`).
//! - [`Namer::new`] renders it once per document ([`template`]: the §5.3 context and filters),
//!   cleans and checks the result (§5.4: NFC, no newlines, no blanks around `/`, nothing
//!   absolute or with a `..` component, "none" handling of §5.5); any failure falls back to the
//!   default name with a warning.
//! - [`Namer::candidate`] assembles a name for a counter (`qwe.pdf`, `qwe_01.pdf`, …), with the
//!   version suffix `_v<N>` and the extension of the MIME type (`.pdf` for archives);
//!   [`unique_original`] / [`unique_archive`] pick the first free one (§5.7).
//!
//! [`generate_filename`] is the one-call form for other jobs (the exporter's `-f`).

pub mod dates;
pub mod sanitize;
pub mod template;

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use paperboy_shared::config::Config;
use paperboy_shared::db::files::NamingData;
use unicode_normalization::UnicodeNormalization;

/// Longest stored file name (the database column's limit upstream).
pub const MAX_NAME_CHARS: usize = 1024;

/// The settings that shape file names.
#[derive(Debug, Clone)]
pub struct FilenameSettings {
    /// `PAPERBOY_FILENAME_FORMAT`, as configured (legacy syntax converted when used).
    pub format: Option<String>,
    /// `PAPERBOY_FILENAME_FORMAT_REMOVE_NONE`.
    pub remove_none: bool,
    /// `PAPERBOY_TIME_ZONE`: the `added_*` variables are local dates there.
    pub time_zone: chrono_tz::Tz,
}

impl Default for FilenameSettings {
    fn default() -> Self {
        FilenameSettings {
            format: None,
            remove_none: false,
            time_zone: chrono_tz::UTC,
        }
    }
}

impl FilenameSettings {
    /// From the settings; an unknown time zone is an error naming the setting.
    pub fn from_config(config: &Config) -> Result<FilenameSettings, String> {
        let time_zone = config.time_zone.parse::<chrono_tz::Tz>().map_err(|e| {
            format!(
                "setting {}={:?} is not a time zone (e.g. Europe/Berlin): {e}",
                paperboy_shared::config::names::TIME_ZONE,
                config.time_zone
            )
        })?;
        if let Some(f) = &config.filename_format
            && template::uses_legacy_syntax(f)
        {
            tracing::debug!(
                "{} uses the legacy {{placeholder}} syntax; it is converted, but {{{{ placeholder }}}} is preferred",
                paperboy_shared::config::names::FILENAME_FORMAT
            );
        }
        Ok(FilenameSettings {
            format: config.filename_format.clone().filter(|f| !f.is_empty()),
            remove_none: config.filename_format_remove_none,
            time_zone,
        })
    }
}

/// A storage path as the template sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoragePathRef {
    pub id: i64,
    pub name: String,
    pub path: String,
}

/// One custom field value (`value` as JSON: a select field's value is its option's label).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue {
    pub name: String,
    pub data_type: String,
    pub value: serde_json::Value,
}

/// Everything a file name may depend on. For a version row: the root document's fields, with
/// the version's `version_index` and `mime_type`.
#[derive(Debug, Clone)]
pub struct NameInfo {
    pub id: i64,
    pub version_index: Option<i64>,
    pub title: String,
    pub content: String,
    pub page_count: Option<i64>,
    pub created: NaiveDate,
    pub added: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub archive_serial_number: Option<i64>,
    pub mime_type: String,
    pub checksum: String,
    pub archive_checksum: Option<String>,
    pub filename: Option<String>,
    pub archive_filename: Option<String>,
    pub original_filename: Option<String>,
    /// (id, username).
    pub owner: Option<(i64, String)>,
    pub correspondent: Option<(i64, String)>,
    pub document_type: Option<(i64, String)>,
    pub storage_path: Option<StoragePathRef>,
    pub tags: Vec<(i64, String)>,
    pub custom_fields: Vec<FieldValue>,
}

impl Default for NameInfo {
    fn default() -> Self {
        NameInfo {
            id: 1,
            version_index: None,
            title: String::new(),
            content: String::new(),
            page_count: None,
            created: NaiveDate::from_ymd_opt(2020, 1, 1).expect("a date"),
            added: DateTime::<Utc>::UNIX_EPOCH,
            modified: DateTime::<Utc>::UNIX_EPOCH,
            archive_serial_number: None,
            mime_type: "application/pdf".into(),
            checksum: String::new(),
            archive_checksum: None,
            filename: None,
            archive_filename: None,
            original_filename: None,
            owner: None,
            correspondent: None,
            document_type: None,
            storage_path: None,
            tags: Vec::new(),
            custom_fields: Vec::new(),
        }
    }
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl NameInfo {
    /// From what [`paperboy_shared::db::files::naming`] loaded.
    pub fn from_data(d: &NamingData) -> NameInfo {
        // A version row is named after its root (template, title, …) with its own suffix and
        // extension.
        let base = d.root.as_ref().unwrap_or(&d.document);
        let doc = &d.document;
        let custom_fields = d
            .custom_fields
            .iter()
            .map(|f| FieldValue {
                name: f.name.clone(),
                data_type: f.data_type.clone(),
                value: f.value.clone(),
            })
            .collect();
        NameInfo {
            id: base.id,
            version_index: d.root.as_ref().and(doc.version_index),
            title: base.title.clone(),
            content: base.content.clone(),
            page_count: base.page_count,
            created: NaiveDate::parse_from_str(&base.created, "%Y-%m-%d").unwrap_or(NaiveDate::MIN),
            added: parse_time(&base.added),
            modified: parse_time(&base.modified),
            archive_serial_number: base.archive_serial_number,
            mime_type: doc.mime_type.clone(),
            checksum: base.checksum.clone(),
            archive_checksum: base.archive_checksum.clone(),
            filename: base.filename.clone(),
            archive_filename: base.archive_filename.clone(),
            original_filename: base.original_filename.clone(),
            owner: d.owner.clone(),
            correspondent: d.correspondent.clone(),
            document_type: d.document_type.clone(),
            storage_path: d.storage_path.as_ref().map(|s| StoragePathRef {
                id: s.id,
                name: s.name.clone(),
                path: s.path.clone(),
            }),
            tags: d.tags.clone(),
            custom_fields,
        }
    }
}

/// Original or archive version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Original,
    Archive,
}

/// The default extension of a MIME type, without the dot (§5.1).
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        "image/gif" => "gif",
        "image/bmp" => "bmp",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "message/rfc822" => "eml",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow" => "ppsx",
        "application/vnd.oasis.opendocument.presentation" => "odp",
        "application/vnd.oasis.opendocument.spreadsheet" => "ods",
        "application/vnd.oasis.opendocument.text" => "odt",
        "application/vnd.oasis.opendocument.graphics" => "odg",
        "application/rtf" | "text/rtf" => "rtf",
        "text/html" => "html",
        _ => return None,
    })
}

/// Where the rendered path (directory + last component, no extension) came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Namer {
    /// The document (root) id of the default name.
    id: i64,
    version_index: Option<i64>,
    /// Extension of the original, without the dot.
    extension: Option<String>,
    /// The cleaned rendering; None = the default name.
    rendered: Option<String>,
    /// Why the default name is used although a template is set.
    pub warning: Option<String>,
}

impl Namer {
    /// Renders the document's template once (§5.2–§5.5).
    pub fn new(info: &NameInfo, settings: &FilenameSettings) -> Namer {
        let extension = extension_for_mime(&info.mime_type)
            .map(str::to_string)
            .or_else(|| {
                // Unknown type: keep the extension the file has.
                info.filename
                    .as_deref()
                    .or(info.original_filename.as_deref())
                    .and_then(|f| Path::new(f).extension())
                    .map(|e| e.to_string_lossy().to_lowercase())
            });
        let mut namer = Namer {
            id: info.id,
            version_index: info.version_index,
            extension,
            rendered: None,
            warning: None,
        };
        let Some(template) = template_source(info, settings) else {
            return namer;
        };
        match render_path(info, settings, &template) {
            Ok(p) => namer.rendered = Some(p),
            Err(w) => {
                tracing::warn!(document_id = info.id, "{w}; using the default file name");
                namer.warning = Some(w);
            }
        }
        namer
    }

    /// The name for `counter` (0: none, else `_NN`), §5.4 step 6.
    pub fn candidate(&self, which: Which, counter: u32) -> String {
        let base = self
            .rendered
            .clone()
            .unwrap_or_else(|| format!("{:07}", self.id));
        self.assemble(&base, which, counter)
    }

    fn assemble(&self, base: &str, which: Which, counter: u32) -> String {
        let mut name = base.to_string();
        if let Some(v) = self.version_index {
            name.push_str(&format!("_v{v}"));
        }
        if counter > 0 {
            name.push_str(&format!("_{counter:02}"));
        }
        let ext = match which {
            Which::Archive => Some("pdf"),
            Which::Original => self.extension.as_deref(),
        };
        if let Some(ext) = ext {
            name.push('.');
            name.push_str(ext);
        }
        name
    }

    /// The default name (`0000042.pdf`, `0000042_v2_03.txt`).
    pub fn default_name(&self, which: Which, counter: u32) -> String {
        self.assemble(&format!("{:07}", self.id), which, counter)
    }
}

/// §5.2: the storage path's template, else the setting (legacy syntax converted), else none.
pub fn template_source(info: &NameInfo, settings: &FilenameSettings) -> Option<String> {
    if let Some(sp) = &info.storage_path {
        return Some(sp.path.clone());
    }
    settings
        .format
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(template::convert_legacy)
}

/// Render, clean, check and apply the "none" rules; Err = the warning for the default name.
fn render_path(info: &NameInfo, settings: &FilenameSettings, tmpl: &str) -> Result<String, String> {
    thread_local! {
        static ENV: minijinja::Environment<'static> = template::environment();
    }
    let ctx = template::context(info, settings.time_zone);
    let rendered = ENV.with(|env| template::render(env, tmpl, &ctx))?;
    let cleaned = clean(&rendered);
    let safe = check_safe(&cleaned)?;
    let final_path = apply_none_rules(&safe, settings.remove_none);
    let final_path = normalise_components(&final_path)?;
    if final_path.is_empty() {
        return Err("Template rendered an empty path".into());
    }
    if final_path.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "Template rendered a path longer than {MAX_NAME_CHARS} characters"
        ));
    }
    Ok(final_path)
}

/// §5.4 step 3: NFC, no `\n`/`\r`, no whitespace around `/`, trimmed, no leading/trailing `/`.
pub fn clean(rendered: &str) -> String {
    let s: String = rendered
        .nfc()
        .filter(|c| *c != '\n' && *c != '\r')
        .collect();
    // Trimming every part removes the blanks around each `/` and at both ends.
    let joined = s.split('/').map(str::trim).collect::<Vec<_>>().join("/");
    joined.trim_matches('/').to_string()
}

/// §5.4 step 4: absolute paths, drives and `..` components are refused.
fn check_safe(path: &str) -> Result<String, String> {
    let unsafe_path = path.starts_with('/')
        || path.starts_with('\\')
        || path.as_bytes().get(1) == Some(&b':') && path.as_bytes()[0].is_ascii_alphabetic()
        || path.split(['/', '\\']).any(|c| c == "..");
    if unsafe_path {
        return Err(format!(
            "Template rendered an unsafe path {path:?} (absolute or with `..`)"
        ));
    }
    Ok(path.to_string())
}

/// Empty and `.` components dropped (`a//b`, `a/./b` → `a/b`), `..` refused.
fn normalise_components(path: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("Template rendered an unsafe path {path:?}")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// §5.5.
pub fn apply_none_rules(path: &str, remove_none: bool) -> String {
    let mut s = path.to_string();
    let none = template::NONE_TEXT;
    if remove_none {
        s = s.replace(&format!("/{none}/"), "/");
        s = s.replace(&format!(" {none}"), "");
        s = s.replace(none, "");
        s = s.trim_matches('/').to_string();
    }
    s.replace(none, "none")
}

/// The original's name for a document (counter 0): what the exporter's `-f` and other jobs
/// call. Use [`Namer`] and [`unique_original`] when the name must be free on disk.
#[cfg_attr(not(test), allow(dead_code))] // the exporter's `-f` (issue 4) calls it
pub fn generate_filename(info: &NameInfo, settings: &FilenameSettings) -> String {
    Namer::new(info, settings).candidate(Which::Original, 0)
}

/// §5.7 for originals: the first candidate that is the current name or free in `dir`. Names
/// over [`MAX_NAME_CHARS`] fall back to the default name.
pub fn unique_original(namer: &Namer, dir: &Path, current: Option<&str>) -> String {
    unique_in(namer, Which::Original, dir, current)
}

/// §5.7 for archives: first `<dir of the archive name>/<stem of the original's name>.pdf`
/// (keeps archive names aligned with originals), then the counter loop.
pub fn unique_archive(
    namer: &Namer,
    dir: &Path,
    current: Option<&str>,
    original_name: &str,
) -> String {
    let generated = namer.candidate(Which::Archive, 0);
    let parent = Path::new(&generated)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = Path::new(original_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !stem.is_empty() {
        let aligned = if parent.is_empty() {
            format!("{stem}.pdf")
        } else {
            format!("{parent}/{stem}.pdf")
        };
        if aligned.chars().count() <= MAX_NAME_CHARS
            && (Some(aligned.as_str()) == current || !dir.join(&aligned).exists())
        {
            return aligned;
        }
    }
    unique_in(namer, Which::Archive, dir, current)
}

fn unique_in(namer: &Namer, which: Which, dir: &Path, current: Option<&str>) -> String {
    let first = namer.candidate(which, 0);
    let use_default = first.chars().count() > MAX_NAME_CHARS;
    for counter in 0.. {
        let name = if use_default {
            namer.default_name(which, counter)
        } else {
            namer.candidate(which, counter)
        };
        if Some(name.as_str()) == current || !dir.join(&name).exists() {
            return name;
        }
    }
    unreachable!("some counter is free")
}

#[cfg(test)]
mod tests;
