-- The mail fetcher's own state (paperless keeps only processed_mail, written after the fact).
-- One row per message a rule took (account, folder, UIDVALIDITY, UID): written `queued` BEFORE
-- its consume jobs are enqueued, so a run that overlaps or follows a crashed one never queues
-- the message again; `done` once the rule's action ran, `failed` with the reason.
CREATE TABLE mail_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES mail_accounts (id) ON DELETE CASCADE,
    folder       TEXT    NOT NULL,
    uid_validity INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    -- the rule that took it; kept (NULL) when the rule is deleted, so history survives edits
    rule_id      INTEGER REFERENCES mail_rules (id) ON DELETE SET NULL,
    -- 'queued', 'done', 'failed'
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    -- JSON array of the consume job ids of this message
    jobs         TEXT    NOT NULL DEFAULT '[]',
    subject      TEXT    NOT NULL DEFAULT '',
    received     TEXT    NOT NULL DEFAULT '',
    error        TEXT,
    updated      TEXT    NOT NULL,
    UNIQUE (account_id, folder, uid_validity, uid)
);
CREATE INDEX mail_messages_state ON mail_messages (account_id, state);

-- Per rule and folder generation: the highest UID the rule has looked at. A run searches
-- `UID last+1:*` only, so old mail costs nothing.
CREATE TABLE mail_rule_cursors (
    rule_id      INTEGER NOT NULL REFERENCES mail_rules (id) ON DELETE CASCADE,
    folder       TEXT    NOT NULL,
    uid_validity INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL,
    PRIMARY KEY (rule_id, folder, uid_validity)
);
