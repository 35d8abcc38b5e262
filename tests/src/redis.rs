//! Harness: redis.
