//! The consumption-folder watcher: files dropped into `PAPERBOY_CONSUMPTION_DIR` become consume
//! jobs, as paperless-ngx's `document_consumer` does (spec: mail-archive-consume.md §3.5).
//!
//! Every worker that serves the `consume` queue runs one. Several of them may watch the same
//! shared folder: a file is *claimed* by renaming it into `<dir>/.paperboy/<ulid>/` (a rename is
//! atomic, so exactly one watcher wins), then copied into the staging area, then a consume job is
//! enqueued, then the claim is removed. A watcher that dies between those steps leaves the claim
//! behind; the next watcher to start moves claimed files back into the folder, so nothing is lost
//! (at worst a file is consumed twice, and the consumer's duplicate check refuses the second).
//!
//! A file is taken once its size and mtime have not changed for the stability delay (paperless:
//! 5 s), so half-copied files are left alone. Wake-ups come from inotify (`notify`) where it
//! works; `PAPERBOY_CONSUMER_POLLING` > 0 switches to a plain scan every N seconds for network
//! mounts, where inotify sees nothing. Either way a full scan runs at least every 30 s, which also
//! picks up files present at start.
//!
//! Differences from paperless-ngx: the claim step makes several watchers on one folder safe
//! (upstream supports one consumer process only), and the file leaves the folder as soon as its
//! job is enqueued (upstream keeps it there until the consumer is done with it), so a failed
//! consume never re-triggers from the folder; the consumer copies a file it refuses into
//! `<dir>/failed/` for the operator (and keeps its staged copy for `paperboy jobs retry`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use paperboy_shared::config::Config;
use paperboy_shared::db::{Db, tags};
use paperboy_shared::job::{ConsumeArgs, Job};
use paperboy_shared::queue::Queue;
use paperboy_shared::{media, staging};
use thiserror::Error;
use tokio::sync::{mpsc, watch};

/// Name of the claim folder inside the consumption folder.
pub const CLAIM_DIR: &str = ".paperboy";
/// Sub-folder of the consumption folder never scanned: where the consumer puts failed files.
use crate::jobs::consume::FAILED_DIR;
/// Longest time between two full scans.
const SAFETY_SCAN: Duration = Duration::from_secs(30);

/// Files paperless ignores, and so do we.
const IGNORED_FILES: &[&str] = &[".DS_Store", "desktop.ini", "Thumbs.db"];
/// Folders paperless ignores, and so do we (plus every hidden folder, and our own).
const IGNORED_DIRS: &[&str] = &[
    ".stfolder",
    ".stversions",
    ".localized",
    "@eaDir",
    ".Spotlight-V100",
    ".Trashes",
    "__MACOSX",
    CLAIM_DIR,
];

#[derive(Debug, Error)]
pub enum WatchError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Staging(#[from] staging::StagingError),
    #[error(transparent)]
    Queue(#[from] paperboy_shared::queue::QueueError),
    #[error(transparent)]
    Db(#[from] paperboy_shared::db::DbError),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WatchError {
    let path = path.to_path_buf();
    move |source| WatchError::Io {
        action,
        path,
        source,
    }
}

/// Is this file name one the watcher leaves alone?
pub fn ignored_file(name: &str) -> bool {
    IGNORED_FILES.contains(&name) || name.starts_with("._") || name.starts_with('.')
}

/// Is this folder name one the watcher does not descend into?
pub fn ignored_dir(name: &str) -> bool {
    IGNORED_DIRS.contains(&name) || name.starts_with('.')
}

/// A file seen by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    size: u64,
    mtime: Option<SystemTime>,
    since: Instant,
}

/// The files below `root` a scan considers (relative paths), with size and mtime.
pub fn scan(root: &Path, recursive: bool) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .max_depth(if recursive { usize::MAX } else { 1 })
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            if e.depth() == 0 || !e.file_type().is_dir() {
                return true;
            }
            let name = e.file_name().to_string_lossy();
            !(ignored_dir(&name) || (e.depth() == 1 && name == FAILED_DIR))
        });
    let mut out = Vec::new();
    for entry in walker.flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        if ignored_file(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        out.push((rel.to_path_buf(), meta.len(), meta.modified().ok()));
    }
    out.sort();
    out
}

/// The tag names a file's sub-folders give (`a/b/file.pdf` → `a`, `b`).
pub fn subdir_tags(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    parts.dedup();
    parts
}

/// Tracks what the scans saw and decides which files are stable.
#[derive(Debug, Default)]
struct Stability {
    seen: HashMap<PathBuf, Seen>,
}

impl Stability {
    /// Feeds one scan; returns the files unchanged for at least `delay`, and whether any file is
    /// still settling.
    fn update(
        &mut self,
        scan: Vec<(PathBuf, u64, Option<SystemTime>)>,
        now: Instant,
        delay: Duration,
    ) -> (Vec<PathBuf>, bool) {
        let mut next = HashMap::new();
        let mut ready = Vec::new();
        let mut settling = false;
        for (path, size, mtime) in scan {
            let entry = match self.seen.remove(&path) {
                Some(s) if s.size == size && s.mtime == mtime => s,
                _ => Seen {
                    size,
                    mtime,
                    since: now,
                },
            };
            if now.duration_since(entry.since) >= delay {
                ready.push(path);
            } else {
                settling = true;
                next.insert(path, entry);
            }
        }
        self.seen = next;
        (ready, settling)
    }
}

/// One watcher over one folder.
pub struct Watcher {
    config: Arc<Config>,
    root: PathBuf,
    queue: Queue,
    db: Option<Db>,
    stability: Stability,
    delay: Duration,
}

impl Watcher {
    pub fn new(config: Arc<Config>, queue: Queue, db: Option<Db>, delay: Duration) -> Watcher {
        Watcher {
            root: config.consumption_dir.clone(),
            config,
            queue,
            db,
            stability: Stability::default(),
            delay,
        }
    }

    /// Moves files left in the claim folder by a watcher that died back into the folder.
    pub fn recover_claims(&self) -> Result<usize, WatchError> {
        let claims = self.root.join(CLAIM_DIR);
        let Ok(dirs) = std::fs::read_dir(&claims) else {
            return Ok(0);
        };
        let mut n = 0;
        for dir in dirs.flatten() {
            let dir = dir.path();
            for file in std::fs::read_dir(&dir)
                .map_err(io("cannot read", &dir))?
                .flatten()
            {
                let target = media::free_name(&self.root, &file.file_name().to_string_lossy());
                std::fs::rename(file.path(), &target).map_err(io("cannot move back", &target))?;
                tracing::warn!(file = %target.display(), "claimed file of a stopped watcher moved back");
                n += 1;
            }
            let _ = std::fs::remove_dir(&dir);
        }
        Ok(n)
    }

    /// One scan: enqueues every stable file. Returns (jobs enqueued, files still settling).
    pub async fn scan_once(&mut self) -> (usize, bool) {
        let root = self.root.clone();
        let recursive = self.config.consumer_recursive;
        let files = tokio::task::spawn_blocking(move || scan(&root, recursive))
            .await
            .unwrap_or_default();
        let (ready, settling) = self.stability.update(files, Instant::now(), self.delay);
        let mut n = 0;
        for rel in ready {
            match self.take(&rel).await {
                Ok(Some(id)) => {
                    n += 1;
                    tracing::info!(file = %rel.display(), job = %id, "consume job enqueued from the consumption folder");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(file = %rel.display(), error = %e, "cannot enqueue a file of the consumption folder; it stays there");
                }
            }
        }
        (n, settling)
    }

    /// Claims, stages and enqueues one file. `None` when another watcher took it first.
    async fn take(&mut self, rel: &Path) -> Result<Option<String>, WatchError> {
        let source = self.root.join(rel);
        let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Ok(None);
        };
        let claim_dir = self
            .root
            .join(CLAIM_DIR)
            .join(ulid::Ulid::new().to_string());
        std::fs::create_dir_all(&claim_dir).map_err(io("cannot create", &claim_dir))?;
        let claimed = claim_dir.join(&name);
        match std::fs::rename(&source, &claimed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_dir(&claim_dir);
                return Ok(None);
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&claim_dir);
                return Err(io("cannot claim", &source)(e));
            }
        }
        let give_back = |claimed: &Path| {
            let _ = std::fs::rename(claimed, &source);
            let _ = std::fs::remove_dir(&claim_dir);
        };
        let config = self.config.clone();
        let claimed2 = claimed.clone();
        let staged = match tokio::task::spawn_blocking(move || staging::stage(&config, &claimed2))
            .await
            .expect("staging task")
        {
            Ok(s) => s,
            Err(e) => {
                give_back(&claimed);
                return Err(e.into());
            }
        };
        let tags = match self.tags_for(rel).await {
            Ok(t) => t,
            Err(e) => {
                let _ = staging::remove(&self.config, &staged.relative);
                give_back(&claimed);
                return Err(e);
            }
        };
        let job = Job::Consume(ConsumeArgs {
            staged: staged.relative.clone(),
            original_filename: staged.original_filename.clone(),
            tags,
            source: Some(rel.to_string_lossy().into_owned()),
            ..Default::default()
        });
        match self.queue.enqueue(&job).await {
            Ok(e) => {
                let _ = std::fs::remove_file(&claimed);
                let _ = std::fs::remove_dir(&claim_dir);
                Ok(Some(e.id().to_string()))
            }
            Err(e) => {
                let _ = staging::remove(&self.config, &staged.relative);
                give_back(&claimed);
                Err(e.into())
            }
        }
    }

    async fn tags_for(&self, rel: &Path) -> Result<Vec<i64>, WatchError> {
        if !self.config.consumer_subdirs_as_tags {
            return Ok(Vec::new());
        }
        let Some(db) = &self.db else {
            return Ok(Vec::new());
        };
        let names = subdir_tags(rel);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = db
            .pool
            .acquire()
            .await
            .map_err(paperboy_shared::db::DbError::from)?;
        let mut ids = Vec::new();
        for name in names {
            ids.push(tags::get_or_create_by_name(&mut conn, &name).await?);
        }
        Ok(ids)
    }
}

/// Runs a watcher until `stop` counts a stop signal. Connection problems are retried; the worker
/// never stops because of its watcher.
pub async fn run(config: Arc<Config>, mut stop: watch::Receiver<u32>) {
    let root = config.consumption_dir.clone();
    let stopped = |s: &watch::Receiver<u32>| *s.borrow() > 0;
    // Connections of its own: the watcher must not slow the job loops down.
    let mut delay = Duration::from_millis(200);
    let queue = loop {
        match Queue::connect(&config.redis_url, &config.redis_prefix).await {
            Ok(q) => break q,
            Err(e) => {
                tracing::warn!(error = %e, "consumption watcher: Redis unreachable; retrying")
            }
        }
        if tokio::time::timeout(delay, stop.changed()).await.is_ok() || stopped(&stop) {
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    };
    let db = if config.consumer_subdirs_as_tags {
        match Db::connect(&config.database_url).await {
            Ok(db) => Some(db),
            Err(e) => {
                tracing::error!(error = %e, "consumption watcher: database unreachable; sub-folders will not become tags");
                None
            }
        }
    } else {
        None
    };
    if let Err(e) = std::fs::create_dir_all(&root) {
        tracing::error!(folder = %root.display(), error = %e, "cannot create the consumption folder; the watcher is off");
        return;
    }
    let mut w = Watcher::new(config.clone(), queue, db, config.consumer_stability_delay);
    match w.recover_claims() {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "consumption watcher recovered claimed files"),
        Err(e) => tracing::error!(error = %e, "consumption watcher cannot recover claimed files"),
    }

    // inotify wake-ups unless polling was asked for. The watcher object must stay alive.
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let _inotify = if config.consumer_polling == 0 {
        use notify::Watcher as _;
        let mode = if config.consumer_recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        match notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.send(());
        }) {
            Ok(mut n) => match n.watch(&root, mode) {
                Ok(()) => Some(n),
                Err(e) => {
                    tracing::warn!(error = %e, "inotify unavailable on the consumption folder; scanning every second instead");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; scanning every second instead");
                None
            }
        }
    } else {
        None
    };
    let inotify = _inotify.is_some();
    tracing::info!(folder = %root.display(), inotify, polling_secs = config.consumer_polling, "consumption watcher started");

    loop {
        let (_, settling) = w.scan_once().await;
        let wait = if config.consumer_polling > 0 {
            Duration::from_secs(config.consumer_polling)
        } else if settling || !inotify {
            Duration::from_secs(1)
        } else {
            SAFETY_SCAN
        };
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(wait) => {}
            Some(()) = rx.recv(), if inotify => {
                // Let a burst of events settle, then drain it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
            }
        }
        if stopped(&stop) {
            tracing::info!("consumption watcher stopped");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_what_paperless_ignores() {
        for f in [
            ".DS_Store",
            "._scan.pdf",
            "desktop.ini",
            "Thumbs.db",
            ".hidden",
        ] {
            assert!(ignored_file(f), "{f}");
        }
        assert!(!ignored_file("scan.pdf"));
        for d in ["@eaDir", "__MACOSX", ".stfolder", CLAIM_DIR, ".git"] {
            assert!(ignored_dir(d), "{d}");
        }
        assert!(!ignored_dir("invoices"));
    }

    #[test]
    fn scan_skips_ignored_claimed_and_failed_and_respects_recursion() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for p in [
            "a.pdf",
            "._a.pdf",
            "sub/b.pdf",
            "sub/deep/c.pdf",
            "@eaDir/x.pdf",
            ".paperboy/01H/claimed.pdf",
            "failed/bad.bin",
        ] {
            let p = r.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
        }
        let names = |v: Vec<(PathBuf, u64, Option<SystemTime>)>| {
            v.into_iter()
                .map(|(p, _, _)| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(scan(r, false)), ["a.pdf"]);
        assert_eq!(
            names(scan(r, true)),
            ["a.pdf", "sub/b.pdf", "sub/deep/c.pdf"]
        );
    }

    #[test]
    fn a_file_is_ready_only_after_it_stopped_changing() {
        let mut s = Stability::default();
        let t0 = Instant::now();
        let d = Duration::from_secs(5);
        let f = |size| vec![(PathBuf::from("a.pdf"), size, None)];
        assert_eq!(s.update(f(10), t0, d), (vec![], true));
        // Still growing: the clock starts again.
        assert_eq!(
            s.update(f(20), t0 + Duration::from_secs(4), d),
            (vec![], true)
        );
        assert_eq!(
            s.update(f(20), t0 + Duration::from_secs(8), d),
            (vec![], true)
        );
        assert_eq!(
            s.update(f(20), t0 + Duration::from_secs(9), d),
            (vec![PathBuf::from("a.pdf")], false)
        );
        // A file that vanished is forgotten.
        assert_eq!(
            s.update(vec![], t0 + Duration::from_secs(10), d),
            (vec![], false)
        );
        assert!(s.seen.is_empty());
    }

    #[test]
    fn subfolders_become_tag_names() {
        assert_eq!(subdir_tags(Path::new("a.pdf")), Vec::<String>::new());
        assert_eq!(subdir_tags(Path::new("Bank/2024/a.pdf")), ["Bank", "2024"]);
    }
}
