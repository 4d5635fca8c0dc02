ALTER TABLE login_failures DROP COLUMN locks;
