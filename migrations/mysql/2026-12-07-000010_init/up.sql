-- The tables as migrations/sqlite and migrations/postgres leave them at
-- the release that brought MySQL (and MariaDB), in their dialect:
-- - every text is utf8mb4 and compared byte for byte (utf8mb4_bin), so
--   `alice` and `Alice` are two users, as on the other backends;
-- - times are DATETIME(6), written and read in UTC with no conversion,
--   whatever the server's time_zone;
-- - keys are VARCHARs within InnoDB's index length (names are bounded:
--   users 64 characters, models 256, upstreams 64).
CREATE TABLE users (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name            VARCHAR(64) NOT NULL,
    key_hash        VARCHAR(64) NOT NULL,
    key_hint        VARCHAR(64) NOT NULL,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      DATETIME(6) NOT NULL,
    expires_at      DATETIME(6),
    last_used_at    DATETIME(6),
    token_limit     BIGINT,
    request_limit   BIGINT,
    limit_period    VARCHAR(16) NOT NULL DEFAULT 'total',
    models          TEXT,
    rpm             BIGINT,
    note            TEXT,
    max_parallel    BIGINT,
    budget_nano_usd BIGINT,
    -- The `revisions` value of the row's last change (triggers set it).
    revision        BIGINT NOT NULL DEFAULT 0,
    UNIQUE KEY users_name (name),
    UNIQUE KEY users_key_hash (key_hash),
    KEY users_by_revision (revision)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE users_deleted (
    id       BIGINT NOT NULL PRIMARY KEY,
    revision BIGINT NOT NULL,
    KEY users_deleted_by_revision (revision)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Polled by every running server to notice user changes: the row stays
-- locked until a change commits, so revisions are taken in commit order.
CREATE TABLE revisions (
    name     VARCHAR(64) NOT NULL PRIMARY KEY,
    revision BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO revisions (name, revision) VALUES ('users', 1);

CREATE TRIGGER users_revision_insert BEFORE INSERT ON users FOR EACH ROW
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    SET NEW.revision = (SELECT revision FROM revisions WHERE name = 'users');
END;

-- Only a change of what the key table holds (not `last_used_at`, which
-- the usage writer sets with every batch).
CREATE TRIGGER users_revision_update BEFORE UPDATE ON users FOR EACH ROW
BEGIN
    IF NOT (NEW.name <=> OLD.name AND NEW.key_hash <=> OLD.key_hash
            AND NEW.key_hint <=> OLD.key_hint AND NEW.disabled <=> OLD.disabled
            AND NEW.expires_at <=> OLD.expires_at AND NEW.token_limit <=> OLD.token_limit
            AND NEW.request_limit <=> OLD.request_limit
            AND NEW.limit_period <=> OLD.limit_period AND NEW.models <=> OLD.models
            AND NEW.rpm <=> OLD.rpm AND NEW.note <=> OLD.note
            AND NEW.max_parallel <=> OLD.max_parallel
            AND NEW.budget_nano_usd <=> OLD.budget_nano_usd) THEN
        UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
        SET NEW.revision = (SELECT revision FROM revisions WHERE name = 'users');
    END IF;
END;

CREATE TRIGGER users_revision_delete AFTER DELETE ON users FOR EACH ROW
BEGIN
    UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
    INSERT INTO users_deleted (id, revision)
        VALUES (OLD.id, (SELECT revision FROM revisions WHERE name = 'users'))
        ON DUPLICATE KEY UPDATE revision = VALUES(revision);
END;

-- Names of users, models, upstreams and endpoints, kept once each.
CREATE TABLE usage_names (
    id   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(768) NOT NULL,
    UNIQUE KEY usage_names_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per request, keyed by its time (milliseconds × 1000 plus its
-- place within the millisecond): see migrations/sqlite 000008.
CREATE TABLE usage_records (
    id                BIGINT NOT NULL PRIMARY KEY,
    user_id           BIGINT NOT NULL,
    endpoint_id       BIGINT NOT NULL,
    model_id          BIGINT,
    upstream_id       BIGINT,
    status            INTEGER NOT NULL,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    cached_tokens     BIGINT,
    cost_nano_usd     BIGINT,
    estimated         BOOLEAN NOT NULL,
    stream            BOOLEAN NOT NULL,
    latency_ms        BIGINT NOT NULL,
    request_hex       VARBINARY(16),
    request_id        TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE usage_daily (
    day                DATE NOT NULL,
    user_name          VARCHAR(64) NOT NULL,
    model              VARCHAR(256) NOT NULL,
    upstream           VARCHAR(64) NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    estimated_requests BIGINT NOT NULL,
    cached_tokens      BIGINT NOT NULL DEFAULT 0,
    cost_nano_usd      BIGINT NOT NULL DEFAULT 0,
    priced_requests    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_name, model, upstream)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Who created each object the upstream account keeps (see sqlite 000005),
-- and what it brings into a prompt that names it.
CREATE TABLE objects (
    id         VARCHAR(255) NOT NULL PRIMARY KEY,
    kind       VARCHAR(32) NOT NULL,
    user_name  VARCHAR(64) NOT NULL,
    upstream   VARCHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    tokens     BIGINT,
    KEY objects_user_kind (user_name, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Usage records of work that finishes after its reply (see sqlite 000010).
CREATE TABLE charges (
    id                VARCHAR(255) NOT NULL PRIMARY KEY,
    user_name         VARCHAR(64) NOT NULL,
    upstream          VARCHAR(64) NOT NULL,
    record            TEXT NOT NULL,
    reserved_tokens   BIGINT NOT NULL,
    reserved_nano_usd BIGINT NOT NULL,
    created_at        DATETIME(6) NOT NULL,
    next_poll_at      DATETIME(6) NOT NULL,
    polls             BIGINT NOT NULL DEFAULT 0,
    KEY charges_due (next_poll_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
