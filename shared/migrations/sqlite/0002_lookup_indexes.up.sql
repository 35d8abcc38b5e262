-- paperboy 0.1.0: indexes for the hot lookups: duplicate detection on consume (checksum OR
-- archive_checksum, trash included), the trash listing, and the mail fetcher's "already
-- processed?" check (rule, folder, uid).
CREATE INDEX documents_checksum ON documents (checksum);
CREATE INDEX documents_archive_checksum ON documents (archive_checksum);
CREATE INDEX documents_deleted_at ON documents (deleted_at);
CREATE INDEX processed_mail_rule_folder_uid ON processed_mail (rule_id, folder, uid);
