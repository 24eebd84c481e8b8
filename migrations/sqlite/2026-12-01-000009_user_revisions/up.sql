-- Each user row carries the revision of its last change, and each deleted
-- user leaves its id and the revision of its deletion: a running server
-- reads only what changed since the revision it has, not every user.
ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX users_by_revision ON users (revision);
CREATE TABLE users_deleted (
    id       BIGINT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);
CREATE INDEX users_deleted_by_revision ON users_deleted (revision);

-- (Setting users.revision does not fire the update trigger: the column
-- is not in its list.)
DROP TRIGGER users_revision_insert;
CREATE TRIGGER users_revision_insert AFTER INSERT ON users
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    UPDATE users SET revision = (SELECT revision FROM revisions WHERE name = 'users')
    WHERE id = NEW.id;
END;
DROP TRIGGER users_revision_update;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel,
                budget_nano_usd ON users
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    UPDATE users SET revision = (SELECT revision FROM revisions WHERE name = 'users')
    WHERE id = NEW.id;
END;
DROP TRIGGER users_revision_delete;
CREATE TRIGGER users_revision_delete AFTER DELETE ON users
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    INSERT OR REPLACE INTO users_deleted (id, revision)
    VALUES (OLD.id, (SELECT revision FROM revisions WHERE name = 'users'));
END;
