//! Harness: db.
