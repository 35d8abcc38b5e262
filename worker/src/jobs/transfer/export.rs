//! `paperboy export TARGET`: one read snapshot of the database, records streamed into
//! `manifest.json.tmp` (renamed into place last, so the previous export stays readable), files
//! copied when changed (mtime + size, or `-c` checksums), `-d` removing only what a previous
//! export wrote and this one no longer writes (`prune`; symlinks never followed), `-z` zipping it.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use paperboy_shared::config::Secret;
use paperboy_shared::db::files;
use paperboy_shared::db::transfer::{self, Model, RowData, Val, model};
use paperboy_shared::job::ExportArgs;
use paperboy_shared::media::{self, Folder, Media};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::crypto::{Crypto, SENSITIVE};
use super::prune;
use super::record::RecordOut;
use super::{FORMAT_VERSION, forget_passphrase, io_err, perm, read_passphrase, sync_fs};
use crate::filenames::{self, FilenameSettings, NameInfo, Namer, Which};
use crate::jobs::decrypt;
use crate::jobs::{JobContext, JobError};

/// Manifest order of paperless-ngx 3.0.5 (for the models paperboy stores); documents last.
const ORDER: &[&str] = &[
    "documents.correspondent",
    "documents.tag",
    "documents.documenttype",
    "documents.storagepath",
    "paperless_mail.mailaccount",
    "paperless_mail.mailrule",
    "auth.group",
    "auth.user",
    "documents.customfield",
    "documents.customfieldinstance",
    "documents.note",
];
const BATCH: i64 = 500;

pub async fn run(args: ExportArgs, ctx: &JobContext) -> Result<Value, JobError> {
    let r = match read_passphrase(ctx.config(), &args.passphrase_file) {
        Ok(p) => export(&args, p, ctx).await,
        Err(e) => Err(e),
    };
    if !matches!(r, Err(JobError::Transient(_))) {
        forget_passphrase(ctx.config(), &args.passphrase_file);
    }
    r
}

/// A JSON array written one record at a time, in paperless-ngx 3.0.5's layout.
struct ArrayWriter {
    w: BufWriter<std::fs::File>,
    first: bool,
}

impl ArrayWriter {
    fn create(path: &Path) -> std::io::Result<ArrayWriter> {
        let mut w = BufWriter::new(std::fs::File::create(path)?);
        w.write_all(b"[")?;
        Ok(ArrayWriter { w, first: true })
    }
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> std::io::Result<()> {
        self.w.write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer_pretty(&mut self.w, v)?;
        Ok(())
    }
    /// Closes the array; `sync`: flushed to disk now (else by the export's `syncfs`).
    fn finish(mut self, sync: bool) -> std::io::Result<()> {
        self.w.write_all(b"\n]")?;
        let f = self.w.into_inner().map_err(|e| e.into_error())?;
        if sync { f.sync_all() } else { Ok(()) }
    }
}

/// Replaces `dest` by `tmp`, or with `compare_json` keeps an identical `dest` untouched.
fn put_json(tmp: &Path, dest: &Path, compare_json: bool) -> std::io::Result<bool> {
    if compare_json
        && let (Ok(a), Ok(b)) = (std::fs::read(tmp), std::fs::read(dest))
        && a == b
    {
        std::fs::remove_file(tmp)?;
        return Ok(false);
    }
    std::fs::rename(tmp, dest)?;
    Ok(true)
}

/// Writes `v` (metadata.json) through `<dest>.tmp` + rename, pretty-printed; `sync`: on disk
/// before the rename.
fn write_json(dest: &Path, v: &Value, compare_json: bool, sync: bool) -> std::io::Result<bool> {
    let tmp = tmp_name(dest);
    {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, v)?;
        if sync {
            f.sync_all()?;
        }
    }
    put_json(&tmp, dest, compare_json)
}

/// Writes one split manifest (`-sm`): the document's record and its notes and custom field
/// values, through `<dest>.tmp` + rename.
fn write_split(
    dest: &Path,
    doc: &RecordOut<'_>,
    extra: &[(&'static Model, RowData)],
    compare_json: bool,
) -> std::io::Result<bool> {
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p)?;
    }
    let tmp = tmp_name(dest);
    let mut w = ArrayWriter::create(&tmp)?;
    w.push(doc)?;
    for (m, row) in extra {
        w.push(&plain(m, row, &[]))?;
    }
    w.finish(false)?;
    put_json(&tmp, dest, compare_json)
}

fn tmp_name(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Characters invalid on some OS become `-`; trailing dots and spaces go; ≤ 255 bytes.
pub fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if "/\\:*?\"<>|".contains(c) || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .collect();
    while s.len() > 255 {
        s.pop();
    }
    let t = s.trim_end_matches(['.', ' ']).to_string();
    if t.is_empty() { "-".into() } else { t }
}

/// Extension paperless derives from the MIME type.
pub fn extension(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => ".pdf",
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/tiff" => ".tiff",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "text/plain" => ".txt",
        "text/csv" => ".csv",
        "message/rfc822" => ".eml",
        _ => "",
    }
}

/// Names of one document's files inside the export (before the `-p` prefixes).
#[derive(Debug, PartialEq)]
pub struct Names {
    pub original: String,
    pub thumbnail: String,
    pub archive: String,
    pub manifest: String,
}

/// 128 bits of a name (two SipHash-1-3 runs with different prefixes): the sets of names used
/// and files written hold these, not the strings, so an export of 100k documents keeps a few
/// MB of them (a collision, at odds of about n²/2¹²⁹, would only number a name `_01`).
pub fn name_key(name: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        name.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// The unique export names of a document: `[created] [correspondent] [title]`, `_NN` on a
/// collision, the extension. Unlike upstream, the derived names (thumbnail, archive, split
/// manifest) are reserved too, so `X.pdf` and `X.jpg` do not share `X-thumbnail.webp`; names
/// are compared case-insensitively.
pub fn unique_names(used: &mut HashSet<u128>, display: &str, ext: &str) -> Names {
    unique_names_by(used, !ext.is_empty(), |n| {
        let stem_in = if n == 0 {
            display.to_string()
        } else {
            format!("{display}_{n:02}")
        };
        sanitize(&format!("{stem_in}{ext}"))
    })
}

/// Like [`unique_names`] for any namer: `original(n)` is the original's name with counter `n`
/// (extension included if `has_ext`; it may hold folders, which the derived names share).
pub fn unique_names_by(
    used: &mut HashSet<u128>,
    has_ext: bool,
    original: impl Fn(u32) -> String,
) -> Names {
    for n in 0.. {
        let original = original(n);
        let file_start = original.rfind('/').map_or(0, |i| i + 1);
        let stem = match original[file_start..].rfind('.') {
            Some(i) if has_ext => original[..file_start + i].to_string(),
            _ => original.clone(),
        };
        let names = Names {
            thumbnail: format!("{stem}-thumbnail.webp"),
            archive: format!("{stem}-archive.pdf"),
            manifest: format!("{stem}-manifest.json"),
            original,
        };
        let keys = [
            &names.original,
            &names.thumbnail,
            &names.archive,
            &names.manifest,
        ]
        .map(|s| name_key(&s.to_lowercase()));
        if keys.iter().all(|k| !used.contains(k)) {
            used.extend(keys);
            return names;
        }
    }
    unreachable!()
}

/// Which file of a document a copy is (what its source's name and checksum are in the row).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    Original,
    Thumbnail,
    Archive,
}

impl Part {
    /// The document fields that name this file and hold its checksum.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Part::Original => &["filename", "checksum"],
            Part::Archive => &["archive_filename", "archive_checksum"],
            Part::Thumbnail => &[],
        }
    }
}

/// One file to bring up to date in the export.
struct CopyTask {
    src: PathBuf,
    dst: PathBuf,
    /// The snapshot's SHA-256 of the file: the copy is hashed as it is written and must match.
    checksum: Option<String>,
    doc: i64,
    part: Part,
    /// The snapshot's values of `part.fields()` (to tell a file changed since from a damaged one).
    snapshot: Vec<Option<String>>,
    /// A GnuPG-era `.gpg` file: decrypted with this passphrase (`PAPERBOY_PASSPHRASE`).
    decrypt: Option<Arc<Secret>>,
}

/// What bringing one file up to date found.
#[derive(Debug, PartialEq)]
enum Outcome {
    Unchanged,
    Copied,
    /// The source is gone (or not a regular file).
    Missing,
    /// The bytes copied do not hash to the snapshot's checksum (their SHA-256); nothing of
    /// them is left in the target.
    Mismatch(String),
    /// A GnuPG-era file that does not decrypt (why; never the passphrase).
    Undecryptable(String),
}

/// Bytes read and written at a time by one copy thread (when the copy is hashed).
const COPY_BUF: usize = 256 << 10;

/// Brings `t.dst` up to date with `t.src`: unchanged when `-c` finds the target's SHA-256
/// equal to the database's, otherwise when mtime and size are equal. A copy is one pass: read,
/// hashed (when a checksum is known), written; it gets the source's mode and times. A new file
/// is written in place (`create_new`: never through a symlink; an interrupted copy has the
/// wrong mtime, so the next run copies it again); a file that is there already (the previous
/// export names it) is replaced through `<name>.tmp` + rename, so it stays whole until then;
/// a symlink at `dst` is removed first. Not flushed one by one: the pool's flusher flushes the
/// target's file system while the copies go on, and once more (`syncfs`) before the manifest
/// that names the files goes in (neither with `--no-sync`). A GnuPG-era file (`t.decrypt`,
/// spec §7) is decrypted whole with `PAPERBOY_PASSPHRASE`, as paperless ≤ 2.20's exporter did, checked against the row's
/// checksum (SHA-256, or MD5 of old imports; thumbnails have none), and its plaintext written
/// the same way; its size is not the source's, so an exported plaintext is unchanged when its
/// mtime is the source's (set once the whole plaintext is written: an interrupted one is
/// decrypted again), or with `-c` when it matches the checksum.
fn update(t: &CopyTask, compare_checksums: bool, buf: &mut [u8]) -> std::io::Result<Outcome> {
    use std::io::{ErrorKind, Read};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut src = match std::fs::File::open(&t.src) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Outcome::Missing),
        Err(e) => return Err(e),
    };
    let smd = src.metadata()?;
    if !smd.is_file() {
        return Ok(Outcome::Missing);
    }
    let existing = match std::fs::symlink_metadata(&t.dst) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::remove_file(&t.dst)?;
            false
        }
        Ok(m) => {
            if let (true, Some(sum)) = (compare_checksums, &t.checksum) {
                if file_digest(&t.dst, sum)?.eq_ignore_ascii_case(sum) {
                    return Ok(Outcome::Unchanged);
                }
            } else if (t.decrypt.is_some() || m.len() == smd.len())
                && m.modified().ok() == smd.modified().ok()
            {
                return Ok(Outcome::Unchanged);
            }
            true
        }
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let plain = match &t.decrypt {
        None => None,
        Some(pass) => {
            let mut bytes = Vec::with_capacity(smd.len() as usize);
            src.read_to_end(&mut bytes)?;
            let p = match decrypt::decrypt(&bytes, pass.expose()) {
                Ok(p) => p,
                Err(e) => return Ok(Outcome::Undecryptable(e)),
            };
            if let Some(want) = &t.checksum {
                let got = decrypt::digest(&p, want);
                if !got.eq_ignore_ascii_case(want) {
                    return Ok(Outcome::Mismatch(got));
                }
            }
            Some(p)
        }
    };
    let out_path = if existing {
        let tmp = tmp_name(&t.dst);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        tmp
    } else {
        t.dst.clone()
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true)
        .create_new(true)
        .mode(smd.permissions().mode() & 0o7777);
    let mut out = match opts.open(&out_path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(p) = out_path.parent() {
                std::fs::create_dir_all(p)?;
            }
            opts.open(&out_path)?
        }
        r => r?,
    };
    let copied = (|| -> std::io::Result<Option<String>> {
        if let Some(p) = &plain {
            out.write_all(p)?;
            return Ok(None); // checked above
        }
        let Some(_) = &t.checksum else {
            std::io::copy(&mut src, &mut out)?;
            return Ok(None);
        };
        let mut h = Sha256::new();
        loop {
            let n = match src.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        Ok(Some(hex::encode(h.finalize())))
    })();
    let sum = match copied {
        Ok(s) => s,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&out_path);
            return Err(e);
        }
    };
    if let (Some(got), Some(want)) = (&sum, &t.checksum)
        && !got.eq_ignore_ascii_case(want)
    {
        drop(out);
        std::fs::remove_file(&out_path)?;
        return Ok(Outcome::Mismatch(got.clone()));
    }
    let mut times = std::fs::FileTimes::new().set_modified(smd.modified()?);
    if let Ok(a) = smd.accessed() {
        times = times.set_accessed(a);
    }
    // A file system that refuses times: the file is copied again next run (as upstream).
    let _ = out.set_times(times);
    drop(out);
    if existing {
        std::fs::rename(&out_path, &t.dst)?;
    }
    Ok(Outcome::Copied)
}

/// A file whose source did not match the snapshot: gone, or other bytes than its checksum.
struct Stale {
    task: CopyTask,
    outcome: Outcome,
}

/// Files copied at once (the copies, `-c` hashing, the stats; the records are written on
/// the job's own thread meanwhile).
const COPY_THREADS: usize = 3;
/// Copies queued for the copy threads at most (each a few hundred bytes): the records run
/// this far ahead of the copies, then wait.
const COPY_QUEUE: usize = 1024;
/// The flusher's pause between two `syncfs` of the target.
const FLUSH_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// What the copy threads share with the job.
#[derive(Default)]
struct PoolState {
    copied: AtomicU64,
    skipped: AtomicU64,
    /// The first error; the threads stop taking copies once it is set.
    failed: Mutex<Option<JobError>>,
    /// Files that did not match the snapshot, for [`judge`].
    stale: Mutex<Vec<Stale>>,
    /// The job failed elsewhere: queued copies are skipped.
    abort: AtomicBool,
    /// The copies are over (or the pool is gone): the flusher stops.
    done: AtomicBool,
}

/// A fixed set of copy threads fed through one bounded queue, from the first document on to
/// the last: no barrier between pages (each page's slowest file no longer holds up the next
/// page's copies) and no thread started per page. `link` (the zip's scratch folder, deleted
/// after zipping): a hard link where the file system allows (hashed like a copy; not for a
/// GnuPG-era file, which is decrypted), else a copy.
struct CopyPool {
    tx: Option<tokio::sync::mpsc::Sender<CopyTask>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    flusher: Option<std::thread::JoinHandle<()>>,
    state: Arc<PoolState>,
}

impl Drop for CopyPool {
    fn drop(&mut self) {
        self.state.done.store(true, Ordering::Relaxed);
    }
}

impl CopyPool {
    /// `link`: hard links (the zip's scratch folder) instead of copies; `flush`: the flusher
    /// thread writes the copies back while they go on.
    fn start(
        threads: usize,
        compare_checksums: bool,
        link: bool,
        flush: bool,
        dir: &Path,
    ) -> CopyPool {
        let (tx, rx) = tokio::sync::mpsc::channel::<CopyTask>(COPY_QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let state = Arc::new(PoolState::default());
        let threads = (0..threads.max(1))
            .map(|_| {
                let (rx, state) = (rx.clone(), state.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; COPY_BUF];
                    loop {
                        // One thread waits in the queue at a time; the others wait for it.
                        let Some(t) = rx.lock().expect("not poisoned").blocking_recv() else {
                            break;
                        };
                        if state.abort.load(Ordering::Relaxed)
                            || state.failed.lock().expect("not poisoned").is_some()
                        {
                            continue; // drain: the job is failing
                        }
                        let r = if link && t.decrypt.is_none() && link_new(&t.src, &t.dst) {
                            checked_link(&t).map_err(|e| io_err("cannot read", &t.dst, e))
                        } else {
                            update(&t, compare_checksums, &mut buf)
                                .map_err(|e| io_err("cannot copy to", &t.dst, e))
                        };
                        match r {
                            Ok(Outcome::Copied) => {
                                state.copied.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(Outcome::Unchanged) => {
                                state.skipped.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(outcome) => state
                                .stale
                                .lock()
                                .expect("not poisoned")
                                .push(Stale { task: t, outcome }),
                            Err(e) => {
                                state.failed.lock().expect("not poisoned").get_or_insert(e);
                            }
                        }
                    }
                })
            })
            .collect();
        // Writeback while copying: the target's file system is flushed again and again
        // (`syncfs`, then a pause) on a thread of its own, so the disk writes what the copies
        // left in the page cache in large merged runs while they go on, and the `syncfs` before
        // the manifest waits for the tail only. Measured on the bench disk (bench/RESULTS.md):
        // writeback started per file (`fadvise` DONTNEED) wrote small runs at about half the
        // disk's speed and held up the copy threads; one `syncfs` at the end wrote everything
        // after the last copy; this overlaps the two.
        let flusher = flush.then(|| {
            let (state, dir) = (state.clone(), dir.to_path_buf());
            std::thread::spawn(move || {
                while !state.done.load(Ordering::Relaxed) {
                    let _ = sync_fs(&dir);
                    std::thread::sleep(FLUSH_PAUSE);
                }
            })
        });
        CopyPool {
            tx: Some(tx),
            threads,
            flusher,
            state,
        }
    }

    /// Queues `t`; false when the queue is closed (the threads are gone).
    async fn send(&self, t: CopyTask) -> bool {
        match &self.tx {
            Some(tx) => tx.send(t).await.is_ok(),
            None => false,
        }
    }

    /// The first copy error, if any (taken: reported once).
    fn take_failure(&self) -> Option<JobError> {
        self.state.failed.lock().expect("not poisoned").take()
    }

    /// Stale files found so far, by document.
    fn take_stale(&self) -> Vec<Stale> {
        let mut v = std::mem::take(&mut *self.state.stale.lock().expect("not poisoned"));
        v.sort_by_key(|s| s.task.doc);
        v
    }

    /// Closes the queue and waits until every queued copy is done (or skipped after a failure).
    async fn finish(&mut self) {
        self.tx = None;
        let threads = std::mem::take(&mut self.threads);
        let flusher = self.flusher.take();
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                if t.join().is_err() {
                    // A copy thread that panicked: its copy did not happen.
                    state
                        .failed
                        .lock()
                        .expect("not poisoned")
                        .get_or_insert_with(|| {
                            perm("export aborted: a copy thread failed (see the worker's log)")
                        });
                }
            }
            state.done.store(true, Ordering::Relaxed);
            if let Some(f) = flusher {
                let _ = f.join();
            }
        })
        .await;
    }
}

/// A hard link into the zip's scratch folder, hashed like a copy when its row has a checksum
/// (its bytes read once more from the page cache; deflating them costs far more): one that does
/// not match is removed.
fn checked_link(t: &CopyTask) -> std::io::Result<Outcome> {
    let Some(want) = &t.checksum else {
        return Ok(Outcome::Copied);
    };
    let got = file_digest(&t.dst, want)?;
    if got.eq_ignore_ascii_case(want) {
        Ok(Outcome::Copied)
    } else {
        std::fs::remove_file(&t.dst)?;
        Ok(Outcome::Mismatch(got))
    }
}

/// Hard-links `src` as a new `dst` (parents created); false if that is not possible.
fn link_new(src: &Path, dst: &Path) -> bool {
    dst.parent()
        .is_none_or(|p| std::fs::create_dir_all(p).is_ok())
        && std::fs::hard_link(src, dst).is_ok()
}

/// The hex digest of the file `p` of the kind `like` is (32 characters: MD5, else SHA-256),
/// streamed.
fn file_digest(p: &Path, like: &str) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    if like.len() == 32 {
        let mut h = md5::Md5::new();
        std::io::copy(&mut f, &mut h)?;
        Ok(hex::encode(h.finalize()))
    } else {
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h)?;
        Ok(hex::encode(h.finalize()))
    }
}

struct Run<'a> {
    args: &'a ExportArgs,
    work: PathBuf,
    media: Media,
    crypto: Option<Crypto>,
    /// `PAPERBOY_PASSPHRASE`: GnuPG-era documents are decrypted with it.
    passphrase: Option<Arc<Secret>>,
    /// Keys ([`name_key`]) of every path this run wrote or kept (only with `-d`).
    written: HashSet<u128>,
    /// Copies of the current page of documents, not yet handed to the pool.
    tasks: Vec<CopyTask>,
    pool: CopyPool,
    copied: u64,
    skipped: u64,
    json_unchanged: u64,
    /// Time the records waited for the copy threads (their queue full, and the last copies).
    copy_wait: std::time::Duration,
    /// What upstream prints as a notice (returned in the result).
    notices: Vec<String>,
}

impl Run<'_> {
    fn prefixed(&self, folder: &str, name: &str) -> String {
        if self.args.use_folder_prefix {
            format!("{folder}/{name}")
        } else {
            name.to_string()
        }
    }

    /// Records that this run wrote or kept `path` (for `-d` and the orphan ledger; a zip's
    /// scratch folder is not pruned).
    fn keep(&mut self, path: &Path) {
        if !self.args.zip {
            self.written.insert(name_key(&path.to_string_lossy()));
        }
    }

    /// Queues the copy of `part` of document `row` from `src` to `rel` (run by [`Run::flush`]).
    /// Originals and archive versions with a SHA-256 in the row are hashed as they are copied
    /// (`gpg`: a GnuPG-era file, decrypted first; its checksum is of the plain text, SHA-256
    /// or MD5).
    fn copy(&mut self, src: PathBuf, rel: &str, row: &RowData, part: Part, gpg: bool) {
        let docm = model("documents.document").expect("stored");
        let snapshot: Vec<Option<String>> = part
            .fields()
            .iter()
            .map(|f| text_of(get(docm, row, f)).map(str::to_string))
            .collect();
        let checksum = snapshot
            .get(1)
            .cloned()
            .flatten()
            .filter(|sum| sum.len() == 64 || (gpg && sum.len() == 32));
        let decrypt = if gpg { self.passphrase.clone() } else { None };
        let dst = self.work.join(rel);
        self.keep(&dst);
        self.tasks.push(CopyTask {
            src,
            dst,
            checksum,
            doc: row.pk,
            part,
            snapshot,
            decrypt,
        });
    }

    /// Hands this page's copies to the copy threads (waiting while their queue is full), then
    /// reports what they found so far: the first error, or the stale files ([`judge`]).
    async fn flush(&mut self, ctx: &JobContext) -> Result<(), JobError> {
        let start = std::time::Instant::now();
        for t in std::mem::take(&mut self.tasks) {
            if !self.pool.send(t).await {
                return Err(self.pool.take_failure().unwrap_or_else(|| {
                    perm("export aborted: the copy threads stopped (see the worker's log)")
                }));
            }
        }
        self.copy_wait += start.elapsed();
        self.check(ctx).await
    }

    async fn check(&mut self, ctx: &JobContext) -> Result<(), JobError> {
        if let Some(e) = self.pool.take_failure() {
            return Err(e);
        }
        judge(ctx, self.pool.take_stale()).await
    }

    /// Waits for every queued copy, then reports as [`Run::flush`] does.
    async fn finish(&mut self, ctx: &JobContext) -> Result<(), JobError> {
        let start = std::time::Instant::now();
        self.pool.finish().await;
        self.copy_wait += start.elapsed();
        self.copied = self.pool.state.copied.load(Ordering::Relaxed);
        self.skipped = self.pool.state.skipped.load(Ordering::Relaxed);
        self.check(ctx).await
    }
}

/// A batch's stale files. One whose document row changed since the snapshot (another name, another
/// checksum, or the row is gone: a renamer, a new archive version, the trash emptied) fails the
/// job transiently, so it runs again from a fresh snapshot; one that does not match an unchanged
/// row (damaged, or gone without the row knowing) fails it for good. Either way the new manifest
/// never goes in and no stale byte is left in the target: the previous export stays as it was.
async fn judge(ctx: &JobContext, stale: Vec<Stale>) -> Result<(), JobError> {
    let Some(first) = stale.first() else {
        return Ok(());
    };
    let docm = model("documents.document").expect("stored");
    let mut conn = ctx
        .db()
        .pool
        .acquire()
        .await
        .map_err(|e| JobError::Transient(format!("cannot reach the database: {e}")))?;
    for s in &stale {
        let t = &s.task;
        let now = transfer::rows_after(&mut conn, docm, t.doc - 1, 1).await?;
        let changed = match now.first() {
            Some(r) if r.pk == t.doc => t
                .part
                .fields()
                .iter()
                .zip(&t.snapshot)
                .any(|(f, was)| text_of(get(docm, r, f)) != was.as_deref()),
            _ => true,
        };
        if changed {
            tracing::warn!(document = t.doc, file = %t.src.display(), part = ?t.part,
                "export: a file changed since the snapshot; the export runs again");
            return Err(JobError::Transient(format!(
                "the {:?} of document {} ({}) changed since the export's snapshot: the export \
                 runs again from a fresh snapshot (the previous export stays as it was)",
                t.part,
                t.doc,
                t.src.display()
            )));
        }
    }
    let t = &first.task;
    Err(match &first.outcome {
        Outcome::Undecryptable(e) => perm(format!(
            "export aborted: cannot decrypt {} (GnuPG-era document {}): {e}; check \
             PAPERBOY_PASSPHRASE of the workers serving the export queue; the previous export \
             stays as it was",
            t.src.display(),
            t.doc
        )),
        Outcome::Mismatch(got) => perm(format!(
            "export aborted: {} (document {}) has SHA-256 {got}, the database says {}: the file \
             is damaged (see `paperboy sanity-check`); the previous export stays as it was",
            t.src.display(),
            t.doc,
            t.checksum.as_deref().unwrap_or("?")
        )),
        _ => perm(format!(
            "export aborted: the file {} does not exist",
            t.src.display()
        )),
    })
}

fn get<'a>(m: &Model, row: &'a RowData, field: &str) -> &'a Val {
    &row.vals[m
        .cols
        .iter()
        .position(|c| c.field == field)
        .expect("known field")]
}

fn text_of(v: &Val) -> Option<&str> {
    match v {
        Val::Text(s) => Some(s),
        _ => None,
    }
}

async fn links_for(
    conn: &mut sqlx::AnyConnection,
    m: &'static Model,
    rows: &[RowData],
) -> Result<Vec<HashMap<i64, Vec<i64>>>, JobError> {
    let mut out = vec![];
    for l in m.m2m {
        let mut map: HashMap<i64, Vec<i64>> = HashMap::new();
        if let (Some(a), Some(b)) = (rows.first(), rows.last()) {
            for (own, other) in transfer::links_between(conn, l, a.pk, b.pk).await? {
                map.entry(own).or_default().push(other);
            }
        }
        out.push(map);
    }
    Ok(out)
}

/// One id list per many-to-many of the model (see [`links_for`]) for the row `pk`.
fn row_links(links: &[HashMap<i64, Vec<i64>>], pk: i64) -> Vec<&[i64]> {
    links
        .iter()
        .map(|map| map.get(&pk).map_or(&[][..], Vec::as_slice))
        .collect()
}

/// The sensitive fields of a row (mail account passwords and tokens), encrypted with the
/// export's passphrase: they replace the plain values in the record. Nothing without one.
fn encrypted(m: &Model, row: &RowData, crypto: Option<&Crypto>) -> Vec<(&'static str, String)> {
    let (Some((_, fields)), Some(c)) = (SENSITIVE.iter().find(|(x, _)| *x == m.label), crypto)
    else {
        return vec![];
    };
    fields
        .iter()
        .filter_map(|f| {
            let i = m.cols.iter().position(|c| c.field == *f)?;
            let v = text_of(&row.vals[i]).filter(|v| !v.is_empty())?;
            Some((*f, c.encrypt(v)))
        })
        .collect()
}

/// A record with nothing replaced and no exported names.
fn plain<'a>(m: &'a Model, row: &'a RowData, links: &'a [&'a [i64]]) -> RecordOut<'a> {
    RecordOut {
        model: m,
        row,
        links,
        replaced: &[],
        exported: &[],
    }
}

async fn export(
    args: &ExportArgs,
    pass: Option<String>,
    ctx: &JobContext,
) -> Result<Value, JobError> {
    let target = PathBuf::from(&args.target);
    // The zip's default name has the date in PAPERBOY_TIME_ZONE (upstream: PAPERLESS_TIME_ZONE).
    let tz = super::time_zone(ctx.config())?;
    if !target.exists() {
        return Err(perm(format!(
            "That path doesn't exist: {}",
            target.display()
        )));
    }
    if !target.is_dir() {
        return Err(perm(format!(
            "That path isn't a directory: {}",
            target.display()
        )));
    }
    let probe = target.join(format!(".paperboy-write-test-{}", ulid::Ulid::new()));
    std::fs::write(&probe, b"").map_err(|_| {
        perm(format!(
            "That path doesn't appear to be writable: {}",
            target.display()
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    if args.data_only && args.delete && !args.zip {
        return Err(perm(
            "--data-only with --delete would delete every exported document file the new manifest \
             still names (upstream does): refused; run them separately",
        ));
    }
    // What earlier exports wrote (for -d and the orphan ledger). A folder export reads it while
    // its records and copies go on: it reads only the previous manifests and the ledger, which
    // this run replaces by rename after waiting for it. A zip export reads it first, before its
    // scratch folder appears in the target, and only with -d (the scratch folder holds nothing
    // earlier).
    let mut previous_task = (!args.zip || args.delete).then(|| {
        let t = target.clone();
        let zips = args.zip;
        tokio::task::spawn_blocking(move || {
            let start = std::time::Instant::now();
            (
                prune::previous_export(&t, zips),
                start.elapsed().as_secs_f64(),
            )
        })
    });
    let (mut previous, mut previous_s) = (None, 0.0);
    if args.zip {
        (previous, previous_s) = wait_previous(previous_task.take()).await?;
    }
    let zip_tmp = if args.zip {
        Some(
            tempfile::Builder::new()
                .prefix(".paperboy-export-")
                .tempdir_in(&target)
                .map_err(|e| io_err("cannot create a folder in", &target, e))?,
        )
    } else {
        None
    };
    let work = zip_tmp
        .as_ref()
        .map(|t| t.path().to_path_buf())
        .unwrap_or_else(|| target.clone());
    let crypto = match pass {
        Some(p) => Some(
            tokio::task::spawn_blocking(move || Crypto::new_export(&p))
                .await
                .map_err(|e| perm(e.to_string()))?,
        ),
        None => None,
    };
    let mut run = Run {
        args,
        work: work.clone(),
        media: Media::from_config(ctx.config()),
        crypto,
        passphrase: ctx.config().passphrase.clone().map(Arc::new),
        written: HashSet::new(),
        tasks: vec![],
        pool: CopyPool::start(
            COPY_THREADS,
            args.compare_checksums,
            args.zip,
            !args.zip && !args.no_sync,
            &work,
        ),
        copied: 0,
        skipped: 0,
        json_unchanged: 0,
        copy_wait: std::time::Duration::ZERO,
        notices: vec![],
    };
    let manifest = work.join("manifest.json");
    let manifest_tmp = tmp_name(&manifest);
    run.keep(&manifest);
    run.keep(&work.join("metadata.json"));
    run.keep(&work.join(prune::ORPHANS));
    let started = std::time::Instant::now();
    let r = write_manifest(&mut run, &manifest_tmp, ctx).await;
    let records_and_copies = started.elapsed();
    // Every copied file reaches the disk before the new manifest names it (a zip's scratch
    // folder is not flushed: the zip is, when it is written), unless `--no-sync`.
    let r = match r {
        Ok(n) if !args.zip && !args.no_sync => {
            let w = work.clone();
            tokio::task::spawn_blocking(move || sync_fs(&w))
                .await
                .map_err(|e| perm(e.to_string()))
                .and_then(|x| x.map_err(|e| io_err("cannot flush", &work, e)))
                .map(|()| n)
        }
        other => other,
    };
    let documents = match r {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&manifest_tmp);
            return Err(e);
        }
    };
    if previous_task.is_some() {
        (previous, previous_s) = wait_previous(previous_task.take()).await?;
    }
    if !put_json(&manifest_tmp, &manifest, args.compare_json)
        .map_err(|e| io_err("cannot write", &manifest, e))?
    {
        run.json_unchanged += 1;
    }
    let mut meta = json!({ "version": FORMAT_VERSION });
    if let Some(c) = &run.crypto {
        meta["__crypto__"] = c.metadata();
    }
    let meta_path = work.join("metadata.json");
    if !write_json(&meta_path, &meta, args.compare_json, !args.no_sync)
        .map_err(|e| io_err("cannot write", &meta_path, e))?
    {
        run.json_unchanged += 1;
    }
    let synced = started.elapsed();
    let mut pruned = prune::Pruned::default();
    if let (Some(prev), false) = (&previous, args.zip) {
        pruned = prune::prune(&work, prev, &run.written, args.delete, None);
        prune::write_orphans(&work, &pruned.orphans)
            .map_err(|e| io_err("cannot write", &work.join(prune::ORPHANS), e))?;
    }
    let mut zip_file = None;
    if let Some(tmp) = zip_tmp {
        let name = format!(
            "{}.zip",
            args.zip_name.clone().unwrap_or_else(|| format!(
                "export-{}",
                chrono::Utc::now().with_timezone(&tz).format("%Y-%m-%d")
            ))
        );
        let dest = target.join(&name);
        let src = tmp.path().to_path_buf();
        let d2 = dest.clone();
        let sync = !args.no_sync;
        let written = tokio::task::spawn_blocking(move || write_zip(&src, &d2, sync))
            .await
            .map_err(|e| perm(e.to_string()))
            .and_then(|r| r.map_err(|e| io_err("cannot write the zip", &dest, e)));
        if written.is_err() {
            // Nothing half-written stays: the partial zip goes (a panic in `write_zip` too).
            let _ = std::fs::remove_file(tmp_name(&dest));
        }
        written?;
        drop(tmp);
        if let Some(prev) = &previous {
            let written = HashSet::from([name_key(&dest.to_string_lossy())]);
            pruned = prune::prune(&target, prev, &written, true, None);
        }
        zip_file = Some(dest.display().to_string());
    }
    tracing::info!(
        documents,
        copied = run.copied,
        unchanged = run.skipped,
        previous_export_s = previous_s,
        records_and_copies_s = records_and_copies.as_secs_f64(),
        of_which_waiting_for_copies_s = run.copy_wait.as_secs_f64(),
        syncfs_and_manifest_s = (synced - records_and_copies).as_secs_f64(),
        prune_and_zip_s = (started.elapsed() - synced).as_secs_f64(),
        "export done"
    );
    Ok(json!({
        "documents": documents,
        "files_copied": run.copied,
        "files_unchanged": run.skipped,
        "json_unchanged": run.json_unchanged,
        "deleted": pruned.deleted,
        "not_ours_kept": pruned.kept,
        "orphans": pruned.orphans.len(),
        "zip": zip_file,
        "synced": !args.no_sync,
        "notices": run.notices,
        "filename_format": if args.use_filename_format { "storage path / PAPERBOY_FILENAME_FORMAT" } else { "default" },
    }))
}

type PreviousTask = tokio::task::JoinHandle<(prune::Previous, f64)>;

async fn wait_previous(
    task: Option<PreviousTask>,
) -> Result<(Option<prune::Previous>, f64), JobError> {
    match task {
        Some(t) => {
            let (p, secs) = t.await.map_err(|e| perm(e.to_string()))?;
            Ok((Some(p), secs))
        }
        None => Ok((None, 0.0)),
    }
}

/// How much of a file's start [`DeflateProbe`] tries.
const ZIP_SAMPLE: usize = 128 * 1024;

/// Tells whether deflating a file pays: its start (`sample`) must deflate to ≤ 95 % at the
/// fastest level. Scanned PDFs, JPEG, PNG and WebP are compressed already: deflating them
/// again, as upstream does, took a third of the zip's time for 1 % of its size on 3,000 bench
/// documents (bench/RESULTS.md), so they are stored; zip readers, paperless-ngx's included, take both.
/// One compressor and buffer for every file: with a new encoder per file (hundreds of KiB
/// each) the worker's RSS rose to 150 MiB over a 3k-document `-z` export; with this, 33 MiB.
struct DeflateProbe {
    c: flate2::Compress,
    out: Vec<u8>,
}

impl DeflateProbe {
    fn new() -> DeflateProbe {
        DeflateProbe {
            c: flate2::Compress::new(flate2::Compression::fast(), false),
            // More than deflate's worst case (5 bytes per 16 KiB stored block): zlib-rs 0.6's
            // level 1 panics when the output room runs out mid-stream.
            out: vec![0; ZIP_SAMPLE + ZIP_SAMPLE / 8 + 1024],
        }
    }

    fn worth_deflating(&mut self, sample: &[u8]) -> bool {
        if sample.len() < 512 {
            return true;
        }
        self.c.reset();
        let r = self
            .c
            .compress(sample, &mut self.out, flate2::FlushCompress::Finish);
        !matches!(r, Ok(flate2::Status::StreamEnd))
            || self.c.total_out() as usize * 100 <= sample.len() * 95
    }
}

/// Writes the scratch folder `src` into the zip `dest` (through `<dest>.tmp` + rename), each
/// file deflated when [`DeflateProbe`] says it pays, else stored; `sync`: on disk before the
/// rename.
fn write_zip(src: &Path, dest: &Path, sync: bool) -> std::io::Result<()> {
    let tmp = tmp_name(dest);
    let f = std::fs::File::create(&tmp)?;
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let stored = opts.compression_method(zip::CompressionMethod::Stored);
    let mut sample = Vec::with_capacity(ZIP_SAMPLE);
    let mut probe = DeflateProbe::new();
    let mut entries: Vec<_> = walkdir::WalkDir::new(src)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    for e in entries {
        let rel = e
            .path()
            .strip_prefix(src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if e.file_type().is_dir() {
            z.add_directory(rel, opts).map_err(std::io::Error::other)?;
        } else if e.file_type().is_file() {
            use std::io::Read as _;
            let mut file = std::fs::File::open(e.path())?;
            sample.clear();
            (&mut file)
                .take(ZIP_SAMPLE as u64)
                .read_to_end(&mut sample)?;
            let how = if probe.worth_deflating(&sample) {
                opts
            } else {
                stored
            };
            z.start_file(rel, how).map_err(std::io::Error::other)?;
            z.write_all(&sample)?;
            std::io::copy(&mut file, &mut z)?;
        }
    }
    let f = z.finish().map_err(std::io::Error::other)?;
    if sync {
        f.sync_all()?;
    }
    std::fs::rename(tmp, dest)
}

async fn write_manifest(run: &mut Run<'_>, tmp: &Path, ctx: &JobContext) -> Result<u64, JobError> {
    let mut out = ArrayWriter::create(tmp).map_err(|e| io_err("cannot write", tmp, e))?;
    let w = |e: std::io::Error| JobError::Permanent(format!("cannot write the manifest: {e}"));
    let mut tx = transfer::begin_snapshot(ctx.db()).await?;
    let docm = model("documents.document").expect("stored");
    let total_docs = transfer::count(&mut tx, docm).await?;
    // The snapshot is taken (the first read): tests change the archive here.
    paperboy_shared::failpoint::hit("export.after_snapshot").await;
    let split = run.args.split_manifest;
    for label in ORDER {
        if split && ["documents.note", "documents.customfieldinstance"].contains(label) {
            continue;
        }
        let m = model(label).expect("stored");
        let mut after = 0;
        loop {
            let rows = transfer::rows_after(&mut tx, m, after, BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = last.pk;
            if run.crypto.is_none()
                && SENSITIVE.iter().any(|(l, _)| l == label)
                && run.notices.is_empty()
            {
                run.notices
                    .push("No passphrase was given, sensitive fields will be in plaintext".into());
            }
            let links = links_for(&mut tx, m, &rows).await?;
            for row in &rows {
                let l = row_links(&links, row.pk);
                let replaced = encrypted(m, row, run.crypto.as_ref());
                let rec = RecordOut {
                    replaced: &replaced,
                    ..plain(m, row, &l)
                };
                out.push(&rec).map_err(w)?;
            }
        }
    }
    // Correspondent names for the file names (a small table).
    let corm = model("documents.correspondent").expect("stored");
    let mut corr: HashMap<i64, String> = HashMap::new();
    let mut after = 0;
    loop {
        let rows = transfer::rows_after(&mut tx, corm, after, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after = last.pk;
        for r in rows {
            if let Some(n) = text_of(get(corm, &r, "name")) {
                corr.insert(r.pk, n.to_string());
            }
        }
    }
    let notem = model("documents.note").expect("stored");
    let cfim = model("documents.customfieldinstance").expect("stored");
    let mut used = HashSet::new();
    // `-f`: the storage layer's names (storage path template, else PAPERBOY_FILENAME_FORMAT).
    let name_settings = if run.args.use_filename_format {
        Some(FilenameSettings::from_config(ctx.config()).map_err(JobError::Permanent)?)
    } else {
        None
    };
    let mut done = 0u64;
    let mut after = 0;
    let r: Result<(), JobError> = async {
        loop {
            let rows = transfer::rows_after(&mut tx, docm, after, 200).await?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                break;
            };
            let (lo, hi) = (first.pk, last.pk);
            after = hi;
            let links = links_for(&mut tx, docm, &rows).await?;
            let mut extra: HashMap<i64, Vec<(&'static Model, RowData)>> = HashMap::new();
            if split {
                for m in [notem, cfim] {
                    for r in transfer::rows_by_document(&mut tx, m, lo, hi).await? {
                        if let Val::Int(d) = get(m, &r, "document") {
                            extra.entry(*d).or_default().push((m, r));
                        }
                    }
                }
            }
            for row in &rows {
                let mut exported: Vec<(&'static str, String)> = Vec::with_capacity(3);
                let created = text_of(get(docm, row, "created")).unwrap_or_default();
                let mut display = created.to_string();
                if let Val::Int(c) = get(docm, row, "correspondent")
                    && let Some(n) = corr.get(c)
                {
                    display = format!("{display} {n}");
                }
                if let Some(t) = text_of(get(docm, row, "title")).filter(|t| !t.is_empty()) {
                    display = format!("{display} {t}");
                }
                let mime = text_of(get(docm, row, "mime_type")).unwrap_or_default();
                let names = match &name_settings {
                    Some(settings) => {
                        let data = files::naming(&mut tx, row.pk).await?.ok_or_else(|| {
                            JobError::Transient(format!("document {} vanished mid-export", row.pk))
                        })?;
                        let namer = Namer::new(&NameInfo::from_data(&data), settings);
                        unique_names_by(&mut used, true, |n| {
                            let name = namer.candidate(Which::Original, n);
                            if name.chars().count() > filenames::MAX_NAME_CHARS {
                                namer.default_name(Which::Original, n)
                            } else {
                                name
                            }
                        })
                    }
                    None => unique_names(&mut used, &display, extension(mime)),
                };
                let original = run.prefixed("originals", &names.original);
                exported.push(("__exported_file_name__", original.clone()));
                let filename = text_of(get(docm, row, "filename"))
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        media::default_filename(row.pk, extension(mime).trim_start_matches('.'))
                    });
                // A GnuPG-era document (spec §7): its files are decrypted on the way, and the
                // record names the plaintext (`.gpg` dropped, which upstream ≤ 2.20 kept).
                let gpg = filename.ends_with(".gpg");
                let mut replaced = vec![];
                if gpg {
                    if run.passphrase.is_none() && !run.args.data_only {
                        return Err(perm(format!(
                            "document {} is still GnuPG-encrypted ({filename}): set {} (or \
                             {}_FILE) for the workers serving the export queue, and the export \
                             decrypts it as paperless ≤ 2.20 did, or run `paperboy \
                             decrypt-documents` first; the previous export stays as it was",
                            row.pk,
                            paperboy_shared::config::names::PASSPHRASE,
                            paperboy_shared::config::names::PASSPHRASE,
                        )));
                    }
                    if let Some(plain) = decrypt::plain_name(&filename) {
                        replaced.push(("filename", plain.to_string()));
                    }
                }
                if !run.args.data_only {
                    let src = run
                        .media
                        .path(Folder::Originals, &filename)
                        .map_err(JobError::from_classified)?;
                    run.copy(src, &original, row, Part::Original, gpg);
                } else {
                    let p = run.work.join(&original);
                    run.keep(&p);
                }
                if !run.args.no_thumbnail {
                    let thumb = run.prefixed("thumbnails", &names.thumbnail);
                    exported.push(("__exported_thumbnail_name__", thumb.clone()));
                    if !run.args.data_only {
                        let mut src = run.media.thumbnail(row.pk);
                        if gpg {
                            // None there: the copy reports the `.webp.gpg` as missing.
                            src = decrypt::encrypted_thumbnail(&run.media, row.pk)
                                .unwrap_or_else(|| src.with_extension("webp.gpg"));
                        }
                        run.copy(src, &thumb, row, Part::Thumbnail, gpg);
                    } else {
                        let p = run.work.join(&thumb);
                        run.keep(&p);
                    }
                }
                if let (false, Some(a)) = (
                    run.args.no_archive,
                    text_of(get(docm, row, "archive_filename")),
                ) {
                    let arch = run.prefixed("archive", &names.archive);
                    exported.push(("__exported_archive_name__", arch.clone()));
                    if !run.args.data_only {
                        let src = run
                            .media
                            .path(Folder::Archive, a)
                            .map_err(JobError::from_classified)?;
                        // Archive versions were never encrypted (spec §7).
                        run.copy(src, &arch, row, Part::Archive, false);
                    } else {
                        let p = run.work.join(&arch);
                        run.keep(&p);
                    }
                }
                let l = row_links(&links, row.pk);
                let rec = RecordOut {
                    exported: &exported,
                    replaced: &replaced,
                    ..plain(docm, row, &l)
                };
                if split {
                    let rel = run.prefixed("json", &names.manifest);
                    let dest = run.work.join(&rel);
                    run.keep(&dest);
                    let more = extra.remove(&row.pk).unwrap_or_default();
                    if !write_split(&dest, &rec, &more, run.args.compare_json)
                        .map_err(|e| io_err("cannot write", &dest, e))?
                    {
                        run.json_unchanged += 1;
                    }
                } else {
                    out.push(&rec).map_err(w)?;
                }
                done += 1;
            }
            run.flush(ctx).await?;
            ctx.progress(done, total_docs as u64, "documents");
            ctx.check_cancelled()?;
        }
        Ok(())
    }
    .await;
    // Every queued copy ends (after a failure: is skipped) before we return.
    if r.is_err() {
        run.pool.state.abort.store(true, Ordering::Relaxed);
    }
    let copies = run.finish(ctx).await;
    r?;
    copies?;
    let _ = tx.rollback().await;
    out.finish(!run.args.no_sync).map_err(w)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_deflates_is_deflated() {
        let mut p = DeflateProbe::new();
        let text = "Invoice 2024-117, amount due 1,234.00 EUR. ".repeat(4000);
        assert!(p.worth_deflating(text.as_bytes()));
        // Compressed data (here: a chain of SHA-256 digests) is stored.
        let mut noise = Vec::new();
        let mut h = [0u8; 32];
        while noise.len() < ZIP_SAMPLE {
            h = Sha256::digest(h).into();
            noise.extend_from_slice(&h);
        }
        assert!(!p.worth_deflating(&noise));
        // The probe is reset between files.
        assert!(p.worth_deflating(text.as_bytes()));
        assert!(!p.worth_deflating(&noise[..20_000]));
        // Too small to judge: deflated (as upstream).
        assert!(p.worth_deflating(&noise[..100]));
    }

    #[test]
    fn collisions_are_numbered_and_derived_names_reserved() {
        let mut used = HashSet::new();
        let a = unique_names(&mut used, "2024-01-01 ACME Invoice", ".pdf");
        let b = unique_names(&mut used, "2024-01-01 ACME Invoice", ".pdf");
        assert_eq!(a.original, "2024-01-01 ACME Invoice.pdf");
        assert_eq!(a.thumbnail, "2024-01-01 ACME Invoice-thumbnail.webp");
        assert_eq!(b.original, "2024-01-01 ACME Invoice_01.pdf");
        // X.pdf and X.jpg: upstream shares X-thumbnail.webp; here the second is numbered.
        let c = unique_names(&mut used, "X", ".pdf");
        let d = unique_names(&mut used, "X", ".jpg");
        assert_eq!(c.original, "X.pdf");
        assert_eq!(d.original, "X_01.jpg");
        assert_ne!(c.thumbnail, d.thumbnail);
        assert_ne!(c.manifest, d.manifest);
    }

    fn task(src: &Path, dst: &Path, checksum: Option<String>) -> CopyTask {
        CopyTask {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            checksum,
            doc: 1,
            part: Part::Original,
            snapshot: vec![],
            decrypt: None,
        }
    }

    #[test]
    fn copies_are_hashed_in_one_pass_and_a_mismatch_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src.pdf");
        std::fs::write(&src, b"hello").unwrap();
        let sum = hex::encode(Sha256::digest(b"hello"));
        let mut buf = vec![0; 4];
        // A new file (its folder created), then unchanged by mtime and size, or by -c.
        let dst = d.path().join("out/x.pdf");
        let t = task(&src, &dst, Some(sum.clone()));
        assert_eq!(update(&t, false, &mut buf).unwrap(), Outcome::Copied);
        assert_eq!(std::fs::read(&dst).unwrap(), b"hello");
        assert_eq!(
            std::fs::metadata(&dst).unwrap().modified().unwrap(),
            std::fs::metadata(&src).unwrap().modified().unwrap()
        );
        assert_eq!(update(&t, false, &mut buf).unwrap(), Outcome::Unchanged);
        assert_eq!(update(&t, true, &mut buf).unwrap(), Outcome::Unchanged);
        // The source no longer matches the snapshot's checksum: no new file is left behind,
        // and a file the previous export wrote stays as it was.
        let wrong = Some("0".repeat(64));
        let fresh = d.path().join("out/y.pdf");
        assert_eq!(
            update(&task(&src, &fresh, wrong.clone()), false, &mut buf).unwrap(),
            Outcome::Mismatch(sum.clone())
        );
        assert!(!fresh.exists());
        let old = d.path().join("out/old.pdf");
        std::fs::write(&old, b"previous export").unwrap();
        assert_eq!(
            update(&task(&src, &old, wrong), false, &mut buf).unwrap(),
            Outcome::Mismatch(sum.clone())
        );
        assert_eq!(std::fs::read(&old).unwrap(), b"previous export");
        assert!(!d.path().join("out/old.pdf.tmp").exists());
        // A changed file is replaced; a symlink at the target is replaced, not written through.
        assert_eq!(
            update(&task(&src, &old, Some(sum.clone())), false, &mut buf).unwrap(),
            Outcome::Copied
        );
        assert_eq!(std::fs::read(&old).unwrap(), b"hello");
        let outside = d.path().join("outside.pdf");
        std::fs::write(&outside, b"outside").unwrap();
        let link = d.path().join("out/link.pdf");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert_eq!(
            update(&task(&src, &link, None), false, &mut buf).unwrap(),
            Outcome::Copied
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(std::fs::read(&outside).unwrap(), b"outside");
        // A source that is gone.
        let gone = d.path().join("gone.pdf");
        assert_eq!(
            update(&task(&gone, &fresh, None), false, &mut buf).unwrap(),
            Outcome::Missing
        );
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("a/b:c?.pdf"), "a-b-c-.pdf");
        assert_eq!(sanitize("trail. "), "trail");
    }
}
