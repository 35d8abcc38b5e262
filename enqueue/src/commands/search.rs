//! `paperboy search …`: runs `paperboy-worker search …` in this process' place. The search needs
//! Tantivy, which this CLI does not link (it must build and start fast); the worker binary
//! ships beside it (same image, same package).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use crate::error::CliError;

/// The worker binary: next to this one, else `paperboy-worker` on PATH.
pub fn worker_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("paperboy-worker")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("paperboy-worker"))
}

/// The worker's arguments for `paperboy [--json] search ARGS`.
pub fn worker_args(args: &[OsString], json: bool) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["search".into()];
    if json && !args.iter().any(|a| a == "--json") {
        v.push("--json".into());
    }
    v.extend(args.iter().cloned());
    v
}

/// Replaces this process with the worker's search; returns only if that cannot start.
pub fn exec(args: &[OsString], json: bool) -> Result<u8, CliError> {
    let bin = worker_binary();
    let err = std::process::Command::new(&bin)
        .args(worker_args(args, json))
        .exec();
    Err(CliError::Other(format!(
        "cannot run {} for the search: {err} (install paperboy-worker beside paperboy or on PATH)",
        bin.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_pass_through_with_a_global_json() {
        let a: Vec<OsString> = vec!["tag:bank".into(), "--limit".into(), "5".into()];
        assert_eq!(
            worker_args(&a, true),
            ["search", "--json", "tag:bank", "--limit", "5"]
        );
        assert_eq!(
            worker_args(&a, false),
            ["search", "tag:bank", "--limit", "5"]
        );
    }
}
