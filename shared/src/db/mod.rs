//! The database: one code path for SQLite and PostgreSQL through `sqlx::Any`. Only this module
//! holds SQL. Queries use `$1` placeholders, which both engines accept.

use thiserror::Error;

use crate::error::{Classify, ErrorClass};

/// Which engine a [`Db`] talks to (for the few DDL differences; queries are shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
}

impl Classify for DbError {
    fn class(&self) -> ErrorClass {
        match self {
            DbError::Sqlx(sqlx::Error::Io(_))
            | DbError::Sqlx(sqlx::Error::PoolTimedOut)
            | DbError::Sqlx(sqlx::Error::PoolClosed) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}

/// A pool over either engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: sqlx::AnyPool,
    pub engine: Engine,
}
