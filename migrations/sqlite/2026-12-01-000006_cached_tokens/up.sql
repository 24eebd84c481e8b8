-- Cached prompt tokens (OpenAI's prompt_tokens_details.cached_tokens,
-- Anthropic's cache_read_input_tokens), per record and in the daily totals.
ALTER TABLE usage_records ADD COLUMN cached_tokens BIGINT;
ALTER TABLE usage_daily ADD COLUMN cached_tokens BIGINT NOT NULL DEFAULT 0;
