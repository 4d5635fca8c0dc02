//! Sluice's one place for outbound HTTP: webhook deliveries for event triggers and
//! callback POSTs for pull syncs.
//!
//! Every request goes through [`Outbound`], which
//! - refuses cloud-metadata, link-local and (unless allowed) private addresses, checked
//!   on the addresses DNS actually returned, so a hostname cannot be re-pointed between
//!   the check and the connection ([`AddressGuard`], `resolver`);
//! - signs bodies in the Standard Webhooks style ([`sign`], [`verify`]);
//! - retries with a jittered schedule that honours `Retry-After` ([`RetryPolicy`]);
//! - reports every attempt ([`Attempt`]) so callers can keep invocation logs.
//!
//! Request bodies are never logged or copied into errors; response bodies are read
//! with a cap so a hostile receiver cannot exhaust memory.

mod client;
mod guard;
mod resolver;
mod retry;
mod signing;

pub use client::{Attempt, Delivery, Outbound, RESPONSE_EXCERPT_BYTES, RESPONSE_READ_CAP_BYTES};
pub use guard::{AddressGuard, DeliverError};
pub use retry::{DeliveryFailed, RetryPolicy};
pub use signing::{Signing, sign, verify};
