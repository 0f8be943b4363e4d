//! Interop with real libsrtp (2.7 + OpenSSL, bundled in PyPI `pylibsrtp`) through
//! `interop/srtp/libsrtp_peer.py`.
//!
//! Python is `$MEDIASEAL_PYTHON`, else `<workspace>/.venv/bin/python`. If neither exists the
//! tests fail (they never skip): run `scripts/setup.sh` to create the venv.
//!
//! Traffic: two SSRCs per session, sequence numbers crossing 65535 → 0 (ROC 0 → 1), CSRCs,
//! header extensions and padding, delivered with reordering, loss and replays. Every suite
//! both implement: `AES_CM_128_HMAC_SHA1_80`, `_32`, `AEAD_AES_128_GCM`, `AEAD_AES_256_GCM`
//! (pylibsrtp has no AES-256-CM profile).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, MasterKey, OutboundSession, SessionConfig, SrtpProfile,
    UnprotectError,
};
use serde_json::{Value, json};

const PROFILES: [SrtpProfile; 4] = [
    SrtpProfile::AesCm128HmacSha1_80,
    SrtpProfile::AesCm128HmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AeadAes256Gcm,
];

fn workspace_root() -> PathBuf {
    mediaseal_test_support::workspace_root()
}

fn python() -> PathBuf {
    mediaseal_test_support::python(&["pylibsrtp"])
}

/// Runs one request through the libsrtp peer; returns each op's result.
fn libsrtp(request: &Value) -> Vec<Result<Vec<u8>, String>> {
    let script = workspace_root().join("interop/srtp/libsrtp_peer.py");
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the libsrtp peer");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "libsrtp peer failed ({}): {}\n(if pylibsrtp is missing, run scripts/setup.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("peer JSON");
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            if r["ok"].as_bool().unwrap() {
                Ok(hex::decode(r["data"].as_str().unwrap()))
            } else {
                Err(r["error"].as_str().unwrap().to_owned())
            }
        })
        .collect()
}

mod hex {
    pub(crate) fn encode(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    pub(crate) fn decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}

fn key_for(profile: SrtpProfile, seed: u8) -> MasterKey {
    let n = profile.master_key_len() + profile.master_salt_len();
    let ks: Vec<u8> = (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    MasterKey::from_key_salt(profile, &ks).unwrap()
}

fn session_json(profile: SrtpProfile, key: &MasterKey, direction: &str) -> Value {
    json!({"profile": profile.to_string(), "key": hex::encode(key.key_salt()), "direction": direction})
}

/// RTP packets of two SSRCs, each crossing the 16-bit sequence wrap, with assorted headers.
fn rtp_packets() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let (mut seq_a, mut seq_b) = (65_300u16, 65_450u16);
    for k in 0..600usize {
        let (ssrc, seq) = if k % 3 == 0 {
            seq_b = seq_b.wrapping_add(1);
            (0x0bad_cafe_u32, seq_b)
        } else {
            seq_a = seq_a.wrapping_add(1);
            (0xdeca_fbad_u32, seq_a)
        };
        let csrcs = if k % 5 == 1 || k % 5 == 3 { 2 } else { 0 };
        let ext = k % 5 == 2 || k % 5 == 3;
        let pad = k % 17 == 0;
        let mut p =
            vec![0x80 | csrcs as u8 | if ext { 0x10 } else { 0 } | if pad { 0x20 } else { 0 }];
        p.push(if k % 50 == 0 { 0x80 } else { 0 }); // marker bit; PT 0 (PCMU)
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&((k as u32) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        for c in 0..csrcs {
            p.extend_from_slice(&(0x1000 + c as u32).to_be_bytes());
        }
        if ext {
            p.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0xab, 0x00, 0x00]);
        }
        let payload = if k % 29 == 7 { 0 } else { 1 + (k * 37) % 200 };
        p.extend((0..payload).map(|i| (i ^ k) as u8));
        if pad {
            p.extend_from_slice(&[0, 0, 0, 4]);
        }
        out.push(p);
    }
    out
}

/// Compound-ish RTCP packets (SR + SDES-like filler) from two SSRCs.
fn rtcp_packets() -> Vec<Vec<u8>> {
    (0..80usize)
        .map(|k| {
            let ssrc: u32 = if k % 2 == 0 { 0xdeca_fbad } else { 0x0bad_cafe };
            let words = 6 + k % 5;
            let mut p = vec![0x80, 200];
            p.extend_from_slice(&(words as u16).to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend((0..words * 4).map(|i| (i * 3 + k) as u8));
            p
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Fresh,
    Replay,
}

/// A delivery order over `n` packets with reordering (adjacent swaps), loss and replays.
fn delivery(n: usize) -> Vec<(usize, Expect)> {
    let mut order: Vec<usize> = (0..n).filter(|i| i % 11 != 5).collect();
    let mut i = 0;
    while i + 1 < order.len() {
        if i % 7 == 3 {
            order.swap(i, i + 1);
        }
        i += 1;
    }
    let mut plan = Vec::new();
    for (d, &p) in order.iter().enumerate() {
        plan.push((p, Expect::Fresh));
        if d % 13 == 12 {
            plan.push((order[d - 3], Expect::Replay));
            plan.push((p, Expect::Replay));
        }
    }
    // Long after the fact: the first packet again (too old for any window here, or a replay).
    plan.push((order[0], Expect::Replay));
    plan
}

#[test]
fn libsrtp_protects_rust_unprotects_rtp() {
    let packets = rtp_packets();
    for profile in PROFILES {
        let key = key_for(profile, 1);
        let ops: Vec<Value> = packets
            .iter()
            .map(|p| json!({"op": "protect_rtp", "session": "tx", "data": hex::encode(p)}))
            .collect();
        let req = json!({"sessions": {"tx": session_json(profile, &key, "out")}, "ops": ops});
        let protected: Vec<Vec<u8>> = libsrtp(&req).into_iter().map(Result::unwrap).collect();

        let mut rx = InboundSession::new(&key, &SessionConfig::default()).unwrap();
        for (idx, expect) in delivery(packets.len()) {
            let mut buf = protected[idx].clone();
            let r = rx.unprotect_rtp(&mut buf);
            match expect {
                Expect::Fresh => {
                    let n = r.unwrap_or_else(|e| panic!("{profile} packet {idx}: {e}"));
                    assert_eq!(&buf[..n], &packets[idx][..], "{profile} packet {idx}");
                }
                Expect::Replay => assert!(
                    matches!(r, Err(UnprotectError::Replayed | UnprotectError::TooOld)),
                    "{profile} replay of {idx} gave {r:?}"
                ),
            }
        }
        assert_eq!(rx.roc(0xdeca_fbad), Some(1), "{profile}");
        assert_eq!(rx.roc(0x0bad_cafe), Some(1), "{profile}");
    }
}

#[test]
fn rust_protects_libsrtp_unprotects_rtp() {
    let packets = rtp_packets();
    for profile in PROFILES {
        let key = key_for(profile, 2);
        let mut tx = OutboundSession::new(&key, &SessionConfig::default()).unwrap();
        let protected: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| {
                let mut v = p.clone();
                tx.protect_rtp_vec(&mut v).unwrap();
                v
            })
            .collect();
        let plan = delivery(packets.len());
        let ops: Vec<Value> = plan
            .iter()
            .map(|(i, _)| json!({"op": "unprotect_rtp", "session": "rx", "data": hex::encode(&protected[*i])}))
            .collect();
        let req = json!({"sessions": {"rx": session_json(profile, &key, "in")}, "ops": ops});
        for ((idx, expect), r) in plan.iter().zip(libsrtp(&req)) {
            match expect {
                Expect::Fresh => assert_eq!(
                    r.unwrap_or_else(|e| panic!("{profile} packet {idx}: libsrtp: {e}")),
                    packets[*idx],
                    "{profile} packet {idx}"
                ),
                Expect::Replay => {
                    let e = r.expect_err("libsrtp accepted a replay");
                    assert!(e.contains("replay"), "{profile} replay of {idx}: {e}");
                }
            }
        }
    }
}

#[test]
fn protected_bytes_are_identical_to_libsrtp() {
    let rtp = rtp_packets();
    let rtcp = rtcp_packets();
    for profile in PROFILES {
        let key = key_for(profile, 3);
        let mut ops: Vec<Value> = rtp
            .iter()
            .map(|p| json!({"op": "protect_rtp", "session": "tx", "data": hex::encode(p)}))
            .collect();
        ops.extend(
            rtcp.iter()
                .map(|p| json!({"op": "protect_rtcp", "session": "tx", "data": hex::encode(p)})),
        );
        let req = json!({"sessions": {"tx": session_json(profile, &key, "out")}, "ops": ops});
        let theirs: Vec<Vec<u8>> = libsrtp(&req).into_iter().map(Result::unwrap).collect();

        let mut tx = OutboundSession::new(&key, &SessionConfig::default()).unwrap();
        // libsrtp starts SRTCP indices at 1; RFC 3711 (and we, by default) at 0.
        tx.set_rtcp_index(0xdeca_fbad, 1);
        tx.set_rtcp_index(0x0bad_cafe, 1);
        let ours = rtp
            .iter()
            .map(|p| (p, true))
            .chain(rtcp.iter().map(|p| (p, false)));
        for (k, ((p, is_rtp), t)) in ours.zip(&theirs).enumerate() {
            let mut buf = p.clone();
            buf.resize(p.len() + MAX_TRAILER_LEN, 0);
            let n = if is_rtp {
                tx.protect_rtp(&mut buf, p.len()).unwrap()
            } else {
                tx.protect_rtcp(&mut buf, p.len()).unwrap()
            };
            assert_eq!(
                hex::encode(&buf[..n]),
                hex::encode(t),
                "{profile} packet {k}"
            );
        }
    }
}

#[test]
fn rtcp_both_directions_with_reorder_loss_and_replay() {
    let packets = rtcp_packets();
    for profile in PROFILES {
        // libsrtp → us.
        let key = key_for(profile, 4);
        let ops: Vec<Value> = packets
            .iter()
            .map(|p| json!({"op": "protect_rtcp", "session": "tx", "data": hex::encode(p)}))
            .collect();
        let req = json!({"sessions": {"tx": session_json(profile, &key, "out")}, "ops": ops});
        let protected: Vec<Vec<u8>> = libsrtp(&req).into_iter().map(Result::unwrap).collect();
        // libsrtp sends 80-bit SRTCP tags on every HMAC profile, _32 included.
        if !profile.is_aead() {
            assert_eq!(protected[0].len(), packets[0].len() + 14, "{profile}");
        }
        let mut rx = InboundSession::new(&key, &SessionConfig::default()).unwrap();
        for (idx, expect) in delivery(packets.len()) {
            let mut buf = protected[idx].clone();
            let r = rx.unprotect_rtcp(&mut buf);
            match expect {
                Expect::Fresh => {
                    let n = r.unwrap_or_else(|e| panic!("{profile} rtcp {idx}: {e}"));
                    assert_eq!(&buf[..n], &packets[idx][..]);
                }
                Expect::Replay => assert!(
                    matches!(r, Err(UnprotectError::Replayed | UnprotectError::TooOld)),
                    "{profile} rtcp replay {idx}: {r:?}"
                ),
            }
        }

        // us → libsrtp.
        let key = key_for(profile, 5);
        let mut tx = OutboundSession::new(&key, &SessionConfig::default()).unwrap();
        let protected: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| {
                let mut v = p.clone();
                tx.protect_rtcp_vec(&mut v).unwrap();
                // We also send 80-bit tags on _32 (RFC 3711 §5.2).
                assert_eq!(v.len(), p.len() + profile.rtcp_trailer_len());
                v
            })
            .collect();
        let plan = delivery(packets.len());
        let ops: Vec<Value> = plan
            .iter()
            .map(|(i, _)| json!({"op": "unprotect_rtcp", "session": "rx", "data": hex::encode(&protected[*i])}))
            .collect();
        let req = json!({"sessions": {"rx": session_json(profile, &key, "in")}, "ops": ops});
        for ((idx, expect), r) in plan.iter().zip(libsrtp(&req)) {
            match expect {
                Expect::Fresh => assert_eq!(r.unwrap(), packets[*idx], "{profile} rtcp {idx}"),
                Expect::Replay => {
                    let e = r.expect_err("libsrtp accepted an SRTCP replay");
                    assert!(e.contains("replay"), "{profile}: {e}");
                }
            }
        }
    }
}

#[test]
fn srtcp_32_bit_tags_are_accepted_on_32_streams() {
    let profile = SrtpProfile::AesCm128HmacSha1_32;
    let key = key_for(profile, 6);
    let packets = rtcp_packets();
    let mut ops: Vec<Value> = packets[..4]
        .iter()
        .map(|p| json!({"op": "protect_rtcp", "session": "tx", "data": hex::encode(p)}))
        .collect();
    let req = json!({"sessions": {"tx": session_json(profile, &key, "out")}, "ops": ops});
    let long: Vec<Vec<u8>> = libsrtp(&req).into_iter().map(Result::unwrap).collect();
    // Re-tag with 4-byte tags the way baresip/Asterisk do, computed independently in Python.
    ops = long
        .iter()
        .map(|p| {
            json!({"op": "retag_srtcp_32", "profile": profile.to_string(),
                   "key": hex::encode(key.key_salt()), "data": hex::encode(p)})
        })
        .collect();
    let short: Vec<Vec<u8>> = libsrtp(&json!({"ops": ops}))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(short[0].len(), packets[0].len() + 8);

    let mut rx = InboundSession::new(&key, &SessionConfig::default()).unwrap();
    for (k, s) in short.iter().enumerate() {
        let mut buf = s.clone();
        let n = rx
            .unprotect_rtcp(&mut buf)
            .unwrap_or_else(|e| panic!("short tag {k}: {e}"));
        assert_eq!(&buf[..n], &packets[k][..]);
        // The same index again, now with the long tag: a replay, whatever the tag length.
        let mut again = long[k].clone();
        assert_eq!(rx.unprotect_rtcp(&mut again), Err(UnprotectError::Replayed));
    }
    // A wrong 4-byte tag is still rejected.
    let mut bad = short[0].clone();
    *bad.last_mut().unwrap() ^= 1;
    let mut fresh = InboundSession::new(&key, &SessionConfig::default()).unwrap();
    assert_eq!(
        fresh.unprotect_rtcp(&mut bad),
        Err(UnprotectError::AuthenticationFailed)
    );

    // On an _80 stream the short tag is not a fallback.
    let p80 = SrtpProfile::AesCm128HmacSha1_80;
    let key80 = key_for(p80, 6);
    let req = json!({"sessions": {"tx": session_json(p80, &key80, "out")},
                     "ops": [{"op": "protect_rtcp", "session": "tx", "data": hex::encode(&packets[0])}]});
    let long80 = libsrtp(&req).remove(0).unwrap();
    let req = json!({"ops": [{"op": "retag_srtcp_32", "profile": p80.to_string(),
                              "key": hex::encode(key80.key_salt()), "data": hex::encode(&long80)}]});
    let mut short80 = libsrtp(&req).remove(0).unwrap();
    let mut rx80 = InboundSession::new(&key80, &SessionConfig::default()).unwrap();
    assert_eq!(
        rx80.unprotect_rtcp(&mut short80),
        Err(UnprotectError::AuthenticationFailed)
    );
}
