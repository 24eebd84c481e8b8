DROP TRIGGER users_revision_insert;
CREATE TRIGGER users_revision_insert AFTER INSERT ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
DROP TRIGGER users_revision_delete;
CREATE TRIGGER users_revision_delete AFTER DELETE ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
DROP TRIGGER users_revision_update;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel,
                budget_nano_usd ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
DROP TABLE users_deleted;
DROP INDEX users_by_revision;
ALTER TABLE users DROP COLUMN revision;
