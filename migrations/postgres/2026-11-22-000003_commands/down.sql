DROP TABLE direct_urls;
DROP TABLE command_runs;
DROP TABLE commands;
DROP TABLE inbox_messages;
DROP TABLE inboxes;
