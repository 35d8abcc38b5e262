//! Read-only searches on the live generation: paperless queries, more-like-this, autocomplete.
//! No lock, no Redis: any process that sees `DATA_DIR/index` can search.

use std::collections::HashMap;

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, FuzzyTermQuery, MoreLikeThisQuery, Occur, Query, QueryParser,
    RegexQuery, TermQuery,
};
use tantivy::schema::{IndexRecordOption, OwnedValue, Term, Value};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{DocAddress, ReloadPolicy, Searcher, TantivyDocument};

use super::IndexError;
use super::doc::cjk_runs;
use super::query::rewrite;
use super::schema::{bigram_analyzer, simple_search_analyzer, tokens};
use super::snippet::Snippets;
use super::store::Opened;

/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 200;

/// One result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub title: String,
    pub score: f32,
    /// A fragment of the content (or title, notes) around the matches.
    pub snippet: String,
    /// Byte ranges of the matched words inside `snippet`.
    pub highlighted: Vec<(usize, usize)>,
    /// `YYYY-MM-DD`.
    pub created: Option<String>,
}

fn searcher(o: &Opened) -> Result<Searcher, IndexError> {
    let reader = o
        .index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|e| {
            IndexError::tantivy(
                "open a reader on",
                std::path::Path::new(&o.pointer.generation),
                e,
            )
        })?;
    Ok(reader.searcher())
}

/// The query parser of paperless' `query` mode: title (boost 2), content, correspondent,
/// document type and tags by default; terms joined by AND unless OR is written.
pub fn parser(o: &Opened) -> QueryParser {
    let f = &o.fields;
    let mut p = QueryParser::for_index(
        &o.index,
        vec![f.title, f.content, f.correspondent, f.document_type, f.tag],
    );
    p.set_field_boost(f.title, 2.0);
    p.set_conjunction_by_default();
    p
}

/// paperless' search modes (also the `--mode` values of `paperboy-worker search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// The query language (field:value, phrases, AND/OR/NOT, dates).
    #[default]
    Query,
    /// Every word a substring of the title or the content (case and accents folded).
    Text,
    /// Every word a substring of the title.
    Title,
}

/// How a search is made beyond its text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    pub mode: Mode,
    /// `PAPERBOY_ADVANCED_FUZZY_SEARCH_THRESHOLD`: words one edit away also match (boost 0.1),
    /// and results below this share of the best score are dropped. Query mode only.
    pub fuzzy: Option<f32>,
}

/// Parses a paperless query (rewritten first, see [`rewrite`]). CJK runs are also looked up in
/// the bigram fields (the text fields keep a CJK run as one token, so a word inside it would
/// not match otherwise).
pub fn parse(
    o: &Opened,
    query: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Box<dyn Query>, IndexError> {
    let q = rewrite(query, now);
    let main = parser(o)
        .parse_query(&q)
        .map_err(|e| IndexError::Query(format!("{query:?}: {e}")))?;
    let cjk = cjk_query(o, query);
    Ok(match cjk {
        None => main,
        Some(c) => Box::new(BooleanQuery::new(vec![
            (Occur::Should, main),
            (Occur::Should, c),
        ])),
    })
}

/// Every CJK run of `query` (two characters or more) as its bigrams, all in one of the
/// bigram fields; None without such runs.
fn cjk_query(o: &Opened, query: &str) -> Option<Box<dyn Query>> {
    let f = &o.fields;
    let fields = [
        f.bigram_title,
        f.bigram_content,
        f.bigram_correspondent,
        f.bigram_document_type,
        f.bigram_tag,
    ];
    let mut analyzer = bigram_analyzer();
    let mut runs: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for run in cjk_runs(query) {
        let grams = tokens(&mut analyzer, run);
        if grams.is_empty() {
            continue;
        }
        let per_field = fields
            .iter()
            .map(|&field| {
                let all: Vec<(Occur, Box<dyn Query>)> = grams
                    .iter()
                    .map(|g| {
                        let t = TermQuery::new(
                            Term::from_field_text(field, g),
                            IndexRecordOption::WithFreqs,
                        );
                        (Occur::Must, Box::new(t) as Box<dyn Query>)
                    })
                    .collect();
                (
                    Occur::Should,
                    Box::new(BooleanQuery::new(all)) as Box<dyn Query>,
                )
            })
            .collect();
        runs.push((Occur::Must, Box::new(BooleanQuery::new(per_field))));
    }
    (!runs.is_empty()).then(|| Box::new(BooleanQuery::new(runs)) as Box<dyn Query>)
}

/// `text` / `title` mode: each folded word of `query` a substring (regex `.*word.*`) of the
/// simple fields; every word must match.
pub fn substring_query(o: &Opened, query: &str, mode: Mode) -> Result<Box<dyn Query>, IndexError> {
    let f = &o.fields;
    let fields: &[_] = match mode {
        Mode::Title => &[f.simple_title],
        _ => &[f.simple_title, f.simple_content],
    };
    let words = tokens(&mut simple_search_analyzer(), query);
    if words.is_empty() {
        return Err(IndexError::Query(format!(
            "{query:?}: no words to search for"
        )));
    }
    let mut all: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for w in &words {
        let pattern = format!(".*{}.*", regex::escape(w));
        let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for &field in fields {
            let r = RegexQuery::from_pattern(&pattern, field)
                .map_err(|e| IndexError::Query(format!("{query:?}: {e}")))?;
            any.push((Occur::Should, Box::new(r)));
        }
        all.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
    Ok(Box::new(BooleanQuery::new(all)))
}

/// The plain words of a query (no field, operator or quote), for the fuzzy clauses.
fn plain_words(query: &str) -> Vec<&str> {
    if query.contains('"') {
        return Vec::new();
    }
    query
        .split_whitespace()
        .filter(|w| {
            !matches!(*w, "AND" | "OR" | "NOT")
                && w.chars().all(|c| c.is_alphanumeric())
                && w.chars().count() >= 3
        })
        .collect()
}

/// The query plus one fuzzy clause (one edit, boost 0.1) per plain word over the default
/// fields, as paperless' advanced fuzzy search.
fn with_fuzzy(o: &Opened, query: &str, main: Box<dyn Query>) -> Box<dyn Query> {
    let f = &o.fields;
    let mut analyzer = o
        .index
        .tokenizer_for_field(f.content)
        .unwrap_or_else(|_| simple_search_analyzer());
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, main)];
    for w in plain_words(query) {
        for t in tokens(&mut analyzer, w) {
            for field in [f.title, f.content, f.correspondent, f.document_type, f.tag] {
                let q = FuzzyTermQuery::new(Term::from_field_text(field, &t), 1, true);
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), 0.1))));
            }
        }
    }
    Box::new(BooleanQuery::new(clauses))
}

fn hits(
    o: &Opened,
    s: &Searcher,
    query: &dyn Query,
    found: Vec<(f32, DocAddress)>,
) -> Result<Vec<Hit>, IndexError> {
    let f = &o.fields;
    let mut snippets = Snippets::new(
        &o.index,
        query,
        &[f.content, f.title, f.notes_text],
        SNIPPET_CHARS,
    );
    let mut out = Vec::with_capacity(found.len());
    for (score, addr) in found {
        let doc: TantivyDocument = s
            .doc(addr)
            .map_err(|e| IndexError::Corrupt(format!("cannot read a stored document: {e}")))?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let (frag, ranges) = snippets.of(&doc).unwrap_or_else(|| {
            let c = doc
                .get_first(f.content)
                .and_then(|v| v.as_str())
                .unwrap_or("");
            (c.chars().take(SNIPPET_CHARS).collect(), Vec::new())
        });
        out.push(Hit {
            id: doc.get_first(f.id).and_then(|v| v.as_u64()).unwrap_or(0),
            title: text(f.title),
            score,
            snippet: frag,
            highlighted: ranges,
            created: doc
                .get_first(f.created)
                .and_then(|v| v.as_datetime())
                .and_then(|d| chrono::DateTime::from_timestamp(d.into_timestamp_secs(), 0))
                .map(|d| d.format("%Y-%m-%d").to_string()),
        });
    }
    Ok(out)
}

/// The best `limit` documents for a paperless query (query mode, no fuzzy clauses).
#[cfg(test)]
pub fn search(o: &Opened, query: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
    search_with(o, query, limit, Options::default())
}

/// [`search`] in a mode, with or without fuzzy words.
pub fn search_with(
    o: &Opened,
    query: &str,
    limit: usize,
    opts: Options,
) -> Result<Vec<Hit>, IndexError> {
    let q = match opts.mode {
        Mode::Query => {
            let q = parse(o, query, chrono::Utc::now())?;
            match opts.fuzzy {
                Some(_) => with_fuzzy(o, query, q),
                None => q,
            }
        }
        mode => substring_query(o, query, mode)?,
    };
    let s = searcher(o)?;
    let mut found = s
        .search(&*q, &TopDocs::with_limit(limit.max(1)).order_by_score())
        .map_err(|e| IndexError::Query(e.to_string()))?;
    if let (Mode::Query, Some(cut)) = (opts.mode, opts.fuzzy) {
        // Scores normalised by the best one; paperless drops those under the threshold.
        let best = found.first().map(|(s, _)| *s).unwrap_or(0.0);
        if best > 0.0 {
            found.retain(|(s, _)| s / best >= cut);
        }
    }
    hits(o, &s, &*q, found)
}

/// Documents like document `id` (title and content terms; min doc/term frequency 1, at most
/// 12 query terms), without `id` itself.
pub fn more_like(o: &Opened, id: u64, limit: usize) -> Result<Vec<Hit>, IndexError> {
    let f = &o.fields;
    let s = searcher(o)?;
    let by_id = TermQuery::new(Term::from_field_u64(f.id, id), IndexRecordOption::Basic);
    let Some((_, addr)) = s
        .search(&by_id, &TopDocs::with_limit(1).order_by_score())
        .map_err(|e| IndexError::Query(e.to_string()))?
        .into_iter()
        .next()
    else {
        return Err(IndexError::NotIndexed(id));
    };
    let doc: TantivyDocument = s
        .doc(addr)
        .map_err(|e| IndexError::Corrupt(format!("cannot read a stored document: {e}")))?;
    let mut fields = Vec::new();
    for field in [f.title, f.content] {
        let values: Vec<OwnedValue> = doc
            .get_all(field)
            .filter_map(|v| v.as_str().map(|t| OwnedValue::Str(t.to_string())))
            .collect();
        fields.push((field, values));
    }
    let q = MoreLikeThisQuery::builder()
        .with_min_doc_frequency(1)
        .with_min_term_frequency(1)
        .with_max_query_terms(12)
        .with_document_fields(fields);
    let found: Vec<(f32, DocAddress)> = s
        .search(&q, &TopDocs::with_limit(limit.max(1) + 1).order_by_score())
        .map_err(|e| IndexError::Query(e.to_string()))?
        .into_iter()
        .filter(|(_, a)| *a != addr)
        .take(limit.max(1))
        .collect();
    hits(o, &s, &q, found)
}

/// The folding autocomplete applies to the typed prefix: trimmed, lowercased, ASCII-folded.
pub fn fold(term: &str) -> String {
    let mut a = TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build();
    tokens(&mut a, term.trim()).concat()
}

/// Words starting with `prefix`, most documents first, ties alphabetical (paperless'
/// autocomplete). Empty prefix: nothing.
pub fn complete(o: &Opened, prefix: &str, limit: usize) -> Result<Vec<(String, u64)>, IndexError> {
    let p = fold(prefix);
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let s = searcher(o)?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for seg in s.segment_readers() {
        let inv = seg
            .inverted_index(o.fields.autocomplete_word)
            .map_err(|e| IndexError::Query(e.to_string()))?;
        let mut stream = inv
            .terms()
            .range()
            .ge(p.as_bytes())
            .into_stream()
            .map_err(|e| IndexError::Query(e.to_string()))?;
        while stream.advance() {
            let k = stream.key();
            if !k.starts_with(p.as_bytes()) {
                break;
            }
            let word = String::from_utf8_lossy(k).to_string();
            *counts.entry(word).or_default() += stream.value().doc_freq as u64;
        }
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    Ok(v)
}
