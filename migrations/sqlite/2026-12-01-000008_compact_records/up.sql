-- Compact usage records: a record is integers only. Names (users, models,
-- upstreams, "METHOD /endpoint") are kept once in usage_names and
-- referred to by id. The key is the time: milliseconds since 1970 (UTC)
-- times 1000, plus the record's place among those of its millisecond, so
-- records are stored in time order and found by time without an index of
-- their own (a report's range and `usage prune` read a range of keys). The
-- gateway's and OpenAI's request ids (`req_` and 32 hex digits) are their
-- 16 bytes in request_hex, any other id is text in request_id;
-- total_tokens, the sum of the two, is no longer stored. Names are never
-- deleted, so a user's records keep their name after the user is removed.
CREATE TABLE usage_names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO usage_names (name)
SELECT user_name FROM usage_records
UNION SELECT model FROM usage_records WHERE model IS NOT NULL
UNION SELECT upstream FROM usage_records WHERE upstream IS NOT NULL
UNION SELECT method || ' ' || endpoint FROM usage_records;

CREATE TABLE usage_records_compact (
    id                INTEGER PRIMARY KEY,
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
    request_hex       BLOB,
    request_id        TEXT
);

INSERT INTO usage_records_compact
SELECT r.ms * 1000 + ROW_NUMBER() OVER (PARTITION BY r.ms ORDER BY r.id) - 1,
       u.id, e.id, m.id, up.id, r.status,
       r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cost_nano_usd,
       r.estimated, r.stream, r.latency_ms,
       -- (the pattern is `req_` and 32 times [0-9a-f])
       CASE WHEN r.request_id GLOB 'req_' || replace(hex(zeroblob(32)), '00', '[0-9a-f]')
            THEN unhex(substr(r.request_id, 5)) END,
       CASE WHEN r.request_id GLOB 'req_' || replace(hex(zeroblob(32)), '00', '[0-9a-f]')
            THEN NULL ELSE r.request_id END
FROM (
    -- whole seconds, then the fraction's first three digits (truncated,
    -- as the writer does; the text has none when it is 0)
    SELECT *, CAST(strftime('%s', substr(at, 1, 19)) AS INTEGER) * 1000
              + CAST(substr(substr(at, 21) || '000', 1, 3) AS INTEGER) AS ms
    FROM usage_records
) r
JOIN usage_names u ON u.name = r.user_name
JOIN usage_names e ON e.name = r.method || ' ' || r.endpoint
LEFT JOIN usage_names m ON m.name = r.model
LEFT JOIN usage_names up ON up.name = r.upstream
ORDER BY 1;

DROP TABLE usage_records;
ALTER TABLE usage_records_compact RENAME TO usage_records;
