//! One database row into one index document (spec §4.1 "Document construction").

use std::collections::{BTreeMap, BTreeSet};

use paperboy_shared::db::index::IndexRow;
use tantivy::schema::OwnedValue;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DateTime, TantivyDocument};

use super::schema::{Fields, simple_analyzer, tokens};

/// Seconds since the epoch of a stored date: `YYYY-MM-DD` (00:00 UTC) or RFC 3339.
pub fn parse_date(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let day = s.get(..10).unwrap_or(s);
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xF900..=0xFAFF    // compatibility ideographs
        | 0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF // Hangul
        | 0x20000..=0x2A6DF)
}

/// The runs of CJK characters in `text` (only these go into the bigram fields).
pub fn cjk_runs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_cjk(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// A custom field's value as shown (None: unset, skipped).
pub fn display_value(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Array(a) => Some(
            a.iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

/// Builds documents; keeps the autocomplete analyzer between calls.
pub struct DocBuilder {
    f: Fields,
    words: TextAnalyzer,
}

impl DocBuilder {
    pub fn new(f: Fields) -> Self {
        DocBuilder {
            f,
            words: simple_analyzer(),
        }
    }

    pub fn build(&mut self, row: &IndexRow) -> TantivyDocument {
        let f = &self.f;
        let d = &row.document;
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.id, d.id as u64);
        doc.add_text(f.checksum, &d.checksum);
        doc.add_text(f.title, &d.title);
        doc.add_text(f.title_sort, &d.title);
        doc.add_text(f.simple_title, &d.title);
        doc.add_text(f.content, &d.content);
        doc.add_text(f.simple_content, &d.content);
        if let Some(name) = &d.original_filename {
            doc.add_text(f.original_filename, name);
        }
        if let Some(c) = &row.correspondent {
            doc.add_text(f.correspondent, c);
            doc.add_text(f.correspondent_sort, c);
        }
        if let Some(t) = &row.document_type {
            doc.add_text(f.document_type, t);
            doc.add_text(f.type_sort, t);
        }
        if let Some(p) = &row.storage_path {
            doc.add_text(f.storage_path, p);
        }
        for tag in &row.tags {
            doc.add_text(f.tag, tag);
        }
        for (field, text) in [
            (f.bigram_title, Some(d.title.as_str())),
            (f.bigram_content, Some(d.content.as_str())),
            (f.bigram_correspondent, row.correspondent.as_deref()),
            (f.bigram_document_type, row.document_type.as_deref()),
        ] {
            for run in cjk_runs(text.unwrap_or("")) {
                doc.add_text(field, run);
            }
        }
        for tag in &row.tags {
            for run in cjk_runs(tag) {
                doc.add_text(f.bigram_tag, run);
            }
        }
        // Autocomplete: distinct folded words of title, content, correspondent, type, tags.
        let mut words = BTreeSet::new();
        let sources = [
            Some(&d.title),
            Some(&d.content),
            row.correspondent.as_ref(),
            row.document_type.as_ref(),
        ];
        for s in sources.into_iter().flatten().chain(row.tags.iter()) {
            words.extend(tokens(&mut self.words, s));
        }
        for w in &words {
            doc.add_text(f.autocomplete_word, w);
        }
        for (note, user) in &row.notes {
            let mut o = BTreeMap::new();
            o.insert("note".to_string(), OwnedValue::Str(note.clone()));
            o.insert(
                "user".to_string(),
                user.clone()
                    .map(OwnedValue::Str)
                    .unwrap_or(OwnedValue::Null),
            );
            doc.add_object(f.notes, o);
        }
        if !row.notes.is_empty() {
            let joined: Vec<&str> = row.notes.iter().map(|(n, _)| n.as_str()).collect();
            doc.add_text(f.notes_text, joined.join(" "));
        }
        doc.add_u64(f.num_notes, row.notes.len() as u64);
        for cf in &row.custom_fields {
            if let Some(v) = display_value(&cf.value) {
                let mut o = BTreeMap::new();
                o.insert("name".to_string(), OwnedValue::Str(cf.name.clone()));
                o.insert("value".to_string(), OwnedValue::Str(v));
                doc.add_object(f.custom_fields, o);
            }
        }
        for (field, id) in [
            (f.correspondent_id, d.correspondent_id),
            (f.document_type_id, d.document_type_id),
            (f.storage_path_id, d.storage_path_id),
            (f.owner_id, d.owner_id),
        ] {
            if let Some(id) = id {
                doc.add_u64(field, id as u64);
            }
        }
        for t in &d.tags {
            doc.add_u64(f.tag_id, *t as u64);
        }
        for (field, value) in [
            (f.created, &d.created),
            (f.modified, &d.modified),
            (f.added, &d.added),
        ] {
            if let Some(secs) = parse_date(value) {
                doc.add_date(field, DateTime::from_timestamp_secs(secs));
            }
        }
        if let Some(asn) = d.archive_serial_number.filter(|a| *a >= 0) {
            doc.add_u64(f.asn, asn as u64);
        }
        if let Some(pc) = d.page_count.filter(|p| *p >= 0) {
            doc.add_u64(f.page_count, pc as u64);
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_day_or_rfc3339() {
        assert_eq!(parse_date("1970-01-02"), Some(86400));
        assert_eq!(parse_date("1970-01-01T01:00:00+00:00"), Some(3600));
        assert_eq!(parse_date("nonsense"), None);
    }

    #[test]
    fn only_cjk_runs_are_taken() {
        assert_eq!(cjk_runs("Invoice 東京 from 大阪市 ok"), ["東京", "大阪市"]);
        assert!(cjk_runs("plain latin").is_empty());
    }

    #[test]
    fn custom_field_values_display_and_unset_is_skipped() {
        assert_eq!(display_value(&serde_json::json!("x")).as_deref(), Some("x"));
        assert_eq!(display_value(&serde_json::json!(4)).as_deref(), Some("4"));
        assert_eq!(
            display_value(&serde_json::json!([1, 2])).as_deref(),
            Some("1,2")
        );
        assert_eq!(display_value(&serde_json::Value::Null), None);
    }
}
