//! Argument parsing only: the clap definitions. Flags are declared once in small `Args` structs
//! and flattened into every subcommand that takes them; the commands themselves (in
//! `commands/`) never see clap types beyond these plain structs.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use paperboy_shared::queue::JobState;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  done (the job was enqueued, or with --wait it succeeded)
  1  the job failed, is dead or was cancelled; or another error (message on stderr)
  2  usage error (bad arguments or settings)
  3  Redis unreachable (check redis-server and PAPERBOY_REDIS_URL)
  4  --wait gave up after --timeout; the job goes on (follow it with `paperboy jobs show ID`)

Output: job commands print the new job's id when stdout is a terminal and nothing otherwise
(silent in cron); --json prints one JSON object per job and line. Settings come from PAPERBOY_*
environment variables (see `paperboy settings`); --redis-url and --prefix override them.";

#[derive(Debug, Parser)]
#[command(
    name = "paperboy",
    version,
    about = "Enqueue archive maintenance jobs on the paperboy Redis queue and follow them",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Redis URL (overrides PAPERBOY_REDIS_URL)
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (overrides PAPERBOY_REDIS_PREFIX)
    #[arg(long, global = true, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Machine-readable output: JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// Flags of every subcommand that enqueues jobs.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait until the job has finished; exit 0 if it succeeded, 1 if not
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after SECS seconds (exit 4; the job goes on). Implies --wait
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// No progress bar while waiting, even on a terminal
    #[arg(long)]
    pub no_progress_bar: bool,
}

/// Paperless-ngx's management command names are aliases (one `visible_alias` line per kind), so
/// `paperboy document_consumer …` works for people coming from `manage.py document_consumer`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Round trip through a worker (like `celery inspect ping`)
    Ping(PingCmd),
    /// Consume files into the archive: each is copied to the staging area, one job per file
    #[command(visible_alias = "document_consumer")]
    Consume(ConsumeCmd),
    /// Regenerate thumbnails of one document or (without --document) of every document
    #[command(visible_alias = "document_thumbnails")]
    Thumbnails(ThumbnailsCmd),
    /// Check every document's files: missing or unreadable originals, archives and
    /// thumbnails, checksum mismatches, missing content, orphaned files. With --wait: the
    /// report, and exit 1 if it has errors
    #[command(visible_alias = "document_sanity_checker")]
    SanityCheck(SanityCheckCmd),
    /// Move every document's files to the names their templates (storage path,
    /// PAPERBOY_FILENAME_FORMAT) give now; never overwrites or deletes a file
    #[command(visible_alias = "document_renamer")]
    Renamer(RenamerCmd),
    /// Decrypt GnuPG-era documents (storage type gpg) with the workers' PAPERBOY_PASSPHRASE
    #[command(visible_alias = "decrypt_documents")]
    DecryptDocuments(DecryptDocumentsCmd),
    /// Re-apply matching rules to documents already in the archive (after rules changed)
    #[command(visible_alias = "document_retagger")]
    Retagger(RetaggerCmd),
    /// Train the Auto classifier on the archive (skipped when its training data did not
    /// change); workers use the new model at once
    #[command(visible_alias = "document_create_classifier")]
    TrainClassifier(TrainClassifierCmd),
    /// Delete for good the documents in the trash for longer than PAPERBOY_EMPTY_TRASH_DELAY
    /// days, with their files (moved to PAPERBOY_EMPTY_TRASH_DIR if set)
    #[command(visible_alias = "empty_trash")]
    EmptyTrash(EmptyTrashCmd),
    /// Export the archive (paperless-ngx 3.0.5 format) to a folder, or a zip in it
    #[command(visible_alias = "document_exporter")]
    Export(ExportCmd),
    /// Import a paperless-ngx (1.x-3.x) or paperboy export (folder or zip) into an empty archive
    #[command(visible_alias = "document_importer")]
    Import(ImportCmd),
    /// The full-text index: rebuild it (`reindex`) or merge its segments (`optimize`); jobs on
    /// the queue `index`
    #[command(subcommand, visible_alias = "document_index")]
    Index(IndexCmd),
    /// Search the full-text index (read-only, no job): runs `paperboy-worker search`, which
    /// holds the index code. `paperboy search --help` shows its flags (QUERY, --like ID,
    /// --complete PREFIX, --limit N, --json)
    #[command(disable_help_flag = true)]
    Search(SearchCmd),
    /// Make searchable PDF/A archive versions (OCR) of the documents that need one, one job
    /// per document across the workers serving the `archive` queue
    #[command(visible_alias = "document_archiver")]
    Archive(ArchiveCmd),
    /// Look at, retry and cancel jobs
    #[command(subcommand)]
    Jobs(JobsCmd),
    /// Queues (waiting, scheduled, running, dead, oldest waiting) and live workers
    Status,
    /// Documents in the archive (read-only, from the database)
    #[command(subcommand)]
    Documents(DocumentsCmd),
    /// Every setting with its current value (secrets hidden)
    Settings(SettingsCmd),
    /// Fetch mail: every account (one job each) or --account ID, consumed as the rules say
    #[command(visible_alias = "mail_fetcher")]
    MailFetch(MailFetchCmd),
    /// Mail accounts, rules and the messages the fetcher took (in the database)
    #[command(subcommand)]
    Mail(MailCmd),
}

#[derive(Debug, Args)]
pub struct MailFetchCmd {
    /// Only this account (default: every account, one job per account)
    #[arg(long, value_name = "ID")]
    pub account: Option<i64>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Subcommand)]
pub enum MailCmd {
    /// Mail accounts (IMAP servers and logins)
    #[command(subcommand)]
    Accounts(MailAccountsCmd),
    /// Mail rules (what to take from an account's folder, and what to do with it)
    #[command(subcommand)]
    Rules(MailRulesCmd),
    /// Messages the fetcher took (queued, done, failed), and retrying failed ones
    #[command(subcommand)]
    Messages(MailMessagesCmd),
}

#[derive(Debug, Subcommand)]
pub enum MailAccountsCmd {
    /// Add an account. The password comes from --password-file, --password-env or
    /// --password-stdin (never a command-line argument, never printed)
    Add(MailAccountAddCmd),
    /// Every account (passwords never shown)
    List,
    /// Remove an account, its rules and its fetch state
    Remove(MailIdArg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Security {
    /// Plain IMAP (code 1)
    None,
    /// Implicit TLS (code 2, the default; port 993)
    Ssl,
    /// STARTTLS (code 3; port 143)
    Starttls,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("password").required(true).args(["password_file", "password_env", "password_stdin"]))]
pub struct MailAccountAddCmd {
    /// Unique name
    #[arg(long)]
    pub name: String,
    /// IMAP server host name
    #[arg(long, value_name = "HOST")]
    pub server: String,
    /// Port (default: 993 for ssl, 143 otherwise)
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long, value_enum, default_value_t = Security::Ssl)]
    pub security: Security,
    #[arg(long)]
    pub username: String,
    /// Read the password from this file (first line)
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Read the password from this environment variable
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// The password is an OAuth access token (SASL XOAUTH2)
    #[arg(long)]
    pub token: bool,
    /// CHARSET of IMAP searches
    #[arg(long, default_value = "UTF-8")]
    pub character_set: String,
}

#[derive(Debug, Args)]
pub struct MailIdArg {
    #[arg(value_name = "ID")]
    pub id: i64,
}

#[derive(Debug, Subcommand)]
pub enum MailRulesCmd {
    /// Add a rule (defaults as paperless-ngx: INBOX, 30 days, attachments, mark read, title
    /// from the subject)
    Add(Box<MailRuleAddCmd>),
    /// Every rule, in the order they run per account
    List,
    /// Remove a rule (the messages it took stay recorded)
    Remove(MailIdArg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttachmentTypeArg {
    /// Parts with Content-Disposition `attachment` only (1)
    Attachments,
    /// Inline parts too (2)
    Everything,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// The attachments (1)
    Attachments,
    /// The whole message as one .eml document (2)
    Eml,
    /// The .eml and the attachments (3)
    Everything,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    /// Delete the message (1)
    Delete,
    /// Move it to --action-parameter (2)
    Move,
    /// Mark it read (3, the default)
    Read,
    /// Flag it (4)
    Flag,
    /// Add the keyword --action-parameter (5; `apple:<color>` for Apple Mail colours)
    Tag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TitleFromArg {
    /// The subject (1)
    Subject,
    /// The attachment's file name without extension (2)
    Filename,
    /// None: the consumer's default (the file name's stem) (3)
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CorrespondentFromArg {
    /// No correspondent (1)
    Nothing,
    /// The sender's address (2)
    Email,
    /// The sender's display name, else the address (3)
    Name,
    /// --correspondent ID (4)
    Custom,
}

#[derive(Debug, Args)]
pub struct MailRuleAddCmd {
    #[arg(long)]
    pub name: String,
    /// The account's id
    #[arg(long, value_name = "ID")]
    pub account: i64,
    /// Rules run in ascending order
    #[arg(long, default_value_t = 0)]
    pub order: i64,
    /// Add it disabled
    #[arg(long)]
    pub disabled: bool,
    #[arg(long, default_value = "INBOX")]
    pub folder: String,
    /// Server-side filters (IMAP SEARCH, case-insensitive substrings)
    #[arg(long, value_name = "TEXT")]
    pub from: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub to: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// Comma-separated globs the attachment file name must match (case-insensitive)
    #[arg(long, value_name = "GLOBS")]
    pub include: Option<String>,
    /// Comma-separated globs of attachment file names to leave out
    #[arg(long, value_name = "GLOBS")]
    pub exclude: Option<String>,
    /// Only messages of the last N days (0: no limit)
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub maximum_age: i64,
    #[arg(long, value_enum, default_value_t = AttachmentTypeArg::Attachments)]
    pub attachment_type: AttachmentTypeArg,
    #[arg(long, value_enum, default_value_t = ScopeArg::Attachments)]
    pub scope: ScopeArg,
    /// PDF layout of a rendered .eml (0..4, stored for paperless compatibility)
    #[arg(long, default_value_t = 0)]
    pub pdf_layout: i64,
    #[arg(long, value_enum, default_value_t = ActionArg::Read)]
    pub action: ActionArg,
    /// Target folder (move) or keyword (tag)
    #[arg(long, value_name = "VALUE")]
    pub action_parameter: Option<String>,
    #[arg(long, value_enum, default_value_t = TitleFromArg::Subject)]
    pub title_from: TitleFromArg,
    /// Tag ids to assign (repeat the flag)
    #[arg(long = "tag", value_name = "ID")]
    pub tags: Vec<i64>,
    /// Document type id to assign
    #[arg(long, value_name = "ID")]
    pub document_type: Option<i64>,
    #[arg(long, value_enum, default_value_t = CorrespondentFromArg::Nothing)]
    pub correspondent_from: CorrespondentFromArg,
    /// Correspondent id (with --correspondent-from custom)
    #[arg(long, value_name = "ID")]
    pub correspondent: Option<i64>,
    /// Do not give the documents the rule's owner
    #[arg(long)]
    pub no_owner_from_rule: bool,
    /// When this rule took something from a message run, the later rules do not run
    #[arg(long)]
    pub stop_processing: bool,
}

#[derive(Debug, Subcommand)]
pub enum MailMessagesCmd {
    /// Messages the fetcher took, newest first
    List(MailMessagesListCmd),
    /// Forget a failed message, so the next fetch takes it again
    Retry(MailIdArg),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MessageStateArg {
    Queued,
    Done,
    Failed,
}

#[derive(Debug, Args)]
pub struct MailMessagesListCmd {
    #[arg(long, value_name = "ID")]
    pub account: Option<i64>,
    #[arg(long, value_enum)]
    pub state: Option<MessageStateArg>,
    #[command(flatten)]
    pub limit: LimitArg,
}

#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    /// Build a fresh index from every document beside the live one and swap it in atomically;
    /// searches keep answering from the old one meanwhile
    Reindex(ReindexCmd),
    /// Merge the index's segments into one and remove unused files
    Optimize(OptimizeCmd),
    /// Queue an index update for these documents, or for every document carrying a tag,
    /// correspondent, document type or storage path (after renaming it, trashing or
    /// deleting documents outside paperboy)
    Update(IndexUpdateCmd),
}

#[derive(Debug, Args)]
pub struct IndexUpdateCmd {
    /// Document ids
    #[arg(value_name = "ID")]
    pub ids: Vec<i64>,
    /// Every document with this tag (repeatable)
    #[arg(long = "tag", value_name = "ID")]
    pub tags: Vec<i64>,
    /// Every document of this correspondent (repeatable)
    #[arg(long = "correspondent", value_name = "ID")]
    pub correspondents: Vec<i64>,
    /// Every document of this document type (repeatable)
    #[arg(long = "document-type", value_name = "ID")]
    pub document_types: Vec<i64>,
    /// Every document with this storage path (repeatable)
    #[arg(long = "storage-path", value_name = "ID")]
    pub storage_paths: Vec<i64>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct ReindexCmd {
    /// Only if the index is missing or its schema version or language differs
    #[arg(long)]
    pub if_needed: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct OptimizeCmd {
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Everything after `search`, handed to `paperboy-worker search` as it is.
#[derive(Debug, Args)]
pub struct SearchCmd {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailMode {
    Transient,
    Permanent,
}

#[derive(Debug, Args)]
pub struct PingCmd {
    /// Hold the worker this many seconds before answering
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub sleep: f64,
    /// Drill aid: make the job fail this way
    #[arg(long, hide = true, value_enum)]
    pub fail: Option<FailMode>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct ConsumeCmd {
    /// Files to consume (the originals are left where they are)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct ThumbnailsCmd {
    /// Only this document
    #[arg(long, value_name = "ID")]
    pub document: Option<i64>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct ArchiveCmd {
    /// Also re-make archive versions that exist (and retry documents noted as not archivable)
    #[arg(short = 'f', long)]
    pub overwrite: bool,
    /// Only this document
    #[arg(short = 'd', long, value_name = "ID")]
    pub document: Option<i64>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct SanityCheckCmd {
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct TrainClassifierCmd {
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct EmptyTrashCmd {
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct RenamerCmd {
    /// Only list the moves (old -> new), touch nothing; implies --wait
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct DecryptDocumentsCmd {
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `paperboy retagger`: the flags of paperless `document_retagger`. `-v` (global) lists every
/// change.
#[derive(Debug, Args)]
pub struct RetaggerCmd {
    /// Process correspondents.
    #[arg(short = 'c', long)]
    pub correspondent: bool,
    /// Process tags (capital T).
    #[arg(short = 'T', long)]
    pub tags: bool,
    /// Process document types (lower-case t).
    #[arg(short = 't', long = "document_type", visible_alias = "document-type")]
    pub document_type: bool,
    /// Process storage paths.
    #[arg(short = 's', long = "storage_path", visible_alias = "storage-path")]
    pub storage_path: bool,
    /// Only documents that have an inbox tag.
    #[arg(short = 'i', long)]
    pub inbox_only: bool,
    /// When several correspondents/types/paths match, take the first by name instead of none.
    #[arg(long)]
    pub use_first: bool,
    /// Replace set fields (clear them when nothing matches) and remove rule-managed tags that
    /// no longer match (never inbox tags or tags without a match string).
    #[arg(short = 'f', long)]
    pub overwrite: bool,
    /// Only documents with LO <= id <= HI.
    #[arg(long, num_args = 2, value_names = ["LO", "HI"])]
    pub id_range: Option<Vec<i64>>,
    /// Dry run: print what would change, change nothing (implies --wait).
    #[arg(long)]
    pub suggest: bool,
    /// With --suggest: print URL/documents/<id> links.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `--passphrase [P]`: with a value as upstream (visible in `ps`), bare to read it from
/// PAPERBOY_EXPORT_PASSPHRASE(_FILE) or, failing that, one line on stdin.
#[derive(Debug, Clone, Args)]
pub struct PassphraseArg {
    /// Encrypt (export) / decrypt (import) the sensitive fields with this passphrase
    #[arg(long, value_name = "P", num_args = 0..=1, default_missing_value = "")]
    pub passphrase: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportCmd {
    /// Target folder (must exist; the worker writes there)
    #[arg(value_name = "TARGET")]
    pub target: PathBuf,
    /// One manifest per document beside its files (`-sm`)
    #[arg(long = "split-manifest", visible_alias = "sm")]
    pub split_manifest: bool,
    /// Re-copy a file when its checksum differs, not its mtime/size
    #[arg(short = 'c', long)]
    pub compare_checksums: bool,
    /// Leave JSON files whose content is unchanged untouched (`-cj`)
    #[arg(long = "compare-json", visible_alias = "cj")]
    pub compare_json: bool,
    /// Delete what an earlier export wrote into the target and this one no longer writes; the
    /// user's own files stay (symlinks never followed)
    #[arg(short = 'd', long)]
    pub delete: bool,
    /// Name files with the storage path / PAPERBOY_FILENAME_FORMAT templates (folders included)
    #[arg(short = 'f', long)]
    pub use_filename_format: bool,
    /// No archive PDFs (`-na`)
    #[arg(long = "no-archive", visible_alias = "na")]
    pub no_archive: bool,
    /// No thumbnails (`-nt`)
    #[arg(long = "no-thumbnail", visible_alias = "nt")]
    pub no_thumbnail: bool,
    /// originals/ thumbnails/ archive/ json/ sub-folders
    #[arg(short = 'p', long)]
    pub use_folder_prefix: bool,
    /// Write a zip into TARGET instead of a folder tree
    #[arg(short = 'z', long)]
    pub zip: bool,
    /// Base name of the zip (default export-YYYY-MM-DD; `.zip` is appended) (`-zn`)
    #[arg(long = "zip-name", visible_alias = "zn", value_name = "NAME")]
    pub zip_name: Option<String>,
    /// Manifest and metadata only, no document files
    #[arg(long)]
    pub data_only: bool,
    /// Do not wait until the export is safely on disk (faster, as `cp -a`; a power loss soon
    /// after can leave it torn, which the importer refuses)
    #[arg(long)]
    pub no_sync: bool,
    /// Records per batch (paperless-ngx 3.0 flag, memory/throughput only): accepted for
    /// compatibility; paperboy streams records and pages by its own sizes
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct ImportCmd {
    /// Export folder or zip file
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// Database records only; the media folder already holds the files
    #[arg(long)]
    pub data_only: bool,
    /// Import into an archive that holds data (any id or unique name that exists aborts the whole import)
    #[arg(long)]
    pub allow_existing: bool,
    /// Do not verify file checksums against the manifest
    #[arg(long)]
    pub no_verify: bool,
    /// Records per batch (paperless-ngx 3.0 flag, memory/throughput only): accepted for
    /// compatibility; paperboy streams records and pages by its own sizes
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
    #[command(flatten)]
    pub passphrase: PassphraseArg,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Upstream's two-letter short flags (`-sm`, `-cj`, `-na`, `-nt`, `-zn`) are not clap shorts:
/// map them to their long aliases before parsing.
pub fn normalize_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some(s @ ("-sm" | "-cj" | "-na" | "-nt" | "-zn")) => format!("-{s}").into(),
            _ => a,
        })
        .collect()
}

#[derive(Debug, Subcommand)]
pub enum JobsCmd {
    /// Jobs, newest first
    List(JobsListCmd),
    /// Everything about one job: kind, arguments, state, attempts, errors, timings, result
    Show(JobIdArg),
    /// Put a dead, failed or cancelled job (or every dead job) back in its queue
    Retry(JobsRetryCmd),
    /// Cancel a waiting or scheduled job; a running job is asked to stop
    Cancel(JobIdArg),
}

/// A queue name (one per job kind).
#[derive(Debug, Clone, Args)]
pub struct QueueArg {
    /// Only this queue
    #[arg(long, value_name = "QUEUE", value_parser = clap::builder::PossibleValuesParser::new(paperboy_shared::job::all_queues()))]
    pub queue: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobsListCmd {
    /// Only jobs in this state
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub state: Option<JobState>,
    #[command(flatten)]
    pub queue: QueueArg,
    #[command(flatten)]
    pub limit: LimitArg,
}

#[derive(Debug, Clone, Args)]
pub struct LimitArg {
    /// At most N rows
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct JobIdArg {
    /// Job id (as printed when it was enqueued)
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "all_dead"]))]
pub struct JobsRetryCmd {
    /// Job id
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// Every dead job (of --queue, or of every queue)
    #[arg(long)]
    pub all_dead: bool,
    /// With --all-dead: only this queue
    #[arg(long, value_name = "QUEUE", conflicts_with = "id", value_parser = clap::builder::PossibleValuesParser::new(paperboy_shared::job::all_queues()))]
    pub queue: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DocumentsCmd {
    /// Documents in the archive (not in the trash), by id
    List(DocumentsListCmd),
    /// One document
    Show(DocumentIdArg),
}

#[derive(Debug, Args)]
pub struct DocumentsListCmd {
    /// Start after this id (the next page)
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub after: i64,
    #[command(flatten)]
    pub limit: LimitArg,
}

#[derive(Debug, Args)]
pub struct DocumentIdArg {
    /// Document id
    #[arg(value_name = "ID")]
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct SettingsCmd {
    /// The README's Markdown table (names, fallbacks, defaults, meanings)
    #[arg(long)]
    pub markdown: bool,
}

fn parse_state(s: &str) -> Result<JobState, String> {
    JobState::parse(s).ok_or_else(|| {
        let all: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown state {s:?}; one of: {}", all.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("paperboy").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn paperless_names_are_aliases() {
        let c = parse(&["document_consumer", "a.pdf"]).unwrap();
        assert!(
            matches!(c.command, Command::Consume(ref a) if a.paths == [PathBuf::from("a.pdf")])
        );
        let c = parse(&["document_thumbnails", "--document", "3"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Thumbnails(ThumbnailsCmd {
                document: Some(3),
                ..
            })
        ));
    }

    #[test]
    fn index_commands_and_the_document_index_alias() {
        let c = parse(&["document_index", "reindex", "--if-needed", "--wait"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Index(IndexCmd::Reindex(ReindexCmd { if_needed: true, ref wait })) if wait.wait
        ));
        let c = parse(&["index", "optimize"]).unwrap();
        assert!(matches!(c.command, Command::Index(IndexCmd::Optimize(_))));
        assert!(parse(&["index", "rebuild"]).is_err());
        let c = parse(&[
            "index",
            "update",
            "4",
            "7",
            "--tag",
            "2",
            "--storage-path",
            "1",
        ])
        .unwrap();
        let Command::Index(IndexCmd::Update(u)) = c.command else {
            panic!("index update expected")
        };
        assert_eq!(
            (u.ids, u.tags, u.storage_paths),
            (vec![4, 7], vec![2], vec![1])
        );
        assert!(u.correspondents.is_empty() && u.document_types.is_empty());
        let c = parse(&["search", "tag:bank", "--limit", "3", "--like", "4"]).unwrap();
        let Command::Search(s) = c.command else {
            panic!("search expected")
        };
        assert_eq!(s.args, ["tag:bank", "--limit", "3", "--like", "4"]);
    }

    #[test]
    fn file_commands_and_their_aliases() {
        let c = parse(&["document_create_classifier", "--wait"]).unwrap();
        assert!(matches!(c.command, Command::TrainClassifier(ref t) if t.wait.wait));
        let c = parse(&["empty-trash", "--wait"]).unwrap();
        assert!(matches!(c.command, Command::EmptyTrash(ref t) if t.wait.wait));
        let c = parse(&["document_archiver", "--overwrite", "--document", "7"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Archive(ArchiveCmd {
                overwrite: true,
                document: Some(7),
                ..
            })
        ));
        let c = parse(&["archive", "-f", "-d", "3", "--wait"]).unwrap();
        assert!(
            matches!(c.command, Command::Archive(ref a) if a.overwrite && a.document == Some(3) && a.wait.wait)
        );
        let c = parse(&["document_sanity_checker", "--wait"]).unwrap();
        assert!(matches!(c.command, Command::SanityCheck(ref s) if s.wait.wait));
        let c = parse(&["document_renamer", "--dry-run"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Renamer(RenamerCmd { dry_run: true, .. })
        ));
        let c = parse(&["decrypt_documents"]).unwrap();
        assert!(matches!(c.command, Command::DecryptDocuments(_)));
        assert!(parse(&["sanity-check", "--passphrase", "x"]).is_err());
        assert!(
            parse(&["decrypt-documents", "--passphrase", "x"]).is_err(),
            "never on the command line"
        );
    }

    #[test]
    fn global_flags_go_anywhere_and_wait_flags_are_shared() {
        let c = parse(&[
            "ping",
            "--json",
            "--prefix",
            "x",
            "--wait",
            "--timeout",
            "1.5",
        ])
        .unwrap();
        assert!(c.global.json);
        assert_eq!(c.global.prefix.as_deref(), Some("x"));
        let Command::Ping(p) = c.command else {
            panic!("ping expected")
        };
        assert!(p.wait.wait);
        assert_eq!(p.wait.timeout, Some(1.5));
        let c = parse(&[
            "--redis-url",
            "redis://h:1",
            "thumbnails",
            "--no-progress-bar",
        ])
        .unwrap();
        assert_eq!(c.global.redis_url.as_deref(), Some("redis://h:1"));
    }

    #[test]
    fn retagger_flags_as_upstream() {
        let c = parse(&[
            "document_retagger",
            "-c",
            "-T",
            "-t",
            "-s",
            "-i",
            "--use-first",
            "-f",
        ])
        .unwrap();
        let Command::Retagger(r) = c.command else {
            panic!("retagger expected")
        };
        assert!(r.correspondent && r.tags && r.document_type && r.storage_path);
        assert!(r.inbox_only && r.use_first && r.overwrite && !r.suggest);
        let c = parse(&["retagger", "--tags", "--id-range", "1", "2", "--suggest"]).unwrap();
        let Command::Retagger(r) = c.command else {
            panic!("retagger expected")
        };
        assert_eq!(r.id_range, Some(vec![1, 2]));
        assert!(r.suggest && r.tags);
        // R10: --id-range needs exactly two integers.
        assert!(parse(&["retagger", "--tags", "--id-range"]).is_err());
        assert!(parse(&["retagger", "--tags", "--id-range", "a", "b"]).is_err());
        assert!(parse(&["retagger", "--tags", "--id-range", "1"]).is_err());
        // -v is the global verbose flag.
        assert_eq!(parse(&["retagger", "-T", "-v"]).unwrap().global.verbose, 1);
    }

    #[test]
    fn bad_usage_is_refused() {
        assert!(parse(&["frobnicate"]).is_err());
        assert!(parse(&["consume"]).is_err(), "consume needs a path");
        assert!(
            parse(&["jobs", "retry"]).is_err(),
            "retry needs an id or --all-dead"
        );
        assert!(parse(&["jobs", "retry", "X", "--all-dead"]).is_err());
        assert!(parse(&["jobs", "retry", "X", "--queue", "ping"]).is_err());
        assert!(parse(&["jobs", "list", "--state", "sleeping"]).is_err());
        assert!(parse(&["jobs", "list", "--queue", "nosuchqueue"]).is_err());
        assert!(parse(&["ping", "--fail", "sometimes"]).is_err());
        let c = parse(&["jobs", "retry", "--all-dead", "--queue", "ping"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Jobs(JobsCmd::Retry(JobsRetryCmd { all_dead: true, .. }))
        ));
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for code in [
            "0  done",
            "2  usage",
            "3  Redis unreachable",
            "4  --wait gave up",
        ] {
            assert!(help.contains(code), "{code} missing from --help");
        }
    }
}

#[cfg(test)]
mod transfer_tests {
    use super::*;

    #[test]
    fn upstream_short_flags_parse() {
        let argv = [
            "paperboy",
            "document_exporter",
            "/t",
            "-sm",
            "-c",
            "-cj",
            "-d",
            "-na",
            "-nt",
            "-p",
            "-z",
            "-zn",
            "x",
            "--data-only",
            "--no-progress-bar",
        ];
        let cli = Cli::parse_from(normalize_args(argv.iter().map(std::ffi::OsString::from)));
        let Command::Export(e) = cli.command else {
            panic!("not export")
        };
        assert!(e.split_manifest && e.compare_checksums && e.compare_json && e.delete);
        assert!(e.no_archive && e.no_thumbnail && e.use_folder_prefix && e.zip && e.data_only);
        assert!(e.wait.no_progress_bar);
        assert_eq!(e.zip_name.as_deref(), Some("x"));
        assert_eq!(e.passphrase.passphrase, None);
        assert!(!e.no_sync, "durable unless asked");
        let cli = Cli::parse_from(["paperboy", "export", "/t", "--no-sync"]);
        let Command::Export(e) = cli.command else {
            panic!("not export")
        };
        assert!(e.no_sync);
        let cli = Cli::parse_from(["paperboy", "import", "/s", "--passphrase"]);
        let Command::Import(i) = cli.command else {
            panic!("not import")
        };
        assert_eq!(i.passphrase.passphrase.as_deref(), Some(""));
    }

    /// Spec §8 case 36: `--batch-size N` is accepted (by both commands); 0 is refused.
    #[test]
    fn batch_size_is_accepted() {
        let cli = Cli::parse_from(["paperboy", "document_importer", "/s", "--batch-size", "100"]);
        let Command::Import(i) = cli.command else {
            panic!("not import")
        };
        assert_eq!(i.batch_size, Some(100));
        let cli = Cli::parse_from(["paperboy", "export", "/t", "--batch-size", "1"]);
        let Command::Export(e) = cli.command else {
            panic!("not export")
        };
        assert_eq!(e.batch_size, Some(1));
        assert!(Cli::try_parse_from(["paperboy", "import", "/s", "--batch-size", "0"]).is_err());
    }
}
