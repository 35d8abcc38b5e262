//! What earlier exports wrote into a target, and `export -d` removing what this one no longer
//! writes — nothing else. Upstream deletes every file it did not write in this run (a user's
//! notes, other backups) and follows symlinks while doing it; here the earlier exports' own
//! files say what they wrote ("ours"):
//!
//! - `manifest.json` and every split manifest (`*-manifest.json` whose first record is a
//!   `documents.document` record naming its file) in the target: the `__exported_*` names of
//!   their records, the manifests themselves, and `metadata.json` and a legacy `version.json`
//!   beside a manifest;
//! - [`ORPHANS`]: the files earlier exports wrote that no manifest names any more and no `-d`
//!   removed yet (a run without `-d` after a document was deleted or renamed); every folder
//!   export rewrites it, so `-d` on a later run still knows them;
//! - leftovers of an interrupted run of ours: `<name>.tmp` of any such name (or of a name this
//!   run wrote), `.paperboy-write-test-*` probes and `.paperboy-export-*` scratch folders in the
//!   target's root;
//! - with `-z`: zip files in the target's root whose entries include `manifest.json` and
//!   `metadata.json` (earlier zip exports).
//!
//! Anything else is "not ours" and kept (logged once per run, listed in the result). The target
//! is walked without following symlinks: a symlink is itself an entry (removed as a link when it
//! stands where an export of ours wrote a file, kept otherwise) and a symlinked folder is never
//! entered, so nothing outside the target is touched. Names from manifests pass
//! [`super::safe_relative`] (no absolute path, no `..`), so they cannot lead out of it either.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::export::name_key;
use super::safe_relative;

/// The ledger of files earlier exports wrote that no manifest names any more (a JSON array of
/// paths relative to the target). Absent when there are none.
pub const ORPHANS: &str = ".paperboy-orphans.json";

/// Keys ([`name_key`] of the full path) of what earlier exports wrote into the target.
#[derive(Default)]
pub struct Previous {
    files: HashSet<u128>,
    /// Manifests read (main and split).
    pub manifests: usize,
}

impl Previous {
    fn add(&mut self, p: &Path) {
        self.files.insert(name_key(&p.to_string_lossy()));
    }
}

/// The part of a record naming its files (everything else is skipped unread).
#[derive(Deserialize)]
struct Names {
    #[serde(default)]
    model: Option<String>,
    #[serde(rename = "__exported_file_name__", default)]
    file: Option<String>,
    #[serde(rename = "__exported_thumbnail_name__", default)]
    thumbnail: Option<String>,
    #[serde(rename = "__exported_archive_name__", default)]
    archive: Option<String>,
}

/// The files each record of the JSON array in `path` names (under `root`), with whether the
/// first record is a document record naming its original; `None` if it is not such an array.
fn manifest_names(root: &Path, path: &Path) -> Option<(Vec<PathBuf>, bool)> {
    use serde::de::{SeqAccess, Visitor};
    struct Each<'a>(&'a Path, Vec<PathBuf>, Option<bool>);
    impl<'de> Visitor<'de> for &mut Each<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(n) = seq.next_element::<Names>()? {
                self.2.get_or_insert(
                    n.model.as_deref() == Some("documents.document") && n.file.is_some(),
                );
                for rel in [n.file, n.thumbnail, n.archive].into_iter().flatten() {
                    if let Ok(rel) = safe_relative(&rel) {
                        self.1.push(self.0.join(rel));
                    }
                }
            }
            Ok(())
        }
    }
    let f = std::fs::File::open(path).ok()?;
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, f));
    let mut each = Each(root, vec![], None);
    serde::Deserializer::deserialize_seq(&mut de, &mut each).ok()?;
    de.end().ok()?;
    Some((each.1, each.2.unwrap_or(false)))
}

/// Whether `p` is a regular file (a symlink is not).
fn regular_file(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

/// Reads what earlier exports wrote into `root`, before this run writes anything. `zips`:
/// earlier zip exports in the root count too (`-z -d`).
pub fn previous_export(root: &Path, zips: bool) -> Previous {
    let mut prev = Previous::default();
    let main = root.join("manifest.json");
    let has_main = regular_file(&main);
    if has_main && let Some((names, _)) = manifest_names(root, &main) {
        prev.manifests += 1;
        for p in names {
            prev.add(&p);
        }
        for n in ["manifest.json", "metadata.json", "version.json"] {
            prev.add(&root.join(n));
        }
    }
    let ledger = root.join(ORPHANS);
    if regular_file(&ledger)
        && let Ok(text) = std::fs::read(&ledger)
        && let Ok(names) = serde_json::from_slice::<Vec<String>>(&text)
    {
        prev.add(&ledger);
        for n in names {
            if let Ok(rel) = safe_relative(&n) {
                prev.add(&root.join(rel));
            }
        }
    }
    if !has_main && !zips {
        return prev;
    }
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let file = e.file_name().to_string_lossy();
        if file.ends_with("-manifest.json") {
            if let Some((names, true)) = manifest_names(root, e.path()) {
                prev.manifests += 1;
                for p in names {
                    prev.add(&p);
                }
                prev.add(e.path());
            }
        } else if zips && e.depth() == 1 && file.ends_with(".zip") && is_export_zip(e.path()) {
            prev.add(e.path());
        }
    }
    prev
}

/// A zip holding `manifest.json` and `metadata.json` at its root: an export.
fn is_export_zip(p: &Path) -> bool {
    let Ok(f) = std::fs::File::open(p) else {
        return false;
    };
    let Ok(z) = zip::ZipArchive::new(f) else {
        return false;
    };
    let names: HashSet<String> = z
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.into_owned())
        .collect();
    names.contains("manifest.json") && names.contains("metadata.json")
}

/// What [`prune`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: u64,
    /// With `delete`: entries kept because no export of ours wrote them (relative paths, the
    /// first [`KEPT_LISTED`], then "… N more").
    pub kept: Vec<String>,
    /// Files of ours this run neither wrote nor removed (relative paths): the next [`ORPHANS`].
    pub orphans: Vec<String>,
}

/// How many kept names the result and the log list (the count is always whole).
pub const KEPT_LISTED: usize = 20;

/// Walks `root` (symlinks not followed): every file or symlink that is ours (`prev`, or a
/// leftover of ours) and not in `written` (keys of what this run wrote or kept) is removed when
/// `delete` (then the folders this left empty, up to but never `root`), else listed as an
/// orphan. `skip`: a folder under `root` not to look into.
pub fn prune(
    root: &Path,
    prev: &Previous,
    written: &HashSet<u128>,
    delete: bool,
    skip: Option<&Path>,
) -> Pruned {
    let mut out = Pruned::default();
    if !delete && prev.files.is_empty() {
        return out;
    }
    let mut doomed = vec![];
    let mut kept = 0usize;
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter();
    while let Some(e) = walk.next() {
        let Ok(e) = e else { continue };
        let p = e.path();
        if skip == Some(p) {
            if e.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        let root_entry = e.depth() == 1;
        let file = e.file_name().to_string_lossy();
        if e.file_type().is_dir() {
            if root_entry && file.starts_with(".paperboy-export-") {
                walk.skip_current_dir();
                if delete {
                    doomed.push((p.to_path_buf(), true));
                }
            }
            continue;
        }
        let key = name_key(&p.to_string_lossy());
        if written.contains(&key) {
            continue;
        }
        let tmp_of_ours = || {
            p.to_string_lossy()
                .strip_suffix(".tmp")
                .is_some_and(|base| {
                    let k = name_key(base);
                    prev.files.contains(&k) || written.contains(&k)
                })
        };
        if prev.files.contains(&key) {
            if delete {
                doomed.push((p.to_path_buf(), false));
            } else {
                out.orphans.push(rel(p));
            }
        } else if (root_entry && file.starts_with(".paperboy-write-test-")) || tmp_of_ours() {
            if delete {
                doomed.push((p.to_path_buf(), false));
            }
        } else if delete {
            kept += 1;
            if out.kept.len() < KEPT_LISTED {
                out.kept.push(rel(p));
            }
        }
    }
    for (p, dir) in doomed {
        // remove_file on a symlink removes the link, never what it points at; remove_dir_all
        // does not follow symlinks either.
        let ok = if dir {
            std::fs::remove_dir_all(&p).is_ok()
        } else {
            std::fs::remove_file(&p).is_ok()
        };
        if !ok {
            if !dir && std::fs::symlink_metadata(&p).is_ok() {
                out.orphans.push(rel(&p));
            }
            continue;
        }
        out.deleted += 1;
        let mut parent = p.parent();
        while let Some(d) = parent {
            if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
                break;
            }
            parent = d.parent();
        }
    }
    if kept > 0 {
        tracing::info!(
            target = %root.display(),
            count = kept,
            first = ?out.kept,
            "export -d: files no export wrote here: not ours, kept"
        );
    }
    if kept > out.kept.len() {
        out.kept.push(format!("… {} more", kept - out.kept.len()));
    }
    out
}

/// Writes (or, with none, removes) the [`ORPHANS`] ledger in `root`: temp file + rename, flushed
/// by the caller's `syncfs` or not at all (a lost ledger only means `-d` keeps those files).
pub fn write_orphans(root: &Path, orphans: &[String]) -> std::io::Result<()> {
    let ledger = root.join(ORPHANS);
    if orphans.is_empty() {
        return match std::fs::remove_file(&ledger) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = root.join(format!("{ORPHANS}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(orphans)?)?;
    std::fs::rename(tmp, ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, b: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    }

    fn keys(r: &Path, names: &[&str]) -> HashSet<u128> {
        names
            .iter()
            .map(|n| name_key(&r.join(n).to_string_lossy()))
            .collect()
    }

    #[test]
    fn only_what_an_export_wrote_goes() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            &r.join("manifest.json"),
            br#"[{"model": "documents.tag", "pk": 1, "fields": {"name": "x"}},
                {"model": "documents.document", "pk": 1, "fields": {"title": "t"},
                 "__exported_file_name__": "a/old.pdf",
                 "__exported_thumbnail_name__": "a/old-thumbnail.webp"},
                {"model": "documents.document", "pk": 2, "fields": {},
                 "__exported_file_name__": "kept.pdf",
                 "__exported_archive_name__": "../outside.pdf"}]"#,
        );
        write(&r.join("metadata.json"), b"{}");
        for f in [
            "a/old.pdf",
            "a/old-thumbnail.webp",
            "a/old.pdf.tmp",
            "kept.pdf",
        ] {
            write(&r.join(f), b"ours");
        }
        write(&r.join("a/mine.txt"), b"user");
        write(&r.join("notes/todo.txt"), b"user");
        let prev = previous_export(r, false);
        assert_eq!(prev.manifests, 1);
        // Without -d: nothing goes; what this run did not write is listed for the next one.
        let written = keys(r, &["manifest.json", "metadata.json", "kept.pdf"]);
        let out = prune(r, &prev, &written, false, None);
        assert_eq!(out.deleted, 0);
        let mut orphans = out.orphans.clone();
        orphans.sort();
        assert_eq!(orphans, ["a/old-thumbnail.webp", "a/old.pdf"]);
        assert!(out.kept.is_empty());
        // -d: they go (and the .tmp of one); the user's files stay, listed.
        let out = prune(r, &prev, &written, true, None);
        assert_eq!(out.deleted, 3, "{out:?}");
        assert!(!r.join("a/old.pdf").exists() && !r.join("a/old.pdf.tmp").exists());
        assert!(r.join("kept.pdf").is_file() && r.join("manifest.json").is_file());
        let mut kept = out.kept.clone();
        kept.sort();
        assert_eq!(kept, ["a/mine.txt", "notes/todo.txt"]);
        assert!(r.join("a/mine.txt").is_file(), "the folder still holds it");
    }

    #[test]
    fn orphans_are_remembered_until_a_run_with_d() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // The current manifest no longer names old.pdf; the ledger does.
        write(&r.join("manifest.json"), b"[]");
        write(&r.join("old.pdf"), b"ours");
        write(&r.join("user.pdf"), b"user");
        write_orphans(r, &["old.pdf".into()]).unwrap();
        let prev = previous_export(r, false);
        let written = keys(r, &["manifest.json", "metadata.json", ORPHANS]);
        assert_eq!(prune(r, &prev, &written, false, None).orphans, ["old.pdf"]);
        let out = prune(r, &prev, &written, true, None);
        assert_eq!(out.deleted, 1);
        assert!(!r.join("old.pdf").exists() && r.join("user.pdf").is_file());
        assert!(out.orphans.is_empty());
        write_orphans(r, &out.orphans).unwrap();
        assert!(!r.join(ORPHANS).exists());
    }

    #[test]
    fn split_manifests_count_only_when_they_are_ones() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(&r.join("manifest.json"), b"[]");
        write(
            &r.join("json/x-manifest.json"),
            br#"[{"model": "documents.document", "pk": 1, "fields": {},
                 "__exported_file_name__": "x.pdf"},
                {"model": "documents.note", "pk": 1, "fields": {}}]"#,
        );
        write(&r.join("x.pdf"), b"x");
        write(&r.join("user-manifest.json"), br#"{"mine": true}"#);
        write(
            &r.join("other-manifest.json"),
            br#"[{"model": "documents.tag"}]"#,
        );
        let prev = previous_export(r, false);
        assert_eq!(prev.manifests, 2);
        let written = keys(r, &["manifest.json"]);
        let out = prune(r, &prev, &written, true, None);
        assert_eq!(out.deleted, 2, "x.pdf and its split manifest: {out:?}");
        assert!(!r.join("json").exists(), "the empty folder goes");
        assert!(r.join("user-manifest.json").is_file());
        assert!(r.join("other-manifest.json").is_file());
    }

    #[test]
    fn symlinks_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = t.path();
        write(&outside.path().join("sub/x.pdf"), b"outside");
        write(&outside.path().join("y.pdf"), b"outside");
        write(
            &r.join("manifest.json"),
            br#"[{"model": "documents.document", "pk": 1, "fields": {},
                 "__exported_file_name__": "sub/x.pdf",
                 "__exported_thumbnail_name__": "y.pdf"}]"#,
        );
        // A folder of the export replaced by a link out of it; a file by a link.
        std::os::unix::fs::symlink(outside.path().join("sub"), r.join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("y.pdf"), r.join("y.pdf")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("y.pdf"), r.join("mine.pdf")).unwrap();
        let prev = previous_export(r, false);
        let written = keys(r, &["manifest.json"]);
        let out = prune(r, &prev, &written, true, None);
        assert_eq!(out.deleted, 1, "the y.pdf link: {out:?}");
        assert!(std::fs::symlink_metadata(r.join("y.pdf")).is_err());
        assert!(std::fs::symlink_metadata(r.join("sub")).is_ok());
        assert!(std::fs::symlink_metadata(r.join("mine.pdf")).is_ok());
        for f in ["sub/x.pdf", "y.pdf"] {
            assert_eq!(std::fs::read(outside.path().join(f)).unwrap(), b"outside");
        }
    }
}
