//! Enqueueing jobs and, with `--wait`, following them to the end.

use std::path::PathBuf;

use paperboy_shared::config::Config;
use paperboy_shared::job::{ConsumeArgs, Job, JobKind};
use paperboy_shared::queue::{Enqueued, JobRecord, JobState, Queue};
use paperboy_shared::staging;
use serde_json::{Value, json};

use super::files;
use crate::error::{CliError, code};
use crate::output::Output;
use crate::wait::{WaitEnd, WaitOptions, wait_for};

/// One job handed to the queue.
#[derive(Debug)]
pub struct Submitted {
    pub job: Job,
    pub enqueued: Enqueued,
    /// The file a consume job was made from, as the user named it.
    pub file: Option<PathBuf>,
}

/// Enqueues `jobs`; [`report_enqueued`] or [`wait_all`] tell the user.
pub async fn enqueue(queue: &Queue, jobs: Vec<Job>) -> Result<Vec<Submitted>, CliError> {
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        let enqueued = queue.enqueue(&job).await?;
        done.push(Submitted {
            job,
            enqueued,
            file: None,
        });
    }
    Ok(done)
}

/// Checks every path first (nothing is staged or enqueued if one is wrong), then stages each file
/// and enqueues one consume job per file. A staged copy whose job could not be enqueued is
/// removed again.
pub async fn consume(
    queue: &Queue,
    config: &Config,
    paths: &[PathBuf],
) -> Result<Vec<Submitted>, CliError> {
    for p in paths {
        staging::check_source(p)?;
    }
    let mut done = Vec::with_capacity(paths.len());
    for p in paths {
        let staged = staging::stage(config, p)?;
        let job = Job::Consume(ConsumeArgs {
            staged: staged.relative.clone(),
            original_filename: staged.original_filename.clone(),
            tags: Vec::new(),
            source: None,
            ..Default::default()
        });
        match queue.enqueue(&job).await {
            Ok(enqueued) => done.push(Submitted {
                job,
                enqueued,
                file: Some(p.clone()),
            }),
            Err(e) => {
                if let Err(rm) = staging::remove(config, &staged.relative) {
                    tracing::warn!("could not remove the staged copy {}: {rm}", staged.relative);
                }
                return Err(e.into());
            }
        }
    }
    Ok(done)
}

/// Without `--wait`: the id on a terminal, nothing otherwise, `{"id","status"}` with `--json`.
pub fn report_enqueued(out: &Output, submitted: &[Submitted]) -> Result<(), CliError> {
    for s in submitted {
        if out.json {
            out.json_line(&enqueued_json(s))?;
        } else {
            out.note(s.enqueued.id())?;
        }
    }
    Ok(())
}

fn enqueued_json(s: &Submitted) -> Value {
    let (status, id) = match &s.enqueued {
        Enqueued::New(id) => ("new", id),
        Enqueued::Existing(id) => ("existing", id),
    };
    let mut v = json!({ "id": id, "status": status });
    if let Some(f) = &s.file {
        v["file"] = json!(f.display().to_string());
    }
    v
}

/// How one waited-for job ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    Succeeded,
    TimedOut,
    /// Succeeded, but its result reports errors (a sanity check that found some): exit 1.
    ReportedFailure,
    Failed,
}

impl Ending {
    pub fn exit_code(self) -> u8 {
        match self {
            Ending::Succeeded => code::DONE,
            Ending::TimedOut => code::TIMED_OUT,
            Ending::Failed | Ending::ReportedFailure => code::JOB_FAILED,
        }
    }
}

/// `--wait`: follows every job to its end (one deadline for all), prints what matters, returns
/// the exit code: 1 if any job failed, else 4 if waiting timed out, else 0.
pub async fn wait_all(
    queue: &Queue,
    out: &Output,
    submitted: &[Submitted],
    opts: WaitOptions,
    timeout_secs: Option<f64>,
) -> Result<u8, CliError> {
    // Ids first, so that a human can follow a long job from another terminal.
    if !out.json {
        for s in submitted {
            out.note(s.enqueued.id())?;
        }
    }
    let mut worst = Ending::Succeeded;
    for s in submitted {
        let end = wait_for(queue, s.enqueued.id(), opts).await?;
        let ending = match &end {
            WaitEnd::Finished(r)
                if r.state == JobState::Succeeded && files::result_fails(s.job.kind(), r) =>
            {
                Ending::ReportedFailure
            }
            WaitEnd::Finished(r) if r.state == JobState::Succeeded => Ending::Succeeded,
            WaitEnd::Finished(_) => Ending::Failed,
            WaitEnd::TimedOut(_) => Ending::TimedOut,
        };
        worst = worst.max(ending);
        let record = match &end {
            WaitEnd::Finished(r) | WaitEnd::TimedOut(r) => r,
        };
        if out.json {
            let mut v = enqueued_json(s);
            v["state"] = json!(record.state);
            v["result"] = record.result.clone().unwrap_or(Value::Null);
            v["error"] = json!(record.errors.last().map(|e| &e.message));
            v["timed_out"] = json!(ending == Ending::TimedOut);
            out.json_line(&v)?;
        }
        match ending {
            Ending::Succeeded | Ending::ReportedFailure => {
                if !out.json {
                    show_result(out, s.job.kind(), record)?;
                }
            }
            Ending::Failed => out.warn(failure_message(record)),
            Ending::TimedOut => out.warn(timeout_message(record, timeout_secs)),
        }
    }
    Ok(worst.exit_code())
}

/// The part of a result that matters on the command line.
fn show_result(out: &Output, kind: JobKind, r: &JobRecord) -> Result<(), CliError> {
    match kind {
        // What a script wants from `consume --wait`: the new document's id.
        JobKind::Consume => {
            if let Some(id) = r.result.as_ref().and_then(document_id) {
                out.line(id)?;
            }
        }
        JobKind::Ping => out.note(pong_line(r))?,
        JobKind::Thumbnails | JobKind::SanityCheckBatch | JobKind::RetaggerBatch => {}
        JobKind::Retagger => super::retagger::show_result(out, r)?,
        JobKind::SanityCheck => {
            if let Some(res) = &r.result {
                files::print_sanity_report(out, res)?;
            }
        }
        JobKind::Renamer => {
            if let Some(res) = &r.result {
                files::print_renamer_result(out, res)?;
            }
        }
        JobKind::DecryptDocuments => {
            if let Some(res) = &r.result {
                files::print_decrypt_result(out, res)?;
            }
        }
        JobKind::TrainClassifier => {
            if let Some(m) = r
                .result
                .as_ref()
                .and_then(|v| v.get("message"))
                .and_then(Value::as_str)
            {
                out.note(m)?;
            }
        }
        JobKind::IndexUpdate => {}
        JobKind::IndexReindex | JobKind::IndexOptimize => {
            if let Some(v) = &r.result {
                match v.get("message").and_then(Value::as_str) {
                    Some(m) => out.note(m)?,
                    None => out.note(v.to_string())?,
                }
            }
        }
        // What was exported / imported, counts per model; what a mail fetch did.
        JobKind::Export
        | JobKind::Import
        | JobKind::Archive
        | JobKind::ArchiveDocument
        | JobKind::MailFetch => {
            if let Some(v) = &r.result {
                out.note(v.to_string())?;
            }
        }
        JobKind::EmptyTrash => {
            if let Some(v) = &r.result {
                let n = v.get("deleted").and_then(Value::as_u64).unwrap_or(0);
                let days = v.get("delay_days").and_then(Value::as_u64).unwrap_or(0);
                out.note(format!(
                    "deleted {n} document(s) in the trash for more than {days} day(s)"
                ))?;
            }
        }
    }
    Ok(())
}

/// `result.document_id` of a consume job.
pub fn document_id(result: &Value) -> Option<i64> {
    result.get("document_id").and_then(Value::as_i64)
}

fn pong_line(r: &JobRecord) -> String {
    let who = r.worker.clone().or_else(|| {
        let res = r.result.as_ref()?;
        let host = res.get("worker")?.as_str()?;
        Some(match res.get("pid").and_then(Value::as_u64) {
            Some(pid) => format!("{host} (pid {pid})"),
            None => host.to_string(),
        })
    });
    format!("pong from {}", who.as_deref().unwrap_or("a worker"))
}

/// `job ID (kind) is dead: <last error>`.
pub fn failure_message(r: &JobRecord) -> String {
    match (r.state, r.errors.last()) {
        (JobState::Cancelled, _) => format!("job {} ({}) was cancelled", r.id, r.kind),
        (state, Some(e)) => format!(
            "job {} ({}) {}: {} (attempt {}, {} error, on {})",
            r.id,
            r.kind,
            if state == JobState::Dead {
                "is dead".to_string()
            } else {
                format!("has {state}")
            },
            e.message,
            e.attempt,
            match e.class {
                paperboy_shared::ErrorClass::Transient => "transient",
                paperboy_shared::ErrorClass::Permanent => "permanent",
            },
            e.worker
        ),
        (state, None) => format!(
            "job {} ({}) ended {state} without an error message",
            r.id, r.kind
        ),
    }
}

/// Exit 4's message: the job goes on, and how to follow it.
pub fn timeout_message(r: &JobRecord, timeout_secs: Option<f64>) -> String {
    let after = timeout_secs
        .map(|s| format!(" after {s} s"))
        .unwrap_or_default();
    format!(
        "gave up waiting{after}: job {id} ({kind}) is {state} and goes on; follow it with `paperboy jobs show {id}`",
        id = r.id,
        kind = r.kind,
        state = r.state,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use paperboy_shared::queue::{ErrorRecord, Progress};

    fn record(state: JobState) -> JobRecord {
        JobRecord {
            id: "01JTEST".into(),
            kind: "ping".into(),
            queue: "ping".into(),
            job: json!({"kind": "ping", "args": {}}),
            state,
            attempts: 0,
            max_attempts: 3,
            starts: 1,
            recovered: 0,
            errors: vec![],
            created_at_ms: 0,
            started_at_ms: None,
            finished_at_ms: None,
            run_at_ms: None,
            worker: Some("host:42:abc".into()),
            result: None,
            progress: Progress::default(),
            unique_key: None,
            cancel_requested: false,
        }
    }

    #[test]
    fn failure_names_the_last_error() {
        let mut r = record(JobState::Dead);
        r.errors.push(ErrorRecord {
            attempt: 1,
            at_ms: 0,
            class: paperboy_shared::ErrorClass::Transient,
            message: "first".into(),
            worker: "w1".into(),
        });
        r.errors.push(ErrorRecord {
            attempt: 3,
            at_ms: 1,
            class: paperboy_shared::ErrorClass::Permanent,
            message: "ping asked to fail (permanent)".into(),
            worker: "w2".into(),
        });
        let m = failure_message(&r);
        assert!(m.contains("01JTEST"), "{m}");
        assert!(m.contains("is dead: ping asked to fail (permanent)"), "{m}");
        assert!(m.contains("on w2"), "{m}");
        assert!(!m.contains("first"), "{m}");
        assert_eq!(
            failure_message(&record(JobState::Cancelled)),
            "job 01JTEST (ping) was cancelled"
        );
    }

    #[test]
    fn timeout_says_the_job_goes_on_and_how_to_follow_it() {
        let m = timeout_message(&record(JobState::Waiting), Some(1.0));
        assert_eq!(
            m,
            "gave up waiting after 1 s: job 01JTEST (ping) is waiting and goes on; follow it with `paperboy jobs show 01JTEST`"
        );
    }

    #[test]
    fn exit_code_is_the_worst_ending() {
        let worst = [Ending::Succeeded, Ending::Failed, Ending::TimedOut]
            .into_iter()
            .max()
            .unwrap();
        assert_eq!(worst.exit_code(), 1);
        assert_eq!(Ending::TimedOut.max(Ending::Succeeded).exit_code(), 4);
    }

    #[test]
    fn results_that_matter() {
        assert_eq!(
            document_id(&json!({"document_id": 17, "title": "x"})),
            Some(17)
        );
        assert_eq!(document_id(&json!({"duplicate_of": 3})), None);
        assert_eq!(
            pong_line(&record(JobState::Succeeded)),
            "pong from host:42:abc"
        );
        let mut r = record(JobState::Succeeded);
        r.worker = None;
        r.result = Some(json!({"pong": true, "worker": "box", "pid": 7}));
        assert_eq!(pong_line(&r), "pong from box (pid 7)");
    }
}
