CREATE TABLE usage_records_text (
    id                BIGSERIAL PRIMARY KEY,
    at                TIMESTAMP NOT NULL,
    user_name         TEXT NOT NULL,
    method            TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT,
    upstream          TEXT,
    status            INTEGER NOT NULL,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    estimated         BOOLEAN NOT NULL DEFAULT FALSE,
    stream            BOOLEAN NOT NULL DEFAULT FALSE,
    latency_ms        BIGINT NOT NULL,
    request_id        TEXT,
    cached_tokens     BIGINT,
    cost_nano_usd     BIGINT
);
INSERT INTO usage_records_text
SELECT nextval('usage_records_text_id_seq'),
       to_timestamp((r.id / 1000) / 1000.0) AT TIME ZONE 'UTC',
       u.name, split_part(e.name, ' ', 1), substr(e.name, strpos(e.name, ' ') + 1),
       m.name, up.name, r.status, r.prompt_tokens, r.completion_tokens,
       r.prompt_tokens + r.completion_tokens, r.estimated, r.stream, r.latency_ms,
       COALESCE('req_' || encode(r.request_hex, 'hex'), r.request_id),
       r.cached_tokens, r.cost_nano_usd
FROM usage_records r
JOIN usage_names u ON u.id = r.user_id
JOIN usage_names e ON e.id = r.endpoint_id
LEFT JOIN usage_names m ON m.id = r.model_id
LEFT JOIN usage_names up ON up.id = r.upstream_id
ORDER BY r.id;
DROP TABLE usage_records;
ALTER TABLE usage_records_text RENAME TO usage_records;
ALTER SEQUENCE usage_records_text_id_seq RENAME TO usage_records_id_seq;
CREATE INDEX usage_records_at ON usage_records (at);
DROP TABLE usage_names;
