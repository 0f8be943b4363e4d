//! Packet captures for the media tests: `tcpdump` to a pcap file, the UDP datagrams read back,
//! and each payload sorted into the RFC 7983 classes (STUN, DTLS, SRTP, SRTCP), looking inside
//! TURN's ChannelData and Send/Data indications (RFC 8656) for what they carry.

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `tcpdump -U -n -w PATH`; [`Capture::stop`] ends it by its PID.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    /// The pcap file.
    pub path: PathBuf,
}

impl Capture {
    /// Captures `filter` (a pcap filter expression) on `interface`, run under `prefix` (e.g.
    /// `["ip", "netns", "exec", "ns"]`, or nothing), into `path`. Returns once tcpdump listens,
    /// so no early packet escapes.
    #[track_caller]
    pub fn start(prefix: &[&str], interface: &str, filter: &str, path: &Path) -> Self {
        let tcpdump = crate::require_tool("tcpdump", &["--version"]);
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&tcpdump);
                c
            }
            None => Command::new(&tcpdump),
        };
        let mut child = command
            .args(["-i", interface, "-U", "-n", "-w"])
            .arg(path)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tcpdump");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut seen = String::new();
        for _ in 0..5 {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push_str(&line);
            if line.contains("listening") {
                break;
            }
        }
        assert!(seen.contains("listening"), "tcpdump did not start: {seen}");
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
        });
        Self {
            child,
            path: path.to_owned(),
        }
    }

    /// Stops tcpdump (SIGINT, so it flushes) and returns the pcap file.
    pub fn stop(mut self) -> PathBuf {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.path.clone()
    }
}

/// One IPv4 UDP datagram of a capture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Datagram {
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dst_port: u16,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Every IPv4 packet of a pcap file (little-endian, microseconds, as tcpdump writes) as
/// (IP protocol number, UDP datagram if it is one). Ethernet, Linux cooked v1 and v2 links.
pub fn ipv4_packets(path: &Path) -> Vec<(u8, Option<Datagram>)> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(data.len() >= 24, "{}: not a pcap file", path.display());
    let u32_at =
        |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    assert_eq!(
        u32_at(0),
        0xA1B2_C3D4,
        "{}: not a little-endian pcap",
        path.display()
    );
    let link = match u32_at(20) {
        1 => 14,
        113 => 16,
        276 => 20,
        other => panic!("{}: link type {other} not supported", path.display()),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let len = u32_at(at + 8) as usize;
        let start = at + 16;
        at = start + len;
        let Some(ip) = data.get(start + link..at.min(data.len())) else {
            break;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            continue;
        }
        let protocol = ip[9];
        let ihl = usize::from(ip[0] & 15) * 4;
        let udp = (protocol == 17 && ip.len() >= ihl + 8).then(|| Datagram {
            src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            src_port: u16::from_be_bytes([ip[ihl], ip[ihl + 1]]),
            dst_port: u16::from_be_bytes([ip[ihl + 2], ip[ihl + 3]]),
            payload: ip[ihl + 8..].to_vec(),
        });
        out.push((protocol, udp));
    }
    out
}

/// The UDP datagrams of a pcap file.
pub fn datagrams(path: &Path) -> Vec<Datagram> {
    ipv4_packets(path)
        .into_iter()
        .filter_map(|(_, d)| d)
        .collect()
}

/// What a UDP payload is, by its first byte (RFC 7983, with RFC 8656's ChannelData range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// STUN (and TURN's STUN methods).
    Stun,
    /// TURN ChannelData.
    ChannelData,
    /// DTLS.
    Dtls,
    /// SRTP.
    Srtp,
    /// SRTCP.
    Srtcp,
    /// Anything else: not WebRTC media on the wire.
    Other,
}

/// The class of one payload.
pub fn classify(payload: &[u8]) -> Class {
    match payload.first() {
        Some(0..=3) => Class::Stun,
        Some(20..=63) => Class::Dtls,
        Some(64..=79) => Class::ChannelData,
        Some(128..=191) if payload.get(1).is_some_and(|b| (192..=223).contains(b)) => Class::Srtcp,
        Some(128..=191) => Class::Srtp,
        _ => Class::Other,
    }
}

/// What a TURN packet carries: the data of a ChannelData message, or the DATA attribute of a
/// Send or Data indication. `None` for other STUN messages and non-TURN payloads.
pub fn turn_inner(payload: &[u8]) -> Option<&[u8]> {
    match classify(payload) {
        Class::ChannelData => {
            let len = usize::from(u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]));
            payload.get(4..4 + len)
        }
        Class::Stun => {
            // Send indication 0x0016, Data indication 0x0017.
            let method = u16::from_be_bytes([payload[0], *payload.get(1)?]);
            if method != 0x0016 && method != 0x0017 {
                return None;
            }
            let mut at = 20;
            while at + 4 <= payload.len() {
                let kind = u16::from_be_bytes([payload[at], payload[at + 1]]);
                let len = usize::from(u16::from_be_bytes([payload[at + 2], payload[at + 3]]));
                if kind == 0x0013 {
                    return payload.get(at + 4..at + 4 + len);
                }
                at += 4 + len.div_ceil(4) * 4;
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_turn_framing() {
        assert_eq!(classify(&[0x00, 0x01]), Class::Stun);
        assert_eq!(classify(&[22, 254, 253]), Class::Dtls);
        assert_eq!(classify(&[0x80, 0]), Class::Srtp);
        assert_eq!(classify(&[0x80, 200]), Class::Srtcp);
        assert_eq!(classify(b"hello"), Class::Other);
        let channel = [0x40, 0x00, 0x00, 0x02, 0x80, 0x00, 0xff];
        assert_eq!(turn_inner(&channel), Some(&[0x80, 0x00][..]));
        let mut send = vec![0x00, 0x16, 0x00, 0x08];
        send.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        send.extend_from_slice(&[0; 12]);
        send.extend_from_slice(&[0x00, 0x13, 0x00, 0x03, 22, 1, 2, 0]);
        assert_eq!(turn_inner(&send), Some(&[22, 1, 2][..]));
        assert_eq!(turn_inner(&[0x00, 0x01, 0, 0]), None);
    }
}
