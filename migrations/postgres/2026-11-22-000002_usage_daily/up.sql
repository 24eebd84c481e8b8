-- Daily totals per user, model and upstream (see migrations/sqlite).
CREATE TABLE usage_daily (
    day                DATE NOT NULL,
    user_name          TEXT NOT NULL,
    model              TEXT NOT NULL,
    upstream           TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    estimated_requests BIGINT NOT NULL,
    PRIMARY KEY (day, user_name, model, upstream)
);

INSERT INTO usage_daily
SELECT at::date, user_name, COALESCE(model, ''), COALESCE(upstream, ''),
       COUNT(*), COUNT(*) FILTER (WHERE status >= 400),
       COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
       COUNT(*) FILTER (WHERE estimated)
FROM usage_records
GROUP BY 1, 2, 3, 4;
