//! What the full-text index needs of each document: the row, the names of its relations, its
//! notes and custom field values. Read in keyset pages (reindex) or by id (updates).

use std::collections::HashMap;

use sqlx::Row;

use super::files::{FieldData, field_data};
use super::{Db, DbError, Document, documents};

/// One document as the index sees it. Relations are resolved to names.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    /// With its tag ids.
    pub document: Document,
    pub correspondent: Option<String>,
    pub document_type: Option<String>,
    pub storage_path: Option<String>,
    /// Tag names, in the order of the document's tag ids.
    pub tags: Vec<String>,
    /// (note text, author's username).
    pub notes: Vec<(String, Option<String>)>,
    /// Values that are set (not in the trash), by field name.
    pub custom_fields: Vec<FieldData>,
}

/// id → name of a small table.
async fn names(db: &Db, sql: &'static str) -> Result<HashMap<i64, String>, DbError> {
    sqlx::query(sql)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .collect()
}

struct Names {
    correspondents: HashMap<i64, String>,
    types: HashMap<i64, String>,
    paths: HashMap<i64, String>,
    tags: HashMap<i64, String>,
}

async fn all_names(db: &Db) -> Result<Names, DbError> {
    Ok(Names {
        correspondents: names(db, "SELECT id, name FROM correspondents").await?,
        types: names(db, "SELECT id, name FROM document_types").await?,
        paths: names(db, "SELECT id, name FROM storage_paths").await?,
        tags: names(db, "SELECT id, name FROM tags").await?,
    })
}

/// Notes and custom field values of the documents with ids in `first..=last`, joined onto
/// `docs` (ascending ids within that range).
async fn fill(
    db: &Db,
    names: &Names,
    docs: Vec<Document>,
    first: i64,
    last: i64,
) -> Result<Vec<IndexRow>, DbError> {
    let mut notes: HashMap<i64, Vec<(String, Option<String>)>> = HashMap::new();
    for r in sqlx::query(
        "SELECT n.document_id AS document_id, n.note AS note, u.username AS username \
         FROM notes n LEFT JOIN users u ON u.id = n.user_id \
         WHERE n.document_id >= $1 AND n.document_id <= $2 AND n.deleted_at IS NULL \
         ORDER BY n.document_id, n.id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&db.pool)
    .await?
    {
        let id: i64 = r.try_get("document_id")?;
        notes
            .entry(id)
            .or_default()
            .push((r.try_get("note")?, r.try_get("username")?));
    }
    let mut fields: HashMap<i64, Vec<FieldData>> = HashMap::new();
    for r in sqlx::query(
        "SELECT i.document_id AS document_id, f.name AS name, f.data_type AS data_type, \
         f.extra_data AS extra_data, i.value_text, i.value_url, i.value_date, i.value_bool, \
         i.value_int, i.value_float, i.value_monetary, i.value_document_ids, i.value_select, \
         i.value_long_text \
         FROM custom_field_instances i JOIN custom_fields f ON f.id = i.field_id \
         WHERE i.document_id >= $1 AND i.document_id <= $2 AND i.deleted_at IS NULL \
         ORDER BY i.document_id, f.name",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&db.pool)
    .await?
    {
        let id: i64 = r.try_get("document_id")?;
        fields.entry(id).or_default().push(field_data(&r)?);
    }
    Ok(docs
        .into_iter()
        .map(|d| {
            let name =
                |m: &HashMap<i64, String>, id: Option<i64>| id.and_then(|i| m.get(&i).cloned());
            IndexRow {
                correspondent: name(&names.correspondents, d.correspondent_id),
                document_type: name(&names.types, d.document_type_id),
                storage_path: name(&names.paths, d.storage_path_id),
                tags: d
                    .tags
                    .iter()
                    .filter_map(|t| names.tags.get(t).cloned())
                    .collect(),
                notes: notes.remove(&d.id).unwrap_or_default(),
                custom_fields: fields.remove(&d.id).unwrap_or_default(),
                document: d,
            }
        })
        .collect())
}

/// Up to `limit` live documents (not in the trash; version rows included) with `id >
/// after_id`, ascending. Keyset pagination as [`documents::list`].
pub async fn rows_after(db: &Db, after_id: i64, limit: i64) -> Result<Vec<IndexRow>, DbError> {
    let docs = documents::list(db, after_id, limit).await?;
    let (Some(first), Some(last)) = (docs.first().map(|d| d.id), docs.last().map(|d| d.id)) else {
        return Ok(Vec::new());
    };
    let names = all_names(db).await?;
    fill(db, &names, docs, first, last).await
}

/// The live documents among `ids` (ids of deleted or trashed documents are left out: the index
/// drops them).
pub async fn rows(db: &Db, ids: &[i64]) -> Result<Vec<IndexRow>, DbError> {
    let names = all_names(db).await?;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let Some(doc) = documents::get(db, id).await? else {
            continue;
        };
        if doc.in_trash() {
            continue;
        }
        out.extend(fill(db, &names, vec![doc], id, id).await?);
    }
    Ok(out)
}

/// Which documents an edit of one object touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Tag(i64),
    Correspondent(i64),
    DocumentType(i64),
    StoragePath(i64),
}

/// Ids of the documents (in the trash or not) that carry `c`, ascending: what the index must
/// update after that object was renamed, or removed from them.
pub async fn ids_carrying(db: &Db, c: Carrier) -> Result<Vec<i64>, DbError> {
    let (sql, id) = match c {
        Carrier::Tag(id) => (
            "SELECT document_id AS id FROM document_tags WHERE tag_id = $1 ORDER BY document_id",
            id,
        ),
        Carrier::Correspondent(id) => (
            "SELECT id FROM documents WHERE correspondent_id = $1 ORDER BY id",
            id,
        ),
        Carrier::DocumentType(id) => (
            "SELECT id FROM documents WHERE document_type_id = $1 ORDER BY id",
            id,
        ),
        Carrier::StoragePath(id) => (
            "SELECT id FROM documents WHERE storage_path_id = $1 ORDER BY id",
            id,
        ),
    };
    let rows = sqlx::query(sql).bind(id).fetch_all(&db.pool).await?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
        .collect()
}
