//! Harness: a fresh database per test, on SQLite (a temp file) or PostgreSQL (a new database
//! `pbtest_<random>` created through the `postgres` maintenance database, dropped afterwards).
//!
//! PostgreSQL comes from `PAPERBOY_TEST_POSTGRES_URL` (a URL of the maintenance database,
//! default `postgres://postgres@127.0.0.1:5432/postgres`). If it is unreachable the harness
//! panics: CI provides one, so a missing server is a failure, never a skip.

use paperboy_shared::db::{Db, Engine};
use sqlx::Connection;

/// Maintenance database used to create and drop the per-test databases.
pub fn postgres_admin_url() -> String {
    std::env::var("PAPERBOY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A throw-away database. Call [`TestDb::cleanup`] at the end of a test; if a test panics
/// first, `Drop` removes the database on a helper thread (best effort).
pub struct TestDb {
    pub db: Db,
    pub url: String,
    pub engine: Engine,
    /// PostgreSQL: the database name to drop. SQLite: None (the temp dir goes with `_dir`).
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
    cleaned: bool,
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        match engine {
            Engine::Sqlite => TestDb::sqlite().await,
            Engine::Postgres => TestDb::postgres().await,
        }
    }

    /// A new SQLite file in a temp dir (in a subfolder that does not exist yet, so `connect`
    /// must create it).
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data").join("paperboy.sqlite3");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = Db::connect(&url)
            .await
            .expect("connect to a new SQLite file");
        TestDb {
            db,
            url,
            engine: Engine::Sqlite,
            pg_name: None,
            _dir: Some(dir),
            cleaned: false,
        }
    }

    /// A new PostgreSQL database. Panics (loudly) when the server is unreachable.
    pub async fn postgres() -> TestDb {
        sqlx::any::install_default_drivers();
        let admin = postgres_admin_url();
        let name = format!("pbtest_{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for these tests and is unreachable at {} ({e}); \
                     start it or set PAPERBOY_TEST_POSTGRES_URL",
                    paperboy_shared::db::redact_url(&admin)
                )
            });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        let url = replace_db_name(&admin, &name);
        let db = Db::connect(&url)
            .await
            .expect("connect to the new database");
        TestDb {
            db,
            url,
            engine: Engine::Postgres,
            pg_name: Some(name),
            _dir: None,
            cleaned: false,
        }
    }

    /// Closes the pool and drops the database.
    pub async fn cleanup(mut self) {
        self.db.close().await;
        if let Some(name) = self.pg_name.take() {
            drop_pg_database(&name).await;
        }
        self.cleaned = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        if let Some(name) = self.pg_name.take() {
            // Called while unwinding from a failed test, maybe inside a runtime: use a thread
            // with its own runtime.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_pg_database(&name));
                }
            })
            .join();
        }
    }
}

async fn drop_pg_database(name: &str) {
    sqlx::any::install_default_drivers();
    if let Ok(mut conn) = sqlx::AnyConnection::connect(&postgres_admin_url()).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

/// `postgres://u@h:p/olddb?x` → `postgres://u@h:p/NAME?x`.
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs one test case on a fresh database of `engine`; the case owns the [`TestDb`] (and its
/// cleanup). [`on_both_engines!`](crate::on_both_engines) calls it.
pub async fn run_on<F, Fut>(engine: Engine, case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    case(TestDb::new(engine).await).await;
}
