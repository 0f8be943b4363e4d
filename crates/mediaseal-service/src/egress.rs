//! Where webhooks may go: an address policy for outgoing callbacks, enforced twice.
//!
//! A callback URL is chosen by a tenant, so without a policy the service would fetch internal
//! addresses for it (the metadata service at 169.254.169.254, an admin port on loopback, the
//! database on the private network). By default every destination that is not a public unicast
//! address is refused: loopback, private (RFC 1918), shared (CGNAT), link-local, unique-local,
//! multicast, unspecified, broadcast, documentation and other reserved ranges, and IPv6 forms
//! that embed one of those (IPv4-mapped, IPv4-compatible, 6to4, NAT64). Operators with
//! on-premises receivers allow-list their networks ([`WebhookPolicy::allowing`], the
//! `--allow-webhook-network` option); the allow-list wins over every refusal.
//!
//! The policy is checked
//! - when a URL is submitted, for literal hosts only ([`WebhookPolicy::check_url`]: `127.1`,
//!   `2130706433` and `0x7f000001` are all `127.0.0.1` once parsed), so a bad URL is a 400;
//! - at connect time on the resolved addresses ([`GuardedResolver`], installed as the webhook
//!   client's resolver), so a name that resolves to an internal address, or is re-pointed there
//!   after submission (DNS rebinding), is refused at the moment it would be connected to;
//! - before each delivery for literal hosts again, because the HTTP client does not ask a
//!   resolver about IP literals (and the allow-list may have shrunk since submission).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

pub use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// Longest callback URL accepted (Twilio documents no limit; browsers and proxies stop near
/// 2 KiB, and nothing longer is a real receiver).
pub const MAX_URL_LEN: usize = 2048;

/// Which webhook destinations are allowed: every public unicast address, plus the allow-listed
/// networks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct WebhookPolicy {
    allow: Arc<[IpNet]>,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The address is in a refused range and not allow-listed.
    #[error(
        "{addr} is a {range} address, which webhooks may not reach (an operator can allow it with --allow-webhook-network)"
    )]
    Refused {
        /// The address.
        addr: IpAddr,
        /// The range it is in, e.g. "loopback".
        range: &'static str,
    },
    /// The host is a name for this machine (`localhost`).
    #[error(
        "'{host}' names this machine, which webhooks may not reach (an operator can allow 127.0.0.0/8 with --allow-webhook-network)"
    )]
    Localhost {
        /// The host, bounded.
        host: String,
    },
    /// Every address the host resolves to is refused.
    #[error("webhook host '{host}' resolves only to refused addresses ({first})")]
    NoAllowedAddress {
        /// The host name, bounded.
        host: String,
        /// The first refusal.
        first: Box<Self>,
    },
    /// The host does not resolve.
    #[error("webhook host '{host}' does not resolve: {reason}")]
    Unresolved {
        /// The host name, bounded.
        host: String,
        /// The resolver's error.
        reason: String,
    },
}

impl WebhookPolicy {
    /// The default: public unicast destinations only.
    pub fn strict() -> Self {
        Self::default()
    }

    /// The default plus `networks`, which are allowed whatever range they are in.
    pub fn allowing(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            allow: networks.into_iter().map(|n| n.trunc()).collect(),
        }
    }

    /// The allow-listed networks.
    pub fn allowed_networks(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether a webhook may connect to `addr`.
    pub fn check(&self, addr: IpAddr) -> Result<(), EgressError> {
        // An IPv4-mapped address is the IPv4 address on a dual-stack socket.
        let addr = addr.to_canonical();
        if self.is_allowed(addr) {
            return Ok(());
        }
        if let Some(range) = refused_range(addr) {
            return Err(EgressError::Refused { addr, range });
        }
        if let IpAddr::V6(v6) = addr
            && let Some(inner) = embedded_ipv4(v6)
        {
            let inner = IpAddr::V4(inner);
            if !self.is_allowed(inner)
                && let Some(range) = refused_range(inner)
            {
                return Err(EgressError::Refused { addr, range });
            }
        }
        Ok(())
    }

    /// Checks a URL's host when it needs no resolving: an IP literal in any spelling the URL
    /// standard accepts, or `localhost`. Other names pass here and are checked when resolved.
    pub fn check_url(&self, url: &url::Url) -> Result<(), EgressError> {
        match url.host() {
            Some(Host::Ipv4(v4)) => self.check(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => self.check(IpAddr::V6(v6)),
            Some(Host::Domain(name)) => self.check_name(name),
            None => Ok(()),
        }
    }

    /// `localhost` and `*.localhost` always mean loopback (RFC 6761), whatever DNS says.
    fn check_name(&self, name: &str) -> Result<(), EgressError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let local = name == "localhost" || name.ends_with(".localhost");
        if local && !self.is_allowed(IpAddr::V4(Ipv4Addr::LOCALHOST)) {
            return Err(EgressError::Localhost {
                host: bounded(&name, 100),
            });
        }
        Ok(())
    }

    fn is_allowed(&self, addr: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&addr))
    }
}

/// The range `addr` is in when webhooks may not reach it by default.
fn refused_range(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o1, o2, o3, _] = a.octets();
    let range = match (o1, o2, o3) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => {
            if a == Ipv4Addr::BROADCAST {
                "broadcast"
            } else {
                "reserved"
            }
        }
        _ => return None,
    };
    Some(range)
}

fn refused_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    let range = if a.is_unspecified() {
        "unspecified"
    } else if a.is_loopback() {
        "loopback"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "unique-local"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "site-local"
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        "documentation"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "discard-only"
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        // 2001::/23: Teredo, benchmarking, ORCHID and other special-purpose assignments.
        "IETF protocol assignment"
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001 {
        "local-use NAT64"
    } else {
        return None;
    };
    Some(range)
}

/// The IPv4 address inside an IPv6 one that carries it to an IPv4 host: IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002:AABB:CCDD::/48`). (IPv4-mapped is
/// handled by [`IpAddr::to_canonical`].)
fn embedded_ipv4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let b = a.octets();
    if s[..6] == [0; 6] || (s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
        return Some(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(b[2], b[3], b[4], b[5]));
    }
    None
}

/// The first `max` characters of `text`, with `…` when cut: error messages quote input, and
/// input can be megabytes.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// `url` with any `user:password@` removed, for logs and error messages.
pub fn redacted(url: &url::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut clean = url.clone();
    // Only URLs without a host refuse these, and a URL with credentials has one.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}

/// A DNS resolver for the webhook client that drops refused addresses, so the policy holds for
/// the address actually connected to (no window for DNS rebinding between check and connect).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: WebhookPolicy,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: WebhookPolicy) -> Self {
        Self { policy }
    }

    /// The allowed addresses of `host` (port 0: the client sets the URL's).
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, EgressError> {
        let shown = bounded(host, 100);
        self.policy.check_name(host)?;
        let resolved =
            tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| EgressError::Unresolved {
                    host: shown.clone(),
                    reason: e.to_string(),
                })?;
        let mut allowed = Vec::new();
        let mut first_refusal = None;
        for addr in resolved {
            match self.policy.check(addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(first)) => Err(EgressError::NoAllowedAddress {
                host: shown,
                first: Box::new(first),
            }),
            (true, None) => Err(EgressError::Unresolved {
                host: shown,
                reason: "no addresses".to_owned(),
            }),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Parses an `--allow-webhook-network` value: a CIDR range (`10.0.0.0/8`, `fd00::/8`) or a
/// single address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!(
            "'{}' is not a network: give a CIDR range such as 10.0.0.0/8 or fd00::/8, or one address",
            bounded(text, 100)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict_refuses(url: &str) -> EgressError {
        let url = url::Url::parse(url).unwrap();
        WebhookPolicy::strict().check_url(&url).unwrap_err()
    }

    #[test]
    fn every_spelling_of_loopback_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://127.000.000.001/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://[64:ff9b::7f00:1]/",
        ] {
            match strict_refuses(url) {
                EgressError::Refused { range, .. } => assert_eq!(range, "loopback", "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        for url in [
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost:8080/",
        ] {
            assert!(
                matches!(strict_refuses(url), EgressError::Localhost { .. }),
                "{url}"
            );
        }
    }

    #[test]
    fn url_parsing_normalises_numeric_hosts() {
        for spelling in ["127.1", "2130706433", "0x7f000001", "0x7f.1", "0177.1"] {
            let url = url::Url::parse(&format!("https://{spelling}/x")).unwrap();
            assert_eq!(
                url.host(),
                Some(Host::Ipv4(Ipv4Addr::LOCALHOST)),
                "{spelling}"
            );
        }
    }

    #[test]
    fn internal_ranges_are_refused() {
        for (url, range) in [
            ("http://0.0.0.0/", "unspecified (0.0.0.0/8)"),
            ("http://0/", "unspecified (0.0.0.0/8)"),
            ("http://[::]/", "unspecified"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[::ffff:169.254.169.254]/", "link-local"),
            ("http://10.0.0.1/", "private"),
            ("http://10.255.255.255/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.1/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://[::ffff:10.1.2.3]/", "private"),
            ("http://[2002:a00:1::]/", "private"),
            ("http://[fd00::1]/", "unique-local"),
            ("http://[fc00::1]/", "unique-local"),
            ("http://100.64.0.1/", "shared (carrier-grade NAT)"),
            ("http://224.0.0.1/", "multicast"),
            ("http://[ff02::1]/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://240.0.0.1/", "reserved"),
            ("http://192.0.2.10/", "documentation"),
            ("http://203.0.113.5/", "documentation"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://[2001::1]/", "IETF protocol assignment"),
        ] {
            match strict_refuses(url) {
                EgressError::Refused { range: r, .. } => assert_eq!(r, range, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        let policy = WebhookPolicy::strict();
        for url in [
            "https://8.8.8.8/",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://[2606:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
            "https://[2002:808:808::]/",
            "https://example.com/cb",
            "https://localhost.example.com/cb",
        ] {
            let url = url::Url::parse(url).unwrap();
            assert_eq!(policy.check_url(&url), Ok(()), "{url}");
        }
    }

    #[test]
    fn the_allow_list_wins() {
        let policy = WebhookPolicy::allowing([
            parse_network("127.0.0.0/8").unwrap(),
            parse_network("::1").unwrap(),
            parse_network("10.1.0.0/16").unwrap(),
        ]);
        for url in [
            "http://127.1/",
            "http://2130706433/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost/",
            "http://10.1.2.3/",
        ] {
            let url = url::Url::parse(url).unwrap();
            assert_eq!(policy.check_url(&url), Ok(()), "{url}");
        }
        for url in [
            "http://10.2.0.1/",
            "http://169.254.169.254/",
            "http://[fd00::1]/",
        ] {
            let url = url::Url::parse(url).unwrap();
            assert!(policy.check_url(&url).is_err(), "{url}");
        }
    }

    #[test]
    fn networks_parse_with_clear_errors() {
        assert_eq!(
            parse_network("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_network("::1").unwrap().to_string(), "::1/128");
        assert_eq!(
            parse_network("192.168.0.7").unwrap().to_string(),
            "192.168.0.7/32"
        );
        let e = parse_network(&"x".repeat(10_000)).unwrap_err();
        assert!(e.len() < 300, "{e}");
    }

    #[test]
    fn bounded_and_redacted() {
        assert_eq!(bounded("abc", 5), "abc");
        assert_eq!(bounded("abcdef", 3), "abc…");
        assert_eq!(bounded("ééé", 2), "éé…");
        let url = url::Url::parse("https://user:secret@example.com/cb?x=1").unwrap();
        assert_eq!(redacted(&url), "https://example.com/cb?x=1");
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let strict = GuardedResolver::new(WebhookPolicy::strict());
        let e = strict.lookup("localhost").await.unwrap_err();
        assert!(e.to_string().contains("localhost"), "{e}");
        let allowing = GuardedResolver::new(WebhookPolicy::allowing([
            parse_network("127.0.0.0/8").unwrap(),
            parse_network("::1/128").unwrap(),
        ]));
        let addrs = allowing.lookup("127.0.0.1").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        let e = strict.lookup("127.0.0.1").await.unwrap_err();
        assert!(matches!(e, EgressError::NoAllowedAddress { .. }), "{e:?}");
        assert!(e.to_string().contains("'127.0.0.1'"), "{e}");
    }
}
