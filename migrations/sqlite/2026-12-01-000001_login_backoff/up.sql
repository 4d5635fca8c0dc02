-- How many times a throttle key was locked since its last success: each lock lasts
-- twice as long as the one before (up to a cap).
ALTER TABLE login_failures ADD COLUMN locks BIGINT NOT NULL DEFAULT 0;
