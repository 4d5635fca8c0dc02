//! The `sluice` binary as a library, so the integration tests can start it in-process.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod hooks;
pub mod inbox_config;
mod input;
pub mod limits_config;
pub mod metrics;
mod ops;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle_config;
pub mod web;
