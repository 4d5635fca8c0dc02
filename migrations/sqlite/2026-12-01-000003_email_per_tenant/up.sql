-- An email is unique per tenant, not globally: the same person may own or join
-- several workspaces, and a global constraint made sign-up and invitations tell
-- anyone whether an email had an account somewhere.
--
-- The rebuild follows https://www.sqlite.org/lang_altertable.html#otheralter:
-- foreign keys off outside the transaction, so dropping the old table keeps the
-- sessions that reference its rows (ON DELETE CASCADE) and renaming the new one
-- leaves their references pointing at `users`.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE users_new (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, email)
);
INSERT INTO users_new (id, tenant_id, email, name, password_hash, role, created_at)
    SELECT id, tenant_id, email, name, password_hash, role, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_tenant ON users (tenant_id);
-- Sign-in still looks an email up across tenants.
CREATE INDEX users_email ON users (email);

COMMIT;
PRAGMA foreign_keys = ON;
