-- The `serve` instances sharing this database (see sqlite).
CREATE TABLE instances (
    id           VARCHAR(64) NOT NULL PRIMARY KEY,
    address      VARCHAR(255) NOT NULL,
    version      VARCHAR(64) NOT NULL,
    started_at   DATETIME(6) NOT NULL,
    last_seen_at DATETIME(6) NOT NULL,
    in_flight    BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
