//! The paperless-ngx 3.0.5 index schema (spec §4.1, schema version 1) and its tokenizers.

use tantivy::Index;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, JsonObjectOptions,
    STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, NgramTokenizer, RawTokenizer, RegexTokenizer,
    RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};

/// The schema version paperless-ngx 3.0.5 writes (`.index_settings.json`); stored in our
/// pointer file. A different stored version makes `reindex --if-needed` rebuild.
pub const SCHEMA_VERSION: u32 = 1;

/// Tokenizer names, as paperless registers them.
pub const PAPERLESS_TEXT: &str = "paperless_text";
pub const SIMPLE_ANALYZER: &str = "simple_analyzer";
pub const BIGRAM_ANALYZER: &str = "bigram_analyzer";
pub const SIMPLE_SEARCH_ANALYZER: &str = "simple_search_analyzer";
pub const RAW: &str = "raw";

/// Tokens this long (bytes) or longer are dropped.
const LONG_TOKEN: usize = 129;

/// Every field, resolved once.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub id: Field,
    pub checksum: Field,
    pub title: Field,
    pub correspondent: Field,
    pub document_type: Field,
    pub storage_path: Field,
    pub original_filename: Field,
    pub content: Field,
    pub title_sort: Field,
    pub correspondent_sort: Field,
    pub type_sort: Field,
    pub bigram_content: Field,
    pub bigram_title: Field,
    pub bigram_correspondent: Field,
    pub bigram_document_type: Field,
    pub bigram_tag: Field,
    pub simple_title: Field,
    pub simple_content: Field,
    pub autocomplete_word: Field,
    pub tag: Field,
    pub notes: Field,
    pub notes_text: Field,
    pub custom_fields: Field,
    pub correspondent_id: Field,
    pub document_type_id: Field,
    pub storage_path_id: Field,
    pub tag_id: Field,
    pub owner_id: Field,
    // In the schema for paperless' queries, never filled: paperboy stores no object-level
    // permissions (import skips them), so no document has explicit viewers.
    #[allow(dead_code)]
    pub viewer_id: Field,
    #[allow(dead_code)]
    pub viewer_group_id: Field,
    pub created: Field,
    pub modified: Field,
    pub added: Field,
    pub asn: Field,
    pub page_count: Field,
    pub num_notes: Field,
}

fn text(tokenizer: &str, stored: bool, positions: bool) -> TextOptions {
    let record = if positions {
        IndexRecordOption::WithFreqsAndPositions
    } else {
        IndexRecordOption::Basic
    };
    let o = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    );
    if stored { o.set_stored() } else { o }
}

/// The schema of spec §4.1.
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let u64_stored = || INDEXED | STORED | FAST;
    let u64_hidden = || INDEXED | FAST;
    let date = DateOptions::default()
        .set_stored()
        .set_indexed()
        .set_fast()
        .set_precision(DateTimePrecision::Seconds);
    let pl = |stored| text(PAPERLESS_TEXT, stored, true);
    let json = JsonObjectOptions::default()
        .set_stored()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(PAPERLESS_TEXT)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
    let sort = text(SIMPLE_ANALYZER, false, false).set_fast(SIMPLE_ANALYZER);
    let fields = Fields {
        id: b.add_u64_field("id", u64_stored()),
        checksum: b.add_text_field("checksum", text(RAW, true, false)),
        title: b.add_text_field("title", pl(true)),
        correspondent: b.add_text_field("correspondent", pl(true)),
        document_type: b.add_text_field("document_type", pl(true)),
        storage_path: b.add_text_field("storage_path", pl(true)),
        original_filename: b.add_text_field("original_filename", pl(true)),
        content: b.add_text_field("content", pl(true)),
        title_sort: b.add_text_field("title_sort", sort.clone()),
        correspondent_sort: b.add_text_field("correspondent_sort", sort.clone()),
        type_sort: b.add_text_field("type_sort", sort),
        bigram_content: b.add_text_field("bigram_content", text(BIGRAM_ANALYZER, false, true)),
        bigram_title: b.add_text_field("bigram_title", text(BIGRAM_ANALYZER, false, true)),
        bigram_correspondent: b
            .add_text_field("bigram_correspondent", text(BIGRAM_ANALYZER, false, true)),
        bigram_document_type: b
            .add_text_field("bigram_document_type", text(BIGRAM_ANALYZER, false, true)),
        bigram_tag: b.add_text_field("bigram_tag", text(BIGRAM_ANALYZER, false, true)),
        simple_title: b.add_text_field("simple_title", text(SIMPLE_SEARCH_ANALYZER, false, true)),
        simple_content: b
            .add_text_field("simple_content", text(SIMPLE_SEARCH_ANALYZER, false, true)),
        autocomplete_word: b.add_text_field("autocomplete_word", text(RAW, false, false)),
        tag: b.add_text_field("tag", pl(true)),
        notes: b.add_json_field("notes", json.clone()),
        notes_text: b.add_text_field("notes_text", pl(true)),
        custom_fields: b.add_json_field("custom_fields", json),
        correspondent_id: b.add_u64_field("correspondent_id", u64_hidden()),
        document_type_id: b.add_u64_field("document_type_id", u64_hidden()),
        storage_path_id: b.add_u64_field("storage_path_id", u64_hidden()),
        tag_id: b.add_u64_field("tag_id", u64_hidden()),
        owner_id: b.add_u64_field("owner_id", u64_hidden()),
        viewer_id: b.add_u64_field("viewer_id", u64_hidden()),
        viewer_group_id: b.add_u64_field("viewer_group_id", u64_hidden()),
        created: b.add_date_field("created", date.clone()),
        modified: b.add_date_field("modified", date.clone()),
        added: b.add_date_field("added", date),
        asn: b.add_u64_field("asn", u64_stored()),
        page_count: b.add_u64_field("page_count", u64_stored()),
        num_notes: b.add_u64_field("num_notes", u64_stored()),
    };
    (b.build(), fields)
}

/// The fields of an opened index's schema (None if the schema is not ours).
pub fn fields_of(schema: &Schema) -> Option<Fields> {
    let f = |n: &str| schema.get_field(n).ok();
    Some(Fields {
        id: f("id")?,
        checksum: f("checksum")?,
        title: f("title")?,
        correspondent: f("correspondent")?,
        document_type: f("document_type")?,
        storage_path: f("storage_path")?,
        original_filename: f("original_filename")?,
        content: f("content")?,
        title_sort: f("title_sort")?,
        correspondent_sort: f("correspondent_sort")?,
        type_sort: f("type_sort")?,
        bigram_content: f("bigram_content")?,
        bigram_title: f("bigram_title")?,
        bigram_correspondent: f("bigram_correspondent")?,
        bigram_document_type: f("bigram_document_type")?,
        bigram_tag: f("bigram_tag")?,
        simple_title: f("simple_title")?,
        simple_content: f("simple_content")?,
        autocomplete_word: f("autocomplete_word")?,
        tag: f("tag")?,
        notes: f("notes")?,
        notes_text: f("notes_text")?,
        custom_fields: f("custom_fields")?,
        correspondent_id: f("correspondent_id")?,
        document_type_id: f("document_type_id")?,
        storage_path_id: f("storage_path_id")?,
        tag_id: f("tag_id")?,
        owner_id: f("owner_id")?,
        viewer_id: f("viewer_id")?,
        viewer_group_id: f("viewer_group_id")?,
        created: f("created")?,
        modified: f("modified")?,
        added: f("added")?,
        asn: f("asn")?,
        page_count: f("page_count")?,
        num_notes: f("num_notes")?,
    })
}

/// The stemming language of `PAPERBOY_SEARCH_LANGUAGE` (ISO 639-1 or lowercase English name).
/// `Err` for a value that names no supported language.
pub fn parse_language(value: &str) -> Result<Language, String> {
    use Language::*;
    Ok(match value.trim().to_ascii_lowercase().as_str() {
        "ar" | "arabic" => Arabic,
        "da" | "danish" => Danish,
        "nl" | "dutch" => Dutch,
        "en" | "english" => English,
        "fi" | "finnish" => Finnish,
        "fr" | "french" => French,
        "de" | "german" => German,
        "el" | "greek" => Greek,
        "hu" | "hungarian" => Hungarian,
        "it" | "italian" => Italian,
        "no" | "norwegian" => Norwegian,
        "pt" | "portuguese" => Portuguese,
        "ro" | "romanian" => Romanian,
        "ru" | "russian" => Russian,
        "es" | "spanish" => Spanish,
        "sv" | "swedish" => Swedish,
        "ta" | "tamil" => Tamil,
        "tr" | "turkish" => Turkish,
        other => {
            return Err(format!(
                "{other:?} is not a supported search language (ar da nl en fi fr de el hu it no pt ro ru es sv ta tr)"
            ));
        }
    })
}

/// The stemming language from a tesseract language code (the first of `deu+eng`); None when
/// it has no stemmer.
pub fn language_from_ocr(ocr: &str) -> Option<Language> {
    let first = ocr.split('+').next().unwrap_or("");
    let iso = match first {
        "ara" => "ar",
        "dan" => "da",
        "nld" => "nl",
        "eng" => "en",
        "fin" => "fi",
        "fra" => "fr",
        "deu" => "de",
        "ell" => "el",
        "hun" => "hu",
        "ita" => "it",
        "nor" => "no",
        "por" => "pt",
        "ron" => "ro",
        "rus" => "ru",
        "spa" => "es",
        "swe" => "sv",
        "tam" => "ta",
        "tur" => "tr",
        _ => return None,
    };
    parse_language(iso).ok()
}

/// The ISO 639-1 code of a stemming language (stored in the pointer file).
pub fn language_code(l: Language) -> &'static str {
    use Language::*;
    match l {
        Arabic => "ar",
        Danish => "da",
        Dutch => "nl",
        English => "en",
        Finnish => "fi",
        French => "fr",
        German => "de",
        Greek => "el",
        Hungarian => "hu",
        Italian => "it",
        Norwegian => "no",
        Portuguese => "pt",
        Romanian => "ro",
        Russian => "ru",
        Spanish => "es",
        Swedish => "sv",
        Tamil => "ta",
        Turkish => "tr",
    }
}

/// `paperless_text`: simple → drop ≥129 bytes → lowercase → ASCII folding → stemmer.
pub fn paperless_text(language: Option<Language>) -> TextAnalyzer {
    let b = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONG_TOKEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .dynamic();
    match language {
        Some(l) => b.filter_dynamic(Stemmer::new(l)).build(),
        None => b.build(),
    }
}

/// `simple_analyzer`: simple → lowercase → ASCII fold (sort shadows, autocomplete words).
pub fn simple_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// `bigram_analyzer`: character 2-grams → lowercase.
pub fn bigram_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(NgramTokenizer::new(2, 2, false).expect("2..2 is a valid n-gram range"))
        .filter(LowerCaser)
        .build()
}

/// `simple_search_analyzer`: `\S+` chunks → drop ≥129 bytes → lowercase → ASCII fold.
pub fn simple_search_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(RegexTokenizer::new(r"\S+").expect("a valid regex"))
        .filter(RemoveLongFilter::limit(LONG_TOKEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers every tokenizer on an opened or created index (paperless does on every open).
pub fn register(index: &Index, language: Option<Language>) {
    let m = index.tokenizers();
    m.register(PAPERLESS_TEXT, paperless_text(language));
    m.register(SIMPLE_ANALYZER, simple_analyzer());
    m.register(BIGRAM_ANALYZER, bigram_analyzer());
    m.register(SIMPLE_SEARCH_ANALYZER, simple_search_analyzer());
    m.register(RAW, TextAnalyzer::builder(RawTokenizer::default()).build());
    index
        .fast_field_tokenizer()
        .register(SIMPLE_ANALYZER, simple_analyzer());
}

/// The tokens `analyzer` makes of `text` (tests, autocomplete words).
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut s = analyzer.token_stream(text);
    while s.advance() {
        out.push(s.token().text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paperless_text_lowercases_folds_stems_and_drops_long_tokens() {
        let mut a = paperless_text(Some(Language::English));
        assert_eq!(tokens(&mut a, "Running INVOICES"), ["run", "invoic"]);
        let mut a = paperless_text(None);
        assert_eq!(
            tokens(&mut a, "Straße Søren Æble"),
            ["strasse", "soren", "aeble"]
        );
        assert_eq!(
            tokens(&mut a, "acme-corp_2024/03"),
            ["acme", "corp", "2024", "03"]
        );
        let long = "x".repeat(129);
        let ok = "y".repeat(128);
        assert_eq!(tokens(&mut a, &format!("{long} {ok}")), [ok]);
        let mut de = paperless_text(Some(Language::German));
        assert_eq!(tokens(&mut de, "Rechnungen"), ["rechnung"]);
    }

    #[test]
    fn simple_search_analyzer_splits_on_whitespace_only() {
        let mut a = simple_search_analyzer();
        assert_eq!(
            tokens(&mut a, "ACME-Corp  Straße\tx.pdf"),
            ["acme-corp", "strasse", "x.pdf"]
        );
    }

    #[test]
    fn bigram_analyzer_makes_character_pairs() {
        let mut a = bigram_analyzer();
        assert_eq!(tokens(&mut a, "東京都"), ["東京", "京都"]);
    }

    #[test]
    fn simple_analyzer_does_not_stem() {
        let mut a = simple_analyzer();
        assert_eq!(tokens(&mut a, "Running Ärzte"), ["running", "arzte"]);
    }

    #[test]
    fn languages_parse_as_codes_or_names_and_from_ocr() {
        assert_eq!(parse_language("de").unwrap(), Language::German);
        assert_eq!(parse_language("German").unwrap(), Language::German);
        assert!(parse_language("klingon").is_err());
        assert_eq!(language_from_ocr("deu+eng"), Some(Language::German));
        assert_eq!(language_from_ocr("chi_sim"), None);
        assert_eq!(language_code(Language::Turkish), "tr");
    }

    #[test]
    fn the_schema_has_every_field_of_the_spec() {
        let (schema, _) = build();
        for name in [
            "id",
            "checksum",
            "title",
            "correspondent",
            "document_type",
            "storage_path",
            "original_filename",
            "content",
            "title_sort",
            "correspondent_sort",
            "type_sort",
            "bigram_content",
            "bigram_title",
            "bigram_correspondent",
            "bigram_document_type",
            "bigram_tag",
            "simple_title",
            "simple_content",
            "autocomplete_word",
            "tag",
            "notes",
            "notes_text",
            "custom_fields",
            "correspondent_id",
            "document_type_id",
            "storage_path_id",
            "tag_id",
            "owner_id",
            "viewer_id",
            "viewer_group_id",
            "created",
            "modified",
            "added",
            "asn",
            "page_count",
            "num_notes",
        ] {
            assert!(schema.get_field(name).is_ok(), "{name}");
        }
        assert!(fields_of(&schema).is_some());
        let id = schema.get_field_entry(schema.get_field("id").unwrap());
        assert!(id.is_fast() && id.is_indexed());
        let content = schema.get_field_entry(schema.get_field("content").unwrap());
        assert!(content.is_indexed());
    }
}
