-- Teams, and several keys per user (see sqlite). Team names are bounded
-- like user names (64 characters), key labels too.
CREATE TABLE teams (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name            VARCHAR(64) NOT NULL,
    created_at      DATETIME(6) NOT NULL,
    token_limit     BIGINT,
    request_limit   BIGINT,
    budget_nano_usd BIGINT,
    limit_period    VARCHAR(16) NOT NULL DEFAULT 'total',
    models          TEXT,
    rpm             BIGINT,
    max_parallel    BIGINT,
    note            TEXT,
    UNIQUE KEY teams_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `keys` (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    label        VARCHAR(64) NOT NULL,
    key_hash     VARCHAR(64) NOT NULL,
    key_hint     VARCHAR(64) NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    expires_at   DATETIME(6),
    last_used_at DATETIME(6),
    models       TEXT,
    UNIQUE KEY keys_hash (key_hash),
    UNIQUE KEY keys_user_label (user_id, label)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO `keys` (user_id, label, key_hash, key_hint, created_at, last_used_at)
SELECT id, 'default', key_hash, key_hint, created_at, last_used_at FROM users;

DROP TRIGGER users_revision_update;
ALTER TABLE users DROP INDEX users_key_hash, DROP COLUMN key_hash, DROP COLUMN key_hint,
    ADD COLUMN team_id BIGINT, ADD COLUMN touched BIGINT NOT NULL DEFAULT 0,
    ADD KEY users_by_team (team_id);

-- Only a change of what the key table holds (not `last_used_at`, which
-- the usage writer sets with every batch).
CREATE TRIGGER users_revision_update BEFORE UPDATE ON users FOR EACH ROW
BEGIN
    IF NOT (NEW.name <=> OLD.name AND NEW.disabled <=> OLD.disabled
            AND NEW.expires_at <=> OLD.expires_at AND NEW.token_limit <=> OLD.token_limit
            AND NEW.request_limit <=> OLD.request_limit
            AND NEW.limit_period <=> OLD.limit_period AND NEW.models <=> OLD.models
            AND NEW.rpm <=> OLD.rpm AND NEW.note <=> OLD.note
            AND NEW.max_parallel <=> OLD.max_parallel
            AND NEW.budget_nano_usd <=> OLD.budget_nano_usd
            AND NEW.team_id <=> OLD.team_id AND NEW.touched <=> OLD.touched) THEN
        UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
        SET NEW.revision = (SELECT revision FROM revisions WHERE name = 'users');
    END IF;
END;
UPDATE users SET touched = touched + 1;

ALTER TABLE usage_records ADD COLUMN key_id BIGINT, ADD COLUMN team_id BIGINT;

ALTER TABLE usage_daily ADD COLUMN team VARCHAR(64) NOT NULL DEFAULT '' AFTER upstream,
    DROP PRIMARY KEY, ADD PRIMARY KEY (day, user_name, model, upstream, team),
    ADD KEY usage_daily_by_team (team, day);

ALTER TABLE charges ADD COLUMN team_name VARCHAR(64) NOT NULL DEFAULT '';
