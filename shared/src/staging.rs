//! The staging area: `DATA_DIR/staging/<ulid>/<original file name>`.
//!
//! The CLI (and the consumption-folder watcher) copy a file here before enqueueing a consume job,
//! so that any worker on the shared storage can read it and the user may delete or move the
//! original at once. A job refers to its file by the path relative to the staging root
//! (`<ulid>/<name>`); [`resolve`] turns it back into a path and refuses anything that would leave
//! the staging root.
//!
//! Writes are atomic: the content goes to a temporary file in the job's own folder, is fsynced,
//! then renamed to its final name (and the folder fsynced), so a worker never sees half a file.

use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use crate::config::Config;
use crate::error::{Classify, ErrorClass};

/// Name of the staging folder inside `DATA_DIR`.
pub const STAGING_DIR: &str = "staging";

#[derive(Debug, Error)]
pub enum StagingError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path} is a directory: give the files inside it (e.g. `{path}/*`)")]
    IsDirectory { path: PathBuf },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} has no file name")]
    NoFileName { path: PathBuf },
    #[error(
        "{staged:?} is not a staged file path (expected <id>/<file name> inside the staging area)"
    )]
    BadStagedPath { staged: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Classify for StagingError {
    fn class(&self) -> ErrorClass {
        match self {
            // A full disk or a flaky network share may recover; everything else is the input.
            StagingError::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => ErrorClass::Permanent,
                _ => ErrorClass::Transient,
            },
            _ => ErrorClass::Permanent,
        }
    }
}

/// A file copied into the staging area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// Path relative to the staging root (`<ulid>/<name>`), what `ConsumeArgs::staged` holds.
    pub relative: String,
    /// Absolute or `DATA_DIR`-based path of the staged copy.
    pub path: PathBuf,
    /// The file name as the user had it.
    pub original_filename: String,
    /// Bytes copied.
    pub size: u64,
}

/// `DATA_DIR/staging`.
pub fn staging_root(config: &Config) -> PathBuf {
    config.data_dir.join(STAGING_DIR)
}

/// Checks that `path` names an existing regular file (symlinks are followed: staging copies the
/// content) and returns its file name. Lets a caller check every input before staging any.
pub fn check_source(path: &Path) -> Result<String, StagingError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StagingError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(StagingError::Io {
                action: "cannot read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if meta.is_dir() {
        return Err(StagingError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_file() {
        return Err(StagingError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let name = path.file_name().ok_or_else(|| StagingError::NoFileName {
        path: path.to_path_buf(),
    })?;
    Ok(name.to_string_lossy().into_owned())
}

/// Copies `source` to `DATA_DIR/staging/<new ulid>/<its file name>` atomically.
pub fn stage(config: &Config, source: &Path) -> Result<Staged, StagingError> {
    stage_into(&staging_root(config), source)
}

/// [`stage`] with an explicit staging root.
pub fn stage_into(root: &Path, source: &Path) -> Result<Staged, StagingError> {
    let original_filename = check_source(source)?;
    // `file_name()` never yields `..` or a separator; the lossy conversion may bring U+FFFD in a
    // non-UTF-8 name, which is still a valid, confined file name.
    let mut input = File::open(source).map_err(io_err("cannot open", source))?;
    // Keep the modification time: consume falls back to it for the created date.
    let mtime = input.metadata().and_then(|m| m.modified()).ok();
    stage_with(root, &original_filename, mtime, |out| {
        io::copy(&mut input, out).map_err(io_err("cannot copy", source))
    })
}

/// Stages bytes (a mail attachment) as `<ulid>/<name>`: written to a temporary file, flushed,
/// renamed into place. `name` must be a plain file name (no separator, not `.`/`..`); the mail
/// fetcher sanitises it first. `modified`, if given, becomes the file's modification time
/// (consume falls back to it for the created date).
pub fn stage_bytes(
    config: &Config,
    name: &str,
    bytes: &[u8],
    modified: Option<std::time::SystemTime>,
) -> Result<Staged, StagingError> {
    use std::io::Write;
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(StagingError::BadStagedPath {
            staged: name.to_string(),
        });
    }
    let root = staging_root(config);
    stage_with(&root, name, modified, |out| {
        out.write_all(bytes)
            .map(|()| bytes.len() as u64)
            .map_err(io_err("cannot write a staged file in", &root))
    })
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StagingError {
    let path = path.to_path_buf();
    move |source| StagingError::Io {
        action,
        path,
        source,
    }
}

/// The one way a file enters the staging area: a folder of its own (`root/<new ulid>/`), the
/// content written by `fill` into a temporary file there, flushed, renamed to `name`, folders
/// flushed. Nothing is left behind on an error.
fn stage_with(
    root: &Path,
    name: &str,
    modified: Option<std::time::SystemTime>,
    fill: impl FnOnce(&mut File) -> Result<u64, StagingError>,
) -> Result<Staged, StagingError> {
    let id = ulid::Ulid::new().to_string();
    fs::create_dir_all(root).map_err(io_err("cannot create the staging folder", root))?;
    let dir = root.join(&id);
    // `create_dir`, not `_all`: the folder is ours alone.
    fs::create_dir(&dir).map_err(io_err("cannot create", &dir))?;
    let result = (|| {
        let mut tmp = tempfile::Builder::new()
            .prefix(".staging-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(io_err("cannot create a temporary file in", &dir))?;
        let size = fill(tmp.as_file_mut())?;
        if let Some(t) = modified {
            let _ = tmp.as_file().set_modified(t);
        }
        tmp.as_file()
            .sync_all()
            .map_err(io_err("cannot flush a staged file in", &dir))?;
        let path = dir.join(name);
        tmp.persist(&path).map_err(|e| StagingError::Io {
            action: "cannot move the staged copy into place at",
            path: path.clone(),
            source: e.error,
        })?;
        sync_dir(&dir)?;
        sync_dir(root)?;
        Ok(Staged {
            relative: format!("{id}/{name}"),
            path,
            original_filename: name.to_string(),
            size,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&dir);
    }
    result
}

fn sync_dir(dir: &Path) -> Result<(), StagingError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StagingError::Io {
            action: "cannot flush the folder",
            path: dir.to_path_buf(),
            source,
        })
}

/// The path of a staged file from its relative name, refusing anything but `<id>/<file name>`
/// (no `..`, no absolute path, no deeper or shallower path).
pub fn resolve(config: &Config, relative: &str) -> Result<PathBuf, StagingError> {
    resolve_in(&staging_root(config), relative)
}

/// [`resolve`] with an explicit staging root.
pub fn resolve_in(root: &Path, relative: &str) -> Result<PathBuf, StagingError> {
    let bad = || StagingError::BadStagedPath {
        staged: relative.to_string(),
    };
    let rel = Path::new(relative);
    let parts: Vec<_> = rel.components().collect();
    if parts.len() != 2 || !parts.iter().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad());
    }
    Ok(root.join(rel))
}

/// Removes a staged file and its folder (after it was consumed, or when enqueueing failed).
/// Missing files are not an error.
pub fn remove(config: &Config, relative: &str) -> Result<(), StagingError> {
    remove_in(&staging_root(config), relative)
}

/// [`remove`] with an explicit staging root.
pub fn remove_in(root: &Path, relative: &str) -> Result<(), StagingError> {
    let path = resolve_in(root, relative)?;
    let dir = path.parent().expect("a resolved staged path has a folder");
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StagingError::Io {
            action: "cannot remove",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_a_copy_with_the_same_bytes_under_a_fresh_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("Invoice 2024.pdf");
        fs::write(&src, b"%PDF-1.4 hello").unwrap();
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        File::options()
            .write(true)
            .open(&src)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let root = tmp.path().join("data/staging");
        let a = stage_into(&root, &src).unwrap();
        let b = stage_into(&root, &src).unwrap();
        assert_ne!(a.relative, b.relative);
        assert_eq!(a.original_filename, "Invoice 2024.pdf");
        assert!(a.relative.ends_with("/Invoice 2024.pdf"));
        assert_eq!(a.size, 14);
        assert_eq!(fs::read(&a.path).unwrap(), b"%PDF-1.4 hello");
        assert_eq!(resolve_in(&root, &a.relative).unwrap(), a.path);
        // No temporary file is left behind.
        let left: Vec<_> = fs::read_dir(a.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("Invoice 2024.pdf")]);
        // The original stays, and its modification time is kept.
        assert!(src.exists());
        assert_eq!(fs::metadata(&a.path).unwrap().modified().unwrap(), old);
    }

    #[test]
    fn refuses_missing_files_and_directories_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("staging");
        let missing = tmp.path().join("nope.pdf");
        let err = stage_into(&root, &missing).unwrap_err();
        assert!(matches!(err, StagingError::NotFound { .. }));
        assert!(err.to_string().contains("nope.pdf"), "{err}");
        let err = stage_into(&root, tmp.path()).unwrap_err();
        assert!(matches!(err, StagingError::IsDirectory { .. }), "{err}");
        assert!(err.to_string().contains(&tmp.path().display().to_string()));
        // Nothing was created.
        assert!(!root.exists() || fs::read_dir(&root).unwrap().next().is_none());
    }

    #[test]
    fn follows_a_symlink_and_copies_its_content() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("real.txt");
        fs::write(&target, b"content").unwrap();
        let link = tmp.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let s = stage_into(&tmp.path().join("staging"), &link).unwrap();
        assert_eq!(s.original_filename, "link.txt");
        assert!(!fs::symlink_metadata(&s.path).unwrap().is_symlink());
        assert_eq!(fs::read(&s.path).unwrap(), b"content");
    }

    #[test]
    fn resolve_refuses_paths_out_of_the_staging_root() {
        let root = Path::new("/data/staging");
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../x",
            "onlyname",
            "a/b/c",
            "./a",
            "",
        ] {
            assert!(resolve_in(root, bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            resolve_in(root, "01J/x.pdf").unwrap(),
            Path::new("/data/staging/01J/x.pdf")
        );
    }

    #[test]
    fn remove_deletes_the_folder_and_tolerates_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("f.txt");
        fs::write(&src, b"x").unwrap();
        let root = tmp.path().join("staging");
        let s = stage_into(&root, &src).unwrap();
        remove_in(&root, &s.relative).unwrap();
        assert!(!s.path.parent().unwrap().exists());
        remove_in(&root, &s.relative).unwrap();
    }
}
