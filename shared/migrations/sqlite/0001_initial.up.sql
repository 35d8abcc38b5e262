-- paperboy 0.1.0: the archive's data model, modelled on paperless-ngx 3.0.5 (field names and
-- integer codes as in its export, so export/import map 1:1). Foreign-key columns carry Django's
-- `_id` suffix. Timestamps are RFC 3339 UTC text, dates 'YYYY-MM-DD' text, booleans 0/1.

CREATE TABLE users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    username     TEXT    NOT NULL UNIQUE,
    password     TEXT    NOT NULL DEFAULT '',
    last_login   TEXT,
    is_superuser INTEGER NOT NULL DEFAULT 0 CHECK (is_superuser IN (0, 1)),
    first_name   TEXT    NOT NULL DEFAULT '',
    last_name    TEXT    NOT NULL DEFAULT '',
    email        TEXT    NOT NULL DEFAULT '',
    is_staff     INTEGER NOT NULL DEFAULT 0 CHECK (is_staff IN (0, 1)),
    is_active    INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    date_joined  TEXT    NOT NULL
);

CREATE TABLE groups (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT    NOT NULL UNIQUE
);

CREATE TABLE user_groups (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_groups_group ON user_groups (group_id);

CREATE TABLE correspondents (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id           INTEGER REFERENCES users (id) ON DELETE SET NULL,
    name               TEXT    NOT NULL,
    match              TEXT    NOT NULL DEFAULT '',
    matching_algorithm INTEGER NOT NULL DEFAULT 1 CHECK (matching_algorithm BETWEEN 0 AND 6),
    is_insensitive     INTEGER NOT NULL DEFAULT 1 CHECK (is_insensitive IN (0, 1))
);
CREATE UNIQUE INDEX correspondents_name_owner ON correspondents (name, owner_id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX correspondents_name_unowned ON correspondents (name) WHERE owner_id IS NULL;

CREATE TABLE document_types (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id           INTEGER REFERENCES users (id) ON DELETE SET NULL,
    name               TEXT    NOT NULL,
    match              TEXT    NOT NULL DEFAULT '',
    matching_algorithm INTEGER NOT NULL DEFAULT 1 CHECK (matching_algorithm BETWEEN 0 AND 6),
    is_insensitive     INTEGER NOT NULL DEFAULT 1 CHECK (is_insensitive IN (0, 1))
);
CREATE UNIQUE INDEX document_types_name_owner ON document_types (name, owner_id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX document_types_name_unowned ON document_types (name) WHERE owner_id IS NULL;

CREATE TABLE storage_paths (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id           INTEGER REFERENCES users (id) ON DELETE SET NULL,
    name               TEXT    NOT NULL,
    path               TEXT    NOT NULL,
    match              TEXT    NOT NULL DEFAULT '',
    matching_algorithm INTEGER NOT NULL DEFAULT 1 CHECK (matching_algorithm BETWEEN 0 AND 6),
    is_insensitive     INTEGER NOT NULL DEFAULT 1 CHECK (is_insensitive IN (0, 1))
);
CREATE UNIQUE INDEX storage_paths_name_owner ON storage_paths (name, owner_id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX storage_paths_name_unowned ON storage_paths (name) WHERE owner_id IS NULL;

CREATE TABLE tags (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id           INTEGER REFERENCES users (id) ON DELETE SET NULL,
    name               TEXT    NOT NULL,
    color              TEXT    NOT NULL DEFAULT '#a6cee3',
    is_inbox_tag       INTEGER NOT NULL DEFAULT 0 CHECK (is_inbox_tag IN (0, 1)),
    match              TEXT    NOT NULL DEFAULT '',
    matching_algorithm INTEGER NOT NULL DEFAULT 1 CHECK (matching_algorithm BETWEEN 0 AND 6),
    is_insensitive     INTEGER NOT NULL DEFAULT 1 CHECK (is_insensitive IN (0, 1)),
    -- django-treenode: only the parent and the priority are authoritative.
    tn_parent_id       INTEGER REFERENCES tags (id) ON DELETE SET NULL,
    tn_priority        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tags_name_owner ON tags (name, owner_id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX tags_name_unowned ON tags (name) WHERE owner_id IS NULL;
CREATE INDEX tags_parent ON tags (tn_parent_id);

CREATE TABLE documents (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id              INTEGER REFERENCES users (id) ON DELETE SET NULL,
    correspondent_id      INTEGER REFERENCES correspondents (id) ON DELETE SET NULL,
    document_type_id      INTEGER REFERENCES document_types (id) ON DELETE SET NULL,
    storage_path_id       INTEGER REFERENCES storage_paths (id) ON DELETE SET NULL,
    title                 TEXT    NOT NULL DEFAULT '',
    content               TEXT    NOT NULL DEFAULT '',
    mime_type             TEXT    NOT NULL,
    -- SHA-256 hex (64 chars); MD5 hex (32 chars) for documents imported from paperless <= 2.x.
    checksum              TEXT    NOT NULL,
    archive_checksum      TEXT,
    page_count            INTEGER CHECK (page_count >= 0),
    created               TEXT    NOT NULL,
    modified              TEXT    NOT NULL,
    added                 TEXT    NOT NULL,
    filename              TEXT    UNIQUE,
    archive_filename      TEXT    UNIQUE,
    original_filename     TEXT,
    archive_serial_number INTEGER UNIQUE CHECK (archive_serial_number BETWEEN 0 AND 4294967295),
    root_document_id      INTEGER REFERENCES documents (id) ON DELETE CASCADE,
    version_index         INTEGER CHECK (version_index >= 0),
    version_label         TEXT,
    deleted_at            TEXT,
    restored_at           TEXT,
    transaction_id        TEXT,
    storage_type          TEXT    NOT NULL DEFAULT 'unencrypted' CHECK (storage_type IN ('unencrypted', 'gpg'))
);
CREATE INDEX documents_correspondent ON documents (correspondent_id);
CREATE INDEX documents_document_type ON documents (document_type_id);
CREATE INDEX documents_storage_path ON documents (storage_path_id);
CREATE INDEX documents_owner ON documents (owner_id);
CREATE UNIQUE INDEX documents_root_version ON documents (root_document_id, version_index);

CREATE TABLE document_tags (
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    tag_id      INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (document_id, tag_id)
);
CREATE INDEX document_tags_tag ON document_tags (tag_id);

CREATE TABLE custom_fields (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created    TEXT    NOT NULL,
    name       TEXT    NOT NULL UNIQUE,
    data_type  TEXT    NOT NULL CHECK (data_type IN ('string', 'url', 'date', 'boolean', 'integer',
                   'float', 'monetary', 'documentlink', 'select', 'longtext')),
    -- JSON text: {"select_options": [{"id": ..., "label": ...}], "default_currency": ...}
    extra_data TEXT
);

CREATE TABLE custom_field_instances (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    created            TEXT    NOT NULL,
    document_id        INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    field_id           INTEGER NOT NULL REFERENCES custom_fields (id) ON DELETE CASCADE,
    value_text         TEXT,
    value_url          TEXT,
    value_date         TEXT,
    value_bool         INTEGER CHECK (value_bool IN (0, 1)),
    value_int          INTEGER,
    value_float        REAL,
    value_monetary     TEXT,
    -- JSON list of document ids
    value_document_ids TEXT,
    value_select       TEXT,
    value_long_text    TEXT,
    deleted_at         TEXT,
    restored_at        TEXT,
    transaction_id     TEXT,
    UNIQUE (document_id, field_id)
);
CREATE INDEX custom_field_instances_field ON custom_field_instances (field_id);

CREATE TABLE notes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    note           TEXT    NOT NULL DEFAULT '',
    created        TEXT    NOT NULL,
    document_id    INTEGER REFERENCES documents (id) ON DELETE CASCADE,
    user_id        INTEGER REFERENCES users (id) ON DELETE SET NULL,
    deleted_at     TEXT,
    restored_at    TEXT,
    transaction_id TEXT
);
CREATE INDEX notes_document ON notes (document_id);

CREATE TABLE mail_accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id      INTEGER REFERENCES users (id) ON DELETE SET NULL,
    name          TEXT    NOT NULL UNIQUE,
    imap_server   TEXT    NOT NULL,
    imap_port     INTEGER CHECK (imap_port BETWEEN 0 AND 65535),
    -- 1 none, 2 SSL, 3 STARTTLS
    imap_security INTEGER NOT NULL DEFAULT 2 CHECK (imap_security IN (1, 2, 3)),
    username      TEXT    NOT NULL,
    password      TEXT    NOT NULL,
    is_token      INTEGER NOT NULL DEFAULT 0 CHECK (is_token IN (0, 1)),
    character_set TEXT    NOT NULL DEFAULT 'UTF-8',
    -- 1 IMAP, 2 Gmail OAuth, 3 Outlook OAuth
    account_type  INTEGER NOT NULL DEFAULT 1 CHECK (account_type IN (1, 2, 3)),
    refresh_token TEXT,
    expiration    TEXT
);

CREATE TABLE mail_rules (
    id                                 INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id                           INTEGER REFERENCES users (id) ON DELETE SET NULL,
    name                               TEXT    NOT NULL,
    account_id                         INTEGER NOT NULL REFERENCES mail_accounts (id) ON DELETE CASCADE,
    "order"                            INTEGER NOT NULL DEFAULT 0,
    enabled                            INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    folder                             TEXT    NOT NULL DEFAULT 'INBOX',
    filter_from                        TEXT,
    filter_to                          TEXT,
    filter_subject                     TEXT,
    filter_body                        TEXT,
    filter_attachment_filename_include TEXT,
    filter_attachment_filename_exclude TEXT,
    -- days, 0 = no limit (paperless stores a smallint)
    maximum_age                        INTEGER NOT NULL DEFAULT 30 CHECK (maximum_age BETWEEN 0 AND 32767),
    -- 1 attachments only, 2 everything incl. inline
    attachment_type                    INTEGER NOT NULL DEFAULT 1 CHECK (attachment_type IN (1, 2)),
    -- 1 attachments only, 2 .eml only, 3 .eml + attachments
    consumption_scope                  INTEGER NOT NULL DEFAULT 1 CHECK (consumption_scope IN (1, 2, 3)),
    -- 0 system default, 1 text then HTML, 2 HTML then text, 3 HTML only, 4 text only
    pdf_layout                         INTEGER NOT NULL DEFAULT 0 CHECK (pdf_layout BETWEEN 0 AND 4),
    -- 1 delete, 2 move, 3 mark read, 4 flag, 5 tag
    action                             INTEGER NOT NULL DEFAULT 3 CHECK (action BETWEEN 1 AND 5),
    action_parameter                   TEXT,
    -- 1 subject, 2 attachment filename, 3 none
    assign_title_from                  INTEGER NOT NULL DEFAULT 1 CHECK (assign_title_from IN (1, 2, 3)),
    assign_document_type_id            INTEGER REFERENCES document_types (id) ON DELETE SET NULL,
    -- 1 nothing, 2 mail address, 3 display name, 4 the fixed correspondent
    assign_correspondent_from          INTEGER NOT NULL DEFAULT 1 CHECK (assign_correspondent_from BETWEEN 1 AND 4),
    assign_correspondent_id            INTEGER REFERENCES correspondents (id) ON DELETE SET NULL,
    assign_owner_from_rule             INTEGER NOT NULL DEFAULT 1 CHECK (assign_owner_from_rule IN (0, 1)),
    stop_processing                    INTEGER NOT NULL DEFAULT 0 CHECK (stop_processing IN (0, 1))
);
CREATE UNIQUE INDEX mail_rules_name_owner ON mail_rules (name, owner_id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX mail_rules_name_unowned ON mail_rules (name) WHERE owner_id IS NULL;
CREATE INDEX mail_rules_account ON mail_rules (account_id);

CREATE TABLE mail_rule_tags (
    mail_rule_id INTEGER NOT NULL REFERENCES mail_rules (id) ON DELETE CASCADE,
    tag_id       INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (mail_rule_id, tag_id)
);

-- No unique constraint, as upstream: duplicates are possible.
CREATE TABLE processed_mail (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    rule_id      INTEGER NOT NULL REFERENCES mail_rules (id) ON DELETE CASCADE,
    folder       TEXT    NOT NULL,
    uid          TEXT    NOT NULL,
    uid_validity TEXT,
    subject      TEXT    NOT NULL DEFAULT '',
    received     TEXT    NOT NULL,
    processed    TEXT    NOT NULL,
    -- 'SUCCESS', 'FAILED', 'PROCESSED_WO_CONSUMPTION'
    status       TEXT    NOT NULL,
    error        TEXT
);
