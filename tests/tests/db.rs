//! The database layer on SQLite and PostgreSQL: every test runs on both engines.

use paperboy_shared::db::Engine;
use paperboy_tests::db::TestDb;

const ENGINES: [Engine; 2] = [Engine::Sqlite, Engine::Postgres];

#[tokio::test]
async fn connect_and_ping() {
    for engine in ENGINES {
        let t = TestDb::new(engine).await;
        t.db.ping().await.unwrap();
        assert_eq!(t.db.engine, engine);
        t.cleanup().await;
    }
}
