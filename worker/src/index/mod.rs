//! The full-text index (paperless-ngx 3.0.5's Tantivy schema, spec §4): schema and tokenizers,
//! documents from rows, the on-disk generations and the atomic swap, the writer lease, the
//! query language, searches, and the `index_*` job handlers.
//!
//! One writer at a time across the cluster: the jobs run on the queue `index`, which a worker
//! serves one job at a time, and every writer first takes the Redis lease `writer` of that
//! queue (with a fencing term that each commit stores and checks; see [`lease`]). Searches only
//! read and never wait for it.

pub mod doc;
pub mod jobs;
pub mod lease;
pub mod query;
pub mod schema;
pub mod search;
pub mod snippet;
pub mod store;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use paperboy_shared::{Classify, ErrorClass};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum IndexError {
    #[error("invalid index setting: {0}")]
    Settings(String),
    #[error("cannot {action} the index at {path}: {source}")]
    Tantivy {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the index pointer: {0}")]
    Write(String),
    #[error("the index is damaged: {0} (run `paperboy index reindex`)")]
    Corrupt(String),
    #[error("invalid query {0}")]
    Query(String),
    #[error("document {0} is not in the index")]
    NotIndexed(u64),
    #[error(
        "fenced: this writer holds lease term {mine} but term {seen} has committed since; stopping"
    )]
    Fenced { mine: u64, seen: u64 },
    #[error("the index writer is busy (lease held by {holder}); retried later")]
    Busy { holder: String },
    #[error("the index writer lease was lost (Redis unreachable or expired); nothing committed")]
    LeaseLost,
    #[error("no index yet: run `paperboy index reindex`")]
    Missing,
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Db(#[from] paperboy_shared::db::DbError),
    #[error(transparent)]
    Queue(#[from] paperboy_shared::queue::QueueError),
}

impl IndexError {
    pub fn tantivy(action: &'static str, path: &Path, source: tantivy::TantivyError) -> Self {
        IndexError::Tantivy {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Classify for IndexError {
    fn class(&self) -> ErrorClass {
        use tantivy::TantivyError as T;
        match self {
            IndexError::Tantivy { source, .. } => match source {
                T::LockFailure(..) | T::IoError(_) | T::SystemError(_) => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
            IndexError::Io { .. }
            | IndexError::Write(_)
            | IndexError::Fenced { .. }
            | IndexError::Busy { .. }
            | IndexError::LeaseLost => ErrorClass::Transient,
            IndexError::Settings(_)
            | IndexError::Corrupt(_)
            | IndexError::Query(_)
            | IndexError::NotIndexed(_)
            | IndexError::Missing
            | IndexError::Cancelled => ErrorClass::Permanent,
            IndexError::Db(e) => e.class(),
            IndexError::Queue(e) => e.class(),
        }
    }
}

impl From<IndexError> for crate::jobs::JobError {
    fn from(e: IndexError) -> Self {
        crate::jobs::JobError::from_classified(e)
    }
}
