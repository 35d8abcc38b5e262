//! The mail fetcher against a real Dovecot (tests/src/dovecot.rs): messages put in with IMAP
//! APPEND, real `paperboy-worker` processes serving `mail` and `consume`, a fresh database on
//! SQLite and on PostgreSQL for every case. Ports the spec's mail rows (§6) that apply.
//!
//! Needs `cargo build -p paperboy-worker -p paperboy` and Debian `dovecot-imapd`.

use std::time::Duration;

use paperboy_shared::db::mail::{
    self, MessageState, NewMailAccount, NewMailRule, accounts, messages, rules,
};
use paperboy_shared::db::{Db, documents, migrate};
use paperboy_shared::job::Job;
use paperboy_shared::queue::{JobRecord, JobState, Queue};
use paperboy_tests::db::TestDb;
use paperboy_tests::dovecot::{Dovecot, Mailbox, message, pdf};
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::{WorkerBuilder, WorkerProcess, binary, eventually};

const PASSWORD: &str = "s3cret-Pw";

/// One test's world: Dovecot, Redis prefix, database, shared data/media folders, workers.
struct World {
    dovecot: Dovecot,
    redis: TestRedis,
    queue: Queue,
    db: Db,
    url: String,
    dir: tempfile::TempDir,
    workers: Vec<WorkerProcess>,
}

impl World {
    async fn new(tdb: &TestDb, users: &[&str]) -> World {
        migrate::migrate_latest(&tdb.db).await.expect("migrate");
        let creds: Vec<(&str, &str)> = users.iter().map(|u| (*u, PASSWORD)).collect();
        let dovecot = Dovecot::start(&creds);
        let redis = TestRedis::new();
        let queue = redis.queue().await;
        World {
            dovecot,
            redis,
            queue,
            db: tdb.db.clone(),
            url: tdb.url.clone(),
            dir: tempfile::tempdir().unwrap(),
            workers: Vec::new(),
        }
    }

    fn builder(&self, queues: &str) -> WorkerBuilder {
        let d = self.dir.path();
        WorkerBuilder::new(&self.redis.url, &self.redis.prefix)
            .queues(queues)
            .env("PAPERBOY_DATA_DIR", d.join("data").to_str().unwrap())
            .env("PAPERBOY_MEDIA_ROOT", d.join("media").to_str().unwrap())
            .env("PAPERBOY_DATABASE_URL", &self.url)
            .env(
                "PAPERBOY_EMAIL_CERTIFICATE_LOCATION",
                self.dovecot.ca_file().to_str().unwrap(),
            )
            .env("PAPERBOY_OCR_MODE", "off")
            .env("PAPERBOY_MAIL_TIMEOUT_SECS", "10")
    }

    /// A worker serving `mail` and `consume`.
    fn start_worker(&mut self) {
        let w = self.builder("mail,consume").spawn();
        self.workers.push(w);
    }

    async fn mailbox(&self, user: &str) -> Mailbox {
        self.dovecot.mailbox(user, PASSWORD).await
    }

    async fn account(&self, user: &str, f: impl FnOnce(&mut NewMailAccount)) -> i64 {
        let mut a = NewMailAccount {
            name: format!("acct-{user}"),
            imap_server: "127.0.0.1".into(),
            imap_port: Some(i64::from(self.dovecot.port)),
            imap_security: mail::security::NONE,
            username: user.into(),
            password: PASSWORD.into(),
            ..Default::default()
        };
        f(&mut a);
        let mut tx = self.db.begin().await.unwrap();
        let id = accounts::insert(&mut tx, &a).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn rule(&self, account: i64, name: &str, f: impl FnOnce(&mut NewMailRule)) -> i64 {
        // Rule names are unique among ownerless rules.
        let mut r = NewMailRule {
            name: format!("{name}-{account}"),
            account_id: account,
            maximum_age: 0,
            ..Default::default()
        };
        f(&mut r);
        let mut tx = self.db.begin().await.unwrap();
        let id = rules::insert(&mut tx, &r).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// Enqueues a fetch of one account and waits for its end.
    async fn fetch(&self, account: i64) -> JobRecord {
        let e = self
            .queue
            .enqueue(&Job::MailFetch {
                account: Some(account),
            })
            .await
            .unwrap();
        self.wait(e.id()).await
    }

    async fn wait(&self, id: &str) -> JobRecord {
        let q = &self.queue;
        let logs = || {
            self.workers
                .iter()
                .map(|w| w.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        };
        tokio::time::timeout(Duration::from_secs(90), async {
            loop {
                let r = q.get(id).await.unwrap();
                if r.state.is_terminal() {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("job {id} did not end; logs:\n{}", logs()))
    }

    async fn ok(&self, account: i64) -> serde_json::Value {
        let r = self.fetch(account).await;
        assert_eq!(
            r.state,
            JobState::Succeeded,
            "fetch failed: {:?}\nworker logs:\n{}",
            r.errors,
            self.workers
                .iter()
                .map(|w| w.log())
                .collect::<Vec<_>>()
                .join("\n")
        );
        r.result.unwrap()
    }

    /// Waits until `n` documents exist (the consume jobs run after the fetch queued them; the
    /// fetch itself waits for them, so this holds as soon as it returns).
    async fn titles(&self) -> Vec<String> {
        let mut t: Vec<String> = documents::list(&self.db, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.title)
            .collect();
        t.sort();
        t
    }
}

/// The spec's fixture (§6): M1 "Invoice 1" from amazon@amazon.de, seen; M2 "Invoice 2" from
/// no_one@mail.com, unseen, flagged, keyword `processed`; M3 "Claim your $10M price now!",
/// unseen. Each with one PDF attachment (distinct per `tag`).
async fn fixture(mb: &mut Mailbox, tag: &str) {
    let m1 = message(
        "amazon@amazon.de",
        "me@myselfandi.com, helpdesk@mydomain.com",
        "Invoice 1",
        "cables",
        &[("m1.pdf", "attachment", &pdf(&format!("{tag} M1")))],
    );
    let m2 = message(
        "no_one@mail.com",
        "invoices@mycompany.com",
        "Invoice 2",
        "from my favorite electronic store",
        &[("m2.pdf", "attachment", &pdf(&format!("{tag} M2")))],
    );
    let m3 = message(
        "amazon@amazon-some-indian-site.org",
        "special@me.me",
        "Claim your $10M price now!",
        "win",
        &[("m3.pdf", "attachment", &pdf(&format!("{tag} M3")))],
    );
    mb.append("INBOX", Some("(\\Seen)"), &m1).await;
    mb.append("INBOX", Some("(\\Flagged processed)"), &m2).await;
    mb.append("INBOX", None, &m3).await;
}

// ---- cases ----------------------------------------------------------------------------------

/// §6 row 44: each server-side filter, with the delete action removing exactly what matched.
async fn search_filters(tdb: TestDb) {
    type Case = (&'static str, fn(&mut NewMailRule), usize);
    let cases: &[Case] = &[
        ("subj", |r| r.filter_subject = Some("Claim".into()), 1),
        ("body", |r| r.filter_body = Some("electronic".into()), 1),
        ("from", |r| r.filter_from = Some("amazon".into()), 2),
        (
            "combo",
            |r| {
                r.filter_body = Some("cables".into());
                r.filter_from = Some("amazon".into());
                r.filter_subject = Some("Invoice".into());
            },
            1,
        ),
        ("tonone", |r| r.filter_to = Some("test@email.com".into()), 0),
        (
            "to",
            |r| r.filter_to = Some("invoices@mycompany.com".into()),
            1,
        ),
        (
            "fromto",
            |r| {
                r.filter_from = Some("amazon".into());
                r.filter_to = Some("me@myselfandi.com".into());
            },
            1,
        ),
    ];
    let users: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let mut w = World::new(&tdb, &users).await;
    w.start_worker();
    let mut expected_docs = 0;
    for (user, set, n) in cases {
        let mut mb = w.mailbox(user).await;
        fixture(&mut mb, user).await;
        let a = w.account(user, |_| {}).await;
        w.rule(a, "delete", |r| {
            r.action = mail::action::DELETE;
            set(r);
        })
        .await;
        let res = w.ok(a).await;
        assert_eq!(res["documents_queued"], *n as u64, "{user}: {res}");
        assert_eq!(
            mb.count("INBOX").await,
            3 - n,
            "{user}: deleted exactly the matches"
        );
        expected_docs += n;
    }
    assert_eq!(w.titles().await.len(), expected_docs);
    tdb.cleanup().await;
}

/// §6 rows 22, 32, 33, 35, 38: mark read, flag, move, keyword, Apple colour; and the action
/// runs once the documents are in.
async fn actions(tdb: TestDb) {
    let mut w = World::new(&tdb, &["read", "flag", "move", "tag", "apple"]).await;
    w.start_worker();

    let mut mb = w.mailbox("read").await;
    fixture(&mut mb, "read").await;
    let a = w.account("read", |_| {}).await;
    w.rule(a, "read", |_| {}).await;
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 2, "{res}");
    assert!(mb.search("INBOX", "UNSEEN").await.is_empty());
    assert_eq!(mb.count("INBOX").await, 3);

    let mut mb = w.mailbox("flag").await;
    fixture(&mut mb, "flag").await;
    let a = w.account("flag", |_| {}).await;
    w.rule(a, "flag", |r| {
        r.action = mail::action::FLAG;
        r.filter_subject = Some("Invoice".into());
    })
    .await;
    assert_eq!(mb.search("INBOX", "UNFLAGGED").await.len(), 2);
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 1, "M2 was flagged already: {res}");
    assert_eq!(mb.search("INBOX", "UNFLAGGED").await.len(), 1);
    assert_eq!(mb.count("INBOX").await, 3);

    let mut mb = w.mailbox("move").await;
    fixture(&mut mb, "move").await;
    let a = w.account("move", |_| {}).await;
    w.rule(a, "move", |r| {
        r.action = mail::action::MOVE;
        r.action_parameter = Some("spam".into());
        r.filter_subject = Some("Claim".into());
    })
    .await;
    w.ok(a).await;
    assert_eq!(mb.count("INBOX").await, 2);
    assert_eq!(mb.count("spam").await, 1);

    let mut mb = w.mailbox("tag").await;
    fixture(&mut mb, "tag").await;
    let a = w.account("tag", |_| {}).await;
    w.rule(a, "tag", |r| {
        r.action = mail::action::TAG;
        r.action_parameter = Some("processed".into());
    })
    .await;
    assert_eq!(mb.search("INBOX", "UNKEYWORD processed").await.len(), 2);
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 2, "{res}");
    assert!(mb.search("INBOX", "UNKEYWORD processed").await.is_empty());

    let mut mb = w.mailbox("apple").await;
    fixture(&mut mb, "apple").await;
    let a = w.account("apple", |_| {}).await;
    w.rule(a, "apple", |r| {
        r.action = mail::action::TAG;
        r.action_parameter = Some("apple:green".into());
    })
    .await;
    w.ok(a).await;
    assert!(mb.search("INBOX", "UNFLAGGED").await.is_empty());
    let uids = mb
        .search("INBOX", "KEYWORD $MailFlagBit0 KEYWORD $MailFlagBit1")
        .await;
    assert_eq!(uids.len(), 2, "green = bits 0 and 1 on the two taken mails");
    tdb.cleanup().await;
}

fn with_parts(subject: &str, from: &str, parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    message(from, "me@example.com", subject, "see attached", parts)
}

/// Scopes (attachments / .eml / both), attachment type, include/exclude globs, titles,
/// correspondents (address, name, custom, none), tags and type, maximum age.
async fn scopes_titles_and_correspondents(tdb: TestDb) {
    let mut w = World::new(&tdb, &["att", "eml", "both", "age"]).await;
    w.start_worker();
    let db = w.db.clone();
    let mut tx = db.begin().await.unwrap();
    let tag = paperboy_shared::db::tags::get_or_create_by_name(&mut tx, "from-mail")
        .await
        .unwrap();
    let doctype = paperboy_shared::db::document_types::get_or_create_by_name(&mut tx, "Mail doc")
        .await
        .unwrap();
    let fixed = paperboy_shared::db::correspondents::get_or_create_by_name(&mut tx, "Fixed Co")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Attachments: inline and attachment PDFs, a PNG, an excluded name, a binary blob.
    let mut mb = w.mailbox("att").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    mb.append(
        "INBOX",
        None,
        &with_parts(
            "Files",
            "\"Someone!\" <someone@somewhere.com>",
            &[
                ("inline.pdf", "inline", &pdf("att inline")),
                ("this_is_the_file.pdf", "attachment", &pdf("att one")),
                ("second.PDF", "attachment", &pdf("att two")),
                ("skip-me.pdf", "attachment", &pdf("att excluded")),
                ("image.png", "attachment", &png),
                ("blob.bin", "attachment", b"\x00\x01\x02\x03"),
            ],
        ),
    )
    .await;
    let a = w.account("att", |_| {}).await;
    w.rule(a, "att", |r| {
        r.filter_attachment_filename_include = Some("*.pdf".into());
        r.filter_attachment_filename_exclude = Some("skip*".into());
        r.assign_title_from = mail::title_from::FILENAME;
        r.assign_correspondent_from = mail::correspondent_from::EMAIL;
        r.assign_tags = vec![tag];
        r.assign_document_type_id = Some(doctype);
    })
    .await;
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 2, "{res}");
    let docs = documents::list(&db, 0, 100).await.unwrap();
    let mut titles: Vec<_> = docs.iter().map(|d| d.title.clone()).collect();
    titles.sort();
    assert_eq!(titles, ["second", "this_is_the_file"]);
    let c = paperboy_shared::db::correspondents::list(&db)
        .await
        .unwrap();
    let someone = c
        .iter()
        .find(|c| c.name == "someone@somewhere.com")
        .expect("correspondent created from the address");
    assert_eq!(someone.r#match, "someone@somewhere.com");
    assert_eq!(someone.matching_algorithm, 3, "literal, as upstream");
    for d in &docs {
        assert_eq!(d.correspondent_id, Some(someone.id));
        assert_eq!(d.document_type_id, Some(doctype));
        assert!(d.tags.contains(&tag), "rule tags assigned: {:?}", d.tags);
    }

    // The same message with attachment_type everything (inline too) on another account.
    // .eml scope, correspondent by display name.
    let mut mb = w.mailbox("eml").await;
    mb.append(
        "INBOX",
        None,
        &with_parts(
            "The whole message",
            "\"Someone!\" <someone@somewhere.com>",
            &[("x.pdf", "attachment", &pdf("eml x"))],
        ),
    )
    .await;
    let a = w.account("eml", |_| {}).await;
    w.rule(a, "eml", |r| {
        r.consumption_scope = mail::scope::EML;
        r.assign_correspondent_from = mail::correspondent_from::NAME;
    })
    .await;
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 1, "{res}");
    let docs = documents::list(&db, 0, 100).await.unwrap();
    let eml = docs
        .iter()
        .find(|d| d.title == "The whole message")
        .expect("the .eml titled by the subject");
    assert_eq!(
        eml.original_filename.as_deref(),
        Some("The whole message.eml")
    );
    assert!(eml.content.contains("see attached"), "{}", eml.content);
    let c = paperboy_shared::db::correspondents::list(&db)
        .await
        .unwrap();
    let by_name = c.iter().find(|c| c.name == "Someone!").expect("by name");
    assert_eq!(eml.correspondent_id, Some(by_name.id));

    // Both: the .eml and the attachment (inline too), custom correspondent, title from the
    // subject; the action (mark read) once.
    let mut mb = w.mailbox("both").await;
    mb.append(
        "INBOX",
        None,
        &with_parts(
            "Both of them",
            "x@y.z",
            &[
                ("in.pdf", "inline", &pdf("both inline")),
                ("att.pdf", "attachment", &pdf("both att")),
            ],
        ),
    )
    .await;
    let a = w.account("both", |_| {}).await;
    w.rule(a, "both", |r| {
        r.consumption_scope = mail::scope::EVERYTHING;
        r.attachment_type = mail::attachment_type::EVERYTHING;
        r.assign_correspondent_from = mail::correspondent_from::CUSTOM;
        r.assign_correspondent_id = Some(fixed);
    })
    .await;
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 3, "{res}");
    assert_eq!(res["messages_done"], 1, "one message, one action: {res}");
    let docs = documents::list(&db, 0, 100).await.unwrap();
    let both: Vec<_> = docs.iter().filter(|d| d.title == "Both of them").collect();
    assert_eq!(both.len(), 3, "eml + two attachments titled by the subject");
    assert!(both.iter().all(|d| d.correspondent_id == Some(fixed)));
    assert!(mb.search("INBOX", "UNSEEN").await.is_empty());

    // Maximum age: an old message (internal date 2020) is not taken, a new one is.
    let mut mb = w.mailbox("age").await;
    mb.append(
        "INBOX",
        None,
        &with_parts(
            "old",
            "a@b.c",
            &[("old.pdf", "attachment", &pdf("age old"))],
        ),
    )
    .await;
    // APPEND with an internal date: through a raw message date the server keeps.
    let old = with_parts(
        "older",
        "a@b.c",
        &[("older.pdf", "attachment", &pdf("age older"))],
    );
    append_dated(&w, "age", &old, "\"01-Jan-2020 10:00:00 +0000\"").await;
    let a = w.account("age", |_| {}).await;
    w.rule(a, "age", |r| {
        r.maximum_age = 30;
        r.assign_title_from = mail::title_from::NONE;
    })
    .await;
    let res = w.ok(a).await;
    assert_eq!(
        res["documents_queued"], 1,
        "the 2020 message is too old: {res}"
    );
    assert!(
        w.titles().await.contains(&"old".to_string()),
        "title none: the file name's stem"
    );
    tdb.cleanup().await;
}

async fn append_dated(w: &World, user: &str, msg: &[u8], date: &str) {
    let mut mb = w.mailbox(user).await;
    mb.append_with_date("INBOX", msg, date).await;
}

/// A second fetch downloads nothing; overlapping rules take a message once; stop_processing;
/// a disabled rule never runs.
async fn incremental_and_rule_order(tdb: TestDb) {
    let mut w = World::new(&tdb, &["inc"]).await;
    w.start_worker();
    let mut mb = w.mailbox("inc").await;
    fixture(&mut mb, "inc").await;
    let a = w.account("inc", |_| {}).await;
    w.rule(a, "off", |r| {
        r.order = -1;
        r.enabled = false;
        r.action = mail::action::DELETE;
    })
    .await;
    let first = w
        .rule(a, "claim-1", |r| {
            r.order = 1;
            r.filter_subject = Some("Claim".into());
            r.action = mail::action::FLAG;
            r.stop_processing = true;
        })
        .await;
    w.rule(a, "claim-2", |r| {
        r.order = 2;
        r.filter_subject = Some("Claim".into());
        r.action = mail::action::DELETE;
    })
    .await;
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 1, "{res}");
    assert_eq!(mb.count("INBOX").await, 3, "the later rule did not run");
    let rows = messages::list(&w.db, Some(a), None, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].rule_id, Some(first));
    assert_eq!(rows[0].state, MessageState::Done);

    // Run again: rule 1 finds nothing new and queued nothing, so rule 2 runs now, but the
    // message the first rule took is not taken again.
    let res = w.ok(a).await;
    assert_eq!(res["documents_queued"], 0, "{res}");
    assert_eq!(res["downloaded"], 0, "nothing downloaded again: {res}");
    assert_eq!(mb.count("INBOX").await, 3);
    let res = w.ok(a).await;
    assert_eq!(res["downloaded"], 0, "{res}");
    assert!(
        res["bytes_received"].as_u64().unwrap() < 8000,
        "a run with nothing new costs little: {res}"
    );
    assert_eq!(w.titles().await.len(), 1);

    // A new message arrives: only it is downloaded.
    mb.append(
        "INBOX",
        None,
        &message(
            "a@b.c",
            "me@x.y",
            "Claim this",
            "x",
            &[("n.pdf", "attachment", &pdf("inc new"))],
        ),
    )
    .await;
    let res = w.ok(a).await;
    assert_eq!(res["downloaded"], 1, "{res}");
    assert_eq!(res["documents_queued"], 1, "{res}");
    tdb.cleanup().await;
}

/// Two fetches started at once (direct and through the fan-out, two workers): each
/// attachment is imported once.
async fn concurrent_fetches_import_once(tdb: TestDb) {
    let mut w = World::new(&tdb, &["dup"]).await;
    w.start_worker();
    w.start_worker();
    let mut mb = w.mailbox("dup").await;
    for i in 0..6 {
        mb.append(
            "INBOX",
            None,
            &message(
                "a@b.c",
                "me@x.y",
                &format!("mail {i}"),
                "x",
                &[("a.pdf", "attachment", &pdf(&format!("dup {i}")))],
            ),
        )
        .await;
    }
    let a = w.account("dup", |_| {}).await;
    w.rule(a, "all", |_| {}).await;
    let one = w
        .queue
        .enqueue(&Job::MailFetch { account: Some(a) })
        .await
        .unwrap();
    let two = w
        .queue
        .enqueue(&Job::MailFetch { account: Some(a) })
        .await
        .unwrap();
    assert_eq!(one.id(), two.id(), "one fetch per account at a time");
    let all = w
        .queue
        .enqueue(&Job::MailFetch { account: None })
        .await
        .unwrap();
    let r = w.wait(one.id()).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let fan = w.wait(all.id()).await;
    assert_eq!(fan.state, JobState::Succeeded, "{:?}", fan.errors);
    // The fan-out's child (a second fetch, maybe after the first ended) ends too.
    for j in fan.result.unwrap()["jobs"].as_array().unwrap() {
        let r = w.wait(j["job"].as_str().unwrap()).await;
        assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    }
    let docs = documents::list(&w.db, 0, 100).await.unwrap();
    assert_eq!(docs.len(), 6, "each attachment once");
    let rows = messages::list(&w.db, Some(a), None, 100).await.unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|m| m.state == MessageState::Done));
    assert!(mb.search("INBOX", "UNSEEN").await.is_empty());
    tdb.cleanup().await;
}

/// A fetch that ends before its documents are consumed (no consume worker yet) leaves the
/// message queued and untouched; the retry finishes it: each document once, the action once.
/// A document that fails for good marks its message failed with the reason, without action,
/// and the other messages still finish.
async fn interrupted_message_is_finished_later(tdb: TestDb) {
    let mut w = World::new(&tdb, &["mid"]).await;
    let mailer = w
        .builder("mail")
        .env("PAPERBOY_MAIL_CONSUME_WAIT_SECS", "1")
        .spawn();
    w.workers.push(mailer);
    let mut mb = w.mailbox("mid").await;
    mb.append(
        "INBOX",
        None,
        &message(
            "a@b.c",
            "me@x.y",
            "two files",
            "x",
            &[
                ("one.pdf", "attachment", &pdf("mid one")),
                ("two.pdf", "attachment", &pdf("mid two")),
            ],
        ),
    )
    .await;
    let a = w.account("mid", |_| {}).await;
    w.rule(a, "all", |_| {}).await;
    let e = w
        .queue
        .enqueue(&Job::MailFetch { account: Some(a) })
        .await
        .unwrap();
    let id = e.id().to_string();
    eventually(
        "the fetch to fail transiently",
        Duration::from_secs(60),
        || {
            let q = w.queue.clone();
            let id = id.clone();
            async move {
                let r = q.get(&id).await.unwrap();
                (r.attempts >= 1).then_some(r)
            }
        },
    )
    .await;
    let rows = messages::list(&w.db, Some(a), None, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, MessageState::Queued);
    assert_eq!(mb.search("INBOX", "UNSEEN").await.len(), 1, "no action yet");
    assert!(w.titles().await.is_empty());

    // A permanently failing message: its attachment duplicates a document that will exist.
    mb.append(
        "INBOX",
        None,
        &message(
            "a@b.c",
            "me@x.y",
            "duplicate",
            "x",
            &[("dup.pdf", "attachment", &pdf("mid one"))],
        ),
    )
    .await;
    // Now consume can run: the retry (the same job) settles the first message.
    let consumer = w.builder("consume").spawn();
    w.workers.push(consumer);
    let r = w.wait(&id).await;
    assert_eq!(r.state, JobState::Succeeded, "{:?}", r.errors);
    let titles = w.titles().await;
    assert_eq!(titles.len(), 2, "each document once: {titles:?}");
    let res = r.result.unwrap();
    assert_eq!(res["messages_failed"], 1, "{res}");
    assert_eq!(res["messages_done"], 1, "{res}");
    let rows = messages::list(&w.db, Some(a), None, 10).await.unwrap();
    let failed = rows
        .iter()
        .find(|m| m.state == MessageState::Failed)
        .expect("the duplicate's message failed");
    assert!(
        failed.error.as_deref().unwrap_or("").contains("duplicate"),
        "reason recorded: {:?}",
        failed.error
    );
    assert_eq!(
        mb.search("INBOX", "UNSEEN").await.len(),
        1,
        "the failed message was not marked read"
    );
    assert_eq!(w.titles().await.len(), 2);
    tdb.cleanup().await;
}

/// Implicit TLS and STARTTLS with a verified certificate; a server that refuses the CHARSET;
/// a bad account (wrong password) does not stop the fan-out's other accounts, and its error
/// names the account, never the password.
async fn tls_charset_and_account_isolation(tdb: TestDb) {
    let mut w = World::new(&tdb, &["tls", "starttls", "bad"]).await;
    w.start_worker();
    let mut mb = w.mailbox("tls").await;
    fixture(&mut mb, "tls").await;
    let mut mb2 = w.mailbox("starttls").await;
    fixture(&mut mb2, "starttls").await;
    let tls_port = i64::from(w.dovecot.tls_port);
    let t = w
        .account("tls", |a| {
            a.imap_security = mail::security::SSL;
            a.imap_port = Some(tls_port);
            a.imap_server = "localhost".into();
            a.character_set = "X-NO-SUCH-CHARSET".into();
        })
        .await;
    w.rule(t, "claim", |r| {
        r.action = mail::action::MOVE;
        r.action_parameter = Some("spam".into());
        r.filter_subject = Some("Claim".into());
    })
    .await;
    let s = w
        .account("starttls", |a| a.imap_security = mail::security::STARTTLS)
        .await;
    w.rule(s, "claim", |r| {
        r.action = mail::action::MOVE;
        r.action_parameter = Some("spam".into());
        r.filter_subject = Some("Claim".into());
    })
    .await;
    let b = w
        .account("bad", |a| a.password = "wrong-password-123".into())
        .await;
    w.rule(b, "all", |_| {}).await;
    let fan = w
        .queue
        .enqueue(&Job::MailFetch { account: None })
        .await
        .unwrap();
    let fan = w.wait(fan.id()).await;
    assert_eq!(
        fan.state,
        JobState::Dead,
        "one account failed: the fetch says so"
    );
    let why = &fan.errors.last().unwrap().message;
    assert!(
        why.contains("mail fetch failed for 1 of 3 account(s): acct-bad"),
        "{why}"
    );
    let mut by_account = std::collections::HashMap::new();
    // Each account again on its own: the good ones succeed (nothing new), the bad one dies.
    for id in [t, s, b] {
        let r = w
            .queue
            .enqueue(&Job::MailFetch { account: Some(id) })
            .await
            .unwrap();
        by_account.insert(id, w.wait(r.id()).await);
    }
    assert_eq!(
        by_account[&t].state,
        JobState::Succeeded,
        "{:?}",
        by_account[&t].errors
    );
    assert_eq!(
        by_account[&s].state,
        JobState::Succeeded,
        "{:?}",
        by_account[&s].errors
    );
    assert_eq!(mb.count("spam").await, 1);
    assert_eq!(mb2.count("spam").await, 1);
    let bad = &by_account[&b];
    assert_eq!(bad.state, JobState::Dead, "a wrong password is permanent");
    let msg = &bad.errors.last().unwrap().message;
    assert!(
        msg.contains("Error while authenticating account acct-bad"),
        "{msg}"
    );
    assert!(!msg.contains("wrong-password-123"));
    for wk in &w.workers {
        assert!(
            !wk.log().contains("wrong-password-123"),
            "password in a log"
        );
        assert!(!wk.log().contains(PASSWORD), "password in a log");
    }
    tdb.cleanup().await;
}

/// `paperboy mail accounts|rules add|list|remove`: the password from a file or an
/// environment variable, never printed.
async fn cli_accounts_and_rules(tdb: TestDb) {
    migrate::migrate_latest(&tdb.db).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "file-secret-1\n").unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(binary("paperboy"))
            .env_clear()
            .env("PAPERBOY_DATABASE_URL", &tdb.url)
            .env("MAILPW", "env-secret-2")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (c, o) = cli(&[
        "mail",
        "accounts",
        "add",
        "--name",
        "a1",
        "--server",
        "imap.example.com",
        "--username",
        "me",
        "--password-file",
        pwfile.to_str().unwrap(),
    ]);
    assert_eq!(c, 0, "{o}");
    let (c, o) = cli(&[
        "mail",
        "accounts",
        "add",
        "--name",
        "a2",
        "--server",
        "imap.example.com",
        "--security",
        "starttls",
        "--username",
        "me",
        "--password-env",
        "MAILPW",
    ]);
    assert_eq!(c, 0, "{o}");
    let (c, o) = cli(&[
        "mail",
        "accounts",
        "add",
        "--name",
        "a3",
        "--server",
        "x",
        "--username",
        "u",
    ]);
    assert_eq!(c, 2, "a password source is required: {o}");
    let (c, list) = cli(&["mail", "accounts", "list"]);
    assert_eq!(c, 0);
    assert!(
        list.contains("imap.example.com:993") && list.contains("imap.example.com:143"),
        "{list}"
    );
    let (_, json) = cli(&["--json", "mail", "accounts", "list"]);
    for out in [&list, &json] {
        assert!(
            !out.contains("file-secret-1") && !out.contains("env-secret-2"),
            "{out}"
        );
    }
    let all = accounts::list(&tdb.db).await.unwrap();
    assert_eq!(all[0].password, "file-secret-1");
    assert_eq!(all[1].password, "env-secret-2");
    let a1 = all[0].id.to_string();
    let (c, o) = cli(&[
        "mail",
        "rules",
        "add",
        "--name",
        "r1",
        "--account",
        &a1,
        "--subject",
        "Invoice",
        "--action",
        "move",
    ]);
    assert_eq!(c, 1, "move needs a parameter: {o}");
    assert!(o.contains("An action parameter is required."), "{o}");
    let (c, o) = cli(&[
        "mail",
        "rules",
        "add",
        "--name",
        "r1",
        "--account",
        &a1,
        "--subject",
        "Invoice",
        "--action",
        "move",
        "--action-parameter",
        "Archive",
        "--scope",
        "everything",
        "--title-from",
        "filename",
        "--correspondent-from",
        "name",
        "--maximum-age",
        "7",
        "--stop-processing",
    ]);
    assert_eq!(c, 0, "{o}");
    let r = rules::list(&tdb.db).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].action, r[0].consumption_scope, r[0].assign_title_from),
        (2, 3, 2)
    );
    assert_eq!(r[0].assign_correspondent_from, 3);
    assert!(r[0].stop_processing);
    let (_, o) = cli(&["mail", "rules", "list"]);
    assert!(
        o.contains("move Archive") && o.contains("subject=\"Invoice\""),
        "{o}"
    );
    let (c, _) = cli(&["mail", "rules", "remove", &r[0].id.to_string()]);
    assert_eq!(c, 0);
    let (c, _) = cli(&["mail", "accounts", "remove", &a1]);
    assert_eq!(c, 0);
    assert_eq!(accounts::list(&tdb.db).await.unwrap().len(), 1);
    let (c, o) = cli(&["mail_fetcher", "--help"]);
    assert_eq!(c, 0, "the paperless name is an alias: {o}");
    tdb.cleanup().await;
}

paperboy_tests::on_both_engines!(
    search_filters,
    actions,
    scopes_titles_and_correspondents,
    incremental_and_rule_order,
    concurrent_fetches_import_once,
    interrupted_message_is_finished_later,
    tls_charset_and_account_isolation,
    cli_accounts_and_rules,
);
