-- Fails (and changes nothing) while an email belongs to users of several tenants:
-- those accounts must be merged or removed by hand first. Rebuilt like up.sql.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE users_old (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO users_old (id, tenant_id, email, name, password_hash, role, created_at)
    SELECT id, tenant_id, email, name, password_hash, role, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
CREATE INDEX users_tenant ON users (tenant_id);

COMMIT;
PRAGMA foreign_keys = ON;
