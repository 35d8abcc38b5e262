//! The media store: `MEDIA_ROOT/originals/`, `archive/` and `thumbnails/`, as paperless-ngx lays
//! them out.
//!
//! - Default file names are paperless's: the document id on 7 digits and the extension of the
//!   file (`0000042.pdf`); thumbnails are always `thumbnails/0000042.webp`.
//! - Every write is atomic: a temporary file in the target's own folder, fsync, rename over the
//!   final name, fsync of the folder. A reader sees the old file or the new one, never half a
//!   file, and a crash leaves at most a `.media-*.part` temporary file behind.
//! - Paths are confined: a relative name from the database (`documents.filename`) is joined to
//!   its folder only if it is made of plain components (no `..`, no absolute path, no `.`), so a
//!   crafted name can never resolve outside the media root.
//!
//! Kept free of PDF and image crates: it only moves bytes (the worker renders).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use crate::config::Config;
use crate::error::{Classify, ErrorClass};

/// Folder of the original files.
pub const ORIGINALS_DIR: &str = "originals";
/// Folder of the archive (searchable PDF) versions.
pub const ARCHIVE_DIR: &str = "archive";
/// Folder of the WebP thumbnails.
pub const THUMBNAILS_DIR: &str = "thumbnails";

/// Which of the three media folders a file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Originals,
    Archive,
    Thumbnails,
}

impl Folder {
    pub const ALL: [Folder; 3] = [Folder::Originals, Folder::Archive, Folder::Thumbnails];

    pub fn dir_name(self) -> &'static str {
        match self {
            Folder::Originals => ORIGINALS_DIR,
            Folder::Archive => ARCHIVE_DIR,
            Folder::Thumbnails => THUMBNAILS_DIR,
        }
    }
}

#[derive(Debug, Error)]
pub enum MediaError {
    #[error(
        "{name:?} is not a valid media file name (expected a relative path of plain components, \
         without `..`, `.` or a leading `/`)"
    )]
    BadName { name: String },
    /// [`Media::write_new`] / [`link_new`]: the name is taken (nothing was written).
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Classify for MediaError {
    fn class(&self) -> ErrorClass {
        match self {
            MediaError::BadName { .. } => ErrorClass::Permanent,
            // The caller picks another name; if it does not, a retry may find it free.
            MediaError::Exists { .. } => ErrorClass::Transient,
            // A full disk or a flaky network share may recover; a missing file or a permission
            // problem needs a human.
            MediaError::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => ErrorClass::Permanent,
                _ => ErrorClass::Transient,
            },
        }
    }
}

/// `0000042.pdf`: paperless's default name of a document's original or archive file
/// (`{pk:07}.<ext>`; the extension is taken as given, without a leading dot).
pub fn default_filename(id: i64, ext: &str) -> String {
    let ext = ext.trim_start_matches('.');
    if ext.is_empty() {
        format!("{id:07}")
    } else {
        format!("{id:07}.{ext}")
    }
}

/// `0000042.webp`: the name of a document's thumbnail inside `thumbnails/`.
pub fn thumbnail_filename(id: i64) -> String {
    default_filename(id, "webp")
}

/// Checks that `name` is a relative path of plain components (`a/b/0000001.pdf` is fine;
/// `../x`, `/x`, `./x`, `a//` normalised away is fine but empty is not).
pub fn check_name(name: &str) -> Result<(), MediaError> {
    let bad = || MediaError::BadName {
        name: name.to_string(),
    };
    if name.is_empty() || name.contains('\0') {
        return Err(bad());
    }
    let path = Path::new(name);
    let mut any = false;
    for c in path.components() {
        match c {
            Component::Normal(_) => any = true,
            _ => return Err(bad()),
        }
    }
    if !any {
        return Err(bad());
    }
    Ok(())
}

/// The media root and its three folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    root: PathBuf,
}

impl Media {
    pub fn new(root: impl Into<PathBuf>) -> Media {
        Media { root: root.into() }
    }

    /// The media root of the settings (`PAPERBOY_MEDIA_ROOT`).
    pub fn from_config(config: &Config) -> Media {
        Media::new(config.media_root.clone())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `MEDIA_ROOT/<folder>`.
    pub fn dir(&self, folder: Folder) -> PathBuf {
        self.root.join(folder.dir_name())
    }

    /// The path of `name` inside `folder`, refusing names that could leave it.
    pub fn path(&self, folder: Folder, name: &str) -> Result<PathBuf, MediaError> {
        check_name(name)?;
        Ok(self.dir(folder).join(name))
    }

    /// `MEDIA_ROOT/originals/<name>`.
    pub fn original(&self, name: &str) -> Result<PathBuf, MediaError> {
        self.path(Folder::Originals, name)
    }

    /// `MEDIA_ROOT/archive/<name>`.
    pub fn archive(&self, name: &str) -> Result<PathBuf, MediaError> {
        self.path(Folder::Archive, name)
    }

    /// `MEDIA_ROOT/thumbnails/0000042.webp`.
    pub fn thumbnail(&self, id: i64) -> PathBuf {
        self.dir(Folder::Thumbnails).join(thumbnail_filename(id))
    }

    /// Creates the three folders (and the root) if missing.
    pub fn ensure_dirs(&self) -> Result<(), MediaError> {
        for f in Folder::ALL {
            let dir = self.dir(f);
            fs::create_dir_all(&dir).map_err(|source| MediaError::Io {
                action: "cannot create the media folder",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Writes `bytes` to `folder/name` atomically (see the module docs); creates the folders on
    /// the way. Replaces an existing file.
    pub fn write(&self, folder: Folder, name: &str, bytes: &[u8]) -> Result<PathBuf, MediaError> {
        let path = self.path(folder, name)?;
        write_atomic(&path, bytes)?;
        Ok(path)
    }

    /// Like [`Media::write`], but never replaces a file: the complete temporary file is
    /// hard-linked to the name, which fails with [`MediaError::Exists`] if the name is taken
    /// (by another job at the same moment, too).
    pub fn write_new(
        &self,
        folder: Folder,
        name: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, MediaError> {
        let path = self.path(folder, name)?;
        let dir = parent_dir(&path);
        let tmp = dir.join(format!(".media-{}.part", ulid_like()));
        write_atomic(&tmp, bytes)?;
        let linked = link_new(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        linked?;
        Ok(path)
    }

    /// Writes a thumbnail atomically and returns its path.
    pub fn write_thumbnail(&self, id: i64, webp: &[u8]) -> Result<PathBuf, MediaError> {
        self.write(Folder::Thumbnails, &thumbnail_filename(id), webp)
    }

    /// Removes `folder/name`; a missing file is not an error.
    pub fn remove(&self, folder: Folder, name: &str) -> Result<(), MediaError> {
        remove_file(&self.path(folder, name)?)
    }
}

/// Writes `bytes` to `path` atomically: temporary file in the same folder, fsync, rename,
/// fsync of the folder. The folder is created if missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let io_err = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| MediaError::Io {
            action,
            path: p,
            source,
        }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err("cannot create the folder", dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".media-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(io_err("cannot create a temporary file in", dir))?;
    tmp.as_file_mut()
        .write_all(bytes)
        .map_err(io_err("cannot write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("cannot flush", tmp.path()))?;
    tmp.persist(path).map_err(|e| MediaError::Io {
        action: "cannot move the new file into place at",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("cannot flush the folder", dir))?;
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// A unique-enough suffix for temporary names (time and a random number).
fn ulid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{:08x}", rand::random::<u32>())
}

/// Gives the file at `from` the additional name `to` (a hard link; a copy, flushed, where the
/// file system has no hard links), creating `to`'s folders, then flushes `to`'s folder. Never
/// replaces: a taken `to` is [`MediaError::Exists`]. The file then has both names; the caller
/// removes `from` once the new name is recorded (crash-safe moves).
pub fn link_new(from: &Path, to: &Path) -> Result<(), MediaError> {
    let dir = parent_dir(to);
    fs::create_dir_all(&dir).map_err(|source| MediaError::Io {
        action: "cannot create the folder",
        path: dir.clone(),
        source,
    })?;
    match fs::hard_link(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(MediaError::Exists {
                path: to.to_path_buf(),
            });
        }
        Err(_) => copy_new(from, to)?,
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| MediaError::Io {
            action: "cannot flush the folder",
            path: dir,
            source,
        })
}

/// `from` copied to a new file `to` (created exclusively), flushed.
fn copy_new(from: &Path, to: &Path) -> Result<(), MediaError> {
    let io_err = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| MediaError::Io {
            action,
            path: p,
            source,
        }
    };
    let mut src = File::open(from).map_err(io_err("cannot open", from))?;
    let mut dst = match fs::OpenOptions::new().write(true).create_new(true).open(to) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(MediaError::Exists {
                path: to.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err("cannot create", to)(e)),
    };
    let copied = io::copy(&mut src, &mut dst).and_then(|_| dst.sync_all());
    if let Err(e) = copied {
        let _ = fs::remove_file(to);
        return Err(io_err("cannot copy to", to)(e));
    }
    Ok(())
}

/// True if `a` and `b` are the same file (hard links of one inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// paperless's `delete_empty_directories(dir, root)`: from `dir` upwards, removes each empty
/// folder until the first non-empty one or `root` (never removed, nor anything outside it).
pub fn remove_empty_dirs(dir: &Path, root: &Path) {
    let mut cur = dir.to_path_buf();
    while cur.starts_with(root) && cur != root {
        if fs::remove_dir(&cur).is_err() {
            break;
        }
        match cur.parent() {
            Some(p) => cur = p.to_path_buf(),
            None => break,
        }
    }
}

/// `dir/name`, or `dir/stem (1).ext`, `dir/stem (2).ext`, … when taken: for moving a file
/// into a folder without overwriting (the consumer's failed folder, the watcher's recovery).
pub fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    (1..)
        .map(|i| dir.join(format!("{stem} ({i}){ext}")))
        .find(|p| !p.exists())
        .expect("some free name")
}

/// Removes a file; a missing one is not an error.
pub fn remove_file(path: &Path) -> Result<(), MediaError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MediaError::Io {
            action: "cannot remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_names_never_overwrite() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.pdf"), b"1").unwrap();
        std::fs::write(d.path().join("a (1).pdf"), b"1").unwrap();
        assert_eq!(free_name(d.path(), "a.pdf"), d.path().join("a (2).pdf"));
        assert_eq!(free_name(d.path(), "b.pdf"), d.path().join("b.pdf"));
        std::fs::write(d.path().join("noext"), b"1").unwrap();
        assert_eq!(free_name(d.path(), "noext"), d.path().join("noext (1)"));
        std::fs::write(d.path().join(".hidden"), b"1").unwrap();
        assert_eq!(free_name(d.path(), ".hidden"), d.path().join(".hidden (1)"));
    }

    #[test]
    fn default_names_are_paperless_ones() {
        assert_eq!(default_filename(42, "pdf"), "0000042.pdf");
        assert_eq!(default_filename(42, ".png"), "0000042.png");
        assert_eq!(default_filename(1, ""), "0000001");
        assert_eq!(default_filename(12_345_678, "txt"), "12345678.txt");
        assert_eq!(thumbnail_filename(7), "0000007.webp");
        let m = Media::new("/media");
        assert_eq!(m.thumbnail(7), Path::new("/media/thumbnails/0000007.webp"));
        assert_eq!(
            m.original("0000007.pdf").unwrap(),
            Path::new("/media/originals/0000007.pdf")
        );
        assert_eq!(
            m.archive("none/A.pdf").unwrap(),
            Path::new("/media/archive/none/A.pdf")
        );
    }

    #[test]
    fn names_that_could_leave_the_root_are_refused() {
        let m = Media::new("/media");
        for bad in [
            "",
            "..",
            "../x.pdf",
            "a/../../x.pdf",
            "a/..",
            "/etc/passwd",
            "./x.pdf",
            ".",
            "/",
            "a\0b",
        ] {
            assert!(
                matches!(m.original(bad), Err(MediaError::BadName { .. })),
                "{bad:?} must be refused"
            );
        }
        let err = m.original("../x").unwrap_err();
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(err.to_string().contains("../x"), "{err}");
        // Sub-folders (storage paths) are fine.
        assert!(m.original("finance/2024/ACME/invoice.pdf").is_ok());
    }

    #[test]
    fn write_is_atomic_replaces_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Media::new(tmp.path().join("media"));
        let p = m.write(Folder::Originals, "0000001.pdf", b"one").unwrap();
        assert_eq!(p, tmp.path().join("media/originals/0000001.pdf"));
        assert_eq!(fs::read(&p).unwrap(), b"one");
        m.write(Folder::Originals, "0000001.pdf", b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["0000001.pdf".to_string()]);
        let t = m.write_thumbnail(1, b"RIFF").unwrap();
        assert_eq!(t, tmp.path().join("media/thumbnails/0000001.webp"));
        // Nested names get their folders.
        let nested = m.write(Folder::Archive, "a/b/c.pdf", b"x").unwrap();
        assert!(nested.is_file());
    }

    #[test]
    fn write_new_and_link_new_never_replace() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Media::new(tmp.path());
        let p = m.write_new(Folder::Originals, "a/b.pdf", b"one").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        let err = m
            .write_new(Folder::Originals, "a/b.pdf", b"two")
            .unwrap_err();
        assert!(matches!(err, MediaError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["b.pdf".to_string()], "no temporary file left");
        let to = m.dir(Folder::Originals).join("c/d.pdf");
        link_new(&p, &to).unwrap();
        assert!(same_file(&p, &to));
        assert!(matches!(link_new(&p, &to), Err(MediaError::Exists { .. })));
        assert!(!same_file(&p, &tmp.path().join("nothing")));
    }

    #[test]
    fn empty_folders_are_removed_up_to_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("originals");
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::write(root.join("a/keep.pdf"), b"x").unwrap();
        remove_empty_dirs(&root.join("a/b/c"), &root);
        assert!(!root.join("a/b").exists());
        assert!(root.join("a").is_dir(), "a non-empty folder stays");
        fs::remove_file(root.join("a/keep.pdf")).unwrap();
        remove_empty_dirs(&root.join("a"), &root);
        assert!(!root.join("a").exists());
        assert!(root.is_dir(), "the root is never removed");
        remove_empty_dirs(tmp.path(), &root);
        assert!(tmp.path().is_dir(), "nothing outside the root");
    }

    #[test]
    fn remove_tolerates_missing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Media::new(tmp.path());
        m.ensure_dirs().unwrap();
        for f in Folder::ALL {
            assert!(m.dir(f).is_dir());
        }
        let p = m.write(Folder::Thumbnails, "0000003.webp", b"x").unwrap();
        m.remove(Folder::Thumbnails, "0000003.webp").unwrap();
        assert!(!p.exists());
        m.remove(Folder::Thumbnails, "0000003.webp").unwrap();
        assert!(m.remove(Folder::Thumbnails, "../x").is_err());
    }

    #[test]
    fn io_errors_are_classified() {
        let tmp = tempfile::tempdir().unwrap();
        // A file where a folder should be: cannot create the folder.
        let blocker = tmp.path().join("media");
        fs::write(&blocker, b"not a folder").unwrap();
        let m = Media::new(&blocker);
        let err = m.write(Folder::Originals, "0000001.pdf", b"x").unwrap_err();
        assert!(matches!(err, MediaError::Io { .. }), "{err}");
        assert!(err.to_string().contains("media"), "{err}");
    }
}
