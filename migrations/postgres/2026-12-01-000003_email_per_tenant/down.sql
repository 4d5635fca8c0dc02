-- Fails while an email belongs to users of several tenants: those accounts must be
-- merged or removed by hand first.
DROP INDEX users_email;
ALTER TABLE users DROP CONSTRAINT users_tenant_email;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
