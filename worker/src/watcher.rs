//! `paperboy-worker watch`: the consumption-folder watcher (paperless `document_consumer`,
//! spec mail-archive-consume §3.5). Run ONE per consumption folder: every file it sees is
//! staged and queued once, so two watchers on one folder would queue every file twice.
//!
//! - Startup scan, then a scan on every inotify event (`notify`), or every
//!   `PAPERBOY_CONSUMER_POLLING` seconds when that is > 0 (network shares), plus a full re-scan
//!   every 300 s as a safety net.
//! - A file is queued once its size and modification time stayed the same for the stability
//!   delay (default 5 s): a scanner still writing it is not consumed half-way.
//! - Only supported extensions (pdf, png, jpg/jpeg, tif/tiff, webp, gif, txt; any case); the
//!   built-in ignores (`.DS_Store`, `._*`, `desktop.ini`, `Thumbs.db`, hidden files; folders
//!   `.stfolder .stversions .localized @eaDir .Spotlight-V100 .Trashes __MACOSX`) and the
//!   `failed/` folder consume moves refused files to.
//! - `PAPERBOY_CONSUMER_RECURSIVE`: sub-folders too; `PAPERBOY_CONSUMER_SUBDIRS_AS_TAGS`: each
//!   sub-folder name becomes a tag (get-or-create).
//! - A queued file stays where it is until its job ends: consume removes it on success and
//!   moves it to `failed/` on a permanent error. The watcher remembers what it queued (by size
//!   and modification time) so it does not queue it again meanwhile; after a restart a file
//!   whose job is still pending is queued again (and then refused as a duplicate).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use paperboy_shared::config::Config;
use paperboy_shared::db::{Db, tags};
use paperboy_shared::job::{ConsumeArgs, Job};
use paperboy_shared::queue::Queue;
use paperboy_shared::staging;
use tokio::sync::{mpsc, watch};

use crate::jobs::consume::FAILED_DIR;

/// Full re-scan at least this often, whatever the events say.
pub const RESCAN_EVERY: Duration = Duration::from_secs(300);

/// Extensions the watcher picks up (consume checks the content again).
pub const EXTENSIONS: &[&str] = &[
    "pdf", "png", "jpg", "jpeg", "tif", "tiff", "webp", "gif", "txt",
];
const IGNORED_FILES: &[&str] = &[".ds_store", "desktop.ini", "thumbs.db"];
const IGNORED_DIRS: &[&str] = &[
    ".stfolder",
    ".stversions",
    ".localized",
    "@eaDir",
    ".Spotlight-V100",
    ".Trashes",
    "__MACOSX",
];

/// How the watcher behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    pub recursive: bool,
    pub subdirs_as_tags: bool,
    pub stability: Duration,
    /// Zero: inotify events (plus [`RESCAN_EVERY`]); else scan this often.
    pub poll: Duration,
    /// Queue what is there (once stable), then exit.
    pub oneshot: bool,
}

impl Options {
    pub fn from_config(config: &Config, stability: Duration, oneshot: bool) -> Options {
        Options {
            root: config.consumption_dir.clone(),
            recursive: config.consumer_recursive,
            subdirs_as_tags: config.consumer_subdirs_as_tags,
            stability,
            poll: Duration::from_secs(config.consumer_polling),
            oneshot,
        }
    }
}

/// A file ready to be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub path: PathBuf,
    /// Relative to the consumption folder, `/`-separated.
    pub relative: String,
    /// Sub-folder names between the root and the file.
    pub folders: Vec<String>,
}

type Stamp = (u64, Option<SystemTime>);

/// The scanning state: what was seen (and since when unchanged) and what was queued.
#[derive(Debug)]
pub struct Scanner {
    opts: Options,
    seen: HashMap<PathBuf, (Stamp, Instant)>,
    queued: HashMap<PathBuf, Stamp>,
}

impl Scanner {
    pub fn new(opts: Options) -> Scanner {
        Scanner {
            opts,
            seen: HashMap::new(),
            queued: HashMap::new(),
        }
    }

    /// Files seen but not yet stable.
    pub fn pending(&self) -> usize {
        self.seen.len()
    }

    /// One scan at `now`: the files that became ready. Call [`Scanner::mark_queued`] for each
    /// one that was queued.
    pub fn tick(&mut self, now: Instant) -> Vec<Ready> {
        let files = self.scan();
        let present: std::collections::HashSet<&PathBuf> =
            files.iter().map(|(r, _)| &r.path).collect();
        self.seen.retain(|p, _| present.contains(p));
        self.queued.retain(|p, _| present.contains(p));
        let mut ready = Vec::new();
        for (r, stamp) in &files {
            if self.queued.get(&r.path) == Some(stamp) {
                continue;
            }
            let stable = match self.seen.get(&r.path) {
                Some((s, since)) if s == stamp => now.duration_since(*since) >= self.opts.stability,
                _ => {
                    self.seen.insert(r.path.clone(), (*stamp, now));
                    self.opts.stability.is_zero()
                }
            };
            if stable {
                ready.push(r.clone());
            }
        }
        ready
    }

    pub fn mark_queued(&mut self, path: &Path) {
        if let Some((stamp, _)) = self.seen.remove(path) {
            self.queued.insert(path.to_path_buf(), stamp);
        }
    }

    fn scan(&self) -> Vec<(Ready, Stamp)> {
        let root = &self.opts.root;
        let depth = if self.opts.recursive { usize::MAX } else { 1 };
        let walker = walkdir::WalkDir::new(root)
            .min_depth(1)
            .max_depth(depth)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir()
                    && (ignored_dir(&e.file_name().to_string_lossy())
                        || (e.depth() == 1 && e.file_name() == FAILED_DIR)))
            });
        let mut out = Vec::new();
        for entry in walker.flatten() {
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if !wanted_file(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let folders: Vec<String> = rel
                .parent()
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let relative = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((
                Ready {
                    path: entry.path().to_path_buf(),
                    relative,
                    folders,
                },
                (meta.len(), meta.modified().ok()),
            ));
        }
        out
    }
}

fn ignored_dir(name: &str) -> bool {
    IGNORED_DIRS.contains(&name)
}

/// Not ignored, not hidden, and of a supported extension.
pub fn wanted_file(name: &str) -> bool {
    let lower = name.to_lowercase();
    if lower.starts_with('.') || IGNORED_FILES.contains(&lower.as_str()) {
        return false;
    }
    Path::new(&lower)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

/// Runs the watcher until a stop signal (or, with `oneshot`, until everything present was
/// queued). Returns the number of files queued.
pub async fn run(
    config: &Config,
    opts: Options,
    queue: Queue,
    db: Option<Db>,
    mut stop: watch::Receiver<u32>,
) -> anyhow::Result<u64> {
    use anyhow::Context;
    std::fs::create_dir_all(&opts.root).with_context(|| {
        format!(
            "cannot create the consumption folder {}",
            opts.root.display()
        )
    })?;
    let (tx, mut events) = mpsc::channel::<()>(1);
    // Keep the watcher alive for the whole loop; without inotify we scan on a timer.
    let _notify = if opts.poll.is_zero() && !opts.oneshot {
        let mode = if opts.recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        use notify::Watcher as _;
        match notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        }) {
            Ok(mut w) => match w.watch(&opts.root, mode) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "inotify unavailable; scanning every 5 s");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; scanning every 5 s");
                None
            }
        }
    } else {
        None
    };
    let idle = if !opts.poll.is_zero() {
        opts.poll
    } else if _notify.is_some() {
        RESCAN_EVERY
    } else {
        Duration::from_secs(5)
    };
    tracing::info!(folder = %opts.root.display(), recursive = opts.recursive, "watching the consumption folder");
    let mut scanner = Scanner::new(opts.clone());
    let mut queued = 0u64;
    loop {
        for r in scanner.tick(Instant::now()) {
            match submit(config, &queue, db.as_ref(), &opts, &r).await {
                Ok(id) => {
                    tracing::info!(file = %r.relative, job = %id, "queued");
                    scanner.mark_queued(&r.path);
                    queued += 1;
                }
                // Staging or Redis trouble: the file stays pending and is tried again.
                Err(e) => {
                    tracing::warn!(file = %r.relative, error = %format!("{e:#}"), "cannot queue")
                }
            }
        }
        if opts.oneshot && scanner.pending() == 0 {
            return Ok(queued);
        }
        let wait = if scanner.pending() > 0 {
            opts.stability.max(Duration::from_millis(100)).min(idle)
        } else {
            idle
        };
        tokio::select! {
            _ = stop.changed() => return Ok(queued),
            _ = events.recv() => {
                // Let a burst of events settle into one scan.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while events.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Stages one file and enqueues its consume job; returns the job id.
async fn submit(
    config: &Config,
    queue: &Queue,
    db: Option<&Db>,
    opts: &Options,
    r: &Ready,
) -> anyhow::Result<String> {
    let mut tag_ids = Vec::new();
    if opts.subdirs_as_tags && !r.folders.is_empty() {
        let db = db.ok_or_else(|| anyhow::anyhow!("sub-folder tags need the database"))?;
        let mut tx = db.begin().await?;
        for name in &r.folders {
            tag_ids.push(tags::get_or_create_by_name(&mut tx, name).await?);
        }
        tx.commit().await?;
    }
    let path = r.path.clone();
    let config2 = config.clone();
    let staged = tokio::task::spawn_blocking(move || staging::stage(&config2, &path)).await??;
    let job = Job::Consume(ConsumeArgs {
        staged: staged.relative.clone(),
        original_filename: staged.original_filename.clone(),
        tags: tag_ids,
        source: Some(r.relative.clone()),
    });
    match queue.enqueue(&job).await {
        Ok(e) => Ok(e.id().to_string()),
        Err(e) => {
            let _ = staging::remove(config, &staged.relative);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(root: &Path, recursive: bool, stability: Duration) -> Options {
        Options {
            root: root.to_path_buf(),
            recursive,
            subdirs_as_tags: true,
            stability,
            poll: Duration::ZERO,
            oneshot: false,
        }
    }

    #[test]
    fn wanted_files() {
        for ok in [
            "a.pdf",
            "Scan.PDF",
            "x.jpeg",
            "y.TIF",
            "notes.txt",
            "p.webp",
        ] {
            assert!(wanted_file(ok), "{ok}");
        }
        for no in [
            ".DS_Store",
            "._a.pdf",
            ".hidden.pdf",
            "desktop.ini",
            "Thumbs.db",
            "a.docx",
            "noext",
            "a.pdf.part",
        ] {
            assert!(!wanted_file(no), "{no}");
        }
    }

    #[test]
    fn files_are_ready_once_stable_and_queued_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("a.pdf"), b"%PDF-1.4").unwrap();
        let mut s = Scanner::new(opts(root, false, Duration::from_secs(5)));
        let t0 = Instant::now();
        assert!(s.tick(t0).is_empty());
        assert_eq!(s.pending(), 1);
        assert!(s.tick(t0 + Duration::from_secs(4)).is_empty());
        let ready = s.tick(t0 + Duration::from_secs(5));
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].relative, "a.pdf");
        s.mark_queued(&ready[0].path);
        assert!(s.tick(t0 + Duration::from_secs(60)).is_empty());
        assert_eq!(s.pending(), 0);
        // A changed file (same name, other content) counts as new once stable again.
        std::fs::write(root.join("a.pdf"), b"%PDF-1.4 more").unwrap();
        assert!(s.tick(t0 + Duration::from_secs(61)).is_empty());
        assert_eq!(s.tick(t0 + Duration::from_secs(66)).len(), 1);
    }

    #[test]
    fn a_growing_file_waits() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("scan.pdf");
        std::fs::write(&p, b"%PDF").unwrap();
        let mut s = Scanner::new(opts(tmp.path(), false, Duration::from_secs(5)));
        let t0 = Instant::now();
        s.tick(t0);
        std::fs::write(&p, b"%PDF-1.4 and more").unwrap();
        assert!(
            s.tick(t0 + Duration::from_secs(5)).is_empty(),
            "changed: wait again"
        );
        assert_eq!(s.tick(t0 + Duration::from_secs(10)).len(), 1);
    }

    #[test]
    fn folders_ignores_and_recursion() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in ["Archive/2024", "failed", "@eaDir", "__MACOSX"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "top.pdf",
            "Archive/2024/deep.png",
            "failed/refused.pdf",
            "@eaDir/x.pdf",
            "__MACOSX/._y.pdf",
            ".DS_Store",
            "word.docx",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let mut flat = Scanner::new(opts(root, false, Duration::ZERO));
        let got: Vec<_> = flat
            .tick(Instant::now())
            .into_iter()
            .map(|r| r.relative)
            .collect();
        assert_eq!(got, ["top.pdf"]);
        let mut deep = Scanner::new(opts(root, true, Duration::ZERO));
        let got = deep.tick(Instant::now());
        let rel: Vec<_> = got.iter().map(|r| r.relative.as_str()).collect();
        assert_eq!(rel, ["Archive/2024/deep.png", "top.pdf"]);
        assert_eq!(got[0].folders, ["Archive", "2024"]);
        assert!(got[1].folders.is_empty());
    }
}
