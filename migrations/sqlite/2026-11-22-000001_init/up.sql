-- Users and their keys. Only the SHA-256 of a key is stored (hex), plus a hint.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL UNIQUE,
    key_hint      TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT 0,
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

-- One row per proxied request. user_name is kept literally so reports survive
-- the removal of a user.
CREATE TABLE usage_records (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
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
    estimated         BOOLEAN NOT NULL DEFAULT 0,
    stream            BOOLEAN NOT NULL DEFAULT 0,
    latency_ms        BIGINT NOT NULL
);
CREATE INDEX usage_records_at ON usage_records (at);
CREATE INDEX usage_records_user_at ON usage_records (user_name, at);

-- A revision number per table that running servers poll (cheaply) to notice
-- changes made by the CLI or another instance. Triggers bump it, so every
-- writer, even a raw sqlite3 session, is seen. last_used_at is left out on
-- purpose: the server writes it with every usage batch.
CREATE TABLE revisions (
    name     TEXT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);
INSERT INTO revisions (name, revision) VALUES ('users', 1);

CREATE TRIGGER users_revision_insert AFTER INSERT ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
CREATE TRIGGER users_revision_delete AFTER DELETE ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note ON users
BEGIN UPDATE revisions SET revision = revision + 1 WHERE name = 'users'; END;
