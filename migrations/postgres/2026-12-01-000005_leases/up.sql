-- Fenced leases: one row per leased resource ("run:<id>", later "capture:<connector>",
-- "scheduler"). A holder proves it still holds the lease (owner and epoch match, not
-- expired) inside every transaction that writes under it.
CREATE TABLE leases (
    resource TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    acquired_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX leases_expiry ON leases (expires_at);
