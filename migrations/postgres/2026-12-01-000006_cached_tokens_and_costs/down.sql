ALTER TABLE usage_daily DROP COLUMN priced_requests;
ALTER TABLE usage_daily DROP COLUMN cost_nano_usd;
ALTER TABLE usage_daily DROP COLUMN cached_tokens;
ALTER TABLE usage_records DROP COLUMN cost_nano_usd;
ALTER TABLE usage_records DROP COLUMN cached_tokens;
