DROP TABLE mail_rule_cursors;
DROP TABLE mail_messages;
