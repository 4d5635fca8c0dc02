-- Integrations (seed 003): profiles, static segments and the segment syncs that
-- export their changes to a tenant's database through the outbox.

-- A profile's id is chosen by the tenant (a CRM id). Ids compare byte by byte on
-- both backends, so the primary key serves the paged list and an id-prefix search
-- as one range scan.
CREATE TABLE profiles (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id TEXT COLLATE "C" NOT NULL,
    fields TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Segment numbers are what templates render as {segment_id} (seed 003 keeps them
-- in int(11) columns); each tenant's counter only grows, so a deleted segment's
-- number is never given to another.
CREATE TABLE segment_numbers (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    last_number BIGINT NOT NULL
);

CREATE TABLE segments (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, number),
    UNIQUE (tenant_id, name)
);

CREATE TABLE segment_members (
    tenant_id TEXT NOT NULL,
    segment_id TEXT NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    profile_id TEXT COLLATE "C" NOT NULL,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (segment_id, profile_id),
    FOREIGN KEY (tenant_id, profile_id) REFERENCES profiles (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX segment_members_profile ON segment_members (tenant_id, profile_id);

CREATE TABLE segment_syncs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    connector_id TEXT NOT NULL REFERENCES connectors(id) ON DELETE CASCADE,
    all_segments BOOLEAN NOT NULL,
    add_template TEXT NOT NULL,
    remove_template TEXT NOT NULL,
    clear_template TEXT,
    upsert_segment_template TEXT,
    delete_segment_template TEXT,
    batch_size BIGINT NOT NULL,
    batch_timeout_ms BIGINT NOT NULL,
    -- Set by "Start resync"; the executor clears it when it starts one.
    resync_requested_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX segment_syncs_connector ON segment_syncs (connector_id);

-- The chosen segments of a sync whose scope is not "all segments".
CREATE TABLE segment_sync_segments (
    sync_id TEXT NOT NULL REFERENCES segment_syncs(id) ON DELETE CASCADE,
    segment_id TEXT NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    PRIMARY KEY (sync_id, segment_id)
);
CREATE INDEX segment_sync_segments_segment ON segment_sync_segments (segment_id);

-- One statement a sync ran, for its statistics. The segment may be gone since.
CREATE TABLE segment_sync_batches (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    sync_id TEXT NOT NULL REFERENCES segment_syncs(id) ON DELETE CASCADE,
    segment_id TEXT,
    event TEXT NOT NULL,
    entries BIGINT NOT NULL,
    rows_affected BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    failed_sql TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX segment_sync_batches_sync_at ON segment_sync_batches (sync_id, at);
