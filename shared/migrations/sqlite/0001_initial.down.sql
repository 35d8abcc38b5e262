-- Drops the whole data model of 0001 (children before parents).
DROP TABLE processed_mail;
DROP TABLE mail_rule_tags;
DROP TABLE mail_rules;
DROP TABLE mail_accounts;
DROP TABLE notes;
DROP TABLE custom_field_instances;
DROP TABLE custom_fields;
DROP TABLE document_tags;
DROP TABLE documents;
DROP TABLE tags;
DROP TABLE storage_paths;
DROP TABLE document_types;
DROP TABLE correspondents;
DROP TABLE user_groups;
DROP TABLE groups;
DROP TABLE users;
