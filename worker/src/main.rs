//! `paperboy-worker`: runs paperboy jobs from Redis and serves `/metrics`, `/healthz` and
//! `/readyz`. Settings come from the environment (`PAPERBOY_*`, see `paperboy settings`);
//! flags override them.

mod classifier;
mod filenames;
mod http;
mod index;
mod index_cli;
mod jobs;
mod matching;
mod metrics;
mod migrate;
mod runtime;
mod scheduler;
mod status_page;
mod watcher;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use paperboy_shared::config::Config;
use paperboy_shared::job::JobKind;
use paperboy_shared::queue::WorkerOptions;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::runtime::exit;

const EXIT_CODES: &str = "\
Exit codes of `run`:
  0  stopped on SIGTERM/SIGINT; every running job finished within the grace period
  1  fatal error: invalid settings, the HTTP address cannot be bound, an internal failure
  2  invalid command line
  3  stopped on SIGTERM/SIGINT with jobs still running after the grace period; they were given
     back to the queue (another worker runs them)

A second SIGTERM/SIGINT skips the rest of the grace period. Redis or database outages never end
the worker: it retries with backoff and /readyz answers 503 meanwhile.";

/// Runs paperboy jobs from Redis.
#[derive(Debug, Parser)]
#[command(name = "paperboy-worker", version, about, after_help = EXIT_CODES)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: `run` with these flags.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run jobs until SIGTERM/SIGINT (the default).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Bring the database schema to the latest version (`--to N`: up or down to N; `--list`:
    /// show every migration). Exit 0 done, 1 refused or failed (nothing half-applied).
    Migrate(migrate::MigrateArgs),
    /// Search the full-text index (read-only: opens DATA_DIR/index, no Redis, no job). The
    /// query language of paperless-ngx: words (AND by default), "phrases", AND/OR/NOT, field:value
    /// (title, content, correspondent, type, tag, path, notes.note, custom_fields.value, asn,
    /// …), date ranges `created:[2024-01-01 to 2024-06-30]`, `added:yesterday`,
    /// `created:"last month"`, `added:[-1 week to now]`. Exit 0 (also with no hits), 1 no
    /// usable index or an error, 2 invalid query or command line.
    Search(index_cli::SearchArgs),
}

#[derive(Debug, Args, Clone, Default)]
struct RunArgs {
    /// Queues to serve: comma-separated names, or `all`.
    #[arg(long, env = "PAPERBOY_QUEUES", value_name = "a,b|all")]
    queues: Option<String>,
    /// Jobs run at once, per queue [default: number of cores for CPU-heavy queues, 8 for the rest].
    #[arg(long, env = "PAPERBOY_CONCURRENCY", value_name = "N")]
    concurrency: Option<usize>,
    /// Address of the HTTP server (/metrics, /healthz, /readyz); port 0 picks a free port.
    #[arg(long, env = "PAPERBOY_METRICS_ADDR", value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// Lease on running jobs in seconds; renewed every third of it.
    #[arg(long, env = "PAPERBOY_LEASE_SECS", value_name = "SECS")]
    lease_secs: Option<u64>,
    /// On SIGTERM/SIGINT, seconds running jobs may take to finish before they are given back.
    #[arg(long, env = "PAPERBOY_GRACE_SECS", value_name = "SECS")]
    grace_secs: Option<u64>,
    /// Write the bound HTTP address to this file once listening (for supervisors and tests).
    #[arg(long, env = "PAPERBOY_ADDR_FILE", value_name = "PATH")]
    addr_file: Option<PathBuf>,
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let (filter, bad) = match EnvFilter::try_new(&config.log_level) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_format.eq_ignore_ascii_case("json") {
        builder.json().init();
    } else {
        builder.init();
    }
    if let Some(e) = bad {
        tracing::warn!(
            value = %config.log_level,
            error = %e,
            "PAPERBOY_LOG_LEVEL is not a valid filter; using info"
        );
    }
    if !matches!(
        config.log_format.to_ascii_lowercase().as_str(),
        "text" | "json"
    ) {
        tracing::warn!(value = %config.log_format, "PAPERBOY_LOG_FORMAT must be text or json; using text");
    }
}

/// Settings of `run`: the environment, then flags on top.
fn settings(
    config: &mut Config,
    args: &RunArgs,
) -> anyhow::Result<(runtime::Settings, Option<PathBuf>)> {
    if let Some(q) = &args.queues {
        config.queues = q.clone();
    }
    if let Some(n) = args.concurrency {
        config.concurrency = Some(n);
    }
    if let Some(a) = &args.metrics_addr {
        config.metrics_addr = a.clone();
    }
    if let Some(s) = args.lease_secs {
        config.lease = Duration::from_secs(s);
    }
    if let Some(s) = args.grace_secs {
        config.grace = Duration::from_secs(s);
    }
    anyhow::ensure!(
        config.lease >= Duration::from_secs(1),
        "the lease (--lease-secs/PAPERBOY_LEASE_SECS) must be at least 1 second"
    );
    anyhow::ensure!(
        config.concurrency != Some(0),
        "the concurrency (--concurrency/PAPERBOY_CONCURRENCY) must be at least 1"
    );
    let queues = runtime::parse_queues(&config.queues).map_err(anyhow::Error::msg)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let concurrency: HashMap<String, usize> = queues
        .iter()
        .map(|q| {
            let n = config
                .concurrency
                .unwrap_or_else(|| runtime::default_concurrency(q, cores));
            // The index queue has one writer: one job at a time, whatever the setting.
            let n = if runtime::single_consumer(q) { 1 } else { n };
            (q.clone(), n)
        })
        .collect();
    Ok((
        runtime::Settings {
            queues,
            concurrency,
            opts: WorkerOptions {
                lease: config.lease,
                retention: config.retention,
                dead_retention: config.dead_retention,
            },
            grace: config.grace,
        },
        args.addr_file.clone(),
    ))
}

/// SIGTERM and SIGINT count up on the returned channel.
fn stop_signals() -> anyhow::Result<watch::Receiver<u32>> {
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            let n = *tx.borrow() + 1;
            tracing::info!(signal = name, count = n, "stop signal received");
            if tx.send(n).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env().context("invalid settings")?;
    init_logging(&config);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    scheduler::entries(&config).context("invalid schedule")?;
    let (settings, addr_file) = settings(&mut config, &args)?;
    migrate::check_before_run(&config).await?;
    let stop = stop_signals()?;

    let metrics = Arc::new(metrics::Metrics::new(&settings.queues));
    let health = Arc::new(http::Health::default());
    let listener = http::bind(&config.metrics_addr, addr_file.as_deref()).await?;
    let (http_stop_tx, mut http_stop_rx) = watch::channel(false);
    let status = Arc::new(http::StatusSource::new(
        &config.redis_url,
        &config.redis_prefix,
    ));
    let server = tokio::spawn(http::serve(
        listener,
        metrics.clone(),
        health.clone(),
        status,
        async move {
            let _ = http_stop_rx.wait_for(|v| *v).await;
        },
    ));

    let config = Arc::new(config);
    // The consumption-folder watcher runs beside the workers that consume.
    let watcher = settings
        .queues
        .iter()
        .any(|q| q == JobKind::Consume.queue())
        .then(|| tokio::spawn(watcher::run(config.clone(), stop.clone())));

    let code = runtime::run(config, settings, metrics, health, stop).await;

    if let Some(w) = watcher {
        let _ = tokio::time::timeout(Duration::from_secs(2), w).await;
    }

    let _ = http_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    Ok(code)
}

fn main() {
    let cli = Cli::parse();
    let (args, migrate_args) = match cli.command {
        Some(Command::Run(a)) => (a, None),
        Some(Command::Migrate(m)) => (RunArgs::default(), Some(m)),
        Some(Command::Search(s)) => std::process::exit(index_cli::run(s)),
        None => (cli.run, None),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paperboy-worker: cannot start the async runtime: {e}");
            std::process::exit(exit::FATAL);
        }
    };
    let result = match migrate_args {
        Some(m) => rt.block_on(migrate::run(m)).map(|()| exit::CLEAN),
        None => rt.block_on(run(args)),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // Logging may not be set up yet: stderr, plus a log line if it is.
            eprintln!("paperboy-worker: {e:#}");
            tracing::error!("{e:#}");
            exit::FATAL
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_settings() {
        let mut config = Config::from(&HashMap::<String, String>::new()).unwrap();
        let args = RunArgs {
            queues: Some("ping".into()),
            concurrency: Some(3),
            lease_secs: Some(2),
            grace_secs: Some(7),
            ..Default::default()
        };
        let (s, _) = settings(&mut config, &args).unwrap();
        assert_eq!(s.queues, ["ping"]);
        assert_eq!(s.concurrency["ping"], 3);
        assert_eq!(s.opts.lease, Duration::from_secs(2));
        assert_eq!(s.grace, Duration::from_secs(7));
    }

    #[test]
    fn defaults_give_every_queue_a_concurrency() {
        let mut config = Config::from(&HashMap::<String, String>::new()).unwrap();
        let (s, _) = settings(&mut config, &RunArgs::default()).unwrap();
        assert!(s.queues.len() >= 3);
        for q in &s.queues {
            assert!(s.concurrency[q] >= 1);
        }
        assert_eq!(s.concurrency["ping"], 8);
        assert_eq!(s.concurrency["index"], 1);
    }

    #[test]
    fn the_index_queue_runs_one_job_at_a_time_whatever_the_concurrency() {
        let mut config = Config::from(&HashMap::<String, String>::new()).unwrap();
        let args = RunArgs {
            queues: Some("index,ping".into()),
            concurrency: Some(4),
            ..Default::default()
        };
        let (s, _) = settings(&mut config, &args).unwrap();
        assert_eq!(s.concurrency["index"], 1);
        assert_eq!(s.concurrency["ping"], 4);
    }

    #[test]
    fn zero_lease_or_concurrency_is_refused() {
        let mut config = Config::from(&HashMap::<String, String>::new()).unwrap();
        let e = settings(
            &mut config,
            &RunArgs {
                lease_secs: Some(0),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("--lease-secs"), "{e}");
        let mut config = Config::from(&HashMap::<String, String>::new()).unwrap();
        let e = settings(
            &mut config,
            &RunArgs {
                concurrency: Some(0),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("--concurrency"), "{e}");
    }

    #[test]
    fn cli_parses_default_run_and_subcommand() {
        let c = Cli::try_parse_from(["paperboy-worker", "--queues", "ping", "--concurrency", "2"])
            .unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.run.queues.as_deref(), Some("ping"));
        let c = Cli::try_parse_from(["paperboy-worker", "run", "--lease-secs", "5"]).unwrap();
        assert!(matches!(c.command, Some(Command::Run(ref a)) if a.lease_secs == Some(5)));
        let c = Cli::try_parse_from(["paperboy-worker", "migrate", "--to", "1"]).unwrap();
        assert!(matches!(c.command, Some(Command::Migrate(ref m)) if m.to == Some(1)));
        assert!(
            Cli::try_parse_from(["paperboy-worker", "migrate", "--to", "1", "--list"]).is_err()
        );
    }
}
