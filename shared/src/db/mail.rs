//! Mail accounts and rules (paperless-ngx 3.0.5 `paperless_mail`, every field and integer code),
//! and the mail fetcher's state: `mail_messages` (one row per message a rule took, written
//! before its documents are queued) and `mail_rule_cursors` (the highest UID each rule has
//! looked at per folder generation), plus paperless's `processed_mail` audit rows.
//!
//! A password is stored as paperless stores it (clear text in the database: the fetcher has to
//! log in with it). [`MailAccount`]'s `Debug` and `Serialize` never show it.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Db, DbError, get_bool, now_rfc3339};

/// `imap_security`: 1 none, 2 SSL (implicit TLS, default), 3 STARTTLS.
pub mod security {
    pub const NONE: i64 = 1;
    pub const SSL: i64 = 2;
    pub const STARTTLS: i64 = 3;
}

/// `account_type`: 1 IMAP (default), 2 Gmail OAuth, 3 Outlook OAuth.
pub mod account_type {
    pub const IMAP: i64 = 1;
    pub const GMAIL_OAUTH: i64 = 2;
    pub const OUTLOOK_OAUTH: i64 = 3;
}

/// `attachment_type`: 1 attachments only (Content-Disposition `attachment`), 2 everything.
pub mod attachment_type {
    pub const ATTACHMENTS_ONLY: i64 = 1;
    pub const EVERYTHING: i64 = 2;
}

/// `consumption_scope`: 1 attachments only, 2 the .eml only, 3 the .eml and the attachments.
pub mod scope {
    pub const ATTACHMENTS: i64 = 1;
    pub const EML: i64 = 2;
    pub const EVERYTHING: i64 = 3;
}

/// `action`: 1 delete, 2 move, 3 mark read (default), 4 flag, 5 tag.
pub mod action {
    pub const DELETE: i64 = 1;
    pub const MOVE: i64 = 2;
    pub const MARK_READ: i64 = 3;
    pub const FLAG: i64 = 4;
    pub const TAG: i64 = 5;
}

/// `assign_title_from`: 1 subject, 2 attachment file name, 3 none.
pub mod title_from {
    pub const SUBJECT: i64 = 1;
    pub const FILENAME: i64 = 2;
    pub const NONE: i64 = 3;
}

/// `assign_correspondent_from`: 1 nothing, 2 mail address, 3 display name, 4 custom.
pub mod correspondent_from {
    pub const NOTHING: i64 = 1;
    pub const EMAIL: i64 = 2;
    pub const NAME: i64 = 3;
    pub const CUSTOM: i64 = 4;
}

/// A mail account. `password` is never printed: see the `Debug` impl; `Serialize` skips it.
#[derive(Clone, PartialEq, Serialize)]
pub struct MailAccount {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub name: String,
    pub imap_server: String,
    pub imap_port: Option<i64>,
    pub imap_security: i64,
    pub username: String,
    #[serde(skip)]
    pub password: String,
    pub is_token: bool,
    pub character_set: String,
    pub account_type: i64,
    #[serde(skip)]
    pub refresh_token: Option<String>,
    pub expiration: Option<String>,
}

impl std::fmt::Debug for MailAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailAccount")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("imap_server", &self.imap_server)
            .field("imap_port", &self.imap_port)
            .field("imap_security", &self.imap_security)
            .field("username", &self.username)
            .field("password", &"***")
            .field("is_token", &self.is_token)
            .finish_non_exhaustive()
    }
}

impl MailAccount {
    /// The port: the stored one, else 993 for SSL and 143 otherwise.
    pub fn port(&self) -> u16 {
        match self.imap_port {
            Some(p) if (1..=65535).contains(&p) => p as u16,
            _ if self.imap_security == security::SSL => 993,
            _ => 143,
        }
    }

    fn from_row(r: &AnyRow) -> Result<MailAccount, DbError> {
        Ok(MailAccount {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            name: r.try_get("name")?,
            imap_server: r.try_get("imap_server")?,
            imap_port: r.try_get("imap_port")?,
            imap_security: r.try_get("imap_security")?,
            username: r.try_get("username")?,
            password: r.try_get("password")?,
            is_token: get_bool(r, "is_token")?,
            character_set: r.try_get("character_set")?,
            account_type: r.try_get("account_type")?,
            refresh_token: r.try_get("refresh_token")?,
            expiration: r.try_get("expiration")?,
        })
    }
}

/// A new account (defaults as paperless: SSL, UTF-8, IMAP).
#[derive(Clone)]
pub struct NewMailAccount {
    pub name: String,
    pub imap_server: String,
    pub imap_port: Option<i64>,
    pub imap_security: i64,
    pub username: String,
    pub password: String,
    pub is_token: bool,
    pub character_set: String,
    pub owner_id: Option<i64>,
}

impl Default for NewMailAccount {
    fn default() -> Self {
        NewMailAccount {
            name: String::new(),
            imap_server: String::new(),
            imap_port: None,
            imap_security: security::SSL,
            username: String::new(),
            password: String::new(),
            is_token: false,
            character_set: "UTF-8".into(),
            owner_id: None,
        }
    }
}

/// A mail rule with its tags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailRule {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub name: String,
    pub account_id: i64,
    pub order: i64,
    pub enabled: bool,
    pub folder: String,
    pub filter_from: Option<String>,
    pub filter_to: Option<String>,
    pub filter_subject: Option<String>,
    pub filter_body: Option<String>,
    pub filter_attachment_filename_include: Option<String>,
    pub filter_attachment_filename_exclude: Option<String>,
    pub maximum_age: i64,
    pub attachment_type: i64,
    pub consumption_scope: i64,
    pub pdf_layout: i64,
    pub action: i64,
    pub action_parameter: Option<String>,
    pub assign_title_from: i64,
    pub assign_tags: Vec<i64>,
    pub assign_document_type_id: Option<i64>,
    pub assign_correspondent_from: i64,
    pub assign_correspondent_id: Option<i64>,
    pub assign_owner_from_rule: bool,
    pub stop_processing: bool,
}

/// A new rule; [`Default`] gives paperless's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMailRule {
    pub name: String,
    pub account_id: i64,
    pub owner_id: Option<i64>,
    pub order: i64,
    pub enabled: bool,
    pub folder: String,
    pub filter_from: Option<String>,
    pub filter_to: Option<String>,
    pub filter_subject: Option<String>,
    pub filter_body: Option<String>,
    pub filter_attachment_filename_include: Option<String>,
    pub filter_attachment_filename_exclude: Option<String>,
    pub maximum_age: i64,
    pub attachment_type: i64,
    pub consumption_scope: i64,
    pub pdf_layout: i64,
    pub action: i64,
    pub action_parameter: Option<String>,
    pub assign_title_from: i64,
    pub assign_tags: Vec<i64>,
    pub assign_document_type_id: Option<i64>,
    pub assign_correspondent_from: i64,
    pub assign_correspondent_id: Option<i64>,
    pub assign_owner_from_rule: bool,
    pub stop_processing: bool,
}

impl Default for NewMailRule {
    fn default() -> Self {
        NewMailRule {
            name: String::new(),
            account_id: 0,
            owner_id: None,
            order: 0,
            enabled: true,
            folder: "INBOX".into(),
            filter_from: None,
            filter_to: None,
            filter_subject: None,
            filter_body: None,
            filter_attachment_filename_include: None,
            filter_attachment_filename_exclude: None,
            maximum_age: 30,
            attachment_type: attachment_type::ATTACHMENTS_ONLY,
            consumption_scope: scope::ATTACHMENTS,
            pdf_layout: 0,
            action: action::MARK_READ,
            action_parameter: None,
            assign_title_from: title_from::SUBJECT,
            assign_tags: Vec::new(),
            assign_document_type_id: None,
            assign_correspondent_from: correspondent_from::NOTHING,
            assign_correspondent_id: None,
            assign_owner_from_rule: true,
            stop_processing: false,
        }
    }
}

fn invalid(field: &'static str, value: impl ToString, hint: &'static str) -> DbError {
    DbError::Invalid {
        field,
        value: value.to_string(),
        hint,
    }
}

/// The checks paperless's API makes (and the column constraints), with readable errors.
pub fn validate_rule(r: &NewMailRule) -> Result<(), DbError> {
    if r.name.trim().is_empty() {
        return Err(invalid("name", &r.name, "a rule needs a name"));
    }
    if !(0..=32767).contains(&r.maximum_age) {
        return Err(invalid(
            "maximum_age",
            r.maximum_age,
            "days between 0 (no limit) and 32767",
        ));
    }
    let codes: [(&'static str, i64, &[i64], &'static str); 6] = [
        (
            "attachment_type",
            r.attachment_type,
            &[1, 2],
            "1 attachments only, 2 everything",
        ),
        (
            "consumption_scope",
            r.consumption_scope,
            &[1, 2, 3],
            "1 attachments, 2 .eml, 3 both",
        ),
        ("pdf_layout", r.pdf_layout, &[0, 1, 2, 3, 4], "0..4"),
        (
            "action",
            r.action,
            &[1, 2, 3, 4, 5],
            "1 delete, 2 move, 3 mark read, 4 flag, 5 tag",
        ),
        (
            "assign_title_from",
            r.assign_title_from,
            &[1, 2, 3],
            "1 subject, 2 file name, 3 none",
        ),
        (
            "assign_correspondent_from",
            r.assign_correspondent_from,
            &[1, 2, 3, 4],
            "1 nothing, 2 address, 3 name, 4 custom",
        ),
    ];
    for (field, v, ok, hint) in codes {
        if !ok.contains(&v) {
            return Err(invalid(field, v, hint));
        }
    }
    let needs_param = r.action == action::MOVE || r.action == action::TAG;
    if needs_param
        && r.action_parameter
            .as_deref()
            .is_none_or(|p| p.trim().is_empty())
    {
        return Err(invalid(
            "action_parameter",
            "",
            "An action parameter is required.",
        ));
    }
    if r.assign_correspondent_from == correspondent_from::CUSTOM
        && r.assign_correspondent_id.is_none()
    {
        return Err(invalid(
            "assign_correspondent",
            "",
            "assign_correspondent_from 4 (custom) needs a correspondent",
        ));
    }
    Ok(())
}

fn validate_account(a: &NewMailAccount) -> Result<(), DbError> {
    if a.name.trim().is_empty() {
        return Err(invalid("name", &a.name, "an account needs a name"));
    }
    if a.imap_server.trim().is_empty() {
        return Err(invalid("imap_server", &a.imap_server, "a host name"));
    }
    if let Some(p) = a.imap_port
        && !(1..=65535).contains(&p)
    {
        return Err(invalid("imap_port", p, "1..65535"));
    }
    if ![1, 2, 3].contains(&a.imap_security) {
        return Err(invalid(
            "imap_security",
            a.imap_security,
            "1 none, 2 SSL, 3 STARTTLS",
        ));
    }
    if a.character_set.trim().is_empty() {
        return Err(invalid("character_set", "", "e.g. UTF-8"));
    }
    Ok(())
}

pub mod accounts {
    use super::*;

    macro_rules! cols {
        () => {
            "id, owner_id, name, imap_server, imap_port, imap_security, username, password, \
             is_token, character_set, account_type, refresh_token, expiration"
        };
    }

    pub async fn insert(conn: &mut AnyConnection, a: &NewMailAccount) -> Result<i64, DbError> {
        validate_account(a)?;
        let row = sqlx::query(
            "INSERT INTO mail_accounts (owner_id, name, imap_server, imap_port, imap_security, \
             username, password, is_token, character_set, account_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(a.owner_id)
        .bind(&a.name)
        .bind(&a.imap_server)
        .bind(a.imap_port)
        .bind(a.imap_security)
        .bind(&a.username)
        .bind(&a.password)
        .bind(a.is_token)
        .bind(&a.character_set)
        .bind(account_type::IMAP)
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn list(db: &Db) -> Result<Vec<MailAccount>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM mail_accounts ORDER BY id"
        ))
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(MailAccount::from_row)
        .collect()
    }

    pub async fn get(db: &Db, id: i64) -> Result<Option<MailAccount>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM mail_accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(MailAccount::from_row)
        .transpose()
    }

    /// Deletes an account (its rules and fetch state go with it). False if there was none.
    pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM mail_accounts WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

pub mod rules {
    use super::*;

    macro_rules! cols {
        () => {
            "id, owner_id, name, account_id, \"order\", enabled, folder, filter_from, \
             filter_to, filter_subject, filter_body, filter_attachment_filename_include, \
             filter_attachment_filename_exclude, maximum_age, attachment_type, \
             consumption_scope, pdf_layout, action, action_parameter, assign_title_from, \
             assign_document_type_id, assign_correspondent_from, assign_correspondent_id, \
             assign_owner_from_rule, stop_processing"
        };
    }

    fn from_row(r: &AnyRow) -> Result<MailRule, DbError> {
        Ok(MailRule {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            name: r.try_get("name")?,
            account_id: r.try_get("account_id")?,
            order: r.try_get("order")?,
            enabled: get_bool(r, "enabled")?,
            folder: r.try_get("folder")?,
            filter_from: r.try_get("filter_from")?,
            filter_to: r.try_get("filter_to")?,
            filter_subject: r.try_get("filter_subject")?,
            filter_body: r.try_get("filter_body")?,
            filter_attachment_filename_include: r.try_get("filter_attachment_filename_include")?,
            filter_attachment_filename_exclude: r.try_get("filter_attachment_filename_exclude")?,
            maximum_age: r.try_get("maximum_age")?,
            attachment_type: r.try_get("attachment_type")?,
            consumption_scope: r.try_get("consumption_scope")?,
            pdf_layout: r.try_get("pdf_layout")?,
            action: r.try_get("action")?,
            action_parameter: r.try_get("action_parameter")?,
            assign_title_from: r.try_get("assign_title_from")?,
            assign_tags: Vec::new(),
            assign_document_type_id: r.try_get("assign_document_type_id")?,
            assign_correspondent_from: r.try_get("assign_correspondent_from")?,
            assign_correspondent_id: r.try_get("assign_correspondent_id")?,
            assign_owner_from_rule: get_bool(r, "assign_owner_from_rule")?,
            stop_processing: get_bool(r, "stop_processing")?,
        })
    }

    /// Inserts a rule and its tags (in the caller's transaction).
    pub async fn insert(conn: &mut AnyConnection, r: &NewMailRule) -> Result<i64, DbError> {
        validate_rule(r)?;
        let row = sqlx::query(
            "INSERT INTO mail_rules (owner_id, name, account_id, \"order\", enabled, folder, \
             filter_from, filter_to, filter_subject, filter_body, \
             filter_attachment_filename_include, filter_attachment_filename_exclude, \
             maximum_age, attachment_type, consumption_scope, pdf_layout, action, \
             action_parameter, assign_title_from, assign_document_type_id, \
             assign_correspondent_from, assign_correspondent_id, assign_owner_from_rule, \
             stop_processing) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) RETURNING id",
        )
        .bind(r.owner_id)
        .bind(&r.name)
        .bind(r.account_id)
        .bind(r.order)
        .bind(r.enabled)
        .bind(&r.folder)
        .bind(&r.filter_from)
        .bind(&r.filter_to)
        .bind(&r.filter_subject)
        .bind(&r.filter_body)
        .bind(&r.filter_attachment_filename_include)
        .bind(&r.filter_attachment_filename_exclude)
        .bind(r.maximum_age)
        .bind(r.attachment_type)
        .bind(r.consumption_scope)
        .bind(r.pdf_layout)
        .bind(r.action)
        .bind(&r.action_parameter)
        .bind(r.assign_title_from)
        .bind(r.assign_document_type_id)
        .bind(r.assign_correspondent_from)
        .bind(r.assign_correspondent_id)
        .bind(r.assign_owner_from_rule)
        .bind(r.stop_processing)
        .fetch_one(&mut *conn)
        .await?;
        let id: i64 = row.try_get("id")?;
        for t in &r.assign_tags {
            sqlx::query("INSERT INTO mail_rule_tags (mail_rule_id, tag_id) VALUES ($1, $2)")
                .bind(id)
                .bind(*t)
                .execute(&mut *conn)
                .await?;
        }
        Ok(id)
    }

    async fn with_tags(db: &Db, mut rules: Vec<MailRule>) -> Result<Vec<MailRule>, DbError> {
        for r in &mut rules {
            r.assign_tags = sqlx::query(
                "SELECT tag_id FROM mail_rule_tags WHERE mail_rule_id = $1 ORDER BY tag_id",
            )
            .bind(r.id)
            .fetch_all(&db.pool)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>("tag_id"))
            .collect::<Result<_, _>>()?;
        }
        Ok(rules)
    }

    /// Every rule, by account, then order, then id.
    pub async fn list(db: &Db) -> Result<Vec<MailRule>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM mail_rules ORDER BY account_id, \"order\", id"
        ))
        .fetch_all(&db.pool)
        .await?;
        let rules = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        with_tags(db, rules).await
    }

    /// The rules of one account in the order they run (ascending `order`, ties by id).
    pub async fn for_account(db: &Db, account_id: i64) -> Result<Vec<MailRule>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM mail_rules WHERE account_id = $1 ORDER BY \"order\", id"
        ))
        .bind(account_id)
        .fetch_all(&db.pool)
        .await?;
        let rules = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        with_tags(db, rules).await
    }

    pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM mail_rules WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

/// State of a message the fetcher took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    /// Its documents are queued (or being queued); the action has not run.
    Queued,
    /// Every document consumed and the action applied.
    Done,
    /// Given up on (the reason in `error`); `paperboy mail messages retry` queues it again.
    Failed,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Done => "done",
            MessageState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<MessageState, DbError> {
        match s {
            "queued" => Ok(MessageState::Queued),
            "done" => Ok(MessageState::Done),
            "failed" => Ok(MessageState::Failed),
            _ => Err(invalid("state", s, "queued, done or failed")),
        }
    }
}

/// One row of `mail_messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailMessage {
    pub id: i64,
    pub account_id: i64,
    pub folder: String,
    pub uid_validity: i64,
    pub uid: i64,
    pub rule_id: Option<i64>,
    pub state: MessageState,
    /// The fetcher's record of the message's documents (JSON: staged files and their consume
    /// job ids), opaque to the database layer.
    pub jobs: String,
    pub subject: String,
    pub received: String,
    pub error: Option<String>,
    pub updated: String,
}

pub mod messages {
    use super::*;

    macro_rules! cols {
        () => {
            "id, account_id, folder, uid_validity, uid, rule_id, state, jobs, subject, \
             received, error, updated"
        };
    }

    fn from_row(r: &AnyRow) -> Result<MailMessage, DbError> {
        Ok(MailMessage {
            id: r.try_get("id")?,
            account_id: r.try_get("account_id")?,
            folder: r.try_get("folder")?,
            uid_validity: r.try_get("uid_validity")?,
            uid: r.try_get("uid")?,
            rule_id: r.try_get("rule_id")?,
            state: MessageState::parse(&r.try_get::<String, _>("state")?)?,
            jobs: r.try_get("jobs")?,
            subject: r.try_get("subject")?,
            received: r.try_get("received")?,
            error: r.try_get("error")?,
            updated: r.try_get("updated")?,
        })
    }

    /// The UIDs among `uids` that already have a row in this folder generation (any state).
    pub async fn known_uids(
        db: &Db,
        account_id: i64,
        folder: &str,
        uid_validity: i64,
        uids: &[i64],
    ) -> Result<std::collections::HashSet<i64>, DbError> {
        let mut known = std::collections::HashSet::new();
        for chunk in uids.chunks(500) {
            let (lo, hi) = (chunk[0], chunk[chunk.len() - 1]);
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let rows = sqlx::query(
                "SELECT uid FROM mail_messages WHERE account_id = $1 AND folder = $2 \
                 AND uid_validity = $3 AND uid BETWEEN $4 AND $5",
            )
            .bind(account_id)
            .bind(folder)
            .bind(uid_validity)
            .bind(lo)
            .bind(hi)
            .fetch_all(&db.pool)
            .await?;
            for r in rows {
                known.insert(r.try_get::<i64, _>("uid")?);
            }
        }
        Ok(known)
    }

    /// Claims a message: inserts its `queued` row. False if a row exists already (another run
    /// or an earlier rule took it).
    #[allow(clippy::too_many_arguments)]
    pub async fn claim(
        db: &Db,
        account_id: i64,
        folder: &str,
        uid_validity: i64,
        uid: i64,
        rule_id: i64,
        subject: &str,
        received: &str,
    ) -> Result<Option<i64>, DbError> {
        let row = sqlx::query(
            "INSERT INTO mail_messages (account_id, folder, uid_validity, uid, rule_id, state, \
             jobs, subject, received, updated) VALUES ($1, $2, $3, $4, $5, 'queued', '[]', $6, \
             $7, $8) ON CONFLICT (account_id, folder, uid_validity, uid) DO NOTHING RETURNING id",
        )
        .bind(account_id)
        .bind(folder)
        .bind(uid_validity)
        .bind(uid)
        .bind(rule_id)
        .bind(subject)
        .bind(received)
        .bind(now_rfc3339())
        .fetch_optional(&db.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    /// Records the documents (and consume job ids) of a queued message.
    pub async fn set_jobs(db: &Db, id: i64, jobs: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE mail_messages SET jobs = $1, updated = $2 WHERE id = $3")
            .bind(jobs)
            .bind(now_rfc3339())
            .bind(id)
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    /// Ends a message: `done` or `failed` (with the reason).
    pub async fn finish(
        db: &Db,
        id: i64,
        state: MessageState,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE mail_messages SET state = $1, error = $2, updated = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(error)
            .bind(now_rfc3339())
            .bind(id)
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    /// Forgets a message that never got a job queued (so the next run takes it afresh).
    pub async fn release(db: &Db, id: i64) -> Result<(), DbError> {
        sqlx::query("DELETE FROM mail_messages WHERE id = $1 AND state = 'queued'")
            .bind(id)
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    /// The queued messages of an account (left by this run or an earlier one).
    pub async fn queued(db: &Db, account_id: i64) -> Result<Vec<MailMessage>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM mail_messages WHERE account_id = $1 AND state = 'queued' \
             ORDER BY id"
        ))
        .bind(account_id)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// Messages, newest first, optionally of one account and state; at most `limit`.
    pub async fn list(
        db: &Db,
        account_id: Option<i64>,
        state: Option<MessageState>,
        limit: i64,
    ) -> Result<Vec<MailMessage>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM mail_messages WHERE ($1 IS NULL OR account_id = $1) \
             AND ($2 IS NULL OR state = $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(account_id)
        .bind(state.map(|s| s.as_str()))
        .bind(limit)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// Deletes a failed message's row, so the next fetch takes the message again (the rule's
    /// cursor is moved back below it). False if there is no failed row with this id.
    pub async fn retry(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
        let Some(row) = sqlx::query(
            "SELECT rule_id, folder, uid_validity, uid FROM mail_messages \
             WHERE id = $1 AND state = 'failed'",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(false);
        };
        let rule: Option<i64> = row.try_get("rule_id")?;
        let folder: String = row.try_get("folder")?;
        let validity: i64 = row.try_get("uid_validity")?;
        let uid: i64 = row.try_get("uid")?;
        sqlx::query("DELETE FROM mail_messages WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        if let Some(rule) = rule {
            sqlx::query(
                "UPDATE mail_rule_cursors SET last_uid = $1 WHERE rule_id = $2 AND folder = $3 \
                 AND uid_validity = $4 AND last_uid >= $5",
            )
            .bind(uid - 1)
            .bind(rule)
            .bind(&folder)
            .bind(validity)
            .bind(uid)
            .execute(&mut *conn)
            .await?;
        }
        Ok(true)
    }
}

pub mod cursors {
    use super::*;

    /// The highest UID `rule` has looked at in this folder generation (0: none).
    pub async fn get(
        db: &Db,
        rule_id: i64,
        folder: &str,
        uid_validity: i64,
    ) -> Result<i64, DbError> {
        let row = sqlx::query(
            "SELECT last_uid FROM mail_rule_cursors WHERE rule_id = $1 AND folder = $2 \
             AND uid_validity = $3",
        )
        .bind(rule_id)
        .bind(folder)
        .bind(uid_validity)
        .fetch_optional(&db.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get("last_uid")?,
            None => 0,
        })
    }

    /// Moves the cursor forward to `last_uid` (never back).
    pub async fn advance(
        db: &Db,
        rule_id: i64,
        folder: &str,
        uid_validity: i64,
        last_uid: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO mail_rule_cursors (rule_id, folder, uid_validity, last_uid) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (rule_id, folder, uid_validity) DO UPDATE \
             SET last_uid = excluded.last_uid WHERE mail_rule_cursors.last_uid < excluded.last_uid",
        )
        .bind(rule_id)
        .bind(folder)
        .bind(uid_validity)
        .bind(last_uid)
        .execute(&db.pool)
        .await?;
        Ok(())
    }
}

/// The ownerless correspondent named `name`, created if missing as paperless's mail fetcher
/// creates one: `match` = the name, algorithm literal (3), case-insensitive.
pub async fn correspondent_for(db: &Db, name: &str) -> Result<i64, DbError> {
    sqlx::query(
        "INSERT INTO correspondents (name, match, matching_algorithm, is_insensitive) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) WHERE owner_id IS NULL DO NOTHING",
    )
    .bind(name)
    .bind(name)
    .bind(super::matching::LITERAL)
    .bind(true)
    .execute(&db.pool)
    .await?;
    let row = sqlx::query("SELECT id FROM correspondents WHERE name = $1 AND owner_id IS NULL")
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("id")?)
}

/// paperless's `processed_mail` audit row (`SUCCESS`, `FAILED`, `PROCESSED_WO_CONSUMPTION`),
/// written when a message ends, so exports carry it as paperless would.
#[allow(clippy::too_many_arguments)]
pub async fn record_processed(
    db: &Db,
    owner_id: Option<i64>,
    rule_id: i64,
    folder: &str,
    uid: i64,
    uid_validity: i64,
    subject: &str,
    received: &str,
    status: &str,
    error: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO processed_mail (owner_id, rule_id, folder, uid, uid_validity, subject, \
         received, processed, status, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(owner_id)
    .bind(rule_id)
    .bind(folder)
    .bind(uid.to_string())
    .bind(uid_validity.to_string())
    .bind(subject.chars().take(256).collect::<String>())
    .bind(received)
    .bind(now_rfc3339())
    .bind(status)
    .bind(error)
    .execute(&db.pool)
    .await?;
    Ok(())
}
