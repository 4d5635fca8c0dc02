//! Which URLs may be saved and which addresses may be contacted.
//!
//! The URL check is syntax only (it runs when a user saves a webhook or callback
//! URL). The address check runs at send time on every address a host resolves to,
//! because a hostname that looked public when it was saved can point anywhere later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;
use url::Url;

/// Why a URL or an address was refused. Messages are shown to users as they are.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliverError {
    /// The URL cannot be used at all (bad syntax, wrong scheme, credentials...).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The URL is well formed but points at an address outbound calls may not reach.
    #[error("{0}")]
    Forbidden(String),
}

/// Decides which URLs and IP addresses outbound calls may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressGuard {
    allow_private: bool,
}

/// Why an address is refused; the wording completes "address X is ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    // Refused even when private addresses are allowed.
    CloudMetadata,
    LinkLocal,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
    // Refused unless private addresses are allowed.
    Loopback,
    Private,
    SharedCgnat,
}

impl Refusal {
    /// Metadata and link-local stay refused even for self-hosted installs that allow
    /// private targets: nothing legitimate lives there, and credentials do.
    fn is_absolute(self) -> bool {
        matches!(
            self,
            Refusal::CloudMetadata
                | Refusal::LinkLocal
                | Refusal::Unspecified
                | Refusal::Multicast
                | Refusal::Broadcast
                | Refusal::Reserved
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Refusal::CloudMetadata => "a cloud metadata address",
            Refusal::LinkLocal => "link-local",
            Refusal::Unspecified => "unspecified",
            Refusal::Multicast => "multicast",
            Refusal::Broadcast => "broadcast",
            Refusal::Reserved => "reserved",
            Refusal::Loopback => "loopback",
            Refusal::Private => "private",
            Refusal::SharedCgnat => "shared (carrier-grade NAT)",
        }
    }
}

impl AddressGuard {
    /// `allow_private` permits loopback, RFC 1918, unique-local and CGNAT targets
    /// (self-hosted installs calling services next to them). Metadata, link-local,
    /// unspecified, multicast and broadcast addresses are refused regardless.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Whether private (loopback, RFC 1918, ...) addresses are allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Syntax check at save time: http or https, a host, no `user:password@`; a port is
    /// fine. Addresses are not resolved here — that happens at send time.
    pub fn check_url(&self, raw: &str) -> Result<Url, DeliverError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DeliverError::InvalidUrl("the URL is empty".into()));
        }
        // The raw text is not echoed back: it may hold a password.
        let url = Url::parse(trimmed).map_err(|e| match e {
            url::ParseError::EmptyHost => DeliverError::InvalidUrl("the URL has no host".into()),
            other => DeliverError::InvalidUrl(format!("the URL cannot be parsed ({other})")),
        })?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(DeliverError::InvalidUrl(format!(
                    "scheme {other:?} is not supported; use http or https"
                )));
            }
        }
        match url.host_str() {
            Some(host) if !host.is_empty() => {}
            _ => return Err(DeliverError::InvalidUrl("the URL has no host".into())),
        }
        // Credentials in URLs end up in logs and screenshots; headers are the place.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DeliverError::InvalidUrl(
                "user name or password in the URL is not allowed; send credentials in a header"
                    .into(),
            ));
        }
        Ok(url)
    }

    /// Whether `ip` may be contacted.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.check_ip(ip).is_ok()
    }

    /// Like [`AddressGuard::ip_allowed`], with a message naming the reason.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), DeliverError> {
        match classify(ip) {
            None => Ok(()),
            Some(refusal) if !refusal.is_absolute() && self.allow_private => Ok(()),
            Some(refusal) => {
                let verdict = if refusal.is_absolute() {
                    "never allowed"
                } else {
                    "not allowed"
                };
                Err(DeliverError::Forbidden(format!(
                    "address {ip} is {} and {verdict}",
                    refusal.describe()
                )))
            }
        }
    }
}

fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, _, _] = ip.octets();
    // AWS/GCP/Azure/OpenStack (169.254.169.254) and Alibaba Cloud (100.100.100.200).
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return Some(Refusal::CloudMetadata);
    }
    if ip.is_link_local() {
        return Some(Refusal::LinkLocal);
    }
    // 0.0.0.0/8 ("this network"): connecting to it reaches the local host on Linux.
    if a == 0 {
        return Some(Refusal::Unspecified);
    }
    if ip.is_broadcast() {
        return Some(Refusal::Broadcast);
    }
    if ip.is_multicast() {
        return Some(Refusal::Multicast);
    }
    // 240.0.0.0/4 is not routable on the internet.
    if a >= 240 {
        return Some(Refusal::Reserved);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    if ip.is_private() {
        return Some(Refusal::Private);
    }
    if a == 100 && (64..128).contains(&b) {
        return Some(Refusal::SharedCgnat);
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    // An IPv4 address smuggled inside IPv6 is judged as the IPv4 address it reaches:
    // IPv4-mapped (::ffff:a.b.c.d) and the NAT64 well-known prefix (64:ff9b::/96).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, _, _, _, _, _, _, a, b, c, d] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    // AWS's IPv6 instance metadata endpoint; it sits inside fc00::/7, so it must be
    // refused before the "private" rule that allow_private lifts.
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return Some(Refusal::CloudMetadata);
    }
    if ip.is_unspecified() {
        return Some(Refusal::Unspecified);
    }
    if ip.is_multicast() {
        return Some(Refusal::Multicast);
    }
    if ip.is_unicast_link_local() {
        return Some(Refusal::LinkLocal);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    // fc00::/7 unique-local, and the deprecated site-local fec0::/10.
    if ip.is_unique_local() || (segments[0] & 0xffc0) == 0xfec0 {
        return Some(Refusal::Private);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address parses")
    }

    #[test]
    fn metadata_is_refused_even_when_private_is_allowed() {
        for guard in [AddressGuard::new(false), AddressGuard::new(true)] {
            for addr in [
                "169.254.169.254",
                "169.254.0.1",
                "100.100.100.200",
                "fd00:ec2::254",
                "fe80::1",
                "febf::1",
                "::ffff:169.254.169.254",
                "64:ff9b::a9fe:a9fe",
                "0.0.0.0",
                "0.1.2.3",
                "::",
                "255.255.255.255",
                "224.0.0.1",
                "239.255.255.250",
                "ff02::1",
                "240.0.0.1",
            ] {
                assert!(!guard.ip_allowed(ip(addr)), "{addr} with {guard:?}");
            }
        }
    }

    #[test]
    fn private_addresses_depend_on_the_setting() {
        let strict = AddressGuard::new(false);
        let lenient = AddressGuard::new(true);
        for addr in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.10",
            "100.64.0.1",
            "100.127.255.255",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::253",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:192.168.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!strict.ip_allowed(ip(addr)), "{addr} must be refused");
            assert!(lenient.ip_allowed(ip(addr)), "{addr} must be allowed");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let strict = AddressGuard::new(false);
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(strict.ip_allowed(ip(addr)), "{addr} must be allowed");
        }
    }

    #[test]
    fn refusals_name_the_address_and_the_reason() {
        let strict = AddressGuard::new(false);
        let err = strict.check_ip(ip("10.0.0.1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "address 10.0.0.1 is private and not allowed"
        );
        let err = AddressGuard::new(true)
            .check_ip(ip("169.254.169.254"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "address 169.254.169.254 is a cloud metadata address and never allowed"
        );
        let err = strict.check_ip(ip("::1")).unwrap_err();
        assert_eq!(err.to_string(), "address ::1 is loopback and not allowed");
    }

    #[test]
    fn check_url_accepts_http_and_https_with_host_and_port() {
        let guard = AddressGuard::new(false);
        for raw in [
            "http://example.com/",
            "https://example.com/hooks?x=1",
            "https://example.com:8443/path",
            "http://93.184.216.34:8080/",
            "https://[2606:4700::1]/",
            "  https://example.com/trimmed  ",
        ] {
            let url = guard.check_url(raw).expect(raw);
            assert!(matches!(url.scheme(), "http" | "https"));
        }
        assert_eq!(
            guard
                .check_url("https://example.com:8443/p")
                .unwrap()
                .port(),
            Some(8443)
        );
    }

    #[test]
    fn check_url_refusals_name_the_problem() {
        let guard = AddressGuard::new(false);
        let cases = [
            ("ftp://example.com/file", "scheme \"ftp\" is not supported"),
            ("file:///etc/passwd", "scheme \"file\" is not supported"),
            ("http://", "no host"),
            ("https://:443/", "no host"),
            (
                "mailto:ops@example.com",
                "scheme \"mailto\" is not supported",
            ),
            ("unix:/var/run/x.sock", "scheme \"unix\" is not supported"),
            ("https://user:secret@example.com/", "user name or password"),
            ("https://user@example.com/", "user name or password"),
            ("not a url", "cannot be parsed"),
            ("", "empty"),
            ("http://exa mple.com/", "cannot be parsed"),
        ];
        for (raw, expected) in cases {
            let err = guard.check_url(raw).expect_err(raw);
            assert!(matches!(err, DeliverError::InvalidUrl(_)), "{raw}: {err:?}");
            assert!(
                err.to_string().contains(expected),
                "{raw}: {err} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn check_url_does_not_echo_passwords() {
        let err = AddressGuard::new(false)
            .check_url("https://user:hunter2@example.com/")
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let err = AddressGuard::new(false)
            .check_url("https://user:hunter2@exa mple.com/")
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
