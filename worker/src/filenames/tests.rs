//! §8.3 of `matching-index-files.md`, row by row (`f01_…` = F1). Rows about moving files
//! (F2, F10, F17–F23, F42, F60) are checked here for the names and in
//! `tests/tests/renamer.rs` for the moves; rows about save hooks paperboy does not have
//! (F16's and F57's signal counts) are checked for their names only.

use chrono::{NaiveDate, TimeZone, Utc};

use super::*;

fn settings(format: &str) -> FilenameSettings {
    FilenameSettings {
        format: Some(format.to_string()).filter(|f| !f.is_empty()),
        ..Default::default()
    }
}

fn remove_none(format: &str) -> FilenameSettings {
    FilenameSettings {
        remove_none: true,
        ..settings(format)
    }
}

fn doc(id: i64, title: &str) -> NameInfo {
    NameInfo {
        id,
        title: title.into(),
        ..Default::default()
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn sp(path: &str) -> Option<StoragePathRef> {
    Some(StoragePathRef {
        id: 1,
        name: "sp".into(),
        path: path.into(),
    })
}

fn name(s: &FilenameSettings, d: &NameInfo) -> String {
    generate_filename(d, s)
}

fn fmt(format: &str, d: &NameInfo) -> String {
    name(&settings(format), d)
}

#[test]
fn f01_empty_format_is_the_default_name() {
    assert_eq!(fmt("", &doc(42, "x")), "0000042.pdf");
}

#[test]
fn f02_none_correspondent_twice() {
    assert_eq!(
        fmt("{correspondent}/{correspondent}", &doc(1, "x")),
        "none/none.pdf"
    );
    let d = NameInfo {
        correspondent: Some((1, "test".into())),
        ..doc(1, "x")
    };
    assert_eq!(fmt("{correspondent}/{correspondent}", &d), "test/test.pdf");
}

#[test]
fn f03_document_type_none_and_set() {
    let d = doc(1, "the_doc");
    assert_eq!(fmt("{document_type} - {title}", &d), "none - the_doc.pdf");
    let d = NameInfo {
        document_type: Some((1, "my_doc_type".into())),
        ..d
    };
    assert_eq!(
        fmt("{document_type} - {title}", &d),
        "my_doc_type - the_doc.pdf"
    );
}

#[test]
fn f04_f05_asn_set_null_and_zero() {
    let mut d = doc(1, "the_doc");
    d.archive_serial_number = Some(652);
    assert_eq!(fmt("{asn} - {title}", &d), "652 - the_doc.pdf");
    d.archive_serial_number = None;
    assert_eq!(fmt("{asn} - {title}", &d), "none - the_doc.pdf");
    d.archive_serial_number = Some(0);
    assert_eq!(fmt("{asn} - {title}", &d), "none - the_doc.pdf");
}

#[test]
fn f06_tag_list_sorted_and_empty() {
    let d = NameInfo {
        tags: vec![(1, "tag2".into()), (2, "tag1".into())],
        ..doc(1, "doc1")
    };
    assert_eq!(fmt("{title} {tag_list}", &d), "doc1 tag1,tag2.pdf");
    assert_eq!(fmt("{title} {tag_list}", &doc(2, "doc2")), "doc2.pdf");
}

#[test]
fn f07_leading_slashes_are_stripped() {
    assert_eq!(
        fmt("//etc/something/{title}", &doc(1, "doc1")),
        "etc/something/doc1.pdf"
    );
}

#[test]
fn f08_created_parts() {
    let mut d = doc(1, "x");
    d.created = date(2020, 3, 6);
    let f = "{created_year}-{created_month}-{created_day}";
    assert_eq!(fmt(f, &d), "2020-03-06.pdf");
    d.created = date(2020, 11, 16);
    assert_eq!(fmt(f, &d), "2020-11-16.pdf");
}

#[test]
fn f09_added_parts() {
    let mut d = doc(1, "x");
    let f = "{added_year}-{added_month}-{added_day}";
    d.added = Utc.with_ymd_and_hms(1232, 1, 9, 1, 1, 1).unwrap();
    assert_eq!(fmt(f, &d), "1232-01-09.pdf");
    d.added = Utc.with_ymd_and_hms(2020, 11, 16, 1, 1, 1).unwrap();
    assert_eq!(fmt(f, &d), "2020-11-16.pdf");
}

#[test]
fn f10_three_levels_of_none() {
    assert_eq!(
        fmt(
            "{correspondent}/{correspondent}/{correspondent}",
            &doc(1, "x")
        ),
        "none/none/none.pdf"
    );
}

#[test]
fn f11_doc_pk() {
    assert_eq!(fmt("{doc_pk}", &doc(1, "x")), "0000001.pdf");
    assert_eq!(fmt("{doc_pk}", &doc(13579, "x")), "0013579.pdf");
}

#[test]
fn f12_unset_format() {
    assert_eq!(
        name(&FilenameSettings::default(), &doc(1, "x")),
        "0000001.pdf"
    );
}

#[test]
fn f13_syntax_error_falls_back() {
    let n = Namer::new(&doc(1, "x"), &settings("{% if x is None %}/{title]"));
    assert_eq!(n.candidate(Which::Original, 0), "0000001.pdf");
    assert!(n.warning.is_some());
}

#[test]
fn f14_unknown_variable_falls_back() {
    assert_eq!(fmt("{created__year}", &doc(1, "x")), "0000001.pdf");
}

#[test]
fn f15_same_title_gets_a_counter() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings("{title}");
    let n1 = Namer::new(&doc(1, "qwe"), &s);
    let first = unique_original(&n1, dir.path(), Some("0000001.pdf"));
    assert_eq!(first, "qwe.pdf");
    std::fs::write(dir.path().join(&first), b"1").unwrap();
    let n2 = Namer::new(&doc(2, "qwe"), &s);
    let second = unique_original(&n2, dir.path(), Some("0000002.pdf"));
    assert_eq!(second, "qwe_01.pdf");
    std::fs::write(dir.path().join(&second), b"2").unwrap();
    // Re-saving keeps both names.
    assert_eq!(unique_original(&n1, dir.path(), Some("qwe.pdf")), "qwe.pdf");
    assert_eq!(
        unique_original(&n2, dir.path(), Some("qwe_01.pdf")),
        "qwe_01.pdf"
    );
    // Document 1 gone: document 2 takes the plain name.
    std::fs::remove_file(dir.path().join("qwe.pdf")).unwrap();
    assert_eq!(
        unique_original(&n2, dir.path(), Some("qwe_01.pdf")),
        "qwe.pdf"
    );
}

fn select_doc(label: &str) -> NameInfo {
    NameInfo {
        custom_fields: vec![FieldValue {
            name: "test".into(),
            data_type: "select".into(),
            value: serde_json::json!(label),
        }],
        ..doc(1, "document")
    }
}

#[test]
fn f16_select_field_renders_its_label() {
    let f = "{{title}}_{{custom_fields|get_cf_value('test')}}";
    assert_eq!(fmt(f, &select_doc("apple")), "document_apple.pdf");
    // After relabelling the option (the loader resolves the label from the field's options).
    assert_eq!(fmt(f, &select_doc("aubergine")), "document_aubergine.pdf");
    assert_eq!(
        paperboy_shared::db::files::select_label(
            Some(r#"{"select_options":[{"id":"abc123","label":"apple"}]}"#),
            "abc123"
        ),
        "apple"
    );
}

#[test]
fn f17_f18_archive_follows_and_avoids_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let n = Namer::new(&doc(1, "my_doc"), &settings("{correspondent}/{title}"));
    assert_eq!(n.candidate(Which::Original, 0), "none/my_doc.pdf");
    assert_eq!(
        unique_archive(&n, dir.path(), Some("0000001.pdf"), "none/my_doc.pdf"),
        "none/my_doc.pdf"
    );
    std::fs::create_dir_all(dir.path().join("none")).unwrap();
    std::fs::write(dir.path().join("none/my_doc.pdf"), b"foreign").unwrap();
    assert_eq!(
        unique_archive(&n, dir.path(), Some("0000001.pdf"), "none/my_doc.pdf"),
        "none/my_doc_01.pdf"
    );
}

#[test]
fn f19_f20_archive_aligns_with_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let n = Namer::new(&doc(1, "document"), &settings("{title}"));
    // Original document_01.pdf → document.pdf; archive document.pdf stays.
    let orig = unique_original(&n, dir.path(), Some("document_01.pdf"));
    assert_eq!(orig, "document.pdf");
    assert_eq!(
        unique_archive(&n, dir.path(), Some("document.pdf"), &orig),
        "document.pdf"
    );
    // Original document.pdf, archive document_01.pdf → document.pdf.
    assert_eq!(
        unique_archive(&n, dir.path(), Some("document_01.pdf"), "document.pdf"),
        "document.pdf"
    );
}

#[test]
fn f21_f22_f23_names_for_failed_moves() {
    // The moves themselves are the renamer's (tests/tests/renamer.rs); the name is the same.
    let n = Namer::new(&doc(1, "t"), &settings("{correspondent}/{title}"));
    assert_eq!(n.candidate(Which::Original, 0), "none/t.pdf");
    assert_eq!(n.candidate(Which::Archive, 0), "none/t.pdf");
}

#[test]
fn f24_f25_titles_are_sanitised() {
    assert_eq!(
        fmt("{title}", &doc(1, "This. is the title.")),
        "This. is the title.pdf"
    );
    assert_eq!(
        fmt("{title}", &doc(1, "my\\invalid/../title:yay")),
        "my-invalid-..-title-yay.pdf"
    );
}

#[test]
fn f26_created() {
    let mut d = doc(1, "x");
    d.created = date(2020, 5, 21);
    assert_eq!(fmt("{created}", &d), "2020-05-21.pdf");
}

fn sp_doc(path: &str) -> NameInfo {
    NameInfo {
        storage_path: sp(path),
        created: date(2020, 6, 25),
        ..doc(1, "does not matter")
    }
}

#[test]
fn f27_f28_storage_paths() {
    assert_eq!(
        name(&settings(""), &sp_doc("TestFolder/{{created}}")),
        "TestFolder/2020-06-25.pdf"
    );
    assert_eq!(
        name(&settings(""), &sp_doc("{{asn}} - {{created}}")),
        "none - 2020-06-25.pdf"
    );
}

#[test]
fn f29_f30_remove_none_in_storage_paths() {
    assert_eq!(
        name(&remove_none(""), &sp_doc("TestFolder/{{asn}}/{{created}}")),
        "TestFolder/2020-06-25.pdf"
    );
    assert_eq!(
        name(
            &remove_none(""),
            &sp_doc("{{ owner_username }}/{{ created_year }}/{{ correspondent }}/{{ title }}")
        ),
        "2020/does not matter.pdf"
    );
}

#[test]
fn f31_f32_storage_path_wins_over_the_format() {
    let mut d = sp_doc("ThisIsAFolder/{{asn}}/{{created}}");
    d.archive_serial_number = Some(4);
    assert_eq!(name(&settings(""), &d), "ThisIsAFolder/4/2020-06-25.pdf");
    let mut d = sp_doc("SomeImportantNone/{{created}}");
    d.created = date(2020, 7, 25);
    assert_eq!(name(&settings(""), &d), "SomeImportantNone/2020-07-25.pdf");
    assert_eq!(name(&settings(""), &doc(2, "x")), "0000002.pdf");
    assert_eq!(
        name(&settings("{title}"), &d),
        "SomeImportantNone/2020-07-25.pdf"
    );
}

#[test]
fn f33_placeholder_compares_with_none_and_is_falsy() {
    let f = "{% if correspondent == 'none' %}none/{% endif %}{% if correspondent == '-none-' %}dash/{% endif %}{% if not correspondent %}false/{% endif %}{% if correspondent != 'none' %}notnoneyes/{% else %}notnoneno/{% endif %}{{ correspondent or 'missing' }}/{{ title }}";
    let d = doc(1, "does not matter");
    assert_eq!(
        fmt(f, &d),
        "none/dash/false/notnoneno/missing/does not matter.pdf"
    );
    let d = NameInfo {
        correspondent: Some((1, "Acme".into())),
        ..d
    };
    assert_eq!(fmt(f, &d), "notnoneyes/Acme/does not matter.pdf");
}

#[test]
fn f34_created_short_and_month_names() {
    let mut d = doc(1, "The Title");
    d.created = date(1989, 12, 2);
    assert_eq!(
        fmt(
            "{created_year_short}/{created_month_name_short}/{created_month_name}/{title}",
            &d
        ),
        "89/Dec/December/The Title.pdf"
    );
}

#[test]
fn f35_added_short_and_month_names() {
    let mut d = doc(1, "The Title");
    d.added = Utc.with_ymd_and_hms(1984, 8, 21, 7, 36, 0).unwrap();
    assert_eq!(
        fmt(
            "{added_year_short}/{added_month_name}/{added_month_name_short}/{title}",
            &d
        ),
        "84/August/Aug/The Title.pdf"
    );
}

#[test]
fn f36_owner_username() {
    let d = NameInfo {
        owner: Some((3, "user1".into())),
        ..doc(1, "The Title")
    };
    assert_eq!(fmt("{owner_username}/{title}", &d), "user1/The Title.pdf");
    assert_eq!(
        fmt("{owner_username}/{title}", &doc(2, "does matter")),
        "none/does matter.pdf"
    );
}

fn original(name: Option<&str>, mime: &str) -> NameInfo {
    NameInfo {
        original_filename: name.map(str::to_string),
        mime_type: mime.into(),
        ..doc(1, "x")
    }
}

#[test]
fn f37_original_name() {
    let pdf = "application/pdf";
    assert_eq!(
        fmt("{original_name}", &original(Some("someepdf.pdf"), pdf)),
        "someepdf.pdf"
    );
    assert_eq!(
        fmt(
            "{original_name}",
            &original(Some("some pdf with spaces and stuff.pdf"), pdf)
        ),
        "some pdf with spaces and stuff.pdf"
    );
    assert_eq!(fmt("{original_name}", &original(None, pdf)), "none.pdf");
    let txt = original(Some("logs.txt"), "text/plain");
    let n = Namer::new(&txt, &settings("{original_name}"));
    assert_eq!(n.candidate(Which::Original, 0), "logs.txt");
    assert_eq!(n.candidate(Which::Archive, 0), "logs.pdf");
}

#[test]
fn f38_version_suffix_and_counter() {
    let d = NameInfo {
        version_index: Some(1),
        ..doc(7, "the_doc")
    };
    let n = Namer::new(&d, &settings("{title}"));
    assert_eq!(n.candidate(Which::Original, 0), "the_doc_v1.pdf");
    assert_eq!(n.candidate(Which::Original, 1), "the_doc_v1_01.pdf");
}

#[test]
fn f39_default_name_of_a_version() {
    let d = NameInfo {
        version_index: Some(2),
        mime_type: "text/plain".into(),
        ..doc(5, "r")
    };
    let n = Namer::new(&d, &FilenameSettings::default());
    assert_eq!(n.candidate(Which::Original, 0), "0000005_v2.txt");
    assert_eq!(n.candidate(Which::Archive, 0), "0000005_v2.pdf");
}

/// A version row as the loader builds it: the root's fields, the version's index and type.
fn version_of(
    root: &paperboy_shared::db::Document,
    version: &paperboy_shared::db::Document,
) -> NameInfo {
    NameInfo::from_data(&paperboy_shared::db::files::NamingData {
        document: version.clone(),
        root: Some(root.clone()),
        owner: None,
        correspondent: None,
        document_type: None,
        storage_path: None,
        tags: vec![],
        custom_fields: vec![],
    })
}

fn db_doc(id: i64, title: &str, original: &str) -> paperboy_shared::db::Document {
    paperboy_shared::db::Document {
        id,
        owner_id: None,
        correspondent_id: None,
        document_type_id: None,
        storage_path_id: None,
        title: title.into(),
        content: String::new(),
        mime_type: "application/pdf".into(),
        checksum: "a".repeat(64),
        archive_checksum: None,
        page_count: None,
        created: "2020-06-25".into(),
        modified: "2020-06-25T00:00:00Z".into(),
        added: "2020-06-25T00:00:00Z".into(),
        filename: None,
        archive_filename: None,
        original_filename: Some(original.into()),
        archive_serial_number: None,
        root_document_id: None,
        version_index: None,
        version_label: None,
        deleted_at: None,
        restored_at: None,
        transaction_id: None,
        storage_type: Default::default(),
        tags: vec![],
    }
}

#[test]
fn f40_original_name_of_a_version_is_the_roots() {
    let root = db_doc(1, "root", "root-upload.pdf");
    let mut v = db_doc(2, "version", "version-upload.pdf");
    v.root_document_id = Some(1);
    v.version_index = Some(1);
    let info = version_of(&root, &v);
    assert_eq!(fmt("{original_name}", &info), "root-upload_v1.pdf");
}

#[test]
fn f41_version_follows_the_roots_storage_path() {
    let root = db_doc(1, "storage_doc", "a.pdf");
    let mut v = db_doc(2, "titled differently", "b.pdf");
    v.root_document_id = Some(1);
    v.version_index = Some(3);
    let mut info = version_of(&root, &v);
    info.storage_path = sp("folder/{{title}}");
    assert_eq!(name(&settings(""), &info), "folder/storage_doc_v3.pdf");
}

#[test]
fn f42_root_and_version_follow_a_changed_storage_path() {
    let mut root = sp_doc("new/{{title}}");
    root.title = "rootdoc".into();
    assert_eq!(name(&settings(""), &root), "new/rootdoc.pdf");
    root.version_index = Some(1);
    assert_eq!(name(&settings(""), &root), "new/rootdoc_v1.pdf");
}

#[test]
fn f43_remove_none_inside_a_component() {
    assert_eq!(
        name(&remove_none("XX{correspondent}/{title}"), &doc(1, "doc1")),
        "XX/doc1.pdf"
    );
}

const MULTILINE: &str = "
    somepath/
    {% if document.checksum == '2' %}
      some where/{{created}}
    {% else %}
      {{added}}
    {% endif %}
    /{{ title }}
";

#[test]
fn f44_multi_line_template() {
    let mut d = sp_doc(MULTILINE);
    d.title = "Does Matter".into();
    d.checksum = "2".into();
    assert_eq!(
        name(&settings(""), &d),
        "somepath/some where/2020-06-25/Does Matter.pdf"
    );
    d.checksum = "5".into();
    d.added = Utc.with_ymd_and_hms(2024, 10, 1, 12, 0, 0).unwrap();
    assert_eq!(
        name(&settings(""), &d),
        "somepath/2024-10-01/Does Matter.pdf"
    );
}

#[test]
fn f45_document_attributes_and_arithmetic() {
    let mut d = sp_doc("{{ document.title|lower }}{{ document.archive_serial_number - 2 }}");
    d.title = "Does Matter".into();
    d.archive_serial_number = Some(25);
    assert_eq!(name(&settings(""), &d), "does matter23.pdf");
}

const ASN_RANGES: &str = "
    somepath/
    {% if document.archive_serial_number >= 0 and document.archive_serial_number <= 200 %}
      asn-000-200/{{title}}
    {% elif document.archive_serial_number >= 201 and document.archive_serial_number <= 400 %}
      asn-201-400
      {% if document.archive_serial_number >= 201 and document.archive_serial_number < 300 %}
        /asn-2xx
      {% elif document.archive_serial_number >= 300 and document.archive_serial_number < 400 %}
        /asn-3xx
      {% endif %}
    {% endif %}
    /{{ title }}
";

#[test]
fn f46_asn_range_template() {
    let mut d = sp_doc(ASN_RANGES);
    d.title = "Does Matter".into();
    d.archive_serial_number = Some(25);
    assert_eq!(
        name(&settings(""), &d),
        "somepath/asn-000-200/Does Matter/Does Matter.pdf"
    );
    d.archive_serial_number = Some(301);
    assert_eq!(
        name(&settings(""), &d),
        "somepath/asn-201-400/asn-3xx/Does Matter.pdf"
    );
}

#[test]
fn f47_related_objects_render_as_their_names() {
    let d = NameInfo {
        storage_path: Some(StoragePathRef {
            id: 1,
            name: "PARTNER".into(),
            path: "{{ document.storage_path|lower }} / {{ document.correspondent|lower|replace('mi:', 'mieter/') }} / {{ document_type|lower }} / {{ title|lower }}".into(),
        }),
        correspondent: Some((1, "mi:kochkach".into())),
        document_type: Some((1, "Mietvertrag".into())),
        ..doc(1, "scan_017562")
    };
    assert_eq!(
        name(&settings(""), &d),
        "partner/mieter/kochkach/mietvertrag/scan_017562.pdf"
    );
}

#[test]
fn f48_undefined_variable_warns_once_and_falls_back() {
    let n = Namer::new(
        &doc(2, "x"),
        &settings("{{creation_date}}/{{ title_name_str }}"),
    );
    assert_eq!(n.candidate(Which::Original, 0), "0000002.pdf");
    assert_eq!(
        n.warning.as_deref(),
        Some("Template variable warning: 'creation_date' is undefined")
    );
}

#[test]
fn f49_calling_methods_on_the_document_is_refused() {
    let n = Namer::new(&doc(2, "x"), &settings("{{created}}/{{ document.save() }}"));
    assert_eq!(n.candidate(Which::Original, 0), "0000002.pdf");
    let w = n.warning.unwrap();
    assert!(w.starts_with("Template variable error:"), "{w}");
}

fn field(name: &str, data_type: &str, value: serde_json::Value) -> FieldValue {
    FieldValue {
        name: name.into(),
        data_type: data_type.into(),
        value,
    }
}

#[test]
fn f50_membership_test_on_custom_fields() {
    let d = NameInfo {
        custom_fields: vec![field("Invoice", "integer", serde_json::json!(1234))],
        ..doc(1, "x")
    };
    let f = "{% if \"Invoice\" in custom_fields %}invoices/{{ custom_fields | get_cf_value('Invoice') }}{% else %}other{% endif %}";
    assert_eq!(fmt(f, &d), "invoices/1234.pdf");
}

#[test]
fn f51_get_cf_value_default() {
    let f = "{{ title }}_{{ custom_fields | get_cf_value('Select Field', 'Default Value') }}";
    let set = NameInfo {
        custom_fields: vec![field(
            "Select Field",
            "select",
            serde_json::json!("ChoiceOne"),
        )],
        ..doc(1, "Some Title")
    };
    assert_eq!(fmt(f, &set), "Some Title_ChoiceOne.pdf");
    let unset = NameInfo {
        custom_fields: vec![field("Select Field", "select", serde_json::Value::Null)],
        ..doc(1, "Some Title")
    };
    assert_eq!(fmt(f, &unset), "Some Title_Default Value.pdf");
}

#[test]
fn f52_get_cf_value_with_numeric_default() {
    let d = NameInfo {
        custom_fields: vec![field("Invoice Number", "integer", serde_json::json!(4567))],
        ..doc(1, "x")
    };
    assert_eq!(
        fmt(
            "invoices/{{ custom_fields | get_cf_value('Invoice Number') }}",
            &d
        ),
        "invoices/4567.pdf"
    );
    assert_eq!(
        fmt(
            "invoices/{{ custom_fields | get_cf_value('Ince Number', 0) }}",
            &d
        ),
        "invoices/0.pdf"
    );
}

#[test]
fn f53_datetime_filter() {
    let mut d = doc(1, "Some Title");
    d.created = date(2020, 6, 25);
    d.custom_fields = vec![field("Date Field", "date", serde_json::json!("2024-10-01"))];
    assert_eq!(
        fmt("{{ created | datetime('%Y') }}/{{ title }}", &d),
        "2020/Some Title.pdf"
    );
    assert_eq!(
        fmt("{{ created | datetime('%Y-%m-%d') }}/{{ title }}", &d),
        "2020-06-25/Some Title.pdf"
    );
    assert_eq!(
        fmt(
            "{{ custom_fields | get_cf_value('Date Field') | datetime('%Y-%m-%d') }}/{{ title }}",
            &d
        ),
        "2024-10-01/Some Title.pdf"
    );
}

#[test]
fn f54_slugify() {
    let d = NameInfo {
        correspondent: Some((1, "John's @ Office / Workplace".into())),
        custom_fields: vec![field(
            "Location",
            "string",
            serde_json::json!("Brussels @ Belgium!"),
        )],
        ..doc(1, "Some Title! With @ Special # Characters")
    };
    assert_eq!(
        fmt("{{ title | slugify }}", &d),
        "some-title-with-special-characters.pdf"
    );
    assert_eq!(
        fmt("{{ correspondent | slugify }}/{{ title | slugify }}", &d),
        "johns-office-workplace/some-title-with-special-characters.pdf"
    );
    assert_eq!(
        fmt(
            "{{ custom_fields | get_cf_value('Location') | slugify }}/{{ title | slugify }}",
            &d
        ),
        "brussels-belgium/some-title-with-special-characters.pdf"
    );
}

#[test]
fn f55_localize_date() {
    let mut d = doc(1, "My Document");
    d.created = date(2023, 10, 26);
    assert_eq!(
        fmt(
            "{{title}}_{{ document.created | localize_date('MMMM', 'es_ES')}}",
            &d
        ),
        "My Document_octubre.pdf"
    );
    assert_eq!(
        fmt(
            "{{title}}_{{ document.created | localize_date('EEEE', 'fr_FR')}}",
            &d
        ),
        "My Document_jeudi.pdf"
    );
    assert_eq!(
        fmt(
            "{{title}}_{{ document.created | localize_date('dd/MM/yyyy', 'en_GB')}}",
            &d
        ),
        "My Document_26/10/2023.pdf"
    );
}

#[test]
fn f56_every_result_is_nfc() {
    let nfd = |s: &str| s.nfd().collect::<String>();
    let d = NameInfo {
        correspondent: Some((1, nfd("Müller"))),
        tags: vec![(1, nfd("Café"))],
        original_filename: Some(nfd("Rechnung März.pdf")),
        ..doc(1, &nfd("Gemüse"))
    };
    let cases = [
        ("{{ title }}", "Gemüse.pdf"),
        ("{{ correspondent }}/{{ title }}", "Müller/Gemüse.pdf"),
        ("{{ document.title }}", "Gemüse.pdf"),
        ("{{ tag_list }}/{{ title }}", "Café/Gemüse.pdf"),
        ("{{ original_name }}", "Rechnung März.pdf"),
    ];
    for (f, want) in cases {
        let got = fmt(f, &d);
        assert_eq!(got, want, "{f}");
        assert_eq!(got, got.nfc().collect::<String>(), "{f} is not NFC");
    }
    let literal = NameInfo {
        storage_path: sp(&nfd("Büro/{{ title }}")),
        ..d
    };
    assert_eq!(name(&settings(""), &literal), "Büro/Gemüse.pdf");
}

#[test]
fn f57_a_template_without_custom_fields_does_not_depend_on_them() {
    let f = "{{ title }}";
    let mut d = doc(1, "document");
    let before = fmt(f, &d);
    d.custom_fields = vec![field("flavor", "string", serde_json::json!("changed"))];
    assert_eq!(fmt(f, &d), before);
}

#[test]
fn f58_custom_field_change_changes_the_name() {
    let f = "{{ custom_fields|get_cf_value('flavor') }}/{{ title }}";
    let mut d = doc(1, "document");
    d.storage_path = sp(f);
    d.custom_fields = vec![field("flavor", "string", serde_json::json!("initial"))];
    assert_eq!(name(&settings(""), &d), "initial/document.pdf");
    d.custom_fields = vec![field("flavor", "string", serde_json::json!("updated"))];
    assert_eq!(name(&settings(""), &d), "updated/document.pdf");
}

#[test]
fn f59_over_1024_characters_is_refused() {
    let mut d = sp_doc(&"a".repeat(1100));
    d.id = 3;
    let n = Namer::new(&d, &settings(""));
    assert!(n.warning.is_some());
    assert_eq!(n.candidate(Which::Original, 0), "0000003.pdf");
}

#[test]
fn f60_jpeg_with_archive() {
    let d = NameInfo {
        mime_type: "image/jpeg".into(),
        ..doc(1, "test")
    };
    let n = Namer::new(&d, &settings("{correspondent}/{title}"));
    assert_eq!(n.candidate(Which::Original, 0), "none/test.jpg");
    assert_eq!(n.candidate(Which::Archive, 0), "none/test.pdf");
}

#[test]
fn f61_archives_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings("{title}");
    let n2 = Namer::new(&doc(2, "document"), &s);
    let n1 = Namer::new(&doc(1, "document"), &s);
    let a2 = unique_archive(&n2, dir.path(), None, "document_01.pdf");
    assert_eq!(a2, "document_01.pdf");
    std::fs::write(dir.path().join(&a2), b"2").unwrap();
    let a1 = unique_archive(&n1, dir.path(), None, "document.pdf");
    assert_eq!(a1, "document.pdf");
}

#[test]
fn f62_unsafe_or_empty_titles() {
    for t in ["..", "...", "   "] {
        assert_eq!(fmt("{title}", &doc(9, t)), "0000009.pdf", "title {t:?}");
    }
}

#[test]
fn f63_traversal_is_rejected() {
    let n = Namer::new(&doc(9, "x"), &settings("../../x/{title}"));
    assert_eq!(n.candidate(Which::Original, 0), "0000009.pdf");
    assert!(n.warning.unwrap().contains("unsafe"));
}

#[test]
fn f64_v1_tag_syntax_renders_literally() {
    assert_eq!(fmt("{tags[type]}", &doc(1, "x")), "{tags[type]}.pdf");
}

#[test]
fn f65_bare_tags_is_undefined() {
    assert_eq!(fmt("{tags}", &doc(4, "x")), "0000004.pdf");
}

#[test]
fn f66_remove_none_keeps_a_leading_space() {
    assert_eq!(
        name(
            &remove_none("{correspondent} {document_type} - {title}"),
            &doc(1, "T")
        ),
        " - T.pdf"
    );
}

#[test]
fn f67_remove_none_folders() {
    let f = "{correspondent}/{document_type}/{title}";
    assert_eq!(name(&remove_none(f), &doc(1, "T")), "T.pdf");
    assert_eq!(fmt(f, &doc(1, "T")), "none/none/T.pdf");
}

#[test]
fn f68_a_title_that_is_the_placeholder() {
    assert_eq!(fmt("{title}", &doc(3, "-none-")), "none.pdf");
    assert_eq!(
        name(&remove_none("{title}"), &doc(3, "-none-")),
        "0000003.pdf"
    );
}

#[test]
fn f69_document_title_is_raw() {
    assert_eq!(fmt("{{ document.title }}", &doc(1, "a/b:c")), "a/b:c.pdf");
}

#[test]
fn f70_blanks_around_slashes() {
    let mut d = doc(1, "x");
    d.archive_serial_number = Some(5);
    assert_eq!(fmt(" {{ title }} / {{ asn }} ", &d), "x/5.pdf");
}

#[test]
fn f71_missing_field_renders_none() {
    assert_eq!(
        fmt(
            "invoices/{{ custom_fields | get_cf_value('Missing') }}",
            &doc(1, "x")
        ),
        "invoices/None.pdf"
    );
}

#[test]
fn f72_original_name_keeps_inner_dots() {
    let pdf = "application/pdf";
    assert_eq!(
        fmt("{original_name}", &original(Some("archive.tar.gz"), pdf)),
        "archive.tar.pdf"
    );
    assert_eq!(
        fmt("{original_name}", &original(Some(".hidden"), pdf)),
        ".hidden.pdf"
    );
}

#[test]
fn f73_reserved_and_forbidden_characters() {
    assert_eq!(fmt("{title}", &doc(1, "CON")), "CON_.pdf");
    assert_eq!(fmt("{title}", &doc(1, "a:b*c?d")), "a-b-c-d.pdf");
    let d = NameInfo {
        correspondent: Some((1, "AC/DC".into())),
        ..doc(1, "x")
    };
    assert_eq!(fmt("{correspondent}/{title}", &d), "AC-DC/x.pdf");
}

#[test]
fn f74_counters() {
    let n = Namer::new(&doc(1, "title"), &settings("{title}"));
    assert_eq!(n.candidate(Which::Archive, 12), "title_12.pdf");
    let n = Namer::new(&doc(42, "x"), &FilenameSettings::default());
    assert_eq!(n.candidate(Which::Original, 3), "0000042_03.pdf");
}

#[test]
fn f75_added_in_the_time_zone() {
    let s = FilenameSettings {
        time_zone: "Europe/Berlin".parse().unwrap(),
        ..settings("{added}")
    };
    let mut d = doc(1, "x");
    d.added = Utc.with_ymd_and_hms(2021, 3, 4, 23, 30, 0).unwrap();
    assert_eq!(name(&s, &d), "2021-03-05.pdf");
    assert_eq!(fmt("{added}", &d), "2021-03-04.pdf");
}

#[test]
fn legacy_conversion() {
    use template::convert_legacy;
    assert_eq!(convert_legacy("{title}"), "{{ title }}");
    assert_eq!(convert_legacy("{{ title }}"), "{{ title }}");
    assert_eq!(convert_legacy("{tags[type]}"), "{tags[type]}");
    assert_eq!(
        convert_legacy("{created_year}/{correspondent} x"),
        "{{ created_year }}/{{ correspondent }} x"
    );
    assert!(template::uses_legacy_syntax("{title}"));
    assert!(!template::uses_legacy_syntax("{{ title }}"));
}

#[test]
fn settings_come_from_the_config() {
    let mut env = std::collections::HashMap::new();
    env.insert(
        "PAPERLESS_FILENAME_FORMAT".to_string(),
        "{title}".to_string(),
    );
    env.insert(
        "PAPERLESS_TIME_ZONE".to_string(),
        "Europe/Berlin".to_string(),
    );
    let c = Config::from(&env).unwrap();
    let s = FilenameSettings::from_config(&c).unwrap();
    assert_eq!(s.format.as_deref(), Some("{title}"));
    assert_eq!(s.time_zone, chrono_tz::Europe::Berlin);
    env.insert("PAPERBOY_TIME_ZONE".to_string(), "Mars/Olympus".to_string());
    let c = Config::from(&env).unwrap();
    let err = FilenameSettings::from_config(&c).unwrap_err();
    assert!(err.contains("PAPERBOY_TIME_ZONE"), "{err}");
}
