//! Queries of the matching step and the retagger: the documents to retag (keyset pages, with
//! the effective content), superusers (they see every object), and single-column updates.

use sqlx::{AnyConnection, Row};

use super::{Db, DbError, now_rfc3339};

/// One document as the retagger reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetagDoc {
    pub id: i64,
    pub title: String,
    /// `YYYY-MM-DD`.
    pub created: String,
    pub owner_id: Option<i64>,
    pub correspondent_id: Option<i64>,
    pub document_type_id: Option<i64>,
    pub storage_path_id: Option<i64>,
    /// paperless v3 "effective content": for a root document with versions, the newest
    /// version's content (even if empty), else its own.
    pub content: String,
    /// Ascending.
    pub tags: Vec<i64>,
}

/// Which documents the retagger looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetagFilter {
    /// Only documents having at least one inbox tag.
    pub inbox_only: bool,
    /// Inclusive id bounds.
    pub lo: i64,
    pub hi: i64,
}

impl Default for RetagFilter {
    fn default() -> Self {
        RetagFilter {
            inbox_only: false,
            lo: i64::MIN,
            hi: i64::MAX,
        }
    }
}

/// Up to `limit` ids of live documents with `id > after` passing `filter`, ascending.
pub async fn ids(
    db: &Db,
    filter: RetagFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<i64>, DbError> {
    let sql = if filter.inbox_only {
        "SELECT d.id FROM documents d WHERE d.id > $1 AND d.id >= $2 AND d.id <= $3 \
         AND d.deleted_at IS NULL AND EXISTS (SELECT 1 FROM document_tags dt \
         JOIN tags t ON t.id = dt.tag_id WHERE dt.document_id = d.id AND t.is_inbox_tag = $5) \
         ORDER BY d.id LIMIT $4"
    } else {
        "SELECT d.id FROM documents d WHERE d.id > $1 AND d.id >= $2 AND d.id <= $3 \
         AND d.deleted_at IS NULL ORDER BY d.id LIMIT $4"
    };
    let mut q = sqlx::query(sql)
        .bind(after)
        .bind(filter.lo)
        .bind(filter.hi)
        .bind(limit.max(0));
    if filter.inbox_only {
        q = q.bind(true);
    }
    q.fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
        .collect()
}

/// The live documents with `first <= id <= last`, ascending, with effective content and tags.
pub async fn docs_in_range(db: &Db, first: i64, last: i64) -> Result<Vec<RetagDoc>, DbError> {
    let rows = sqlx::query(
        "SELECT d.id, d.title, d.created, d.owner_id, d.correspondent_id, d.document_type_id, d.storage_path_id, \
         COALESCE((SELECT v.content FROM documents v WHERE v.root_document_id = d.id \
         ORDER BY v.id DESC LIMIT 1), d.content) AS content \
         FROM documents d WHERE d.id >= $1 AND d.id <= $2 AND d.deleted_at IS NULL ORDER BY d.id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&db.pool)
    .await?;
    let mut docs = rows
        .iter()
        .map(|r| {
            Ok(RetagDoc {
                id: r.try_get("id")?,
                title: r.try_get("title")?,
                created: r.try_get("created")?,
                owner_id: r.try_get("owner_id")?,
                correspondent_id: r.try_get("correspondent_id")?,
                document_type_id: r.try_get("document_type_id")?,
                storage_path_id: r.try_get("storage_path_id")?,
                content: r.try_get("content")?,
                tags: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    let mut i = 0;
    for (doc, tag) in tags_in_range(db, first, last).await? {
        while i < docs.len() && docs[i].id < doc {
            i += 1;
        }
        if i < docs.len() && docs[i].id == doc {
            docs[i].tags.push(tag);
        }
    }
    Ok(docs)
}

/// `(document_id, tag_id)` of the documents with `first <= id <= last`, ordered.
pub async fn tags_in_range(db: &Db, first: i64, last: i64) -> Result<Vec<(i64, i64)>, DbError> {
    sqlx::query(
        "SELECT document_id, tag_id FROM document_tags WHERE document_id >= $1 \
         AND document_id <= $2 ORDER BY document_id, tag_id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("document_id")?, r.try_get("tag_id")?)))
    .collect()
}

/// Ids of the superusers (they see every object).
pub async fn superusers(db: &Db) -> Result<Vec<i64>, DbError> {
    sqlx::query("SELECT id FROM users WHERE is_superuser = $1 ORDER BY id")
        .bind(true)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
        .collect()
}

/// A single-valued matchable field of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Correspondent,
    DocumentType,
    StoragePath,
}

/// Sets (or clears) one field; `modified` becomes now.
pub async fn set_field(
    conn: &mut AnyConnection,
    id: i64,
    field: Field,
    value: Option<i64>,
) -> Result<(), DbError> {
    let sql = match field {
        Field::Correspondent => {
            "UPDATE documents SET correspondent_id = $1, modified = $2 WHERE id = $3"
        }
        Field::DocumentType => {
            "UPDATE documents SET document_type_id = $1, modified = $2 WHERE id = $3"
        }
        Field::StoragePath => {
            "UPDATE documents SET storage_path_id = $1, modified = $2 WHERE id = $3"
        }
    };
    let done = sqlx::query(sql)
        .bind(value)
        .bind(now_rfc3339())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound {
            what: format!("document {id}"),
        });
    }
    Ok(())
}
