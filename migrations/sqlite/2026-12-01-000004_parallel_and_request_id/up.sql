-- A user's parallel limit, and the request id of each usage record (the
-- upstream's x-request-id, else the gateway's own).
ALTER TABLE users ADD COLUMN max_parallel BIGINT;
ALTER TABLE usage_records ADD COLUMN request_id TEXT;

-- A changed parallel limit must reach running servers like the others.
DROP TRIGGER users_revision_update;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
