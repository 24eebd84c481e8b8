DROP TRIGGER users_revision_update ON users;
DROP TRIGGER users_revision_insert_delete ON users;
DROP FUNCTION chatgate_users_changed();
DROP TABLE revisions;
DROP TABLE usage_records;
DROP TABLE users;
