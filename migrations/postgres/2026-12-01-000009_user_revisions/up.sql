-- Each user row carries the revision of its last change, and each deleted
-- user leaves its id and the revision of its deletion (see sqlite). Row
-- triggers: the revisions row stays locked until the change commits, so
-- revisions are taken in commit order and a reader that has revision N
-- has seen every change up to N.
ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX users_by_revision ON users (revision);
CREATE TABLE users_deleted (
    id       BIGINT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);
CREATE INDEX users_deleted_by_revision ON users_deleted (revision);

DROP TRIGGER users_revision_insert_delete ON users;
DROP TRIGGER users_revision_update ON users;

CREATE FUNCTION chatgate_user_changed() RETURNS trigger AS $$
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users'
    RETURNING revision INTO NEW.revision;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION chatgate_user_deleted() RETURNS trigger AS $$
DECLARE r BIGINT;
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users'
    RETURNING revision INTO r;
    INSERT INTO users_deleted (id, revision) VALUES (OLD.id, r)
    ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision;
    RETURN OLD;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_revision_insert BEFORE INSERT ON users
FOR EACH ROW EXECUTE FUNCTION chatgate_user_changed();
CREATE TRIGGER users_revision_update
BEFORE UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                 request_limit, limit_period, models, rpm, note, max_parallel,
                 budget_nano_usd ON users
FOR EACH ROW EXECUTE FUNCTION chatgate_user_changed();
CREATE TRIGGER users_revision_delete AFTER DELETE ON users
FOR EACH ROW EXECUTE FUNCTION chatgate_user_deleted();
