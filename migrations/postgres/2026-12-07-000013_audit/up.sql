-- The audit trail (SPEC §9): one row per change to users, teams and keys,
-- written in the change's transaction. No reference to users or teams, so
-- rows outlive what they name; `usage prune` never touches them.
CREATE TABLE audit (
    id      BIGSERIAL PRIMARY KEY,
    at      TIMESTAMP NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    -- The user or team the row is about (a key's user), for `--target`.
    subject TEXT NOT NULL,
    -- field -> {"old", "new"}, as JSON; keys by hint only.
    changes TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at);
CREATE INDEX audit_by_subject ON audit (subject);
