-- Compact usage records (see migrations/sqlite): names once in
-- usage_names, the key is the time (milliseconds since 1970, UTC, times
-- 1000, plus a place within the millisecond), `req_` + 32 hex request ids
-- as their 16 bytes, no total_tokens.
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
    id                BIGINT PRIMARY KEY,
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
SELECT r.ms * 1000 + ROW_NUMBER() OVER (PARTITION BY r.ms ORDER BY r.id) - 1,
       u.id, e.id, m.id, up.id, r.status,
       r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cost_nano_usd,
       r.estimated, r.stream, r.latency_ms,
       CASE WHEN r.request_id ~ '^req_[0-9a-f]{32}$'
            THEN decode(substr(r.request_id, 5), 'hex') END,
       CASE WHEN r.request_id ~ '^req_[0-9a-f]{32}$'
            THEN NULL ELSE r.request_id END
FROM (
    SELECT *, FLOOR(EXTRACT(EPOCH FROM at) * 1000)::BIGINT AS ms FROM usage_records
) r
JOIN usage_names u ON u.name = r.user_name
JOIN usage_names e ON e.name = r.method || ' ' || r.endpoint
LEFT JOIN usage_names m ON m.name = r.model
LEFT JOIN usage_names up ON up.name = r.upstream
ORDER BY 1;

DROP TABLE usage_records;
ALTER TABLE usage_records_compact RENAME TO usage_records;
ALTER INDEX usage_records_compact_pkey RENAME TO usage_records_pkey;
