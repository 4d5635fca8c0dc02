ALTER TABLE commands DROP COLUMN last_value_type;
