DROP TRIGGER users_revision_update;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
ALTER TABLE usage_records DROP COLUMN request_id;
ALTER TABLE users DROP COLUMN max_parallel;
