//! The database: one code path for SQLite and PostgreSQL through `sqlx::Any`. Only this module
//! holds SQL. Queries use `$1` placeholders, which both engines accept.
//!
//! `sqlx::Any` has no date/time types, so every timestamp is stored as RFC 3339 UTC text with
//! microseconds (see [`now_rfc3339`]) and every date as `YYYY-MM-DD` text, in both engines.
//! Booleans are `BOOLEAN` on PostgreSQL and `INTEGER` 0/1 on SQLite; read them with
//! [`get_bool`], which accepts both.

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Executor, Row};
use thiserror::Error;

use crate::error::{Classify, ErrorClass};

pub mod classifier;
pub mod documents;
pub mod extras;
pub mod files;
pub mod index;
pub mod mail;
pub mod migrate;
pub mod models;
pub mod objects;
pub mod retag;
pub mod tags;
pub mod transfer;

pub use models::*;
pub use objects::{correspondents, custom_fields, document_types, notes, storage_paths, users};

/// A write transaction from [`Db::begin`]; the write queries take `&mut tx`.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Which engine a [`Db`] talks to (for the few DDL differences; queries are shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// Lower-case name, also the folder name of the engine's migrations.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// The engine a URL points at, from its scheme.
    pub fn from_url(url: &str) -> Result<Engine, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(DbError::BadUrl(redact_url(url)))
        }
    }
}

#[derive(Debug, Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH?mode=rwc or postgres://USER@HOST/DB"
    )]
    BadUrl(String),
    #[error(
        "the database schema is at version {db_version}, newer than this paperboy knows \
         (latest {known}): upgrade paperboy to a release that brings migration {db_version}"
    )]
    SchemaTooNew { db_version: i64, known: i64 },
    #[error(
        "the database schema is at version {db_version} but this paperboy needs {latest}: \
         run `paperboy-worker migrate` first"
    )]
    SchemaOutdated { db_version: i64, latest: i64 },
    #[error(
        "cannot migrate down to version {target}: migration {version} ({name}) is irreversible: \
         {reason}. Restore a backup made before it instead"
    )]
    Irreversible {
        target: i64,
        version: i64,
        name: &'static str,
        reason: &'static str,
    },
    #[error("unknown migration target {target}: this paperboy knows versions 0..={latest}")]
    UnknownVersion { target: i64, latest: i64 },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("invalid {field} {value:?}: {hint}")]
    Invalid {
        field: &'static str,
        value: String,
        hint: &'static str,
    },
    #[error("cannot create the folder {path:?} for the SQLite database: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Classify for DbError {
    fn class(&self) -> ErrorClass {
        match self {
            DbError::Sqlx(sqlx::Error::Io(_))
            | DbError::Sqlx(sqlx::Error::PoolTimedOut)
            | DbError::Sqlx(sqlx::Error::PoolClosed) => ErrorClass::Transient,
            DbError::Sqlx(sqlx::Error::Database(e)) if is_busy(e.as_ref()) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}

impl DbError {
    /// A UNIQUE constraint (or primary key) was violated, e.g. a second document with the same
    /// filename or archive serial number.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e))
            if e.kind() == sqlx::error::ErrorKind::UniqueViolation)
    }

    /// A FOREIGN KEY constraint was violated (a reference to a row that does not exist).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e))
            if e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
    }
}

/// SQLite "database is locked/busy" (after the busy timeout) and PostgreSQL serialization
/// failures / deadlocks are worth a retry.
fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    match e.code().as_deref() {
        // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes (low byte 5/6).
        Some(code)
            if code
                .parse::<i64>()
                .is_ok_and(|c| c & 0xff == 5 || c & 0xff == 6) =>
        {
            true
        }
        // serialization_failure, deadlock_detected, lock_not_available
        Some("40001") | Some("40P01") | Some("55P03") => true,
        _ => false,
    }
}

/// The URL with any password replaced by `***` (secrets never in logs or errors).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let after = &url[scheme_end + 3..];
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let authority = &after[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &after[at..]
        ),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://a:b/c.db"), "sqlite://a:b/c.db");
    }

    #[test]
    fn engine_from_url() {
        assert_eq!(Engine::from_url("sqlite://x.db").unwrap(), Engine::Sqlite);
        assert_eq!(
            Engine::from_url("postgresql://h/db").unwrap(),
            Engine::Postgres
        );
        assert!(matches!(
            Engine::from_url("mysql://h/db"),
            Err(DbError::BadUrl(_))
        ));
    }

    #[test]
    fn timestamps_are_utc_micros() {
        let s = now_rfc3339();
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(s.len(), "2024-05-01T12:34:56.123456Z".len(), "{s}");
    }
}

/// A pool over either engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: sqlx::AnyPool,
    pub engine: Engine,
}

/// How long SQLite waits for a lock before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5000;

impl Db {
    /// Connects to `sqlite://PATH?mode=rwc` (WAL journal, foreign keys on, 5 s busy timeout;
    /// the folder of PATH is created) or `postgres://USER[:PASS]@HOST[:PORT]/DB`.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let max = match Engine::from_url(url)? {
            Engine::Sqlite => 8,
            Engine::Postgres => 10,
        };
        Db::connect_with(url, max).await
    }

    /// [`Db::connect`] with a chosen pool size.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url)?;
        if engine == Engine::Sqlite {
            prepare_sqlite(url).await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // sqlx's SQLite driver already defaults to these; set them explicitly so
                        // the guarantees do not depend on a driver default.
                        conn.execute(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                             PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Db { pool, engine })
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so the write lock is taken
    /// up front (waiting up to the busy timeout) instead of failing on the first write when
    /// another connection wrote meanwhile.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, DbError> {
        Ok(match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the folder of a SQLite file and switches it to WAL (persistent in the file, so once
/// per connect is enough). Changing the journal mode needs an exclusive lock that the busy
/// handler does not wait for, so retry for up to the busy timeout.
async fn prepare_sqlite(url: &str) -> Result<(), DbError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let file = rest.split('?').next().unwrap_or_default();
    let in_memory = file.is_empty() || file == ":memory:" || url.contains("mode=memory");
    if in_memory {
        return Ok(());
    }
    if let Some(parent) = Path::new(file).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS);
    loop {
        match sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_optional(&mut conn)
            .await
        {
            Ok(_) => break,
            Err(sqlx::Error::Database(e))
                if is_busy(e.as_ref()) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    Ok(())
}

/// Reads a boolean column written as `BOOLEAN` (PostgreSQL) or `INTEGER` 0/1 (SQLite).
pub fn get_bool(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(col)? != 0),
    }
}

/// Nullable variant of [`get_bool`].
pub fn get_opt_bool(row: &AnyRow, col: &str) -> Result<Option<bool>, sqlx::Error> {
    match row.try_get::<Option<bool>, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v != 0)),
    }
}

/// Now as RFC 3339 UTC text with microseconds (`2024-05-01T12:34:56.123456Z`), the format of
/// every timestamp column.
pub fn now_rfc3339() -> String {
    to_rfc3339(chrono::Utc::now())
}

/// A UTC instant in the format of every timestamp column.
pub fn to_rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
