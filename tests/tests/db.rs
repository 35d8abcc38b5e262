//! The database layer on SQLite and PostgreSQL: every case below runs once per engine
//! (`sqlite::<case>` and `postgres::<case>`), each on a fresh database.

use std::future::Future;

use paperboy_shared::db::migrate::{self, Migration};
use paperboy_shared::db::{
    ChecksumMatch, Db, DbError, Engine, NewDocument, NewMatchable, NewTag, NewUser, StorageType,
    correspondents, custom_fields, document_types, documents, notes, storage_paths, tags, users,
};
use paperboy_tests::db::TestDb;
use sqlx::Row;

async fn run<F, Fut>(engine: Engine, case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let t = TestDb::new(engine).await;
    case(t.db.clone()).await;
    t.cleanup().await;
}

paperboy_tests::on_both_engines!(runner = super::run;
    connect_settings,
    migrate_latest_from_empty,
    down_to_zero_and_up_again,
    refuses_below_irreversible,
    failed_step_leaves_nothing,
    refuses_schema_newer_than_known,
    concurrent_migrate,
    document_insert_get,
    document_paging,
    find_by_checksum_includes_trash,
    unique_constraints,
    rollback_leaves_nothing,
    tags_and_objects,
    foreign_keys_on_delete,
);

/// Every table of migration 0001.
const TABLES: &[&str] = &[
    "correspondents",
    "custom_field_instances",
    "custom_fields",
    "document_tags",
    "document_types",
    "documents",
    "groups",
    "mail_accounts",
    "mail_messages",
    "mail_rule_cursors",
    "mail_rule_tags",
    "mail_rules",
    "notes",
    "processed_mail",
    "storage_paths",
    "tags",
    "user_groups",
    "users",
];

fn sha(n: u64) -> String {
    format!("{n:064x}")
}

fn new_doc(n: u64) -> NewDocument {
    NewDocument {
        title: format!("Document {n}"),
        content: format!("content of document {n}"),
        mime_type: "application/pdf".into(),
        checksum: sha(n),
        created: "2024-03-01".into(),
        filename: Some(format!("{n:07}.pdf")),
        original_filename: Some(format!("scan {n}.pdf")),
        ..Default::default()
    }
}

async fn migrated(db: &Db) {
    migrate::migrate_latest(db).await.expect("migrate_latest");
}

async fn connect_settings(db: Db) {
    db.ping().await.unwrap();
    if db.engine == Engine::Sqlite {
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query("PRAGMA foreign_keys")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query("PRAGMA busy_timeout")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(busy, 5000);
    }
}

async fn migrate_latest_from_empty(db: Db) {
    assert_eq!(migrate::current_version(&db).await.unwrap(), 0);
    let pending = migrate::list(&db).await.unwrap();
    assert!(pending.iter().all(|s| s.applied_at.is_none()));
    assert_eq!(pending.len(), migrate::MIGRATIONS.len());

    let applied = migrate::migrate_latest(&db).await.unwrap();
    let all: Vec<i64> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(applied, all);
    let latest = migrate::latest(migrate::MIGRATIONS);
    assert_eq!(migrate::current_version(&db).await.unwrap(), latest);

    let status = migrate::list(&db).await.unwrap();
    assert_eq!(
        status.iter().map(|s| s.version).collect::<Vec<_>>(),
        all,
        "list shows every known version"
    );
    for (s, m) in status.iter().zip(migrate::MIGRATIONS) {
        assert_eq!(s.name, m.name);
        assert_eq!(s.since, "0.1.0");
        assert!(s.applied_at.is_some(), "{} applied", s.version);
        assert_eq!(s.applied_by.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert!(!s.unknown);
    }

    let tables = migrate::table_names(&db).await.unwrap();
    for t in TABLES {
        assert!(
            tables.iter().any(|x| x == t),
            "table {t} missing: {tables:?}"
        );
    }
    // Second run: nothing to do.
    assert!(migrate::migrate_latest(&db).await.unwrap().is_empty());
    migrate::check_compatible(&db).await.unwrap();
    migrate::check_up_to_date(&db).await.unwrap();
}

/// Several workers starting at once: every step is applied exactly once.
async fn concurrent_migrate(db: Db) {
    assert!(matches!(
        migrate::check_up_to_date(&db).await,
        Err(DbError::SchemaOutdated { db_version: 0, .. })
    ));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { migrate::migrate_latest(&db).await })
        })
        .collect();
    let mut applied = Vec::new();
    for t in tasks {
        applied.extend(t.await.unwrap().expect("concurrent migrate_latest"));
    }
    applied.sort();
    let all: Vec<i64> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(applied, all, "each version applied exactly once");
    migrate::check_up_to_date(&db).await.unwrap();
}

async fn down_to_zero_and_up_again(db: Db) {
    migrated(&db).await;
    let latest = migrate::latest(migrate::MIGRATIONS);

    let r = migrate::migrate_to(&db, 1).await.unwrap();
    assert_eq!(r.reverted, vec![3, 2]);
    assert!(r.applied.is_empty());
    assert_eq!(migrate::current_version(&db).await.unwrap(), 1);
    let status = migrate::list(&db).await.unwrap();
    assert!(status[0].applied_at.is_some() && status[1].applied_at.is_none());
    assert!(status[2].applied_at.is_none());

    let r = migrate::migrate_to(&db, 0).await.unwrap();
    assert_eq!(r.reverted, vec![1]);
    assert_eq!(migrate::current_version(&db).await.unwrap(), 0);
    assert_eq!(
        migrate::table_names(&db).await.unwrap(),
        vec!["paperboy_migrations".to_string()],
        "all tables gone"
    );

    let r = migrate::migrate_to(&db, latest).await.unwrap();
    assert_eq!(r.applied, vec![1, 2, 3]);
    let tables = migrate::table_names(&db).await.unwrap();
    assert_eq!(tables.len(), TABLES.len() + 1, "{tables:?}");

    // And the schema works after the round trip.
    let mut tx = db.begin().await.unwrap();
    let id = documents::insert(&mut tx, &new_doc(1)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(documents::get(&db, id).await.unwrap().is_some());

    assert!(matches!(
        migrate::migrate_to(&db, latest + 1).await,
        Err(DbError::UnknownVersion { .. })
    ));
}

const fn test_migration(
    version: i64,
    name: &'static str,
    up: &'static str,
    down: &'static str,
    reason: &'static str,
) -> Migration {
    Migration {
        version,
        name,
        since: "9.9.9",
        reversible: reason.is_empty(),
        irreversible_reason: reason,
        sqlite_up: up,
        sqlite_down: down,
        postgres_up: up,
        postgres_down: down,
    }
}

static TEST_MIGRATIONS: &[Migration] = &[
    test_migration(
        1,
        "t_one",
        "CREATE TABLE t_one (id INTEGER PRIMARY KEY, payload TEXT)",
        "DROP TABLE t_one",
        "",
    ),
    test_migration(
        2,
        "t_drop_payload",
        "ALTER TABLE t_one DROP COLUMN payload; CREATE TABLE t_two (id INTEGER PRIMARY KEY)",
        "",
        "it dropped t_one.payload and the values are gone",
    ),
    test_migration(
        3,
        "t_three",
        "CREATE TABLE t_three (id INTEGER PRIMARY KEY)",
        "DROP TABLE t_three",
        "",
    ),
];

async fn refuses_below_irreversible(db: Db) {
    let r = migrate::migrate_to_with(&db, TEST_MIGRATIONS, 3)
        .await
        .unwrap();
    assert_eq!(r.applied, vec![1, 2, 3]);

    // Down to 0 is refused before anything is reverted (3 is reversible, 2 is not).
    let err = migrate::migrate_to_with(&db, TEST_MIGRATIONS, 0)
        .await
        .unwrap_err();
    match &err {
        DbError::Irreversible {
            target,
            version,
            name,
            reason,
        } => {
            assert_eq!((*target, *version, *name), (0, 2, "t_drop_payload"));
            assert!(reason.contains("payload"));
        }
        other => panic!("expected Irreversible, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("migration 2 (t_drop_payload) is irreversible"),
        "{msg}"
    );
    assert_eq!(migrate::current_version(&db).await.unwrap(), 3);
    assert!(
        migrate::table_names(&db)
            .await
            .unwrap()
            .contains(&"t_three".to_string())
    );

    // Down to 2 is fine, below it is not.
    let r = migrate::migrate_to_with(&db, TEST_MIGRATIONS, 2)
        .await
        .unwrap();
    assert_eq!(r.reverted, vec![3]);
    assert!(matches!(
        migrate::migrate_to_with(&db, TEST_MIGRATIONS, 1).await,
        Err(DbError::Irreversible { version: 2, .. })
    ));
    assert_eq!(migrate::current_version(&db).await.unwrap(), 2);
    let status = migrate::list_with(&db, TEST_MIGRATIONS).await.unwrap();
    assert!(!status[1].reversible);
    assert_eq!(status[1].since, "9.9.9");
}

async fn failed_step_leaves_nothing(db: Db) {
    static BROKEN: &[Migration] = &[
        test_migration(
            1,
            "ok",
            "CREATE TABLE t_ok (id INTEGER PRIMARY KEY)",
            "DROP TABLE t_ok",
            "",
        ),
        test_migration(
            2,
            "broken",
            "CREATE TABLE t_half (id INTEGER PRIMARY KEY); INSERT INTO t_missing VALUES (1)",
            "DROP TABLE t_half",
            "",
        ),
    ];
    let err = migrate::migrate_to_with(&db, BROKEN, 2).await.unwrap_err();
    assert!(matches!(err, DbError::Sqlx(_)), "{err:?}");
    // Step 1 committed, step 2 rolled back entirely (transactional DDL).
    assert_eq!(migrate::current_version(&db).await.unwrap(), 1);
    let tables = migrate::table_names(&db).await.unwrap();
    assert!(tables.contains(&"t_ok".to_string()));
    assert!(!tables.contains(&"t_half".to_string()), "{tables:?}");
}

async fn refuses_schema_newer_than_known(db: Db) {
    migrated(&db).await;
    sqlx::query(
        "INSERT INTO paperboy_migrations (version, name, paperboy_version, applied_at) \
         VALUES (9999, 'from_the_future', '99.0.0', '2099-01-01T00:00:00.000000Z')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let known = migrate::latest(migrate::MIGRATIONS);
    let err = migrate::check_compatible(&db).await.unwrap_err();
    match &err {
        DbError::SchemaTooNew {
            db_version: 9999,
            known: k,
        } => assert_eq!(*k, known),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(err.to_string().contains("upgrade paperboy"), "{err}");
    assert!(matches!(
        migrate::migrate_latest(&db).await,
        Err(DbError::SchemaTooNew { .. })
    ));
    assert!(matches!(
        migrate::migrate_to(&db, 0).await,
        Err(DbError::SchemaTooNew { .. })
    ));
    let status = migrate::list(&db).await.unwrap();
    let last = status.last().unwrap();
    assert_eq!((last.version, last.unknown), (9999, true));
    assert_eq!(migrate::current_version(&db).await.unwrap(), 9999);
}

async fn document_insert_get(db: Db) {
    migrated(&db).await;
    let mut tx = db.begin().await.unwrap();
    let corr = correspondents::insert(&mut tx, &NewMatchable::named("ACME"))
        .await
        .unwrap();
    let owner = users::insert(
        &mut tx,
        &NewUser {
            username: "alice".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let doc = NewDocument {
        correspondent_id: Some(corr),
        owner_id: Some(owner),
        archive_serial_number: Some(4_294_967_295),
        page_count: Some(3),
        added: Some("2024-03-02T10:00:00.000000Z".into()),
        storage_type: StorageType::Gpg,
        ..new_doc(7)
    };
    let id = documents::insert(&mut tx, &doc).await.unwrap();
    let t1 = tags::get_or_create_by_name(&mut tx, "invoice")
        .await
        .unwrap();
    let t2 = tags::get_or_create_by_name(&mut tx, "paid").await.unwrap();
    documents::add_tags(&mut tx, id, &[t2, t1, t1])
        .await
        .unwrap();
    documents::set_files(
        &mut tx,
        id,
        Some("2024/ACME/invoice.pdf"),
        Some("2024/ACME/invoice.pdf"),
        Some(&sha(70)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let got = documents::get(&db, id).await.unwrap().expect("document");
    assert_eq!(got.id, id);
    assert_eq!(got.title, "Document 7");
    assert_eq!(got.content, "content of document 7");
    assert_eq!(got.checksum, sha(7));
    assert_eq!(got.archive_checksum, Some(sha(70)));
    assert_eq!(got.filename.as_deref(), Some("2024/ACME/invoice.pdf"));
    assert_eq!(
        got.archive_filename.as_deref(),
        Some("2024/ACME/invoice.pdf")
    );
    assert_eq!(got.original_filename.as_deref(), Some("scan 7.pdf"));
    assert_eq!(got.created, "2024-03-01");
    assert_eq!(got.added, "2024-03-02T10:00:00.000000Z");
    assert!(got.modified.ends_with('Z') && got.modified > got.added);
    assert_eq!(got.archive_serial_number, Some(4_294_967_295));
    assert_eq!(got.page_count, Some(3));
    assert_eq!(got.correspondent_id, Some(corr));
    assert_eq!(got.owner_id, Some(owner));
    assert_eq!(got.document_type_id, None);
    assert_eq!(got.storage_type, StorageType::Gpg);
    assert!(!got.in_trash());
    let mut want = vec![t1, t2];
    want.sort();
    assert_eq!(got.tags, want);
    let json = serde_json::to_value(&got).unwrap();
    assert_eq!(json["storage_type"], "gpg");
    assert_eq!(json["archive_serial_number"], 4_294_967_295_i64);

    assert!(documents::get(&db, id + 1000).await.unwrap().is_none());
    let mut tx = db.begin().await.unwrap();
    assert!(matches!(
        documents::set_files(&mut tx, id + 1000, None, None, None).await,
        Err(DbError::NotFound { .. })
    ));
    assert!(matches!(
        documents::insert(
            &mut tx,
            &NewDocument {
                created: "01.03.2024".into(),
                ..new_doc(8)
            }
        )
        .await,
        Err(DbError::Invalid {
            field: "created",
            ..
        })
    ));
}

async fn document_paging(db: Db) {
    migrated(&db).await;
    let mut tx = db.begin().await.unwrap();
    let tag = tags::get_or_create_by_name(&mut tx, "t").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..25 {
        let id = documents::insert(&mut tx, &new_doc(n)).await.unwrap();
        if n % 2 == 0 {
            documents::add_tags(&mut tx, id, &[tag]).await.unwrap();
        }
        ids.push(id);
    }
    // One in the trash: not listed, not counted.
    documents::trash(&mut tx, ids[12]).await.unwrap();
    tx.commit().await.unwrap();
    let live: Vec<i64> = ids.iter().copied().filter(|id| *id != ids[12]).collect();

    assert_eq!(documents::count(&db).await.unwrap(), 24);
    let mut seen = Vec::new();
    let mut after = 0;
    let mut pages = Vec::new();
    loop {
        let page = documents::list(&db, after, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        pages.push(page.len());
        for d in &page {
            let n = ids.iter().position(|i| *i == d.id).unwrap();
            let want: Vec<i64> = if n % 2 == 0 { vec![tag] } else { vec![] };
            assert_eq!(d.tags, want, "tags of document {}", d.id);
            assert_eq!(d.checksum, sha(n as u64));
        }
        after = page.last().unwrap().id;
        seen.extend(page.iter().map(|d| d.id));
    }
    assert_eq!(pages, vec![10, 10, 4]);
    assert_eq!(seen, live);

    let mut seen_ids = Vec::new();
    let mut after = 0;
    loop {
        let page = documents::ids_after(&db, after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = *last;
        seen_ids.extend(page);
    }
    assert_eq!(seen_ids, live);
    let all = documents::ids_after_including_trash(&db, 0, 100)
        .await
        .unwrap();
    assert_eq!(all, ids);
    assert!(documents::list(&db, 0, 0).await.unwrap().is_empty());
}

async fn find_by_checksum_includes_trash(db: Db) {
    migrated(&db).await;
    let mut tx = db.begin().await.unwrap();
    let a = documents::insert(
        &mut tx,
        &NewDocument {
            archive_checksum: Some(sha(101)),
            ..new_doc(1)
        },
    )
    .await
    .unwrap();
    let b = documents::insert(&mut tx, &new_doc(2)).await.unwrap();
    documents::trash(&mut tx, b).await.unwrap();
    tx.commit().await.unwrap();

    let hit = |id, n: &str, in_trash| {
        Some(ChecksumMatch {
            id,
            title: n.to_string(),
            in_trash,
        })
    };
    assert_eq!(
        documents::find_by_checksum(&db, &sha(1)).await.unwrap(),
        hit(a, "Document 1", false)
    );
    assert_eq!(
        documents::find_by_checksum(&db, &sha(101)).await.unwrap(),
        hit(a, "Document 1", false),
        "archive checksum matches too"
    );
    assert_eq!(
        documents::find_by_checksum(&db, &sha(2).to_uppercase())
            .await
            .unwrap(),
        hit(b, "Document 2", true),
        "trash included, hex case ignored"
    );
    assert_eq!(
        documents::find_by_checksum(&db, &sha(3)).await.unwrap(),
        None
    );
}

async fn unique_constraints(db: Db) {
    migrated(&db).await;
    let mut tx = db.begin().await.unwrap();
    documents::insert(
        &mut tx,
        &NewDocument {
            archive_serial_number: Some(42),
            archive_filename: Some("a.pdf".into()),
            ..new_doc(1)
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let cases = [
        (
            "filename",
            new_doc(2).filename(new_doc(1).filename.unwrap()),
        ),
        (
            "archive_serial_number",
            NewDocument {
                archive_serial_number: Some(42),
                ..new_doc(3)
            },
        ),
        (
            "archive_filename",
            NewDocument {
                archive_filename: Some("a.pdf".into()),
                ..new_doc(4)
            },
        ),
    ];
    for (what, doc) in cases {
        let mut tx = db.begin().await.unwrap();
        let err = documents::insert(&mut tx, &doc).await.unwrap_err();
        assert!(err.is_unique_violation(), "{what}: {err:?}");
        drop(tx);
    }
    // The same checksum twice is allowed (non-unique since paperless v3).
    let mut tx = db.begin().await.unwrap();
    documents::insert(
        &mut tx,
        &NewDocument {
            checksum: sha(1),
            ..new_doc(5)
        },
    )
    .await
    .unwrap();
    // Tags: the name is unique among ownerless tags.
    tags::insert(
        &mut tx,
        &NewTag {
            name: "x".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let err = tags::insert(
        &mut tx,
        &NewTag {
            name: "x".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.is_unique_violation(), "{err:?}");
    drop(tx);
    assert_eq!(documents::count(&db).await.unwrap(), 2);
}

/// `NewDocument` with another filename (keeps the case table readable).
trait WithFilename {
    fn filename(self, f: String) -> Self;
}
impl WithFilename for NewDocument {
    fn filename(self, f: String) -> Self {
        NewDocument {
            filename: Some(f),
            ..self
        }
    }
}

async fn rollback_leaves_nothing(db: Db) {
    migrated(&db).await;
    let mut tx = db.begin().await.unwrap();
    let id = documents::insert(&mut tx, &new_doc(1)).await.unwrap();
    let tag = tags::get_or_create_by_name(&mut tx, "gone").await.unwrap();
    documents::add_tags(&mut tx, id, &[tag]).await.unwrap();
    tx.rollback().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    documents::insert(&mut tx, &new_doc(2)).await.unwrap();
    drop(tx); // dropped without commit: rolled back too

    assert_eq!(documents::count(&db).await.unwrap(), 0);
    assert!(documents::get(&db, id).await.unwrap().is_none());
    assert!(
        documents::find_by_checksum(&db, &sha(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(tags::list(&db).await.unwrap().is_empty());
}

async fn tags_and_objects(db: Db) {
    migrated(&db).await;
    let mut tx = db.begin().await.unwrap();
    let inbox = tags::insert(
        &mut tx,
        &NewTag {
            name: "Inbox".into(),
            is_inbox_tag: true,
            color: "#ff0000".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let parent = tags::get_or_create_by_name(&mut tx, "finance")
        .await
        .unwrap();
    assert_eq!(
        tags::get_or_create_by_name(&mut tx, "finance")
            .await
            .unwrap(),
        parent,
        "get_or_create returns the existing tag"
    );
    let child = tags::insert(
        &mut tx,
        &NewTag {
            name: "tax".into(),
            tn_parent_id: Some(parent),
            r#match: "tax return".into(),
            matching_algorithm: 3,
            is_insensitive: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        tags::insert(
            &mut tx,
            &NewTag {
                name: "bad".into(),
                color: "red".into(),
                ..Default::default()
            }
        )
        .await,
        Err(DbError::Invalid { field: "color", .. })
    ));
    let dt = document_types::get_or_create_by_name(&mut tx, "Invoice")
        .await
        .unwrap();
    assert_eq!(
        document_types::get_or_create_by_name(&mut tx, "Invoice")
            .await
            .unwrap(),
        dt
    );
    let sp = storage_paths::insert(
        &mut tx,
        &NewMatchable::named("by year"),
        "{{ created_year }}/{{ title }}",
    )
    .await
    .unwrap();
    let corr = correspondents::insert(
        &mut tx,
        &NewMatchable {
            name: "Bank".into(),
            r#match: "bank".into(),
            matching_algorithm: 0,
            is_insensitive: false,
            owner_id: None,
        },
    )
    .await
    .unwrap();
    let doc = documents::insert(&mut tx, &new_doc(1)).await.unwrap();
    let field = custom_fields::insert(&mut tx, "Amount", "monetary", None)
        .await
        .unwrap();
    custom_fields::set_text_value(
        &mut tx,
        doc,
        field,
        custom_fields::TextColumn::Monetary,
        "EUR12.50",
    )
    .await
    .unwrap();
    custom_fields::set_text_value(
        &mut tx,
        doc,
        field,
        custom_fields::TextColumn::Monetary,
        "EUR13.00",
    )
    .await
    .unwrap();
    assert!(matches!(
        custom_fields::insert(&mut tx, "Bad", "color", None).await,
        Err(DbError::Invalid {
            field: "data_type",
            ..
        })
    ));
    notes::insert(&mut tx, doc, None, "call back")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(tags::inbox_tags(&db).await.unwrap(), vec![inbox]);
    let all = tags::list(&db).await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![inbox, parent, child]
    );
    let f = &all[1];
    assert_eq!(
        (
            f.color.as_str(),
            f.is_inbox_tag,
            f.matching_algorithm,
            f.is_insensitive
        ),
        ("#a6cee3", false, 1, true),
        "defaults"
    );
    let c = tags::get(&db, child).await.unwrap().unwrap();
    assert_eq!(c.tn_parent_id, Some(parent));
    assert_eq!(
        (c.r#match.as_str(), c.matching_algorithm, c.is_insensitive),
        ("tax return", 3, false)
    );
    assert!(tags::get(&db, inbox).await.unwrap().unwrap().is_inbox_tag);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["match"], "tax return");

    let p = storage_paths::get(&db, sp).await.unwrap().unwrap();
    assert_eq!(p.path, "{{ created_year }}/{{ title }}");
    assert_eq!(storage_paths::list(&db).await.unwrap().len(), 1);
    let b = correspondents::get(&db, corr).await.unwrap().unwrap();
    assert_eq!(
        (
            b.name.as_str(),
            b.r#match.as_str(),
            b.matching_algorithm,
            b.is_insensitive
        ),
        ("Bank", "bank", 0, false)
    );
    assert_eq!(document_types::list(&db).await.unwrap()[0].name, "Invoice");

    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MAX(value_monetary) AS v FROM custom_field_instances \
         WHERE document_id = $1",
    )
    .bind(doc)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        row.try_get::<i64, _>("n").unwrap(),
        1,
        "unique (document, field)"
    );
    assert_eq!(row.try_get::<String, _>("v").unwrap(), "EUR13.00");
}

async fn foreign_keys_on_delete(db: Db) {
    migrated(&db).await;
    let mut tx = db.begin().await.unwrap();
    let corr = correspondents::insert(&mut tx, &NewMatchable::named("C"))
        .await
        .unwrap();
    let tag = tags::get_or_create_by_name(&mut tx, "T").await.unwrap();
    let doc = documents::insert(
        &mut tx,
        &NewDocument {
            correspondent_id: Some(corr),
            ..new_doc(1)
        },
    )
    .await
    .unwrap();
    documents::add_tags(&mut tx, doc, &[tag]).await.unwrap();
    notes::insert(&mut tx, doc, None, "n").await.unwrap();
    tx.commit().await.unwrap();

    // A reference to a missing row is refused (foreign keys are on in SQLite too).
    let mut tx = db.begin().await.unwrap();
    let err = documents::add_tags(&mut tx, doc, &[tag + 1000])
        .await
        .unwrap_err();
    assert!(err.is_foreign_key_violation(), "{err:?}");
    drop(tx);

    // SET NULL for optional references, CASCADE for M2M rows and notes.
    sqlx::query("DELETE FROM correspondents WHERE id = $1")
        .bind(corr)
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM tags WHERE id = $1")
        .bind(tag)
        .execute(&db.pool)
        .await
        .unwrap();
    let d = documents::get(&db, doc).await.unwrap().unwrap();
    assert_eq!(d.correspondent_id, None);
    assert!(d.tags.is_empty());
    sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(doc)
        .execute(&db.pool)
        .await
        .unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM notes")
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 0);
}
