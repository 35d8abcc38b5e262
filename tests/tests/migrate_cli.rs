//! `paperboy-worker migrate` as an operator runs it, on SQLite and PostgreSQL: up to the latest,
//! `--list`, `--to N` down and up again, refusals; and a worker refusing a schema newer than it
//! knows.

use std::path::Path;
use std::process::Output;

use paperboy_shared::db::Engine;
use paperboy_shared::db::migrate::{self, MIGRATIONS};
use paperboy_tests::db::TestDb;
use paperboy_tests::worker::binary;

async fn worker(db_url: &str, data: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(binary("paperboy-worker"))
        .args(args)
        .env_clear()
        .env("PAPERBOY_DATABASE_URL", db_url)
        .env("PAPERBOY_DATA_DIR", data)
        // A Redis nobody listens on: `run` must fail on the schema before it needs Redis.
        .env("PAPERBOY_REDIS_URL", "redis://127.0.0.1:1")
        .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .await
        .expect("spawn paperboy-worker")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn up_list_down_up(engine: Engine) {
    let t = TestDb::new(engine).await;
    let data = tempfile::tempdir().unwrap();
    let latest = migrate::latest(MIGRATIONS);

    let o = worker(&t.url, data.path(), &["migrate", "--list"]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.matches("pending").count(), MIGRATIONS.len(), "{out}");

    let o = worker(&t.url, data.path(), &["migrate"]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains(&format!("to {latest}")), "{out}");
    assert_eq!(migrate::current_version(&t.db).await.unwrap(), latest);

    let o = worker(&t.url, data.path(), &["migrate"]).await;
    assert!(text(&o).0.contains("nothing to do"), "{:?}", text(&o));

    let o = worker(&t.url, data.path(), &["migrate", "--list", "--json"]).await;
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON list");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), MIGRATIONS.len());
    for m in list {
        assert!(m["applied_at"].is_string(), "{m}");
        assert_eq!(m["applied_by"], env!("CARGO_PKG_VERSION"));
    }

    let o = worker(&t.url, data.path(), &["migrate", "--to", "1", "--json"]).await;
    assert!(o.status.success(), "{:?}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["to"], 1);
    assert_eq!(migrate::current_version(&t.db).await.unwrap(), 1);

    let o = worker(&t.url, data.path(), &["migrate", "--to", "99"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown migration target 99"), "{err}");
    assert_eq!(migrate::current_version(&t.db).await.unwrap(), 1);

    let o = worker(&t.url, data.path(), &["migrate"]).await;
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(migrate::current_version(&t.db).await.unwrap(), latest);
    t.cleanup().await;
}

async fn run_refuses_a_newer_schema(engine: Engine) {
    let t = TestDb::new(engine).await;
    let data = tempfile::tempdir().unwrap();
    migrate::migrate_latest(&t.db).await.unwrap();
    let newer = migrate::latest(MIGRATIONS) + 1;
    sqlx::query(
        "INSERT INTO paperboy_migrations (version, name, paperboy_version, applied_at) \
         VALUES ($1, 'from_the_future', '9.9.9', '2030-01-01T00:00:00Z')",
    )
    .bind(newer)
    .execute(&t.db.pool)
    .await
    .unwrap();

    let o = worker(&t.url, data.path(), &["run"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing to run"), "{err}");
    assert!(err.contains(&format!("version {newer}")), "{err}");

    // And migrate will not touch it either.
    let o = worker(&t.url, data.path(), &["migrate"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("newer than this paperboy knows"), "{err}");
    let o = worker(&t.url, data.path(), &["migrate", "--list"]).await;
    assert!(
        text(&o).0.contains("from_the_future (unknown"),
        "{:?}",
        text(&o)
    );
    t.cleanup().await;
}

#[tokio::test]
async fn sqlite_migrate_up_list_down_up() {
    up_list_down_up(Engine::Sqlite).await;
}

#[tokio::test]
async fn postgres_migrate_up_list_down_up() {
    up_list_down_up(Engine::Postgres).await;
}

#[tokio::test]
async fn sqlite_run_refuses_a_newer_schema() {
    run_refuses_a_newer_schema(Engine::Sqlite).await;
}

#[tokio::test]
async fn postgres_run_refuses_a_newer_schema() {
    run_refuses_a_newer_schema(Engine::Postgres).await;
}
