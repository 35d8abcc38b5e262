DROP INDEX processed_mail_rule_folder_uid;
DROP INDEX documents_deleted_at;
DROP INDEX documents_archive_checksum;
DROP INDEX documents_checksum;
