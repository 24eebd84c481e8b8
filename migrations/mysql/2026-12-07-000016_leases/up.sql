-- The shares of a user's or team's limits each instance holds (see sqlite).
CREATE TABLE leases (
    subject    VARCHAR(80) NOT NULL,
    kind       VARCHAR(16) NOT NULL,
    instance   VARCHAR(64) NOT NULL,
    amount     BIGINT NOT NULL,
    in_use     BIGINT NOT NULL,
    wanted     BIGINT NOT NULL,
    hold_until DATETIME(6) NOT NULL,
    PRIMARY KEY (subject, kind, instance)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
