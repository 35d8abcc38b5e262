//! Read-only searches on the live generation: paperless queries, more-like-this, autocomplete.
//! No lock, no Redis: any process that sees `DATA_DIR/index` can search.

use std::collections::HashMap;

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{MoreLikeThisQuery, Query, QueryParser, TermQuery};
use tantivy::schema::{IndexRecordOption, OwnedValue, Term, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{DocAddress, ReloadPolicy, Searcher, TantivyDocument};

use super::IndexError;
use super::query::rewrite;
use super::schema::tokens;
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

/// Parses a paperless query (rewritten first, see [`rewrite`]).
pub fn parse(
    o: &Opened,
    query: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Box<dyn Query>, IndexError> {
    let q = rewrite(query, now);
    parser(o)
        .parse_query(&q)
        .map_err(|e| IndexError::Query(format!("{query:?}: {e}")))
}

fn hits(
    o: &Opened,
    s: &Searcher,
    query: &dyn Query,
    found: Vec<(f32, DocAddress)>,
) -> Result<Vec<Hit>, IndexError> {
    let f = &o.fields;
    let mut generators = Vec::new();
    for field in [f.content, f.title, f.notes_text] {
        let mut g = SnippetGenerator::create(s, query, field)
            .map_err(|e| IndexError::Query(e.to_string()))?;
        g.set_max_num_chars(SNIPPET_CHARS);
        generators.push(g);
    }
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
        let mut snippet = None;
        for g in &generators {
            let sn = g.snippet_from_doc(&doc);
            if !sn.is_empty() {
                snippet = Some(sn);
                break;
            }
        }
        let (frag, ranges) = match snippet {
            Some(sn) => (
                sn.fragment().to_string(),
                sn.highlighted().iter().map(|r| (r.start, r.end)).collect(),
            ),
            None => {
                let c = text(f.content);
                (c.chars().take(SNIPPET_CHARS).collect(), Vec::new())
            }
        };
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

/// The best `limit` documents for a paperless query.
pub fn search(o: &Opened, query: &str, limit: usize) -> Result<Vec<Hit>, IndexError> {
    let q = parse(o, query, chrono::Utc::now())?;
    let s = searcher(o)?;
    let found = s
        .search(&*q, &TopDocs::with_limit(limit.max(1)).order_by_score())
        .map_err(|e| IndexError::Query(e.to_string()))?;
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
