//! Job handlers, one module per job family, and the context they run in.
//!
//! Contract (the runtime builds a [`JobContext`] and calls [`run`]):
//! - a handler returns `Ok(result_json)` or a [`JobError`] that says whether a retry can help;
//! - it reports progress with [`JobContext::progress`] and checks [`JobContext::is_cancelled`]
//!   between steps;
//! - it fans out by enqueueing more jobs with [`JobContext::enqueue`].

pub mod archive;
pub mod classifier;
pub mod consume;
pub mod decrypt;
pub mod mail;
pub mod ocr;
pub mod ping;
pub mod renamer;
pub mod render;
pub mod retagger;
pub mod sanity;
pub mod thumbnails;
pub mod transfer;
pub mod trash;

use std::sync::Arc;

use paperboy_shared::config::Config;
use paperboy_shared::db::Db;
use paperboy_shared::job::Job;
use paperboy_shared::queue::{Enqueued, Progress, Queue};
use paperboy_shared::{Classify, ErrorClass};
use thiserror::Error;
use tokio::sync::watch;

/// Why a job failed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum JobError {
    /// Retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// Straight to the dead set with this message.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// Wraps any classified library error, keeping its class.
    pub fn from_classified<E: Classify + std::fmt::Display>(e: E) -> Self {
        match e.class() {
            ErrorClass::Transient => JobError::Transient(e.to_string()),
            ErrorClass::Permanent => JobError::Permanent(e.to_string()),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            JobError::Transient(_) => ErrorClass::Transient,
            JobError::Permanent(_) => ErrorClass::Permanent,
        }
    }
}

impl From<paperboy_shared::db::DbError> for JobError {
    fn from(e: paperboy_shared::db::DbError) -> Self {
        JobError::from_classified(e)
    }
}

impl From<paperboy_shared::queue::QueueError> for JobError {
    fn from(e: paperboy_shared::queue::QueueError) -> Self {
        JobError::from_classified(e)
    }
}

/// Sink for progress reports; the runtime writes them to the job's hash (throttled).
pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// What a running job can see and do.
// Some fields and helpers are only used by handlers still being written (consume, thumbnails).
#[allow(dead_code)]
#[derive(Clone)]
pub struct JobContext {
    pub id: String,
    pub config: Arc<Config>,
    pub db: Db,
    pub queue: Queue,
    pub progress_sink: ProgressSink,
    pub cancelled: watch::Receiver<bool>,
}

#[allow(dead_code)]
impl JobContext {
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reports progress (`done` of `total`, with a short message).
    pub fn progress(&self, done: u64, total: u64, message: impl Into<String>) {
        (self.progress_sink)(Progress {
            done,
            total,
            message: message.into(),
        });
    }

    /// True once someone asked to cancel this job (`paperboy jobs cancel`) or the worker stops.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Errors with `Permanent("cancelled")` if the job was cancelled; call between steps.
    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::Permanent("cancelled".into()))
        } else {
            Ok(())
        }
    }

    /// Waits until the fanned-out job `ids[i]` ends (the parent waits for its children in
    /// order). Cancelling the parent cancels this child and the later ones. The child's record
    /// if it succeeded, else its state and last error.
    pub async fn wait_child(
        &self,
        ids: &[String],
        i: usize,
    ) -> Result<Result<paperboy_shared::queue::JobRecord, String>, JobError> {
        use paperboy_shared::queue::JobState;
        loop {
            if self.is_cancelled() {
                for c in &ids[i..] {
                    let _ = self.queue.cancel(c).await;
                }
                return Err(JobError::Permanent("cancelled".into()));
            }
            let r = self.queue.get(&ids[i]).await?;
            if r.state == JobState::Succeeded {
                return Ok(Ok(r));
            }
            if r.state.is_terminal() {
                let why = r
                    .errors
                    .last()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                return Ok(Err(format!("ended {}: {why}", r.state)));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Enqueues a follow-up job (fan-out).
    pub async fn enqueue(&self, job: &Job) -> Result<Enqueued, JobError> {
        Ok(self.queue.enqueue(job).await?)
    }
}

/// Runs one job to its end. Exhaustive over [`Job`]: a new kind does not compile until it is
/// handled here.
pub async fn run(job: Job, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    match job {
        Job::Ping { sleep_ms, fail } => ping::run(sleep_ms, fail, ctx).await,
        Job::Consume(args) => consume::run(args, ctx).await,
        Job::Thumbnails { document, batch } => thumbnails::run(document, batch, ctx).await,
        Job::SanityCheck {} => sanity::run(ctx).await,
        Job::SanityCheckBatch { ids } => sanity::run_batch(ids, ctx).await,
        Job::Renamer { dry_run, batch } => renamer::run(dry_run, batch, ctx).await,
        Job::DecryptDocuments {} => decrypt::run(ctx).await,
        Job::Retagger(args) => retagger::run(args, ctx).await,
        Job::RetaggerBatch { args, ids } => retagger::run_batch(args, ids, ctx).await,
        Job::TrainClassifier {} => classifier::run(ctx).await,
        Job::Export(args) => transfer::export::run(args, ctx).await,
        Job::Import(args) => transfer::import::run(args, ctx).await,
        Job::IndexReindex { if_needed } => crate::index::jobs::reindex(if_needed, ctx).await,
        Job::IndexOptimize {} => crate::index::jobs::optimize(ctx).await,
        Job::IndexUpdate { ids } => crate::index::jobs::update(ids, ctx).await,
        Job::Archive {
            document,
            overwrite,
        } => archive::run(document, overwrite, ctx).await,
        Job::ArchiveDocument {
            document,
            overwrite,
        } => archive::run_document(document, overwrite, ctx).await,
        Job::MailFetch { account } => mail::run(account, ctx).await,
        Job::EmptyTrash {} => trash::run(ctx).await,
    }
}
