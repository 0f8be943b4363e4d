//! Known-answer vectors from `testdata/srtp/vectors.json` (RFC 3711 B.2/B.3, libsrtp's reference
//! packets, RFC 6188, RFC 7714).

use std::collections::BTreeMap;
use std::path::PathBuf;

use mediaseal_lc::ctr::AesCtr;
use mediaseal_srtp::internal::{self, RawKeys};
use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, MasterKey, OutboundSession, SessionConfig, SrtpProfile,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    keystream: Vec<Keystream>,
    kdf: Vec<Kdf>,
    packets: Vec<Packet>,
}

#[derive(Deserialize)]
struct Keystream {
    source: String,
    key: String,
    iv: String,
    keystream: String,
}

#[derive(Deserialize)]
struct Kdf {
    source: String,
    profile: String,
    master_key: String,
    master_salt: String,
    labels: BTreeMap<u8, String>,
}

#[derive(Deserialize)]
struct Packet {
    source: String,
    profile: String,
    master_key: Option<String>,
    master_salt: Option<String>,
    session_key: Option<String>,
    session_salt: Option<String>,
    kind: String,
    srtcp_index: Option<u32>,
    plaintext: String,
    protected: String,
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn load() -> Vectors {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/srtp/vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn keystreams() {
    let v = load();
    assert!(!v.keystream.is_empty());
    for k in v.keystream {
        let ctr = AesCtr::new(&hex(&k.key)).unwrap();
        let iv: [u8; 16] = hex(&k.iv).try_into().unwrap();
        let want = hex(&k.keystream);
        let mut got = vec![0u8; want.len()];
        ctr.keystream(&iv, &mut got);
        assert_eq!(got, want, "{}", k.source);
    }
}

#[test]
fn key_derivation() {
    let v = load();
    assert!(!v.kdf.is_empty());
    for k in v.kdf {
        let profile: SrtpProfile = k.profile.parse().unwrap();
        let master = MasterKey::new(profile, &hex(&k.master_key), &hex(&k.master_salt)).unwrap();
        for (label, want) in &k.labels {
            let want = hex(want);
            let mut got = vec![0u8; want.len()];
            internal::derive_session_key(&master, *label, &mut got);
            assert_eq!(got, want, "{} label {label}", k.source);
        }
    }
}

fn sessions(p: &Packet) -> (OutboundSession, InboundSession) {
    let profile: SrtpProfile = p.profile.parse().unwrap();
    let config = SessionConfig::default();
    if let (Some(k), Some(s)) = (&p.master_key, &p.master_salt) {
        let key = MasterKey::new(profile, &hex(k), &hex(s)).unwrap();
        return (
            OutboundSession::new(&key, &config).unwrap(),
            InboundSession::new(&key, &config).unwrap(),
        );
    }
    let (k, s) = (
        hex(p.session_key.as_ref().unwrap()),
        hex(p.session_salt.as_ref().unwrap()),
    );
    let raw = RawKeys {
        enc: &k,
        auth: &[],
        salt: &s,
    };
    (
        internal::outbound_from_session_keys(profile, raw, raw, &config).unwrap(),
        internal::inbound_from_session_keys(profile, raw, raw, &config).unwrap(),
    )
}

#[test]
fn full_packets_protect_and_unprotect() {
    let v = load();
    assert!(v.packets.len() >= 10);
    for p in &v.packets {
        let (mut tx, mut rx) = sessions(p);
        let plain = hex(&p.plaintext);
        let want = hex(&p.protected);
        let mut buf = plain.clone();
        buf.resize(plain.len() + MAX_TRAILER_LEN, 0);
        let n = match p.kind.as_str() {
            "rtp" => tx.protect_rtp(&mut buf, plain.len()).unwrap(),
            "rtcp" => {
                let ssrc = u32::from_be_bytes(plain[4..8].try_into().unwrap());
                tx.set_rtcp_index(ssrc, p.srtcp_index.unwrap_or(0));
                tx.protect_rtcp(&mut buf, plain.len()).unwrap()
            }
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(hex_str(&buf[..n]), hex_str(&want), "protect: {}", p.source);

        let mut back = want.clone();
        let m = match p.kind.as_str() {
            "rtp" => rx.unprotect_rtp(&mut back).unwrap(),
            _ => rx.unprotect_rtcp(&mut back).unwrap(),
        };
        assert_eq!(&back[..m], &plain[..], "unprotect: {}", p.source);

        // Every single-bit flip of the protected packet is rejected (fresh receiver each time,
        // so the replay window plays no part).
        for bit in 0..want.len() * 8 {
            let (_, mut rx) = sessions(p);
            let mut bad = want.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let r = match p.kind.as_str() {
                "rtp" => rx.unprotect_rtp(&mut bad),
                _ => rx.unprotect_rtcp(&mut bad),
            };
            assert!(r.is_err(), "bit {bit} flip accepted: {}", p.source);
        }
    }
}

fn hex_str(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
