-- The client family that made each request (claude-code, codex, …; see
-- src/usage/client.rs), interned in usage_names like the other names.
ALTER TABLE usage_records ADD COLUMN client_id BIGINT;
