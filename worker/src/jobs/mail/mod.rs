//! `mail_fetch`: fetch mail and consume what the rules take (paperless-ngx `mail_fetcher`).
//!
//! `account: None` fans out one unique job per account (`mail_fetch:<id>`: never two fetches
//! of one account at once) and waits for them; it fails (naming the accounts) if any failed.
//! One account's job:
//!
//! 1. connect and log in ([`imap`]), rules in `order`; per rule and folder generation
//!    (UIDVALIDITY) a cursor (`mail_rule_cursors`) holds the highest UID the rule has looked at,
//!    so the search is `UID <cursor+1>:* <criteria>` and old mail costs nothing;
//! 2. each new UID without a `mail_messages` row is downloaded (`BODY.PEEK[]`, batches of
//!    [`FETCH_BATCH`]), parsed, and the rule picks its documents ([`rules`]); a message that
//!    yields any is *claimed* (row `queued`, written before anything is enqueued), its
//!    documents staged and their `consume` jobs enqueued, the job ids recorded in the row;
//! 3. every queued row of the account (this run's and any an earlier run left) is settled:
//!    wait for its consume jobs; all succeeded → the rule's action (once) → `done`; one ended
//!    failed/dead → `failed` with its reason, no action; still running after
//!    `PAPERBOY_MAIL_CONSUME_WAIT_SECS` → left queued, the job ends transient and its retry (or
//!    the next run) settles it. Nothing is ever queued twice for one message.
//!
//! A rule or message error is logged and recorded; the others go on. A transient error
//! (network, timeout, a consume still running) makes the job end `Transient` after the others
//! are done, so it is retried with backoff; the cursor never passes a message that failed
//! transiently.

pub mod imap;
pub mod rules;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use mail_parser::MessageParser;
use paperboy_shared::db::mail::{
    self as dbmail, MailAccount, MailMessage, MailRule, MessageState, action, cursors, messages,
    scope,
};
use paperboy_shared::job::{ConsumeArgs, Job};
use paperboy_shared::queue::JobState;
use paperboy_shared::{Classify, ErrorClass, staging};
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::imap::{Imap, MailError};
use super::{JobContext, JobError};

/// Messages downloaded per `UID FETCH`.
pub const FETCH_BATCH: usize = 25;

/// One document of a queued message, as recorded in its row (`mail_messages.jobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueuedDoc {
    args: ConsumeArgs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<String>,
}

/// What one account's run did (the job's result).
#[derive(Debug, Default, Serialize)]
struct Report {
    account: i64,
    searched: usize,
    downloaded: usize,
    documents_queued: usize,
    messages_done: usize,
    messages_failed: usize,
    messages_waiting: usize,
    bytes_received: u64,
    errors: Vec<String>,
    #[serde(skip)]
    transient: Vec<String>,
}

impl Report {
    fn error(&mut self, e: String, class: ErrorClass) {
        tracing::warn!(error = %e, "mail fetch");
        if class == ErrorClass::Transient {
            self.transient.push(e.clone());
        }
        self.errors.push(e);
    }
}

fn mail_err(e: MailError) -> JobError {
    JobError::from_classified(e)
}

pub async fn run(account: Option<i64>, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    match account {
        None => fan_out(ctx).await,
        Some(id) => fetch_account(id, ctx).await,
    }
}

async fn fan_out(ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let accounts = dbmail::accounts::list(ctx.db()).await?;
    let mut ids = Vec::new();
    for a in &accounts {
        let e = ctx
            .enqueue(&Job::MailFetch {
                account: Some(a.id),
            })
            .await?;
        ids.push(e.id().to_string());
    }
    tracing::info!(accounts = accounts.len(), "mail fetch fanned out");
    // Wait for every account (each job bounds itself: timeouts, the consume wait), so
    // `paperboy mail-fetch --wait` tells whether the fetch worked, and a slow run makes the
    // next scheduled one skip (unique) instead of piling up.
    let mut jobs = Vec::new();
    let mut failed = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        ctx.progress(
            i as u64,
            accounts.len() as u64,
            format!("account {}", a.name),
        );
        let state = match ctx.wait_child(&ids, i).await? {
            Ok(_) => "succeeded".to_string(),
            Err(why) => {
                failed.push(format!("{} (#{}): {why}", a.name, a.id));
                why
            }
        };
        jobs.push(json!({"account": a.id, "job": ids[i], "end": state}));
    }
    if !failed.is_empty() {
        return Err(JobError::Permanent(format!(
            "mail fetch failed for {} of {} account(s): {}",
            failed.len(),
            accounts.len(),
            failed.join("; ")
        )));
    }
    Ok(json!({ "accounts": accounts.len(), "jobs": jobs }))
}

async fn connect(account: &MailAccount, ctx: &JobContext) -> Result<Imap, MailError> {
    let c = ctx.config();
    Imap::connect(
        account,
        c.mail_timeout,
        c.email_certificate_location.as_deref(),
    )
    .await
}

async fn fetch_account(id: i64, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let account = dbmail::accounts::get(ctx.db(), id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("no mail account with id {id}")))?;
    let all_rules = dbmail::rules::for_account(ctx.db(), id).await?;
    let rules: Vec<&MailRule> = all_rules.iter().filter(|r| r.enabled).collect();
    let mut report = Report {
        account: id,
        ..Default::default()
    };
    let queued_before = messages::queued(ctx.db(), id).await?;
    if rules.is_empty() && queued_before.is_empty() {
        tracing::info!(account = %account.name, "no rules enabled; skipping");
        return Ok(json!({"account": id, "skipped": "no rules enabled"}));
    }
    let mut imap = connect(&account, ctx).await.map_err(mail_err)?;
    let mut bytes_before_reconnects = 0;

    for rule in &rules {
        ctx.check_cancelled()?;
        match run_rule(&mut imap, &account, rule, ctx, &mut report).await {
            Ok(queued) => {
                if queued > 0 && rule.stop_processing {
                    tracing::info!(rule = %rule.name, "stop_processing: later rules skipped");
                    break;
                }
            }
            Err(e) => {
                let broken = e.is_connection();
                report.error(format!("rule {} ({}): {e}", rule.id, rule.name), e.class());
                if broken {
                    bytes_before_reconnects += imap.bytes_read();
                    imap = connect(&account, ctx).await.map_err(mail_err)?;
                }
            }
        }
    }

    settle(&mut imap, &account, &all_rules, ctx, &mut report).await?;
    report.bytes_received = bytes_before_reconnects + imap.bytes_read();
    imap.logout().await;

    tracing::info!(
        account = %account.name,
        documents = report.documents_queued,
        done = report.messages_done,
        failed = report.messages_failed,
        waiting = report.messages_waiting,
        bytes = report.bytes_received,
        "mail fetch done"
    );
    if !report.transient.is_empty() {
        return Err(JobError::Transient(format!(
            "mail account {} ({}): {} (will retry)",
            id,
            account.name,
            report.transient.join("; ")
        )));
    }
    Ok(serde_json::to_value(&report).expect("a report serializes"))
}

/// Selects a folder, with upstream's help on a missing one (the folder names in the log).
async fn select(imap: &mut Imap, folder: &str, account: &MailAccount) -> Result<u32, MailError> {
    match imap.select(folder).await {
        Ok(v) => Ok(v.unwrap_or(0)),
        Err(MailError::Imap {
            source: async_imap::error::Error::No(_),
            ..
        }) => {
            let names = imap.folder_names().await.unwrap_or_default();
            tracing::warn!(
                folder,
                ?names,
                "folder not found; the folders of the account"
            );
            Err(MailError::Rule(format!(
                "Folder {folder:?} does not exist in account {}",
                account.name
            )))
        }
        Err(e) => Err(e),
    }
}

/// One rule: search, download what is new, claim and queue. Returns the documents queued.
async fn run_rule(
    imap: &mut Imap,
    account: &MailAccount,
    rule: &MailRule,
    ctx: &JobContext,
    report: &mut Report,
) -> Result<usize, MailError> {
    let search = rules::search(rule, Utc::now().date_naive()).map_err(MailError::Rule)?;
    if rule.action == action::MOVE {
        let target = rule.action_parameter.as_deref().unwrap_or("");
        if !imap.folder_exists(target).await? {
            return Err(MailError::Rule(format!(
                "Folder {target:?} does not exist in account {}",
                account.name
            )));
        }
    }
    let validity = select(imap, &rule.folder, account).await?;
    let db = ctx.db();
    let dberr = |e: paperboy_shared::db::DbError| MailError::Rule(e.to_string());
    let cursor = cursors::get(db, rule.id, &rule.folder, validity as i64)
        .await
        .map_err(dberr)?;
    let query = format!("UID {}:* {}", cursor + 1, search.server);
    let uids: Vec<u32> = imap
        .uid_search(&account.character_set, &query)
        .await?
        .into_iter()
        // `n:*` always includes the last message, even below n.
        .filter(|u| i64::from(*u) > cursor)
        .collect();
    report.searched += uids.len();
    if uids.is_empty() {
        return Ok(0);
    }
    let as_i64: Vec<i64> = uids.iter().map(|u| i64::from(*u)).collect();
    let known = messages::known_uids(db, account.id, &rule.folder, validity as i64, &as_i64)
        .await
        .map_err(dberr)?;
    let new: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| !known.contains(&i64::from(*u)))
        .collect();
    tracing::info!(rule = %rule.name, folder = %rule.folder, found = uids.len(), new = new.len(), "searched");

    // The cursor moves up to just below the first message that failed transiently.
    let mut first_retry: Option<u32> = None;
    let mut queued = 0;
    for batch in new.chunks(FETCH_BATCH) {
        ctx.check_cancelled()
            .map_err(|e| MailError::Rule(e.to_string()))?;
        let bodies = match imap.fetch_bodies(batch).await {
            Ok(b) => b,
            Err(e) => {
                first_retry = Some(first_retry.map_or(batch[0], |f| f.min(batch[0])));
                return finish_rule(db, rule, validity, &uids, first_retry, queued, Err(e)).await;
            }
        };
        report.downloaded += bodies.len();
        let by_uid: HashMap<u32, Vec<u8>> = bodies.into_iter().collect();
        for uid in batch {
            let Some(raw) = by_uid.get(uid) else {
                // Not returned: expunged meanwhile (then the next search does not find it
                // again) or refused; either way the cursor stays below it.
                if first_retry.is_none() {
                    first_retry = Some(*uid);
                }
                continue;
            };
            match take_message(account, rule, validity, *uid, raw, ctx).await {
                Ok(n) => {
                    queued += n;
                    report.documents_queued += n;
                }
                Err(e) => {
                    let class = e.class();
                    report.error(format!("rule {} message uid {uid}: {e}", rule.name), class);
                    if class == ErrorClass::Transient && first_retry.is_none() {
                        first_retry = Some(*uid);
                    }
                }
            }
        }
    }
    finish_rule(db, rule, validity, &uids, first_retry, queued, Ok(())).await
}

async fn finish_rule(
    db: &paperboy_shared::db::Db,
    rule: &MailRule,
    validity: u32,
    uids: &[u32],
    first_retry: Option<u32>,
    queued: usize,
    outcome: Result<(), MailError>,
) -> Result<usize, MailError> {
    let last = match first_retry {
        Some(f) => uids.iter().copied().filter(|u| *u < f).max(),
        None => uids.iter().copied().max(),
    };
    if let Some(last) = last {
        cursors::advance(db, rule.id, &rule.folder, validity as i64, i64::from(last))
            .await
            .map_err(|e| MailError::Rule(e.to_string()))?;
    }
    outcome.map(|()| queued)
}

/// Why taking one message failed.
#[derive(Debug, thiserror::Error)]
enum TakeError {
    #[error("{0}")]
    Db(#[from] paperboy_shared::db::DbError),
    #[error("{0}")]
    Staging(#[from] paperboy_shared::staging::StagingError),
    #[error("{0}")]
    Queue(#[from] paperboy_shared::queue::QueueError),
    #[error("cannot parse the message")]
    Parse,
}

impl Classify for TakeError {
    fn class(&self) -> ErrorClass {
        match self {
            TakeError::Db(e) => e.class(),
            TakeError::Staging(e) => e.class(),
            TakeError::Queue(e) => e.class(),
            TakeError::Parse => ErrorClass::Permanent,
        }
    }
}

/// One downloaded message under one rule: what it yields, claimed and queued. Returns the
/// number of documents queued (0: nothing for this rule, the message is left to later rules).
async fn take_message(
    account: &MailAccount,
    rule: &MailRule,
    validity: u32,
    uid: u32,
    raw: &[u8],
    ctx: &JobContext,
) -> Result<usize, TakeError> {
    let msg = MessageParser::default()
        .parse(raw)
        .ok_or(TakeError::Parse)?;
    let search = rules::search(rule, Utc::now().date_naive()).unwrap_or(rules::Search {
        server: String::new(),
        client: Vec::new(),
    });
    if !rules::client_match(&search.client, &msg) {
        return Ok(0);
    }
    let mut docs = Vec::new();
    if rule.consumption_scope == scope::EML || rule.consumption_scope == scope::EVERYTHING {
        docs.push(rules::eml(&msg, raw));
    }
    if rule.consumption_scope == scope::ATTACHMENTS || rule.consumption_scope == scope::EVERYTHING {
        let (att, skipped) = rules::attachments(rule, &msg);
        for s in &skipped {
            tracing::debug!(uid, attachment = %s.name, why = s.why, "attachment skipped");
        }
        docs.extend(att);
    }
    if docs.is_empty() {
        tracing::debug!(uid, rule = %rule.name, "nothing to consume");
        return Ok(0);
    }
    let db = ctx.db();
    let correspondent = match rule.assign_correspondent_from {
        dbmail::correspondent_from::CUSTOM => rule.assign_correspondent_id,
        _ => match rules::correspondent_name(rule, &msg) {
            // As upstream: a database error here costs the correspondent, not the mail.
            Some(name) => match dbmail::correspondent_for(db, &name).await {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::warn!(error = %e, "no correspondent for {name:?}");
                    None
                }
            },
            None => None,
        },
    };
    let subject = msg.subject().unwrap_or("").to_string();
    let received = msg
        .date()
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(paperboy_shared::db::now_rfc3339);
    let Some(row) = messages::claim(
        db,
        account.id,
        &rule.folder,
        validity as i64,
        i64::from(uid),
        rule.id,
        &subject,
        &received,
    )
    .await?
    else {
        return Ok(0);
    };
    let modified = msg
        .date()
        .and_then(|d| u64::try_from(d.to_timestamp()).ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
    let owner = if rule.assign_owner_from_rule {
        rule.owner_id
    } else {
        None
    };
    // Stage everything first; on a failure nothing of this message is queued and the row goes.
    let mut queued: Vec<QueuedDoc> = Vec::new();
    for d in &docs {
        match staging::stage_bytes(ctx.config(), &d.filename, &d.bytes, modified) {
            Ok(s) => queued.push(QueuedDoc {
                args: ConsumeArgs {
                    staged: s.relative,
                    original_filename: s.original_filename,
                    tags: rule.assign_tags.clone(),
                    source: None,
                    title: d.title.clone(),
                    correspondent,
                    document_type: rule.assign_document_type_id,
                    owner,
                },
                job: None,
            }),
            Err(e) => {
                for q in &queued {
                    let _ = staging::remove(ctx.config(), &q.args.staged);
                }
                let _ = messages::release(db, row).await;
                return Err(e.into());
            }
        }
    }
    save(db, row, &queued).await?;
    // Then enqueue; a failure leaves the row queued with what is not enqueued yet, which the
    // settle step (this run or the next) enqueues.
    enqueue_missing(ctx, row, &mut queued).await?;
    Ok(queued.len())
}

async fn save(
    db: &paperboy_shared::db::Db,
    row: i64,
    docs: &[QueuedDoc],
) -> Result<(), paperboy_shared::db::DbError> {
    messages::set_jobs(
        db,
        row,
        &serde_json::to_string(docs).expect("docs serialize"),
    )
    .await
}

async fn enqueue_missing(
    ctx: &JobContext,
    row: i64,
    docs: &mut [QueuedDoc],
) -> Result<(), TakeError> {
    let mut changed = false;
    let mut result = Ok(());
    for d in docs.iter_mut().filter(|d| d.job.is_none()) {
        // A staged copy that is gone was consumed by a job whose id was not recorded (a crash
        // between enqueue and record): there is nothing left to enqueue.
        if staging::resolve(ctx.config(), &d.args.staged).is_ok_and(|p| !p.exists()) {
            d.job = Some(String::new());
            changed = true;
            continue;
        }
        match ctx.queue.enqueue(&Job::Consume(d.args.clone())).await {
            Ok(e) => {
                d.job = Some(e.id().to_string());
                changed = true;
            }
            Err(e) => {
                result = Err(TakeError::Queue(e));
                break;
            }
        }
    }
    if changed {
        save(ctx.db(), row, docs).await?;
    }
    result
}

/// How one queued message stands.
enum Standing {
    Consumed,
    Failed(String),
    Waiting,
}

async fn standing(ctx: &JobContext, docs: &[QueuedDoc]) -> Result<Standing, JobError> {
    let mut waiting = false;
    for d in docs {
        let Some(id) = d.job.as_deref() else {
            waiting = true;
            continue;
        };
        if id.is_empty() {
            continue;
        }
        match ctx.queue.get(id).await {
            Ok(r) if r.state == JobState::Succeeded => {}
            Ok(r) if r.state.is_terminal() => {
                let why = r
                    .errors
                    .last()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                return Ok(Standing::Failed(format!(
                    "consuming {} ended {}: {why}",
                    d.args.original_filename, r.state
                )));
            }
            Ok(_) => waiting = true,
            Err(e) if e.class() == ErrorClass::Permanent => {
                // The job record is gone (retention): its staged copy tells what happened.
                let staged_left =
                    staging::resolve(ctx.config(), &d.args.staged).is_ok_and(|p| p.exists());
                if staged_left {
                    return Ok(Standing::Failed(format!(
                        "the consume job {id} of {} is gone and its file was not consumed",
                        d.args.original_filename
                    )));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(if waiting {
        Standing::Waiting
    } else {
        Standing::Consumed
    })
}

/// Step 3: every queued message of the account, waited for, acted on and ended.
async fn settle(
    imap: &mut Imap,
    account: &MailAccount,
    rules: &[MailRule],
    ctx: &JobContext,
    report: &mut Report,
) -> Result<(), JobError> {
    let db = ctx.db();
    let mut pending: Vec<(MailMessage, Vec<QueuedDoc>)> = Vec::new();
    for m in messages::queued(db, account.id).await? {
        let mut docs: Vec<QueuedDoc> = serde_json::from_str(&m.jobs).unwrap_or_default();
        if docs.is_empty() {
            // Claimed, nothing staged: a crash between claim and staging. Forget the claim so
            // the message is taken afresh (its rule's cursor did not pass it).
            messages::release(db, m.id).await?;
            continue;
        }
        if let Err(e) = enqueue_missing(ctx, m.id, &mut docs).await {
            report.error(format!("message uid {}: {e}", m.uid), e.class());
        }
        pending.push((m, docs));
    }
    let deadline = tokio::time::Instant::now() + ctx.config().mail_consume_wait;
    let total = pending.len() as u64;
    while !pending.is_empty() {
        ctx.check_cancelled()?;
        let mut still = Vec::new();
        for (m, docs) in pending {
            match standing(ctx, &docs).await? {
                Standing::Waiting => still.push((m, docs)),
                Standing::Failed(why) => {
                    tracing::warn!(uid = m.uid, folder = %m.folder, "message failed: {why}");
                    messages::finish(db, m.id, MessageState::Failed, Some(&why)).await?;
                    processed_row(ctx, &m, rules, "FAILED", Some(&why)).await;
                    report.messages_failed += 1;
                }
                Standing::Consumed => match act(imap, account, rules, &m).await {
                    Ok(note) => {
                        messages::finish(db, m.id, MessageState::Done, note.as_deref()).await?;
                        processed_row(ctx, &m, rules, "SUCCESS", None).await;
                        report.messages_done += 1;
                    }
                    Err(e) if e.class() == ErrorClass::Transient => {
                        // Documents are in; the action is retried (once it works, once only).
                        report.error(format!("action on uid {}: {e}", m.uid), e.class());
                        report.messages_waiting += 1;
                        if e.is_connection()
                            && let Ok(fresh) = connect(account, ctx).await
                        {
                            *imap = fresh;
                        }
                    }
                    Err(e) => {
                        let why = format!("the rule's action failed: {e}");
                        messages::finish(db, m.id, MessageState::Failed, Some(&why)).await?;
                        processed_row(ctx, &m, rules, "FAILED", Some(&why)).await;
                        report.messages_failed += 1;
                    }
                },
            }
        }
        pending = still;
        ctx.progress(
            total - pending.len() as u64,
            total,
            "waiting for consume jobs",
        );
        if pending.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            report.messages_waiting += pending.len();
            report.transient.push(format!(
                "{} message(s) still being consumed after {} s",
                pending.len(),
                ctx.config().mail_consume_wait.as_secs()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

async fn processed_row(
    ctx: &JobContext,
    m: &MailMessage,
    rules: &[MailRule],
    status: &str,
    error: Option<&str>,
) {
    let Some(rule) = m.rule_id.and_then(|r| rules.iter().find(|x| x.id == r)) else {
        return;
    };
    if let Err(e) = dbmail::record_processed(
        ctx.db(),
        rule.owner_id,
        rule.id,
        &m.folder,
        m.uid,
        m.uid_validity,
        &m.subject,
        &m.received,
        status,
        error,
    )
    .await
    {
        tracing::warn!(error = %e, "cannot write the processed_mail row");
    }
}

/// The rule's action on one message whose documents are all consumed. `Ok(Some(note))` when
/// the action was skipped for a reason worth recording.
async fn act(
    imap: &mut Imap,
    account: &MailAccount,
    rules: &[MailRule],
    m: &MailMessage,
) -> Result<Option<String>, MailError> {
    let Some(rule) = m.rule_id.and_then(|r| rules.iter().find(|x| x.id == r)) else {
        return Ok(Some("the rule was deleted; no action".into()));
    };
    // Selected again even if it is selected: the current UIDVALIDITY decides.
    let validity = select(imap, &m.folder, account).await?;
    if i64::from(validity) != m.uid_validity {
        return Ok(Some(format!(
            "the folder's UIDVALIDITY changed ({} → {validity}); action skipped",
            m.uid_validity
        )));
    }
    let uid = u32::try_from(m.uid).map_err(|_| MailError::Rule(format!("bad uid {}", m.uid)))?;
    let param = rule.action_parameter.as_deref().unwrap_or("").trim();
    match rule.action {
        action::DELETE => imap.delete(uid).await?,
        action::MOVE => imap.move_to(uid, param).await?,
        action::MARK_READ => imap.store(uid, "+FLAGS", "\\Seen").await?,
        action::FLAG => imap.store(uid, "+FLAGS", "\\Flagged").await?,
        action::TAG => match rules::apple_color(param) {
            Some(Ok(bits)) => {
                imap.store(uid, "-FLAGS", "$MailFlagBit0 $MailFlagBit1 $MailFlagBit2")
                    .await?;
                let mut flags: Vec<String> =
                    bits.iter().map(|b| format!("$MailFlagBit{b}")).collect();
                flags.push("\\Flagged".into());
                imap.store(uid, "+FLAGS", &flags.join(" ")).await?;
            }
            Some(Err(e)) => return Err(MailError::Rule(e)),
            None => imap.store(uid, "+FLAGS", param).await?,
        },
        other => return Err(MailError::Rule(format!("unknown action {other}"))),
    }
    Ok(None)
}
