//! Settings: `PAPERBOY_*` environment variables, each also readable from a file named by
//! `PAPERBOY_*_FILE` (container secrets), with paperless-ngx's `PAPERLESS_*` name as a fallback
//! where paperless-ngx has the same setting. Command-line flags override (the binaries apply them
//! on top of [`Config::from_env`]).
//!
//! Every setting is declared once in [`SETTINGS`]; the README's settings table is generated from
//! it (`paperboy settings --markdown`) and a test checks that the README carries it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::error::{Classify, ErrorClass};

/// One setting: its name, the paperless-ngx fallback, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub paperless: Option<&'static str>,
    pub default: &'static str,
    pub help: &'static str,
}

macro_rules! settings {
    ($( $ident:ident = ($name:literal, $pl:expr, $default:literal, $help:literal); )*) => {
        /// Names of every setting, as constants.
        pub mod names { $( pub const $ident: &str = $name; )* }
        /// Every setting paperboy reads.
        pub const SETTINGS: &[Setting] = &[
            $( Setting { name: $name, paperless: $pl, default: $default, help: $help }, )*
        ];
    };
}

settings! {
    REDIS_URL = ("PAPERBOY_REDIS_URL", Some("PAPERLESS_REDIS"), "redis://127.0.0.1:6379",
        "Redis URL; `rediss://` for TLS, `redis://:password@host:port/db` for a password.");
    REDIS_PREFIX = ("PAPERBOY_REDIS_PREFIX", Some("PAPERLESS_REDIS_PREFIX"), "paperboy",
        "Prefix of every Redis key, so several instances and test runs share one Redis.");
    DATA_DIR = ("PAPERBOY_DATA_DIR", Some("PAPERLESS_DATA_DIR"), "./data",
        "Data folder: the SQLite database, the staging area, the index, the classifier model.");
    MEDIA_ROOT = ("PAPERBOY_MEDIA_ROOT", Some("PAPERLESS_MEDIA_ROOT"), "./media",
        "Media root: `originals/`, `archive/`, `thumbnails/`. A shared volume when workers span hosts.");
    CONSUMPTION_DIR = ("PAPERBOY_CONSUMPTION_DIR", Some("PAPERLESS_CONSUMPTION_DIR"), "./consume",
        "Folder a worker watches for new files.");
    DATABASE_URL = ("PAPERBOY_DATABASE_URL", None, "",
        "`sqlite://PATH` or `postgres://user:pass@host/db`; empty means SQLite at DATA_DIR/paperboy.sqlite3.");
    METRICS_ADDR = ("PAPERBOY_METRICS_ADDR", None, "127.0.0.1:9464",
        "Address of the worker's HTTP server (`/metrics`, `/healthz`, `/readyz`, `/`).");
    ADDR_FILE = ("PAPERBOY_ADDR_FILE", None, "",
        "If set, the worker writes its bound HTTP address to this file once listening (supervisors, tests; useful with port 0).");
    LEASE_SECS = ("PAPERBOY_LEASE_SECS", None, "30",
        "A worker's lease on its jobs; renewed every third of it. A dead worker's jobs come back after it.");
    GRACE_SECS = ("PAPERBOY_GRACE_SECS", None, "30",
        "On SIGTERM/SIGINT, how long running jobs may take to finish before they are given back.");
    RETENTION_HOURS = ("PAPERBOY_RETENTION_HOURS", None, "168",
        "How long finished jobs (and their results) are kept.");
    DEAD_RETENTION_HOURS = ("PAPERBOY_DEAD_RETENTION_HOURS", None, "720",
        "How long dead jobs are kept for `paperboy jobs retry`.");
    QUEUES = ("PAPERBOY_QUEUES", None, "all",
        "Comma-separated queues a worker serves (`all` for every queue).");
    CONCURRENCY = ("PAPERBOY_CONCURRENCY", Some("PAPERLESS_TASK_WORKERS"), "",
        "Jobs run at once per queue; empty: number of cores for CPU-heavy queues, 8 for the rest.");
    LOG_FORMAT = ("PAPERBOY_LOG_FORMAT", None, "text", "`text` or `json`.");
    LOG_LEVEL = ("PAPERBOY_LOG_LEVEL", Some("PAPERLESS_LOGLEVEL"), "info",
        "tracing filter, e.g. `info` or `paperboy_worker=debug`.");
    CONSUMER_DELETE_DUPLICATES = ("PAPERBOY_CONSUMER_DELETE_DUPLICATES", Some("PAPERLESS_CONSUMER_DELETE_DUPLICATES"), "false",
        "Delete a consumed file that duplicates a document (otherwise it goes to the failed folder).");
    CONSUMER_POLLING = ("PAPERBOY_CONSUMER_POLLING", Some("PAPERLESS_CONSUMER_POLLING"), "0",
        "Seconds between scans of the consumption folder; 0 uses inotify.");
    CONSUMER_SUBDIRS_AS_TAGS = ("PAPERBOY_CONSUMER_SUBDIRS_AS_TAGS", Some("PAPERLESS_CONSUMER_SUBDIRS_AS_TAGS"), "false",
        "Sub-folders of the consumption folder become tags.");
    CONSUMER_STABILITY_DELAY = ("PAPERBOY_CONSUMER_STABILITY_DELAY", Some("PAPERLESS_CONSUMER_STABILITY_DELAY"), "5",
        "Seconds a file in the consumption folder must stay unchanged (size, mtime) before it is taken.");
    CONSUMER_RECURSIVE = ("PAPERBOY_CONSUMER_RECURSIVE", Some("PAPERLESS_CONSUMER_RECURSIVE"), "false",
        "Watch sub-folders of the consumption folder too.");
    DATE_ORDER = ("PAPERBOY_DATE_ORDER", Some("PAPERLESS_DATE_ORDER"), "DMY",
        "Order of day, month and year in numeric dates found in documents (DMY, MDY, YMD, ...).");
    FILENAME_DATE_ORDER = ("PAPERBOY_FILENAME_DATE_ORDER", Some("PAPERLESS_FILENAME_DATE_ORDER"), "",
        "If set, a date in the file name is tried first (e.g. YMD).");
    IGNORE_DATES = ("PAPERBOY_IGNORE_DATES", Some("PAPERLESS_IGNORE_DATES"), "",
        "Comma-separated dates (YYYY-MM-DD) never taken as a document's created date, e.g. a birth date.");
    THUMBNAIL_WIDTH = ("PAPERBOY_THUMBNAIL_WIDTH", None, "500", "Maximum thumbnail width in pixels.");
    SCHEDULER = ("PAPERBOY_SCHEDULER", None, "true",
        "Take part in the election of the one worker that fires the periodic jobs (`false`: never lead).");
    PING_CRON = ("PAPERBOY_PING_CRON", None, "disable",
        "Schedule of a `ping` job: a canary that shows the schedule firing (cron, 5 fields or 6 with seconds first; `disable`).");
    SANITY_TASK_CRON = ("PAPERBOY_SANITY_TASK_CRON", Some("PAPERLESS_SANITY_TASK_CRON"), "30 0 * * sun",
        "Schedule of the sanity check (cron; `disable`). paperless-ngx's default: Sundays 00:30 UTC.");
    OCR_LANGUAGE = ("PAPERBOY_OCR_LANGUAGE", Some("PAPERLESS_OCR_LANGUAGE"), "eng",
        "Tesseract languages joined by `+` (`deu+eng`); each needs its `tesseract-ocr-<lang>` package.");
    OCR_MODE = ("PAPERBOY_OCR_MODE", Some("PAPERLESS_OCR_MODE"), "auto",
        "`auto` (OCR images and PDFs without a text layer), `force` / `redo` (OCR every PDF page too), `off`. Legacy `skip`/`skip_noarchive` mean `auto`.");
    OCR_PAGES = ("PAPERBOY_OCR_PAGES", Some("PAPERLESS_OCR_PAGES"), "0",
        "OCR only the first N pages of a PDF; 0 for all.");
    OCR_DPI = ("PAPERBOY_OCR_DPI", None, "300",
        "Resolution PDF pages are rendered at for OCR (paperless renders through Ghostscript at 300 too).");
    OCR_TIMEOUT_SECS = ("PAPERBOY_OCR_TIMEOUT_SECS", None, "180",
        "Longest a tesseract run on one page may take; past it the page is skipped and the document stored with the text found so far.");
    ARCHIVE_FILE_GENERATION = ("PAPERBOY_ARCHIVE_FILE_GENERATION", Some("PAPERLESS_ARCHIVE_FILE_GENERATION"), "auto",
        "When a searchable PDF/A archive version is made: `auto` (images and PDFs that are not born-digital), `always`, `never`. paperless-ngx 2's `PAPERLESS_OCR_SKIP_ARCHIVE_FILE` (never/with_text/always) is read too when this is unset.");
    OCR_IMAGE_DPI = ("PAPERBOY_OCR_IMAGE_DPI", Some("PAPERLESS_OCR_IMAGE_DPI"), "",
        "DPI of image pages in the archive version (sizes the page); empty: the image's width taken as an A4 page (an image's own DPI is not read yet).");
    OCR_MAX_IMAGE_PIXELS = ("PAPERBOY_OCR_MAX_IMAGE_PIXELS", Some("PAPERLESS_OCR_MAX_IMAGE_PIXELS"), "89478485",
        "Largest image (pixels, width × height) decoded or rendered for OCR and the archive; larger images fail their document, larger PDF pages are rendered at a lower DPI. 0: no limit.");
    ARCHIVE_MAX_PAGES = ("PAPERBOY_ARCHIVE_MAX_PAGES", None, "2000",
        "A PDF with more pages gets no archive version (a clear error instead of hours of OCR); 0: no limit.");
    FILENAME_FORMAT = ("PAPERBOY_FILENAME_FORMAT", Some("PAPERLESS_FILENAME_FORMAT"), "",
        "Template of stored file names (Jinja, or legacy `{title}` placeholders), e.g. `{{ created_year }}/{{ correspondent }}/{{ title }}`; empty: `0000042.pdf`. A storage path's template wins.");
    FILENAME_FORMAT_REMOVE_NONE = ("PAPERBOY_FILENAME_FORMAT_REMOVE_NONE", Some("PAPERLESS_FILENAME_FORMAT_REMOVE_NONE"), "false",
        "Drop empty values (`-none-`) from rendered file names instead of writing `none`.");
    TIME_ZONE = ("PAPERBOY_TIME_ZONE", Some("PAPERLESS_TIME_ZONE"), "UTC",
        "Time zone of the `added_*` file name variables (IANA name, e.g. Europe/Berlin).");
    PASSPHRASE = ("PAPERBOY_PASSPHRASE", Some("PAPERLESS_PASSPHRASE"), "",
        "Passphrase of GnuPG-era documents, read by the workers that run `decrypt-documents` and `export` (which decrypts them on the way; prefer `PAPERBOY_PASSPHRASE_FILE`); never put in Redis.");
    SANITY_IGNORE = ("PAPERBOY_SANITY_IGNORE", None, ".DS_Store,.DS_STORE,._*,.stfolder,.stversions,.localized,desktop.ini,@eaDir,Thumbs.db,.media-*.part",
        "Comma-separated globs of names the sanity checker never reports as orphans (a matching folder is skipped whole).");
    TRAIN_TASK_CRON = ("PAPERBOY_TRAIN_TASK_CRON", Some("PAPERLESS_TRAIN_TASK_CRON"), "5 */1 * * *",
        "Schedule of `train-classifier` (cron; `disable`). A run whose training data did not change stops after one read of the labels.");
    MODEL_FILE = ("PAPERBOY_MODEL_FILE", None, "",
        "The classifier's model file; empty: DATA_DIR/classification_model.paperboy (paperless's pickle cannot be read: a moved-in archive trains again).");
    CLASSIFIER_THRESHOLD = ("PAPERBOY_CLASSIFIER_THRESHOLD", None, "0.5",
        "Least probability the classifier needs to give a document an AUTO correspondent, type or storage path (0 to 1); below it the field stays empty.");
    SECRET_KEY = ("PAPERBOY_SECRET_KEY", Some("PAPERLESS_SECRET_KEY"), "",
        "Key that signs the classifier's model file (HMAC-SHA256); empty: a random key kept in DATA_DIR/classifier.key.");
    SEARCH_LANGUAGE = ("PAPERBOY_SEARCH_LANGUAGE", Some("PAPERLESS_SEARCH_LANGUAGE"), "",
        "Stemming language of the full-text index (ISO 639-1 code or English name: ar da nl en fi fr de el hu it no pt ro ru es sv ta tr); empty: from the first OCR language, none if unsupported. A change makes `index reindex --if-needed` rebuild.");
    ADVANCED_FUZZY_SEARCH_THRESHOLD = ("PAPERBOY_ADVANCED_FUZZY_SEARCH_THRESHOLD", Some("PAPERLESS_ADVANCED_FUZZY_SEARCH_THRESHOLD"), "",
        "If set (0 to 1), `search` also matches words one typo away (boost 0.1) and drops results scoring below this share of the best one; empty: exact words only.");
    EMAIL_TASK_CRON = ("PAPERBOY_EMAIL_TASK_CRON", Some("PAPERLESS_EMAIL_TASK_CRON"), "*/10 * * * *",
        "Schedule of the mail fetch over every account (cron; `disable`). paperless-ngx's default: every 10 minutes.");
    MAIL_TIMEOUT_SECS = ("PAPERBOY_MAIL_TIMEOUT_SECS", None, "60",
        "Longest an IMAP connect, login or single command may take before the fetch gives up on the account (and retries later).");
    MAIL_CONSUME_WAIT_SECS = ("PAPERBOY_MAIL_CONSUME_WAIT_SECS", None, "1800",
        "How long a mail fetch waits for the consume jobs of its messages before it ends (retried later, the messages stay queued, nothing is queued twice).");
    EMAIL_CERTIFICATE_LOCATION = ("PAPERBOY_EMAIL_CERTIFICATE_LOCATION", Some("PAPERLESS_EMAIL_CERTIFICATE_LOCATION"), "",
        "PEM file of extra CA certificates trusted for IMAP over TLS (besides the built-in web roots), e.g. a company CA or a self-signed server.");
    INDEX_TASK_CRON = ("PAPERBOY_INDEX_TASK_CRON", Some("PAPERLESS_INDEX_TASK_CRON"), "0 0 * * *",
        "Schedule of `index optimize` (cron; `disable`). paperless-ngx's default: daily at 00:00 UTC.");
    EMPTY_TRASH_TASK_CRON = ("PAPERBOY_EMPTY_TRASH_TASK_CRON", Some("PAPERLESS_EMPTY_TRASH_TASK_CRON"), "0 1 * * *",
        "Schedule of `empty-trash` (cron; `disable`). paperless-ngx's default: daily at 01:00 UTC.");
    EMPTY_TRASH_DELAY = ("PAPERBOY_EMPTY_TRASH_DELAY", Some("PAPERLESS_EMPTY_TRASH_DELAY"), "30",
        "Days a document stays in the trash before `empty-trash` deletes it for good (at least 1).");
    EMPTY_TRASH_DIR = ("PAPERBOY_EMPTY_TRASH_DIR", Some("PAPERLESS_EMPTY_TRASH_DIR"), "",
        "If set, `empty-trash` moves the originals and archive versions of the documents it deletes into this folder instead of deleting them.");
    EXPORT_PASSPHRASE = ("PAPERBOY_EXPORT_PASSPHRASE", None, "",
        "Passphrase for `paperboy export/import --passphrase` (read by the CLI only, never put in Redis); use the `_FILE` form for a secret.");
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("setting {name}: cannot read the file {path} named by {name}_FILE: {source}")]
    SecretFile {
        name: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setting {name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl Classify for ConfigError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// A source of raw values; the process environment in production, a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: std::hash::BuildHasher> Env for std::collections::HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

fn setting(name: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.name == name)
        .expect("every looked-up setting is declared in SETTINGS")
}

/// Reads one setting: `NAME`, then `NAME_FILE`, then the paperless-ngx name (and its `_FILE`),
/// then the default. Empty values count as unset. A trailing newline in a secret file is dropped.
pub fn lookup(env: &dyn Env, name: &'static str) -> Result<String, ConfigError> {
    let s = setting(name);
    for candidate in std::iter::once(s.name).chain(s.paperless) {
        if let Some(v) = env.var(candidate).filter(|v| !v.is_empty()) {
            return Ok(v);
        }
        if let Some(path) = env
            .var(&format!("{candidate}_FILE"))
            .filter(|v| !v.is_empty())
        {
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                    name: s.name,
                    path: PathBuf::from(&path),
                    source,
                })?;
            return Ok(text.trim_end_matches(['\r', '\n']).to_string());
        }
    }
    Ok(s.default.to_string())
}

fn parse<T: std::str::FromStr>(env: &dyn Env, name: &'static str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let v = lookup(env, name)?;
    v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
        name,
        value: v.clone(),
        reason: e.to_string(),
    })
}

fn parse_bool(env: &dyn Env, name: &'static str) -> Result<bool, ConfigError> {
    let v = lookup(env, name)?;
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" | "t" => Ok(true),
        "0" | "false" | "no" | "n" | "off" | "f" | "" => Ok(false),
        _ => Err(ConfigError::Invalid {
            name,
            value: v,
            reason: "expected true or false".into(),
        }),
    }
}

fn parse_dates(env: &dyn Env, name: &'static str) -> Result<Vec<chrono::NaiveDate>, ConfigError> {
    let v = lookup(env, name)?;
    v.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|e| ConfigError::Invalid {
                name,
                value: v.clone(),
                reason: format!("{d:?} is not a date YYYY-MM-DD ({e})"),
            })
        })
        .collect()
}

/// Everything both binaries need to know. Build with [`Config::from_env`], then let flags
/// override fields.
#[derive(Debug, Clone)]
pub struct Config {
    pub redis_url: String,
    pub redis_prefix: String,
    pub data_dir: PathBuf,
    pub media_root: PathBuf,
    pub consumption_dir: PathBuf,
    pub database_url: String,
    pub metrics_addr: String,
    pub lease: Duration,
    pub grace: Duration,
    pub retention: Duration,
    pub dead_retention: Duration,
    pub queues: String,
    pub concurrency: Option<usize>,
    pub log_format: String,
    pub log_level: String,
    pub consumer_delete_duplicates: bool,
    pub consumer_polling: u64,
    pub consumer_subdirs_as_tags: bool,
    pub consumer_recursive: bool,
    pub consumer_stability_delay: Duration,
    pub date_order: String,
    pub filename_date_order: Option<String>,
    pub ignore_dates: Vec<chrono::NaiveDate>,
    pub thumbnail_width: u32,
    pub scheduler: bool,
    /// Cron expression (or `disable`) per schedule entry, by setting name.
    pub schedules: Vec<(&'static str, String)>,
    pub ocr_language: String,
    pub ocr_mode: OcrMode,
    /// 0: every page.
    pub ocr_pages: u32,
    pub ocr_dpi: u32,
    pub ocr_timeout: Duration,
    pub archive_file_generation: ArchiveGeneration,
    /// DPI of images without one (None: their own, else the A4 estimate).
    pub ocr_image_dpi: Option<u32>,
    /// 0: no limit.
    pub ocr_max_image_pixels: u64,
    /// 0: no limit.
    pub archive_max_pages: u32,
    /// IMAP connect/login/command timeout.
    pub mail_timeout: Duration,
    /// How long a fetch waits for its consume jobs.
    pub mail_consume_wait: Duration,
    /// Extra CA certificates (PEM) for IMAP over TLS.
    pub email_certificate_location: Option<PathBuf>,
    /// Things that are accepted but worth telling the operator (legacy values, …); the worker logs
    /// them at start.
    pub warnings: Vec<String>,
    pub filename_format: Option<String>,
    pub filename_format_remove_none: bool,
    pub time_zone: String,
    pub sanity_ignore: Vec<String>,
    /// Secret: never logged (Debug prints `***`), never in Redis.
    pub passphrase: Option<Secret>,
    pub model_file: Option<PathBuf>,
    /// 0..=1.
    pub classifier_threshold: f32,
    /// Secret: signs the classifier's model file.
    pub secret_key: Option<Secret>,
    /// Days in the trash before a document is deleted for good (≥ 1).
    pub empty_trash_delay_days: u32,
    /// Where `empty-trash` moves deleted documents' files (None: they are deleted).
    pub empty_trash_dir: Option<PathBuf>,
    /// `PAPERBOY_SEARCH_LANGUAGE` as given (None: empty); the worker's index resolves it.
    pub search_language: Option<String>,
    /// `PAPERBOY_ADVANCED_FUZZY_SEARCH_THRESHOLD`: fuzzy clauses and the score cutoff (None: off).
    pub fuzzy_search_threshold: Option<f32>,
}

/// The settings that hold a schedule entry's cron expression (the worker's scheduler parses
/// them; an entry per periodic job kind).
pub const SCHEDULE_SETTINGS: &[&str] = &[
    names::PING_CRON,
    names::SANITY_TASK_CRON,
    names::TRAIN_TASK_CRON,
    names::EMAIL_TASK_CRON,
    names::INDEX_TASK_CRON,
    names::EMPTY_TRASH_TASK_CRON,
];

/// When the consume step runs tesseract (paperless-ngx 3.0.5's `PAPERLESS_OCR_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcrMode {
    /// Images, and PDFs that are not born-digital (no text layer, or ≤ 50 characters of it).
    Auto,
    /// Every image and every PDF page, replacing the text layer's text.
    Force,
    /// As `Force` for the text (paperless strips the invisible text layer and OCRs again).
    Redo,
    /// Never: PDFs keep their text layer's text, images get none.
    Off,
}

impl OcrMode {
    /// Parses a value; the second part is a warning for legacy values.
    pub fn parse(value: &str) -> Result<(OcrMode, Option<String>), String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok((OcrMode::Auto, None)),
            "force" => Ok((OcrMode::Force, None)),
            "redo" => Ok((OcrMode::Redo, None)),
            "off" => Ok((OcrMode::Off, None)),
            legacy @ ("skip" | "skip_noarchive") => Ok((
                OcrMode::Auto,
                Some(format!(
                    "{}={legacy} is a paperless-ngx 2 value; it means `auto` now (set auto, force, redo or off)",
                    names::OCR_MODE
                )),
            )),
            _ => Err("expected auto, force, redo or off".into()),
        }
    }
}

/// When an archive version is made (paperless-ngx 3.0.5's `PAPERLESS_ARCHIVE_FILE_GENERATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveGeneration {
    /// Images, and PDFs that are not born-digital.
    Auto,
    /// Every image and PDF (text files never).
    Always,
    /// None.
    Never,
}

impl ArchiveGeneration {
    pub fn parse(value: &str) -> Result<ArchiveGeneration, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ArchiveGeneration::Auto),
            "always" => Ok(ArchiveGeneration::Always),
            "never" => Ok(ArchiveGeneration::Never),
            _ => Err("expected auto, always or never".into()),
        }
    }

    /// paperless-ngx 2's `PAPERLESS_OCR_SKIP_ARCHIVE_FILE`, mapped as its v3 migration does.
    pub fn from_v2_skip_archive_file(value: &str) -> Result<ArchiveGeneration, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "never" => Ok(ArchiveGeneration::Always),
            "with_text" => Ok(ArchiveGeneration::Auto),
            "always" => Ok(ArchiveGeneration::Never),
            _ => Err("expected never, with_text or always".into()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ArchiveGeneration::Auto => "auto",
            ArchiveGeneration::Always => "always",
            ArchiveGeneration::Never => "never",
        }
    }
}

/// paperless-ngx 2's name of the archive setting (read when neither archive name is set).
pub const PAPERLESS_V2_SKIP_ARCHIVE_FILE: &str = "PAPERLESS_OCR_SKIP_ARCHIVE_FILE";

/// The archive generation setting: the v3 names, else the v2 one (with a warning), else auto.
/// paperless 2's `skip_noarchive` OCR mode also meant "no archive for PDFs with text": auto.
fn archive_generation(
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<ArchiveGeneration, ConfigError> {
    use names::ARCHIVE_FILE_GENERATION;
    let set = |n: &str| {
        env.var(n).is_some_and(|v| !v.is_empty())
            || env.var(&format!("{n}_FILE")).is_some_and(|v| !v.is_empty())
    };
    let v3_set = set(ARCHIVE_FILE_GENERATION) || set("PAPERLESS_ARCHIVE_FILE_GENERATION");
    if !v3_set
        && let Some(v2) = env
            .var(PAPERLESS_V2_SKIP_ARCHIVE_FILE)
            .filter(|v| !v.is_empty())
    {
        let g = ArchiveGeneration::from_v2_skip_archive_file(&v2).map_err(|reason| {
            ConfigError::Invalid {
                name: ARCHIVE_FILE_GENERATION,
                value: format!("{PAPERLESS_V2_SKIP_ARCHIVE_FILE}={v2}"),
                reason,
            }
        })?;
        warnings.push(format!(
            "{PAPERLESS_V2_SKIP_ARCHIVE_FILE}={v2} is a paperless-ngx 2 setting; read as {ARCHIVE_FILE_GENERATION}={}",
            g.name()
        ));
        return Ok(g);
    }
    let v = lookup(env, ARCHIVE_FILE_GENERATION)?;
    ArchiveGeneration::parse(&v).map_err(|reason| ConfigError::Invalid {
        name: ARCHIVE_FILE_GENERATION,
        value: v,
        reason,
    })
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&ProcessEnv)
    }

    pub fn from(env: &dyn Env) -> Result<Self, ConfigError> {
        use names::*;
        let data_dir = PathBuf::from(lookup(env, DATA_DIR)?);
        let mut database_url = lookup(env, DATABASE_URL)?;
        if database_url.is_empty() {
            database_url = default_sqlite_url(&data_dir);
        }
        let concurrency = lookup(env, CONCURRENCY)?;
        let concurrency = if concurrency.trim().is_empty() {
            None
        } else {
            Some(parse::<usize>(env, CONCURRENCY)?)
        };
        let filename_date_order = Some(lookup(env, FILENAME_DATE_ORDER)?).filter(|s| !s.is_empty());
        let mut warnings = Vec::new();
        let classifier_threshold: f32 = parse(env, CLASSIFIER_THRESHOLD)?;
        if !(0.0..=1.0).contains(&classifier_threshold) {
            return Err(ConfigError::Invalid {
                name: CLASSIFIER_THRESHOLD,
                value: classifier_threshold.to_string(),
                reason: "a probability between 0 and 1".into(),
            });
        }
        let fuzzy = lookup(env, ADVANCED_FUZZY_SEARCH_THRESHOLD)?;
        let fuzzy_search_threshold = match fuzzy.trim() {
            "" => None,
            v => match v.parse::<f32>() {
                Ok(t) if (0.0..=1.0).contains(&t) => Some(t),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: ADVANCED_FUZZY_SEARCH_THRESHOLD,
                        value: fuzzy.clone(),
                        reason: "a share of the best score between 0 and 1, or empty".into(),
                    });
                }
            },
        };
        let ocr_mode_value = lookup(env, OCR_MODE)?;
        let (ocr_mode, warning) =
            OcrMode::parse(&ocr_mode_value).map_err(|reason| ConfigError::Invalid {
                name: OCR_MODE,
                value: ocr_mode_value.clone(),
                reason,
            })?;
        warnings.extend(warning);
        let ocr_language = lookup(env, OCR_LANGUAGE)?;
        let valid_language = |l: &str| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !ocr_language.split('+').all(valid_language) {
            return Err(ConfigError::Invalid {
                name: OCR_LANGUAGE,
                value: ocr_language,
                reason: "expected tesseract language codes joined by `+`, e.g. deu+eng".into(),
            });
        }
        let ocr_dpi: u32 = parse(env, OCR_DPI)?;
        if !(50..=1200).contains(&ocr_dpi) {
            return Err(ConfigError::Invalid {
                name: OCR_DPI,
                value: ocr_dpi.to_string(),
                reason: "expected 50 to 1200".into(),
            });
        }
        let archive_file_generation = archive_generation(env, &mut warnings)?;
        let ocr_image_dpi = match lookup(env, OCR_IMAGE_DPI)?.trim() {
            "" => None,
            _ => Some(parse::<u32>(env, OCR_IMAGE_DPI)?.clamp(1, 4800)),
        };
        // paperless: negative means "not passed" (the library's default): ours.
        let max_pixels: i64 = parse(env, OCR_MAX_IMAGE_PIXELS)?;
        let ocr_max_image_pixels = if max_pixels < 0 {
            89_478_485
        } else {
            max_pixels as u64
        };
        Ok(Config {
            archive_file_generation,
            ocr_image_dpi,
            ocr_max_image_pixels,
            archive_max_pages: parse(env, ARCHIVE_MAX_PAGES)?,
            redis_url: lookup(env, REDIS_URL)?,
            redis_prefix: lookup(env, REDIS_PREFIX)?,
            media_root: PathBuf::from(lookup(env, MEDIA_ROOT)?),
            consumption_dir: PathBuf::from(lookup(env, CONSUMPTION_DIR)?),
            data_dir,
            database_url,
            metrics_addr: lookup(env, METRICS_ADDR)?,
            lease: Duration::from_secs(parse(env, LEASE_SECS)?),
            grace: Duration::from_secs(parse(env, GRACE_SECS)?),
            retention: Duration::from_secs(parse::<u64>(env, RETENTION_HOURS)? * 3600),
            dead_retention: Duration::from_secs(parse::<u64>(env, DEAD_RETENTION_HOURS)? * 3600),
            queues: lookup(env, QUEUES)?,
            concurrency,
            log_format: lookup(env, LOG_FORMAT)?,
            log_level: lookup(env, LOG_LEVEL)?,
            consumer_delete_duplicates: parse_bool(env, CONSUMER_DELETE_DUPLICATES)?,
            consumer_polling: parse(env, CONSUMER_POLLING)?,
            consumer_subdirs_as_tags: parse_bool(env, CONSUMER_SUBDIRS_AS_TAGS)?,
            consumer_recursive: parse_bool(env, CONSUMER_RECURSIVE)?,
            consumer_stability_delay: Duration::try_from_secs_f64(parse::<f64>(
                env,
                CONSUMER_STABILITY_DELAY,
            )?)
            .map_err(|e| ConfigError::Invalid {
                name: CONSUMER_STABILITY_DELAY,
                value: lookup(env, CONSUMER_STABILITY_DELAY).unwrap_or_default(),
                reason: format!("expected seconds ≥ 0 ({e})"),
            })?,
            date_order: lookup(env, DATE_ORDER)?,
            filename_date_order,
            ignore_dates: parse_dates(env, IGNORE_DATES)?,
            thumbnail_width: parse(env, THUMBNAIL_WIDTH)?,
            scheduler: parse_bool(env, SCHEDULER)?,
            schedules: SCHEDULE_SETTINGS
                .iter()
                .map(|name| Ok((*name, lookup(env, name)?)))
                .collect::<Result<_, ConfigError>>()?,
            ocr_language,
            ocr_mode,
            ocr_pages: parse(env, OCR_PAGES)?,
            ocr_dpi,
            ocr_timeout: Duration::from_secs(parse::<u64>(env, OCR_TIMEOUT_SECS)?.max(1)),
            mail_timeout: Duration::from_secs(parse::<u64>(env, MAIL_TIMEOUT_SECS)?.max(1)),
            mail_consume_wait: Duration::from_secs(parse::<u64>(env, MAIL_CONSUME_WAIT_SECS)?),
            empty_trash_delay_days: parse::<u32>(env, EMPTY_TRASH_DELAY)?.max(1),
            empty_trash_dir: Some(lookup(env, EMPTY_TRASH_DIR)?)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            email_certificate_location: Some(lookup(env, EMAIL_CERTIFICATE_LOCATION)?)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            warnings,
            filename_format: Some(lookup(env, FILENAME_FORMAT)?).filter(|s| !s.is_empty()),
            filename_format_remove_none: parse_bool(env, FILENAME_FORMAT_REMOVE_NONE)?,
            time_zone: lookup(env, TIME_ZONE)?,
            passphrase: Some(lookup(env, PASSPHRASE)?)
                .filter(|s| !s.is_empty())
                .map(Secret),
            model_file: Some(lookup(env, MODEL_FILE)?)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            classifier_threshold,
            secret_key: Some(lookup(env, SECRET_KEY)?)
                .filter(|s| !s.is_empty())
                .map(Secret),
            search_language: Some(lookup(env, SEARCH_LANGUAGE)?.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty()),
            fuzzy_search_threshold,
            sanity_ignore: lookup(env, SANITY_IGNORE)?
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// A secret setting: its Debug form is `***`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// SQLite inside the data folder, created if missing.
pub fn default_sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("paperboy.sqlite3").display()
    )
}

/// The README's settings table.
pub fn settings_markdown() -> String {
    let mut out = String::from(
        "| setting | paperless-ngx fallback | default | meaning |\n|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", s.default)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.name,
            s.paperless.map(|p| format!("`{p}`")).unwrap_or_default(),
            default,
            s.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = Config::from(&env(&[])).unwrap();
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(c.redis_prefix, "paperboy");
        assert_eq!(c.lease, Duration::from_secs(30));
        assert_eq!(c.database_url, "sqlite://./data/paperboy.sqlite3?mode=rwc");
        assert_eq!(c.concurrency, None);
    }

    #[test]
    fn paperboy_name_wins_over_paperless_fallback() {
        let e = env(&[
            ("PAPERLESS_REDIS", "redis://fallback:6379"),
            ("PAPERBOY_REDIS_URL", "redis://primary:6379"),
        ]);
        assert_eq!(Config::from(&e).unwrap().redis_url, "redis://primary:6379");
        let e = env(&[("PAPERLESS_REDIS", "redis://fallback:6379")]);
        assert_eq!(Config::from(&e).unwrap().redis_url, "redis://fallback:6379");
    }

    #[test]
    fn file_variant_reads_a_secret_and_drops_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("url");
        std::fs::write(&p, "redis://:s3cret@host:6379\n").unwrap();
        let e = env(&[("PAPERBOY_REDIS_URL_FILE", p.to_str().unwrap())]);
        assert_eq!(
            Config::from(&e).unwrap().redis_url,
            "redis://:s3cret@host:6379"
        );
    }

    #[test]
    fn missing_secret_file_names_the_setting() {
        let e = env(&[("PAPERBOY_REDIS_URL_FILE", "/nonexistent/secret")]);
        let err = Config::from(&e).unwrap_err().to_string();
        assert!(err.contains("PAPERBOY_REDIS_URL"), "{err}");
        assert!(err.contains("/nonexistent/secret"), "{err}");
    }

    #[test]
    fn invalid_number_is_a_clear_error() {
        let e = env(&[("PAPERBOY_LEASE_SECS", "soon")]);
        let err = Config::from(&e).unwrap_err().to_string();
        assert!(err.contains("PAPERBOY_LEASE_SECS=\"soon\""), "{err}");
    }

    #[test]
    fn ignore_dates_are_a_comma_separated_list() {
        let e = env(&[("PAPERLESS_IGNORE_DATES", "1996-02-20, 2020-01-17,")]);
        let c = Config::from(&e).unwrap();
        assert_eq!(
            c.ignore_dates,
            vec![
                chrono::NaiveDate::from_ymd_opt(1996, 2, 20).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2020, 1, 17).unwrap()
            ]
        );
        assert!(Config::from(&env(&[])).unwrap().ignore_dates.is_empty());
        let err = Config::from(&env(&[("PAPERBOY_IGNORE_DATES", "20.02.1996")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PAPERBOY_IGNORE_DATES"), "{err}");
    }

    #[test]
    fn archive_generation_v3_names_then_the_v2_setting() {
        let g =
            |pairs: &[(&str, &str)]| Config::from(&env(pairs)).map(|c| c.archive_file_generation);
        assert_eq!(g(&[]).unwrap(), ArchiveGeneration::Auto);
        assert_eq!(
            g(&[("PAPERLESS_ARCHIVE_FILE_GENERATION", "always")]).unwrap(),
            ArchiveGeneration::Always
        );
        assert_eq!(
            g(&[
                ("PAPERBOY_ARCHIVE_FILE_GENERATION", "never"),
                ("PAPERLESS_OCR_SKIP_ARCHIVE_FILE", "never")
            ])
            .unwrap(),
            ArchiveGeneration::Never
        );
        // v2: never → always, with_text → auto, always → never.
        for (v2, v3) in [
            ("never", ArchiveGeneration::Always),
            ("with_text", ArchiveGeneration::Auto),
            ("always", ArchiveGeneration::Never),
        ] {
            let c = Config::from(&env(&[("PAPERLESS_OCR_SKIP_ARCHIVE_FILE", v2)])).unwrap();
            assert_eq!(c.archive_file_generation, v3, "{v2}");
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.contains("PAPERLESS_OCR_SKIP_ARCHIVE_FILE"))
            );
        }
        assert!(g(&[("PAPERBOY_ARCHIVE_FILE_GENERATION", "sometimes")]).is_err());
        let c = Config::from(&env(&[("PAPERLESS_OCR_MAX_IMAGE_PIXELS", "-1")])).unwrap();
        assert_eq!(c.ocr_max_image_pixels, 89_478_485);
        let c = Config::from(&env(&[("PAPERLESS_OCR_MAX_IMAGE_PIXELS", "0")])).unwrap();
        assert_eq!(c.ocr_max_image_pixels, 0);
    }

    #[test]
    fn markdown_lists_every_setting() {
        let md = settings_markdown();
        for s in SETTINGS {
            assert!(md.contains(s.name));
        }
    }

    #[test]
    fn the_readme_carries_the_generated_settings_table() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(settings_markdown().trim_end()),
            "README.md's settings table is out of date: paste `paperboy settings --markdown` into it"
        );
    }
}
