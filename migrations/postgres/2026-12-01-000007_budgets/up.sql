-- A user's USD budget per limit period, in nano-dollars (NULL: none).
ALTER TABLE users ADD COLUMN budget_nano_usd BIGINT;

-- A changed budget must reach running servers like the other limits.
DROP TRIGGER users_revision_update ON users;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel,
                budget_nano_usd ON users
FOR EACH STATEMENT EXECUTE FUNCTION chatgate_users_changed();
