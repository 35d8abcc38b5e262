//! `paperboy import SOURCE`: validate everything (records, references, paths, file checksums),
//! staging the files under the media root meanwhile; then one transaction, the staged files
//! renamed into place, commit. Any failure removes the staged and moved files and rolls back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use paperboy_shared::db::transfer::{self, Kind, MODELS, Model, RowData, Val, model};
use paperboy_shared::job::{ImportArgs, Job};
use paperboy_shared::media::{self, Folder, Media};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::crypto::{Crypto, SENSITIVE};
use super::record::from_record;
use super::{
    confined_file, for_each_record, forget_passphrase, perm, read_passphrase, safe_relative,
};
use crate::jobs::{JobContext, JobError};

const MAX_PROBLEMS: usize = 50;

pub async fn run(args: ImportArgs, ctx: &JobContext) -> Result<Value, JobError> {
    let pass = read_passphrase(ctx.config(), &args.passphrase_file);
    let r = match pass {
        Ok(p) => import(&args, p, ctx).await,
        Err(e) => Err(e),
    };
    if !matches!(r, Err(JobError::Transient(_))) {
        forget_passphrase(ctx.config(), &args.passphrase_file);
    }
    r
}

/// Everything learnt in the validation pass.
#[derive(Default)]
struct Plan {
    manifests: Vec<PathBuf>,
    /// pk → index of the manifest that holds it, per stored model.
    seen: HashMap<&'static str, HashMap<i64, usize>>,
    skipped: BTreeMap<String, u64>,
    unknown: BTreeMap<String, u64>,
    translated: BTreeMap<String, u64>,
    /// Documents whose MD5 checksum (≤ 2.x export) becomes the SHA-256 of the file.
    new_checksum: HashMap<i64, (Option<String>, Option<String>)>,
    problems: Vec<String>,
    files: u64,
    /// PAPERBOY_TIME_ZONE: ≤ 2.15 `created` datetimes become dates in it.
    tz: chrono_tz::Tz,
}

impl Plan {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

async fn import(
    args: &ImportArgs,
    pass: Option<String>,
    ctx: &JobContext,
) -> Result<Value, JobError> {
    let source = PathBuf::from(&args.source);
    if !source.exists() {
        return Err(perm(format!(
            "That path doesn't exist: {}",
            source.display()
        )));
    }
    let tz = super::time_zone(ctx.config())?;
    let media = Media::from_config(ctx.config());
    media.ensure_dirs().map_err(JobError::from_classified)?;
    // What upstream only warns about is said in the result (and in an error, if one follows).
    let mut notices: Vec<String> = vec![];
    if !args.data_only {
        for folder in [Folder::Originals, Folder::Archive] {
            if let Some(f) = first_file(&media.dir(folder)) {
                notices.push(format!(
                    "Found file {f}, this might indicate a non-empty installation"
                ));
            }
        }
    }
    let refuse = |notices: &[String], msg: String| -> JobError {
        if notices.is_empty() {
            perm(msg)
        } else {
            perm(format!("{msg}\nnotices: {}", notices.join("; ")))
        }
    };
    // A zip is extracted into a private folder under the data dir (removed at the end).
    let _extracted;
    let root = if source.is_file() {
        std::fs::create_dir_all(&ctx.config().data_dir)
            .map_err(|e| super::io_err("cannot create", &ctx.config().data_dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".import-")
            .tempdir_in(&ctx.config().data_dir)
            .map_err(|e| super::io_err("cannot create a folder in", &ctx.config().data_dir, e))?;
        let s = source.clone();
        let t = tmp.path().to_path_buf();
        tokio::task::spawn_blocking(move || extract_zip(&s, &t))
            .await
            .map_err(|e| perm(e.to_string()))?
            .map_err(|e| refuse(&notices, e))?;
        let root = tmp.path().to_path_buf();
        _extracted = tmp;
        root
    } else {
        std::fs::read_dir(&source).map_err(|_| {
            refuse(
                &notices,
                format!(
                    "That path doesn't appear to be readable: {}",
                    source.display()
                ),
            )
        })?;
        source.clone()
    };
    if !root.join("manifest.json").is_file() {
        return Err(refuse(
            &notices,
            "That directory doesn't appear to contain a manifest.json file.".into(),
        ));
    }
    let (version, crypto) =
        metadata(&root, pass.as_deref(), &mut notices).map_err(|e| refuse(&notices, e))?;

    if !args.allow_existing {
        let mut conn = ctx
            .db()
            .pool
            .acquire()
            .await
            .map_err(paperboy_shared::db::DbError::from)?;
        let mut found = vec![];
        for m in MODELS {
            let n = transfer::count(&mut conn, m).await?;
            if n > 0 {
                found.push(format!("{n} {}", m.label));
            }
        }
        if !found.is_empty() {
            return Err(refuse(
                &notices,
                format!(
                    "the archive is not empty ({}): import into an empty archive, or pass \
                 --allow-existing (then any record whose id or unique name exists aborts the import; \
                 nothing is overwritten)",
                    found.join(", ")
                ),
            ));
        }
    }

    // Staging under the media root: renames into place stay on one file system.
    let staging = tempfile::Builder::new()
        .prefix(".paperboy-import-")
        .tempdir_in(media.root())
        .map_err(|e| super::io_err("cannot create a staging folder in", media.root(), e))?;

    ctx.progress(0, 0, "validating");
    let plan = {
        let root = root.clone();
        let stage = staging.path().to_path_buf();
        let media_root = media.root().to_path_buf();
        let data_only = args.data_only;
        let verify = !args.no_verify;
        let crypto = crypto.clone();
        tokio::task::spawn_blocking(move || {
            validate(
                &root,
                &stage,
                &Media::new(media_root),
                data_only,
                verify,
                crypto.as_deref(),
                tz,
            )
        })
        .await
        .map_err(|e| perm(e.to_string()))?
    };
    if !plan.problems.is_empty() {
        let more = if plan.problems.len() == MAX_PROBLEMS {
            " (first 50 shown)"
        } else {
            ""
        };
        return Err(refuse(
            &notices,
            format!(
                "the export is refused, nothing was imported{more}:\n  {}",
                plan.problems.join("\n  ")
            ),
        ));
    }
    ctx.check_cancelled()?;

    let total: u64 = plan.seen.values().map(|s| s.len() as u64).sum();
    ctx.progress(0, total, "loading");
    let mut tx = ctx.db().begin().await?;
    let loaded = load(&mut tx, &plan, crypto.as_deref(), ctx, total).await;
    if let Err(e) = loaded {
        let _ = tx.rollback().await;
        return Err(e);
    }
    transfer::reset_sequences(&mut tx, ctx.db().engine).await?;
    // The staged files on disk (one `syncfs`), then moved in, then the renames on disk, and
    // only then the commit: a committed import never names a file a power loss took.
    let moved = {
        let (stage, root) = (staging.path().to_path_buf(), media.root().to_path_buf());
        tokio::task::spawn_blocking(move || {
            super::sync_fs(&stage)
                .map_err(|e| (vec![], super::io_err("cannot flush", &stage, e)))?;
            let moved = move_in(&stage, &root)?;
            match super::sync_fs(&root) {
                Ok(()) => Ok(moved),
                Err(e) => Err((moved, super::io_err("cannot flush", &root, e))),
            }
        })
        .await
        .map_err(|e| perm(e.to_string()))?
    };
    let moved = match moved {
        Ok(m) => m,
        Err((moved, e)) => {
            remove_all(&moved);
            let _ = tx.rollback().await;
            return Err(e);
        }
    };
    if let Err(e) = tx.commit().await {
        remove_all(&moved);
        return Err(JobError::from(paperboy_shared::db::DbError::from(e)));
    }
    let counts: BTreeMap<&str, usize> = plan.seen.iter().map(|(k, v)| (*k, v.len())).collect();
    // Many documents at once: rebuild the index rather than update it document by document.
    if let Err(e) = ctx.enqueue(&Job::IndexReindex { if_needed: false }).await {
        tracing::warn!(error = %e, "cannot queue the reindex after the import");
    }
    Ok(json!({
        "version": version,
        "imported": counts,
        "files": moved.len(),
        "skipped_models": plan.skipped,
        "unknown_fields": plan.unknown,
        "translated": plan.translated,
        "notices": notices,
    }))
}

/// The first regular file under `dir` (relative to it), if any.
fn first_file(dir: &Path) -> Option<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_type().is_file())
        .and_then(|e| {
            e.path()
                .strip_prefix(dir)
                .ok()
                .map(|p| p.display().to_string())
        })
}

/// `metadata.json` (else the ≤ 2.9 `version.json`): the version and the crypto parameters.
fn metadata(
    root: &Path,
    pass: Option<&str>,
    notices: &mut Vec<String>,
) -> Result<(Option<String>, Option<std::sync::Arc<Crypto>>), String> {
    let meta = ["metadata.json", "version.json"]
        .iter()
        .map(|n| root.join(n))
        .find(|p| p.is_file());
    let Some(meta) = meta else {
        notices.push("No version.json or metadata.json file located".into());
        if pass.is_some() {
            return Err("a passphrase was given but the export has no metadata.json".into());
        }
        return Ok((None, None));
    };
    let name = meta.file_name().unwrap_or_default().to_string_lossy();
    let text = std::fs::read_to_string(&meta)
        .map_err(|e| format!("cannot read {}: {e}", meta.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("Failed to parse {name}: {e}"))?;
    let version = v["version"].as_str().map(str::to_string);
    if let Some(v) = &version
        && v != super::FORMAT_VERSION
    {
        notices.push(format!(
            "Version mismatch: Currently {}, importing {v}. Older records are upgraded on the \
             fly (see translated); fields paperboy does not know are listed in unknown_fields",
            super::FORMAT_VERSION
        ));
    }
    let crypto = match (&v["__crypto__"], pass) {
        (Value::Null, _) => None,
        (_, None) => {
            return Err(
                "No passphrase was given, but this export contains encrypted fields".into(),
            );
        }
        (c, Some(p)) => Some(std::sync::Arc::new(Crypto::from_metadata(p, c)?)),
    };
    Ok((version, crypto))
}

/// Extracts a zip, refusing entries that leave the folder, symlinks, and damaged archives.
fn extract_zip(zip: &Path, into: &Path) -> Result<(), String> {
    let f = std::fs::File::open(zip).map_err(|e| format!("cannot open {}: {e}", zip.display()))?;
    let mut a = zip::ZipArchive::new(f).map_err(|e| {
        format!(
            "{} is not a readable zip (truncated or damaged?): {e}",
            zip.display()
        )
    })?;
    for i in 0..a.len() {
        let mut e = a.by_index(i).map_err(|e| format!("zip entry {i}: {e}"))?;
        let name = e
            .name()
            .map_err(|err| format!("zip entry {i} has an invalid name: {err}"))?
            .to_string();
        if e.is_symlink() {
            return Err(format!("zip entry {name:?} is a symbolic link: refused"));
        }
        let rel =
            safe_relative(name.trim_end_matches('/')).map_err(|m| format!("zip entry {m}"))?;
        let path = into.join(rel);
        if e.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        let mut out = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        std::io::copy(&mut e, &mut out).map_err(|err| {
            format!("zip entry {name:?} cannot be read (truncated or damaged?): {err}")
        })?;
    }
    Ok(())
}

fn manifests(root: &Path) -> Vec<PathBuf> {
    let mut split: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type().is_file() && e.file_name().to_string_lossy().ends_with("-manifest.json")
        })
        .map(|e| e.into_path())
        .collect();
    split.sort();
    let mut all = vec![root.join("manifest.json")];
    all.append(&mut split);
    all
}

/// Copies `src` to `dst` (new file, parents created) and returns its SHA-256, and its MD5 when
/// `md5` (a ≤ 2.x checksum to verify). Not flushed one by one: the import flushes the staging
/// folder's file system once before it moves the files in.
fn stage_copy(src: &Path, dst: &Path, md5: bool) -> std::io::Result<(String, Option<String>)> {
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut input = std::fs::File::open(src)?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)?;
    let (mut sha, mut md5) = (Sha256::new(), md5.then(Md5::new));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        if let Some(m) = &mut md5 {
            m.update(&buf[..n]);
        }
        out.write_all(&buf[..n])?;
    }
    if let Ok(t) = std::fs::metadata(src).and_then(|m| m.modified()) {
        let _ = out.set_modified(t);
    }
    Ok((
        hex::encode(sha.finalize()),
        md5.map(|m| hex::encode(m.finalize())),
    ))
}

fn text<'a>(m: &Model, row: &'a RowData, field: &str) -> Option<&'a str> {
    let i = m.cols.iter().position(|c| c.field == field)?;
    match &row.vals[i] {
        Val::Text(s) => Some(s),
        _ => None,
    }
}

/// Where a document's original goes: its `filename` (a GnuPG-era `.gpg` suffix dropped: the
/// exported file is plain), else `<pk:07><ext>`.
fn original_name(m: &Model, row: &RowData, exported: &str) -> String {
    match text(m, row, "filename") {
        Some(f) => f.strip_suffix(".gpg").unwrap_or(f).to_string(),
        None => {
            let ext = Path::new(exported)
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            media::default_filename(row.pk, ext.trim_start_matches('.'))
        }
    }
}

fn validate(
    root: &Path,
    stage: &Path,
    media: &Media,
    data_only: bool,
    verify: bool,
    crypto: Option<&Crypto>,
    tz: chrono_tz::Tz,
) -> Plan {
    let mut plan = Plan {
        manifests: manifests(root),
        tz,
        ..Plan::default()
    };
    let mut refs: Vec<(&'static str, i64, &'static str, &'static str, i64)> = vec![];
    let mut dest_seen: HashSet<u128> = HashSet::new();
    let files = plan.manifests.clone();
    for (idx, file) in files.iter().enumerate() {
        let fname = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        let r = for_each_record(file, |mut rec| {
            if let Some(t) = super::legacy_label(&mut rec) {
                *plan.translated.entry(t.to_string()).or_default() += 1;
            }
            let label = rec["model"].as_str().unwrap_or_default().to_string();
            if label == "documents.document"
                && !data_only
                && !rec["__exported_file_name__"].is_string()
            {
                plan.problem(format!(
                    "{fname}: {label} {}: The manifest file contains a record which does not \
                     refer to an actual document file.",
                    rec["pk"]
                ));
                return Ok(());
            }
            let Some(pk) = super::pk_of(&rec["pk"]) else {
                let raw = match &rec["pk"] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                plan.problem(format!("{fname}: {label}: Could not coerce pk={raw}"));
                return Ok(());
            };
            let Some(m) = model(&label) else {
                if super::UNSTORED_MODELS.contains(&label.as_str()) {
                    *plan.skipped.entry(label).or_default() += 1;
                } else {
                    plan.problem(format!(
                        "{fname}: Invalid model identifier: {label:?} (pk {pk}) is not a \
                         paperless-ngx model paperboy knows"
                    ));
                }
                return Ok(());
            };
            let what = format!("{fname}: {label} {pk}");
            let empty = serde_json::Map::new();
            let fields = rec["fields"].as_object().unwrap_or(&empty);
            let d = match from_record(m, pk, fields, tz) {
                Ok(d) => d,
                Err(e) => {
                    plan.problem(format!("{fname}: {e}"));
                    return Ok(());
                }
            };
            for u in d.unknown {
                *plan.unknown.entry(u).or_default() += 1;
            }
            for t in d.translated {
                *plan.translated.entry(t.to_string()).or_default() += 1;
            }
            let row = d.row.expect("decoded");
            if let Some(prev) = plan.seen.entry(m.label).or_default().insert(pk, idx) {
                let other = plan.manifests[prev]
                    .strip_prefix(root)
                    .unwrap_or(&plan.manifests[prev])
                    .display()
                    .to_string();
                plan.problem(format!("{what}: duplicate pk, also in {other}"));
            }
            // References to records seen already are fine; only the others are kept, to be
            // checked once every manifest has been read.
            let known = |plan: &Plan, t: &str, id: i64| {
                plan.seen.get(t).is_some_and(|s| s.contains_key(&id))
            };
            for (c, v) in m.cols.iter().zip(&row.vals) {
                if let (Kind::Fk(t), Val::Int(id)) = (c.kind, v)
                    && !known(&plan, t, *id)
                {
                    refs.push((m.label, pk, c.field, t, *id));
                }
            }
            for (l, ids) in &d.links {
                for id in ids {
                    if !known(&plan, l.target, *id) {
                        refs.push((m.label, pk, l.field, l.target, *id));
                    }
                }
            }
            if let Some((_, fs)) = SENSITIVE.iter().find(|(l, _)| *l == m.label)
                && let Some(c) = crypto
            {
                for f in *fs {
                    if let Some(v) = text(m, &row, f).filter(|v| !v.is_empty())
                        && let Err(e) = c.decrypt(v)
                    {
                        plan.problem(format!("{what}: {f}: {e}"));
                    }
                }
            }
            if m.label == "documents.document" && !data_only {
                check_document_files(
                    &mut plan,
                    &mut dest_seen,
                    root,
                    stage,
                    media,
                    verify,
                    m,
                    &row,
                    &rec,
                    &what,
                );
            }
            Ok(())
        });
        if let Err(e) = r {
            plan.problem(e);
        }
    }
    for (label, pk, field, target, id) in refs {
        let ok = plan.seen.get(target).is_some_and(|s| s.contains_key(&id));
        if !ok {
            plan.problem(format!(
                "{label} {pk}: {field} refers to {target} {id}, which is not in the export"
            ));
        }
    }
    plan
}

#[allow(clippy::too_many_arguments)]
fn check_document_files(
    plan: &mut Plan,
    dest_seen: &mut HashSet<u128>,
    root: &Path,
    stage: &Path,
    media: &Media,
    verify: bool,
    m: &Model,
    row: &RowData,
    rec: &Value,
    what: &str,
) {
    // Checked before the record was decoded.
    let Some(exported) = rec["__exported_file_name__"].as_str() else {
        return;
    };
    let checksum = text(m, row, "checksum").unwrap_or_default().to_string();
    let archive_checksum = text(m, row, "archive_checksum").map(str::to_string);
    let original = original_name(m, row, exported);
    let archive = text(m, row, "archive_filename").map(str::to_string);
    let mut entries: Vec<(&str, &str, String, Option<String>)> = vec![(
        "original",
        exported,
        format!("{}/{original}", Folder::Originals.dir_name()),
        Some(checksum),
    )];
    if let Some(t) = rec["__exported_thumbnail_name__"].as_str() {
        entries.push((
            "thumbnail",
            t,
            format!(
                "{}/{}",
                Folder::Thumbnails.dir_name(),
                media::thumbnail_filename(row.pk)
            ),
            None,
        ));
    }
    if let Some(a) = rec["__exported_archive_name__"].as_str() {
        let Some(archive) = archive else {
            plan.problem(format!(
                "{what}: has an archive file {a:?} but no archive_filename"
            ));
            return;
        };
        entries.push((
            "archive",
            a,
            format!("{}/{archive}", Folder::Archive.dir_name()),
            archive_checksum,
        ));
    }
    let mut new_sums = (None, None);
    for (kind, name, dest, expect) in entries {
        let src = match safe_relative(name).and_then(|rel| confined_file(root, &rel)) {
            Ok(p) => p,
            Err(e) => {
                plan.problem(format!("{what}: {kind} file: The manifest file {e}"));
                continue;
            }
        };
        let dest_rel = match safe_relative(&dest) {
            Ok(d) => d,
            Err(e) => {
                plan.problem(format!("{what}: {kind} destination: {e}"));
                continue;
            }
        };
        if !dest_seen.insert(super::export::name_key(&dest)) {
            plan.problem(format!(
                "{what}: {kind} destination {dest} is used by two documents"
            ));
            continue;
        }
        if std::fs::symlink_metadata(media.root().join(&dest_rel)).is_ok() {
            plan.problem(format!(
                "{what}: {kind}: {dest} exists already in the media root"
            ));
            continue;
        }
        let want_md5 = verify && expect.as_ref().is_some_and(|e| e.len() == 32);
        match stage_copy(&src, &stage.join(&dest_rel), want_md5) {
            Err(e) => plan.problem(format!(
                "{what}: Failed to read from {kind} file {name}: {e}"
            )),
            Ok((sha, md5)) => {
                plan.files += 1;
                let Some(expect) = expect.filter(|_| verify) else {
                    continue;
                };
                // The MD5 was computed exactly when `expect` is one (`want_md5`).
                let ok = match md5 {
                    Some(md5) => md5 == expect.to_ascii_lowercase(),
                    None => sha == expect.to_ascii_lowercase(),
                };
                if !ok {
                    plan.problem(format!(
                        "{what}: {kind} file {name}: checksum mismatch (manifest {expect}, file sha256 {sha})"
                    ));
                } else if expect.len() == 32 {
                    if kind == "original" {
                        new_sums.0 = Some(sha);
                    } else {
                        new_sums.1 = Some(sha);
                    }
                }
            }
        }
    }
    if new_sums.0.is_some() || new_sums.1.is_some() {
        *plan
            .translated
            .entry("MD5 checksum -> SHA-256 (verified)".into())
            .or_default() += 1;
        plan.new_checksum.insert(row.pk, new_sums);
    }
}

const LATE: &[&str] = &[
    "documents.document",
    "documents.note",
    "documents.customfieldinstance",
];

/// A row and its many-to-many links (table, ids), as read from the manifest.
type RowWithLinks = (RowData, Vec<(&'static transfer::M2m, Vec<i64>)>);

async fn load(
    tx: &mut paperboy_shared::db::Tx,
    plan: &Plan,
    crypto: Option<&Crypto>,
    ctx: &JobContext,
    total: u64,
) -> Result<(), JobError> {
    let mut done = 0u64;
    // Phase 1: the small models, buffered, in foreign-key order.
    let mut early: BTreeMap<usize, Vec<RowWithLinks>> = BTreeMap::new();
    read_all(
        plan,
        |m, _| !LATE.contains(&m.label),
        |m, mut d| {
            let row = d.row.as_mut().expect("decoded");
            if let (Some((_, fs)), Some(c)) =
                (SENSITIVE.iter().find(|(l, _)| *l == m.label), crypto)
            {
                for (col, v) in m.cols.iter().zip(row.vals.iter_mut()) {
                    if fs.contains(&col.field)
                        && let Val::Text(s) = v
                        && !s.is_empty()
                    {
                        *s = c.decrypt(s)?;
                    }
                }
            }
            let i = MODELS
                .iter()
                .position(|x| x.label == m.label)
                .expect("stored");
            early
                .entry(i)
                .or_default()
                .push((d.row.take().expect("decoded"), d.links));
            Ok(())
        },
    )
    .map_err(perm)?;
    for (i, rows) in &early {
        let m = &MODELS[*i];
        for (row, _) in rows {
            transfer::insert_row(tx, m, row)
                .await
                .map_err(|e| insert_err(m, row.pk, e))?;
            done += 1;
        }
        for (row, _) in rows {
            transfer::set_self_refs(tx, m, row)
                .await
                .map_err(|e| insert_err(m, row.pk, e))?;
        }
    }
    for (i, rows) in &early {
        for (row, links) in rows {
            for (l, ids) in links {
                transfer::insert_links(tx, l, row.pk, ids)
                    .await
                    .map_err(|e| insert_err(&MODELS[*i], row.pk, e))?;
            }
        }
    }
    ctx.progress(done, total, "documents");
    // Phase 2 and 3: documents, then their notes and custom field values, streamed.
    for labels in [&LATE[..1], &LATE[1..]] {
        let (txr, mut rx) = tokio::sync::mpsc::channel::<
            Result<
                (
                    &'static Model,
                    RowData,
                    Vec<(&'static transfer::M2m, Vec<i64>)>,
                ),
                String,
            >,
        >(256);
        let manifests = plan.manifests.clone();
        let tz = plan.tz;
        let labels: Vec<&'static str> = labels.to_vec();
        let reader = tokio::task::spawn_blocking(move || {
            let p = Plan {
                manifests,
                tz,
                ..Plan::default()
            };
            let r = read_all(
                &p,
                |m, _| labels.contains(&m.label),
                |m, mut d| {
                    let row = d.row.take().expect("decoded");
                    txr.blocking_send(Ok((m, row, d.links)))
                        .map_err(|_| "stopped".to_string())
                },
            );
            if let Err(e) = r {
                let _ = txr.blocking_send(Err(e));
            }
        });
        let mut roots = vec![];
        while let Some(item) = rx.recv().await {
            let (m, mut row, links) = item.map_err(perm)?;
            if m.label == "documents.document" {
                fix_document(m, &mut row, plan);
                // Only rows that name another document (versions) wait for the second pass;
                // keeping every row here held all documents, content included, in memory.
                let names_one = m
                    .cols
                    .iter()
                    .zip(&row.vals)
                    .any(|(c, v)| c.kind == Kind::Fk(m.label) && *v != Val::Null);
                if names_one {
                    roots.push(row.clone());
                }
            }
            transfer::insert_row(tx, m, &row)
                .await
                .map_err(|e| insert_err(m, row.pk, e))?;
            for (l, ids) in &links {
                transfer::insert_links(tx, l, row.pk, ids)
                    .await
                    .map_err(|e| insert_err(m, row.pk, e))?;
            }
            done += 1;
            if done.is_multiple_of(200) {
                ctx.progress(done, total, "loading");
                ctx.check_cancelled()?;
            }
        }
        reader.await.map_err(|e| perm(e.to_string()))?;
        let m = model("documents.document").expect("stored");
        for row in &roots {
            transfer::set_self_refs(tx, m, row)
                .await
                .map_err(|e| insert_err(m, row.pk, e))?;
        }
    }
    ctx.progress(done, total, "moving files");
    Ok(())
}

fn fix_document(m: &Model, row: &mut RowData, plan: &Plan) {
    for (c, v) in m.cols.iter().zip(row.vals.iter_mut()) {
        match (c.field, &mut *v) {
            ("filename", Val::Text(f)) if f.ends_with(".gpg") => {
                f.truncate(f.len() - 4);
            }
            ("checksum", _) => {
                if let Some((Some(s), _)) = plan.new_checksum.get(&row.pk) {
                    *v = Val::Text(s.clone());
                }
            }
            ("archive_checksum", _) => {
                if let Some((_, Some(s))) = plan.new_checksum.get(&row.pk) {
                    *v = Val::Text(s.clone());
                }
            }
            _ => {}
        }
    }
}

fn insert_err(m: &Model, pk: i64, e: paperboy_shared::db::DbError) -> JobError {
    let msg = format!("Database import failed at {} {pk}: {e}", m.label);
    match JobError::from(e) {
        JobError::Transient(_) => JobError::Transient(msg),
        JobError::Permanent(_) => JobError::Permanent(msg),
    }
}

type Decoded = super::record::Decoded;

/// Streams every record of every manifest that `want`s, decoded.
fn read_all(
    plan: &Plan,
    want: impl Fn(&'static Model, &Value) -> bool,
    mut f: impl FnMut(&'static Model, Decoded) -> Result<(), String>,
) -> Result<(), String> {
    for file in &plan.manifests {
        for_each_record(file, |mut rec| {
            super::legacy_label(&mut rec);
            let Some(m) = rec["model"].as_str().and_then(model) else {
                return Ok(());
            };
            if !want(m, &rec) {
                return Ok(());
            }
            let pk = super::pk_of(&rec["pk"]).unwrap_or_default();
            let empty = serde_json::Map::new();
            let d = from_record(m, pk, rec["fields"].as_object().unwrap_or(&empty), plan.tz)?;
            f(m, d)
        })?;
    }
    Ok(())
}

/// Renames every staged file into the media root (parents created). On failure: what was moved.
fn move_in(stage: &Path, root: &Path) -> Result<Vec<PathBuf>, (Vec<PathBuf>, JobError)> {
    let mut moved = vec![];
    for e in walkdir::WalkDir::new(stage)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
    {
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e.path().strip_prefix(stage).expect("under stage");
        let dest = root.join(rel);
        let r = dest
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| {
                if std::fs::symlink_metadata(&dest).is_ok() {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "exists already",
                    ))
                } else {
                    std::fs::rename(e.path(), &dest)
                }
            });
        match r {
            Ok(()) => moved.push(dest),
            Err(err) => return Err((moved, super::io_err("cannot move a file into", &dest, err))),
        }
    }
    Ok(moved)
}

fn remove_all(files: &[PathBuf]) {
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}
