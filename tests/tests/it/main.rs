//! Sluice integration tests: the real server against real SQLite files, real
//! PostgreSQL databases and real headless Chromium. One binary, many modules.

mod accounts;
mod api;
mod api_keys;
mod browser;
mod cli;
mod commands;
mod connectors;
mod crash;
mod fencing;
mod inboxes;
mod integrations;
mod jobs;
mod load;
mod ops;
mod outbox;
mod quotas;
mod request_log;
mod roles;
mod service;
mod shutdown;
mod sqlite_isolation;
mod throttling;
mod viewers;
