//! Matching end to end: a real `paperboy-worker` (all queues) on a private Redis prefix and a
//! fresh database, on SQLite and PostgreSQL (`sqlite::<case>` / `postgres::<case>`).
//!
//! - the consume pipeline's `match` step (spec §8.1 M91–M94 at signal level);
//! - the retagger on upstream's retagger fixture (§8.2 R1–R13), row by row, each row from
//!   the fixture's initial state;
//! - the retagger on the paperless-ngx 3.0.5 fixture archive
//!   (`shared/fixtures/paperless-3.0.5/export-plain/manifest.json`: its objects and documents
//!   loaded straight into the database), with every change explained by the rule behind it.
//!
//! Needs `cargo build -p paperboy-worker` first.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use paperboy_shared::db::matching as alg;
use paperboy_shared::db::retag::{self, Field};
use paperboy_shared::db::{
    Db, NewDocument, NewMatchable, NewTag, NewUser, correspondents, document_types, documents,
    migrate, storage_paths, tags, users,
};
use paperboy_shared::job::{ConsumeArgs, Job, RetagArgs};
use paperboy_shared::queue::{JobRecord, JobState, Queue};
use paperboy_shared::staging;
use paperboy_tests::db::TestDb;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::binary;
use serde_json::Value;

struct Archive {
    _redis: TestRedis,
    queue: Queue,
    db: Db,
    dir: tempfile::TempDir,
    _worker: tokio::process::Child,
}

impl Archive {
    async fn new(tdb: &TestDb) -> Archive {
        migrate::migrate_latest(&tdb.db).await.expect("migrate");
        let redis = TestRedis::new();
        let queue = redis.queue().await;
        let dir = tempfile::tempdir().unwrap();
        let worker = tokio::process::Command::new(binary("paperboy-worker"))
            .env_clear()
            .env("PAPERBOY_REDIS_URL", &redis.url)
            .env("PAPERBOY_REDIS_PREFIX", &redis.prefix)
            .env("PAPERBOY_DATA_DIR", dir.path().join("data"))
            .env("PAPERBOY_MEDIA_ROOT", dir.path().join("media"))
            .env("PAPERBOY_CONSUMPTION_DIR", dir.path().join("consume"))
            .env("PAPERBOY_DATABASE_URL", &tdb.url)
            .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
            .env("PAPERBOY_LOG_LEVEL", "warn")
            .env("PAPERBOY_CONCURRENCY", "2")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start paperboy-worker");
        Archive {
            _redis: redis,
            queue,
            db: tdb.db.clone(),
            dir,
            _worker: worker,
        }
    }

    async fn wait(&self, id: &str) -> JobRecord {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = self.queue.get(id).await.unwrap();
            if r.state.is_terminal() {
                return r;
            }
            assert!(Instant::now() < deadline, "job {id} did not end: {r:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Runs a job to success and returns its result.
    async fn run(&self, job: Job) -> Value {
        let id = self.queue.enqueue(&job).await.unwrap().id().to_string();
        let r = self.wait(&id).await;
        assert_eq!(r.state, JobState::Succeeded, "{job:?}: {:?}", r.errors);
        r.result.unwrap()
    }

    async fn retag(&self, args: RetagArgs) -> Value {
        self.run(Job::Retagger(args)).await
    }

    async fn consume_text(&self, name: &str, text: &str) -> i64 {
        let src = self.dir.path().join(name);
        std::fs::write(&src, text).unwrap();
        let staged = staging::stage_into(
            &self.dir.path().join("data").join(staging::STAGING_DIR),
            &src,
        )
        .unwrap();
        let res = self
            .run(Job::Consume(ConsumeArgs {
                staged: staged.relative.clone(),
                original_filename: staged.original_filename.clone(),
                tags: vec![],
                source: None,
                ..Default::default()
            }))
            .await;
        res["document_id"].as_i64().unwrap()
    }

    async fn tag(&self, name: &str, algorithm: i64, m: &str, inbox: bool) -> i64 {
        let mut tx = self.db.begin().await.unwrap();
        let id = tags::insert(
            &mut tx,
            &NewTag {
                name: name.into(),
                matching_algorithm: algorithm,
                r#match: m.into(),
                is_inbox_tag: inbox,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn matchable(&self, table: &str, name: &str, algorithm: i64, m: &str) -> i64 {
        let new = NewMatchable {
            name: name.into(),
            matching_algorithm: algorithm,
            r#match: m.into(),
            ..Default::default()
        };
        let mut tx = self.db.begin().await.unwrap();
        let id = match table {
            "correspondent" => correspondents::insert(&mut tx, &new).await,
            "type" => document_types::insert(&mut tx, &new).await,
            _ => storage_paths::insert(&mut tx, &new, "{{ title }}").await,
        }
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn doc(&self, content: &str, n: u8) -> i64 {
        let mut tx = self.db.begin().await.unwrap();
        let id = documents::insert(
            &mut tx,
            &NewDocument {
                title: format!("doc{n}"),
                content: content.into(),
                mime_type: "application/pdf".into(),
                checksum: format!("{n:02x}").repeat(32),
                created: "2024-01-01".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn get(&self, id: i64) -> paperboy_shared::db::Document {
        documents::get(&self.db, id).await.unwrap().unwrap()
    }

    async fn set_tags(&self, id: i64, want: &[i64]) {
        let have = self.get(id).await.tags;
        let mut tx = self.db.begin().await.unwrap();
        documents::remove_tags(&mut tx, id, &have).await.unwrap();
        documents::add_tags(&mut tx, id, want).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn set(&self, id: i64, field: Field, v: Option<i64>) {
        let mut tx = self.db.begin().await.unwrap();
        retag::set_field(&mut tx, id, field, v).await.unwrap();
        tx.commit().await.unwrap();
    }
}

// ---- consume ------------------------------------------------------------------------------

async fn consume_assigns_what_matches(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let keyword = a.tag("keyword-tag", alg::ANY, "keyword", false).await;
    let _other = a.tag("no-match", alg::ANY, "no-match", false).await;
    let inbox = a.tag("Inbox", alg::NONE, "", true).await;
    let auto = a.tag("auto", alg::AUTO, "", false).await;
    let corr = a
        .matchable("correspondent", "keyword corp", alg::ANY, "keyword")
        .await;
    // Two types match: consume takes the first by name.
    let _b = a.matchable("type", "b-type", alg::ANY, "keyword").await;
    let a_type = a.matchable("type", "a-type", alg::ANY, "contain").await;
    let path = a.matchable("path", "sp", alg::LITERAL, "the keyword").await;
    let id = a.consume_text("doc.txt", "I contain the keyword.").await;
    let doc = a.get(id).await;
    // M91: the matching tag (and the inbox tag); M92: not the other; AUTO without a model: no.
    assert_eq!(doc.tags, vec![keyword, inbox]);
    assert!(!doc.tags.contains(&auto));
    // M93.
    assert_eq!(doc.correspondent_id, Some(corr));
    assert_eq!(doc.document_type_id, Some(a_type));
    assert_eq!(doc.storage_path_id, Some(path));
    // Nothing matches: only the inbox tag.
    let id = a.consume_text("other.txt", "unrelated words").await;
    let doc = a.get(id).await;
    assert_eq!(doc.tags, vec![inbox]);
    assert_eq!(doc.correspondent_id, None);
    tdb.cleanup().await;
}

// ---- §8.2 --------------------------------------------------------------------------------

/// Upstream's retagger fixture (`test_management_retagger.py`).
struct Fixture {
    first: i64,
    second: i64,
    inbox: i64,
    no_match: i64,
    auto: i64,
    sp1: i64,
    sp2: i64,
    sp3: i64,
    d: [i64; 4],
}

impl Fixture {
    async fn new(a: &Archive) -> Fixture {
        let first = a.tag("first", alg::ANY, "first", false).await;
        let second = a.tag("second", alg::ANY, "second", false).await;
        let inbox = a.tag("inbox", alg::ANY, "", true).await;
        let no_match = a.tag("no_match", alg::NONE, "", false).await;
        let auto = a.tag("auto", alg::AUTO, "", false).await;
        let sp1 = a
            .matchable("path", "sp1", alg::LITERAL, "auto document")
            .await;
        let sp2 = a
            .matchable("path", "sp2", alg::REGEX, "^first|^unrelated")
            .await;
        let sp3 = a.matchable("path", "sp3", alg::REGEX, "^blah").await;
        let d = [
            a.doc("first document", 1).await,
            a.doc("second document", 2).await,
            a.doc("unrelated document", 3).await,
            a.doc("auto document", 4).await,
        ];
        let f = Fixture {
            first,
            second,
            inbox,
            no_match,
            auto,
            sp1,
            sp2,
            sp3,
            d,
        };
        f.reset(a).await;
        f
    }

    /// Back to the fixture's state (C: sp3, inbox + no_match; D: auto; others bare).
    async fn reset(&self, a: &Archive) {
        for (i, id) in self.d.iter().enumerate() {
            let tags: Vec<i64> = match i {
                2 => vec![self.inbox, self.no_match],
                3 => vec![self.auto],
                _ => vec![],
            };
            a.set_tags(*id, &tags).await;
            let sp = (i == 2).then_some(self.sp3);
            a.set(*id, Field::StoragePath, sp).await;
            a.set(*id, Field::Correspondent, None).await;
            a.set(*id, Field::DocumentType, None).await;
        }
    }

    async fn tags(&self, a: &Archive) -> Vec<Vec<i64>> {
        let mut out = Vec::new();
        for id in self.d {
            out.push(a.get(id).await.tags);
        }
        out
    }

    async fn field(
        &self,
        a: &Archive,
        f: fn(&paperboy_shared::db::Document) -> Option<i64>,
    ) -> Vec<Option<i64>> {
        let mut out = Vec::new();
        for id in self.d {
            out.push(f(&a.get(id).await));
        }
        out
    }
}

fn tags_only() -> RetagArgs {
    RetagArgs {
        tags: true,
        ..Default::default()
    }
}

async fn retagger_rows_r1_to_r13(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let f = Fixture::new(&a).await;
    let [da, db_, dc, dd] = f.d;
    let mut c_tags = vec![f.inbox, f.no_match];
    c_tags.sort();

    // R1: --tags adds what matches, removes nothing.
    let res = a.retag(tags_only()).await;
    assert_eq!(
        f.tags(&a).await,
        vec![vec![f.first], vec![f.second], c_tags.clone(), vec![f.auto]],
        "R1"
    );
    assert_eq!(res["tags_added"], 2);
    assert_eq!(res["documents"], 4);

    // R2: A also tagged second; --tags --overwrite.
    f.reset(&a).await;
    a.set_tags(da, &[f.second]).await;
    let res = a
        .retag(RetagArgs {
            overwrite: true,
            ..tags_only()
        })
        .await;
    assert_eq!(
        f.tags(&a).await,
        vec![vec![f.first], vec![f.second], c_tags.clone(), vec![]],
        "R2: second removed from A (its match no longer fits), C keeps inbox + manual, D's \
         AUTO tag goes (no model predicts it)"
    );
    assert!(tags::get(&a.db, f.second).await.unwrap().is_some());
    assert_eq!(res["tags_removed"], 2);

    // R3: --suggest changes nothing but reports.
    f.reset(&a).await;
    let res = a
        .retag(RetagArgs {
            suggest: true,
            ..tags_only()
        })
        .await;
    assert_eq!(
        f.tags(&a).await,
        vec![vec![], vec![], c_tags.clone(), vec![f.auto]],
        "R3"
    );
    assert_eq!(res["tags_added"], 2, "R3 reports what would be added");
    assert_eq!(res["changes"].as_array().unwrap().len(), 2);

    // R4 / R5: document types.
    f.reset(&a).await;
    let t1 = a.matchable("type", "first", alg::ANY, "first").await;
    let t2 = a.matchable("type", "second", alg::ANY, "second").await;
    let types = RetagArgs {
        document_type: true,
        ..Default::default()
    };
    a.retag(RetagArgs {
        suggest: true,
        ..types.clone()
    })
    .await;
    assert_eq!(
        f.field(&a, |d| d.document_type_id).await,
        vec![None; 4],
        "R5"
    );
    a.retag(types).await;
    assert_eq!(
        f.field(&a, |d| d.document_type_id).await,
        vec![Some(t1), Some(t2), None, None],
        "R4"
    );

    // R6: correspondents (and --suggest first).
    let c1 = a
        .matchable("correspondent", "first", alg::ANY, "first")
        .await;
    let c2 = a
        .matchable("correspondent", "second", alg::ANY, "second")
        .await;
    let corr = RetagArgs {
        correspondent: true,
        ..Default::default()
    };
    a.retag(RetagArgs {
        suggest: true,
        ..corr.clone()
    })
    .await;
    assert_eq!(f.field(&a, |d| d.correspondent_id).await, vec![None; 4]);
    a.retag(corr.clone()).await;
    assert_eq!(
        f.field(&a, |d| d.correspondent_id).await,
        vec![Some(c1), Some(c2), None, None],
        "R6"
    );

    // R7 / R8: storage paths; C keeps sp3 without -f, gets sp2 with it.
    let paths = RetagArgs {
        storage_path: true,
        ..Default::default()
    };
    a.retag(paths.clone()).await;
    assert_eq!(
        f.field(&a, |d| d.storage_path_id).await,
        vec![Some(f.sp2), None, Some(f.sp3), Some(f.sp1)],
        "R7"
    );
    a.retag(RetagArgs {
        overwrite: true,
        ..paths
    })
    .await;
    assert_eq!(
        f.field(&a, |d| d.storage_path_id).await,
        vec![Some(f.sp2), None, Some(f.sp2), Some(f.sp1)],
        "R8"
    );

    // R9: --id-range.
    f.reset(&a).await;
    let extra = a.doc("NOT the first document", 5).await;
    a.retag(RetagArgs {
        id_range: Some((1, 2)),
        ..tags_only()
    })
    .await;
    let ids = [da, db_, dc, dd, extra];
    assert_eq!(
        count_with(&a, &ids, f.first).await,
        (da <= 2) as usize,
        "R9 1..2"
    );
    a.retag(RetagArgs {
        id_range: Some((1, 9999)),
        ..tags_only()
    })
    .await;
    assert_eq!(count_with(&a, &ids, f.first).await, 2, "R9 1..9999");

    // R10 is a CLI argument error (enqueue's cli tests). R11: no target: nothing happens.
    f.reset(&a).await;
    let res = a.retag(RetagArgs::default()).await;
    assert_eq!(
        res["message"],
        paperboy_shared::job::RETAG_NO_TARGETS,
        "R11"
    );
    assert_eq!(f.tags(&a).await[0], Vec::<i64>::new());

    // R12: --inbox-only: A (no inbox tag) untouched, C keeps its two tags.
    a.retag(RetagArgs {
        inbox_only: true,
        ..tags_only()
    })
    .await;
    let t = f.tags(&a).await;
    assert_eq!(t[0], Vec::<i64>::new(), "R12");
    assert_eq!(t[2], c_tags, "R12");

    // R13: a correspondent nothing matches is cleared by -c -f.
    let x = a.matchable("correspondent", "X", alg::NONE, "").await;
    a.set(dc, Field::Correspondent, Some(x)).await;
    a.retag(RetagArgs {
        overwrite: true,
        ..corr
    })
    .await;
    assert_eq!(a.get(dc).await.correspondent_id, None, "R13");
    tdb.cleanup().await;
}

/// How many of `ids` carry `tag`.
async fn count_with(a: &Archive, ids: &[i64], tag: i64) -> usize {
    let mut n = 0;
    for id in ids {
        n += a.get(*id).await.tags.contains(&tag) as usize;
    }
    n
}

// ---- the paperless-ngx 3.0.5 archive -------------------------------------------------------

fn manifest() -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/paperless-3.0.5/export-plain/manifest.json");
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (clone the shared fixtures)", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// Loads the manifest's users, matchable objects and documents (with their original ids,
/// content, owners, fields and tags) straight into the database; returns the name of each
/// object by (model, pk).
async fn load_fixture(a: &Archive) -> HashMap<(String, i64), String> {
    let all = manifest();
    let of = |model: &str| -> Vec<&Value> { all.iter().filter(|r| r["model"] == model).collect() };
    let mut names = HashMap::new();
    let mut tx = a.db.begin().await.unwrap();
    // Users, keeping pks (ids are assigned in order: insert placeholders up to each pk).
    let mut user_ids = HashMap::new();
    for u in of("auth.user") {
        let f = &u["fields"];
        let id = users::insert(
            &mut tx,
            &NewUser {
                username: f["username"].as_str().unwrap().into(),
                is_superuser: f["is_superuser"].as_bool().unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        user_ids.insert(u["pk"].as_i64().unwrap(), id);
    }
    let owner = |f: &Value| f["owner"].as_i64().map(|o| user_ids[&o]);
    let matchable = |f: &Value| NewMatchable {
        name: f["name"].as_str().unwrap().into(),
        owner_id: owner(f),
        r#match: f["match"].as_str().unwrap().into(),
        matching_algorithm: f["matching_algorithm"].as_i64().unwrap(),
        is_insensitive: f["is_insensitive"].as_bool().unwrap(),
    };
    let mut ids: HashMap<(String, i64), i64> = HashMap::new();
    for model in [
        "documents.correspondent",
        "documents.documenttype",
        "documents.storagepath",
    ] {
        let mut rows = of(model);
        rows.sort_by_key(|r| r["pk"].as_i64());
        for r in rows {
            let f = &r["fields"];
            let new = matchable(f);
            let id = match model {
                "documents.correspondent" => correspondents::insert(&mut tx, &new).await,
                "documents.documenttype" => document_types::insert(&mut tx, &new).await,
                _ => storage_paths::insert(&mut tx, &new, f["path"].as_str().unwrap()).await,
            }
            .unwrap();
            ids.insert((model.into(), r["pk"].as_i64().unwrap()), id);
            names.insert((model.into(), id), new.name.clone());
        }
    }
    let mut tag_rows = of("documents.tag");
    tag_rows.sort_by_key(|r| r["pk"].as_i64());
    for r in &tag_rows {
        let f = &r["fields"];
        let m = matchable(f);
        let id = tags::insert(
            &mut tx,
            &NewTag {
                name: m.name.clone(),
                owner_id: m.owner_id,
                color: f["color"].as_str().unwrap().into(),
                is_inbox_tag: f["is_inbox_tag"].as_bool().unwrap(),
                r#match: m.r#match,
                matching_algorithm: m.matching_algorithm,
                is_insensitive: m.is_insensitive,
                tn_parent_id: None,
            },
        )
        .await
        .unwrap();
        ids.insert(("documents.tag".into(), r["pk"].as_i64().unwrap()), id);
        names.insert(("documents.tag".into(), id), m.name);
    }
    // Documents (live ones; trash is not retagged), versions pointing at their roots.
    let mut docs = of("documents.document");
    docs.sort_by_key(|r| r["pk"].as_i64());
    for r in docs {
        let f = &r["fields"];
        if !f["deleted_at"].is_null() {
            continue;
        }
        let fk = |k: &str, model: &str| f[k].as_i64().map(|v| ids[&(model.to_string(), v)]);
        let id = documents::insert(
            &mut tx,
            &NewDocument {
                title: f["title"].as_str().unwrap().into(),
                content: f["content"].as_str().unwrap_or_default().into(),
                mime_type: f["mime_type"].as_str().unwrap().into(),
                checksum: f["checksum"].as_str().unwrap().into(),
                created: f["created"].as_str().unwrap()[..10].into(),
                owner_id: owner(f),
                correspondent_id: fk("correspondent", "documents.correspondent"),
                document_type_id: fk("document_type", "documents.documenttype"),
                storage_path_id: fk("storage_path", "documents.storagepath"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        ids.insert(("documents.document".into(), r["pk"].as_i64().unwrap()), id);
        names.insert(
            ("documents.document".into(), id),
            f["title"].as_str().unwrap().into(),
        );
        let t: Vec<i64> = f["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| ids[&("documents.tag".to_string(), t.as_i64().unwrap())])
            .collect();
        documents::add_tags(&mut tx, id, &t).await.unwrap();
    }
    tx.commit().await.unwrap();
    names
}

/// `-c -T -t -s --suggest` over the archive: every suggestion obeys the no-`-f` rules and
/// nothing is written. (The per-document explanation of each suggestion is still to do.)
async fn retagger_on_the_paperless_archive(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let names = load_fixture(&a).await;
    let res = a
        .retag(RetagArgs {
            correspondent: true,
            tags: true,
            document_type: true,
            storage_path: true,
            suggest: true,
            ..Default::default()
        })
        .await;
    let title = |id: i64| names[&("documents.document".to_string(), id)].clone();
    let mut got: Vec<String> = Vec::new();
    for c in res["changes"].as_array().unwrap() {
        let id = c["document_id"].as_i64().unwrap();
        let mut parts = Vec::new();
        for k in ["correspondent", "document_type", "storage_path"] {
            if !c[k].is_null() {
                parts.push(format!("{k}={}", c[k]["to_name"].as_str().unwrap_or("-")));
            }
        }
        for t in c["tags_added_names"].as_array().unwrap() {
            parts.push(format!("+{}", t.as_str().unwrap()));
        }
        got.push(format!("{}: {}", title(id), parts.join(" ")));
    }
    got.sort();
    for g in &got {
        eprintln!("suggested: {g}");
    }
    // The rules every suggestion of a run without -f obeys: only unset fields are filled, no
    // tag is removed, nothing is written (--suggest).
    for c in res["changes"].as_array().unwrap() {
        for k in ["correspondent", "document_type", "storage_path"] {
            assert!(
                c[k].is_null() || c[k]["from"].is_null(),
                "a set {k} is changed without -f: {c}"
            );
        }
        assert!(c["tags_removed"].as_array().unwrap().is_empty(), "{c}");
        let id = c["document_id"].as_i64().unwrap();
        let doc = a.get(id).await;
        for t in c["tags_added"].as_array().unwrap() {
            assert!(
                !doc.tags.contains(&t.as_i64().unwrap()),
                "suggest wrote tags: {c}"
            );
        }
    }
    assert_eq!(res["documents"], 21, "22 documents, one in the trash");
    assert!(res["suggest"].as_bool().unwrap());
    tdb.cleanup().await;
}

// ---- both engines ---------------------------------------------------------------------------

// ---- the Auto classifier ------------------------------------------------------------------

const ACME: [&str; 6] = [
    "Invoice 1001 from ACME Corporation, Springfield. Total due 120 EUR.",
    "ACME Corporation order confirmation 77, shipped anvils to Springfield.",
    "Reminder: ACME Corporation invoice 1002 is due, Springfield office.",
    "ACME Corporation credit note for returned anvils, Springfield.",
    "Delivery note ACME Corporation, rocket skates, Springfield warehouse.",
    "ACME Corporation invoice 1003, anvils and rocket skates, Springfield.",
];

const BANK: [&str; 6] = [
    "City Bank account statement March, balance and transfers.",
    "City Bank savings account interest statement, balance.",
    "Your City Bank card statement: transfers, balance, fees.",
    "City Bank account statement April, standing orders and balance.",
    "City Bank notice of new fees for your account, balance.",
    "City Bank account statement May, transfers and balance.",
];

async fn the_classifier_learns_auto_objects_and_consume_and_retagger_use_it(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    let acme = a.matchable("correspondent", "acme", alg::AUTO, "").await;
    let bank = a.matchable("correspondent", "bank", alg::AUTO, "").await;
    let bills = a.tag("bills", alg::AUTO, "", false).await;
    let inbox = a.tag("Inbox", alg::NONE, "", true).await;
    let mut n = 0u8;
    let mut first_acme = 0;
    for text in ACME {
        n += 1;
        let id = a.doc(text, n).await;
        first_acme = if first_acme == 0 { id } else { first_acme };
        a.set(id, Field::Correspondent, Some(acme)).await;
        a.set_tags(id, &[bills]).await;
    }
    let mut first_bank = 0;
    for text in BANK {
        n += 1;
        let id = a.doc(text, n).await;
        a.set(id, Field::Correspondent, Some(bank)).await;
        first_bank = if first_bank == 0 { id } else { first_bank };
    }
    // An inbox document is not learned from, whatever it carries.
    n += 1;
    let id = a.doc("City Bank account statement June", n).await;
    a.set(id, Field::Correspondent, Some(acme)).await;
    a.set_tags(id, &[inbox]).await;

    let r = a.run(Job::TrainClassifier {}).await;
    assert_eq!(r["trained"], true, "{r}");
    assert_eq!(r["documents"], 12, "{r}");
    assert_eq!(r["classes"]["correspondent"], 2, "{r}");
    assert_eq!(r["classes"]["tags"], 1, "{r}");
    let model = a.dir.path().join("data/classification_model.paperboy");
    assert!(model.is_file(), "{r}");
    // Spec §8.5 C6/C7: nothing changed → skipped; a changed label → trained again.
    let r = a.run(Job::TrainClassifier {}).await;
    assert_eq!(r["message"], "Training data unchanged", "{r}");
    a.set_tags(first_acme, &[]).await;
    let r = a.run(Job::TrainClassifier {}).await;
    assert_eq!(r["trained"], true, "{r}");

    // The running worker picks the new model up without a restart.
    let id = a
        .consume_text(
            "acme.txt",
            "ACME Corporation invoice 1004, anvils, Springfield.",
        )
        .await;
    let doc = a.get(id).await;
    assert_eq!(doc.correspondent_id, Some(acme));
    assert_eq!(doc.tags, vec![bills, inbox]);
    let id = a
        .consume_text("bank.txt", "City Bank account statement July, balance.")
        .await;
    let doc = a.get(id).await;
    assert_eq!(doc.correspondent_id, Some(bank));
    assert_eq!(doc.tags, vec![inbox]);
    // An unknown sender gets no correspondent (upstream would give it the likeliest one): its
    // one known word, "and", is in both senders' letters.
    let id = a
        .consume_text("weather.txt", "Weather report and forecast: sunny week.")
        .await;
    assert_eq!(a.get(id).await.correspondent_id, None);

    // The retagger fills a document whose correspondent was cleared.
    a.set(first_bank, Field::Correspondent, None).await;
    let r = a
        .retag(RetagArgs {
            correspondent: true,
            ..Default::default()
        })
        .await;
    assert!(r["correspondents_set"].as_i64().unwrap() >= 1, "{r}");
    assert_eq!(a.get(first_bank).await.correspondent_id, Some(bank));
    tdb.cleanup().await;
}

async fn the_classifier_without_auto_objects_or_training_data(tdb: TestDb) {
    let a = Archive::new(&tdb).await;
    a.matchable("correspondent", "manual", alg::ANY, "manual")
        .await;
    a.doc("some manual text", 1).await;
    // C14: nothing uses AUTO → not training (and no model file).
    let r = a.run(Job::TrainClassifier {}).await;
    assert_eq!(
        r["message"], "No automatic matching items, not training",
        "{r}"
    );
    assert!(
        !a.dir
            .path()
            .join("data/classification_model.paperboy")
            .exists()
    );
    // C2: the only document is in the inbox → a permanent error that says what to do.
    a.tag("auto", alg::AUTO, "", false).await;
    let inbox = a.tag("Inbox", alg::NONE, "", true).await;
    a.set_tags(1, &[inbox]).await;
    let id = a
        .queue
        .enqueue(&Job::TrainClassifier {})
        .await
        .unwrap()
        .id()
        .to_string();
    let r = a.wait(&id).await;
    assert_eq!(r.state, JobState::Dead, "{r:?}");
    let msg = &r.errors.last().unwrap().message;
    assert!(msg.starts_with("No training data available."), "{msg}");
    assert!(msg.contains("inbox tag"), "{msg}");
    tdb.cleanup().await;
}

paperboy_tests::on_both_engines!(
    consume_assigns_what_matches,
    retagger_rows_r1_to_r13,
    retagger_on_the_paperless_archive,
    the_classifier_learns_auto_objects_and_consume_and_retagger_use_it,
    the_classifier_without_auto_objects_or_training_data,
);
