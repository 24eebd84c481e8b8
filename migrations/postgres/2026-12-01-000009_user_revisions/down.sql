DROP TRIGGER users_revision_insert ON users;
DROP TRIGGER users_revision_update ON users;
DROP TRIGGER users_revision_delete ON users;
DROP FUNCTION chatgate_user_changed();
DROP FUNCTION chatgate_user_deleted();
CREATE TRIGGER users_revision_insert_delete AFTER INSERT OR DELETE ON users
FOR EACH STATEMENT EXECUTE FUNCTION chatgate_users_changed();
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel,
                budget_nano_usd ON users
FOR EACH STATEMENT EXECUTE FUNCTION chatgate_users_changed();
DROP TABLE users_deleted;
ALTER TABLE users DROP COLUMN revision;
