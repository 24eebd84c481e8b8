ALTER TABLE charges DROP COLUMN team_name;
CREATE TEMPORARY TABLE usage_daily_sums AS
SELECT day, user_name, model, upstream, SUM(requests) AS requests, SUM(errors) AS errors,
       SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
       SUM(estimated_requests) AS estimated_requests, SUM(cached_tokens) AS cached_tokens,
       SUM(cost_nano_usd) AS cost_nano_usd, SUM(priced_requests) AS priced_requests
FROM usage_daily GROUP BY day, user_name, model, upstream;
DELETE FROM usage_daily;
ALTER TABLE usage_daily DROP KEY usage_daily_by_team, DROP PRIMARY KEY, DROP COLUMN team,
    ADD PRIMARY KEY (day, user_name, model, upstream);
INSERT INTO usage_daily (day, user_name, model, upstream, requests, errors,
    prompt_tokens, completion_tokens, estimated_requests, cached_tokens,
    cost_nano_usd, priced_requests)
SELECT * FROM usage_daily_sums;
DROP TEMPORARY TABLE usage_daily_sums;
ALTER TABLE usage_records DROP COLUMN key_id, DROP COLUMN team_id;
DROP TRIGGER users_revision_update;
ALTER TABLE users ADD COLUMN key_hash VARCHAR(64), ADD COLUMN key_hint VARCHAR(64);
UPDATE users u JOIN `keys` k ON k.user_id = u.id AND k.label = 'default'
SET u.key_hash = k.key_hash, u.key_hint = k.key_hint;
ALTER TABLE users MODIFY key_hash VARCHAR(64) NOT NULL, MODIFY key_hint VARCHAR(64) NOT NULL,
    ADD UNIQUE KEY users_key_hash (key_hash), DROP KEY users_by_team,
    DROP COLUMN team_id, DROP COLUMN touched;
CREATE TRIGGER users_revision_update BEFORE UPDATE ON users FOR EACH ROW
BEGIN
    IF NOT (NEW.name <=> OLD.name AND NEW.key_hash <=> OLD.key_hash
            AND NEW.key_hint <=> OLD.key_hint AND NEW.disabled <=> OLD.disabled
            AND NEW.expires_at <=> OLD.expires_at AND NEW.token_limit <=> OLD.token_limit
            AND NEW.request_limit <=> OLD.request_limit
            AND NEW.limit_period <=> OLD.limit_period AND NEW.models <=> OLD.models
            AND NEW.rpm <=> OLD.rpm AND NEW.note <=> OLD.note
            AND NEW.max_parallel <=> OLD.max_parallel
            AND NEW.budget_nano_usd <=> OLD.budget_nano_usd) THEN
        UPDATE revisions SET revision = revision + 1 WHERE name = 'users';
        SET NEW.revision = (SELECT revision FROM revisions WHERE name = 'users');
    END IF;
END;
DROP TABLE `keys`;
DROP TABLE teams;
