//! `export` / `import`: the job arguments, and the passphrase handed to the worker through a
//! 0600 file under `DATA_DIR/secrets/` (job arguments live in Redis in clear; the worker removes
//! the file when the job ends).

use std::io::{BufRead, Write};
use std::path::Path;

use paperboy_shared::config::{self, Config, ProcessEnv};
use paperboy_shared::job::{ExportArgs, ImportArgs, Job};
use paperboy_shared::queue::Queue;

use super::submit::{self, Submitted};
use crate::cli::{ExportCmd, ImportCmd, PassphraseArg};
use crate::error::CliError;

fn absolute(p: &Path) -> Result<String, CliError> {
    std::path::absolute(p)
        .map(|a| a.display().to_string())
        .map_err(|e| CliError::Other(format!("{}: {e}", p.display())))
}

/// The passphrase: the flag's value, else PAPERBOY_EXPORT_PASSPHRASE(_FILE), else one line on
/// stdin. `None` without `--passphrase`.
fn passphrase(arg: &PassphraseArg) -> Result<Option<String>, CliError> {
    let Some(given) = &arg.passphrase else {
        return Ok(None);
    };
    if !given.is_empty() {
        return Ok(Some(given.clone()));
    }
    let from_env = config::lookup(&ProcessEnv, config::names::EXPORT_PASSPHRASE)?;
    if !from_env.is_empty() {
        return Ok(Some(from_env));
    }
    eprint!("Passphrase: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        return Err(CliError::Other("an empty passphrase is not allowed".into()));
    }
    Ok(Some(p))
}

/// Writes the passphrase into `DATA_DIR/secrets/<ulid>` (mode 0600) and returns the name.
fn hand_over(config: &Config, pass: Option<String>) -> Result<Option<String>, CliError> {
    let Some(pass) = pass else { return Ok(None) };
    let dir = config.data_dir.join("secrets");
    std::fs::create_dir_all(&dir)?;
    let name = format!("{}.passphrase", ulid::Ulid::new());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(dir.join(&name))?;
    f.write_all(pass.as_bytes())?;
    f.sync_all()?;
    Ok(Some(name))
}

pub fn export_job(config: &Config, e: &ExportCmd) -> Result<Job, CliError> {
    Ok(Job::Export(ExportArgs {
        target: absolute(&e.target)?,
        split_manifest: e.split_manifest,
        compare_checksums: e.compare_checksums,
        compare_json: e.compare_json,
        delete: e.delete,
        use_filename_format: e.use_filename_format,
        no_archive: e.no_archive,
        no_thumbnail: e.no_thumbnail,
        use_folder_prefix: e.use_folder_prefix,
        zip: e.zip,
        zip_name: e.zip_name.clone(),
        data_only: e.data_only,
        no_sync: e.no_sync,
        passphrase_file: hand_over(config, passphrase(&e.passphrase)?)?,
    }))
}

pub fn import_job(config: &Config, i: &ImportCmd) -> Result<Job, CliError> {
    Ok(Job::Import(ImportArgs {
        source: absolute(&i.source)?,
        data_only: i.data_only,
        allow_existing: i.allow_existing,
        no_verify: i.no_verify,
        passphrase_file: hand_over(config, passphrase(&i.passphrase)?)?,
    }))
}

/// Enqueues; the passphrase file goes again if the job could not be enqueued.
pub async fn enqueue(queue: &Queue, config: &Config, job: Job) -> Result<Vec<Submitted>, CliError> {
    let file = match &job {
        Job::Export(a) => a.passphrase_file.clone(),
        Job::Import(a) => a.passphrase_file.clone(),
        _ => None,
    };
    let r = submit::enqueue(queue, vec![job]).await;
    if r.is_err()
        && let Some(f) = file
    {
        let _ = std::fs::remove_file(config.data_dir.join("secrets").join(f));
    }
    r
}
