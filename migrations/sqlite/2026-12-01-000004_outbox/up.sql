-- The outbox: append-only entries per (tenant, stream), read by named consumers
-- that each keep their own position (the last seq they applied).
--
-- A stream's row hands out its entries' seq numbers: an append updates it, so
-- appends to one stream wait for each other until commit and seq order is commit
-- order. (A global sequence would not do: an entry could commit after a
-- higher-numbered one that a consumer had already read past.)
CREATE TABLE outbox_streams (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    stream TEXT NOT NULL,
    next_seq BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, stream)
);

CREATE TABLE outbox_entries (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, stream, seq),
    FOREIGN KEY (tenant_id, stream) REFERENCES outbox_streams (tenant_id, stream) ON DELETE CASCADE
);

CREATE TABLE outbox_consumers (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    consumer TEXT NOT NULL,
    stream TEXT NOT NULL,
    position BIGINT NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, consumer, stream),
    FOREIGN KEY (tenant_id, stream) REFERENCES outbox_streams (tenant_id, stream) ON DELETE CASCADE
);
CREATE INDEX outbox_consumers_stream ON outbox_consumers (tenant_id, stream);
