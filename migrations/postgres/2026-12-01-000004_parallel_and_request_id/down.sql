DROP TRIGGER users_revision_update ON users;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note ON users
FOR EACH STATEMENT EXECUTE FUNCTION chatgate_users_changed();
ALTER TABLE usage_records DROP COLUMN request_id;
ALTER TABLE users DROP COLUMN max_parallel;
