//! Simple queries for the objects documents point at: correspondents, document types, storage
//! paths, users, custom fields and notes. Enough for consume, the bench corpus generator and
//! tests; the full edit surface comes with the jobs that need it.

use super::DbError;

pub(crate) fn validate_matching(name: &str, algorithm: i64) -> Result<(), DbError> {
    if name.trim().is_empty() {
        return Err(DbError::Invalid {
            field: "name",
            value: name.to_string(),
            hint: "a name must not be empty",
        });
    }
    if !(0..=6).contains(&algorithm) {
        return Err(DbError::Invalid {
            field: "matching_algorithm",
            value: algorithm.to_string(),
            hint: "expected 0 (none) .. 6 (auto)",
        });
    }
    Ok(())
}

/// insert / get_or_create_by_name / get / list for a table with the matching fields.
macro_rules! matchable_queries {
    ($(#[$doc:meta])* $module:ident, $table:literal, $model:ident) => {
        $(#[$doc])*
        pub mod $module {
            use sqlx::{AnyConnection, Row};

            use crate::db::{$model, Db, DbError, NewMatchable};

            /// Inserts a row and returns its id.
            pub async fn insert(conn: &mut AnyConnection, new: &NewMatchable) -> Result<i64, DbError> {
                super::validate_matching(&new.name, new.matching_algorithm)?;
                let row = sqlx::query(concat!(
                    "INSERT INTO ", $table, " (owner_id, name, match, matching_algorithm, \
                     is_insensitive) VALUES ($1, $2, $3, $4, $5) RETURNING id"
                ))
                .bind(new.owner_id)
                .bind(&new.name)
                .bind(&new.r#match)
                .bind(new.matching_algorithm)
                .bind(new.is_insensitive)
                .fetch_one(&mut *conn)
                .await?;
                Ok(row.try_get("id")?)
            }

            /// The id of the ownerless row `name`, created with default matching if missing.
            pub async fn get_or_create_by_name(conn: &mut AnyConnection, name: &str) -> Result<i64, DbError> {
                let new = NewMatchable::named(name);
                super::validate_matching(&new.name, new.matching_algorithm)?;
                sqlx::query(concat!(
                    "INSERT INTO ", $table, " (name, match, matching_algorithm, is_insensitive) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (name) WHERE owner_id IS NULL DO NOTHING"
                ))
                .bind(&new.name)
                .bind(&new.r#match)
                .bind(new.matching_algorithm)
                .bind(new.is_insensitive)
                .execute(&mut *conn)
                .await?;
                let row = sqlx::query(concat!(
                    "SELECT id FROM ", $table, " WHERE name = $1 AND owner_id IS NULL"
                ))
                .bind(name)
                .fetch_one(&mut *conn)
                .await?;
                Ok(row.try_get("id")?)
            }

            /// One row.
            pub async fn get(db: &Db, id: i64) -> Result<Option<$model>, DbError> {
                sqlx::query(concat!(
                    "SELECT id, owner_id, name, match, matching_algorithm, is_insensitive FROM ",
                    $table, " WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&db.pool)
                .await?
                .as_ref()
                .map($model::from_row)
                .transpose()
            }

            /// All rows, by id.
            pub async fn list(db: &Db) -> Result<Vec<$model>, DbError> {
                sqlx::query(concat!(
                    "SELECT id, owner_id, name, match, matching_algorithm, is_insensitive FROM ",
                    $table, " ORDER BY id"
                ))
                .fetch_all(&db.pool)
                .await?
                .iter()
                .map($model::from_row)
                .collect()
            }
        }
    };
}

matchable_queries!(
    /// `documents.correspondent`.
    correspondents,
    "correspondents",
    Correspondent
);
matchable_queries!(
    /// `documents.documenttype`.
    document_types,
    "document_types",
    DocumentType
);

/// `documents.storagepath`.
pub mod storage_paths {
    use sqlx::{AnyConnection, Row};

    use crate::db::{Db, DbError, NewMatchable, StoragePath};

    /// Inserts a storage path with its path template and returns its id.
    pub async fn insert(
        conn: &mut AnyConnection,
        new: &NewMatchable,
        path: &str,
    ) -> Result<i64, DbError> {
        super::validate_matching(&new.name, new.matching_algorithm)?;
        if path.trim().is_empty() {
            return Err(DbError::Invalid {
                field: "path",
                value: path.to_string(),
                hint: "a storage path needs a path template, e.g. {{ created_year }}/{{ title }}",
            });
        }
        let row = sqlx::query(
            "INSERT INTO storage_paths (owner_id, name, path, match, matching_algorithm, \
             is_insensitive) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.owner_id)
        .bind(&new.name)
        .bind(path)
        .bind(&new.r#match)
        .bind(new.matching_algorithm)
        .bind(new.is_insensitive)
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// One storage path.
    pub async fn get(db: &Db, id: i64) -> Result<Option<StoragePath>, DbError> {
        sqlx::query(
            "SELECT id, owner_id, name, path, match, matching_algorithm, is_insensitive \
             FROM storage_paths WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(StoragePath::from_row)
        .transpose()
    }

    /// All storage paths, by id.
    pub async fn list(db: &Db) -> Result<Vec<StoragePath>, DbError> {
        sqlx::query(
            "SELECT id, owner_id, name, path, match, matching_algorithm, is_insensitive \
             FROM storage_paths ORDER BY id",
        )
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(StoragePath::from_row)
        .collect()
    }
}

/// `auth.user`.
pub mod users {
    use sqlx::{AnyConnection, Row};

    use crate::db::{DbError, NewUser, now_rfc3339};

    /// Inserts a user and returns the id.
    pub async fn insert(conn: &mut AnyConnection, new: &NewUser) -> Result<i64, DbError> {
        if new.username.trim().is_empty() {
            return Err(DbError::Invalid {
                field: "username",
                value: new.username.clone(),
                hint: "a user needs a name",
            });
        }
        let row = sqlx::query(
            "INSERT INTO users (username, password, first_name, last_name, email, is_superuser, \
             is_staff, is_active, date_joined) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING id",
        )
        .bind(&new.username)
        .bind(&new.password)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(&new.email)
        .bind(new.is_superuser)
        .bind(new.is_staff)
        .bind(true)
        .bind(now_rfc3339())
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get("id")?)
    }
}

/// `documents.customfield` and `documents.customfieldinstance`.
pub mod custom_fields {
    use sqlx::{AnyConnection, Row};

    use crate::db::{CUSTOM_FIELD_TYPES, DbError, now_rfc3339};

    /// Inserts a custom field; `extra_data` is JSON text (select options, default currency).
    pub async fn insert(
        conn: &mut AnyConnection,
        name: &str,
        data_type: &str,
        extra_data: Option<&str>,
    ) -> Result<i64, DbError> {
        if !CUSTOM_FIELD_TYPES.contains(&data_type) {
            return Err(DbError::Invalid {
                field: "data_type",
                value: data_type.to_string(),
                hint: "expected string, url, date, boolean, integer, float, monetary, \
                       documentlink, select or longtext",
            });
        }
        let row = sqlx::query(
            "INSERT INTO custom_fields (created, name, data_type, extra_data) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(now_rfc3339())
        .bind(name)
        .bind(data_type)
        .bind(extra_data)
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Sets a text-like value (`value_text`, `value_url`, `value_date`, `value_monetary`,
    /// `value_select`, `value_long_text`, `value_document_ids`) of a field on a document.
    pub async fn set_text_value(
        conn: &mut AnyConnection,
        document_id: i64,
        field_id: i64,
        column: TextColumn,
        value: &str,
    ) -> Result<i64, DbError> {
        let sql = match column {
            TextColumn::Text => INSERT_TEXT,
            TextColumn::Url => INSERT_URL,
            TextColumn::Date => INSERT_DATE,
            TextColumn::Monetary => INSERT_MONETARY,
            TextColumn::Select => INSERT_SELECT,
            TextColumn::LongText => INSERT_LONG_TEXT,
            TextColumn::DocumentIds => INSERT_DOCUMENT_IDS,
        };
        let row = sqlx::query(sql)
            .bind(now_rfc3339())
            .bind(document_id)
            .bind(field_id)
            .bind(value)
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// The text-typed value columns of `custom_field_instances`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TextColumn {
        Text,
        Url,
        Date,
        Monetary,
        Select,
        LongText,
        DocumentIds,
    }

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
    const INSERT_TEXT: &str = upsert!("value_text");
    const INSERT_URL: &str = upsert!("value_url");
    const INSERT_DATE: &str = upsert!("value_date");
    const INSERT_MONETARY: &str = upsert!("value_monetary");
    const INSERT_SELECT: &str = upsert!("value_select");
    const INSERT_LONG_TEXT: &str = upsert!("value_long_text");
    const INSERT_DOCUMENT_IDS: &str = upsert!("value_document_ids");
}

/// `documents.note`.
pub mod notes {
    use sqlx::{AnyConnection, Row};

    use crate::db::{DbError, now_rfc3339};

    /// Adds a note to a document and returns its id.
    pub async fn insert(
        conn: &mut AnyConnection,
        document_id: i64,
        user_id: Option<i64>,
        note: &str,
    ) -> Result<i64, DbError> {
        let row = sqlx::query(
            "INSERT INTO notes (note, created, document_id, user_id) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(note)
        .bind(now_rfc3339())
        .bind(document_id)
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get("id")?)
    }
}
