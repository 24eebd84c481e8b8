ALTER TABLE usage_daily DROP COLUMN cached_tokens;
ALTER TABLE usage_records DROP COLUMN cached_tokens;
