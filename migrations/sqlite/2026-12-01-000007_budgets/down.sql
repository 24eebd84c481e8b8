DROP TRIGGER users_revision_update;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
ALTER TABLE users DROP COLUMN budget_nano_usd;
