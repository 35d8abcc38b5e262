//! The Redis job queue: the only module that talks to Redis.
//!
//! Layout and state machine: ARCHITECTURE.md, "Redis layout". Every multi-key change is one Lua
//! script (in `scripts/`), so a crash between two commands never leaves a job half-moved.
//!
//! Why not apalis-redis: `../shared/specs/crates.md` §2 measured apalis-redis 1.0 to miss several
//! of our guarantees (25 s pickup latency, silent exit on same-name restart, hard-coded attempts,
//! no TTL on idempotency keys, O(n) stats). This module is the small replacement the spec
//! recommends (§2.6): leases renewed by heartbeat, attempts, poison detection, dead set, unique
//! keys, bounded cleanup.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::{Classify, ErrorClass};
use crate::job::{Job, JobKind};

mod client;
pub mod keys;

pub use client::{
    BlockingConn, Leadership, LeaseOp, LeaseState, Queue, SCHEDULER, TickClaim, redact_url,
};
pub use keys::Keys;

/// A job id: a ULID, sortable by creation time.
pub type JobId = String;

#[derive(Debug, Error)]
pub enum QueueError {
    /// Redis cannot be reached or the connection broke: retry later.
    #[error("Redis at {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// Redis answered with an error.
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("no job with id {0} (finished jobs are kept for the retention period only)")]
    NotFound(JobId),
    #[error("job {id} is {state} and cannot be {action}")]
    WrongState {
        id: JobId,
        state: JobState,
        action: &'static str,
    },
    #[error(
        "job {id} has arguments this version cannot read ({reason}); was it enqueued by a newer paperboy?"
    )]
    BadPayload { id: JobId, reason: String },
    #[error("invalid Redis URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

impl Classify for QueueError {
    fn class(&self) -> ErrorClass {
        match self {
            QueueError::Unreachable { .. } | QueueError::Redis(_) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}

impl QueueError {
    /// True when the error means "Redis is not there" (CLI exit code 3).
    pub fn is_unreachable(&self) -> bool {
        match self {
            QueueError::Unreachable { .. } => true,
            QueueError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || e.is_connection_dropped()
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Waiting,
    Scheduled,
    Running,
    Succeeded,
    Failed,
    Dead,
    Cancelled,
}

impl JobState {
    pub const ALL: &'static [JobState] = &[
        JobState::Waiting,
        JobState::Scheduled,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Succeeded, failed, dead or cancelled: nothing more will happen unless someone retries.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Dead | JobState::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded failure of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub attempt: u32,
    pub at_ms: i64,
    pub class: ErrorClass,
    pub message: String,
    pub worker: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

/// Everything known about one job (`paperboy jobs show`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: String,
    pub queue: String,
    /// The job's arguments as JSON (`Job` serialized).
    pub job: serde_json::Value,
    pub state: JobState,
    /// Failures so far.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Times a worker started it.
    pub starts: u32,
    /// Times it was taken back from a dead worker.
    pub recovered: u32,
    pub errors: Vec<ErrorRecord>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// When a scheduled (retrying) job becomes due.
    pub run_at_ms: Option<i64>,
    pub worker: Option<String>,
    pub result: Option<serde_json::Value>,
    pub progress: Progress,
    pub unique_key: Option<String>,
    pub cancel_requested: bool,
}

impl JobRecord {
    pub fn job(&self) -> Result<Job, QueueError> {
        serde_json::from_value(self.job.clone()).map_err(|e| QueueError::BadPayload {
            id: self.id.clone(),
            reason: e.to_string(),
        })
    }
}

/// What `enqueue` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "id", rename_all = "lowercase")]
pub enum Enqueued {
    New(JobId),
    /// An equal unique job is already queued or running; its id.
    Existing(JobId),
}

impl Enqueued {
    pub fn id(&self) -> &str {
        match self {
            Enqueued::New(id) | Enqueued::Existing(id) => id,
        }
    }
}

/// Counts of one queue (`paperboy status`, metrics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: String,
    pub waiting: u64,
    pub scheduled: u64,
    pub running: u64,
    pub finished: u64,
    pub dead: u64,
    /// Age of the oldest waiting job, if any.
    pub oldest_waiting_ms: Option<i64>,
}

/// A live worker process (`paperboy status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub queues: Vec<String>,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
    pub running: Vec<JobId>,
}

/// A job handed to a worker by `fetch`.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub id: JobId,
    pub queue: String,
    /// The raw payload; the runtime parses it (a bad payload is a permanent failure, not a crash).
    pub payload: String,
    pub attempts: u32,
    pub starts: u32,
}

/// What the heartbeat learned.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatReply {
    /// Jobs of this worker someone asked to cancel.
    pub cancel: Vec<JobId>,
    /// Queues where this worker's lease had expired (or Redis lost it): take a fresh lease
    /// (register again).
    pub lost: Vec<String>,
    /// Of the jobs the caller said it runs, those it no longer holds: taken back (lease expired,
    /// Redis lost its data). Stop exactly these runs and do not report them (fencing); a job
    /// fetched again since is held again and not listed.
    pub gone: Vec<JobId>,
}

/// How the runtime ends a job.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded(serde_json::Value),
    /// A failure; `retry_in` None means permanent (straight to dead).
    Failed {
        error: ErrorRecord,
        retry_in: Option<Duration>,
    },
    Cancelled,
}

/// What happened to a job the runtime reported on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Succeeded,
    Retrying,
    Dead,
    Cancelled,
    /// The worker no longer held the job (its lease expired and the job was taken back).
    Stale,
}

/// Counts from one maintenance pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub promoted: u64,
    pub recovered: u64,
    pub poisoned: u64,
    pub cleaned: u64,
}

/// Options of a worker's connection to the queue.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub lease: Duration,
    pub retention: Duration,
    pub dead_retention: Duration,
}

/// Which queues an enqueue or query is about; `kinds` decide queue names.
pub fn queue_of(kind: JobKind) -> &'static str {
    kind.queue()
}
