-- The `serve` instances sharing this database (SPEC §10): each keeps its
-- row fresh every second and removes it when it stops cleanly.
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    in_flight    BIGINT NOT NULL
);
