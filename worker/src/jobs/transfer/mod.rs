//! `export` and `import`: the paperless-ngx 3.0.5 export format (spec export-import.md) both
//! ways. `record` maps table rows to manifest records and back (the map is
//! `paperboy_shared::db::transfer::MODELS`), `export` writes a folder or zip, `import` validates
//! everything, then loads one transaction and moves staged files in.

pub mod crypto;
pub mod export;
pub mod import;
pub mod prune;
pub mod record;

use std::path::{Component, Path, PathBuf};

use paperboy_shared::config::Config;

use super::JobError;

/// Paperless version written into `metadata.json` (the format we produce).
pub const FORMAT_VERSION: &str = "3.0.5";

pub(crate) fn perm(msg: impl Into<String>) -> JobError {
    JobError::Permanent(msg.into())
}

pub(crate) fn io_err(what: &str, path: &Path, e: std::io::Error) -> JobError {
    JobError::Permanent(format!("{what} {}: {e}", path.display()))
}

/// paperless-ngx models (any version) that paperboy does not store: the importer skips and
/// counts their records, the exporter writes none. Any other label that is not in
/// `paperboy_shared::db::transfer::MODELS` is refused ("Invalid model identifier"), as upstream
/// refuses a label it does not know.
pub const UNSTORED_MODELS: &[&str] = &[
    "auth.permission",
    "contenttypes.contenttype",
    "guardian.userobjectpermission",
    "guardian.groupobjectpermission",
    "documents.savedview",
    "documents.savedviewfilterrule",
    "documents.uisettings",
    "documents.sharelink",
    "documents.sharelinkbundle",
    "documents.workflow",
    "documents.workflowtrigger",
    "documents.workflowaction",
    "documents.workflowactionemail",
    "documents.workflowactionwebhook",
    "documents.workflowrun",
    "documents.consumptiontemplate",
    "documents.paperlesstask",
    "documents.log",
    "paperless.applicationconfiguration",
    "paperless_mail.processedmail",
    "socialaccount.socialaccount",
    "socialaccount.socialapp",
    "socialaccount.socialtoken",
    "mfa.authenticator",
    "auditlog.logentry",
    "authtoken.token",
];

/// Flushes the file system that holds `dir` (every file written into it) to disk: one
/// `syncfs` instead of an `fsync` per file, which on the bench disk costs more than the copies.
pub(crate) fn sync_fs(dir: &Path) -> std::io::Result<()> {
    let d = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&d)?;
    Ok(())
}

/// PAPERBOY_TIME_ZONE, parsed.
pub(crate) fn time_zone(config: &Config) -> Result<chrono_tz::Tz, JobError> {
    config.time_zone.parse().map_err(|e| {
        perm(format!(
            "PAPERBOY_TIME_ZONE={:?} is not a time zone ({e}); use an IANA name like Europe/Berlin",
            config.time_zone
        ))
    })
}

/// A record's pk: an integer, or a string holding one (Django coerces both).
pub(crate) fn pk_of(v: &serde_json::Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Renames a legacy record in place: 1.9–1.13's `documents.comment` (field `comment`) is
/// 1.14's `documents.note` (field `note`). Returns what it translated.
pub(crate) fn legacy_label(rec: &mut serde_json::Value) -> Option<&'static str> {
    if rec["model"] != "documents.comment" {
        return None;
    }
    rec["model"] = "documents.note".into();
    if let Some(f) = rec["fields"].as_object_mut()
        && let Some(c) = f.remove("comment")
    {
        f.insert("note".into(), c);
    }
    Some("documents.comment -> documents.note")
}

/// Reads (and forgets) the passphrase the CLI left under `DATA_DIR/secrets/`.
pub(crate) fn read_passphrase(
    config: &Config,
    name: &Option<String>,
) -> Result<Option<String>, JobError> {
    let Some(name) = name else { return Ok(None) };
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(perm(format!("invalid passphrase file name {name:?}")));
    }
    let path = config.data_dir.join("secrets").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        perm(format!(
            "cannot read the passphrase file {} (the CLI writes it; the worker must share DATA_DIR): {e}",
            path.display()
        ))
    })?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// Removes the passphrase file (at the end of the job, whatever the outcome).
pub(crate) fn forget_passphrase(config: &Config, name: &Option<String>) {
    if let Some(name) = name
        && !name.contains(['/', '\\'])
    {
        let _ = std::fs::remove_file(config.data_dir.join("secrets").join(name));
    }
}

/// A relative path from a manifest, checked: not absolute, no `..`, `.` or empty parts.
pub(crate) fn safe_relative(name: &str) -> Result<PathBuf, String> {
    if name.is_empty() || name.contains('\0') || name.contains('\\') {
        return Err(format!("{name:?} is not a valid file name"));
    }
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            _ => {
                return Err(format!(
                    "{name:?} is absolute or contains `..`: refusing a path that leads out of the export"
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("{name:?} is not a valid file name"));
    }
    Ok(out)
}

/// `root/rel` if no component on the way is a symlink and it is a regular file.
pub(crate) fn confined_file(root: &Path, rel: &Path) -> Result<PathBuf, String> {
    let mut p = root.to_path_buf();
    let n = rel.components().count();
    for (i, c) in rel.components().enumerate() {
        p.push(c);
        let md = std::fs::symlink_metadata(&p).map_err(|_| {
            format!(
                "refers to \"{}\" which does not appear to be in the source directory",
                rel.display()
            )
        })?;
        if md.file_type().is_symlink() {
            return Err(format!(
                "\"{}\" goes through a symbolic link ({}): refused",
                rel.display(),
                p.display()
            ));
        }
        if i + 1 == n && !md.is_file() {
            return Err(format!("\"{}\" is not a regular file", rel.display()));
        }
    }
    Ok(p)
}

/// Calls `f` for every element of the JSON array in `path`, one at a time (the array is never
/// held whole).
pub(crate) fn for_each_record(
    path: &Path,
    mut f: impl FnMut(serde_json::Value) -> Result<(), String>,
) -> Result<(), String> {
    use serde::de::{DeserializeSeed, SeqAccess, Visitor};
    struct Each<'a, F>(&'a mut F, Option<String>);
    impl<'de, F: FnMut(serde_json::Value) -> Result<(), String>> Visitor<'de> for &mut Each<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(v) = seq.next_element::<serde_json::Value>()? {
                if let Err(e) = (self.0)(v) {
                    self.1 = Some(e);
                    return Err(serde::de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }
    impl<'de, F: FnMut(serde_json::Value) -> Result<(), String>> DeserializeSeed<'de>
        for &mut Each<'_, F>
    {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, file));
    let mut each = Each(&mut f, None);
    let r = (&mut each).deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = each.1 {
        return Err(e);
    }
    r.map_err(|e| format!("Failed to parse manifest file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_that_leave_the_root_are_refused() {
        assert!(safe_relative("a/b.pdf").is_ok());
        for bad in ["../x.pdf", "/etc/passwd", "a/../../x", "", "./", "a\\..\\b"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comments_of_1_13_become_notes() {
        let mut rec = serde_json::json!({"model": "documents.comment", "pk": 3,
            "fields": {"comment": "hello", "document": 1, "user": 2, "created": "2022-01-01T00:00:00Z"}});
        assert!(legacy_label(&mut rec).is_some());
        assert_eq!(rec["model"], "documents.note");
        assert_eq!(rec["fields"]["note"], "hello");
        assert!(rec["fields"].get("comment").is_none());
        let mut note = serde_json::json!({"model": "documents.note", "pk": 1, "fields": {}});
        assert!(legacy_label(&mut note).is_none());
    }

    #[test]
    fn pks_are_integers_or_integer_strings() {
        assert_eq!(pk_of(&serde_json::json!(42)), Some(42));
        assert_eq!(pk_of(&serde_json::json!("42")), Some(42));
        assert_eq!(pk_of(&serde_json::json!("not-an-int")), None);
        assert_eq!(pk_of(&serde_json::Value::Null), None);
    }

    #[test]
    fn records_are_streamed_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(&p, r#"[{"model": "a", "pk": 1}, {"model": "b", "pk": 2}]"#).unwrap();
        let mut seen = vec![];
        for_each_record(&p, |v| {
            seen.push(v["pk"].as_i64().unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [1, 2]);
        std::fs::write(&p, r#"[{"model": "a", "pk": 1}, {"mod"#).unwrap();
        assert!(
            for_each_record(&p, |_| Ok(()))
                .unwrap_err()
                .contains("Failed to parse")
        );
    }
}
