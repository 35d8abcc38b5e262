//! Document queries. Writes take a connection of the caller's transaction
//! (`let mut tx = db.begin().await?; documents::insert(&mut tx, ..)`), reads take the [`Db`].
//!
//! "Live" documents are the ones not in the trash (`deleted_at IS NULL`), like paperless's
//! default manager; [`list`], [`ids_after`] and [`count`] see only those, [`get`],
//! [`find_by_checksum`] and [`ids_after_including_trash`] see all.

use sqlx::{AnyConnection, Row};

use super::{ChecksumMatch, Db, DbError, Document, Engine, NewDocument, now_rfc3339};

/// Column list of [`Document::from_row`] (a macro so that queries stay `&'static str`).
macro_rules! doc_cols {
    () => {
        "id, owner_id, correspondent_id, document_type_id, storage_path_id, title, content, \
         mime_type, checksum, archive_checksum, page_count, created, modified, added, filename, \
         archive_filename, original_filename, archive_serial_number, root_document_id, \
         version_index, version_label, deleted_at, restored_at, transaction_id, storage_type"
    };
}
pub(crate) use doc_cols;

/// Largest archive serial number (paperless: unsigned 32-bit).
pub const ASN_MAX: i64 = 4_294_967_295;

fn validate(doc: &NewDocument) -> Result<(), DbError> {
    if chrono::NaiveDate::parse_from_str(&doc.created, "%Y-%m-%d").is_err() {
        return Err(DbError::Invalid {
            field: "created",
            value: doc.created.clone(),
            hint: "expected a date YYYY-MM-DD",
        });
    }
    validate_checksum("checksum", &doc.checksum)?;
    if let Some(c) = &doc.archive_checksum {
        validate_checksum("archive_checksum", c)?;
    }
    if let Some(asn) = doc.archive_serial_number
        && !(0..=ASN_MAX).contains(&asn)
    {
        return Err(DbError::Invalid {
            field: "archive_serial_number",
            value: asn.to_string(),
            hint: "must be between 0 and 4294967295",
        });
    }
    if doc.mime_type.is_empty() {
        return Err(DbError::Invalid {
            field: "mime_type",
            value: String::new(),
            hint: "a document needs a MIME type, e.g. application/pdf",
        });
    }
    Ok(())
}

/// SHA-256 (64) or, for old imports, MD5 (32) lower-case hex: the length tells the algorithm.
fn validate_checksum(field: &'static str, c: &str) -> Result<(), DbError> {
    let hex = c
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex || !(c.len() == 64 || c.len() == 32) {
        return Err(DbError::Invalid {
            field,
            value: c.to_string(),
            hint: "expected lower-case hex SHA-256 (64 chars) or MD5 (32 chars)",
        });
    }
    Ok(())
}

/// Inserts a document (validated first) and returns its id.
pub async fn insert(conn: &mut AnyConnection, doc: &NewDocument) -> Result<i64, DbError> {
    validate(doc)?;
    let now = now_rfc3339();
    let row = sqlx::query(
        "INSERT INTO documents (owner_id, correspondent_id, document_type_id, storage_path_id, \
         title, content, mime_type, checksum, archive_checksum, page_count, created, modified, \
         added, filename, archive_filename, original_filename, archive_serial_number, \
         storage_type) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         RETURNING id",
    )
    .bind(doc.owner_id)
    .bind(doc.correspondent_id)
    .bind(doc.document_type_id)
    .bind(doc.storage_path_id)
    .bind(&doc.title)
    .bind(&doc.content)
    .bind(&doc.mime_type)
    .bind(&doc.checksum)
    .bind(&doc.archive_checksum)
    .bind(doc.page_count)
    .bind(&doc.created)
    .bind(&now)
    .bind(doc.added.as_deref().unwrap_or(&now))
    .bind(&doc.filename)
    .bind(&doc.archive_filename)
    .bind(&doc.original_filename)
    .bind(doc.archive_serial_number)
    .bind(doc.storage_type.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

/// Records a document's files (paths relative to the originals / archive folders) and the
/// archive checksum; `modified` becomes now.
pub async fn set_files(
    conn: &mut AnyConnection,
    id: i64,
    filename: Option<&str>,
    archive_filename: Option<&str>,
    archive_checksum: Option<&str>,
) -> Result<(), DbError> {
    if let Some(c) = archive_checksum {
        validate_checksum("archive_checksum", c)?;
    }
    let done = sqlx::query(
        "UPDATE documents SET filename = $1, archive_filename = $2, archive_checksum = $3, \
         modified = $4 WHERE id = $5",
    )
    .bind(filename)
    .bind(archive_filename)
    .bind(archive_checksum)
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

/// Up to `limit` ids (`id > after_id`, ascending) of live documents the archiver looks at:
/// those without an archive version, or every one with `overwrite`.
pub async fn archive_candidates(
    db: &Db,
    after_id: i64,
    limit: i64,
    overwrite: bool,
) -> Result<Vec<i64>, DbError> {
    let sql = if overwrite {
        "SELECT id FROM documents WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2"
    } else {
        "SELECT id FROM documents WHERE id > $1 AND deleted_at IS NULL \
         AND archive_filename IS NULL ORDER BY id LIMIT $2"
    };
    ids_query(db, sql, after_id, limit).await
}

/// Points a document at its new archive version (and, if given, the new content), guarded by
/// the archive name it had when the work began (None: it had none): false if someone changed
/// it meanwhile (nothing written then). `modified` becomes now.
pub async fn set_archive(
    conn: &mut AnyConnection,
    id: i64,
    expected_old: Option<&str>,
    archive_filename: &str,
    archive_checksum: &str,
    content: Option<&str>,
) -> Result<bool, DbError> {
    validate_checksum("archive_checksum", archive_checksum)?;
    let done = sqlx::query(
        "UPDATE documents SET archive_filename = $1, archive_checksum = $2, \
         content = COALESCE($3, content), modified = $4 \
         WHERE id = $5 AND COALESCE(archive_filename, '') = $6",
    )
    .bind(archive_filename)
    .bind(archive_checksum)
    .bind(content)
    .bind(now_rfc3339())
    .bind(id)
    .bind(expected_old.unwrap_or(""))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds tags to a document (tags it already has are skipped).
pub async fn add_tags(conn: &mut AnyConnection, id: i64, tag_ids: &[i64]) -> Result<(), DbError> {
    for tag in tag_ids {
        sqlx::query(
            "INSERT INTO document_tags (document_id, tag_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Removes tags from a document (tags it does not have are ignored).
pub async fn remove_tags(
    conn: &mut AnyConnection,
    id: i64,
    tag_ids: &[i64],
) -> Result<(), DbError> {
    for tag in tag_ids {
        sqlx::query("DELETE FROM document_tags WHERE document_id = $1 AND tag_id = $2")
            .bind(id)
            .bind(tag)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One document with its tag ids (trash included: see `deleted_at`).
pub async fn get(db: &Db, id: i64) -> Result<Option<Document>, DbError> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        doc_cols!(),
        " FROM documents WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let mut doc = Document::from_row(&row)?;
    doc.tags =
        sqlx::query("SELECT tag_id FROM document_tags WHERE document_id = $1 ORDER BY tag_id")
            .bind(id)
            .fetch_all(&db.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>("tag_id"))
            .collect::<Result<_, _>>()?;
    Ok(Some(doc))
}

/// Up to `limit` live documents with `id > after_id`, ascending, with their tag ids. Keyset
/// pagination: pass the last id of a page as `after_id` of the next (0 to start).
pub async fn list(db: &Db, after_id: i64, limit: i64) -> Result<Vec<Document>, DbError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        doc_cols!(),
        " FROM documents WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2"
    ))
    .bind(after_id)
    .bind(limit.max(0))
    .fetch_all(&db.pool)
    .await?;
    let mut docs = rows
        .iter()
        .map(Document::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let (Some(first), Some(last)) = (docs.first().map(|d| d.id), docs.last().map(|d| d.id)) else {
        return Ok(docs);
    };
    // The tags of the whole page in one query over the id range (no IN list to build).
    let tag_rows = sqlx::query(
        "SELECT document_id, tag_id FROM document_tags WHERE document_id >= $1 \
         AND document_id <= $2 ORDER BY document_id, tag_id",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&db.pool)
    .await?;
    let mut i = 0;
    for r in &tag_rows {
        let doc_id: i64 = r.try_get("document_id")?;
        let tag_id: i64 = r.try_get("tag_id")?;
        while i < docs.len() && docs[i].id < doc_id {
            i += 1;
        }
        if i < docs.len() && docs[i].id == doc_id {
            docs[i].tags.push(tag_id);
        }
    }
    Ok(docs)
}

/// Up to `limit` ids of live documents with `id > after_id`, ascending.
pub async fn ids_after(db: &Db, after_id: i64, limit: i64) -> Result<Vec<i64>, DbError> {
    ids_query(
        db,
        "SELECT id FROM documents WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2",
        after_id,
        limit,
    )
    .await
}

/// Like [`ids_after`], trash included (sanity checker, exporter).
pub async fn ids_after_including_trash(
    db: &Db,
    after_id: i64,
    limit: i64,
) -> Result<Vec<i64>, DbError> {
    ids_query(
        db,
        "SELECT id FROM documents WHERE id > $1 ORDER BY id LIMIT $2",
        after_id,
        limit,
    )
    .await
}

async fn ids_query(
    db: &Db,
    sql: &'static str,
    after_id: i64,
    limit: i64,
) -> Result<Vec<i64>, DbError> {
    let rows = sqlx::query(sql)
        .bind(after_id)
        .bind(limit.max(0))
        .fetch_all(&db.pool)
        .await?;
    id_column(&rows)
}

/// The `id` column of these rows.
pub(crate) fn id_column(rows: &[sqlx::any::AnyRow]) -> Result<Vec<i64>, DbError> {
    rows.iter()
        .map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
        .collect()
}

/// The document whose original or archive version has this checksum, trash included (the
/// oldest if several). Consume uses it to refuse duplicates.
pub async fn find_by_checksum(db: &Db, checksum: &str) -> Result<Option<ChecksumMatch>, DbError> {
    find_by_checksum_with(&db.pool, checksum).await
}

/// [`find_by_checksum`] inside the caller's transaction (after [`lock_checksum`]).
pub async fn find_by_checksum_in(
    conn: &mut AnyConnection,
    checksum: &str,
) -> Result<Option<ChecksumMatch>, DbError> {
    find_by_checksum_with(&mut *conn, checksum).await
}

/// Serializes writers of documents with this checksum until the caller's transaction ends, so
/// that a duplicate check followed by an insert is race-free: PostgreSQL takes a
/// transaction-scoped advisory lock keyed by the checksum; SQLite needs nothing (a write
/// transaction, `BEGIN IMMEDIATE`, already excludes every other writer).
pub async fn lock_checksum(
    conn: &mut AnyConnection,
    engine: Engine,
    checksum: &str,
) -> Result<(), DbError> {
    if engine == Engine::Postgres {
        // 60 bits of the hex checksum: a positive BIGINT.
        let key = checksum
            .get(..15)
            .and_then(|h| i64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        // The lock function returns `void`, which sqlx::Any cannot decode: select a constant.
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn find_by_checksum_with<'e, E>(
    ex: E,
    checksum: &str,
) -> Result<Option<ChecksumMatch>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let checksum = checksum.to_ascii_lowercase();
    let Some(row) = sqlx::query(
        "SELECT id, title, deleted_at FROM documents \
         WHERE checksum = $1 OR archive_checksum = $1 ORDER BY id LIMIT 1",
    )
    .bind(&checksum)
    .fetch_optional(ex)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(ChecksumMatch {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        in_trash: row.try_get::<Option<String>, _>("deleted_at")?.is_some(),
    }))
}

/// Number of live documents.
pub async fn count(db: &Db) -> Result<i64, DbError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM documents WHERE deleted_at IS NULL")
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("n")?)
}

/// Moves a document to the trash (`deleted_at` = now); no-op if it is already there.
pub async fn trash(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    let now = now_rfc3339();
    let done = sqlx::query(
        "UPDATE documents SET deleted_at = COALESCE(deleted_at, $1), modified = $1 WHERE id = $2",
    )
    .bind(&now)
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

/// Up to `limit` ids of documents in the trash since before `cutoff` (RFC 3339, the format of
/// `deleted_at`) with `id > after_id`, ascending; versions of another document are left out
/// (they go with their root).
pub async fn trashed_before(
    db: &Db,
    cutoff: &str,
    after_id: i64,
    limit: i64,
) -> Result<Vec<i64>, DbError> {
    sqlx::query(
        "SELECT id FROM documents WHERE id > $1 AND deleted_at IS NOT NULL AND deleted_at < $2 \
         AND root_document_id IS NULL ORDER BY id LIMIT $3",
    )
    .bind(after_id)
    .bind(cutoff)
    .bind(limit.max(0))
    .fetch_all(&db.pool)
    .await
    .map_err(DbError::from)
    .and_then(|rows| id_column(&rows))
}

/// The stored files of a document and of its versions, as (id, original's name, archive
/// version's name).
pub async fn files_with_versions(
    db: &Db,
    id: i64,
) -> Result<Vec<(i64, Option<String>, Option<String>)>, DbError> {
    sqlx::query(
        "SELECT id, filename, archive_filename FROM documents \
         WHERE id = $1 OR root_document_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("id")?,
            r.try_get("filename")?,
            r.try_get("archive_filename")?,
        ))
    })
    .collect()
}

/// Deletes a document for good (its versions, tags, notes and custom field values go with it:
/// `ON DELETE CASCADE`), but only if it has been in the trash since before `cutoff`. False if
/// it is not (restored meanwhile, or gone already).
pub async fn delete_trashed(
    conn: &mut AnyConnection,
    id: i64,
    cutoff: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "DELETE FROM documents WHERE id = $1 AND deleted_at IS NOT NULL AND deleted_at < $2",
    )
    .bind(id)
    .bind(cutoff)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether a row with this id exists (trash included).
pub async fn exists(db: &Db, id: i64) -> Result<bool, DbError> {
    Ok(sqlx::query("SELECT 1 AS one FROM documents WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> NewDocument {
        NewDocument {
            mime_type: "application/pdf".into(),
            checksum: "a".repeat(64),
            created: "2024-02-29".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation() {
        assert!(validate(&doc()).is_ok());
        let md5 = NewDocument {
            checksum: "0123456789abcdef".repeat(2),
            ..doc()
        };
        assert!(validate(&md5).is_ok());
        for bad in [
            NewDocument {
                created: "2023-02-29".into(),
                ..doc()
            },
            NewDocument {
                checksum: "A".repeat(64),
                ..doc()
            },
            NewDocument {
                checksum: "ab".into(),
                ..doc()
            },
            NewDocument {
                archive_serial_number: Some(ASN_MAX + 1),
                ..doc()
            },
            NewDocument {
                archive_serial_number: Some(-1),
                ..doc()
            },
            NewDocument {
                mime_type: String::new(),
                ..doc()
            },
        ] {
            assert!(
                matches!(validate(&bad), Err(DbError::Invalid { .. })),
                "{bad:?}"
            );
        }
        assert!(
            validate(&NewDocument {
                archive_serial_number: Some(ASN_MAX),
                ..doc()
            })
            .is_ok()
        );
    }
}
