-- Compact usage records (see migrations/sqlite): names once in
-- usage_names, the time in milliseconds since 1970 (UTC), `req_` + 32 hex
-- request ids as their 16 bytes, no total_tokens.
CREATE TABLE usage_names (
    id   BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO usage_names (name)
SELECT user_name FROM usage_records
UNION SELECT model FROM usage_records WHERE model IS NOT NULL
UNION SELECT upstream FROM usage_records WHERE upstream IS NOT NULL
UNION SELECT method || ' ' || endpoint FROM usage_records;

CREATE TABLE usage_records_compact (
    id                BIGSERIAL PRIMARY KEY,
    at                BIGINT NOT NULL,
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
    request_hex       BYTEA,
    request_id        TEXT
);

INSERT INTO usage_records_compact
SELECT r.id,
       FLOOR(EXTRACT(EPOCH FROM r.at) * 1000)::BIGINT,
       u.id, e.id, m.id, up.id, r.status,
       r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cost_nano_usd,
       r.estimated, r.stream, r.latency_ms,
       CASE WHEN r.request_id ~ '^req_[0-9a-f]{32}$'
            THEN decode(substr(r.request_id, 5), 'hex') END,
       CASE WHEN r.request_id ~ '^req_[0-9a-f]{32}$'
            THEN NULL ELSE r.request_id END
FROM usage_records r
JOIN usage_names u ON u.name = r.user_name
JOIN usage_names e ON e.name = r.method || ' ' || r.endpoint
LEFT JOIN usage_names m ON m.name = r.model
LEFT JOIN usage_names up ON up.name = r.upstream
ORDER BY r.id;

DROP TABLE usage_records;
ALTER TABLE usage_records_compact RENAME TO usage_records;
ALTER SEQUENCE usage_records_compact_id_seq RENAME TO usage_records_id_seq;
SELECT setval('usage_records_id_seq', COALESCE((SELECT MAX(id) FROM usage_records), 0) + 1, false);
ALTER INDEX usage_records_compact_pkey RENAME TO usage_records_pkey;
CREATE INDEX usage_records_at ON usage_records (at);
