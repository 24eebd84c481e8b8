-- Per-user reads go to usage_daily (limits, whole-day reports); a report
-- over part of a day finds its records by time, then by user. This index
-- cost every usage commit its own pages and every record an insert.
DROP INDEX IF EXISTS usage_records_user_at;
