//! `empty-trash` (paperless-ngx's periodic `empty_trash`): documents that have been in the trash
//! longer than `PAPERBOY_EMPTY_TRASH_DELAY` days are deleted for good, with their versions, tags,
//! notes, custom field values and files. With `PAPERBOY_EMPTY_TRASH_DIR` the originals and
//! archive versions are moved there instead of deleted (thumbnails are always deleted).
//!
//! Crash safety, per document (paperless deletes the row and then the files, so a crash in
//! between leaves orphans no one removes):
//! 1. an intent file `DATA_DIR/empty-trash/<id>.json` lists the document's files;
//! 2. with a trash folder, each file gets a second name there (hard link, or a flushed copy
//!    across file systems), and the intent records that this is done;
//! 3. the row is deleted in a transaction, only if it is still in the trash and expired;
//! 4. the media files are removed (and folders left empty by templates);
//! 5. the intent file is removed.
//!
//! A run starts by finishing the intents a killed or failed run left: the row gone means steps
//! 4–5; the row still there resumes at 2 or 3. So the database never names a missing file, and
//! no file outlives its row for longer than the next run.

use std::path::{Path, PathBuf};

use paperboy_shared::db::{documents, to_rfc3339};
use paperboy_shared::job::Job;
use paperboy_shared::media::{self, Folder, Media, MediaError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use super::{JobContext, JobError};

/// Documents asked for at once.
const PAGE: i64 = 200;

/// What one document's deletion will remove (the intent file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Intent {
    id: i64,
    /// The cutoff the deletion was decided with (RFC 3339).
    cutoff: String,
    /// Names under `originals/` of the document and its versions.
    originals: Vec<String>,
    /// Names under `archive/`.
    archives: Vec<String>,
    /// Ids whose thumbnails go (the document and its versions).
    thumbnails: Vec<i64>,
    /// The files have their names in the trash folder already.
    moved: bool,
}

fn intent_dir(ctx: &JobContext) -> PathBuf {
    ctx.config().data_dir.join("empty-trash")
}

fn io_err(action: &str, path: &Path, e: std::io::Error) -> JobError {
    let msg = format!("{action} {}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => JobError::Permanent(format!(
            "{msg}; give the worker's user write access to that folder"
        )),
        _ => JobError::Transient(msg),
    }
}

fn media_err(e: MediaError) -> JobError {
    JobError::from_classified(e)
}

pub async fn run(ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let delay = ctx.config().empty_trash_delay_days;
    let cutoff = to_rfc3339(chrono::Utc::now() - chrono::Duration::days(i64::from(delay)));
    let media = Media::from_config(ctx.config());
    let dir = intent_dir(ctx);
    if let Some(t) = &ctx.config().empty_trash_dir {
        std::fs::create_dir_all(t).map_err(|e| io_err("cannot create the trash folder", t, e))?;
    }

    // Finish what an earlier run began.
    let mut deleted: Vec<i64> = Vec::new();
    let mut resumed = 0u64;
    for path in leftover_intents(&dir)? {
        let intent: Intent = match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(i) => i,
            None => {
                warn!(path = %path.display(), "unreadable empty-trash intent file, removed");
                media::remove_file(&path).map_err(media_err)?;
                continue;
            }
        };
        resumed += 1;
        if finish(ctx, &media, &path, intent.clone()).await? {
            deleted.push(intent.id);
        }
    }

    let mut after = 0;
    loop {
        ctx.check_cancelled()?;
        let ids = documents::trashed_before(ctx.db(), &cutoff, after, PAGE).await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        for id in ids {
            let files = documents::files_with_versions(ctx.db(), id).await?;
            let intent = Intent {
                id,
                cutoff: cutoff.clone(),
                originals: files.iter().filter_map(|f| f.1.clone()).collect(),
                archives: files.iter().filter_map(|f| f.2.clone()).collect(),
                thumbnails: files.iter().map(|f| f.0).collect(),
                moved: false,
            };
            let path = dir.join(format!("{id}.json"));
            write_intent(&path, &intent)?;
            if finish(ctx, &media, &path, intent).await? {
                deleted.push(id);
            }
            ctx.progress(deleted.len() as u64, 0, format!("deleted document {id}"));
        }
    }

    if !deleted.is_empty() {
        // The index drops entries whose row is gone (trashed documents are out of it already;
        // this is for an index that missed the trashing).
        if let Err(e) = ctx
            .enqueue(&Job::IndexUpdate {
                ids: deleted.clone(),
            })
            .await
        {
            warn!(error = %e, "could not queue the index update of the deleted documents");
        }
    }
    info!(
        deleted = deleted.len(),
        resumed,
        delay_days = delay,
        "emptied the trash"
    );
    Ok(json!({
        "deleted": deleted.len(),
        "ids": deleted,
        "resumed": resumed,
        "delay_days": delay,
        "cutoff": cutoff,
        "moved_to": ctx.config().empty_trash_dir.as_ref().map(|p| p.display().to_string()),
    }))
}

/// Intent files in `dir`, oldest id first.
fn leftover_intents(dir: &Path) -> Result<Vec<PathBuf>, JobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("cannot read", dir, e)),
    };
    let mut out: Vec<(i64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".json")?.parse::<i64>().ok()?;
            Some((id, e.path()))
        })
        .collect();
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

fn write_intent(path: &Path, intent: &Intent) -> Result<(), JobError> {
    let bytes = serde_json::to_vec_pretty(intent).expect("an intent serializes");
    media::write_atomic(path, &bytes).map_err(media_err)
}

/// Steps 2–5 for one document; true if its row was deleted (by this call or an earlier run).
async fn finish(
    ctx: &JobContext,
    media: &Media,
    path: &Path,
    mut intent: Intent,
) -> Result<bool, JobError> {
    let row_there = documents::exists(ctx.db(), intent.id).await?;
    if row_there {
        if !intent.moved
            && let Some(trash) = &ctx.config().empty_trash_dir
        {
            keep_in(trash, media, &intent)?;
            intent.moved = true;
            write_intent(path, &intent)?;
        }
        let mut tx = ctx.db().begin().await?;
        let gone = documents::delete_trashed(&mut tx, intent.id, &intent.cutoff).await?;
        tx.commit()
            .await
            .map_err(paperboy_shared::db::DbError::from)?;
        if !gone {
            // Restored, or not expired after all: keep every file (the copies in the trash
            // folder stay too; they are copies).
            info!(document = intent.id, "not deleted: no longer in the trash");
            media::remove_file(path).map_err(media_err)?;
            return Ok(false);
        }
    }
    for name in &intent.originals {
        remove_media(media, Folder::Originals, name)?;
    }
    for name in &intent.archives {
        remove_media(media, Folder::Archive, name)?;
    }
    for id in &intent.thumbnails {
        media::remove_file(&media.thumbnail(*id)).map_err(media_err)?;
    }
    media::remove_file(path).map_err(media_err)?;
    info!(document = intent.id, "deleted from the trash for good");
    Ok(true)
}

/// Removes `folder/name` and the folders a filename template made that are now empty.
fn remove_media(media: &Media, folder: Folder, name: &str) -> Result<(), JobError> {
    let p = media.path(folder, name).map_err(media_err)?;
    media::remove_file(&p).map_err(media_err)?;
    if let Some(parent) = p.parent() {
        media::remove_empty_dirs(parent, &media.dir(folder));
    }
    Ok(())
}

/// Gives every original and archive version of the intent a name in the trash folder (the
/// file's own base name, ` (1)` etc. when taken), keeping the media files in place.
fn keep_in(trash: &Path, media: &Media, intent: &Intent) -> Result<(), JobError> {
    let files = intent
        .originals
        .iter()
        .map(|n| (Folder::Originals, n))
        .chain(intent.archives.iter().map(|n| (Folder::Archive, n)));
    for (folder, name) in files {
        let from = media.path(folder, name).map_err(media_err)?;
        if !from.exists() {
            warn!(file = %from.display(), "file of a trashed document is missing; nothing to keep");
            continue;
        }
        let base = Path::new(name)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.clone());
        // A name taken between free_name and the link (another run) is tried again.
        loop {
            let to = media::free_name(trash, &base);
            match media::link_new(&from, &to) {
                Ok(()) => break,
                Err(MediaError::Exists { .. }) => continue,
                Err(e) => return Err(media_err(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paperboy_shared::db::now_rfc3339;

    #[test]
    fn intents_round_trip_and_list_in_id_order() {
        let d = tempfile::tempdir().unwrap();
        let i = Intent {
            id: 7,
            cutoff: now_rfc3339(),
            originals: vec!["2024/a.pdf".into()],
            archives: vec![],
            thumbnails: vec![7, 9],
            moved: false,
        };
        write_intent(
            &d.path().join("10.json"),
            &Intent {
                id: 10,
                ..i.clone()
            },
        )
        .unwrap();
        write_intent(&d.path().join("7.json"), &i).unwrap();
        std::fs::write(d.path().join("notes.txt"), b"x").unwrap();
        let list = leftover_intents(d.path()).unwrap();
        assert_eq!(
            list,
            vec![d.path().join("7.json"), d.path().join("10.json")]
        );
        let back: Intent = serde_json::from_slice(&std::fs::read(&list[0]).unwrap()).unwrap();
        assert_eq!(back, i);
        assert!(
            leftover_intents(&d.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }
}
