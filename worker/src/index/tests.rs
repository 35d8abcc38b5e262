//! The index end to end in one process: rows → a generation → the swap → searches with the
//! query syntax of paperless (spec §4.1), more-like-this and autocomplete.

use paperboy_shared::db::Document;
use paperboy_shared::db::files::FieldData;
use paperboy_shared::db::index::IndexRow;

use super::search::{self, Hit};
use super::store::{self, IndexSettings, Opened, Pointer, Writer};

fn row(id: i64, title: &str, content: &str, created: &str) -> IndexRow {
    IndexRow {
        document: Document {
            id,
            owner_id: None,
            correspondent_id: None,
            document_type_id: None,
            storage_path_id: None,
            title: title.into(),
            content: content.into(),
            mime_type: "application/pdf".into(),
            checksum: format!("{id:064x}"),
            archive_checksum: None,
            page_count: Some(1),
            created: created.into(),
            modified: "2024-07-01T10:00:00+00:00".into(),
            added: "2024-07-01T10:00:00+00:00".into(),
            filename: None,
            archive_filename: None,
            original_filename: Some(format!("{title}.pdf")),
            archive_serial_number: None,
            root_document_id: None,
            version_index: None,
            version_label: None,
            deleted_at: None,
            restored_at: None,
            transaction_id: None,
            storage_type: Default::default(),
            tags: vec![],
        },
        correspondent: None,
        document_type: None,
        storage_path: None,
        tags: vec![],
        notes: vec![],
        custom_fields: vec![],
    }
}

fn corpus() -> Vec<IndexRow> {
    let mut a = row(
        1,
        "ACME invoice March",
        "Invoice for widgets from ACME Corporation, total 120 EUR",
        "2024-03-05",
    );
    a.correspondent = Some("ACME Corp".into());
    a.document_type = Some("Invoice".into());
    a.tags = vec!["bank".into(), "taxes".into()];
    a.document.tags = vec![7, 8];
    a.document.correspondent_id = Some(3);
    a.document.archive_serial_number = Some(42);
    let mut b = row(
        2,
        "Bank statement",
        "Monthly statement of your bank account, Straße 5",
        "2024-02-29",
    );
    b.document_type = Some("Statement".into());
    b.tags = vec!["bank".into()];
    b.notes = vec![("call the bank about fees".into(), Some("alice".into()))];
    let mut c = row(
        3,
        "Meeting notes",
        "Notes about running the quarterly planning meeting",
        "2023-11-20",
    );
    c.custom_fields = vec![FieldData {
        name: "project".into(),
        data_type: "string".into(),
        value: serde_json::json!("apollo"),
    }];
    c.storage_path = Some("work".into());
    let d = row(
        4,
        "東京の請求書",
        "東京都 invoice for widgets",
        "2024-06-30",
    );
    vec![a, b, c, d]
}

fn build(dir: &std::path::Path, rows: &[IndexRow]) -> (IndexSettings, String) {
    let s = IndexSettings {
        dir: dir.to_path_buf(),
        language: Some(tantivy::tokenizer::Language::English),
    };
    let (name, o) = store::create_generation(&s).unwrap();
    let mut w = Writer::open(&o.index, o.fields, 1, &dir.join(&name)).unwrap();
    w.add(rows).unwrap();
    w.commit().unwrap();
    w.finish().unwrap();
    store::swap_to(
        &s,
        &Pointer {
            documents: rows.len() as u64,
            ..o.pointer
        },
    )
    .unwrap();
    (s, name)
}

fn live(s: &IndexSettings) -> Opened {
    store::open_live(s).unwrap().expect("a live index")
}

fn ids(hits: Vec<Hit>) -> Vec<u64> {
    let mut v: Vec<u64> = hits.into_iter().map(|h| h.id).collect();
    v.sort();
    v
}

fn q(o: &Opened, query: &str) -> Vec<u64> {
    ids(search::search(o, query, 50).unwrap_or_else(|e| panic!("{query}: {e}")))
}

#[test]
fn the_query_syntax_of_paperless() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = build(dir.path(), &corpus());
    let o = live(&s);
    // Words: AND by default, stemmed, folded.
    assert_eq!(q(&o, "invoice widgets"), [1, 4]);
    assert_eq!(q(&o, "invoices"), [1, 4]);
    assert_eq!(q(&o, "strasse"), [2]);
    assert_eq!(q(&o, "run"), [3]);
    // Phrases, OR, NOT.
    assert_eq!(q(&o, "\"monthly statement\""), [2]);
    assert_eq!(q(&o, "\"statement monthly\""), Vec::<u64>::new());
    assert_eq!(q(&o, "meeting OR statement"), [2, 3]);
    assert_eq!(q(&o, "bank AND NOT invoice"), [2]);
    assert_eq!(q(&o, "bank -invoice"), [2]);
    assert_eq!(q(&o, "NOT invoice AND bank"), [2]);
    assert_eq!(q(&o, "bank AND NOT (invoice OR meeting)"), [2]);
    // Fields, with v2 aliases.
    assert_eq!(q(&o, "tag:bank"), [1, 2]);
    assert_eq!(q(&o, "tags:taxes"), [1]);
    assert_eq!(q(&o, "correspondent:acme"), [1]);
    assert_eq!(q(&o, "type:invoice"), [1]);
    assert_eq!(q(&o, "document_type:statement"), [2]);
    assert_eq!(q(&o, "path:work"), [3]);
    assert_eq!(q(&o, "title:meeting"), [3]);
    assert_eq!(q(&o, "asn:42"), [1]);
    assert_eq!(q(&o, "tag_id:8"), [1]);
    assert_eq!(q(&o, "correspondent_id:3"), [1]);
    // Notes and custom fields are not default fields in v3.
    assert_eq!(q(&o, "fees"), Vec::<u64>::new());
    assert_eq!(q(&o, "notes.note:fees"), [2]);
    assert_eq!(q(&o, "note:fees"), [2]);
    assert_eq!(q(&o, "custom_fields.value:apollo"), [3]);
    // Date ranges, inclusive of whole days.
    assert_eq!(q(&o, "created:[2024-01-01 to 2024-06-30]"), [1, 2, 4]);
    assert_eq!(q(&o, "created:[2024-01-01 to 2024-06-29]"), [1, 2]);
    assert_eq!(q(&o, "created:2023"), [3]);
    assert_eq!(q(&o, "created:2024-02"), [2]);
    assert_eq!(q(&o, "created:2024-03-05"), [1]);
    assert_eq!(q(&o, "bank created:[2024-03-01 to *]"), [1]);
    assert_eq!(q(&o, "added:[-100 years to now]"), [1, 2, 3, 4]);
    // CJK text is found through the paperless_text tokens of the run.
    assert_eq!(q(&o, "東京都"), [4]);
    // A broken query is an error, not a panic.
    assert!(matches!(
        search::search(&o, "title:(unclosed", 5),
        Err(super::IndexError::Query(_))
    ));
}

#[test]
fn title_weighs_double_and_snippets_highlight_the_match() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = build(dir.path(), &corpus());
    let o = live(&s);
    let hits = search::search(&o, "invoice", 10).unwrap();
    assert_eq!(hits[0].id, 1, "the title match ranks first: {hits:?}");
    let h = &hits[0];
    assert_eq!(h.title, "ACME invoice March");
    assert_eq!(h.created.as_deref(), Some("2024-03-05"));
    assert!(!h.highlighted.is_empty(), "{h:?}");
    let (a, b) = h.highlighted[0];
    assert_eq!(h.snippet[a..b].to_lowercase(), "invoice");
}

#[test]
fn more_like_this_and_autocomplete() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = build(dir.path(), &corpus());
    let o = live(&s);
    let like = ids(search::more_like(&o, 1, 10).unwrap());
    assert!(like.contains(&4), "{like:?}");
    assert!(!like.contains(&1), "the source is left out: {like:?}");
    assert!(matches!(
        search::more_like(&o, 99, 10),
        Err(super::IndexError::NotIndexed(99))
    ));
    let words = search::complete(&o, " WID", 10).unwrap();
    assert_eq!(words, [("widgets".to_string(), 2)]);
    let words: Vec<String> = search::complete(&o, "b", 10)
        .unwrap()
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    assert_eq!(words[0], "bank", "most documents first: {words:?}");
    assert!(search::complete(&o, "  ", 10).unwrap().is_empty());
    assert_eq!(search::fold("Ärzte"), "arzte");
}

#[test]
fn upserts_replace_and_deletes_remove_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let (s, name) = build(dir.path(), &corpus());
    let o = live(&s);
    let mut w = Writer::open(&o.index, o.fields, 2, &dir.path().join(&name)).unwrap();
    let mut changed = corpus().remove(1);
    changed.tags = vec!["archived".into()];
    w.upsert(&[changed]).unwrap();
    w.delete(3);
    w.commit().unwrap();
    w.finish().unwrap();
    let o = live(&s);
    assert_eq!(q(&o, "tag:bank"), [1]);
    assert_eq!(q(&o, "tag:archived"), [2]);
    assert_eq!(q(&o, "meeting"), Vec::<u64>::new());
    assert_eq!(q(&o, "statement"), [2], "replaced, not doubled");
}

#[test]
fn a_writer_with_an_older_term_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let (s, name) = build(dir.path(), &corpus());
    let o = live(&s);
    let path = dir.path().join(&name);
    // Term 1 committed the build; term 5 commits now.
    let mut w5 = Writer::open(&o.index, o.fields, 5, &path).unwrap();
    w5.delete(4);
    w5.commit().unwrap();
    w5.finish().unwrap();
    // A stale holder (term 3) can neither open nor commit.
    assert!(matches!(
        Writer::open(&o.index, o.fields, 3, &path),
        Err(super::IndexError::Fenced { mine: 3, seen: 5 })
    ));
}

#[test]
fn needs_rebuild_follows_the_pointer_version_and_language() {
    let dir = tempfile::tempdir().unwrap();
    let s = IndexSettings {
        dir: dir.path().to_path_buf(),
        language: None,
    };
    assert!(store::needs_rebuild(&s).unwrap().contains("no index"));
    let (s, name) = build(dir.path(), &corpus());
    assert_eq!(store::needs_rebuild(&s), None);
    let other = IndexSettings {
        language: Some(tantivy::tokenizer::Language::German),
        ..s.clone()
    };
    assert!(store::needs_rebuild(&other).unwrap().contains("language"));
    let mut p = store::read_pointer(&s.dir).unwrap();
    assert_eq!(p.generation, name);
    p.schema_version = 0;
    store::swap_to(&s, &p).unwrap();
    assert!(store::needs_rebuild(&s).unwrap().contains("schema version"));
}

#[test]
fn a_new_generation_is_invisible_until_the_swap_and_then_replaces_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let (s, old) = build(dir.path(), &corpus()[..1]);
    // A reindex half way: a generation filled but not pointed at.
    let (new, o) = store::create_generation(&s).unwrap();
    let mut w = Writer::open(&o.index, o.fields, 2, &dir.path().join(&new)).unwrap();
    w.add(&corpus()).unwrap();
    w.commit().unwrap();
    w.finish().unwrap();
    assert_eq!(q(&live(&s), "bank"), [1], "the old generation answers");
    store::swap_to(&s, &o.pointer).unwrap();
    assert_eq!(q(&live(&s), "bank"), [1, 2]);
    let removed = store::remove_generations_except(&s, &[new.as_str()]);
    assert_eq!(removed, [old]);
    assert_eq!(q(&live(&s), "bank"), [1, 2]);
}

fn with(o: &Opened, query: &str, opts: search::Options) -> Vec<u64> {
    ids(search::search_with(o, query, 50, opts).unwrap_or_else(|e| panic!("{query}: {e}")))
}

#[test]
fn text_and_title_modes_match_substrings() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = build(dir.path(), &corpus());
    let o = live(&s);
    let text = search::Options {
        mode: search::Mode::Text,
        fuzzy: None,
    };
    let title = search::Options {
        mode: search::Mode::Title,
        fuzzy: None,
    };
    // Substrings, folded: "idget" is inside "widgets", "STRASSE" folds to "straße"'s folding.
    assert_eq!(with(&o, "idget", text), [1, 4]);
    assert_eq!(with(&o, "STRASSE", text), [2]);
    // Every word must match; the query language is not parsed (":" is a character).
    assert_eq!(with(&o, "idget acme", text), [1]);
    assert_eq!(with(&o, "tag:bank", text), Vec::<u64>::new());
    // Title mode looks at titles only.
    assert_eq!(with(&o, "statem", title), [2]);
    assert_eq!(with(&o, "widgets", title), Vec::<u64>::new());
    assert!(matches!(
        search::search_with(&o, "   ", 5, text),
        Err(super::IndexError::Query(_))
    ));
}

#[test]
fn a_cjk_word_inside_a_run_is_found_through_the_bigrams() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = build(dir.path(), &corpus());
    let o = live(&s);
    // "東京" is part of the runs "東京都" and "東京の請求書": one token each in the text
    // fields, two bigram runs in the bigram fields.
    assert_eq!(q(&o, "東京"), [4]);
    assert_eq!(q(&o, "請求書"), [4]);
    assert_eq!(q(&o, "京都大学"), Vec::<u64>::new());
}

#[test]
fn fuzzy_words_match_one_typo_and_weak_results_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = build(dir.path(), &corpus());
    let o = live(&s);
    assert_eq!(q(&o, "statment"), Vec::<u64>::new());
    let fuzzy = |t| search::Options {
        mode: search::Mode::Query,
        fuzzy: Some(t),
    };
    assert_eq!(with(&o, "statment", fuzzy(0.0)), [2]);
    assert_eq!(with(&o, "widgts", fuzzy(0.0)), [1, 4]);
    // Document 2 matches both words, document 1 only "bank" (its tag): a high cutoff keeps 2.
    let hits = search::search_with(&o, "bank statment", 50, fuzzy(0.0)).unwrap();
    assert!(hits.len() >= 2, "{hits:?}");
    assert_eq!(hits[0].id, 2, "{hits:?}");
    let cut = search::search_with(&o, "bank statment", 50, fuzzy(0.99)).unwrap();
    assert_eq!(ids(cut), [2]);
}
