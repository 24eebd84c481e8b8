DROP TRIGGER users_revision_update ON users;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel ON users
FOR EACH STATEMENT EXECUTE FUNCTION chatgate_users_changed();
ALTER TABLE users DROP COLUMN budget_nano_usd;
