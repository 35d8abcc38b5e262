//! Snippets whose cost is bounded by where the first match is, not by the document's length.
//!
//! Tantivy's `SnippetGenerator` tokenizes (and stems) a hit's whole text to pick the best
//! fragment; with long OCR texts that was the largest part of a search at 100k documents. This
//! one streams the field's own analyzer over the text, stops at the first token the query
//! searches for, and tokenizes only up to the end of the fragment around it. It shows the first
//! match rather than the densest fragment (paperless' Whoosh highlighter shows the top ones;
//! for a result list the first mention reads as well).

use std::collections::{HashMap, HashSet};

use tantivy::query::Query;
use tantivy::schema::{Field, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, TantivyDocument};

/// Characters shown before the first match, at most.
const LEAD_CHARS: usize = 40;

/// The query's terms of each snippet field, with that field's analyzer.
pub struct Snippets {
    fields: Vec<(Field, TextAnalyzer, HashSet<String>)>,
    max_chars: usize,
}

impl Snippets {
    /// For `query` over `fields` (tried in this order); fields the query does not search for
    /// are left out. Fields whose analyzer cannot be found are skipped.
    pub fn new(index: &Index, query: &dyn Query, fields: &[Field], max_chars: usize) -> Snippets {
        let mut terms: HashMap<Field, HashSet<String>> = HashMap::new();
        query.query_terms(&mut |term, _| {
            if let Some(t) = term.value().as_str()
                && fields.contains(&term.field())
            {
                terms.entry(term.field()).or_default().insert(t.to_string());
            }
        });
        let fields = fields
            .iter()
            .filter_map(|f| {
                let t = terms.remove(f)?;
                let a = index.tokenizer_for_field(*f).ok()?;
                Some((*f, a, t))
            })
            .collect();
        Snippets { fields, max_chars }
    }

    /// The first field of `doc` with a match: its fragment and the byte ranges of the matched
    /// words inside it.
    pub fn of(&mut self, doc: &TantivyDocument) -> Option<(String, Vec<(usize, usize)>)> {
        let max = self.max_chars;
        for (field, analyzer, terms) in &mut self.fields {
            for v in doc.get_all(*field) {
                if let Some(text) = v.as_str()
                    && let Some(f) = fragment(analyzer, terms, text, max)
                {
                    return Some(f);
                }
            }
        }
        None
    }
}

/// Largest char boundary of `s` at or before `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The fragment of `text` around the first token in `terms`: up to [`LEAD_CHARS`] before it
/// (from a word start), `max_chars` in all, with every matched token inside it.
pub fn fragment(
    analyzer: &mut TextAnalyzer,
    terms: &HashSet<String>,
    text: &str,
    max_chars: usize,
) -> Option<(String, Vec<(usize, usize)>)> {
    let mut stream = analyzer.token_stream(text);
    let mut first = None;
    while stream.advance() {
        let t = stream.token();
        if terms.contains(&t.text) {
            first = Some((t.offset_from, t.offset_to));
            break;
        }
    }
    let (from, to) = first?;
    // Start: LEAD_CHARS back, moved forward to just after a whitespace if there is one.
    let back = text[..from]
        .char_indices()
        .rev()
        .nth(LEAD_CHARS.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let start = if back == 0 {
        0
    } else {
        text[back..from]
            .find(char::is_whitespace)
            .map(|w| {
                let ws = back + w;
                ws + text[ws..].chars().next().map_or(0, char::len_utf8)
            })
            .unwrap_or(back)
    };
    let end = text[start..]
        .char_indices()
        .nth(max_chars)
        .map(|(i, _)| start + i)
        .unwrap_or(text.len());
    // Do not cut the last word in half when a space is near.
    let end = if end < text.len() {
        match text[start..end].rfind(char::is_whitespace) {
            Some(w) if start + w >= to && end - (start + w) < 30 => start + w,
            _ => end,
        }
    } else {
        end
    };
    let end = floor_boundary(text, end.max(to.min(text.len())));
    let mut marks = vec![(from - start, to - start)];
    while stream.advance() {
        let t = stream.token();
        if t.offset_from >= end {
            break;
        }
        if t.offset_to <= end && terms.contains(&t.text) {
            marks.push((t.offset_from - start, t.offset_to - start));
        }
    }
    Some((text[start..end].trim_end().to_string(), marks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, Stemmer};

    fn analyzer() -> TextAnalyzer {
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::default())
            .build()
    }

    fn set(words: &[&str]) -> HashSet<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn marked(f: &(String, Vec<(usize, usize)>)) -> Vec<&str> {
        f.1.iter().map(|&(a, b)| &f.0[a..b]).collect()
    }

    #[test]
    fn the_fragment_starts_near_the_first_match_and_marks_every_match_in_it() {
        let filler = "lorem ipsum dolor sit amet ".repeat(40);
        let text = format!("{filler}The Invoices were paid; one invoice is open. {filler}");
        let f = fragment(&mut analyzer(), &set(&["invoic"]), &text, 200).unwrap();
        assert_eq!(marked(&f), ["Invoices", "invoice"]);
        assert!(f.0.chars().count() <= 200, "{}", f.0);
        // At most LEAD_CHARS before the match, starting at a word.
        let lead = f.1[0].0;
        assert!(lead <= LEAD_CHARS, "{lead}");
        assert!(text.contains(&f.0));
        assert!(f.0.starts_with(|c: char| c.is_alphabetic()), "{}", f.0);
    }

    #[test]
    fn a_match_at_the_start_and_short_texts() {
        let f = fragment(
            &mut analyzer(),
            &set(&["widget"]),
            "Widgets, 3 of them",
            200,
        )
        .unwrap();
        assert_eq!(f.0, "Widgets, 3 of them");
        assert_eq!(marked(&f), ["Widgets"]);
        assert!(fragment(&mut analyzer(), &set(&["gadget"]), "Widgets", 200).is_none());
        assert!(fragment(&mut analyzer(), &set(&["x"]), "", 200).is_none());
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = format!(
            "{} Rechnung über Käse {}",
            "äöü ß ".repeat(30),
            "ÄÖÜ ".repeat(80)
        );
        let f = fragment(&mut analyzer(), &set(&["kase", "käse"]), &text, 50).unwrap();
        assert_eq!(marked(&f), ["Käse"]);
        assert!(f.0.chars().count() <= 50);
    }

    #[test]
    fn a_match_past_the_window_is_not_marked() {
        let text = format!("fee {} fee", "word ".repeat(100));
        let f = fragment(&mut analyzer(), &set(&["fee"]), &text, 60).unwrap();
        assert_eq!(marked(&f), ["fee"]);
    }
}
