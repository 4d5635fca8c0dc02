-- Inboxes (public URLs that store JSON), commands (pull syncs), their runs, and
-- direct URLs that start a command.
CREATE TABLE inboxes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE inbox_messages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    inbox_id TEXT NOT NULL REFERENCES inboxes(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    body TEXT NOT NULL,
    size BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX inbox_messages_inbox ON inbox_messages (inbox_id, received_at);

CREATE TABLE commands (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connector_id TEXT NOT NULL REFERENCES connectors(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    sql_text TEXT NOT NULL,
    callback_url TEXT,
    callback_inbox_id TEXT REFERENCES inboxes(id) ON DELETE SET NULL,
    last_field TEXT,
    last_value TEXT,
    schedule TEXT,
    timezone TEXT NOT NULL,
    params TEXT,
    batch_size BIGINT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    next_run_at TIMESTAMP,
    window_end TIMESTAMP,
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX commands_tenant ON commands (tenant_id, connector_id);
CREATE INDEX commands_due ON commands (status, next_run_at);

CREATE TABLE command_runs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    command_id TEXT NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    run_trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    params TEXT,
    rows_delivered BIGINT NOT NULL,
    bytes_delivered BIGINT NOT NULL,
    batches_delivered BIGINT NOT NULL,
    error TEXT,
    last_value_before TEXT,
    last_value_after TEXT,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    lease_until TIMESTAMP
);
CREATE INDEX command_runs_command ON command_runs (command_id, created_at);
CREATE INDEX command_runs_lease ON command_runs (status, lease_until);

CREATE TABLE direct_urls (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    command_id TEXT NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    token TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
