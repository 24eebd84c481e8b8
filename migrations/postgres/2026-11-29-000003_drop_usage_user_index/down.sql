CREATE INDEX IF NOT EXISTS usage_records_user_at ON usage_records (user_name, at);
