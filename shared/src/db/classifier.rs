//! Queries of the Auto classifier (`train-classifier`): the training documents in keyset pages
//! (`../shared/specs/matching-index-files.md` §3.2) and the ids of the AUTO objects.

use sqlx::Row;

use super::matching::AUTO;
use super::{Db, DbError, retag};

/// One training document: its own content and the ids it carries (all of them; the caller
/// keeps the AUTO ones as labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingDoc {
    pub id: i64,
    pub content: String,
    pub correspondent_id: Option<i64>,
    pub document_type_id: Option<i64>,
    pub storage_path_id: Option<i64>,
    /// Ascending.
    pub tags: Vec<i64>,
    /// RFC 3339, as stored.
    pub modified: String,
}

/// Up to `limit` training documents with `id > after`, ascending: live (not in the trash),
/// not a version row, without any inbox tag.
pub async fn training_page(db: &Db, after: i64, limit: i64) -> Result<Vec<TrainingDoc>, DbError> {
    let rows = sqlx::query(
        "SELECT d.id, d.content, d.correspondent_id, d.document_type_id, d.storage_path_id, \
         d.modified FROM documents d WHERE d.id > $1 AND d.deleted_at IS NULL \
         AND d.root_document_id IS NULL AND NOT EXISTS (SELECT 1 FROM document_tags dt \
         JOIN tags t ON t.id = dt.tag_id WHERE dt.document_id = d.id AND t.is_inbox_tag = $3) \
         ORDER BY d.id LIMIT $2",
    )
    .bind(after)
    .bind(limit.max(0))
    .bind(true)
    .fetch_all(&db.pool)
    .await?;
    let mut docs = rows
        .iter()
        .map(|r| {
            Ok(TrainingDoc {
                id: r.try_get("id")?,
                content: r.try_get("content")?,
                correspondent_id: r.try_get("correspondent_id")?,
                document_type_id: r.try_get("document_type_id")?,
                storage_path_id: r.try_get("storage_path_id")?,
                tags: Vec::new(),
                modified: r.try_get("modified")?,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    if let (Some(first), Some(last)) = (docs.first().map(|d| d.id), docs.last().map(|d| d.id)) {
        let mut i = 0;
        for (doc, tag) in retag::tags_in_range(db, first, last).await? {
            while i < docs.len() && docs[i].id < doc {
                i += 1;
            }
            if i < docs.len() && docs[i].id == doc {
                docs[i].tags.push(tag);
            }
        }
    }
    Ok(docs)
}

/// Ids of the AUTO objects, ascending: correspondents, document types, storage paths, tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoObjects {
    pub correspondents: Vec<i64>,
    pub document_types: Vec<i64>,
    pub storage_paths: Vec<i64>,
    pub tags: Vec<i64>,
}

impl AutoObjects {
    pub fn is_empty(&self) -> bool {
        self.correspondents.is_empty()
            && self.document_types.is_empty()
            && self.storage_paths.is_empty()
            && self.tags.is_empty()
    }
}

pub async fn auto_objects(db: &Db) -> Result<AutoObjects, DbError> {
    let mut out = AutoObjects::default();
    for (sql, list) in [
        (
            "SELECT id FROM correspondents WHERE matching_algorithm = $1 ORDER BY id",
            &mut out.correspondents,
        ),
        (
            "SELECT id FROM document_types WHERE matching_algorithm = $1 ORDER BY id",
            &mut out.document_types,
        ),
        (
            "SELECT id FROM storage_paths WHERE matching_algorithm = $1 ORDER BY id",
            &mut out.storage_paths,
        ),
        (
            "SELECT id FROM tags WHERE matching_algorithm = $1 ORDER BY id",
            &mut out.tags,
        ),
    ] {
        for r in sqlx::query(sql).bind(AUTO).fetch_all(&db.pool).await? {
            list.push(r.try_get("id")?);
        }
    }
    Ok(out)
}
