//! `paperboy-bench`: benchmarks that print Markdown tables (copied into the README), and the
//! bench corpus generator. Run in release mode, after building the binaries:
//!
//! ```text
//! cargo build --release -p paperboy -p paperboy-worker -p paperboy-bench
//! target/release/paperboy-bench queue
//! target/release/paperboy-bench corpus --docs 10000 --seed 1
//! target/release/paperboy-bench consume --docs 400 --files 60
//! target/release/paperboy-bench classifier --docs 10000
//! target/release/paperboy-bench index --docs 10000,100000
//! target/release/paperboy-bench mail --messages 1000 --mailbox 10000
//! target/release/paperboy-bench sanity --docs 10000
//! target/release/paperboy-bench transfer --docs 1000,10000
//! ```

mod archive;
mod classifier;
mod consume;
mod corpus;
mod index;
mod mail;
mod queue;
mod sanity;
mod transfer;

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
    /// Consume throughput (born-digital PDFs, scanned PDFs and image scans, OCR on and off)
    /// and thumbnails/s, on files of the bench corpus, beside `cp` of the same files.
    Consume {
        /// Corpus documents to draw the files from.
        #[arg(long, default_value_t = 400)]
        docs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Files per group at most.
        #[arg(long, default_value_t = 60)]
        files: usize,
    },
    /// Archive versions of the fixture scans and of bench corpus scans: paperboy (`paperboy
    /// archive`, one worker) beside Debian's ocrmypdf (as paperless runs it, and one process per
    /// core), pages/s, word accuracy, size, load.
    Archive {
        /// paperless-ngx 3.0.5 fixtures (consume-input/, export-plain/manifest.json).
        #[arg(long, default_value = "../shared/fixtures/paperless-3.0.5")]
        fixtures: PathBuf,
        /// Only paperboy.
        #[arg(long)]
        no_ocrmypdf: bool,
        /// Bench corpus scans (half scanned PDFs, half PNG/JPEG) as a second group; 0: none.
        #[arg(long, default_value_t = 12)]
        corpus_files: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The Auto classifier on the bench corpus (every object AUTO, a fifth held out): training
    /// time, peak RSS, accuracy per field beside the majority baseline; retagger documents/s.
    Classifier {
        #[arg(long, default_value_t = 10_000)]
        docs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The full-text index on the bench corpus: reindex time and worker peak RSS, search
    /// latency p50/p99 (`paperboy-worker search` processes) beside `grep`, update latency
    /// (index_update enqueued → visible in a search).
    Index {
        /// Corpus sizes, one run each (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "10000")]
        docs: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Search processes per query.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Update latency samples.
        #[arg(long, default_value_t = 20)]
        updates: usize,
    },
    /// The mail fetch against a real Dovecot (filled by IMAP APPEND), one worker serving
    /// `mail,consume`: a first fetch of messages with a PDF attachment each (messages/s,
    /// documents/s, MB received, peak RSS) beside a bare-socket `UID FETCH 1:* BODY.PEEK[]`;
    /// a big mailbox fetched once, then again with nothing new (time, bytes received).
    Mail {
        /// Messages with one PDF attachment each.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Size of each PDF attachment in bytes (at least; padded).
        #[arg(long, default_value_t = 16 * 1024)]
        pdf_bytes: usize,
        /// Messages without attachments in the big mailbox.
        #[arg(long, default_value_t = 10_000)]
        mailbox: usize,
        /// Fetches of the big mailbox with nothing new.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
    /// The sanity checker on the bench corpus (enqueue → done, worker peak RSS) beside
    /// `sha256sum` of the same files before and after it; then the renamer after a template
    /// change (`PAPERBOY_FILENAME_FORMAT`), files moved, beside `cp -al` of the same files.
    Sanity {
        #[arg(long, default_value_t = 10_000)]
        docs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Sanity checks, and `sha256sum` runs before and after them.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// `paperboy export` and `paperboy import` on the bench corpus: a fresh export, the same
    /// again with nothing changed, with `-c`, with `-z`, and the import into an empty archive
    /// (enqueue → done, each on a fresh worker for its peak RSS), beside `cp -a` of the media
    /// root (alone and with `sync`) and `sha256sum` of every file.
    Transfer {
        /// Corpus sizes, one run each (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        docs: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Writes a realistic archive (documents, files, thumbnails, tags, correspondents, custom
    /// fields, notes, trash) straight into an empty database and media root. The database and
    /// media root come from the usual settings (PAPERBOY_DATABASE_URL, PAPERBOY_DATA_DIR,
    /// PAPERBOY_MEDIA_ROOT) unless given here.
    Corpus {
        /// Number of documents.
        #[arg(long, default_value_t = 1000)]
        docs: usize,
        /// Seed: the same seed gives the same archive.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Documents per database transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Overrides PAPERBOY_DATABASE_URL.
        #[arg(long)]
        database_url: Option<String>,
        /// Overrides PAPERBOY_MEDIA_ROOT.
        #[arg(long)]
        media_root: Option<PathBuf>,
        /// Generator threads [default: number of cores].
        #[arg(long, default_value_t = 0)]
        threads: usize,
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
        Command::Consume { docs, seed, files } => rt.block_on(consume::run(consume::Args {
            redis_url: cli.redis_url,
            bin_dir,
            docs,
            seed,
            files,
        })),
        Command::Archive {
            fixtures,
            no_ocrmypdf,
            corpus_files,
            seed,
        } => rt.block_on(archive::run(archive::Args {
            redis_url: cli.redis_url,
            bin_dir,
            fixtures,
            no_ocrmypdf,
            corpus_files,
            seed,
        })),
        Command::Classifier { docs, seed } => rt.block_on(classifier::run(classifier::Args {
            redis_url: cli.redis_url,
            bin_dir,
            docs,
            seed,
        })),
        Command::Index {
            docs,
            seed,
            samples,
            updates,
        } => rt.block_on(index::run(index::Args {
            redis_url: cli.redis_url,
            bin_dir,
            docs,
            seed,
            samples,
            updates,
        })),
        Command::Mail {
            messages,
            pdf_bytes,
            mailbox,
            repeats,
        } => rt.block_on(mail::run(mail::Args {
            redis_url: cli.redis_url,
            bin_dir,
            messages,
            pdf_bytes,
            mailbox,
            repeats,
        })),
        Command::Sanity { docs, seed, runs } => rt.block_on(sanity::run(sanity::Args {
            redis_url: cli.redis_url,
            bin_dir,
            docs,
            seed,
            runs,
        })),
        Command::Transfer { docs, seed } => rt.block_on(transfer::run(transfer::Args {
            redis_url: cli.redis_url,
            bin_dir,
            docs,
            seed,
        })),
        Command::Corpus {
            docs,
            seed,
            batch,
            database_url,
            media_root,
            threads,
        } => rt.block_on(corpus::run(corpus::Args {
            docs,
            seed,
            batch,
            database_url,
            media_root,
            threads,
            all_auto: false,
        })),
    }
}
