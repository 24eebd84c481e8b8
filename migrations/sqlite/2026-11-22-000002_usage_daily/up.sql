-- Daily totals per user, model and upstream, written in the same
-- transaction as the records, so that reports over long ranges (and limit
-- periods) read a few rows per day and survive `usage prune`.
-- An absent model or upstream is stored as '' (refused requests have no
-- upstream), so the key has no NULLs.
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
SELECT date(at), user_name, COALESCE(model, ''), COALESCE(upstream, ''),
       COUNT(*), SUM(status >= 400), COALESCE(SUM(prompt_tokens), 0),
       COALESCE(SUM(completion_tokens), 0), SUM(estimated)
FROM usage_records
GROUP BY date(at), user_name, COALESCE(model, ''), COALESCE(upstream, '');
