DROP TABLE charges;
ALTER TABLE objects DROP COLUMN tokens;
