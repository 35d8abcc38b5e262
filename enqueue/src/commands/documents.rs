//! `paperboy documents list|show`: read-only views of the archive, through `shared::db`.

use std::path::Path;

use paperboy_shared::config::Config;
use paperboy_shared::db::objects::{correspondents, document_types};
use paperboy_shared::db::{Db, Document, Engine, documents, migrate, tags};

use crate::error::CliError;
use crate::output::{Output, Table, redact_url};

/// Connects to the configured database for reading. A SQLite file that does not exist is an
/// error here (connecting would create an empty one), and so is a database without a schema.
pub async fn open(config: &Config) -> Result<Db, CliError> {
    let url = &config.database_url;
    if Engine::from_url(url)? == Engine::Sqlite {
        let file = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:")
            .split('?')
            .next()
            .unwrap_or_default();
        if !file.is_empty() && file != ":memory:" && !Path::new(file).exists() {
            return Err(CliError::Other(format!(
                "no database at {file}: set PAPERBOY_DATABASE_URL (or PAPERBOY_DATA_DIR), or \
                 run `paperboy-worker migrate` to create it"
            )));
        }
    }
    let db = Db::connect_with(url, 1).await?;
    if migrate::current_version(&db).await? == 0 {
        return Err(CliError::Other(format!(
            "the database at {} has no schema yet: run `paperboy-worker migrate` to create it",
            redact_url(url)
        )));
    }
    Ok(db)
}

pub async fn list(db: &Db, out: &Output, after: i64, limit: usize) -> Result<(), CliError> {
    let docs = documents::list(db, after, limit.min(i64::MAX as usize) as i64).await?;
    if out.json {
        out.json_doc(&docs)?;
        return Ok(());
    }
    if docs.is_empty() {
        out.line("no documents")?;
        return Ok(());
    }
    let mut t = Table::new(&["ID", "CREATED", "ASN", "PAGES", "TAGS", "TITLE"]);
    for d in &docs {
        t.row(vec![
            d.id.to_string(),
            d.created.clone(),
            opt(d.archive_serial_number),
            opt(d.page_count),
            d.tags.len().to_string(),
            d.title.clone(),
        ]);
    }
    out.table(&t)?;
    if docs.len() == limit
        && let Some(last) = docs.last()
    {
        out.warn(format!(
            "first {limit} shown; next page: `paperboy documents list --after {}`",
            last.id
        ));
    }
    Ok(())
}

pub async fn show(db: &Db, out: &Output, id: i64) -> Result<(), CliError> {
    let doc = documents::get(db, id)
        .await?
        .ok_or_else(|| CliError::Other(format!("no document with id {id}")))?;
    if out.json {
        out.json_doc(&doc)?;
        return Ok(());
    }
    let mut tag_names = Vec::with_capacity(doc.tags.len());
    for t in &doc.tags {
        tag_names.push(match tags::get(db, *t).await? {
            Some(tag) => format!("{} (#{t})", tag.name),
            None => format!("#{t}"),
        });
    }
    let correspondent = match doc.correspondent_id {
        Some(c) => Some(named(correspondents::get(db, c).await?.map(|x| x.name), c)),
        None => None,
    };
    let document_type = match doc.document_type_id {
        Some(c) => Some(named(document_types::get(db, c).await?.map(|x| x.name), c)),
        None => None,
    };
    out.line(describe(&doc, &tag_names, correspondent, document_type).trim_end())?;
    Ok(())
}

fn named(name: Option<String>, id: i64) -> String {
    match name {
        Some(n) => format!("{n} (#{id})"),
        None => format!("#{id}"),
    }
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The text of `documents show`.
pub fn describe(
    d: &Document,
    tag_names: &[String],
    correspondent: Option<String>,
    document_type: Option<String>,
) -> String {
    let mut s = String::new();
    let mut field = |k: &str, v: String| s.push_str(&format!("{:<19}{v}\n", format!("{k}:")));
    field("id", d.id.to_string());
    field("title", d.title.clone());
    field("created", d.created.clone());
    field("added", d.added.clone());
    field("modified", d.modified.clone());
    if let Some(c) = correspondent {
        field("correspondent", c);
    }
    if let Some(t) = document_type {
        field("document type", t);
    }
    field(
        "tags",
        if tag_names.is_empty() {
            "-".into()
        } else {
            tag_names.join(", ")
        },
    );
    field("asn", opt(d.archive_serial_number));
    field("mime type", d.mime_type.clone());
    field("pages", opt(d.page_count));
    field("checksum", d.checksum.clone());
    if let Some(f) = &d.original_filename {
        field("original filename", f.clone());
    }
    if let Some(f) = &d.filename {
        field("original", f.clone());
    }
    field(
        "archive version",
        d.archive_filename.clone().unwrap_or_else(|| "none".into()),
    );
    field("storage", d.storage_type.as_str().into());
    if let Some(at) = &d.deleted_at {
        field("in trash since", at.clone());
    }
    let words = d.content.split_whitespace().count();
    let preview: String = d
        .content
        .split_whitespace()
        .take(30)
        .collect::<Vec<_>>()
        .join(" ");
    field(
        "content",
        if words == 0 {
            "(none)".into()
        } else if words > 30 {
            format!("{words} words: {preview} …")
        } else {
            format!("{words} words: {preview}")
        },
    );
    s
}
