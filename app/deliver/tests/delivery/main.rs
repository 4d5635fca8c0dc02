//! End-to-end tests against real HTTP receivers on 127.0.0.1.

mod address_guard;
mod retries;
mod send_once;
mod support;

use sluice_deliver::{AddressGuard, Delivery, Outbound};

/// An Outbound that may reach the loopback receivers tests start.
fn outbound_allowing_private() -> Outbound {
    Outbound::new(AddressGuard::new(true))
}

fn json_delivery(url: url::Url) -> Delivery {
    Delivery::json(url, r#"{"rows":[{"id":1}]}"#)
}
