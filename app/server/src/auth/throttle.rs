//! Who the client is (behind trusted proxies only) and the limits on password
//! guesses and sign-ups, keyed on emails, users and client networks.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use anyhow::Context;
use chrono::{Duration, NaiveDateTime};
use ipnet::{IpNet, Ipv6Net};
use sluice_store::Store;
use sluice_store::throttle::{Attempt, ThrottlePolicy};
use std::net::IpAddr;

use crate::error::AppError;
use crate::throttle_config::ThrottleConfig;

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// What was attempted too often, for the refusal's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    SignIn,
    SignUp,
    PasswordConfirmation,
}

impl Throttled {
    pub fn describe(self) -> &'static str {
        match self {
            Self::SignIn => "failed sign-in attempts",
            Self::SignUp => "sign-ups from your address",
            Self::PasswordConfirmation => "password confirmations",
        }
    }
}

#[derive(Debug)]
pub struct Throttle {
    trusted_proxies: Vec<IpNet>,
    lock_base: Duration,
    signups_per_hour: i64,
}

impl Throttle {
    pub fn from_config(config: &ThrottleConfig) -> anyhow::Result<Self> {
        Ok(Self {
            trusted_proxies: parse_networks(&config.trusted_proxies)
                .context("SLUICE_TRUSTED_PROXIES")?,
            lock_base: Duration::seconds(i64::from(config.login_lock_secs)),
            signups_per_hour: i64::from(config.signups_per_hour),
        })
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }

    /// The client's address: the socket peer, or, when the peer is a trusted proxy,
    /// the last `X-Forwarded-For` hop that is not one (a client can prepend any
    /// hops it likes, but not append).
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        let mut client = req.peer_addr()?.ip().to_canonical();
        let forwarded: Vec<&str> = req
            .headers()
            .get_all(FORWARDED_FOR)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in forwarded.iter().rev() {
            if !self.is_trusted(client) {
                break;
            }
            match hop.trim().parse::<IpAddr>() {
                Ok(address) => client = address.to_canonical(),
                Err(_) => break,
            }
        }
        Some(client)
    }

    /// The client's network for per-address limits: the address itself for IPv4,
    /// its /64 for IPv6 (one subscriber usually holds a whole /64).
    pub fn address_key(&self, req: &HttpRequest) -> String {
        match self.client_address(req) {
            Some(IpAddr::V6(v6)) => {
                let network = Ipv6Net::new(v6, 64).map(|n| n.trunc());
                format!("ip:{}", network.map_or(v6.to_string(), |n| n.to_string()))
            }
            Some(v4) => format!("ip:{v4}"),
            None => "ip:unknown".into(),
        }
    }

    pub fn login_per_email(&self) -> ThrottlePolicy {
        ThrottlePolicy::PER_EMAIL.with_lock_base(self.lock_base)
    }

    pub fn login_per_address(&self) -> ThrottlePolicy {
        ThrottlePolicy::PER_ADDRESS.with_lock_base(self.lock_base)
    }

    pub fn signup_per_address(&self) -> ThrottlePolicy {
        ThrottlePolicy::SIGNUP_PER_ADDRESS.with_max_attempts(self.signups_per_hour)
    }

    pub fn password_confirmation(&self) -> ThrottlePolicy {
        ThrottlePolicy::PASSWORD_CONFIRMATION.with_lock_base(self.lock_base)
    }

    /// Counts an attempt on `key`, or refuses it (429 with Retry-After) while the
    /// key is locked.
    pub async fn enter(
        &self,
        store: &Store,
        key: &str,
        policy: ThrottlePolicy,
        what: Throttled,
    ) -> Result<(), AppError> {
        match store.begin_attempt(key, policy).await? {
            Attempt::Allowed => Ok(()),
            Attempt::Locked { until } => Err(refusal(what, until)),
        }
    }

    /// Refuses (429 with Retry-After) while `key` is locked, without counting.
    pub async fn refuse_if_locked(
        &self,
        store: &Store,
        key: &str,
        what: Throttled,
    ) -> Result<(), AppError> {
        match store.attempts_locked_until(key).await? {
            Some(until) => Err(refusal(what, until)),
            None => Ok(()),
        }
    }
}

fn refusal(what: Throttled, until: NaiveDateTime) -> AppError {
    let millis = (until - sluice_store::now()).num_milliseconds().max(1);
    AppError::Throttled {
        what,
        retry_after_secs: u64::try_from(millis).unwrap_or(1).div_ceil(1000),
    }
}

/// The throttle key of sign-in attempts on one email.
pub fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

fn parse_networks(list: &str) -> anyhow::Result<Vec<IpNet>> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .with_context(|| format!("`{item}` is not an IP address or CIDR network"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn throttle(trusted: &str) -> Throttle {
        Throttle::from_config(&ThrottleConfig {
            trusted_proxies: trusted.into(),
            ..ThrottleConfig::default()
        })
        .expect("valid config")
    }

    fn request(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(value) = forwarded {
            req = req.insert_header(("X-Forwarded-For", value));
        }
        req.to_http_request()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let t = throttle("10.0.0.0/8, 192.0.2.1");
        let via_proxy = request("10.1.2.3:1", Some("203.0.113.9, 198.51.100.7"));
        assert_eq!(t.address_key(&via_proxy), "ip:198.51.100.7");
        let direct = request("198.51.100.50:1", Some("203.0.113.9"));
        assert_eq!(t.address_key(&direct), "ip:198.51.100.50");
        let two_proxies = request("192.0.2.1:1", Some("203.0.113.9, 10.9.9.9"));
        assert_eq!(t.address_key(&two_proxies), "ip:203.0.113.9");
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let t = throttle("");
        let a = request("[2001:db8:1:2:aaaa::1]:1", None);
        let b = request("[2001:db8:1:2:bbbb::2]:1", None);
        let other = request("[2001:db8:1:3::1]:1", None);
        assert_eq!(t.address_key(&a), "ip:2001:db8:1:2::/64");
        assert_eq!(t.address_key(&a), t.address_key(&b));
        assert_ne!(t.address_key(&a), t.address_key(&other));
    }

    #[test]
    fn a_bad_proxy_entry_is_named() {
        let error = Throttle::from_config(&ThrottleConfig {
            trusted_proxies: "10.0.0.0/8,proxy.local".into(),
            ..ThrottleConfig::default()
        })
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("SLUICE_TRUSTED_PROXIES"), "{message}");
        assert!(message.contains("proxy.local"), "{message}");
    }
}
