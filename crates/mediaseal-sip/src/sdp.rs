//! SDP (RFC 8866): parsing and serializing session descriptions, typed views of the attributes
//! a voice call uses (rtpmap, fmtp, ptime, direction, rtcp, rtcp-mux, crypto), and offer/answer
//! builders (RFC 3264) for G.711 μ-law (PT 0), A-law (PT 8) and telephone-event (RFC 4733),
//! with or without SDES `a=crypto` lines.
//!
//! The parser accepts CRLF or LF line ends and session-level lines in any order before the
//! first `m=`; the serializer writes RFC 8866 order with CRLF, so parse → serialize → parse is
//! the identity. `a=crypto` values are parsed by [`mediaseal_srtp::sdes`]; `Debug` of a
//! description redacts their keys.
//!
//! ```
//! use mediaseal_sip::sdp::{AudioCodec, AudioConfig, SessionDescription, audio_answer};
//!
//! let offer = SessionDescription::parse(
//!     b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
//!       m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
//! )?;
//! let cfg = AudioConfig::new("198.51.100.1".parse()?, 30000);
//! let answer = audio_answer(&offer, 0, &cfg, None)?;
//! assert_eq!(answer.payload_type, 8); // the offerer's first choice that we support
//! assert_eq!(answer.telephone_event, Some(101));
//! assert_eq!(answer.sdp.media[0].formats, ["8", "0", "101"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use std::net::{IpAddr, SocketAddr};

use mediaseal_srtp::sdes::{CryptoAttribute, SdesError};

/// Largest SDP body parsed.
pub const MAX_SDP_SIZE: usize = 32 * 1024;
/// Most media sections parsed.
pub const MAX_MEDIA: usize = 32;
/// Most lines parsed.
pub const MAX_LINES: usize = 1024;

/// Why an SDP body was rejected; `line` is 1-based (0 when not about one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {kind}")]
pub struct SdpError {
    /// The line number.
    pub line: usize,
    /// What was wrong.
    pub kind: SdpErrorKind,
}

/// What was wrong with an SDP body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpErrorKind {
    /// Larger than [`MAX_SDP_SIZE`], or more than [`MAX_LINES`] lines or [`MAX_MEDIA`] media.
    #[error("description too large")]
    TooLarge,
    /// Not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// A line that is not `<letter>=<value>`.
    #[error("expected <type>=<value>")]
    BadLine,
    /// The first line is not `v=0`.
    #[error("the first line must be v=0")]
    BadVersion,
    /// `o=` missing or malformed.
    #[error("bad or missing o= line")]
    BadOrigin,
    /// `s=` missing.
    #[error("missing s= line")]
    MissingSessionName,
    /// `c=` malformed.
    #[error("bad c= line")]
    BadConnection,
    /// `b=` malformed.
    #[error("bad b= line")]
    BadBandwidth,
    /// `t=` malformed.
    #[error("bad t= line")]
    BadTiming,
    /// `m=` malformed.
    #[error("bad m= line")]
    BadMedia,
    /// A line type not allowed where it appears.
    #[error("unexpected {0}= line")]
    Unexpected(char),
    /// An attribute name that is not a token.
    #[error("bad a= line")]
    BadAttribute,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-` when none).
    pub username: String,
    /// Session id (a numeric string).
    pub session_id: String,
    /// Session version (a numeric string; increment when the description changes).
    pub session_version: String,
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// Address.
    pub address: String,
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`, `IP6`).
    pub addr_type: String,
    /// Address (may carry `/ttl` for multicast).
    pub address: String,
}

impl Connection {
    /// `IN IP4|IP6 <ip>`.
    pub fn for_ip(ip: IpAddr) -> Self {
        Self {
            net_type: "IN".to_owned(),
            addr_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, if it is a unicast literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`, …
    pub bw_type: String,
    /// The value.
    pub bandwidth: u64,
}

/// `t=<start> <stop>` and its `r=` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds, 0 = unbounded).
    pub start: u64,
    /// Stop time.
    pub stop: u64,
    /// `r=` lines, verbatim.
    pub repeats: Vec<String>,
}

/// `a=<name>[:<value>]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Value, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A flag attribute (`a=rtcp-mux`).
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
        }
    }
    /// A valued attribute (`a=ptime:20`).
    pub fn value(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.value, self.name.eq_ignore_ascii_case("crypto")) {
            (Some(_), true) => write!(f, "a=crypto:<redacted>"),
            (Some(v), false) => write!(f, "a={}:{v}", self.name),
            (None, _) => write!(f, "a={}", self.name),
        }
    }
}

/// Media direction (RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `sendrecv` (the default).
    SendRecv,
    /// `sendonly`
    SendOnly,
    /// `recvonly`
    RecvOnly,
    /// `inactive`
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction an answer uses for this offered direction.
    pub fn answer(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    fn from_attributes(attrs: &[Attribute]) -> Option<Self> {
        attrs.iter().find_map(|a| match a.name.as_str() {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        })
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written.
    pub encoding: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels, if given.
    pub channels: Option<u16>,
}

impl RtpMap {
    fn parse(value: &str) -> Option<Self> {
        let (pt, rest) = value.split_once(' ')?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next()?.to_owned();
        let clock_rate = parts.next()?.parse().ok()?;
        let channels = match parts.next() {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        Some(Self {
            payload_type: pt.parse().ok()?,
            encoding,
            clock_rate,
            channels,
        })
    }
}

/// One media section (`m=` and its lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, …
    pub media: String,
    /// Port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// `/<count>` after the port, if given.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, …
    pub protocol: String,
    /// Formats (RTP payload type numbers for RTP profiles).
    pub formats: Vec<String>,
    /// `i=`
    pub information: Option<String>,
    /// `c=` lines.
    pub connections: Vec<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` (obsolete; kept verbatim).
    pub key: Option<String>,
    /// `a=` lines.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// The first value of attribute `name`: `None` if absent, `Some(None)` for a flag.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_deref())
    }

    /// Every value of attribute `name`.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.name == name)
            .filter_map(|a| a.value.as_deref())
    }

    /// The `a=rtpmap` lines that parse.
    pub fn rtpmaps(&self) -> Vec<RtpMap> {
        self.attribute_values("rtpmap")
            .filter_map(RtpMap::parse)
            .collect()
    }

    /// The rtpmap of payload type `pt`, or the RFC 3551 static mapping for 0 and 8.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        self.rtpmaps()
            .into_iter()
            .find(|m| m.payload_type == pt)
            .or_else(|| AudioCodec::from_static_pt(pt).map(AudioCodec::rtpmap))
    }

    /// The `a=fmtp` parameters of payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attribute_values("fmtp").find_map(|v| {
            let (p, params) = v.split_once(' ')?;
            (p.parse::<u8>().ok()? == pt).then_some(params.trim())
        })
    }

    /// `a=ptime`, in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")?.and_then(|v| v.trim().parse().ok())
    }

    /// The media-level direction attribute, if any.
    pub fn direction_attribute(&self) -> Option<Direction> {
        Direction::from_attributes(&self.attributes)
    }

    /// `a=rtcp:<port>[ <nettype> <addrtype> <address>]` (RFC 3605).
    pub fn rtcp(&self) -> Option<(u16, Option<IpAddr>)> {
        let v = self.attribute("rtcp")??;
        let mut it = v.split_whitespace();
        let port = it.next()?.parse().ok()?;
        let addr = it.nth(2).and_then(|a| a.parse().ok());
        Some((port, addr))
    }

    /// Whether `a=rtcp-mux` is present (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.attribute("rtcp-mux").is_some()
    }

    /// The `a=crypto` lines, parsed (RFC 4568), in offer order.
    pub fn crypto(&self) -> Vec<Result<CryptoAttribute, SdesError>> {
        self.attribute_values("crypto")
            .map(CryptoAttribute::parse)
            .collect()
    }

    /// Whether the protocol is an SRTP profile keyed by SDES (`RTP/SAVP`, `RTP/SAVPF`).
    pub fn is_savp(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("RTP/SAVP")
            || self.protocol.eq_ignore_ascii_case("RTP/SAVPF")
    }

    /// Whether the protocol is plain RTP (`RTP/AVP`, `RTP/AVPF`).
    pub fn is_avp(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("RTP/AVP")
            || self.protocol.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// Whether the protocol is DTLS-SRTP (`UDP/TLS/RTP/SAVP[F]`).
    pub fn is_dtls_srtp(&self) -> bool {
        let p = self.protocol.to_ascii_uppercase();
        p == "UDP/TLS/RTP/SAVP" || p == "UDP/TLS/RTP/SAVPF"
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`
    pub origin: Origin,
    /// `s=`
    pub session_name: String,
    /// `i=`
    pub information: Option<String>,
    /// `u=`
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines.
    pub timings: Vec<Timing>,
    /// `z=`, verbatim.
    pub time_zones: Option<String>,
    /// Session-level `k=`, verbatim.
    pub key: Option<String>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Media sections.
    pub media: Vec<MediaDescription>,
}

fn err(line: usize, kind: SdpErrorKind) -> SdpError {
    SdpError { line, kind }
}

fn parse_connection(v: &str) -> Option<Connection> {
    let mut it = v.split_whitespace();
    let c = Connection {
        net_type: it.next()?.to_owned(),
        addr_type: it.next()?.to_owned(),
        address: it.next()?.to_owned(),
    };
    it.next().is_none().then_some(c)
}

fn parse_bandwidth(v: &str) -> Option<Bandwidth> {
    let (t, n) = v.split_once(':')?;
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(Bandwidth {
        bw_type: t.to_owned(),
        bandwidth: n.trim().parse().ok()?,
    })
}

fn parse_attribute(v: &str) -> Option<Attribute> {
    let (name, value) = match v.split_once(':') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (v, None),
    };
    crate::message::is_token(name).then(|| Attribute {
        name: name.to_owned(),
        value,
    })
}

fn parse_media(v: &str) -> Option<MediaDescription> {
    let mut it = v.split_whitespace();
    let media = it.next()?.to_owned();
    let port_text = it.next()?;
    let (port, port_count) = match port_text.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_text.parse().ok()?, None),
    };
    let protocol = it.next()?.to_owned();
    let formats: Vec<String> = it.map(str::to_owned).collect();
    if !crate::message::is_token(&media) || protocol.is_empty() {
        return None;
    }
    Some(MediaDescription {
        media,
        port,
        port_count,
        protocol,
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    })
}

impl SessionDescription {
    /// Parses an SDP body.
    pub fn parse(bytes: &[u8]) -> Result<Self, SdpError> {
        if bytes.len() > MAX_SDP_SIZE {
            return Err(err(0, SdpErrorKind::TooLarge));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| err(0, SdpErrorKind::NotUtf8))?;
        let mut lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.is_empty());
        match lines.next() {
            Some((_, "v=0")) => {}
            Some((n, _)) => return Err(err(n, SdpErrorKind::BadVersion)),
            None => return Err(err(1, SdpErrorKind::BadVersion)),
        }
        let mut origin = None;
        let mut sd = Self {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: String::new(),
                net_type: String::new(),
                addr_type: String::new(),
                address: String::new(),
            },
            session_name: String::new(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: Vec::new(),
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut session_name = None;
        for (count, (n, line)) in lines.enumerate() {
            if count >= MAX_LINES {
                return Err(err(n, SdpErrorKind::TooLarge));
            }
            let bytes = line.as_bytes();
            let (Some(&t), Some(&b'=')) = (bytes.first(), bytes.get(1)) else {
                return Err(err(n, SdpErrorKind::BadLine));
            };
            if !t.is_ascii_lowercase() {
                return Err(err(n, SdpErrorKind::BadLine));
            }
            let v = line.get(2..).unwrap_or_default();
            let t = t as char;
            if t == 'm' {
                if sd.media.len() >= MAX_MEDIA {
                    return Err(err(n, SdpErrorKind::TooLarge));
                }
                sd.media
                    .push(parse_media(v).ok_or(err(n, SdpErrorKind::BadMedia))?);
                continue;
            }
            if let Some(m) = sd.media.last_mut() {
                match t {
                    'i' if m.information.is_none() => m.information = Some(v.to_owned()),
                    'c' => m
                        .connections
                        .push(parse_connection(v).ok_or(err(n, SdpErrorKind::BadConnection))?),
                    'b' => m
                        .bandwidths
                        .push(parse_bandwidth(v).ok_or(err(n, SdpErrorKind::BadBandwidth))?),
                    'k' if m.key.is_none() => m.key = Some(v.to_owned()),
                    'a' => m
                        .attributes
                        .push(parse_attribute(v).ok_or(err(n, SdpErrorKind::BadAttribute))?),
                    other => return Err(err(n, SdpErrorKind::Unexpected(other))),
                }
                continue;
            }
            match t {
                'o' if origin.is_none() => {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    let [u, id, ver, nt, at, addr] = f.as_slice() else {
                        return Err(err(n, SdpErrorKind::BadOrigin));
                    };
                    origin = Some(Origin {
                        username: (*u).to_owned(),
                        session_id: (*id).to_owned(),
                        session_version: (*ver).to_owned(),
                        net_type: (*nt).to_owned(),
                        addr_type: (*at).to_owned(),
                        address: (*addr).to_owned(),
                    });
                }
                's' if session_name.is_none() => session_name = Some(v.to_owned()),
                'i' if sd.information.is_none() => sd.information = Some(v.to_owned()),
                'u' if sd.uri.is_none() => sd.uri = Some(v.to_owned()),
                'e' => sd.emails.push(v.to_owned()),
                'p' => sd.phones.push(v.to_owned()),
                'c' if sd.connection.is_none() => {
                    sd.connection =
                        Some(parse_connection(v).ok_or(err(n, SdpErrorKind::BadConnection))?);
                }
                'b' => sd
                    .bandwidths
                    .push(parse_bandwidth(v).ok_or(err(n, SdpErrorKind::BadBandwidth))?),
                't' => {
                    let mut it = v.split_whitespace();
                    let (Some(Ok(start)), Some(Ok(stop)), None) = (
                        it.next().map(str::parse),
                        it.next().map(str::parse),
                        it.next(),
                    ) else {
                        return Err(err(n, SdpErrorKind::BadTiming));
                    };
                    sd.timings.push(Timing {
                        start,
                        stop,
                        repeats: Vec::new(),
                    });
                }
                'r' => sd
                    .timings
                    .last_mut()
                    .ok_or(err(n, SdpErrorKind::Unexpected('r')))?
                    .repeats
                    .push(v.to_owned()),
                'z' if sd.time_zones.is_none() => sd.time_zones = Some(v.to_owned()),
                'k' if sd.key.is_none() => sd.key = Some(v.to_owned()),
                'a' => sd
                    .attributes
                    .push(parse_attribute(v).ok_or(err(n, SdpErrorKind::BadAttribute))?),
                other => return Err(err(n, SdpErrorKind::Unexpected(other))),
            }
        }
        sd.origin = origin.ok_or(err(0, SdpErrorKind::BadOrigin))?;
        sd.session_name = session_name.ok_or(err(0, SdpErrorKind::MissingSessionName))?;
        Ok(sd)
    }

    /// The serialized body (CRLF line ends, RFC 8866 order). Contains SDES keys if the
    /// description carries `a=crypto` lines: send it over TLS only, never log it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        let mut line = |t: char, v: &str| {
            s.push(t);
            s.push('=');
            s.push_str(v);
            s.push_str("\r\n");
        };
        line('v', "0");
        let o = &self.origin;
        line(
            'o',
            &format!(
                "{} {} {} {} {} {}",
                o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
            ),
        );
        line('s', &self.session_name);
        if let Some(i) = &self.information {
            line('i', i);
        }
        if let Some(u) = &self.uri {
            line('u', u);
        }
        for e in &self.emails {
            line('e', e);
        }
        for p in &self.phones {
            line('p', p);
        }
        if let Some(c) = &self.connection {
            line('c', &format_connection(c));
        }
        for b in &self.bandwidths {
            line('b', &format!("{}:{}", b.bw_type, b.bandwidth));
        }
        for t in &self.timings {
            line('t', &format!("{} {}", t.start, t.stop));
            for r in &t.repeats {
                line('r', r);
            }
        }
        if let Some(z) = &self.time_zones {
            line('z', z);
        }
        if let Some(k) = &self.key {
            line('k', k);
        }
        for a in &self.attributes {
            line('a', &format_attribute(a));
        }
        for m in &self.media {
            let port = match m.port_count {
                Some(n) => format!("{}/{n}", m.port),
                None => m.port.to_string(),
            };
            let mut mline = format!("{} {port} {}", m.media, m.protocol);
            for f in &m.formats {
                mline.push(' ');
                mline.push_str(f);
            }
            line('m', &mline);
            if let Some(i) = &m.information {
                line('i', i);
            }
            for c in &m.connections {
                line('c', &format_connection(c));
            }
            for b in &m.bandwidths {
                line('b', &format!("{}:{}", b.bw_type, b.bandwidth));
            }
            if let Some(k) = &m.key {
                line('k', k);
            }
            for a in &m.attributes {
                line('a', &format_attribute(a));
            }
        }
        s.into_bytes()
    }

    /// The effective direction of media section `index` (media level, else session level,
    /// else sendrecv).
    pub fn direction(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(MediaDescription::direction_attribute)
            .or_else(|| Direction::from_attributes(&self.attributes))
            .unwrap_or(Direction::SendRecv)
    }

    /// Where to send RTP for media section `index`: its `c=` (else the session's) and port.
    /// `None` for port 0 or a non-literal address.
    pub fn rtp_destination(&self, index: usize) -> Option<SocketAddr> {
        let m = self.media.get(index)?;
        if m.port == 0 {
            return None;
        }
        let c = m.connections.first().or(self.connection.as_ref())?;
        Some(SocketAddr::new(c.ip()?, m.port))
    }

    /// Indices of audio sections with a non-zero port, in order.
    pub fn active_audio(&self) -> impl Iterator<Item = usize> + '_ {
        self.media
            .iter()
            .enumerate()
            .filter(|(_, m)| m.media.eq_ignore_ascii_case("audio") && m.port != 0)
            .map(|(i, _)| i)
    }
}

fn format_connection(c: &Connection) -> String {
    format!("{} {} {}", c.net_type, c.addr_type, c.address)
}

fn format_attribute(a: &Attribute) -> String {
    match &a.value {
        Some(v) => format!("{}:{v}", a.name),
        None => a.name.clone(),
    }
}

/// The audio codecs we offer and accept (no transcoding: the relay passes them through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl AudioCodec {
    /// The RFC 3551 static payload type.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The encoding name.
    pub fn encoding(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }

    fn rtpmap(self) -> RtpMap {
        RtpMap {
            payload_type: self.static_payload_type(),
            encoding: self.encoding().to_owned(),
            clock_rate: 8000,
            channels: None,
        }
    }

    fn from_static_pt(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Self::Pcmu),
            8 => Some(Self::Pcma),
            _ => None,
        }
    }

    fn from_rtpmap(m: &RtpMap) -> Option<Self> {
        let mono = m.channels.is_none_or(|c| c == 1);
        if m.clock_rate != 8000 || !mono {
            return None;
        }
        [Self::Pcmu, Self::Pcma]
            .into_iter()
            .find(|c| c.encoding().eq_ignore_ascii_case(&m.encoding))
    }
}

/// Our side of an audio offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    /// The address put in `o=` and `c=`.
    pub address: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// Codecs in our order of preference (offers list them in this order; answers keep the
    /// offerer's order among these).
    pub codecs: Vec<AudioCodec>,
    /// The telephone-event payload type we offer (answers use the offerer's). `None` to
    /// leave DTMF events out.
    pub telephone_event: Option<u8>,
    /// `a=ptime` to add, in milliseconds.
    pub ptime: Option<u32>,
    /// Offer `a=rtcp-mux` / accept it when offered.
    pub rtcp_mux: bool,
    /// `o=` username.
    pub username: String,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
}

impl AudioConfig {
    /// PCMU and PCMA, telephone-event on PT 101, ptime 20, rtcp-mux accepted, session id and
    /// version 1.
    pub fn new(address: IpAddr, port: u16) -> Self {
        Self {
            address,
            port,
            codecs: vec![AudioCodec::Pcmu, AudioCodec::Pcma],
            telephone_event: Some(101),
            ptime: Some(20),
            rtcp_mux: true,
            username: "mediaseal".to_owned(),
            session_id: 1,
            session_version: 1,
        }
    }

    fn skeleton(&self) -> SessionDescription {
        let c = Connection::for_ip(self.address);
        SessionDescription {
            origin: Origin {
                username: self.username.clone(),
                session_id: self.session_id.to_string(),
                session_version: self.session_version.to_string(),
                net_type: c.net_type.clone(),
                addr_type: c.addr_type.clone(),
                address: c.address.clone(),
            },
            session_name: "-".to_owned(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: Some(c),
            bandwidths: Vec::new(),
            timings: vec![Timing {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }
}

/// An audio offer: one `m=audio` section, `RTP/SAVP` with the given `a=crypto` lines (in order
/// of preference) or `RTP/AVP` when there are none.
pub fn audio_offer(cfg: &AudioConfig, crypto: &[CryptoAttribute]) -> SessionDescription {
    let mut sd = cfg.skeleton();
    let mut formats: Vec<String> = cfg
        .codecs
        .iter()
        .map(|c| c.static_payload_type().to_string())
        .collect();
    let mut attributes: Vec<Attribute> = cfg
        .codecs
        .iter()
        .map(|c| {
            Attribute::value(
                "rtpmap",
                format!("{} {}/8000", c.static_payload_type(), c.encoding()),
            )
        })
        .collect();
    if let Some(pt) = cfg.telephone_event {
        formats.push(pt.to_string());
        attributes.push(Attribute::value(
            "rtpmap",
            format!("{pt} telephone-event/8000"),
        ));
        attributes.push(Attribute::value("fmtp", format!("{pt} 0-16")));
    }
    if let Some(p) = cfg.ptime {
        attributes.push(Attribute::value("ptime", p.to_string()));
    }
    if cfg.rtcp_mux {
        attributes.push(Attribute::flag("rtcp-mux"));
    }
    attributes.push(Attribute::flag(Direction::SendRecv.as_str()));
    for c in crypto {
        attributes.push(Attribute::value("crypto", c.to_string()));
    }
    sd.media.push(MediaDescription {
        media: "audio".to_owned(),
        port: cfg.port,
        port_count: None,
        protocol: if crypto.is_empty() {
            "RTP/AVP"
        } else {
            "RTP/SAVP"
        }
        .to_owned(),
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes,
    });
    sd
}

/// Why an answer could not be built (each maps to `488 Not Acceptable Here`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// `media_index` is not an active audio section of the offer.
    #[error("media section {0} is not an active audio stream")]
    NotAudio(usize),
    /// No PCMU/PCMA in the offered audio section.
    #[error("no common audio codec (we support PCMU and PCMA)")]
    NoCommonCodec,
    /// The section is SRTP but no `a=crypto` answer line was given.
    #[error("the offer is RTP/SAVP but no crypto attribute was given for the answer")]
    CryptoRequired,
    /// A crypto answer line was given for a plain RTP section.
    #[error("a crypto attribute was given but the offer is plain RTP")]
    CryptoNotOffered,
}

impl AnswerError {
    /// The SIP Warning code (RFC 3261 §20.43): 304 media type not available, 305 incompatible
    /// media format, 302 incompatible transport protocol.
    pub fn warn_code(&self) -> u16 {
        match self {
            Self::NotAudio(_) => 304,
            Self::NoCommonCodec => 305,
            Self::CryptoRequired | Self::CryptoNotOffered => 302,
        }
    }
}

/// An answer and what was negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioAnswer {
    /// The answer description.
    pub sdp: SessionDescription,
    /// The answered audio section.
    pub media_index: usize,
    /// The codec we will send (the offerer's first supported one).
    pub codec: AudioCodec,
    /// Its payload type (as the offerer numbered it).
    pub payload_type: u8,
    /// The offerer's telephone-event payload type, if both sides use events.
    pub telephone_event: Option<u8>,
    /// Where to send RTP, from the offer.
    pub remote_rtp: Option<SocketAddr>,
    /// Whether RTP and RTCP share the port (both sides agreed to rtcp-mux).
    pub rtcp_mux: bool,
}

/// Answers `offer` (RFC 3264 §6): accepts audio section `media_index` (choose it with the
/// [`policy`](crate::policy)) with the offerer's supported codecs in the offerer's order and
/// telephone-event if offered, echoes the protocol, reverses the direction, and rejects every
/// other section with port 0. `crypto` is our `a=crypto` answer line for an `RTP/SAVP` offer
/// (from [`mediaseal_srtp::negotiate::answer`]).
pub fn audio_answer(
    offer: &SessionDescription,
    media_index: usize,
    cfg: &AudioConfig,
    crypto: Option<&CryptoAttribute>,
) -> Result<AudioAnswer, AnswerError> {
    let om = offer
        .media
        .get(media_index)
        .filter(|m| m.media.eq_ignore_ascii_case("audio") && m.port != 0)
        .ok_or(AnswerError::NotAudio(media_index))?;
    match (om.is_savp(), crypto.is_some()) {
        (true, false) => return Err(AnswerError::CryptoRequired),
        (false, true) => return Err(AnswerError::CryptoNotOffered),
        _ => {}
    }
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    let mut first: Option<(AudioCodec, u8)> = None;
    let mut telephone_event = None;
    for f in &om.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        let Some(map) = om.rtpmap(pt) else { continue };
        if let Some(codec) = AudioCodec::from_rtpmap(&map).filter(|c| cfg.codecs.contains(c)) {
            first.get_or_insert((codec, pt));
            formats.push(f.clone());
            attributes.push(Attribute::value(
                "rtpmap",
                format!("{pt} {}/8000", codec.encoding()),
            ));
        } else if map.encoding.eq_ignore_ascii_case("telephone-event")
            && map.clock_rate == 8000
            && cfg.telephone_event.is_some()
            && telephone_event.is_none()
        {
            telephone_event = Some(pt);
            formats.push(f.clone());
            attributes.push(Attribute::value(
                "rtpmap",
                format!("{pt} telephone-event/8000"),
            ));
            attributes.push(Attribute::value(
                "fmtp",
                format!("{pt} {}", om.fmtp(pt).unwrap_or("0-15")),
            ));
        }
    }
    let (codec, payload_type) = first.ok_or(AnswerError::NoCommonCodec)?;
    if let Some(p) = cfg.ptime {
        attributes.push(Attribute::value("ptime", p.to_string()));
    }
    let rtcp_mux = cfg.rtcp_mux && om.rtcp_mux();
    if rtcp_mux {
        attributes.push(Attribute::flag("rtcp-mux"));
    }
    attributes.push(Attribute::flag(
        offer.direction(media_index).answer().as_str(),
    ));
    if let Some(c) = crypto {
        attributes.push(Attribute::value("crypto", c.to_string()));
    }
    let mut sd = cfg.skeleton();
    for (i, m) in offer.media.iter().enumerate() {
        if i == media_index {
            sd.media.push(MediaDescription {
                media: om.media.clone(),
                port: cfg.port,
                port_count: None,
                protocol: om.protocol.clone(),
                formats: formats.clone(),
                information: None,
                connections: Vec::new(),
                bandwidths: Vec::new(),
                key: None,
                attributes: attributes.clone(),
            });
        } else {
            sd.media.push(MediaDescription {
                media: m.media.clone(),
                port: 0,
                port_count: None,
                protocol: m.protocol.clone(),
                formats: m.formats.clone(),
                information: None,
                connections: Vec::new(),
                bandwidths: Vec::new(),
                key: None,
                attributes: Vec::new(),
            });
        }
    }
    Ok(AudioAnswer {
        sdp: sd,
        media_index,
        codec,
        payload_type,
        telephone_event,
        remote_rtp: offer.rtp_destination(media_index),
        rtcp_mux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediaseal_srtp::{MasterKey, SrtpProfile};

    const BARESIP: &str = "v=0\r\n\
o=- 1849284 1849284 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 10270 RTP/SAVP 0 101\r\n\
b=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=ssrc:1234 cname:abc\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31\r\n\
m=video 0 RTP/SAVP 96\r\n";

    #[test]
    fn parses_and_round_trips_a_baresip_offer() {
        let sd = SessionDescription::parse(BARESIP.as_bytes()).unwrap();
        assert_eq!(sd.origin.session_id, "1849284");
        assert_eq!(sd.media.len(), 2);
        let m = &sd.media[0];
        assert!(m.is_savp() && !m.is_avp());
        assert_eq!(m.rtpmap(0).unwrap().encoding, "PCMU");
        assert_eq!(m.rtpmap(8).unwrap().encoding, "PCMA");
        assert_eq!(m.fmtp(101), Some("0-15"));
        assert!(m.rtcp_mux());
        assert_eq!(m.bandwidths[0].bandwidth, 64);
        let crypto = m.crypto();
        assert_eq!(crypto.len(), 1);
        assert_eq!(crypto[0].as_ref().unwrap().tag, 1);
        assert_eq!(sd.direction(0), Direction::SendRecv);
        assert_eq!(
            sd.rtp_destination(0),
            Some("127.0.0.1:10270".parse().unwrap())
        );
        assert_eq!(sd.active_audio().collect::<Vec<_>>(), [0]);
        assert_eq!(sd.to_bytes(), BARESIP.as_bytes());
        assert!(!format!("{sd:?}").contains("PS1uQ"), "Debug leaks the key");
    }

    #[test]
    fn rejects_malformed_descriptions() {
        let cases: &[(&str, SdpErrorKind)] = &[
            ("v=1\r\n", SdpErrorKind::BadVersion),
            ("v=0\r\ns=-\r\n", SdpErrorKind::BadOrigin),
            ("v=0\r\no=- 1 1 IN IP4\r\ns=-\r\n", SdpErrorKind::BadOrigin),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\n",
                SdpErrorKind::MissingSessionName,
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nm=audio x RTP/AVP 0\r\n",
                SdpErrorKind::BadMedia,
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0\r\n",
                SdpErrorKind::BadTiming,
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nbogus\r\n",
                SdpErrorKind::BadLine,
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n",
                SdpErrorKind::Unexpected('t'),
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\na=bad name\r\n",
                SdpErrorKind::BadAttribute,
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(
                &SessionDescription::parse(text.as_bytes()).unwrap_err().kind,
                kind,
                "{text}"
            );
        }
        assert_eq!(
            SessionDescription::parse(&vec![b'v'; MAX_SDP_SIZE + 1])
                .unwrap_err()
                .kind,
            SdpErrorKind::TooLarge
        );
    }

    #[test]
    fn offer_and_answer_with_sdes() {
        let key = MasterKey::generate(SrtpProfile::AesCm128HmacSha1_80).unwrap();
        let ours = CryptoAttribute::new(1, &key);
        let cfg = AudioConfig::new("192.0.2.1".parse().unwrap(), 40000);
        let offer = audio_offer(&cfg, std::slice::from_ref(&ours));
        let text = String::from_utf8(offer.to_bytes()).unwrap();
        assert!(
            text.contains("m=audio 40000 RTP/SAVP 0 8 101\r\n"),
            "{text}"
        );
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert_eq!(SessionDescription::parse(text.as_bytes()).unwrap(), offer);

        let theirs = SessionDescription::parse(BARESIP.as_bytes()).unwrap();
        let answer = audio_answer(&theirs, 0, &cfg, Some(&ours)).unwrap();
        assert_eq!((answer.codec, answer.payload_type), (AudioCodec::Pcmu, 0));
        assert_eq!(answer.telephone_event, Some(101));
        assert!(answer.rtcp_mux);
        let m = &answer.sdp.media[0];
        assert_eq!(m.protocol, "RTP/SAVP");
        assert_eq!(m.formats, ["0", "101"]);
        assert_eq!(m.crypto().len(), 1);
        assert_eq!(answer.sdp.media[1].port, 0);
        assert_eq!(answer.sdp.media.len(), 2);
        assert_eq!(
            audio_answer(&theirs, 0, &cfg, None).unwrap_err(),
            AnswerError::CryptoRequired
        );
        assert_eq!(
            audio_answer(&theirs, 1, &cfg, Some(&ours)).unwrap_err(),
            AnswerError::NotAudio(1)
        );
    }

    #[test]
    fn answer_keeps_offer_order_and_reverses_direction() {
        let offer = SessionDescription::parse(
            b"v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 18 8 0\na=sendonly\n",
        )
        .unwrap();
        let mut cfg = AudioConfig::new("10.0.0.2".parse().unwrap(), 6000);
        cfg.rtcp_mux = false;
        let a = audio_answer(&offer, 0, &cfg, None).unwrap();
        assert_eq!(a.sdp.media[0].formats, ["8", "0"]);
        assert_eq!(a.codec, AudioCodec::Pcma);
        assert_eq!(a.telephone_event, None);
        assert_eq!(a.sdp.direction(0), Direction::RecvOnly);
        let g729 = SessionDescription::parse(
            b"v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 18\n",
        )
        .unwrap();
        assert_eq!(
            audio_answer(&g729, 0, &cfg, None).unwrap_err(),
            AnswerError::NoCommonCodec
        );
    }
}
