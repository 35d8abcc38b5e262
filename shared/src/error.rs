//! Error classification shared by every library error in paperboy.

use serde::{Deserialize, Serialize};

/// Whether an error is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// Something outside the job went wrong (network, a busy database, a full disk that may be
    /// freed): the job is retried with backoff.
    Transient,
    /// The input or the request is wrong: retrying cannot help, the job goes to the dead set.
    Permanent,
}

/// Implemented by every error type that can end a job.
pub trait Classify {
    fn class(&self) -> ErrorClass;
    fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}
