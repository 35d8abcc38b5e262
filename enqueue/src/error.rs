//! The CLI's errors and exit codes (documented in `--help`, see `cli::EXIT_CODES`).

use paperboy_shared::config::ConfigError;
use paperboy_shared::queue::QueueError;
use paperboy_shared::staging::StagingError;
use thiserror::Error;

/// Exit codes.
pub mod code {
    pub const DONE: u8 = 0;
    pub const JOB_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const TIMED_OUT: u8 = 4;
}

#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Redis did not answer in time (the queue client's own errors carry the other cases).
    #[error("no answer within {secs} s")]
    ConnectTimeout { secs: u64 },
    #[error(transparent)]
    Staging(#[from] StagingError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] paperboy_shared::db::DbError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// Redis is not there (exit 3).
    pub fn is_unreachable(&self) -> bool {
        match self {
            CliError::Queue(e) => e.is_unreachable(),
            CliError::ConnectTimeout { .. } => true,
            _ => false,
        }
    }

    /// The exit code this error ends the program with.
    pub fn exit_code(&self) -> u8 {
        match self {
            _ if self.is_unreachable() => code::UNREACHABLE,
            CliError::Config(_) => code::USAGE,
            _ => code::JOB_FAILED,
        }
    }

    /// The reason Redis is unreachable, without the URL (the caller names it, redacted).
    pub fn unreachable_reason(&self) -> String {
        match self {
            CliError::Queue(QueueError::Unreachable { source, .. }) => source.to_string(),
            other => other.to_string(),
        }
    }
}
