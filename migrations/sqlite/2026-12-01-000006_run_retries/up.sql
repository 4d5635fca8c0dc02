-- The durable attempt schedule of a run's callback deliveries: a failed batch
-- leaves the run "retrying" with its attempts so far and when the next is due; the
-- scheduler queues it again then, and the run resumes from that batch.
ALTER TABLE command_runs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE command_runs ADD COLUMN next_attempt_at TIMESTAMP;
