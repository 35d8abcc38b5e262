//! Harness for the integration tests: real redis-server and PostgreSQL, private key prefixes and
//! temporary folders per test.

pub mod db;
pub mod dovecot;
pub mod redis;
pub mod worker;

/// Declares each named test case twice, in `mod sqlite` and `mod postgres`, each on a fresh
/// database of that engine: `on_both_engines!(case_a, case_b)` hands each case a
/// [`db::TestDb`] (through [`db::run_on`]); `on_both_engines!(runner = super::run; ...)` calls
/// the file's own `run(engine, case)` instead.
#[macro_export]
macro_rules! on_both_engines {
    (runner = $run:path; $($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $run(paperboy_shared::db::Engine::Sqlite, super::$case).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $run(paperboy_shared::db::Engine::Postgres, super::$case).await
            })*
        }
    };
    ($($case:ident),* $(,)?) => {
        $crate::on_both_engines!(runner = $crate::db::run_on; $($case),*);
    };
}
