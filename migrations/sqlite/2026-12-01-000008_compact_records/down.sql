CREATE TABLE usage_records_text (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
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
    estimated         BOOLEAN NOT NULL DEFAULT 0,
    stream            BOOLEAN NOT NULL DEFAULT 0,
    latency_ms        BIGINT NOT NULL,
    request_id        TEXT,
    cached_tokens     BIGINT,
    cost_nano_usd     BIGINT
);
INSERT INTO usage_records_text
SELECT NULL,
       strftime('%Y-%m-%d %H:%M:%f', (r.id / 1000) / 1000.0, 'unixepoch'),
       u.name,
       substr(e.name, 1, instr(e.name, ' ') - 1),
       substr(e.name, instr(e.name, ' ') + 1),
       m.name, up.name, r.status, r.prompt_tokens, r.completion_tokens,
       r.prompt_tokens + r.completion_tokens, r.estimated, r.stream, r.latency_ms,
       COALESCE('req_' || lower(hex(r.request_hex)), r.request_id),
       r.cached_tokens, r.cost_nano_usd
FROM usage_records r
JOIN usage_names u ON u.id = r.user_id
JOIN usage_names e ON e.id = r.endpoint_id
LEFT JOIN usage_names m ON m.id = r.model_id
LEFT JOIN usage_names up ON up.id = r.upstream_id
ORDER BY r.id;
DROP TABLE usage_records;
ALTER TABLE usage_records_text RENAME TO usage_records;
CREATE INDEX usage_records_at ON usage_records (at);
DROP TABLE usage_names;
