//! Protect / unprotect of 172-byte RTP packets (12-byte header + 160-byte G.711 payload) per
//! suite. `scripts/bench-srtp.sh` runs the pinned comparison against libsrtp; this is the
//! criterion view of the same work (`cargo bench -p mediaseal-srtp`).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, MasterKey, OutboundSession, SessionConfig, SrtpProfile,
};

const LEN: usize = 172;

fn key(profile: SrtpProfile) -> MasterKey {
    let n = profile.master_key_len() + profile.master_salt_len();
    let ks: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
    MasterKey::from_key_salt(profile, &ks).expect("valid length")
}

fn packet(seq: u16) -> [u8; LEN + MAX_TRAILER_LEN] {
    let mut b = [0xabu8; LEN + MAX_TRAILER_LEN];
    b[0] = 0x80;
    b[1] = 0;
    b[2..4].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&0xdeca_fbad_u32.to_be_bytes());
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp_172B");
    g.throughput(Throughput::Elements(1));
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
        SrtpProfile::Aes256CmHmacSha1_80,
    ] {
        let k = key(profile);
        let config = SessionConfig::default();

        let mut tx = OutboundSession::new(&k, &config).expect("session");
        let mut seq = 0u16;
        g.bench_function(format!("protect/{profile}"), |b| {
            b.iter(|| {
                let mut buf = packet(seq);
                seq = seq.wrapping_add(1);
                black_box(tx.protect_rtp(black_box(&mut buf), LEN).expect("protect"));
            });
        });

        // Unprotect needs a fresh packet index each time: protect a long run once, then feed
        // it in order (batched so setup is outside the timing).
        let mut tx = OutboundSession::new(&k, &config).expect("session");
        let mut rx = InboundSession::new(&k, &config).expect("session");
        let mut seq = 0u16;
        g.bench_function(format!("unprotect/{profile}"), |b| {
            b.iter_batched_ref(
                || {
                    let mut buf = packet(seq);
                    seq = seq.wrapping_add(1);
                    let n = tx.protect_rtp(&mut buf, LEN).expect("protect");
                    (buf, n)
                },
                |(buf, n)| {
                    black_box(
                        rx.unprotect_rtp(black_box(&mut buf[..*n]))
                            .expect("unprotect"),
                    )
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
