DROP TABLE outbox_consumers;
DROP TABLE outbox_entries;
DROP TABLE outbox_streams;
