//! Rows of the archive, field names as in a paperless-ngx 3.0.5 export (foreign keys with
//! Django's `_id` suffix). Timestamps are RFC 3339 UTC strings, `created` a `YYYY-MM-DD` string.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbError, get_bool};

/// How a document's files are stored: plain, or GnuPG-encrypted (paperless ≤ 2.20 only; such
/// documents come from old imports and wait for `decrypt_documents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    #[default]
    Unencrypted,
    Gpg,
}

impl StorageType {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::Unencrypted => "unencrypted",
            StorageType::Gpg => "gpg",
        }
    }

    pub fn parse(s: &str) -> Result<StorageType, DbError> {
        match s {
            "unencrypted" => Ok(StorageType::Unencrypted),
            "gpg" => Ok(StorageType::Gpg),
            _ => Err(DbError::Invalid {
                field: "storage_type",
                value: s.to_string(),
                hint: "expected \"unencrypted\" or \"gpg\"",
            }),
        }
    }
}

/// Matching algorithm codes (paperless `MatchingModel`), stored as integers.
pub mod matching {
    pub const NONE: i64 = 0;
    pub const ANY: i64 = 1;
    pub const ALL: i64 = 2;
    pub const LITERAL: i64 = 3;
    pub const REGEX: i64 = 4;
    pub const FUZZY: i64 = 5;
    pub const AUTO: i64 = 6;
}

/// Custom field data types (`documents.customfield.data_type`).
pub const CUSTOM_FIELD_TYPES: &[&str] = &[
    "string",
    "url",
    "date",
    "boolean",
    "integer",
    "float",
    "monetary",
    "documentlink",
    "select",
    "longtext",
];

/// A document row plus its tag ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub correspondent_id: Option<i64>,
    pub document_type_id: Option<i64>,
    pub storage_path_id: Option<i64>,
    pub title: String,
    pub content: String,
    pub mime_type: String,
    /// SHA-256 hex (64 chars), or MD5 hex (32 chars) for paperless ≤ 2.x imports.
    pub checksum: String,
    pub archive_checksum: Option<String>,
    pub page_count: Option<i64>,
    /// `YYYY-MM-DD`.
    pub created: String,
    pub modified: String,
    pub added: String,
    /// Relative to the originals folder.
    pub filename: Option<String>,
    /// Relative to the archive folder; None ⇔ no archive version.
    pub archive_filename: Option<String>,
    pub original_filename: Option<String>,
    pub archive_serial_number: Option<i64>,
    pub root_document_id: Option<i64>,
    pub version_index: Option<i64>,
    pub version_label: Option<String>,
    /// Set while the document is in the trash.
    pub deleted_at: Option<String>,
    pub restored_at: Option<String>,
    pub transaction_id: Option<String>,
    pub storage_type: StorageType,
    /// Ascending.
    pub tags: Vec<i64>,
}

impl Document {
    pub fn in_trash(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Reads the columns of [`super::documents`]' `DOC_COLS`; `tags` stays empty.
    pub(crate) fn from_row(r: &AnyRow) -> Result<Document, DbError> {
        Ok(Document {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            correspondent_id: r.try_get("correspondent_id")?,
            document_type_id: r.try_get("document_type_id")?,
            storage_path_id: r.try_get("storage_path_id")?,
            title: r.try_get("title")?,
            content: r.try_get("content")?,
            mime_type: r.try_get("mime_type")?,
            checksum: r.try_get("checksum")?,
            archive_checksum: r.try_get("archive_checksum")?,
            page_count: r.try_get("page_count")?,
            created: r.try_get("created")?,
            modified: r.try_get("modified")?,
            added: r.try_get("added")?,
            filename: r.try_get("filename")?,
            archive_filename: r.try_get("archive_filename")?,
            original_filename: r.try_get("original_filename")?,
            archive_serial_number: r.try_get("archive_serial_number")?,
            root_document_id: r.try_get("root_document_id")?,
            version_index: r.try_get("version_index")?,
            version_label: r.try_get("version_label")?,
            deleted_at: r.try_get("deleted_at")?,
            restored_at: r.try_get("restored_at")?,
            transaction_id: r.try_get("transaction_id")?,
            storage_type: StorageType::parse(&r.try_get::<String, _>("storage_type")?)?,
            tags: Vec::new(),
        })
    }
}

/// What [`super::documents::insert`] needs. `Default` gives an empty title and content, no
/// files, `unencrypted`, and `added`/`modified` = now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewDocument {
    pub title: String,
    pub content: String,
    pub mime_type: String,
    pub checksum: String,
    pub archive_checksum: Option<String>,
    pub page_count: Option<i64>,
    /// `YYYY-MM-DD` (validated).
    pub created: String,
    /// RFC 3339; None = now.
    pub added: Option<String>,
    pub filename: Option<String>,
    pub archive_filename: Option<String>,
    pub original_filename: Option<String>,
    /// 0..=4294967295 (validated).
    pub archive_serial_number: Option<i64>,
    pub owner_id: Option<i64>,
    pub correspondent_id: Option<i64>,
    pub document_type_id: Option<i64>,
    pub storage_path_id: Option<i64>,
    pub storage_type: StorageType,
}

/// A document found by checksum (duplicate detection on consume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecksumMatch {
    pub id: i64,
    pub title: String,
    pub in_trash: bool,
}

/// `documents.tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub is_inbox_tag: bool,
    pub r#match: String,
    pub matching_algorithm: i64,
    pub is_insensitive: bool,
    /// The parent tag (django-treenode `tn_parent`).
    pub tn_parent_id: Option<i64>,
    pub tn_priority: i64,
}

impl Tag {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Tag, DbError> {
        Ok(Tag {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            name: r.try_get("name")?,
            color: r.try_get("color")?,
            is_inbox_tag: get_bool(r, "is_inbox_tag")?,
            r#match: r.try_get("match")?,
            matching_algorithm: r.try_get("matching_algorithm")?,
            is_insensitive: get_bool(r, "is_insensitive")?,
            tn_parent_id: r.try_get("tn_parent_id")?,
            tn_priority: r.try_get("tn_priority")?,
        })
    }
}

/// What [`super::tags::insert`] needs. `Default`: color `#a6cee3`, algorithm 1 (any word),
/// case-insensitive, no owner, no parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTag {
    pub name: String,
    pub owner_id: Option<i64>,
    pub color: String,
    pub is_inbox_tag: bool,
    pub r#match: String,
    pub matching_algorithm: i64,
    pub is_insensitive: bool,
    pub tn_parent_id: Option<i64>,
}

impl Default for NewTag {
    fn default() -> Self {
        NewTag {
            name: String::new(),
            owner_id: None,
            color: "#a6cee3".to_string(),
            is_inbox_tag: false,
            r#match: String::new(),
            matching_algorithm: matching::ANY,
            is_insensitive: true,
            tn_parent_id: None,
        }
    }
}

/// The matching fields shared by correspondents, document types and storage paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMatchable {
    pub name: String,
    pub owner_id: Option<i64>,
    pub r#match: String,
    pub matching_algorithm: i64,
    pub is_insensitive: bool,
}

impl Default for NewMatchable {
    fn default() -> Self {
        NewMatchable {
            name: String::new(),
            owner_id: None,
            r#match: String::new(),
            matching_algorithm: matching::ANY,
            is_insensitive: true,
        }
    }
}

impl NewMatchable {
    pub fn named(name: impl Into<String>) -> Self {
        NewMatchable {
            name: name.into(),
            ..Default::default()
        }
    }
}

macro_rules! matchable {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        pub struct $ty {
            pub id: i64,
            pub owner_id: Option<i64>,
            pub name: String,
            pub r#match: String,
            pub matching_algorithm: i64,
            pub is_insensitive: bool,
        }

        impl $ty {
            pub(crate) fn from_row(r: &AnyRow) -> Result<$ty, DbError> {
                Ok($ty {
                    id: r.try_get("id")?,
                    owner_id: r.try_get("owner_id")?,
                    name: r.try_get("name")?,
                    r#match: r.try_get("match")?,
                    matching_algorithm: r.try_get("matching_algorithm")?,
                    is_insensitive: get_bool(r, "is_insensitive")?,
                })
            }
        }
    };
}

matchable!(
    /// `documents.correspondent`.
    Correspondent
);
matchable!(
    /// `documents.documenttype`.
    DocumentType
);

/// `documents.storagepath`: matching fields plus the path template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoragePath {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub name: String,
    /// Path template (Jinja since paperless 2.13).
    pub path: String,
    pub r#match: String,
    pub matching_algorithm: i64,
    pub is_insensitive: bool,
}

impl StoragePath {
    pub(crate) fn from_row(r: &AnyRow) -> Result<StoragePath, DbError> {
        Ok(StoragePath {
            id: r.try_get("id")?,
            owner_id: r.try_get("owner_id")?,
            name: r.try_get("name")?,
            path: r.try_get("path")?,
            r#match: r.try_get("match")?,
            matching_algorithm: r.try_get("matching_algorithm")?,
            is_insensitive: get_bool(r, "is_insensitive")?,
        })
    }
}

/// `auth.user` (the fields paperboy writes; the rest keep their defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    /// Django password hash string (`pbkdf2_sha256$...`), empty for none.
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_superuser: bool,
    pub is_staff: bool,
}
