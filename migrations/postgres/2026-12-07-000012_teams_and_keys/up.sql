-- Teams, and several keys per user (see sqlite).
CREATE TABLE teams (
    id              BIGSERIAL PRIMARY KEY,
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

CREATE TABLE keys (
    id           BIGSERIAL PRIMARY KEY,
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

DROP TRIGGER users_revision_update ON users;
ALTER TABLE users DROP COLUMN key_hash, DROP COLUMN key_hint,
    ADD COLUMN team_id BIGINT, ADD COLUMN touched BIGINT NOT NULL DEFAULT 0;
CREATE INDEX users_by_team ON users (team_id);
CREATE TRIGGER users_revision_update
BEFORE UPDATE OF name, disabled, expires_at, token_limit, request_limit,
                 limit_period, models, rpm, note, max_parallel, budget_nano_usd,
                 team_id, touched ON users
FOR EACH ROW EXECUTE FUNCTION chatgate_user_changed();
UPDATE users SET touched = touched + 1;

ALTER TABLE usage_records ADD COLUMN key_id BIGINT, ADD COLUMN team_id BIGINT;

ALTER TABLE usage_daily ADD COLUMN team TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey;
ALTER TABLE usage_daily ADD PRIMARY KEY (day, user_name, model, upstream, team);
CREATE INDEX usage_daily_by_team ON usage_daily (team, day);

ALTER TABLE charges ADD COLUMN team_name TEXT NOT NULL DEFAULT '';
