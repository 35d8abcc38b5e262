//! `paperboy`: the command-line client. Parses arguments (`cli`), reads the settings, runs one
//! command (`commands`) on a current-thread runtime and turns the outcome into an exit code
//! (documented in `--help`). anyhow appears here only, to print an error with its causes.

mod cli;
mod commands;
mod error;
mod output;
mod wait;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use paperboy_shared::config::{Config, ProcessEnv};
use paperboy_shared::job::Job;
use paperboy_shared::queue::Queue;

use cli::{
    Cli, Command, DocumentsCmd, FailMode, IndexCmd, JobsCmd, MailAccountsCmd, MailCmd,
    MailMessagesCmd, MailRulesCmd, WaitArgs,
};
use commands::{
    documents, index, jobs, mail, retagger, search, settings, status, submit, transfer,
};
use error::{CliError, code};
use output::{Output, redact_url};
use wait::WaitOptions;

/// How long to wait for Redis to answer before exit 3.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::normalize_args(std::env::args_os())); // usage errors: clap prints them and exits 2
    init_logging(cli.global.verbose);
    let out = Output::new(cli.global.json);

    if let Command::Search(s) = &cli.command {
        // Read-only and local: no Redis, no runtime; the worker binary holds the index code.
        return finish(search::exec(&s.args, cli.global.json), None);
    }

    if let Command::Settings(s) = &cli.command {
        // Reads the raw variables, so it works even when a setting is invalid.
        return finish(
            settings::settings(&out, &ProcessEnv, s.markdown).map(|()| code::DONE),
            None,
        );
    }

    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return finish(Err(e.into()), None),
    };
    if let Some(url) = &cli.global.redis_url {
        config.redis_url = url.clone();
    }
    if let Some(prefix) = &cli.global.prefix {
        config.redis_prefix = prefix.clone();
    }

    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return finish(
                Err(CliError::Other(format!("cannot start the runtime: {e}"))),
                None,
            );
        }
    };
    if let Command::Retagger(r) = &cli.command {
        retagger::set_view(r, cli.global.verbose);
    }
    let result = rt.block_on(run(cli.command, &config, &out));
    finish(result, Some(&config))
}

/// Exit code and message for the outcome of a command.
fn finish(result: Result<u8, CliError>, config: Option<&Config>) -> ExitCode {
    match result {
        Ok(c) => ExitCode::from(c),
        // `paperboy jobs list | head`: the reader has what it wanted.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(code::DONE)
        }
        Err(e) if e.is_unreachable() => {
            let url = config.map(|c| redact_url(&c.redis_url)).unwrap_or_default();
            eprintln!(
                "paperboy: cannot reach Redis at {url}: {}; is redis-server running? set PAPERBOY_REDIS_URL",
                e.unreachable_reason()
            );
            ExitCode::from(code::UNREACHABLE)
        }
        Err(e) => {
            let exit = e.exit_code();
            eprintln!("paperboy: {:#}", anyhow::Error::new(e));
            ExitCode::from(exit)
        }
    }
}

/// Logs on stderr, warnings only unless `-v`. No env filter: it would cost start-up time.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn connect(config: &Config) -> Result<Queue, CliError> {
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Queue::connect(&config.redis_url, &config.redis_prefix),
    )
    .await
    {
        Ok(q) => Ok(q?),
        Err(_) => Err(CliError::ConnectTimeout {
            secs: CONNECT_TIMEOUT.as_secs(),
        }),
    }
}

async fn run(command: Command, config: &Config, out: &Output) -> Result<u8, CliError> {
    match command {
        Command::Ping(p) => {
            let job = Job::Ping {
                sleep_ms: (p.sleep.max(0.0) * 1000.0).round() as u64,
                fail: p.fail.map(|f| {
                    match f {
                        FailMode::Transient => "transient",
                        FailMode::Permanent => "permanent",
                    }
                    .to_string()
                }),
            };
            let queue = connect(config).await?;
            let submitted = submit::enqueue(&queue, vec![job]).await?;
            after_enqueue(&queue, out, &submitted, &p.wait).await
        }
        Command::Consume(c) => {
            // Bad paths are refused before Redis is even asked.
            for p in &c.paths {
                paperboy_shared::staging::check_source(p)?;
            }
            let queue = connect(config).await?;
            let submitted = submit::consume(&queue, config, &c.paths).await?;
            after_enqueue(&queue, out, &submitted, &c.wait).await
        }
        Command::Thumbnails(t) => {
            let job = Job::Thumbnails {
                document: t.document,
                batch: None,
            };
            let queue = connect(config).await?;
            let submitted = submit::enqueue(&queue, vec![job]).await?;
            after_enqueue(&queue, out, &submitted, &t.wait).await
        }
        Command::SanityCheck(c) => submit_one(config, out, Job::SanityCheck {}, &c.wait).await,
        Command::Archive(a) => {
            let job = Job::Archive {
                document: a.document,
                overwrite: a.overwrite,
            };
            submit_one(config, out, job, &a.wait).await
        }
        Command::Renamer(c) => {
            let job = Job::Renamer {
                dry_run: c.dry_run,
                batch: None,
            };
            let mut wait = c.wait;
            // A dry run is for its list of moves.
            wait.wait |= c.dry_run;
            submit_one(config, out, job, &wait).await
        }
        Command::TrainClassifier(c) => {
            submit_one(config, out, Job::TrainClassifier {}, &c.wait).await
        }
        Command::EmptyTrash(c) => submit_one(config, out, Job::EmptyTrash {}, &c.wait).await,
        Command::DecryptDocuments(c) => {
            submit_one(config, out, Job::DecryptDocuments {}, &c.wait).await
        }
        Command::Retagger(r) => {
            let Some(job) = retagger::job(&r, out) else {
                return Ok(code::DONE);
            };
            let mut wait = r.wait.clone();
            // A dry run is only useful with its answer.
            wait.wait |= r.suggest;
            let queue = connect(config).await?;
            let submitted = submit::enqueue(&queue, vec![job]).await?;
            after_enqueue(&queue, out, &submitted, &wait).await
        }
        Command::Export(e) => {
            let job = transfer::export_job(config, &e)?;
            let queue = connect(config).await?;
            let submitted = transfer::enqueue(&queue, config, job).await?;
            after_enqueue(&queue, out, &submitted, &e.wait).await
        }
        Command::Import(i) => {
            let job = transfer::import_job(config, &i)?;
            let queue = connect(config).await?;
            let submitted = transfer::enqueue(&queue, config, job).await?;
            after_enqueue(&queue, out, &submitted, &i.wait).await
        }
        Command::Index(IndexCmd::Reindex(r)) => {
            let job = Job::IndexReindex {
                if_needed: r.if_needed,
            };
            submit_one(config, out, job, &r.wait).await
        }
        Command::Index(IndexCmd::Optimize(o)) => {
            submit_one(config, out, Job::IndexOptimize {}, &o.wait).await
        }
        Command::Index(IndexCmd::Update(u)) => {
            let jobs = index::update_jobs(config, &u).await?;
            let queue = connect(config).await?;
            let submitted = submit::enqueue(&queue, jobs).await?;
            after_enqueue(&queue, out, &submitted, &u.wait).await
        }
        Command::Search(_) => unreachable!("handled before the runtime starts"),
        Command::Jobs(j) => {
            let queue = connect(config).await?;
            match j {
                JobsCmd::List(l) => {
                    jobs::list(
                        &queue,
                        out,
                        l.queue.queue.as_deref(),
                        l.state,
                        l.limit.limit,
                    )
                    .await?
                }
                JobsCmd::Show(s) => jobs::show(&queue, out, &s.id).await?,
                JobsCmd::Retry(r) => match r.id {
                    Some(id) => jobs::retry(&queue, out, &id).await?,
                    None => jobs::retry_all_dead(&queue, out, r.queue.as_deref()).await?,
                },
                JobsCmd::Cancel(c) => jobs::cancel(&queue, out, &c.id).await?,
            }
            Ok(code::DONE)
        }
        Command::Status => {
            let queue = connect(config).await?;
            status::status(&queue, out).await?;
            Ok(code::DONE)
        }
        Command::Documents(d) => {
            // The only command that needs the database; it never touches Redis.
            let db = documents::open(config).await?;
            let result = match d {
                DocumentsCmd::List(l) => documents::list(&db, out, l.after, l.limit.limit).await,
                DocumentsCmd::Show(s) => documents::show(&db, out, s.id).await,
            };
            db.close().await;
            result?;
            Ok(code::DONE)
        }
        Command::MailFetch(m) => {
            submit_one(config, out, Job::MailFetch { account: m.account }, &m.wait).await
        }
        Command::Mail(m) => {
            // Database only, like `documents`; the fetch itself is `mail-fetch`.
            let db = documents::open(config).await?;
            let result = match m {
                MailCmd::Accounts(MailAccountsCmd::Add(a)) => mail::add_account(&db, out, &a).await,
                MailCmd::Accounts(MailAccountsCmd::List) => mail::list_accounts(&db, out).await,
                MailCmd::Accounts(MailAccountsCmd::Remove(r)) => {
                    mail::remove_account(&db, out, r.id).await
                }
                MailCmd::Rules(MailRulesCmd::Add(r)) => mail::add_rule(&db, out, &r).await,
                MailCmd::Rules(MailRulesCmd::List) => mail::list_rules(&db, out).await,
                MailCmd::Rules(MailRulesCmd::Remove(r)) => mail::remove_rule(&db, out, r.id).await,
                MailCmd::Messages(MailMessagesCmd::List(l)) => {
                    mail::list_messages(&db, out, l.account, l.state, l.limit.limit).await
                }
                MailCmd::Messages(MailMessagesCmd::Retry(r)) => {
                    mail::retry_message(&db, out, r.id).await
                }
            };
            db.close().await;
            result?;
            Ok(code::DONE)
        }
        Command::Settings(_) => unreachable!("handled before the runtime starts"),
    }
}

/// Enqueues one job, then reports it or waits for it.
async fn submit_one(config: &Config, out: &Output, job: Job, w: &WaitArgs) -> Result<u8, CliError> {
    let queue = connect(config).await?;
    let submitted = submit::enqueue(&queue, vec![job]).await?;
    after_enqueue(&queue, out, &submitted, w).await
}

async fn after_enqueue(
    queue: &Queue,
    out: &Output,
    submitted: &[submit::Submitted],
    w: &WaitArgs,
) -> Result<u8, CliError> {
    if !(w.wait || w.timeout.is_some()) {
        submit::report_enqueued(out, submitted)?;
        return Ok(code::DONE);
    }
    let deadline = w
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let opts = WaitOptions {
        deadline,
        progress_bar: out.stderr_tty && !w.no_progress_bar && !out.json,
    };
    submit::wait_all(queue, out, submitted, opts, w.timeout).await
}
