-- The same tables as migrations/sqlite, in PostgreSQL's dialect.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL UNIQUE,
    key_hint      TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP,
    last_used_at  TIMESTAMP,
    token_limit   BIGINT,
    request_limit BIGINT,
    limit_period  TEXT NOT NULL DEFAULT 'total',
    models        TEXT,
    rpm           BIGINT,
    note          TEXT
);

CREATE TABLE usage_records (
    id                BIGSERIAL PRIMARY KEY,
    at                TIMESTAMP NOT NULL,
    user_name         TEXT NOT NULL,
    method            TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT,
    upstream          TEXT,
    status            INTEGER NOT NULL,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    estimated         BOOLEAN NOT NULL DEFAULT FALSE,
    stream            BOOLEAN NOT NULL DEFAULT FALSE,
    latency_ms        BIGINT NOT NULL
);
CREATE INDEX usage_records_at ON usage_records (at);
CREATE INDEX usage_records_user_at ON usage_records (user_name, at);

-- Polled by every running server to notice user changes (see sqlite).
CREATE TABLE revisions (
    name     TEXT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);
INSERT INTO revisions (name, revision) VALUES ('users', 1);

CREATE FUNCTION chatgate_users_changed() RETURNS trigger AS $$
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_revision_insert_delete AFTER INSERT OR DELETE ON users
FOR EACH STATEMENT EXECUTE FUNCTION chatgate_users_changed();
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note ON users
FOR EACH STATEMENT EXECUTE FUNCTION chatgate_users_changed();
