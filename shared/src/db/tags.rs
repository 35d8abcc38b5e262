//! Tag queries.

use sqlx::{AnyConnection, Row};

use super::{Db, DbError, NewTag, Tag};

macro_rules! tag_cols {
    () => {
        "id, owner_id, name, color, is_inbox_tag, match, matching_algorithm, is_insensitive, \
         tn_parent_id, tn_priority"
    };
}

fn validate(tag: &NewTag) -> Result<(), DbError> {
    let c = tag.color.as_bytes();
    if c.len() != 7 || c[0] != b'#' || !c[1..].iter().all(u8::is_ascii_hexdigit) {
        return Err(DbError::Invalid {
            field: "color",
            value: tag.color.clone(),
            hint: "expected #rrggbb",
        });
    }
    super::objects::validate_matching(&tag.name, tag.matching_algorithm)
}

/// Inserts a tag and returns its id.
pub async fn insert(conn: &mut AnyConnection, tag: &NewTag) -> Result<i64, DbError> {
    validate(tag)?;
    let row = sqlx::query(
        "INSERT INTO tags (owner_id, name, color, is_inbox_tag, match, matching_algorithm, \
         is_insensitive, tn_parent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(tag.owner_id)
    .bind(&tag.name)
    .bind(&tag.color)
    .bind(tag.is_inbox_tag)
    .bind(&tag.r#match)
    .bind(tag.matching_algorithm)
    .bind(tag.is_insensitive)
    .bind(tag.tn_parent_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

/// The id of the ownerless tag `name`, created with default settings if missing. Safe against
/// concurrent callers (insert-or-ignore on the unique name, then read).
pub async fn get_or_create_by_name(conn: &mut AnyConnection, name: &str) -> Result<i64, DbError> {
    let new = NewTag {
        name: name.to_string(),
        ..Default::default()
    };
    validate(&new)?;
    sqlx::query(
        "INSERT INTO tags (name, color, is_inbox_tag, match, matching_algorithm, is_insensitive) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) WHERE owner_id IS NULL DO NOTHING",
    )
    .bind(&new.name)
    .bind(&new.color)
    .bind(new.is_inbox_tag)
    .bind(&new.r#match)
    .bind(new.matching_algorithm)
    .bind(new.is_insensitive)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT id FROM tags WHERE name = $1 AND owner_id IS NULL")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("id")?)
}

/// All tags, by id. (Tag counts are small: hundreds, not millions.)
pub async fn list(db: &Db) -> Result<Vec<Tag>, DbError> {
    sqlx::query(concat!("SELECT ", tag_cols!(), " FROM tags ORDER BY id"))
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(Tag::from_row)
        .collect()
}

/// One tag.
pub async fn get(db: &Db, id: i64) -> Result<Option<Tag>, DbError> {
    sqlx::query(concat!("SELECT ", tag_cols!(), " FROM tags WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(Tag::from_row)
        .transpose()
}

/// Ids of the inbox tags (added to every new document), ascending.
pub async fn inbox_tags(db: &Db) -> Result<Vec<i64>, DbError> {
    sqlx::query("SELECT id FROM tags WHERE is_inbox_tag = $1 ORDER BY id")
        .bind(true)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
        .collect()
}
