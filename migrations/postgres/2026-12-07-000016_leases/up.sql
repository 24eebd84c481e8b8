-- The shares of a user's or team's rpm and parallel limits that each
-- `serve` instance holds (SPEC §10, src/leases.rs). The row whose instance
-- is '' is the subject's lock: an instance takes it (by updating it)
-- before it counts the others' shares and changes its own.
CREATE TABLE leases (
    subject    VARCHAR(80) NOT NULL,
    kind       VARCHAR(16) NOT NULL,
    instance   VARCHAR(64) NOT NULL,
    amount     BIGINT NOT NULL,
    in_use     BIGINT NOT NULL,
    wanted     BIGINT NOT NULL,
    hold_until TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, kind, instance)
);
