//! Packets-per-second measurement mirroring the libsrtp anchor (`shared/tools/srtp-anchor`):
//! 172-byte RTP packets (12-byte header, 160-byte G.711 payload), one SSRC, sequence numbers
//! counting up (and wrapping), protect timed over N packets, then unprotect (including a copy
//! from the stored packet, as the anchor does) over the first 100 000.
//!
//! Usage: `srtp-bench [N]` (default 2 000 000). Prints one line per suite:
//! `<suite> protect <pkt/s> unprotect <pkt/s>`. Run it pinned to one core (`taskset -c 0`).

#![allow(clippy::disallowed_methods)] // tests and benches read the clock for an epoch

use std::hint::black_box;
use std::time::Instant;

use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, MasterKey, OutboundSession, SessionConfig, SrtpProfile,
};

const LEN: usize = 172;
const STORE: usize = 100_000;
const SLOT: usize = LEN + MAX_TRAILER_LEN;

fn run(profile: SrtpProfile, n: usize, store: &mut [u8], lens: &mut [usize]) -> (f64, f64) {
    let mut ks = [0u8; 46];
    for (i, b) in ks.iter_mut().enumerate() {
        *b = (i * 7 + 1) as u8;
    }
    let key = MasterKey::from_key_salt(
        profile,
        &ks[..profile.master_key_len() + profile.master_salt_len()],
    )
    .expect("valid key length");
    let config = SessionConfig::default();
    let mut tx = OutboundSession::new(&key, &config).expect("session");
    let mut rx = InboundSession::new(&key, &config).expect("session");
    let mut buf = [0u8; SLOT];
    let t0 = Instant::now();
    for i in 0..n {
        buf.fill(0xab);
        buf[0] = 0x80;
        buf[1] = 0;
        buf[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        buf[8..12].copy_from_slice(&0xdeca_fbad_u32.to_be_bytes());
        let out = tx.protect_rtp(black_box(&mut buf), LEN).expect("protect");
        if i < STORE {
            store[i * SLOT..i * SLOT + out].copy_from_slice(&buf[..out]);
            lens[i] = out;
        }
    }
    let tp = t0.elapsed().as_secs_f64();
    let m = n.min(STORE);
    let t0 = Instant::now();
    for i in 0..m {
        let l = lens[i];
        buf[..l].copy_from_slice(&store[i * SLOT..i * SLOT + l]);
        let r = rx
            .unprotect_rtp(black_box(&mut buf[..l]))
            .expect("unprotect");
        black_box(r);
    }
    let tu = t0.elapsed().as_secs_f64();
    (n as f64 / tp, m as f64 / tu)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let mut store = vec![0u8; STORE * SLOT];
    let mut lens = vec![0usize; STORE];
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
        SrtpProfile::Aes256CmHmacSha1_80,
    ] {
        let (p, u) = run(profile, n, &mut store, &mut lens);
        println!("{profile} protect {p:.0} unprotect {u:.0}");
    }
}
