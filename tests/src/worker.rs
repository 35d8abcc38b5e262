//! Harness: worker.
