//! What the call core needs to know about a SIP Domain: who may call it, who may register to
//! it, whether it is `Secure`, and which URLs run its calls. The IO shell looks domains up (in the store, or in
//! memory for tests) and hands them in; nothing here reads storage.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

use mediaseal_sip::auth::Ha1Set;
use mediaseal_twiml::HttpMethod;
use url::Url;

/// A SIP Domain (`SD…`) as the call core sees it.
#[derive(Debug, Clone)]
pub struct Domain {
    /// `SD…`.
    pub sid: String,
    /// The owning account (`AC…`).
    pub account_sid: String,
    /// The full domain name (`acme.sip.example.com`); also the digest realm.
    pub name: String,
    /// Seed 004's switch: TLS signalling and SRTP required (else plain RTP required).
    pub secure: bool,
    /// Where the call's TwiML comes from.
    pub voice_url: Option<Url>,
    /// GET or POST.
    pub voice_method: HttpMethod,
    /// Requested when `voice_url` fails.
    pub voice_fallback_url: Option<Url>,
    /// GET or POST.
    pub voice_fallback_method: HttpMethod,
    /// Told when a call ends.
    pub voice_status_callback_url: Option<Url>,
    /// GET or POST.
    pub voice_status_callback_method: HttpMethod,
    /// Addresses allowed to call without credentials (IP access control lists mapped to the
    /// domain's `Auth/Calls`).
    pub ip_ranges: Vec<IpRange>,
    /// Users allowed to call with digest credentials (credential lists mapped to the domain),
    /// stored as HA1 for the realm `name`.
    pub credentials: Vec<DomainCredential>,
    /// `SipRegistration`: phones may REGISTER to the domain.
    pub sip_registration: bool,
    /// Users allowed to REGISTER (credential lists mapped to `Auth/Registrations`), as HA1
    /// for the realm `name`.
    pub registration_credentials: Vec<DomainCredential>,
}

/// One username with its stored digest secrets.
#[derive(Clone)]
pub struct DomainCredential {
    /// The username.
    pub username: String,
    /// `H(username:realm:password)` for MD5 and SHA-256 (never the password).
    pub ha1: Ha1Set,
}

impl fmt::Debug for DomainCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainCredential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An address range in CIDR form (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    /// The network address.
    pub address: IpAddr,
    /// Prefix length (0–32 for IPv4, 0–128 for IPv6).
    pub prefix_len: u8,
}

/// A range that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IP address or CIDR range (e.g. 192.0.2.0/24)")]
pub struct BadIpRange(pub String);

impl IpRange {
    /// Whether `ip` is in the range. IPv4-mapped IPv6 addresses match IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = BadIpRange;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadIpRange(s.to_owned());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let address: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Self {
            address,
            prefix_len,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r: IpRange = "192.0.2.0/24".parse().unwrap();
        assert!(r.contains("192.0.2.77".parse().unwrap()));
        assert!(!r.contains("192.0.3.1".parse().unwrap()));
        assert!(r.contains("::ffff:192.0.2.1".parse().unwrap()));
        let one: IpRange = "127.0.0.1".parse().unwrap();
        assert_eq!(one.prefix_len, 32);
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "nope", "1.2.3.4/x"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
        assert_eq!(r.to_string(), "192.0.2.0/24");
    }
}
