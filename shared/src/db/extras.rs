//! Inserts beyond `objects.rs` that the bench corpus generator needs: the non-text custom field
//! values (`value_bool`, `value_int`, `value_float`). Same upsert rule as
//! [`super::custom_fields::set_text_value`]: one value per (document, field).

use sqlx::{AnyConnection, Row};

use super::{DbError, now_rfc3339};

macro_rules! upsert {
    ($col:literal) => {
        concat!(
            "INSERT INTO custom_field_instances (created, document_id, field_id, ",
            $col,
            ") VALUES ($1, $2, $3, $4) ON CONFLICT (document_id, field_id) DO UPDATE SET ",
            $col,
            " = excluded.",
            $col,
            " RETURNING id"
        )
    };
}

/// Upserts one typed value column of a (document, field) instance; returns the instance id.
async fn set_value<T>(
    conn: &mut AnyConnection,
    sql: &'static str,
    document_id: i64,
    field_id: i64,
    value: T,
) -> Result<i64, DbError>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
{
    let row = sqlx::query(sql)
        .bind(now_rfc3339())
        .bind(document_id)
        .bind(field_id)
        .bind(value)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("id")?)
}

/// Sets a `boolean` field's value on a document; returns the instance id.
pub async fn set_bool_value(
    conn: &mut AnyConnection,
    document_id: i64,
    field_id: i64,
    value: bool,
) -> Result<i64, DbError> {
    set_value(conn, upsert!("value_bool"), document_id, field_id, value).await
}

/// Sets an `integer` field's value on a document; returns the instance id.
pub async fn set_int_value(
    conn: &mut AnyConnection,
    document_id: i64,
    field_id: i64,
    value: i64,
) -> Result<i64, DbError> {
    set_value(conn, upsert!("value_int"), document_id, field_id, value).await
}

/// Sets a `float` field's value on a document; returns the instance id.
pub async fn set_float_value(
    conn: &mut AnyConnection,
    document_id: i64,
    field_id: i64,
    value: f64,
) -> Result<i64, DbError> {
    set_value(conn, upsert!("value_float"), document_id, field_id, value).await
}

/// Number of custom field values per data type (`data_type`, count), by type name. For checks
/// of generated archives (bench corpus test, sanity reports).
pub async fn custom_field_value_counts(db: &super::Db) -> Result<Vec<(String, i64)>, DbError> {
    sqlx::query(
        "SELECT f.data_type AS t, COUNT(i.id) AS n FROM custom_fields f \
         LEFT JOIN custom_field_instances i ON i.field_id = f.id \
         GROUP BY f.data_type ORDER BY f.data_type",
    )
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("t")?, r.try_get("n")?)))
    .collect()
}

/// Number of notes (all documents, trash included).
pub async fn note_count(db: &super::Db) -> Result<i64, DbError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM notes")
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("n")?)
}
