-- Teams and extra keys are lost; each user keeps their `default` key (or
-- another one where they have none by that name).
ALTER TABLE charges DROP COLUMN team_name;
DROP INDEX usage_daily_by_team;
CREATE TABLE usage_daily_old (
    day                DATE NOT NULL,
    user_name          TEXT NOT NULL,
    model              TEXT NOT NULL,
    upstream           TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    estimated_requests BIGINT NOT NULL,
    cached_tokens      BIGINT NOT NULL DEFAULT 0,
    cost_nano_usd      BIGINT NOT NULL DEFAULT 0,
    priced_requests    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_name, model, upstream)
);
INSERT INTO usage_daily_old
SELECT day, user_name, model, upstream, SUM(requests), SUM(errors),
       SUM(prompt_tokens), SUM(completion_tokens), SUM(estimated_requests),
       SUM(cached_tokens), SUM(cost_nano_usd), SUM(priced_requests)
FROM usage_daily GROUP BY day, user_name, model, upstream;
DROP TABLE usage_daily;
ALTER TABLE usage_daily_old RENAME TO usage_daily;
ALTER TABLE usage_records DROP COLUMN team_id;
ALTER TABLE usage_records DROP COLUMN key_id;
DROP TRIGGER users_revision_insert;
DROP TRIGGER users_revision_update;
DROP TRIGGER users_revision_delete;
CREATE TABLE users_old (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    key_hash        TEXT NOT NULL UNIQUE,
    key_hint        TEXT NOT NULL,
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
    revision        BIGINT NOT NULL DEFAULT 0
);
INSERT INTO users_old
SELECT u.id, u.name, k.key_hash, k.key_hint, u.disabled, u.created_at, u.expires_at,
       u.last_used_at, u.token_limit, u.request_limit, u.limit_period, u.models,
       u.rpm, u.note, u.max_parallel, u.budget_nano_usd, u.revision
FROM users u JOIN keys k ON k.id = (
    SELECT id FROM keys WHERE user_id = u.id ORDER BY label <> 'default', id LIMIT 1);
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
CREATE INDEX users_by_revision ON users (revision);
CREATE TRIGGER users_revision_insert AFTER INSERT ON users
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    UPDATE users SET revision = (SELECT revision FROM revisions WHERE name = 'users')
    WHERE id = NEW.id;
END;
CREATE TRIGGER users_revision_update
AFTER UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                request_limit, limit_period, models, rpm, note, max_parallel,
                budget_nano_usd ON users
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
DROP TABLE keys;
DROP TABLE teams;
