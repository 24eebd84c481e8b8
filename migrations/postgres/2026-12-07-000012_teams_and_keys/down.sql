ALTER TABLE charges DROP COLUMN team_name;
DROP INDEX usage_daily_by_team;
CREATE TEMPORARY TABLE usage_daily_sums AS
SELECT day, user_name, model, upstream, SUM(requests)::BIGINT AS requests,
       SUM(errors)::BIGINT AS errors, SUM(prompt_tokens)::BIGINT AS prompt_tokens,
       SUM(completion_tokens)::BIGINT AS completion_tokens,
       SUM(estimated_requests)::BIGINT AS estimated_requests,
       SUM(cached_tokens)::BIGINT AS cached_tokens,
       SUM(cost_nano_usd)::BIGINT AS cost_nano_usd,
       SUM(priced_requests)::BIGINT AS priced_requests
FROM usage_daily GROUP BY day, user_name, model, upstream;
DELETE FROM usage_daily;
ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey;
ALTER TABLE usage_daily DROP COLUMN team;
INSERT INTO usage_daily (day, user_name, model, upstream, requests, errors,
    prompt_tokens, completion_tokens, estimated_requests, cached_tokens,
    cost_nano_usd, priced_requests)
SELECT * FROM usage_daily_sums;
ALTER TABLE usage_daily ADD PRIMARY KEY (day, user_name, model, upstream);
ALTER TABLE usage_records DROP COLUMN key_id, DROP COLUMN team_id;
DROP TRIGGER users_revision_update ON users;
ALTER TABLE users ADD COLUMN key_hash TEXT, ADD COLUMN key_hint TEXT;
UPDATE users u SET key_hash = k.key_hash, key_hint = k.key_hint
FROM keys k WHERE k.id = (
    SELECT id FROM keys WHERE user_id = u.id ORDER BY label <> 'default', id LIMIT 1);
ALTER TABLE users ALTER COLUMN key_hash SET NOT NULL, ALTER COLUMN key_hint SET NOT NULL,
    ADD UNIQUE (key_hash), DROP COLUMN team_id, DROP COLUMN touched;
CREATE TRIGGER users_revision_update
BEFORE UPDATE OF name, key_hash, key_hint, disabled, expires_at, token_limit,
                 request_limit, limit_period, models, rpm, note, max_parallel,
                 budget_nano_usd ON users
FOR EACH ROW EXECUTE FUNCTION chatgate_user_changed();
DROP TABLE keys;
DROP TABLE teams;
