//! `renamer` (paperless's `document_renamer`, spec §5.9–5.10): moves every live document's
//! original and archive file to the name its template gives now.
//!
//! Never overwrites, never deletes a file that is not also somewhere else, and is crash-safe:
//!
//! 0. the document's row is held (PostgreSQL `FOR UPDATE`, SQLite's write transaction) from
//!    reading its names to recording the new ones, so two batches (or a batch and a
//!    recovery) never move one document at once;
//! 1. a journal entry `DATA_DIR/renamer/<id>.json` records the old and the new names (written
//!    atomically) before anything moves;
//! 2. the new names are *added* as hard links (a flushed copy where the file system has none),
//!    created exclusively: a taken name is never replaced, the next counter is tried;
//! 3. the database row moves to the new names in one update, guarded by the old names (a row
//!    someone else changed meanwhile is left alone and the new links are taken back);
//! 4. only then the old names go, and the folders they leave empty;
//! 5. the journal entry goes last.
//!
//! Killed anywhere, the row names files that exist: before step 3 the old names (still there),
//! after it the new ones (linked before). Every run (and every batch, and every move of a
//! document, under its row lock) first settles the journal left by a crash: a row at its new names loses the old links, a row at its old names loses
//! the new links (only if they are the same file, or the same content as the stored checksum).
//!
//! The whole run pages the live documents by id and fans out batches of [`BATCH`] (unique:
//! one run at a time). `dry_run` computes every move in the coordinator and lists them without
//! touching anything.

use std::path::{Path, PathBuf};

use paperboy_shared::config::Config;
use paperboy_shared::db::files::{self, NamingData};
use paperboy_shared::db::{DbError, StorageType, documents};
use paperboy_shared::job::Job;
use paperboy_shared::media::{self, Folder, Media, MediaError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;

use super::{JobContext, JobError};
use crate::filenames::{self, FilenameSettings, NameInfo, Namer, Which};

/// Documents per fanned-out batch.
pub const BATCH: i64 = 100;

/// Folder of the journal, inside the data folder.
pub const JOURNAL_DIR: &str = "renamer";

/// One document's planned move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub id: i64,
    pub old: (Option<String>, Option<String>),
    pub new: (Option<String>, Option<String>),
}

impl Move {
    fn changes(&self) -> bool {
        self.old != self.new
    }
}

fn journal_dir(config: &Config) -> PathBuf {
    config.data_dir.join(JOURNAL_DIR)
}

fn journal_path(config: &Config, id: i64) -> PathBuf {
    journal_dir(config).join(format!("{id}.json"))
}

fn media_error(e: MediaError) -> JobError {
    JobError::from_classified(e)
}

/// SHA-256 (or MD5 for 32-digit stored sums) of a file equals `stored`.
fn content_is(path: &Path, stored: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let got = if stored.len() == 32 {
        hex::encode(md5::Md5::digest(&bytes))
    } else {
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    got == stored.to_ascii_lowercase()
}

/// §5.9 steps 2–4: where the files of this document go now (names only, nothing touched).
pub fn plan(media: &Media, data: &NamingData, settings: &FilenameSettings) -> Option<Move> {
    let doc = &data.document;
    let current = doc.filename.clone()?;
    let info = NameInfo::from_data(data);
    let namer = Namer::new(&info, settings);
    let orig_dir = media.dir(Folder::Originals);
    let arch_dir = media.dir(Folder::Archive);
    let candidate = namer.candidate(Which::Original, 0);
    if candidate.chars().count() > filenames::MAX_NAME_CHARS {
        tracing::warn!(
            document_id = doc.id,
            "new file name too long; keeping the old one"
        );
        return None;
    }
    let new_orig = if candidate == current {
        candidate
    } else if orig_dir.join(&candidate).exists()
        && !orig_dir.join(&current).exists()
        && content_is(&orig_dir.join(&candidate), &doc.checksum)
    {
        // A half-finished earlier move: adopt the file that is already there.
        candidate
    } else {
        filenames::unique_original(&namer, &orig_dir, Some(&current))
    };
    let new_arch = doc
        .archive_filename
        .as_ref()
        .map(|a| filenames::unique_archive(&namer, &arch_dir, Some(a), &new_orig));
    Some(Move {
        id: doc.id,
        old: (Some(current), doc.archive_filename.clone()),
        new: (Some(new_orig), new_arch),
    })
}

/// The (old, new) absolute paths of the parts of a move that change.
fn pairs(media: &Media, m: &Move) -> Result<Vec<(Folder, PathBuf, PathBuf)>, MediaError> {
    let mut v = Vec::new();
    for (folder, old, new) in [
        (Folder::Originals, &m.old.0, &m.new.0),
        (Folder::Archive, &m.old.1, &m.new.1),
    ] {
        if let (Some(o), Some(n)) = (old, new)
            && o != n
        {
            v.push((folder, media.path(folder, o)?, media.path(folder, n)?));
        }
    }
    Ok(v)
}

/// Removes `old` once `new` holds the file; then the folders it leaves empty.
fn drop_old(media: &Media, folder: Folder, old: &Path, new: &Path) {
    if old.exists() && new.exists() {
        if let Err(e) = media::remove_file(old) {
            tracing::warn!(path = %old.display(), error = %e, "cannot remove the old name");
            return;
        }
        if let Some(parent) = old.parent() {
            media::remove_empty_dirs(parent, &media.dir(folder));
        }
    }
}

/// Takes back a new name that is the old file (a link we made, or a copy with the stored
/// content); anything else at that name is left alone.
fn drop_new(media: &Media, folder: Folder, old: &Path, new: &Path, stored: Option<&str>) {
    let ours =
        media::same_file(old, new) || (old.exists() && stored.is_some_and(|s| content_is(new, s)));
    if ours {
        let _ = media::remove_file(new);
        if let Some(parent) = new.parent() {
            media::remove_empty_dirs(parent, &media.dir(folder));
        }
    }
}

/// Settles the journal entry of document `id` left by a crashed move (see the module docs),
/// inside the caller's transaction, which holds the document ([`files::lock_document`]).
async fn settle(
    tx: &mut paperboy_shared::db::Tx,
    media: &Media,
    config: &Config,
    id: i64,
) -> Result<bool, JobError> {
    let path = journal_path(config, id);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(false);
    };
    let Ok(m) = serde_json::from_str::<Move>(&text) else {
        tracing::warn!(journal = %path.display(), "unreadable renamer journal entry left alone");
        return Ok(false);
    };
    let doc = files::naming(tx, id).await?.map(|d| d.document);
    let names = doc
        .as_ref()
        .map(|d| (d.filename.clone(), d.archive_filename.clone()));
    let pairs = pairs(media, &m).map_err(media_error)?;
    if names.as_ref() == Some(&m.new) {
        for (folder, old, new) in &pairs {
            drop_old(media, *folder, old, new);
        }
    } else if names.as_ref() == Some(&m.old) {
        for (folder, old, new) in &pairs {
            let stored = doc.as_ref().and_then(|d| match folder {
                Folder::Originals => Some(d.checksum.clone()),
                _ => d.archive_checksum.clone(),
            });
            drop_new(media, *folder, old, new, stored.as_deref());
        }
    } else {
        tracing::warn!(
            document_id = id,
            "the document changed since an interrupted rename; its files are left as they are"
        );
    }
    media::remove_file(&path).map_err(media_error)?;
    Ok(true)
}

/// Settles every journal entry left by crashed runs. Returns how many.
pub async fn recover(ctx: &JobContext) -> Result<u64, JobError> {
    let Ok(entries) = std::fs::read_dir(journal_dir(ctx.config())) else {
        return Ok(0);
    };
    let ids: Vec<i64> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    let media = Media::from_config(ctx.config());
    let mut n = 0;
    for id in ids {
        let mut tx = ctx.db().begin().await?;
        files::lock_document(&mut tx, ctx.db().engine, id).await?;
        if settle(&mut tx, &media, ctx.config(), id).await? {
            n += 1;
        }
        tx.commit().await.map_err(DbError::from)?;
    }
    if n > 0 {
        tracing::info!(entries = n, "settled the journal of an interrupted rename");
    }
    Ok(n)
}

/// Links the new names (a taken name: the next counter), returns the move as done on disk.
fn link_all(
    media: &Media,
    m: &mut Move,
    data: &NamingData,
    settings: &FilenameSettings,
) -> Result<(), MediaError> {
    let info = NameInfo::from_data(data);
    let namer = Namer::new(&info, settings);
    let mut made: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for (folder, which) in [
            (Folder::Originals, Which::Original),
            (Folder::Archive, Which::Archive),
        ] {
            let (old, new) = match folder {
                Folder::Originals => (m.old.0.clone(), &mut m.new.0),
                _ => (m.old.1.clone(), &mut m.new.1),
            };
            let (Some(old), Some(target)) = (old, new.as_mut()) else {
                continue;
            };
            if &old == target {
                continue;
            }
            let from = media.path(folder, &old)?;
            let mut counter = 1;
            loop {
                let to = media.path(folder, target)?;
                match media::link_new(&from, &to) {
                    Ok(()) => {
                        made.push(to);
                        break;
                    }
                    // Taken since the plan (another batch): the next free counter.
                    Err(MediaError::Exists { .. }) if counter < 100 => {
                        *target = namer.candidate(which, counter);
                        counter += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    })();
    if result.is_err() {
        for p in made {
            let _ = media::remove_file(&p);
        }
    }
    result
}

/// Takes back the new names of a move that did not reach the database.
fn undo_links(media: &Media, pairs: &[(Folder, PathBuf, PathBuf)]) {
    for (folder, old, new) in pairs {
        if media::same_file(old, new) {
            let _ = media::remove_file(new);
            if let Some(parent) = new.parent() {
                media::remove_empty_dirs(parent, &media.dir(*folder));
            }
        }
    }
}

/// Moves one document (module docs, steps 1–5) while holding its row. Returns the move done.
async fn rename_one(
    ctx: &JobContext,
    media: &Media,
    settings: &FilenameSettings,
    id: i64,
) -> Result<Option<Move>, JobError> {
    let mut tx = ctx.db().begin().await?;
    if !files::lock_document(&mut tx, ctx.db().engine, id).await? {
        return Ok(None);
    }
    settle(&mut tx, media, ctx.config(), id).await?;
    let Some(data) = files::naming(&mut tx, id).await? else {
        return Ok(None);
    };
    if data.document.storage_type == StorageType::Gpg || data.document.in_trash() {
        tx.commit().await.map_err(DbError::from)?;
        return Ok(None);
    }
    let Some(mut m) = plan(media, &data, settings).filter(Move::changes) else {
        tx.commit().await.map_err(DbError::from)?;
        return Ok(None);
    };
    let journal = journal_path(ctx.config(), id);
    let write_journal = |m: &Move| {
        media::write_atomic(
            &journal,
            serde_json::to_string(m).expect("serializes").as_bytes(),
        )
        .map_err(media_error)
    };
    write_journal(&m)?;
    if let Err(e) = link_all(media, &mut m, &data, settings) {
        let _ = media::remove_file(&journal);
        tracing::warn!(document_id = id, error = %e, "cannot move the files; they stay where they are");
        return Ok(None);
    }
    let pairs = pairs(media, &m).map_err(media_error)?;
    // The journal names the final targets (a counter may have moved them).
    if let Err(e) = write_journal(&m) {
        undo_links(media, &pairs);
        let _ = media::remove_file(&journal);
        return Err(e);
    }
    let updated = async {
        let ok = files::move_names(
            &mut tx,
            id,
            (m.old.0.as_deref(), m.old.1.as_deref()),
            (m.new.0.as_deref(), m.new.1.as_deref()),
        )
        .await?;
        if ok {
            tx.commit().await.map_err(DbError::from)?;
        }
        Ok::<bool, DbError>(ok)
    }
    .await;
    match updated {
        Ok(true) => {
            for (folder, old, new) in &pairs {
                drop_old(media, *folder, old, new);
            }
            media::remove_file(&journal).map_err(media_error)?;
            Ok(Some(m))
        }
        Ok(false) => {
            undo_links(media, &pairs);
            let _ = media::remove_file(&journal);
            tracing::warn!(
                document_id = id,
                "document changed while renaming; left as it is"
            );
            Ok(None)
        }
        Err(e) => {
            undo_links(media, &pairs);
            let _ = media::remove_file(&journal);
            Err(e.into())
        }
    }
}

fn settings_of(ctx: &JobContext) -> Result<FilenameSettings, JobError> {
    FilenameSettings::from_config(ctx.config()).map_err(JobError::Permanent)
}

pub async fn run(
    dry_run: bool,
    batch: Option<Vec<i64>>,
    ctx: &JobContext,
) -> Result<serde_json::Value, JobError> {
    let settings = settings_of(ctx)?;
    let media = Media::from_config(ctx.config());
    match batch {
        Some(ids) => {
            let recovered = recover(ctx).await?;
            let total = ids.len() as u64;
            let mut moved = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                ctx.check_cancelled()?;
                ctx.progress(i as u64, total, format!("document {id}"));
                if let Some(m) = rename_one(ctx, &media, &settings, *id).await? {
                    moved.push(m);
                }
            }
            ctx.progress(total, total, "done");
            Ok(json!({"moved": moved.len(), "moves": moved, "recovered": recovered}))
        }
        None if dry_run => {
            let mut moves = Vec::new();
            let mut after = 0;
            loop {
                ctx.check_cancelled()?;
                let ids = documents::ids_after(ctx.db(), after, BATCH).await?;
                let Some(&last) = ids.last() else { break };
                after = last;
                for id in ids {
                    let Some(data) = files::naming_of(ctx.db(), id).await? else {
                        continue;
                    };
                    if data.document.storage_type == StorageType::Gpg {
                        continue;
                    }
                    if let Some(m) = plan(&media, &data, &settings).filter(Move::changes) {
                        moves.push(m);
                    }
                }
                ctx.progress(after as u64, 0, format!("{} moves", moves.len()));
            }
            Ok(json!({"dry_run": true, "moves": moves}))
        }
        None => {
            let recovered = recover(ctx).await?;
            let mut after = 0;
            let (mut batches, mut docs) = (0u64, 0u64);
            loop {
                ctx.check_cancelled()?;
                let ids = documents::ids_after(ctx.db(), after, BATCH).await?;
                let Some(&last) = ids.last() else { break };
                after = last;
                docs += ids.len() as u64;
                ctx.enqueue(&Job::Renamer {
                    dry_run: false,
                    batch: Some(ids),
                })
                .await?;
                batches += 1;
                ctx.progress(docs, docs, format!("{batches} batches queued"));
            }
            Ok(json!({"batches": batches, "documents": docs, "recovered": recovered}))
        }
    }
}
