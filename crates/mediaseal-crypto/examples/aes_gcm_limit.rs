//! Anchor (a) of `scripts/bench-envelope.sh`: aws-lc-rs one-shot AES-256-GCM over a file's bytes
//! already in memory, i.e. the machine's AES-GCM limit with no I/O and no copies.
//!
//! usage: aes_gcm_limit FILE [RUNS]   → prints the median seconds of RUNS seals (default 5)

use std::time::Instant;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: aes_gcm_limit FILE [RUNS]")?;
    let runs: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let mut buf = std::fs::read(path)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| "key")?);
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs.max(1) {
        let nonce = Nonce::assume_unique_for_key([i as u8; 12]);
        let start = Instant::now();
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf)
            .map_err(|_| "seal")?;
        times.push(start.elapsed().as_secs_f64());
        let _ = std::hint::black_box(tag);
    }
    times.sort_by(f64::total_cmp);
    println!("{:.4}", times[times.len() / 2]);
    Ok(())
}
