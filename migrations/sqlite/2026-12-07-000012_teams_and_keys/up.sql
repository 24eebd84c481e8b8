-- Teams, and several keys per user (SPEC §9).
--
-- A team has a user's rules. A user belongs to at most one (users.team_id).
CREATE TABLE teams (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMP NOT NULL,
    token_limit     BIGINT,
    request_limit   BIGINT,
    budget_nano_usd BIGINT,
    limit_period    TEXT NOT NULL DEFAULT 'total',
    models          TEXT,
    rpm             BIGINT,
    max_parallel    BIGINT,
    note            TEXT
);

-- A user's keys: the SHA-256 of each (hex), its hint and a label unique
-- per user. Each user's key so far becomes their key `default`.
CREATE TABLE keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL,
    label        TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    key_hint     TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    models       TEXT,
    UNIQUE (user_id, label)
);
INSERT INTO keys (user_id, label, key_hash, key_hint, created_at, last_used_at)
SELECT id, 'default', key_hash, key_hint, created_at, last_used_at FROM users;

-- users loses its key (a table rebuild: SQLite drops no UNIQUE column)
-- and gains its team and `touched`, which every change to the user's keys
-- or team bumps, so that the revision triggers tell running servers to
-- reload the user with their keys and team.
DROP TRIGGER users_revision_insert;
DROP TRIGGER users_revision_update;
DROP TRIGGER users_revision_delete;
CREATE TABLE users_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    disabled        BOOLEAN NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP,
    last_used_at    TIMESTAMP,
    token_limit     BIGINT,
    request_limit   BIGINT,
    limit_period    TEXT NOT NULL DEFAULT 'total',
    models          TEXT,
    rpm             BIGINT,
    note            TEXT,
    max_parallel    BIGINT,
    budget_nano_usd BIGINT,
    revision        BIGINT NOT NULL DEFAULT 0,
    team_id         BIGINT,
    touched         BIGINT NOT NULL DEFAULT 0
);
INSERT INTO users_new (id, name, disabled, created_at, expires_at, last_used_at,
                       token_limit, request_limit, limit_period, models, rpm, note,
                       max_parallel, budget_nano_usd, revision)
SELECT id, name, disabled, created_at, expires_at, last_used_at, token_limit,
       request_limit, limit_period, models, rpm, note, max_parallel,
       budget_nano_usd, revision
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_by_revision ON users (revision);
CREATE INDEX users_by_team ON users (team_id);
UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
UPDATE users SET revision = (SELECT revision FROM revisions WHERE name = 'users');

CREATE TRIGGER users_revision_insert AFTER INSERT ON users
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    UPDATE users SET revision = (SELECT revision FROM revisions WHERE name = 'users')
    WHERE id = NEW.id;
END;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, disabled, expires_at, token_limit, request_limit,
                limit_period, models, rpm, note, max_parallel, budget_nano_usd,
                team_id, touched ON users
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    UPDATE users SET revision = (SELECT revision FROM revisions WHERE name = 'users')
    WHERE id = NEW.id;
END;
CREATE TRIGGER users_revision_delete AFTER DELETE ON users
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    INSERT OR REPLACE INTO users_deleted (id, revision)
    VALUES (OLD.id, (SELECT revision FROM revisions WHERE name = 'users'));
END;

-- Each record names the key it came through (its label) and the team its
-- user belonged to then, interned like the other names.
ALTER TABLE usage_records ADD COLUMN key_id BIGINT;
ALTER TABLE usage_records ADD COLUMN team_id BIGINT;

-- The daily totals are per team too ('' for none), so that a team's usage
-- in its period, and a report by team over a year, read a few rows a day;
-- moving a user moves only their future usage.
CREATE TABLE usage_daily_new (
    day                DATE NOT NULL,
    user_name          TEXT NOT NULL,
    model              TEXT NOT NULL,
    upstream           TEXT NOT NULL,
    team               TEXT NOT NULL DEFAULT '',
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    estimated_requests BIGINT NOT NULL,
    cached_tokens      BIGINT NOT NULL DEFAULT 0,
    cost_nano_usd      BIGINT NOT NULL DEFAULT 0,
    priced_requests    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_name, model, upstream, team)
);
INSERT INTO usage_daily_new (day, user_name, model, upstream, requests, errors,
                             prompt_tokens, completion_tokens, estimated_requests,
                             cached_tokens, cost_nano_usd, priced_requests)
SELECT day, user_name, model, upstream, requests, errors, prompt_tokens,
       completion_tokens, estimated_requests, cached_tokens, cost_nano_usd,
       priced_requests
FROM usage_daily;
DROP TABLE usage_daily;
ALTER TABLE usage_daily_new RENAME TO usage_daily;
CREATE INDEX usage_daily_by_team ON usage_daily (team, day);

-- Work that finishes later holds its team's share too.
ALTER TABLE charges ADD COLUMN team_name TEXT NOT NULL DEFAULT '';
