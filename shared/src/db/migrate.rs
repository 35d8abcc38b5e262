//! Numbered, reversible schema migrations for both engines.
//!
//! Our own small migrator instead of `sqlx::migrate!`: sqlx's migrator records neither which
//! paperboy version brought a migration nor supports one folder per engine behind `sqlx::Any`
//! (it resolves a single source at compile time and has no notion of "this down step is
//! impossible, say why"). The SQL lives in `shared/migrations/<engine>/NNNN_name.{up,down}.sql`
//! and is embedded with `include_str!`, so the binaries carry their schema.
//!
//! Applied migrations are recorded in `paperboy_migrations(version, name, paperboy_version,
//! applied_at)`. Every step (its DDL plus its bookkeeping row) runs in one transaction; both
//! engines have transactional DDL, so a failing step leaves the schema as it was. Steps are
//! serialized between processes (PostgreSQL: a transaction-scoped advisory lock; SQLite:
//! `BEGIN IMMEDIATE`), and each step re-checks inside its transaction whether another process
//! already did it, so several workers may start and migrate at once.

use serde::Serialize;
use sqlx::Row;

use super::{Db, DbError, Engine, now_rfc3339};

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    /// The paperboy version that brought this migration.
    pub since: &'static str,
    /// False when the down step is impossible (e.g. it would have to invent dropped data).
    pub reversible: bool,
    /// Why the down step is impossible (shown in the error); empty when reversible.
    pub irreversible_reason: &'static str,
    pub sqlite_up: &'static str,
    pub sqlite_down: &'static str,
    pub postgres_up: &'static str,
    pub postgres_down: &'static str,
}

impl Migration {
    fn up(&self, engine: Engine) -> &'static str {
        match engine {
            Engine::Sqlite => self.sqlite_up,
            Engine::Postgres => self.postgres_up,
        }
    }

    fn down(&self, engine: Engine) -> &'static str {
        match engine {
            Engine::Sqlite => self.sqlite_down,
            Engine::Postgres => self.postgres_down,
        }
    }
}

/// A reversible migration from `shared/migrations/{sqlite,postgres}/<file>.{up,down}.sql`.
macro_rules! migration {
    ($version:expr, $name:literal, $file:literal, since = $since:literal) => {
        Migration {
            version: $version,
            name: $name,
            since: $since,
            reversible: true,
            irreversible_reason: "",
            sqlite_up: include_str!(concat!("../../migrations/sqlite/", $file, ".up.sql")),
            sqlite_down: include_str!(concat!("../../migrations/sqlite/", $file, ".down.sql")),
            postgres_up: include_str!(concat!("../../migrations/postgres/", $file, ".up.sql")),
            postgres_down: include_str!(concat!("../../migrations/postgres/", $file, ".down.sql")),
        }
    };
}

/// Every migration this paperboy knows, in ascending version order. Append only: never edit or
/// renumber a released migration.
pub static MIGRATIONS: &[Migration] = &[
    migration!(1, "initial", "0001_initial", since = "0.1.0"),
    migration!(2, "lookup_indexes", "0002_lookup_indexes", since = "0.1.0"),
    migration!(
        3,
        "mail_fetch_state",
        "0003_mail_fetch_state",
        since = "0.1.0"
    ),
];

/// The newest version in a list (0 for an empty list).
pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// One line of `migrate --list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    /// The paperboy version that brought it.
    pub since: String,
    pub reversible: bool,
    /// When it was applied (RFC 3339), None when pending.
    pub applied_at: Option<String>,
    /// The paperboy version that applied it, None when pending.
    pub applied_by: Option<String>,
    /// Applied in the database but unknown to this paperboy (the schema is newer).
    pub unknown: bool,
}

/// What a migrate call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrateReport {
    /// Versions applied (up), in order.
    pub applied: Vec<i64>,
    /// Versions reverted (down), in order.
    pub reverted: Vec<i64>,
}

/// Key of the PostgreSQL advisory lock that serializes migration steps ("pbmigr" in ASCII).
const PG_LOCK_KEY: i64 = 0x7062_6d69_6772;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS paperboy_migrations (\
     version BIGINT PRIMARY KEY, \
     name TEXT NOT NULL, \
     paperboy_version TEXT NOT NULL, \
     applied_at TEXT NOT NULL)";

struct AppliedRow {
    version: i64,
    name: String,
    paperboy_version: String,
    applied_at: String,
}

/// Takes the cross-process migration lock for the rest of `tx` (PostgreSQL; SQLite's
/// `BEGIN IMMEDIATE` already holds the write lock).
async fn lock(db: &Db, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<(), DbError> {
    if db.engine == Engine::Postgres {
        // pg_advisory_xact_lock returns void, which sqlx::Any cannot decode: wrap it.
        sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(PG_LOCK_KEY)
            .fetch_one(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn ensure_table(db: &Db) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    lock(db, &mut tx).await?;
    sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

async fn table_exists(db: &Db, table: &str) -> Result<bool, DbError> {
    Ok(table_names(db).await?.iter().any(|t| t == table))
}

/// Names of the tables in the database (the current schema on PostgreSQL), sorted.
pub async fn table_names(db: &Db) -> Result<Vec<String>, DbError> {
    let sql = match db.engine {
        Engine::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        Engine::Postgres => {
            "SELECT tablename::text AS name FROM pg_tables \
             WHERE schemaname = current_schema() ORDER BY tablename"
        }
    };
    let rows = sqlx::query(sql).fetch_all(&db.pool).await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("name").map_err(DbError::from))
        .collect()
}

async fn applied_rows(db: &Db) -> Result<Vec<AppliedRow>, DbError> {
    if !table_exists(db, "paperboy_migrations").await? {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT version, name, paperboy_version, applied_at FROM paperboy_migrations \
         ORDER BY version",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AppliedRow {
                version: r.try_get("version")?,
                name: r.try_get("name")?,
                paperboy_version: r.try_get("paperboy_version")?,
                applied_at: r.try_get("applied_at")?,
            })
        })
        .collect()
}

/// The highest applied version (0 for an empty database).
pub async fn current_version(db: &Db) -> Result<i64, DbError> {
    Ok(applied_rows(db)
        .await?
        .iter()
        .map(|r| r.version)
        .max()
        .unwrap_or(0))
}

/// Known migrations with their state, plus any applied version this paperboy does not know.
pub async fn list(db: &Db) -> Result<Vec<MigrationStatus>, DbError> {
    list_with(db, MIGRATIONS).await
}

/// [`list`] against a given migration list.
pub async fn list_with(db: &Db, migrations: &[Migration]) -> Result<Vec<MigrationStatus>, DbError> {
    let applied = applied_rows(db).await?;
    let mut out: Vec<MigrationStatus> = migrations
        .iter()
        .map(|m| {
            let row = applied.iter().find(|a| a.version == m.version);
            MigrationStatus {
                version: m.version,
                name: m.name.to_string(),
                since: m.since.to_string(),
                reversible: m.reversible,
                applied_at: row.map(|a| a.applied_at.clone()),
                applied_by: row.map(|a| a.paperboy_version.clone()),
                unknown: false,
            }
        })
        .collect();
    for a in applied
        .iter()
        .filter(|a| !migrations.iter().any(|m| m.version == a.version))
    {
        out.push(MigrationStatus {
            version: a.version,
            name: a.name.clone(),
            since: a.paperboy_version.clone(),
            reversible: false,
            applied_at: Some(a.applied_at.clone()),
            applied_by: Some(a.paperboy_version.clone()),
            unknown: true,
        });
    }
    out.sort_by_key(|s| s.version);
    Ok(out)
}

/// Refuses a schema newer than this paperboy knows: a worker must not run on it.
pub async fn check_compatible(db: &Db) -> Result<(), DbError> {
    check_compatible_with(db, MIGRATIONS).await
}

/// [`check_compatible`] against a given migration list.
pub async fn check_compatible_with(db: &Db, migrations: &[Migration]) -> Result<(), DbError> {
    let db_version = current_version(db).await?;
    let known = latest(migrations);
    if db_version > known {
        return Err(DbError::SchemaTooNew { db_version, known });
    }
    Ok(())
}

/// Refuses a schema that is older or newer than this paperboy's latest migration (what a
/// worker checks before taking jobs).
pub async fn check_up_to_date(db: &Db) -> Result<(), DbError> {
    check_compatible(db).await?;
    let db_version = current_version(db).await?;
    let latest = latest(MIGRATIONS);
    let pending = list(db).await?.iter().any(|s| s.applied_at.is_none());
    if db_version < latest || pending {
        return Err(DbError::SchemaOutdated { db_version, latest });
    }
    Ok(())
}

/// Applies every pending migration. Returns the versions applied (empty when up to date).
pub async fn migrate_latest(db: &Db) -> Result<Vec<i64>, DbError> {
    Ok(migrate_to_with(db, MIGRATIONS, latest(MIGRATIONS))
        .await?
        .applied)
}

/// Migrates up or down to `target` (0 = empty schema).
pub async fn migrate_to(db: &Db, target: i64) -> Result<MigrateReport, DbError> {
    migrate_to_with(db, MIGRATIONS, target).await
}

/// [`migrate_to`] against a given migration list (tests use their own lists).
///
/// Going down, the whole path is checked first: if any migration to revert is irreversible,
/// nothing is reverted and the error names it.
pub async fn migrate_to_with(
    db: &Db,
    migrations: &[Migration],
    target: i64,
) -> Result<MigrateReport, DbError> {
    let known = latest(migrations);
    if target < 0 || target > known {
        return Err(DbError::UnknownVersion {
            target,
            latest: known,
        });
    }
    check_compatible_with(db, migrations).await?;
    ensure_table(db).await?;
    let applied: Vec<i64> = applied_rows(db).await?.iter().map(|a| a.version).collect();
    let mut report = MigrateReport::default();

    // Down: newest first, after checking every step can be reverted.
    let mut to_revert: Vec<&Migration> = migrations
        .iter()
        .filter(|m| m.version > target && applied.contains(&m.version))
        .collect();
    to_revert.sort_by_key(|m| std::cmp::Reverse(m.version));
    if let Some(m) = to_revert.iter().find(|m| !m.reversible) {
        return Err(DbError::Irreversible {
            target,
            version: m.version,
            name: m.name,
            reason: m.irreversible_reason,
        });
    }
    for m in to_revert {
        if step(db, m, Direction::Down).await? {
            tracing::info!(version = m.version, name = m.name, "migration reverted");
            report.reverted.push(m.version);
        }
    }

    // Up: oldest first.
    let mut to_apply: Vec<&Migration> = migrations
        .iter()
        .filter(|m| m.version <= target && !applied.contains(&m.version))
        .collect();
    to_apply.sort_by_key(|m| m.version);
    for m in to_apply {
        if step(db, m, Direction::Up).await? {
            tracing::info!(version = m.version, name = m.name, "migration applied");
            report.applied.push(m.version);
        }
    }
    Ok(report)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Runs one step in its own transaction. Returns false when another process already did it.
async fn step(db: &Db, m: &Migration, dir: Direction) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    lock(db, &mut tx).await?;
    let present = sqlx::query("SELECT COUNT(*) AS n FROM paperboy_migrations WHERE version = $1")
        .bind(m.version)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>("n")?
        > 0;
    match dir {
        Direction::Up if present => return Ok(false),
        Direction::Down if !present => return Ok(false),
        Direction::Up => {
            sqlx::raw_sql(m.up(db.engine)).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO paperboy_migrations (version, name, paperboy_version, applied_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(env!("CARGO_PKG_VERSION"))
            .bind(now_rfc3339())
            .execute(&mut *tx)
            .await?;
        }
        Direction::Down => {
            sqlx::raw_sql(m.down(db.engine)).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM paperboy_migrations WHERE version = $1")
                .bind(m.version)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_ascending_unique_and_complete() {
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].version < w[1].version, "versions must ascend");
        }
        assert_eq!(MIGRATIONS[0].version, 1);
        for m in MIGRATIONS {
            assert!(!m.sqlite_up.trim().is_empty(), "{} sqlite up", m.name);
            assert!(!m.postgres_up.trim().is_empty(), "{} postgres up", m.name);
            if m.reversible {
                assert!(!m.sqlite_down.trim().is_empty(), "{} sqlite down", m.name);
                assert!(
                    !m.postgres_down.trim().is_empty(),
                    "{} postgres down",
                    m.name
                );
            } else {
                assert!(
                    !m.irreversible_reason.is_empty(),
                    "{} needs a reason",
                    m.name
                );
            }
        }
        assert_eq!(latest(MIGRATIONS), MIGRATIONS.last().unwrap().version);
    }
}
