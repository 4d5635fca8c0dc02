-- An email is unique per tenant, not globally: the same person may own or join
-- several workspaces, and a global constraint made sign-up and invitations tell
-- anyone whether an email had an account somewhere.
ALTER TABLE users DROP CONSTRAINT users_email_key;
ALTER TABLE users ADD CONSTRAINT users_tenant_email UNIQUE (tenant_id, email);
-- Sign-in still looks an email up across tenants.
CREATE INDEX users_email ON users (email);
