//! `paperboy mail accounts|rules|messages …`: mail accounts and rules in the database (through
//! `shared::db::mail`). Passwords are read from a file, an environment variable or stdin,
//! stored, and never printed.

use std::io::BufRead;

use paperboy_shared::db::mail::{
    self, MailAccount, MailRule, MessageState, NewMailAccount, NewMailRule, accounts, messages,
    rules,
};
use paperboy_shared::db::{Db, DbError};

use crate::cli::{
    ActionArg, AttachmentTypeArg, CorrespondentFromArg, MailAccountAddCmd, MailRuleAddCmd,
    MessageStateArg, ScopeArg, Security, TitleFromArg,
};
use crate::error::CliError;
use crate::output::{Output, Table};

/// The password, from the one source the user named. Trailing newline characters are cut.
fn read_password(a: &MailAccountAddCmd) -> Result<String, CliError> {
    let raw = if let Some(path) = &a.password_file {
        std::fs::read_to_string(path).map_err(|e| {
            CliError::Other(format!(
                "cannot read the password file {}: {e}",
                path.display()
            ))
        })?
    } else if let Some(var) = &a.password_env {
        std::env::var(var).map_err(|_| {
            CliError::Other(format!(
                "the environment variable {var} is not set (or not UTF-8)"
            ))
        })?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Other(format!("cannot read the password from stdin: {e}")))?;
        line
    };
    let pw = raw.lines().next().unwrap_or_default().to_string();
    if pw.is_empty() {
        return Err(CliError::Other("the password is empty".into()));
    }
    Ok(pw)
}

fn db_err(e: DbError, what: &str) -> CliError {
    if e.is_unique_violation() {
        CliError::Other(format!("{what}: the name is taken"))
    } else if e.is_foreign_key_violation() {
        CliError::Other(format!(
            "{what}: a referenced account, tag, correspondent or document type does not exist"
        ))
    } else {
        CliError::Db(e)
    }
}

pub async fn add_account(db: &Db, out: &Output, a: &MailAccountAddCmd) -> Result<(), CliError> {
    let new = NewMailAccount {
        name: a.name.clone(),
        imap_server: a.server.clone(),
        imap_port: a.port.map(i64::from),
        imap_security: match a.security {
            Security::None => mail::security::NONE,
            Security::Ssl => mail::security::SSL,
            Security::Starttls => mail::security::STARTTLS,
        },
        username: a.username.clone(),
        password: read_password(a)?,
        is_token: a.token,
        character_set: a.character_set.clone(),
        owner_id: None,
    };
    let mut tx = db.begin().await?;
    let id = accounts::insert(&mut tx, &new)
        .await
        .map_err(|e| db_err(e, "cannot add the account"))?;
    tx.commit().await.map_err(DbError::from)?;
    if out.json {
        out.json_line(&serde_json::json!({ "id": id, "name": new.name }))?;
    } else {
        out.line(format!("mail account {id} ({}) added", new.name))?;
    }
    Ok(())
}

fn security_name(code: i64) -> &'static str {
    match code {
        mail::security::NONE => "none",
        mail::security::SSL => "ssl",
        mail::security::STARTTLS => "starttls",
        _ => "?",
    }
}

pub async fn list_accounts(db: &Db, out: &Output) -> Result<(), CliError> {
    let all: Vec<MailAccount> = accounts::list(db).await?;
    if out.json {
        // `Serialize` of an account leaves the password and refresh token out.
        out.json_doc(&all)?;
        return Ok(());
    }
    if all.is_empty() {
        out.line("no mail accounts")?;
        return Ok(());
    }
    let mut t = Table::new(&["ID", "NAME", "SERVER", "SECURITY", "USERNAME", "AUTH"]);
    for a in &all {
        t.row(vec![
            a.id.to_string(),
            a.name.clone(),
            format!("{}:{}", a.imap_server, a.port()),
            security_name(a.imap_security).into(),
            a.username.clone(),
            if a.is_token { "token" } else { "password" }.into(),
        ]);
    }
    out.table(&t)?;
    Ok(())
}

pub async fn remove_account(db: &Db, out: &Output, id: i64) -> Result<(), CliError> {
    let mut tx = db.begin().await?;
    let gone = accounts::delete(&mut tx, id).await?;
    tx.commit().await.map_err(DbError::from)?;
    if !gone {
        return Err(CliError::Other(format!("no mail account with id {id}")));
    }
    out.line(format!("mail account {id} removed (with its rules)"))?;
    Ok(())
}

fn opt_text(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn new_rule(r: &MailRuleAddCmd) -> NewMailRule {
    NewMailRule {
        name: r.name.clone(),
        account_id: r.account,
        owner_id: None,
        order: r.order,
        enabled: !r.disabled,
        folder: r.folder.clone(),
        filter_from: opt_text(&r.from),
        filter_to: opt_text(&r.to),
        filter_subject: opt_text(&r.subject),
        filter_body: opt_text(&r.body),
        filter_attachment_filename_include: opt_text(&r.include),
        filter_attachment_filename_exclude: opt_text(&r.exclude),
        maximum_age: r.maximum_age,
        attachment_type: match r.attachment_type {
            AttachmentTypeArg::Attachments => mail::attachment_type::ATTACHMENTS_ONLY,
            AttachmentTypeArg::Everything => mail::attachment_type::EVERYTHING,
        },
        consumption_scope: match r.scope {
            ScopeArg::Attachments => mail::scope::ATTACHMENTS,
            ScopeArg::Eml => mail::scope::EML,
            ScopeArg::Everything => mail::scope::EVERYTHING,
        },
        pdf_layout: r.pdf_layout,
        action: match r.action {
            ActionArg::Delete => mail::action::DELETE,
            ActionArg::Move => mail::action::MOVE,
            ActionArg::Read => mail::action::MARK_READ,
            ActionArg::Flag => mail::action::FLAG,
            ActionArg::Tag => mail::action::TAG,
        },
        action_parameter: opt_text(&r.action_parameter),
        assign_title_from: match r.title_from {
            TitleFromArg::Subject => mail::title_from::SUBJECT,
            TitleFromArg::Filename => mail::title_from::FILENAME,
            TitleFromArg::None => mail::title_from::NONE,
        },
        assign_tags: r.tags.clone(),
        assign_document_type_id: r.document_type,
        assign_correspondent_from: match r.correspondent_from {
            CorrespondentFromArg::Nothing => mail::correspondent_from::NOTHING,
            CorrespondentFromArg::Email => mail::correspondent_from::EMAIL,
            CorrespondentFromArg::Name => mail::correspondent_from::NAME,
            CorrespondentFromArg::Custom => mail::correspondent_from::CUSTOM,
        },
        assign_correspondent_id: r.correspondent,
        assign_owner_from_rule: !r.no_owner_from_rule,
        stop_processing: r.stop_processing,
    }
}

pub async fn add_rule(db: &Db, out: &Output, r: &MailRuleAddCmd) -> Result<(), CliError> {
    let new = new_rule(r);
    if accounts::get(db, new.account_id).await?.is_none() {
        return Err(CliError::Other(format!(
            "no mail account with id {}",
            new.account_id
        )));
    }
    let mut tx = db.begin().await?;
    let id = rules::insert(&mut tx, &new)
        .await
        .map_err(|e| db_err(e, "cannot add the rule"))?;
    tx.commit().await.map_err(DbError::from)?;
    if out.json {
        out.json_line(&serde_json::json!({ "id": id, "name": new.name }))?;
    } else {
        out.line(format!("mail rule {id} ({}) added", new.name))?;
    }
    Ok(())
}

fn action_text(r: &MailRule) -> String {
    let name = match r.action {
        mail::action::DELETE => "delete",
        mail::action::MOVE => "move",
        mail::action::MARK_READ => "read",
        mail::action::FLAG => "flag",
        mail::action::TAG => "tag",
        _ => "?",
    };
    match &r.action_parameter {
        Some(p) => format!("{name} {p}"),
        None => name.into(),
    }
}

fn filters_text(r: &MailRule) -> String {
    let mut f = Vec::new();
    for (k, v) in [
        ("from", &r.filter_from),
        ("to", &r.filter_to),
        ("subject", &r.filter_subject),
        ("body", &r.filter_body),
        ("include", &r.filter_attachment_filename_include),
        ("exclude", &r.filter_attachment_filename_exclude),
    ] {
        if let Some(v) = v {
            f.push(format!("{k}={v:?}"));
        }
    }
    if r.maximum_age > 0 {
        f.push(format!("age<={}d", r.maximum_age));
    }
    f.join(" ")
}

pub async fn list_rules(db: &Db, out: &Output) -> Result<(), CliError> {
    let all = rules::list(db).await?;
    if out.json {
        out.json_doc(&all)?;
        return Ok(());
    }
    if all.is_empty() {
        out.line("no mail rules")?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "ID", "ACCOUNT", "ORDER", "ON", "NAME", "FOLDER", "SCOPE", "ACTION", "FILTERS",
    ]);
    for r in &all {
        t.row(vec![
            r.id.to_string(),
            r.account_id.to_string(),
            r.order.to_string(),
            if r.enabled { "yes" } else { "no" }.into(),
            r.name.clone(),
            r.folder.clone(),
            match r.consumption_scope {
                mail::scope::EML => "eml",
                mail::scope::EVERYTHING => "eml+attachments",
                _ => "attachments",
            }
            .into(),
            action_text(r),
            filters_text(r),
        ]);
    }
    out.table(&t)?;
    Ok(())
}

pub async fn remove_rule(db: &Db, out: &Output, id: i64) -> Result<(), CliError> {
    let mut tx = db.begin().await?;
    let gone = rules::delete(&mut tx, id).await?;
    tx.commit().await.map_err(DbError::from)?;
    if !gone {
        return Err(CliError::Other(format!("no mail rule with id {id}")));
    }
    out.line(format!("mail rule {id} removed"))?;
    Ok(())
}

pub async fn list_messages(
    db: &Db,
    out: &Output,
    account: Option<i64>,
    state: Option<MessageStateArg>,
    limit: usize,
) -> Result<(), CliError> {
    let state = state.map(|s| match s {
        MessageStateArg::Queued => MessageState::Queued,
        MessageStateArg::Done => MessageState::Done,
        MessageStateArg::Failed => MessageState::Failed,
    });
    let rows = messages::list(db, account, state, limit.min(100_000) as i64).await?;
    if out.json {
        out.json_doc(&rows)?;
        return Ok(());
    }
    if rows.is_empty() {
        out.line("no messages")?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "ID", "ACCOUNT", "FOLDER", "UID", "RULE", "STATE", "SUBJECT", "ERROR",
    ]);
    for m in &rows {
        t.row(vec![
            m.id.to_string(),
            m.account_id.to_string(),
            m.folder.clone(),
            format!("{}/{}", m.uid_validity, m.uid),
            m.rule_id
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            m.state.as_str().into(),
            m.subject.chars().take(40).collect(),
            m.error.clone().unwrap_or_default(),
        ]);
    }
    out.table(&t)?;
    Ok(())
}

pub async fn retry_message(db: &Db, out: &Output, id: i64) -> Result<(), CliError> {
    let mut tx = db.begin().await?;
    let ok = messages::retry(&mut tx, id).await?;
    tx.commit().await.map_err(DbError::from)?;
    if !ok {
        return Err(CliError::Other(format!("no failed message with id {id}")));
    }
    out.line(format!(
        "message {id} forgotten: the next `paperboy mail-fetch` takes it again"
    ))?;
    Ok(())
}
