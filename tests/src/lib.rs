//! Harness for the integration tests: real redis-server and PostgreSQL, private key prefixes and
//! temporary folders per test.

pub mod db;
pub mod redis;
pub mod worker;
