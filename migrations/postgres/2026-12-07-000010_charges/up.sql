-- What an object brings into a prompt that names it (a stored response:
-- its prompt and reply tokens; a file: its size's estimate), so that a
-- request building on it reserves what it will cost.
ALTER TABLE objects ADD COLUMN tokens BIGINT;

-- Work that finishes after its reply (a background response, a stored
-- response whose stream was cut): its usage record waits here, as JSON,
-- with what it holds of its user's limits, until the gateway learns the
-- real usage from the upstream and writes the record, exactly once (the
-- row is deleted in the transaction that writes it).
CREATE TABLE charges (
    id                TEXT NOT NULL PRIMARY KEY,
    user_name         TEXT NOT NULL,
    upstream          TEXT NOT NULL,
    record            TEXT NOT NULL,
    reserved_tokens   BIGINT NOT NULL,
    reserved_nano_usd BIGINT NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    next_poll_at      TIMESTAMP NOT NULL,
    polls             BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX charges_due ON charges (next_poll_at);
