ALTER TABLE usage_records DROP COLUMN client_id;
