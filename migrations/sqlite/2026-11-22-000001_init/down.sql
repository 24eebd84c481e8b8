DROP TRIGGER users_revision_update;
DROP TRIGGER users_revision_delete;
DROP TRIGGER users_revision_insert;
DROP TABLE revisions;
DROP TABLE usage_records;
DROP TABLE users;
