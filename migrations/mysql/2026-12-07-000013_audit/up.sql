-- The audit trail (see sqlite).
CREATE TABLE audit (
    id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at      DATETIME(6) NOT NULL,
    actor   VARCHAR(255) NOT NULL,
    action  VARCHAR(32) NOT NULL,
    target  VARCHAR(160) NOT NULL,
    subject VARCHAR(64) NOT NULL,
    changes MEDIUMTEXT NOT NULL,
    KEY audit_by_time (at),
    KEY audit_by_subject (subject)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
