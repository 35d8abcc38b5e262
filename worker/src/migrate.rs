//! `paperboy-worker migrate`: brings the database schema to the latest version, to a given one
//! (`--to N`, also downwards), or lists the migrations (`--list`).

use anyhow::Context;
use clap::Args;
use paperboy_shared::config::Config;
use paperboy_shared::db::{Db, DbError, migrate, redact_url};

#[derive(Debug, Args, Clone, Default)]
pub struct MigrateArgs {
    /// Migrate up or down to this version (0 = empty schema); without it: the latest.
    #[arg(long, value_name = "N", conflicts_with = "list")]
    pub to: Option<i64>,
    /// List the migrations: applied or not, and which paperboy version brought each.
    #[arg(long)]
    pub list: bool,
    /// Machine-readable output: JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand; prints what it did. Errors name the database (without its password).
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid settings")?;
    let url = redact_url(&config.database_url);
    let db = Db::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {url}"))?;
    let result = run_on(&db, &args).await;
    db.close().await;
    let out = result.with_context(|| format!("migrating the database {url}"))?;
    println!("{out}");
    Ok(())
}

/// What `migrate` prints, for a connected database.
pub async fn run_on(db: &Db, args: &MigrateArgs) -> Result<String, DbError> {
    if args.list {
        let list = migrate::list(db).await?;
        if args.json {
            return Ok(serde_json::to_string_pretty(&list).expect("statuses serialize"));
        }
        let mut out = format!(
            "{:<8} {:<24} {:<7} {:<11} {:<28} {}\n",
            "VERSION", "NAME", "SINCE", "REVERSIBLE", "APPLIED", "APPLIED BY"
        );
        for s in &list {
            let name = if s.unknown {
                format!("{} (unknown: newer paperboy)", s.name)
            } else {
                s.name.clone()
            };
            out.push_str(&format!(
                "{:<8} {:<24} {:<7} {:<11} {:<28} {}\n",
                s.version,
                name,
                s.since,
                if s.reversible { "yes" } else { "no" },
                s.applied_at.as_deref().unwrap_or("pending"),
                s.applied_by.as_deref().unwrap_or("-"),
            ));
        }
        return Ok(out.trim_end().to_string());
    }
    let before = migrate::current_version(db).await?;
    let target = args
        .to
        .unwrap_or_else(|| migrate::latest(migrate::MIGRATIONS));
    let report = migrate::migrate_to(db, target).await?;
    let after = migrate::current_version(db).await?;
    if args.json {
        return Ok(serde_json::json!({
            "from": before,
            "to": after,
            "applied": report.applied,
            "reverted": report.reverted,
        })
        .to_string());
    }
    Ok(if report.applied.is_empty() && report.reverted.is_empty() {
        format!("schema at version {after}: nothing to do")
    } else if report.reverted.is_empty() {
        format!(
            "schema migrated from version {before} to {after} (applied {:?})",
            report.applied
        )
    } else {
        format!(
            "schema migrated down from version {before} to {after} (reverted {:?})",
            report.reverted
        )
    })
}

/// Before `run` takes jobs: refuse a schema newer than this binary knows (its jobs would write
/// rows the newer schema does not expect). Unreachable databases are left to the runtime, which
/// retries; an outdated schema is only logged, since `migrate` may be running right now.
pub async fn check_before_run(config: &Config) -> anyhow::Result<()> {
    let connect = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        Db::connect(&config.database_url),
    )
    .await;
    let Ok(Ok(db)) = connect else {
        return Ok(());
    };
    let result = migrate::check_up_to_date(&db).await;
    db.close().await;
    match result {
        Err(e @ DbError::SchemaTooNew { .. }) => Err(anyhow::Error::new(e).context(format!(
            "refusing to run on the database {}",
            redact_url(&config.database_url)
        ))),
        Err(e @ DbError::SchemaOutdated { .. }) => {
            tracing::warn!(error = %e, "database schema is not up to date");
            Ok(())
        }
        _ => Ok(()),
    }
}
