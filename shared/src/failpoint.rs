//! Named fault-injection points, for tests that must stop a job at one exact moment (as
//! tantivy's and meilisearch's failpoints do). Off unless `PAPERBOY_FAILPOINTS` is set; it is a
//! test setting, not a user one, and is read once per process.
//!
//! `PAPERBOY_FAILPOINTS="NAME=pause:DIR;…"`: the first time the code reaches [`hit`]`(NAME)`,
//! it creates `DIR/NAME.paused` and waits until `DIR/NAME.resume` exists (it removes both);
//! later hits pass (a retried job runs through). The `fail` crate does this behind a cargo
//! feature, which would need a second build of every binary the integration tests spawn; this
//! is the one action the tests need, a few lines.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Armed points: name → the folder of its pause files (removed once it has paused).
fn armed() -> &'static Mutex<HashMap<String, PathBuf>> {
    static ARMED: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    ARMED.get_or_init(|| {
        Mutex::new(parse(
            &std::env::var("PAPERBOY_FAILPOINTS").unwrap_or_default(),
        ))
    })
}

fn parse(spec: &str) -> HashMap<String, PathBuf> {
    spec.split(';')
        .filter_map(|p| {
            let (name, action) = p.trim().split_once('=')?;
            let dir = action.strip_prefix("pause:")?;
            Some((name.to_string(), PathBuf::from(dir)))
        })
        .collect()
}

/// The point `name`: pauses there once when armed (see the module), else nothing.
pub async fn hit(name: &str) {
    let Some(dir) = armed().lock().expect("not poisoned").remove(name) else {
        return;
    };
    let paused = dir.join(format!("{name}.paused"));
    let resume = dir.join(format!("{name}.resume"));
    tracing::warn!(
        failpoint = name,
        "paused at a failpoint (PAPERBOY_FAILPOINTS)"
    );
    if let Err(e) = std::fs::write(&paused, b"") {
        tracing::error!(failpoint = name, error = %e, "cannot write {}", paused.display());
        return;
    }
    while !resume.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(&resume);
    let _ = std::fs::remove_file(&paused);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_names_points_and_their_folders() {
        let p = parse("export.after_snapshot=pause:/tmp/x; other=pause:/y;bad;also=crash");
        assert_eq!(p.len(), 2);
        assert_eq!(p["export.after_snapshot"], PathBuf::from("/tmp/x"));
        assert_eq!(p["other"], PathBuf::from("/y"));
    }
}
