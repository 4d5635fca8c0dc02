-- One-time data conversions done by the application at start (for example stored
-- cron schedules moving to standard weekday numbering), each recorded once.
CREATE TABLE maintenance_done (
    name TEXT PRIMARY KEY,
    done_at TIMESTAMP NOT NULL
);
