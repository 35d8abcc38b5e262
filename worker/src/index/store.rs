//! The index on disk: generations beside each other, one pointer file naming the live one.
//!
//! ```text
//! DATA_DIR/index/
//!   current.json     {"generation": "gen-<ulid>", "schema_version": 1, "language": "en", ...}
//!                    written temp + fsync + rename + fsync of the folder: the swap
//!   gen-<ulid>/      a Tantivy index (the live one, and a reindex being built beside it)
//! ```
//!
//! A reindex fills a new generation and only then rewrites the pointer, so a reindex that dies
//! leaves the pointer (and every search) on the old generation; the half-built folder is
//! removed by the next reindex. Readers open whatever the pointer names, without any lock.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tantivy::indexer::LogMergePolicy;
use tantivy::schema::Term;
use tantivy::tokenizer::Language;
use tantivy::{Index, IndexWriter, TantivyDocument};

use paperboy_shared::config::Config;
use paperboy_shared::db::index::IndexRow;

use super::IndexError;
use super::doc::DocBuilder;
use super::schema::{self, Fields, SCHEMA_VERSION};

/// The pointer file's name inside the index folder.
pub const POINTER: &str = "current.json";
/// Prefix of generation folders.
const GEN_PREFIX: &str = "gen-";
/// Memory of one writer (all its threads), bytes. paperless uses 512 MB; two threads of 64 MB
/// keep a 2-core worker's footprint small and still make few segments.
const WRITER_HEAP: usize = 128_000_000;
const WRITER_THREADS: usize = 2;
/// Segments up to this many documents are merged in the background.
const SMALL_SEGMENT_DOCS: usize = 1_000;

/// Where the index lives and how it tokenizes.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    pub dir: PathBuf,
    pub language: Option<Language>,
}

impl IndexSettings {
    /// `DATA_DIR/index`; the language from `PAPERBOY_SEARCH_LANGUAGE`, else from the first OCR
    /// language (none when it has no stemmer). An invalid explicit language is an error.
    pub fn from_config(c: &Config) -> Result<IndexSettings, IndexError> {
        let language = match &c.search_language {
            Some(v) => Some(schema::parse_language(v).map_err(IndexError::Settings)?),
            None => schema::language_from_ocr(&c.ocr_language),
        };
        Ok(IndexSettings {
            dir: c.data_dir.join("index"),
            language,
        })
    }

    pub fn language_code(&self) -> Option<String> {
        self.language.map(|l| schema::language_code(l).to_string())
    }
}

/// What the pointer file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pointer {
    pub generation: String,
    pub schema_version: u32,
    pub language: Option<String>,
    /// Documents written by the reindex that built it.
    #[serde(default)]
    pub documents: u64,
    #[serde(default)]
    pub built_at: String,
}

/// Reads the pointer; None when it is missing or unreadable.
pub fn read_pointer(dir: &Path) -> Option<Pointer> {
    let bytes = std::fs::read(dir.join(POINTER)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why the index needs a rebuild (None: it is current).
pub fn needs_rebuild(s: &IndexSettings) -> Option<String> {
    let Some(p) = read_pointer(&s.dir) else {
        return Some("there is no index yet".into());
    };
    if p.schema_version != SCHEMA_VERSION {
        return Some(format!(
            "the index has schema version {}, this paperboy writes {SCHEMA_VERSION}",
            p.schema_version
        ));
    }
    if p.language != s.language_code() {
        return Some(format!(
            "the index was built for language {:?}, the setting is {:?}",
            p.language,
            s.language_code()
        ));
    }
    if !s.dir.join(&p.generation).join("meta.json").is_file() {
        return Some(format!("the generation {} is missing", p.generation));
    }
    None
}

/// An opened generation.
pub struct Opened {
    pub index: Index,
    pub fields: Fields,
    pub pointer: Pointer,
}

/// Opens the live generation (None when a rebuild is needed).
pub fn open_live(s: &IndexSettings) -> Result<Option<Opened>, IndexError> {
    if needs_rebuild(s).is_some() {
        return Ok(None);
    }
    let Some(pointer) = read_pointer(&s.dir) else {
        return Ok(None);
    };
    let path = s.dir.join(&pointer.generation);
    let index = Index::open_in_dir(&path).map_err(|e| IndexError::tantivy("open", &path, e))?;
    schema::register(&index, s.language);
    let fields = schema::fields_of(&index.schema()).ok_or_else(|| {
        IndexError::Corrupt(format!(
            "{} does not have the paperless schema",
            path.display()
        ))
    })?;
    Ok(Some(Opened {
        index,
        fields,
        pointer,
    }))
}

/// The fencing term a commit stored (its payload), 0 if none.
fn committed_term(index: &Index) -> Result<u64, IndexError> {
    let meta = index
        .load_metas()
        .map_err(|e| IndexError::tantivy("read the metadata of", Path::new("index"), e))?;
    Ok(meta
        .payload
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|v| v.get("term").and_then(|t| t.as_u64()))
        .unwrap_or(0))
}

/// The one writer of a generation, holding the writer lease's fencing term: it refuses to
/// commit over a commit of a later term.
pub struct Writer {
    index: Index,
    fields: Fields,
    writer: IndexWriter,
    term: u64,
    docs: DocBuilder,
    path: PathBuf,
}

impl Writer {
    pub fn open(
        index: &Index,
        fields: Fields,
        term: u64,
        path: &Path,
    ) -> Result<Writer, IndexError> {
        let seen = committed_term(index)?;
        if seen > term {
            return Err(IndexError::Fenced { mine: term, seen });
        }
        let writer = index
            .writer_with_num_threads::<TantivyDocument>(WRITER_THREADS, WRITER_HEAP)
            .map_err(|e| IndexError::tantivy("open a writer on", path, e))?;
        // Background merges only among small segments (those of updates): merging a large
        // segment would rewrite most of the index after a one-document update. A reindex
        // merges everything once at its end, `optimize` on demand.
        let mut policy = LogMergePolicy::default();
        policy.set_max_docs_before_merge(SMALL_SEGMENT_DOCS);
        writer.set_merge_policy(Box::new(policy));
        Ok(Writer {
            index: index.clone(),
            fields,
            writer,
            term,
            docs: DocBuilder::new(fields),
            path: path.to_path_buf(),
        })
    }

    /// Replaces (or adds) these documents.
    pub fn upsert(&mut self, rows: &[IndexRow]) -> Result<(), IndexError> {
        for r in rows {
            self.delete(r.document.id);
            let doc = self.docs.build(r);
            self.writer
                .add_document(doc)
                .map_err(|e| IndexError::tantivy("add a document to", &self.path, e))?;
        }
        Ok(())
    }

    /// Adds documents to a fresh index (no delete needed).
    pub fn add(&mut self, rows: &[IndexRow]) -> Result<(), IndexError> {
        for r in rows {
            let doc = self.docs.build(r);
            self.writer
                .add_document(doc)
                .map_err(|e| IndexError::tantivy("add a document to", &self.path, e))?;
        }
        Ok(())
    }

    pub fn delete(&mut self, id: i64) {
        self.writer
            .delete_term(Term::from_field_u64(self.fields.id, id as u64));
    }

    /// Commits with this writer's term as payload, unless a later term committed meanwhile.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        let seen = committed_term(&self.index)?;
        if seen > self.term {
            let _ = self.writer.rollback();
            return Err(IndexError::Fenced {
                mine: self.term,
                seen,
            });
        }
        let mut prepared = self
            .writer
            .prepare_commit()
            .map_err(|e| IndexError::tantivy("commit", &self.path, e))?;
        prepared.set_payload(&serde_json::json!({ "term": self.term }).to_string());
        prepared
            .commit()
            .map_err(|e| IndexError::tantivy("commit", &self.path, e))?;
        Ok(())
    }

    /// Merges every searchable segment into one (optimize).
    pub fn merge_all(&mut self) -> Result<(usize, usize), IndexError> {
        let ids = self
            .index
            .searchable_segment_ids()
            .map_err(|e| IndexError::tantivy("list the segments of", &self.path, e))?;
        let before = ids.len();
        if before > 1 {
            self.writer
                .merge(&ids)
                .wait()
                .map_err(|e| IndexError::tantivy("merge the segments of", &self.path, e))?;
        }
        let after = self
            .index
            .searchable_segment_ids()
            .map(|s| s.len())
            .unwrap_or(0);
        Ok((before, after))
    }

    /// Removes files no commit uses any more.
    pub fn garbage_collect(&mut self) -> Result<usize, IndexError> {
        let r = self
            .writer
            .garbage_collect_files()
            .wait()
            .map_err(|e| IndexError::tantivy("garbage-collect", &self.path, e))?;
        Ok(r.deleted_files.len())
    }

    /// Waits for background merges and closes the writer (its lock file goes).
    pub fn finish(self) -> Result<(), IndexError> {
        let path = self.path.clone();
        self.writer
            .wait_merging_threads()
            .map_err(|e| IndexError::tantivy("finish merges of", &path, e))
    }
}

/// A new, empty generation folder with the schema (not yet pointed at).
pub fn create_generation(s: &IndexSettings) -> Result<(String, Opened), IndexError> {
    let name = format!("{GEN_PREFIX}{}", ulid::Ulid::new());
    let path = s.dir.join(&name);
    std::fs::create_dir_all(&path).map_err(|e| IndexError::Io {
        action: "create",
        path: path.clone(),
        source: e,
    })?;
    let (schema, fields) = schema::build();
    let index =
        Index::create_in_dir(&path, schema).map_err(|e| IndexError::tantivy("create", &path, e))?;
    schema::register(&index, s.language);
    let pointer = Pointer {
        generation: name.clone(),
        schema_version: SCHEMA_VERSION,
        language: s.language_code(),
        documents: 0,
        built_at: String::new(),
    };
    Ok((
        name,
        Opened {
            index,
            fields,
            pointer,
        },
    ))
}

/// Makes `p` the live generation: the pointer written atomically (temp, fsync, rename, fsync
/// of the folder).
pub fn swap_to(s: &IndexSettings, p: &Pointer) -> Result<(), IndexError> {
    let bytes = serde_json::to_vec_pretty(p).expect("a pointer serializes");
    paperboy_shared::media::write_atomic(&s.dir.join(POINTER), &bytes)
        .map_err(|e| IndexError::Write(e.to_string()))
}

/// Removes every generation folder but `keep` (and leftovers of interrupted reindexes).
/// Returns the names removed.
pub fn remove_generations_except(s: &IndexSettings, keep: &[&str]) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(&s.dir) else {
        return removed;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(GEN_PREFIX) && !keep.contains(&name.as_str()) {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => removed.push(name),
                Err(err) => {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove an old index generation")
                }
            }
        }
    }
    removed
}
