//! The closed set of jobs paperboy runs, their payloads and per-kind policy.
//!
//! Adding a job kind: add a variant to [`Job`] and [`JobKind`]; the compiler then points at every
//! place that must handle it (policy below, the worker's dispatch, the CLI).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A job and its arguments, as stored in Redis (`{"kind": "...", "args": {...}}`).
///
/// Arguments live in Redis in clear: never put a secret here (the export passphrase, a mail
/// password); pass a reference to where the worker can read it instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "args", rename_all = "snake_case")]
pub enum Job {
    /// A round trip through a worker (`celery inspect ping`); `sleep_ms` holds the worker.
    Ping {
        #[serde(default)]
        sleep_ms: u64,
        /// Test and drill aid: fail this way instead of answering (`transient` or `permanent`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fail: Option<String>,
    },
    /// Consume one staged file into the archive.
    Consume(ConsumeArgs),
    /// Regenerate thumbnails: one document, an explicit batch, or (neither) every document,
    /// which fans out into batches.
    Thumbnails {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<Vec<i64>>,
    },
    /// Check every document's files (`document_sanity_checker`): fans out
    /// [`Job::SanityCheckBatch`] jobs, looks for orphaned files, and gathers the report.
    SanityCheck {},
    /// The file checks of some documents (part of a [`Job::SanityCheck`]).
    SanityCheckBatch { ids: Vec<i64> },
    /// Move every document's files to the names their templates give now
    /// (`document_renamer`): fans out batches (`batch: Some(ids)`); `dry_run` only lists the
    /// moves.
    Renamer {
        #[serde(default)]
        dry_run: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<Vec<i64>>,
    },
    /// Decrypt the files of GnuPG-era documents (`decrypt_documents`). The passphrase is the
    /// worker's `PAPERBOY_PASSPHRASE` setting, never an argument.
    DecryptDocuments {},
    /// Re-apply matching rules (and classifier predictions) to existing documents
    /// (`document_retagger`): pages the document ids and fans out [`Job::RetaggerBatch`] jobs,
    /// then waits for them and sums their counts.
    Retagger(RetagArgs),
    /// One batch of the retagger: these ids, changed in one transaction.
    RetaggerBatch { args: RetagArgs, ids: Vec<i64> },
    /// Train the Auto classifier (`document_create_classifier`): skipped when its training
    /// data did not change; removes the model when no object uses AUTO.
    TrainClassifier {},
    /// Export the archive to a folder (or a zip in it), paperless-ngx 3.0.5 format.
    Export(ExportArgs),
    /// Import a paperless-ngx / paperboy export (folder or zip) into the archive.
    Import(ImportArgs),
    /// Build a fresh full-text index beside the live one from every live document and swap it
    /// in atomically (`document_index reindex`); `if_needed`: only when the stored schema
    /// version or language differs (or there is no index).
    IndexReindex {
        #[serde(default)]
        if_needed: bool,
    },
    /// Merge the index's segments into one and remove unused files (`document_index optimize`).
    IndexOptimize {},
    /// Bring these documents' index entries up to date: added or replaced from their rows,
    /// removed when the row is gone or in the trash. Queued by every job that changes
    /// documents (retagger batches, archive, trash, `paperboy index update`). Empty `ids`: take
    /// the ids waiting in the pending set [`INDEX_PENDING`] (consume adds there), in batches:
    /// many consumed documents, few commits.
    IndexUpdate { ids: Vec<i64> },
    /// Make searchable PDF/A archive versions (`document_archiver`, queue `archive_run`): the
    /// run pages the documents that need one (all of them with `overwrite`; only `document` if
    /// given) and fans out one [`Job::ArchiveDocument`] each, waits for them and sums up.
    Archive {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document: Option<i64>,
        #[serde(default)]
        overwrite: bool,
    },
    /// The archive version of one document (part of a [`Job::Archive`]; queue `archive`, where
    /// the OCR workers are).
    ArchiveDocument {
        document: i64,
        #[serde(default)]
        overwrite: bool,
    },
    /// Fetch mail (`mail_fetcher`): one account, or (none) every account, which fans out one
    /// unique job per account. Passwords stay in the database, never in the arguments.
    MailFetch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<i64>,
    },
    /// Delete for good the documents that have been in the trash longer than
    /// `PAPERBOY_EMPTY_TRASH_DELAY` days, with their files (paperless-ngx's `empty_trash`).
    EmptyTrash {},
}

/// Arguments of an export job (paperless-ngx `document_exporter` flags).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportArgs {
    /// Target folder (absolute), as the worker sees it.
    pub target: String,
    pub split_manifest: bool,
    pub compare_checksums: bool,
    pub compare_json: bool,
    pub delete: bool,
    pub use_filename_format: bool,
    pub no_archive: bool,
    pub no_thumbnail: bool,
    pub use_folder_prefix: bool,
    pub zip: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_name: Option<String>,
    pub data_only: bool,
    /// Do not wait for the files to reach the disk (`--no-sync`, as `pg_dump --no-sync`): the
    /// export ends as soon as everything is written to the page cache, as `cp -a` and upstream
    /// do; a power loss soon after can leave it torn (the importer refuses it: checksums).
    pub no_sync: bool,
    /// Name of a file under `DATA_DIR/secrets/` holding the passphrase (never the passphrase:
    /// job arguments live in Redis). The worker removes it when the job ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<String>,
}

/// Arguments of an import job (paperless-ngx `document_importer` flags).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportArgs {
    /// Source folder or zip file (absolute), as the worker sees it.
    pub source: String,
    pub data_only: bool,
    /// Import into an archive that already holds data; any record whose pk (or unique name)
    /// exists already aborts the whole import, nothing is overwritten.
    pub allow_existing: bool,
    /// Do not verify file checksums (they are verified by default).
    pub no_verify: bool,
    /// As [`ExportArgs::passphrase_file`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<String>,
}

/// The retagger's flags (paperless `document_retagger`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetagArgs {
    #[serde(default)]
    pub correspondent: bool,
    #[serde(default)]
    pub tags: bool,
    #[serde(default)]
    pub document_type: bool,
    #[serde(default)]
    pub storage_path: bool,
    /// Only documents with an inbox tag.
    #[serde(default)]
    pub inbox_only: bool,
    /// Several candidates: take the first by name instead of leaving the field alone.
    #[serde(default)]
    pub use_first: bool,
    /// Replace set fields (clear them when nothing matches); remove rule-managed tags that no
    /// longer match.
    #[serde(default)]
    pub overwrite: bool,
    /// Inclusive id bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_range: Option<(i64, i64)>,
    /// Dry run: report what would change, change nothing.
    #[serde(default)]
    pub suggest: bool,
}

/// What the retagger says without any of `-c -T -t -s` (upstream v3's words).
pub const RETAG_NO_TARGETS: &str =
    "No classifier targets specified. Use -c, -T, -t, or -s to select what to retag.";

impl RetagArgs {
    /// Whether any of `-c -T -t -s` was given.
    pub fn has_target(&self) -> bool {
        self.correspondent || self.tags || self.document_type || self.storage_path
    }
}

/// Arguments of a consume job. The file was copied by the CLI (or the folder watcher) into the
/// staging area on shared storage, so any worker can read it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConsumeArgs {
    /// Path of the staged file, relative to `DATA_DIR/staging`.
    pub staged: String,
    /// The file's name as the user had it (title, date from the name, original_filename).
    pub original_filename: String,
    /// Tags to add (ids), e.g. from sub-folders of the consumption folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<i64>,
    /// Where the file came from, if it was picked up from the consumption folder; moved to the
    /// failed folder there when consuming fails permanently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The title to give the document instead of the file name's stem (mail rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The correspondent to assign (mail rules); wins over the matching rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correspondent: Option<i64>,
    /// The document type to assign (mail rules); wins over the matching rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<i64>,
    /// The owner to give the document (mail rules with `assign_owner_from_rule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<i64>,
}

/// The kind of a job, without its arguments: queue routing, metrics labels, policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Ping,
    Consume,
    Thumbnails,
    SanityCheck,
    SanityCheckBatch,
    Renamer,
    DecryptDocuments,
    Retagger,
    RetaggerBatch,
    TrainClassifier,
    Export,
    Import,
    IndexReindex,
    IndexOptimize,
    IndexUpdate,
    Archive,
    ArchiveDocument,
    MailFetch,
    EmptyTrash,
}

/// How a kind is retried and scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures (errors returned by the handler) before the job is dead.
    pub max_attempts: u32,
    /// Starts without an end (the worker died) before the job is treated as poison and dead.
    pub max_starts: u32,
    /// First retry delay; doubled each attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// CPU-bound: default concurrency is the number of cores.
    pub cpu_heavy: bool,
}

const DEFAULT_POLICY: Policy = Policy {
    max_attempts: 5,
    max_starts: 3,
    backoff_base: Duration::from_secs(2),
    backoff_max: Duration::from_secs(600),
    cpu_heavy: false,
};

impl JobKind {
    pub const ALL: &'static [JobKind] = &[
        JobKind::Ping,
        JobKind::Consume,
        JobKind::Thumbnails,
        JobKind::SanityCheck,
        JobKind::SanityCheckBatch,
        JobKind::Renamer,
        JobKind::DecryptDocuments,
        JobKind::Retagger,
        JobKind::RetaggerBatch,
        JobKind::TrainClassifier,
        JobKind::Export,
        JobKind::Import,
        JobKind::IndexReindex,
        JobKind::IndexOptimize,
        JobKind::IndexUpdate,
        JobKind::Archive,
        JobKind::ArchiveDocument,
        JobKind::MailFetch,
        JobKind::EmptyTrash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobKind::Ping => "ping",
            JobKind::Consume => "consume",
            JobKind::Thumbnails => "thumbnails",
            JobKind::SanityCheck => "sanity_check",
            JobKind::SanityCheckBatch => "sanity_check_batch",
            JobKind::Renamer => "renamer",
            JobKind::DecryptDocuments => "decrypt_documents",
            JobKind::Retagger => "retagger",
            JobKind::RetaggerBatch => "retagger_batch",
            JobKind::TrainClassifier => "train_classifier",
            JobKind::Export => "export",
            JobKind::Import => "import",
            JobKind::IndexReindex => "index_reindex",
            JobKind::IndexOptimize => "index_optimize",
            JobKind::IndexUpdate => "index_update",
            JobKind::Archive => "archive",
            JobKind::ArchiveDocument => "archive_document",
            JobKind::MailFetch => "mail_fetch",
            JobKind::EmptyTrash => "empty_trash",
        }
    }

    pub fn from_name(name: &str) -> Option<JobKind> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The queue this kind runs on. One queue per kind, so workers can pick kinds with
    /// `--queues` and heavy kinds never starve light ones. The exceptions: the index kinds
    /// share the queue `index` (one writer: see [`JobKind::single_consumer`]); the archiver's
    /// per-document OCR jobs run on `archive` (the queue the deployment files scale OCR
    /// workers on), and its run, which only pages and waits, on `archive_run`.
    pub fn queue(self) -> &'static str {
        match self {
            JobKind::IndexReindex | JobKind::IndexOptimize | JobKind::IndexUpdate => INDEX_QUEUE,
            JobKind::Archive => "archive_run",
            JobKind::ArchiveDocument => "archive",
            JobKind::MailFetch => "mail",
            k => k.name(),
        }
    }

    /// A worker runs jobs of this kind's queue one at a time, whatever its concurrency
    /// setting (the index has one writer; across workers a Redis lease guards it).
    pub fn single_consumer(self) -> bool {
        self.queue() == INDEX_QUEUE
    }

    pub fn policy(self) -> Policy {
        match self {
            JobKind::Ping => Policy {
                max_attempts: 3,
                backoff_base: Duration::from_millis(200),
                ..DEFAULT_POLICY
            },
            JobKind::Consume => DEFAULT_POLICY,
            JobKind::Thumbnails | JobKind::SanityCheckBatch => Policy {
                cpu_heavy: true,
                ..DEFAULT_POLICY
            },
            // The coordinator waits for its batches; a crash re-runs it (the checks are
            // read-only, so running them twice is harmless).
            JobKind::SanityCheck => Policy {
                max_attempts: 2,
                ..DEFAULT_POLICY
            },
            JobKind::Renamer | JobKind::DecryptDocuments => DEFAULT_POLICY,
            // The parent only pages ids and waits; its batches redo their work on a retry
            // (each batch commits in one transaction and recomputes from the rows).
            JobKind::Retagger => DEFAULT_POLICY,
            JobKind::RetaggerBatch => Policy {
                cpu_heavy: true,
                ..DEFAULT_POLICY
            },
            // Training reads the archive twice and replaces one file atomically: a retry
            // starts over.
            JobKind::TrainClassifier => Policy {
                max_attempts: 3,
                cpu_heavy: true,
                ..DEFAULT_POLICY
            },
            // An import is all or nothing and validates first: a retry only helps for
            // transient database errors.
            JobKind::Export | JobKind::Import => Policy {
                max_attempts: 3,
                max_starts: 2,
                ..DEFAULT_POLICY
            },
            // A rebuild that failed leaves the live index answering; retrying a few times is
            // enough (a busy writer lease is one of the transient causes).
            JobKind::IndexReindex | JobKind::IndexOptimize => Policy {
                max_attempts: 5,
                backoff_base: Duration::from_secs(5),
                backoff_max: Duration::from_secs(120),
                ..DEFAULT_POLICY
            },
            // An update whose writer lease is held elsewhere (a long reindex) is retried with
            // backoff up to 60 s: 20 attempts wait out a reindex of roughly 15 minutes.
            JobKind::IndexUpdate => Policy {
                max_attempts: 20,
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(60),
                ..DEFAULT_POLICY
            },
            // The run only pages ids and waits (its own queue, so it never holds a slot its
            // documents need); a re-run skips what is archived already.
            JobKind::Archive => Policy {
                max_attempts: 3,
                ..DEFAULT_POLICY
            },
            // OCR: CPU-bound. A document that kills its worker twice is poison.
            JobKind::ArchiveDocument => Policy {
                max_attempts: 3,
                max_starts: 2,
                cpu_heavy: true,
                ..DEFAULT_POLICY
            },
            // A fetch resumes from its rows (queued messages are waited for, not queued
            // again), so retries are cheap; the next scheduled run also picks up where it ended.
            JobKind::MailFetch => Policy {
                max_attempts: 5,
                backoff_base: Duration::from_secs(5),
                backoff_max: Duration::from_secs(300),
                ..DEFAULT_POLICY
            },
            // Each document is deleted on its own (intent file, row, files): a retry finishes
            // what a failed or killed run began.
            JobKind::EmptyTrash => DEFAULT_POLICY,
        }
    }
}

/// The queue of the full-text index jobs.
pub const INDEX_QUEUE: &str = "index";
/// The pending set (of queue `index`) of documents waiting for an index update.
pub const INDEX_PENDING: &str = "documents";

/// Every queue name, in a stable order.
pub fn all_queues() -> Vec<&'static str> {
    let mut q: Vec<_> = JobKind::ALL.iter().map(|k| k.queue()).collect();
    q.dedup();
    q
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Ping { .. } => JobKind::Ping,
            Job::Consume(_) => JobKind::Consume,
            Job::Thumbnails { .. } => JobKind::Thumbnails,
            Job::SanityCheck {} => JobKind::SanityCheck,
            Job::SanityCheckBatch { .. } => JobKind::SanityCheckBatch,
            Job::Renamer { .. } => JobKind::Renamer,
            Job::DecryptDocuments {} => JobKind::DecryptDocuments,
            Job::Retagger(_) => JobKind::Retagger,
            Job::RetaggerBatch { .. } => JobKind::RetaggerBatch,
            Job::TrainClassifier {} => JobKind::TrainClassifier,
            Job::Export(_) => JobKind::Export,
            Job::Import(_) => JobKind::Import,
            Job::IndexReindex { .. } => JobKind::IndexReindex,
            Job::IndexOptimize {} => JobKind::IndexOptimize,
            Job::IndexUpdate { .. } => JobKind::IndexUpdate,
            Job::Archive { .. } => JobKind::Archive,
            Job::ArchiveDocument { .. } => JobKind::ArchiveDocument,
            Job::MailFetch { .. } => JobKind::MailFetch,
            Job::EmptyTrash {} => JobKind::EmptyTrash,
        }
    }

    /// Jobs with equal keys never wait or run twice at once: enqueueing while one is queued or
    /// running returns the existing job's id.
    pub fn unique_key(&self) -> Option<String> {
        match self {
            Job::Ping { .. } => None,
            Job::Consume(a) => Some(format!("consume:{}", a.staged)),
            Job::Thumbnails {
                document: None,
                batch: None,
            } => Some("thumbnails:all".into()),
            Job::Thumbnails { .. } => None,
            Job::SanityCheck {} => Some("sanity_check".into()),
            Job::SanityCheckBatch { .. } => None,
            // One renaming run at a time (a dry run may run beside it).
            Job::Renamer {
                dry_run: false,
                batch: None,
            } => Some("renamer:all".into()),
            Job::Renamer { .. } => None,
            Job::DecryptDocuments {} => Some("decrypt_documents".into()),
            // One retagger over the archive at a time (two would race on the same rows).
            Job::Retagger(_) => Some("retagger".into()),
            Job::RetaggerBatch { .. } => None,
            Job::TrainClassifier {} => Some("train_classifier".into()),
            Job::Export(a) => Some(format!("export:{}", a.target)),
            // One import at a time into an archive.
            Job::Import(_) => Some("import".into()),
            // One rebuild (and one optimize) queued or running at a time.
            Job::IndexReindex { .. } => Some("index_reindex".into()),
            Job::IndexOptimize {} => Some("index_optimize".into()),
            Job::IndexUpdate { .. } => None,
            // One run over the archive at a time; one job per document at a time.
            Job::Archive { document: None, .. } => Some("archive:all".into()),
            Job::Archive {
                document: Some(d), ..
            } => Some(format!("archive:run:{d}")),
            Job::ArchiveDocument { document, .. } => Some(format!("archive:{document}")),
            // Never two fetches of one account at once; one fan-out at a time.
            Job::MailFetch { account: Some(a) } => Some(format!("mail_fetch:{a}")),
            Job::MailFetch { account: None } => Some("mail_fetch:all".into()),
            Job::EmptyTrash {} => Some("empty_trash".into()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Job always serializes")
    }
}

/// Delay before retry number `attempt` (1-based): `base · 2^(attempt-1)`, capped, with ±25 %
/// jitter so that a burst of failures does not come back as a burst.
pub fn backoff(policy: &Policy, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = policy.backoff_base.as_secs_f64() * 2f64.powi(exp as i32);
    let capped = raw.min(policy.backoff_max.as_secs_f64());
    let factor = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
    Duration::from_secs_f64(capped * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_serialize_with_kind_and_args() {
        let j = Job::Ping {
            sleep_ms: 5,
            fail: None,
        };
        assert_eq!(j.to_json(), r#"{"kind":"ping","args":{"sleep_ms":5}}"#);
        let back: Job = serde_json::from_str(&j.to_json()).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn the_archivers_documents_run_on_the_archive_queue() {
        assert_eq!(JobKind::ArchiveDocument.queue(), "archive");
        assert_eq!(JobKind::Archive.queue(), "archive_run");
        let q = all_queues();
        let mut unique = q.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), q.len(), "no queue twice: {q:?}");
    }

    #[test]
    fn every_kind_round_trips_its_name() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::from_name(k.name()), Some(*k));
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = Policy {
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(10),
            ..DEFAULT_POLICY
        };
        assert_eq!(backoff(&p, 1, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(&p, 2, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(&p, 3, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(&p, 9, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(1500));
        assert_eq!(backoff(&p, 1, 1.0), Duration::from_millis(2500));
    }

    #[test]
    fn whole_archive_thumbnail_runs_are_unique_single_ones_not() {
        let all = Job::Thumbnails {
            document: None,
            batch: None,
        };
        assert_eq!(all.unique_key().as_deref(), Some("thumbnails:all"));
        let one = Job::Thumbnails {
            document: Some(4),
            batch: None,
        };
        assert_eq!(one.unique_key(), None);
    }
}
