//! Property tests: protect → unprotect round trips for every profile, replay and tamper
//! rejection, and SDES format → parse round trips.

use mediaseal_srtp::sdes::{CryptoAttribute, Lifetime};
use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, MasterKey, OutboundSession, SessionConfig, SrtpProfile,
    UnprotectError,
};
use proptest::prelude::*;

fn profile() -> impl Strategy<Value = SrtpProfile> {
    proptest::sample::select(SrtpProfile::ALL.to_vec())
}

fn sessions(profile: SrtpProfile, seed: &[u8]) -> (OutboundSession, InboundSession) {
    let n = profile.master_key_len() + profile.master_salt_len();
    let ks: Vec<u8> = seed.iter().cycle().take(n).copied().collect();
    let key = MasterKey::from_key_salt(profile, &ks).unwrap();
    let c = SessionConfig::default();
    (
        OutboundSession::new(&key, &c).unwrap(),
        InboundSession::new(&key, &c).unwrap(),
    )
}

/// An RTP packet with `csrcs` CSRCs, an extension of `ext_words` words (if any) and `payload`.
fn rtp(seq: u16, ssrc: u32, csrcs: u8, ext_words: Option<u8>, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x80 | csrcs | if ext_words.is_some() { 0x10 } else { 0 },
        96,
    ];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x12, 0x34]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..csrcs {
        p.extend_from_slice(&[0, 0, 0, c]);
    }
    if let Some(w) = ext_words {
        p.extend_from_slice(&[0xbe, 0xde, 0, w]);
        p.extend(std::iter::repeat_n(0x11, usize::from(w) * 4));
    }
    p.extend_from_slice(payload);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rtp_round_trip_then_replay_rejected(
        profile in profile(),
        seed in proptest::collection::vec(any::<u8>(), 1..8),
        seq in any::<u16>(),
        ssrc in any::<u32>(),
        csrcs in 0u8..16,
        ext in proptest::option::of(0u8..5),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
    ) {
        let (mut tx, mut rx) = sessions(profile, &seed);
        let plain = rtp(seq, ssrc, csrcs, ext, &payload);
        let mut buf = plain.clone();
        tx.protect_rtp_vec(&mut buf).unwrap();
        prop_assert_eq!(buf.len(), plain.len() + profile.rtp_tag_len());
        let hdr_len = plain.len() - payload.len();
        prop_assert_eq!(&buf[..hdr_len], &plain[..hdr_len], "header stays in clear");
        if payload.len() >= 8 {
            prop_assert_ne!(&buf[hdr_len..plain.len()], &payload[..], "payload is encrypted");
        }
        let protected = buf.clone();
        rx.unprotect_rtp_vec(&mut buf).unwrap();
        prop_assert_eq!(&buf, &plain);
        let mut again = protected;
        prop_assert_eq!(rx.unprotect_rtp(&mut again), Err(UnprotectError::Replayed));
    }

    #[test]
    fn rtp_tamper_rejected(
        profile in profile(),
        seq in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        bit in any::<prop::sample::Index>(),
    ) {
        let (mut tx, mut rx) = sessions(profile, b"tamper");
        let mut buf = rtp(seq, 7, 0, None, &payload);
        tx.protect_rtp_vec(&mut buf).unwrap();
        let bit = bit.index(buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rx.unprotect_rtp(&mut buf).is_err());
        prop_assert_eq!(rx.stream_count(), 0, "no state from an unauthenticated packet");
    }

    #[test]
    fn rtcp_round_trip_tamper_and_replay(
        profile in profile(),
        ssrc in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..500),
        bit in any::<prop::sample::Index>(),
    ) {
        let (mut tx, mut rx) = sessions(profile, b"rtcp");
        let mut plain = vec![0x80, 201, 0, 1];
        plain.extend_from_slice(&ssrc.to_be_bytes());
        plain.extend_from_slice(&body);
        let mut buf = plain.clone();
        tx.protect_rtcp_vec(&mut buf).unwrap();
        let protected = buf.clone();
        let mut bad = buf.clone();
        let bit = bit.index(bad.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rx.unprotect_rtcp(&mut bad).is_err());
        rx.unprotect_rtcp_vec(&mut buf).unwrap();
        prop_assert_eq!(&buf, &plain);
        let mut again = protected;
        prop_assert_eq!(rx.unprotect_rtcp(&mut again), Err(UnprotectError::Replayed));
    }

    /// A stream crossing the 16-bit wrap, delivered with bounded reordering and loss, decrypts
    /// fully and ends with the right ROC; every packet delivered twice is rejected the second time.
    #[test]
    fn reordered_stream_across_wrap(
        profile in profile(),
        start in 65_000u16..=65_535,
        swaps in proptest::collection::vec((0usize..300, 1usize..20), 0..40),
        lost in proptest::collection::vec(0usize..300, 0..20),
    ) {
        let (mut tx, mut rx) = sessions(profile, b"wrap");
        let packets: Vec<Vec<u8>> = (0..300u16)
            .map(|i| {
                let mut p = rtp(start.wrapping_add(i), 42, 0, None, &[i as u8; 20]);
                tx.protect_rtp_vec(&mut p).unwrap();
                p
            })
            .collect();
        // The first packet goes first: a receiver cannot know the ROC of a stream's first packet
        // (RFC 3711 §3.3.1), so a post-wrap packet arriving first would need `set_roc`.
        let mut order: Vec<usize> = (0..300).filter(|i| *i == 0 || !lost.contains(i)).collect();
        let len = order.len();
        for (a, d) in swaps {
            if len > 1 {
                let a = 1 + a % (len - 1);
                let b = (a + d).min(len - 1);
                order.swap(a, b);
            }
        }
        for &i in &order {
            let mut b = packets[i].clone();
            rx.unprotect_rtp(&mut b).unwrap();
            let mut b = packets[i].clone();
            prop_assert!(rx.unprotect_rtp(&mut b).is_err());
        }
        let last_sent = u32::from(start) + 299;
        let highest = order.iter().max().map(|&i| u32::from(start) + i as u32);
        if let Some(h) = highest {
            prop_assert_eq!(rx.roc(42), Some(h >> 16));
        }
        prop_assert_eq!(tx.roc(42), Some(last_sent >> 16));
    }

    #[test]
    fn sdes_format_parse_round_trip(
        profile in profile(),
        tag in 0u32..1_000_000_000,
        seed in any::<u8>(),
        lifetime in proptest::option::of(prop_oneof![
            (0u8..64).prop_map(Lifetime::PowerOfTwo),
            any::<u64>().prop_map(Lifetime::Packets),
        ]),
    ) {
        let n = profile.master_key_len() + profile.master_salt_len();
        let ks: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let key = MasterKey::from_key_salt(profile, &ks).unwrap();
        let mut attr = CryptoAttribute::new(tag, &key);
        attr.keys[0].lifetime = lifetime;
        let text = attr.to_string();
        let back = CryptoAttribute::parse(&text).unwrap();
        prop_assert_eq!(&back, &attr);
        prop_assert_eq!(back.keys[0].master_key(profile).unwrap(), key);
        let b64 = &text[text.find("inline:").unwrap() + 7..][..8];
        let debug = format!("{:?}", back);
        prop_assert!(!debug.contains(b64), "Debug leaks the key");
    }

    #[test]
    fn sdes_parse_never_panics(line in "\\PC{0,200}") {
        let _ = CryptoAttribute::parse(&line);
    }

    #[test]
    fn unprotect_never_panics(profile in profile(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut rx) = sessions(profile, b"junk");
        let mut a = data.clone();
        let _ = rx.unprotect_rtp(&mut a);
        let mut b = data;
        let _ = rx.unprotect_rtcp(&mut b);
    }

    #[test]
    fn protect_never_panics(profile in profile(), data in proptest::collection::vec(any::<u8>(), 0..200), len in 0usize..250) {
        let (mut tx, _) = sessions(profile, b"junk");
        let mut a = data.clone();
        a.resize(a.len() + MAX_TRAILER_LEN, 0);
        let _ = tx.protect_rtp(&mut a, len);
        let mut b = data;
        let _ = tx.protect_rtcp(&mut b, len);
    }
}
