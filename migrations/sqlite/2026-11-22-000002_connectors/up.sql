-- SQL connectors. Credentials live only in `secrets_enc` (AES-256-GCM under a key
-- derived from the instance secret): the password and any secret-like options.
CREATE TABLE connectors (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    kind TEXT NOT NULL,
    reach TEXT NOT NULL,
    host TEXT,
    port BIGINT,
    database_name TEXT,
    username TEXT,
    tls_mode TEXT NOT NULL,
    options TEXT NOT NULL,
    path TEXT,
    secrets_enc TEXT,
    gateway_key_hash TEXT UNIQUE,
    gateway_key_prefix TEXT,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX connectors_tenant ON connectors (tenant_id);
