//! Export / import (paperless-ngx manifest format): which paperless model maps to which table,
//! field by field, and the generic queries over that map. The worker's `jobs::transfer` turns
//! rows into manifest records and back; all SQL stays here.
//!
//! A record's `fields` hold every column of [`Model::cols`] under its paperless field name; FK
//! columns carry Django's `_id` suffix in the table and none in the manifest. Many-to-many
//! fields are lists of pks ([`M2m`]). Models paperless exports but paperboy does not store
//! (permissions, saved views, workflows, the audit log, …) are not in [`MODELS`]: the importer
//! skips and counts them.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Column, Row};

use super::{Db, DbError, Engine, Tx, get_opt_bool};

/// How a column is read, written and rendered in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Bool,
    Real,
    Text,
    /// JSON held as text in the table, an embedded JSON value in the manifest.
    Json,
    /// `YYYY-MM-DD` text.
    Date,
    /// RFC 3339 UTC text.
    DateTime,
    /// A foreign key (integer) to the model with this label.
    Fk(&'static str),
}

/// One column: paperless field name, table column, kind, and whether NULL is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub field: &'static str,
    pub column: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

/// A many-to-many field stored in a link table `table (own, other)`.
#[derive(Debug, Clone, Copy)]
pub struct M2m {
    pub field: &'static str,
    pub table: &'static str,
    pub own: &'static str,
    pub other: &'static str,
    pub target: &'static str,
}

/// A paperless model paperboy stores.
#[derive(Debug)]
pub struct Model {
    pub label: &'static str,
    pub table: &'static str,
    pub cols: &'static [Col],
    pub m2m: &'static [M2m],
    /// Fields paperless exports that paperboy does not store (ignored on import, not written).
    pub ignored: &'static [&'static str],
}

impl Model {
    pub fn col(&self, field: &str) -> Option<&'static Col> {
        self.cols.iter().find(|c| c.field == field)
    }
    pub fn m2m(&self, field: &str) -> Option<&'static M2m> {
        self.m2m.iter().find(|m| m.field == field)
    }
    /// Self-references (tag parent, document root) are set in a second pass, after every row of
    /// the table exists.
    pub fn self_refs(&self) -> impl Iterator<Item = &'static Col> + '_ {
        self.cols
            .iter()
            .filter(move |c| c.kind == Kind::Fk(self.label))
    }
}

const fn c(field: &'static str, column: &'static str, kind: Kind, nullable: bool) -> Col {
    Col {
        field,
        column,
        kind,
        nullable,
    }
}

const OWNER: Col = c("owner", "owner_id", Kind::Fk(USER), true);
const USER: &str = "auth.user";
const DOCUMENT: &str = "documents.document";
const TAG: &str = "documents.tag";

macro_rules! matchable {
    ($($extra:expr),*) => {
        &[
            OWNER,
            c("name", "name", Kind::Text, false),
            c("match", "match", Kind::Text, false),
            c("matching_algorithm", "matching_algorithm", Kind::Int, false),
            c("is_insensitive", "is_insensitive", Kind::Bool, false),
            $($extra),*
        ]
    };
}

const SOFT_DELETE: [Col; 3] = [
    c("deleted_at", "deleted_at", Kind::DateTime, true),
    c("restored_at", "restored_at", Kind::DateTime, true),
    c("transaction_id", "transaction_id", Kind::Text, true),
];

/// Every stored model, in an order that satisfies the foreign keys (self-references aside).
pub const MODELS: &[Model] = &[
    Model {
        label: USER,
        table: "users",
        cols: &[
            c("password", "password", Kind::Text, false),
            c("last_login", "last_login", Kind::DateTime, true),
            c("is_superuser", "is_superuser", Kind::Bool, false),
            c("username", "username", Kind::Text, false),
            c("first_name", "first_name", Kind::Text, false),
            c("last_name", "last_name", Kind::Text, false),
            c("email", "email", Kind::Text, false),
            c("is_staff", "is_staff", Kind::Bool, false),
            c("is_active", "is_active", Kind::Bool, false),
            c("date_joined", "date_joined", Kind::DateTime, false),
        ],
        m2m: &[M2m {
            field: "groups",
            table: "user_groups",
            own: "user_id",
            other: "group_id",
            target: "auth.group",
        }],
        ignored: &["user_permissions"],
    },
    Model {
        label: "auth.group",
        table: "groups",
        cols: &[c("name", "name", Kind::Text, false)],
        m2m: &[],
        ignored: &["permissions"],
    },
    Model {
        label: "documents.correspondent",
        table: "correspondents",
        cols: matchable!(),
        m2m: &[],
        ignored: &[],
    },
    Model {
        label: "documents.documenttype",
        table: "document_types",
        cols: matchable!(),
        m2m: &[],
        ignored: &[],
    },
    Model {
        label: "documents.storagepath",
        table: "storage_paths",
        cols: matchable!(c("path", "path", Kind::Text, false)),
        m2m: &[],
        ignored: &[],
    },
    Model {
        label: TAG,
        table: "tags",
        cols: matchable!(
            c("color", "color", Kind::Text, false),
            c("is_inbox_tag", "is_inbox_tag", Kind::Bool, false),
            c("tn_parent", "tn_parent_id", Kind::Fk(TAG), true),
            c("tn_priority", "tn_priority", Kind::Int, false)
        ),
        m2m: &[],
        ignored: &[
            "tn_ancestors_pks",
            "tn_ancestors_count",
            "tn_children_pks",
            "tn_children_count",
            "tn_depth",
            "tn_descendants_pks",
            "tn_descendants_count",
            "tn_index",
            "tn_level",
            "tn_order",
            "tn_siblings_pks",
            "tn_siblings_count",
        ],
    },
    Model {
        label: "documents.customfield",
        table: "custom_fields",
        cols: &[
            c("created", "created", Kind::DateTime, false),
            c("name", "name", Kind::Text, false),
            c("data_type", "data_type", Kind::Text, false),
            c("extra_data", "extra_data", Kind::Json, true),
        ],
        m2m: &[],
        ignored: &[],
    },
    Model {
        label: "paperless_mail.mailaccount",
        table: "mail_accounts",
        cols: &[
            OWNER,
            c("name", "name", Kind::Text, false),
            c("imap_server", "imap_server", Kind::Text, false),
            c("imap_port", "imap_port", Kind::Int, true),
            c("imap_security", "imap_security", Kind::Int, false),
            c("username", "username", Kind::Text, false),
            c("password", "password", Kind::Text, false),
            c("is_token", "is_token", Kind::Bool, false),
            c("character_set", "character_set", Kind::Text, false),
            c("account_type", "account_type", Kind::Int, false),
            c("refresh_token", "refresh_token", Kind::Text, true),
            c("expiration", "expiration", Kind::DateTime, true),
        ],
        m2m: &[],
        ignored: &[],
    },
    Model {
        label: "paperless_mail.mailrule",
        table: "mail_rules",
        cols: &[
            OWNER,
            c("name", "name", Kind::Text, false),
            c(
                "account",
                "account_id",
                Kind::Fk("paperless_mail.mailaccount"),
                false,
            ),
            c("order", "\"order\"", Kind::Int, false),
            c("enabled", "enabled", Kind::Bool, false),
            c("folder", "folder", Kind::Text, false),
            c("filter_from", "filter_from", Kind::Text, true),
            c("filter_to", "filter_to", Kind::Text, true),
            c("filter_subject", "filter_subject", Kind::Text, true),
            c("filter_body", "filter_body", Kind::Text, true),
            c(
                "filter_attachment_filename_include",
                "filter_attachment_filename_include",
                Kind::Text,
                true,
            ),
            c(
                "filter_attachment_filename_exclude",
                "filter_attachment_filename_exclude",
                Kind::Text,
                true,
            ),
            c("maximum_age", "maximum_age", Kind::Int, false),
            c("attachment_type", "attachment_type", Kind::Int, false),
            c("consumption_scope", "consumption_scope", Kind::Int, false),
            c("pdf_layout", "pdf_layout", Kind::Int, false),
            c("action", "action", Kind::Int, false),
            c("action_parameter", "action_parameter", Kind::Text, true),
            c("assign_title_from", "assign_title_from", Kind::Int, false),
            c(
                "assign_document_type",
                "assign_document_type_id",
                Kind::Fk("documents.documenttype"),
                true,
            ),
            c(
                "assign_correspondent_from",
                "assign_correspondent_from",
                Kind::Int,
                false,
            ),
            c(
                "assign_correspondent",
                "assign_correspondent_id",
                Kind::Fk("documents.correspondent"),
                true,
            ),
            c(
                "assign_owner_from_rule",
                "assign_owner_from_rule",
                Kind::Bool,
                false,
            ),
            c("stop_processing", "stop_processing", Kind::Bool, false),
        ],
        m2m: &[M2m {
            field: "assign_tags",
            table: "mail_rule_tags",
            own: "mail_rule_id",
            other: "tag_id",
            target: TAG,
        }],
        ignored: &[],
    },
    Model {
        label: DOCUMENT,
        table: "documents",
        cols: &[
            OWNER,
            c(
                "correspondent",
                "correspondent_id",
                Kind::Fk("documents.correspondent"),
                true,
            ),
            c(
                "document_type",
                "document_type_id",
                Kind::Fk("documents.documenttype"),
                true,
            ),
            c(
                "storage_path",
                "storage_path_id",
                Kind::Fk("documents.storagepath"),
                true,
            ),
            c("title", "title", Kind::Text, false),
            c("content", "content", Kind::Text, false),
            c("mime_type", "mime_type", Kind::Text, false),
            c("checksum", "checksum", Kind::Text, false),
            c("archive_checksum", "archive_checksum", Kind::Text, true),
            c("page_count", "page_count", Kind::Int, true),
            c("created", "created", Kind::Date, false),
            c("modified", "modified", Kind::DateTime, false),
            c("added", "added", Kind::DateTime, false),
            c("filename", "filename", Kind::Text, true),
            c("archive_filename", "archive_filename", Kind::Text, true),
            c("original_filename", "original_filename", Kind::Text, true),
            c(
                "archive_serial_number",
                "archive_serial_number",
                Kind::Int,
                true,
            ),
            c(
                "root_document",
                "root_document_id",
                Kind::Fk(DOCUMENT),
                true,
            ),
            c("version_index", "version_index", Kind::Int, true),
            c("version_label", "version_label", Kind::Text, true),
            SOFT_DELETE[0],
            SOFT_DELETE[1],
            SOFT_DELETE[2],
        ],
        m2m: &[M2m {
            field: "tags",
            table: "document_tags",
            own: "document_id",
            other: "tag_id",
            target: TAG,
        }],
        // storage_type: ≤ 2.x (GnuPG era); exported files are always plain, so it is dropped.
        ignored: &["content_length", "storage_type"],
    },
    Model {
        label: "documents.note",
        table: "notes",
        cols: &[
            c("note", "note", Kind::Text, false),
            c("created", "created", Kind::DateTime, false),
            c("document", "document_id", Kind::Fk(DOCUMENT), true),
            c("user", "user_id", Kind::Fk(USER), true),
            SOFT_DELETE[0],
            SOFT_DELETE[1],
            SOFT_DELETE[2],
        ],
        m2m: &[],
        ignored: &[],
    },
    Model {
        label: "documents.customfieldinstance",
        table: "custom_field_instances",
        cols: &[
            c("created", "created", Kind::DateTime, false),
            c("document", "document_id", Kind::Fk(DOCUMENT), false),
            c(
                "field",
                "field_id",
                Kind::Fk("documents.customfield"),
                false,
            ),
            c("value_text", "value_text", Kind::Text, true),
            c("value_bool", "value_bool", Kind::Bool, true),
            c("value_url", "value_url", Kind::Text, true),
            c("value_date", "value_date", Kind::Date, true),
            c("value_int", "value_int", Kind::Int, true),
            c("value_float", "value_float", Kind::Real, true),
            c("value_monetary", "value_monetary", Kind::Text, true),
            c("value_document_ids", "value_document_ids", Kind::Json, true),
            c("value_select", "value_select", Kind::Text, true),
            c("value_long_text", "value_long_text", Kind::Text, true),
            SOFT_DELETE[0],
            SOFT_DELETE[1],
            SOFT_DELETE[2],
        ],
        m2m: &[],
        // DB-generated in paperless (2.13+).
        ignored: &["value_monetary_amount"],
    },
];

/// The stored model with this label.
pub fn model(label: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.label == label)
}

/// Usernames paperless never exports (its internal users).
pub const INTERNAL_USERS: &[&str] = &["consumer", "AnonymousUser"];

/// One column value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Bool(bool),
    Real(f64),
    Text(String),
}

/// A row of a stored model: its pk and one value per [`Model::cols`] entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RowData {
    pub pk: i64,
    pub vals: Vec<Val>,
}

fn column_list(m: &Model) -> String {
    m.cols
        .iter()
        .map(|c| c.column)
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_row(m: &Model, row: &AnyRow) -> Result<RowData, DbError> {
    let pk: i64 = row.try_get(0)?;
    let mut vals = Vec::with_capacity(m.cols.len());
    for (i, c) in m.cols.iter().enumerate() {
        let i = i + 1;
        let v = match c.kind {
            Kind::Int | Kind::Fk(_) => row.try_get::<Option<i64>, _>(i)?.map(Val::Int),
            Kind::Bool => {
                let name = row.column(i).name().to_string();
                get_opt_bool(row, &name)?.map(Val::Bool)
            }
            Kind::Real => row.try_get::<Option<f64>, _>(i)?.map(Val::Real),
            Kind::Text | Kind::Json | Kind::Date | Kind::DateTime => {
                row.try_get::<Option<String>, _>(i)?.map(Val::Text)
            }
        };
        vals.push(v.unwrap_or(Val::Null));
    }
    Ok(RowData { pk, vals })
}

/// A read-only snapshot: every query of an export runs in it, so manifest and files describe
/// one moment (REPEATABLE READ on PostgreSQL; a read transaction on SQLite, whose snapshot
/// starts at the first read).
pub async fn begin_snapshot(db: &Db) -> Result<Tx, DbError> {
    Ok(match db.engine {
        Engine::Sqlite => db.pool.begin_with("BEGIN DEFERRED").await?,
        Engine::Postgres => {
            db.pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
    })
}

/// Up to `limit` rows of `m` with pk > `after`, by pk. Internal users are left out.
pub async fn rows_after(
    conn: &mut AnyConnection,
    m: &Model,
    after: i64,
    limit: i64,
) -> Result<Vec<RowData>, DbError> {
    let filter = if m.table == "users" {
        " AND username NOT IN ('consumer', 'AnonymousUser')"
    } else {
        ""
    };
    let sql = format!(
        "SELECT id, {} FROM {} WHERE id > $1{filter} ORDER BY id LIMIT $2",
        column_list(m),
        m.table
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| read_row(m, r)).collect()
}

/// The (own, other) pairs of a link table for owners in `from..=to`, ordered.
pub async fn links_between(
    conn: &mut AnyConnection,
    l: &M2m,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let sql = format!(
        "SELECT {own}, {other} FROM {t} WHERE {own} >= $1 AND {own} <= $2 ORDER BY {own}, {other}",
        own = l.own,
        other = l.other,
        t = l.table
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Rows of `m` (notes, custom field values) of documents `from..=to`, by pk.
pub async fn rows_by_document(
    conn: &mut AnyConnection,
    m: &Model,
    from: i64,
    to: i64,
) -> Result<Vec<RowData>, DbError> {
    let sql = format!(
        "SELECT id, {} FROM {} WHERE document_id >= $1 AND document_id <= $2 ORDER BY id",
        column_list(m),
        m.table
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| read_row(m, r)).collect()
}

/// Rows in a table (internal users not counted).
pub async fn count(conn: &mut AnyConnection, m: &Model) -> Result<i64, DbError> {
    let filter = if m.table == "users" {
        " WHERE username NOT IN ('consumer', 'AnonymousUser')"
    } else {
        ""
    };
    let sql = format!("SELECT COUNT(*) FROM {}{filter}", m.table);
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// Inserts one row with its pk; self-references are written NULL (see [`set_self_refs`]).
pub async fn insert_row(tx: &mut Tx, m: &Model, row: &RowData) -> Result<(), DbError> {
    let placeholders: Vec<String> = (1..=m.cols.len() + 1).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} (id, {}) VALUES ({})",
        m.table,
        column_list(m),
        placeholders.join(", ")
    );
    // Not persistent: a cached statement would keep the parameter types of the first row (a
    // NULL's type) and PostgreSQL then refuses a later row's value for it.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(row.pk);
    for (c, v) in m.cols.iter().zip(&row.vals) {
        let v = if c.kind == Kind::Fk(m.label) {
            &Val::Null
        } else {
            v
        };
        q = match (c.kind, v) {
            (Kind::Int | Kind::Fk(_), Val::Int(i)) => q.bind(Some(*i)),
            (Kind::Int | Kind::Fk(_), _) => q.bind(None::<i64>),
            (Kind::Bool, Val::Bool(b)) => q.bind(Some(*b)),
            (Kind::Bool, _) => q.bind(None::<bool>),
            (Kind::Real, Val::Real(f)) => q.bind(Some(*f)),
            (Kind::Real, _) => q.bind(None::<f64>),
            (_, Val::Text(s)) => q.bind(Some(s.clone())),
            (_, _) => q.bind(None::<String>),
        };
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Sets the self-reference columns of a row inserted by [`insert_row`].
pub async fn set_self_refs(tx: &mut Tx, m: &Model, row: &RowData) -> Result<(), DbError> {
    for (c, v) in m.cols.iter().zip(&row.vals) {
        if let (true, Val::Int(target)) = (c.kind == Kind::Fk(m.label), v) {
            let sql = format!("UPDATE {} SET {} = $1 WHERE id = $2", m.table, c.column);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(*target)
                .bind(row.pk)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Links `own` to every id of `others` in a link table.
pub async fn insert_links(tx: &mut Tx, l: &M2m, own: i64, others: &[i64]) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO {} ({}, {}) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        l.table, l.own, l.other
    );
    for o in others {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(own)
            .bind(*o)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// After inserting rows with explicit ids: PostgreSQL's identity sequences continue after the
/// largest id (SQLite's AUTOINCREMENT follows by itself).
pub async fn reset_sequences(tx: &mut Tx, engine: Engine) -> Result<(), DbError> {
    if engine != Engine::Postgres {
        return Ok(());
    }
    for m in MODELS {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{t}', 'id'), \
             COALESCE((SELECT MAX(id) FROM {t}), 0) + 1, false)",
            t = m.table
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fk_and_link_points_at_a_stored_model() {
        for m in MODELS {
            for c in m.cols {
                if let Kind::Fk(t) = c.kind {
                    assert!(model(t).is_some(), "{}.{} -> {t}", m.label, c.field);
                }
            }
            for l in m.m2m {
                assert!(model(l.target).is_some(), "{}.{}", m.label, l.field);
            }
        }
    }

    #[test]
    fn models_come_after_the_models_they_reference() {
        for (i, m) in MODELS.iter().enumerate() {
            for c in m.cols {
                if let Kind::Fk(t) = c.kind
                    && t != m.label
                {
                    let j = MODELS.iter().position(|x| x.label == t).unwrap();
                    assert!(j < i, "{} must come after {t}", m.label);
                }
            }
        }
    }
}
