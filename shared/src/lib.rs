//! `paperboy-shared`: the vocabulary of the `paperboy` CLI and `paperboy-worker`.
//!
//! Kept light on purpose (no OCR, PDF, index or IMAP crates) so that the CLI builds and starts
//! fast. See ARCHITECTURE.md for the map.

pub mod config;
pub mod db;
pub mod error;
pub mod failpoint;
pub mod human;
pub mod job;
pub mod media;
pub mod queue;
pub mod staging;

pub use error::{Classify, ErrorClass};
