//! Matching rules of correspondents, tags, document types and storage paths, with
//! paperless-ngx 3.0.5's semantics (`../shared/specs/matching-index-files.md` §1).
//!
//! A [`Rule`] is compiled once per object (regexes built up front) and then asked
//! [`Rule::matches`] for any number of documents. Only the document's (effective) content is
//! matched. An empty or blank `match` never matches, whatever the algorithm.
//!
//! - ANY (1) / ALL (2): the match string is split into terms (double-quoted phrases or runs of
//!   non-whitespace); each term is regex-escaped, its inner whitespace becomes `\s+`, and it is
//!   searched as `\b…\b`. ANY: one term found; ALL: every term found.
//! - LITERAL (3): the whole match string as stored, escaped, as `\b…\b`.
//! - REGEX (4): the user's pattern (Python `regex` module syntax: look-around and
//!   back-references work, through `fancy-regex`), searched unanchored with a backtracking
//!   bound ([`BACKTRACK_LIMIT`], our analogue of upstream's 0.1 s timeout). A pattern that does
//!   not compile, or that exceeds the bound on a document, is reported once per rule (warning
//!   with the object's name) and does not match; it never fails a job.
//! - FUZZY (5): [`fuzzy::partial_ratio`] ≥ 90 after deleting punctuation (and lowercasing when
//!   insensitive).
//! - NONE (0) and AUTO (6) never match by rule; AUTO objects are chosen by the classifier.
//!
//! Case-insensitivity is simple Unicode case folding for ANY/ALL/LITERAL/REGEX (as Python's
//! `re.IGNORECASE`), full lowercasing for FUZZY (as upstream).
//!
//! Known differences from Python, all tiny: Rust's `\w` / `\b` count combining marks as word
//! characters and "other numbers" (`²`, `½`) not; Python's `$` also matches before a final
//! newline, ours only at the very end (write `\n?$` or `(?m)` if that matters).

pub mod assign;
pub mod fuzzy;

use std::sync::atomic::{AtomicBool, Ordering};

use paperboy_shared::db::matching as alg;

/// Backtracking steps a regex may take on one document before it counts as runaway.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Fuzzy threshold (inclusive), as upstream.
pub const FUZZY_THRESHOLD: f64 = 90.0;

/// What kind of object a rule belongs to (for log messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Correspondent,
    DocumentType,
    StoragePath,
    Tag,
}

impl ObjectKind {
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Correspondent => "correspondent",
            ObjectKind::DocumentType => "document type",
            ObjectKind::StoragePath => "storage path",
            ObjectKind::Tag => "tag",
        }
    }
}

#[derive(Debug)]
enum Compiled {
    /// NONE, AUTO, blank match, or a regex that does not compile.
    Never,
    Any(Vec<regex::Regex>),
    All(Vec<regex::Regex>),
    Literal(regex::Regex),
    Regex(fancy_regex::Regex),
    /// The normalised match string.
    Fuzzy(String),
}

/// One object's matching rule, compiled.
#[derive(Debug)]
pub struct Rule {
    pub kind: ObjectKind,
    pub id: i64,
    pub name: String,
    pub owner_id: Option<i64>,
    pub algorithm: i64,
    pub insensitive: bool,
    /// The raw match string (the retagger's `-f` looks at whether it is empty).
    pub pattern: String,
    compiled: Compiled,
    /// A runaway regex is reported once per rule, not once per document.
    warned: AtomicBool,
}

impl Rule {
    pub fn new(
        kind: ObjectKind,
        id: i64,
        name: &str,
        owner_id: Option<i64>,
        pattern: &str,
        algorithm: i64,
        insensitive: bool,
    ) -> Rule {
        let compiled = compile(kind, name, pattern, algorithm, insensitive);
        Rule {
            kind,
            id,
            name: name.to_string(),
            owner_id,
            algorithm,
            insensitive,
            pattern: pattern.to_string(),
            compiled,
            warned: AtomicBool::new(false),
        }
    }

    pub fn is_auto(&self) -> bool {
        self.algorithm == alg::AUTO
    }

    /// Whether the rule matches this content (paperless `matches(object, document)`).
    pub fn matches(&self, content: &str) -> bool {
        match &self.compiled {
            Compiled::Never => false,
            Compiled::Any(terms) => terms.iter().any(|t| t.is_match(content)),
            Compiled::All(terms) => terms.iter().all(|t| t.is_match(content)),
            Compiled::Literal(re) => re.is_match(content),
            Compiled::Regex(re) => match re.is_match(content) {
                Ok(m) => m,
                Err(e) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            object = %self.name,
                            kind = self.kind.label(),
                            pattern = %shorten(&self.pattern),
                            error = %e,
                            "regular expression matching gave up (treated as no match)"
                        );
                    }
                    false
                }
            },
            Compiled::Fuzzy(needle) => {
                let text = fuzzy::normalise(content, self.insensitive);
                fuzzy::partial_ratio(needle, &text) >= FUZZY_THRESHOLD
            }
        }
    }
}

/// The pattern shortened to 80 characters for logs (as upstream).
fn shorten(p: &str) -> String {
    if p.chars().count() <= 80 {
        p.to_string()
    } else {
        let mut s: String = p.chars().take(77).collect();
        s.push_str("...");
        s
    }
}

fn compile(
    kind: ObjectKind,
    name: &str,
    pattern: &str,
    algorithm: i64,
    insensitive: bool,
) -> Compiled {
    if pattern.trim().is_empty() {
        return Compiled::Never;
    }
    let flag = if insensitive { "(?i)" } else { "" };
    let word = |body: &str| {
        regex::Regex::new(&format!(r"{flag}\b{body}\b")).expect("escaped terms always compile")
    };
    match algorithm {
        alg::ANY => Compiled::Any(split_terms(pattern).iter().map(|t| word(t)).collect()),
        alg::ALL => Compiled::All(split_terms(pattern).iter().map(|t| word(t)).collect()),
        alg::LITERAL => Compiled::Literal(word(&regex::escape(pattern))),
        // `(?i)` in the pattern: fancy-regex's builder flag does not reach every construct.
        alg::REGEX => match fancy_regex::RegexBuilder::new(&format!("{flag}{pattern}"))
            .backtrack_limit(BACKTRACK_LIMIT)
            .build()
        {
            Ok(re) => Compiled::Regex(re),
            Err(e) => {
                tracing::warn!(
                    object = %name,
                    kind = kind.label(),
                    pattern = %shorten(pattern),
                    error = %e,
                    "error while processing regular expression (treated as no match)"
                );
                Compiled::Never
            }
        },
        alg::FUZZY => Compiled::Fuzzy(fuzzy::normalise(pattern, insensitive)),
        // NONE, AUTO; the database refuses other codes.
        _ => Compiled::Never,
    }
}

/// The escaped regex bodies of the terms of an ANY/ALL match string (upstream `_split_match`):
/// quoted phrases or runs of non-whitespace; each trimmed, pieces escaped and joined by `\s+`.
fn split_terms(pattern: &str) -> Vec<String> {
    static TOKENS: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r#""([^"]+)"|(\S+)"#).unwrap());
    TOKENS
        .captures_iter(pattern)
        .map(|c| {
            let t = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
            t.split_whitespace()
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(r"\s+")
        })
        .collect()
}

#[cfg(test)]
mod tests;

/// Loads and compiles every matchable object, and the superusers, from the database.
pub async fn load(
    db: &paperboy_shared::db::Db,
) -> Result<assign::Objects, paperboy_shared::db::DbError> {
    use paperboy_shared::db::{correspondents, document_types, retag, storage_paths, tags};
    let mut o = assign::Objects::default();
    for c in correspondents::list(db).await? {
        o.correspondents.push(Rule::new(
            ObjectKind::Correspondent,
            c.id,
            &c.name,
            c.owner_id,
            &c.r#match,
            c.matching_algorithm,
            c.is_insensitive,
        ));
    }
    for t in document_types::list(db).await? {
        o.document_types.push(Rule::new(
            ObjectKind::DocumentType,
            t.id,
            &t.name,
            t.owner_id,
            &t.r#match,
            t.matching_algorithm,
            t.is_insensitive,
        ));
    }
    for p in storage_paths::list(db).await? {
        o.storage_paths.push(Rule::new(
            ObjectKind::StoragePath,
            p.id,
            &p.name,
            p.owner_id,
            &p.r#match,
            p.matching_algorithm,
            p.is_insensitive,
        ));
    }
    for t in tags::list(db).await? {
        o.tag_info.insert(
            t.id,
            assign::TagInfo {
                is_inbox: t.is_inbox_tag,
                parent: t.tn_parent_id,
            },
        );
        o.tags.push(Rule::new(
            ObjectKind::Tag,
            t.id,
            &t.name,
            t.owner_id,
            &t.r#match,
            t.matching_algorithm,
            t.is_insensitive,
        ));
    }
    o.superusers = retag::superusers(db).await?.into_iter().collect();
    Ok(o.sorted())
}
