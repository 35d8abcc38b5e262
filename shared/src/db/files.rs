//! Queries of the jobs that care for the files: file names from templates (everything a name
//! may depend on), the sanity checker (every document's files and checksums, in pages), the
//! renamer (moving a document's names, guarded by the old ones) and the decryptor.

use sqlx::{AnyConnection, Row};

use super::documents::doc_cols;
use super::{Db, DbError, Document, StoragePath, get_opt_bool, now_rfc3339};

/// A custom field's value on a document, resolved to JSON: text-like columns as strings,
/// booleans, integers, floats as such, a select field as its option's label, a document
/// link as the list of ids.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldData {
    pub name: String,
    pub data_type: String,
    pub value: serde_json::Value,
}

/// What a file name template may use. For a version row, `root` is its root document (whose
/// template, title and relations the name follows); the relations are the root's then.
#[derive(Debug, Clone, PartialEq)]
pub struct NamingData {
    pub document: Document,
    pub root: Option<Document>,
    /// (id, username).
    pub owner: Option<(i64, String)>,
    pub correspondent: Option<(i64, String)>,
    pub document_type: Option<(i64, String)>,
    pub storage_path: Option<StoragePath>,
    /// (id, name), by name.
    pub tags: Vec<(i64, String)>,
    pub custom_fields: Vec<FieldData>,
}

async fn document_in(conn: &mut AnyConnection, id: i64) -> Result<Option<Document>, DbError> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        doc_cols!(),
        " FROM documents WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    Document::from_row(&row).map(Some)
}

async fn id_name(
    conn: &mut AnyConnection,
    sql: &'static str,
    id: Option<i64>,
) -> Result<Option<(i64, String)>, DbError> {
    let Some(id) = id else { return Ok(None) };
    let row = sqlx::query(sql).bind(id).fetch_optional(&mut *conn).await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .transpose()
}

/// Everything [`NamingData`] holds for document `id` (None if there is no such document),
/// read on `conn` (inside a transaction: what it wrote so far).
pub async fn naming(conn: &mut AnyConnection, id: i64) -> Result<Option<NamingData>, DbError> {
    let Some(document) = document_in(conn, id).await? else {
        return Ok(None);
    };
    let root = match document.root_document_id {
        Some(r) if r != document.id => document_in(conn, r).await?,
        _ => None,
    };
    let base = root.as_ref().unwrap_or(&document).clone();
    let owner = id_name(
        conn,
        "SELECT id, username AS name FROM users WHERE id = $1",
        base.owner_id,
    )
    .await?;
    let correspondent = id_name(
        conn,
        "SELECT id, name FROM correspondents WHERE id = $1",
        base.correspondent_id,
    )
    .await?;
    let document_type = id_name(
        conn,
        "SELECT id, name FROM document_types WHERE id = $1",
        base.document_type_id,
    )
    .await?;
    let storage_path = match base.storage_path_id {
        Some(sp) => sqlx::query(
            "SELECT id, owner_id, name, path, match, matching_algorithm, is_insensitive \
             FROM storage_paths WHERE id = $1",
        )
        .bind(sp)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(StoragePath::from_row)
        .transpose()?,
        None => None,
    };
    let tags = sqlx::query(
        "SELECT t.id AS id, t.name AS name FROM document_tags dt JOIN tags t ON t.id = dt.tag_id \
         WHERE dt.document_id = $1 ORDER BY t.name, t.id",
    )
    .bind(base.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
    .collect::<Result<Vec<_>, DbError>>()?;
    let custom_fields = field_values(conn, base.id).await?;
    Ok(Some(NamingData {
        document,
        root,
        owner,
        correspondent,
        document_type,
        storage_path,
        tags,
        custom_fields,
    }))
}

/// [`naming`] on a connection of the pool.
pub async fn naming_of(db: &Db, id: i64) -> Result<Option<NamingData>, DbError> {
    let mut conn = db.pool.acquire().await?;
    naming(&mut conn, id).await
}

async fn field_values(
    conn: &mut AnyConnection,
    document_id: i64,
) -> Result<Vec<FieldData>, DbError> {
    let rows = sqlx::query(
        "SELECT f.name AS name, f.data_type AS data_type, f.extra_data AS extra_data, \
         i.value_text, i.value_url, i.value_date, i.value_bool, i.value_int, i.value_float, \
         i.value_monetary, i.value_document_ids, i.value_select, i.value_long_text \
         FROM custom_field_instances i JOIN custom_fields f ON f.id = i.field_id \
         WHERE i.document_id = $1 AND i.deleted_at IS NULL ORDER BY f.name",
    )
    .bind(document_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(field_data).collect()
}

/// One [`FieldData`] from a row with the columns `name, data_type, extra_data, value_*`.
pub(crate) fn field_data(r: &sqlx::any::AnyRow) -> Result<FieldData, DbError> {
    let data_type: String = r.try_get("data_type")?;
    let text = |col: &str| -> Result<serde_json::Value, DbError> {
        Ok(r.try_get::<Option<String>, _>(col)?
            .map(serde_json::Value::String)
            .unwrap_or(serde_json::Value::Null))
    };
    let value = match data_type.as_str() {
        "string" => text("value_text")?,
        "url" => text("value_url")?,
        "date" => text("value_date")?,
        "monetary" => text("value_monetary")?,
        "longtext" => text("value_long_text")?,
        "boolean" => get_opt_bool(r, "value_bool")?
            .map(serde_json::Value::Bool)
            .unwrap_or(serde_json::Value::Null),
        "integer" => r
            .try_get::<Option<i64>, _>("value_int")?
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null),
        "float" => r
            .try_get::<Option<f64>, _>("value_float")?
            .map(serde_json::Value::from)
            .unwrap_or(serde_json::Value::Null),
        "documentlink" => r
            .try_get::<Option<String>, _>("value_document_ids")?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null),
        "select" => {
            let extra: Option<String> = r.try_get("extra_data")?;
            match r.try_get::<Option<String>, _>("value_select")? {
                Some(id) => serde_json::Value::String(select_label(extra.as_deref(), &id)),
                None => serde_json::Value::Null,
            }
        }
        _ => serde_json::Value::Null,
    };
    Ok(FieldData {
        name: r.try_get("name")?,
        data_type,
        value,
    })
}

/// The label of select option `id` in `extra_data` (`{"select_options": [{"id", "label"}]}`);
/// the id itself if it is not found.
pub fn select_label(extra_data: Option<&str>, id: &str) -> String {
    let parsed: Option<serde_json::Value> = extra_data.and_then(|e| serde_json::from_str(e).ok());
    parsed
        .as_ref()
        .and_then(|v| v.get("select_options"))
        .and_then(|o| o.as_array())
        .and_then(|opts| {
            opts.iter().find_map(|o| {
                let oid = o.get("id")?;
                let matches = oid.as_str() == Some(id)
                    || oid.as_i64().map(|n| n.to_string()).as_deref() == Some(id);
                matches
                    .then(|| o.get("label")?.as_str().map(str::to_string))
                    .flatten()
            })
        })
        .unwrap_or_else(|| id.to_string())
}

/// A document's files as the sanity checker and the renamer see them.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub id: i64,
    pub title: String,
    pub checksum: String,
    pub archive_checksum: Option<String>,
    pub filename: Option<String>,
    pub archive_filename: Option<String>,
    pub content_empty: bool,
    pub storage_type: String,
    pub in_trash: bool,
}

fn file_row(r: &sqlx::any::AnyRow) -> Result<FileRow, DbError> {
    Ok(FileRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        checksum: r.try_get("checksum")?,
        archive_checksum: r.try_get("archive_checksum")?,
        filename: r.try_get("filename")?,
        archive_filename: r.try_get("archive_filename")?,
        content_empty: r.try_get::<i64, _>("content_empty")? != 0,
        storage_type: r.try_get("storage_type")?,
        in_trash: r.try_get::<Option<String>, _>("deleted_at")?.is_some(),
    })
}

macro_rules! file_cols {
    () => {
        "id, title, checksum, archive_checksum, filename, archive_filename, \
         CASE WHEN content = '' THEN 1 ELSE 0 END AS content_empty, storage_type, deleted_at"
    };
}

/// Up to `limit` documents with `id > after_id` (trash included), by id: keyset pages for
/// streaming every document's files without holding them all.
pub async fn file_rows_after(db: &Db, after_id: i64, limit: i64) -> Result<Vec<FileRow>, DbError> {
    sqlx::query(concat!(
        "SELECT ",
        file_cols!(),
        " FROM documents WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after_id)
    .bind(limit.max(0))
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(file_row)
    .collect()
}

/// The rows of `ids` that exist (trash included), by id.
pub async fn file_rows(db: &Db, ids: &[i64]) -> Result<Vec<FileRow>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = sqlx::query(concat!(
            "SELECT ",
            file_cols!(),
            " FROM documents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        {
            out.push(file_row(&r)?);
        }
    }
    Ok(out)
}

/// Moves a document's names from `old` to `new` (original, archive), only if the row still has
/// the old ones (another run may have moved it): returns whether it did. `modified` = now.
pub async fn move_names(
    conn: &mut AnyConnection,
    id: i64,
    old: (Option<&str>, Option<&str>),
    new: (Option<&str>, Option<&str>),
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE documents SET filename = $1, archive_filename = $2, modified = $3 \
         WHERE id = $4 AND filename IS NOT DISTINCT FROM $5 \
         AND archive_filename IS NOT DISTINCT FROM $6",
    )
    .bind(new.0)
    .bind(new.1)
    .bind(now_rfc3339())
    .bind(id)
    .bind(old.0)
    .bind(old.1)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Holds document `id` against every other writer of its names until the caller's
/// transaction ends: PostgreSQL locks the row (`FOR UPDATE`); SQLite needs nothing (a write
/// transaction, `BEGIN IMMEDIATE`, already excludes every other writer). False if there is no
/// such document.
pub async fn lock_document(
    conn: &mut AnyConnection,
    engine: super::Engine,
    id: i64,
) -> Result<bool, DbError> {
    let sql = match engine {
        super::Engine::Postgres => "SELECT id FROM documents WHERE id = $1 FOR UPDATE",
        super::Engine::Sqlite => "SELECT id FROM documents WHERE id = $1",
    };
    Ok(sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Up to `limit` ids of GnuPG-encrypted documents with `id > after_id` (trash included).
pub async fn gpg_ids_after(db: &Db, after_id: i64, limit: i64) -> Result<Vec<i64>, DbError> {
    sqlx::query(
        "SELECT id FROM documents WHERE id > $1 AND storage_type = 'gpg' ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit.max(0))
    .fetch_all(&db.pool)
    .await
    .map_err(DbError::from)
    .and_then(|rows| super::documents::id_column(&rows))
}

/// Marks a document decrypted: `storage_type` unencrypted, its new original name. Only if it
/// is still encrypted with the old name; returns whether it did.
pub async fn set_decrypted(
    conn: &mut AnyConnection,
    id: i64,
    old_filename: Option<&str>,
    new_filename: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE documents SET storage_type = 'unencrypted', filename = $1, modified = $2 \
         WHERE id = $3 AND storage_type = 'gpg' AND filename IS NOT DISTINCT FROM $4",
    )
    .bind(new_filename)
    .bind(now_rfc3339())
    .bind(id)
    .bind(old_filename)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_labels_come_from_the_options() {
        let extra = r#"{"select_options": [{"id": "abc123", "label": "apple"}, {"id": "x2", "label": "banana"}]}"#;
        assert_eq!(select_label(Some(extra), "abc123"), "apple");
        assert_eq!(select_label(Some(extra), "x2"), "banana");
        assert_eq!(select_label(Some(extra), "nope"), "nope");
        assert_eq!(select_label(None, "abc123"), "abc123");
        // Older exports: options as plain strings, the value an index.
        assert_eq!(
            select_label(Some(r#"{"select_options": ["a", "b"]}"#), "1"),
            "1"
        );
    }
}
