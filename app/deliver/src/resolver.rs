//! A DNS resolver for reqwest that applies the [`AddressGuard`] to the addresses it
//! hands to the connector.
//!
//! Checking a hostname first and connecting later leaves a window in which its DNS
//! can change (DNS rebinding). Doing the check inside the resolver closes it: the
//! connector only ever sees addresses that passed, so the address connected to is
//! the address checked.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::guard::{AddressGuard, DeliverError};

#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    guard: AddressGuard,
}

impl GuardedResolver {
    pub(crate) fn new(guard: AddressGuard) -> Self {
        Self { guard }
    }
}

/// A lookup that failed for reasons other than the guard (unknown host, no records).
#[derive(Debug, thiserror::Error)]
#[error("could not resolve host {host}: {reason}")]
pub(crate) struct ResolveFailed {
    host: String,
    reason: String,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: the connector fills in the URL's port afterwards.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveFailed {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            if resolved.is_empty() {
                return Err(ResolveFailed {
                    host,
                    reason: "no addresses".into(),
                }
                .into());
            }
            // Refuse the whole host if ANY address is refused, rather than filtering:
            // a name that mixes public and internal addresses is suspicious, and
            // filtering would make delivery depend on which address came first.
            for addr in &resolved {
                if let Err(refused) = guard.check_ip(addr.ip()) {
                    tracing::warn!(%host, ip = %addr.ip(), "outbound request refused by address guard");
                    return Err(DeliverError::Forbidden(format!("host {host}: {refused}")).into());
                }
            }
            let addrs: Addrs = Box::new(resolved.into_iter());
            Ok(addrs)
        })
    }
}
