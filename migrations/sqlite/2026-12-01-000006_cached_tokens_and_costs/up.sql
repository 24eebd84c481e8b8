-- Cached prompt tokens (OpenAI's prompt_tokens_details.cached_tokens,
-- Anthropic's cache_read_input_tokens), and each record's cost in
-- nano-dollars, priced when written (NULL: the model had no price); per
-- record and in the daily totals, where priced_requests tells a row that
-- cost nothing from one that had no price.
ALTER TABLE usage_records ADD COLUMN cached_tokens BIGINT;
ALTER TABLE usage_records ADD COLUMN cost_nano_usd BIGINT;
ALTER TABLE usage_daily ADD COLUMN cached_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cost_nano_usd BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN priced_requests BIGINT NOT NULL DEFAULT 0;
