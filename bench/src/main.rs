//! `paperboy-bench`: benchmarks that print Markdown tables (copied into the README), and the
//! bench corpus generator. Run in release mode, after building the binaries:
//!
//! ```text
//! cargo build --release -p paperboy -p paperboy-worker -p paperboy-bench
//! target/release/paperboy-bench queue
//! ```

mod queue;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "paperboy-bench",
    about = "paperboy benchmarks (print Markdown tables)"
)]
struct Cli {
    /// Redis to run against (a key prefix of its own per run; cleaned up afterwards).
    #[arg(
        long,
        env = "PAPERBOY_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Folder with the `paperboy` and `paperboy-worker` binaries (default: next to this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Job throughput (1 and 2 worker processes), idle pickup latency, CLI cold start, beside
    /// redis-benchmark LPUSH/RPOP.
    Queue {
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        #[arg(long, default_value_t = 300)]
        samples: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let bin_dir = match cli.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has no folder")?
            .to_path_buf(),
    };
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Queue { jobs, samples } => rt.block_on(queue::run(queue::Args {
            redis_url: cli.redis_url,
            jobs,
            samples,
            bin_dir,
        })),
    }
}
