//! Envelope throughput in memory, beside the machine's AES-256-GCM limit (aws-lc-rs one-shot).
//! `cargo bench -p mediaseal-crypto --bench envelope`; the file-to-file figures, peak RSS and the
//! external anchors come from `scripts/bench-envelope.sh` (see BENCHMARKS.md).

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mediaseal_crypto::native::{self, RecipientKey, StreamOptions};
use mediaseal_crypto::{ContentKey, PrivateKey, Scheme};

const SIZE: usize = 64 << 20;

fn key() -> PrivateKey {
    PrivateKey::generate(2048).expect("key generation works")
}

fn throughput(c: &mut Criterion) {
    let key = key();
    let plain: Vec<u8> = (0..SIZE).map(|i| (i * 7) as u8).collect();
    let mut group = c.benchmark_group("envelope-64MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));

    // (a) the machine's AES-GCM limit: one-shot seal in place, no I/O, no copies.
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("valid key"));
    let mut buf = plain.clone();
    group.bench_function("aws-lc-rs one-shot AES-256-GCM seal (limit)", |b| {
        b.iter(|| {
            let tag = aead
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .expect("seal");
            let _ = black_box(tag);
        });
    });

    for scheme in [Scheme::GcmOaep, Scheme::CbcPkcs1] {
        let name = if scheme == Scheme::GcmOaep {
            "rsa-aes/s3-gcm"
        } else {
            "s3-cbc"
        };
        let mut out = Vec::with_capacity(SIZE + 64);
        group.bench_function(BenchmarkId::new("seal", name), |b| {
            b.iter(|| {
                out.clear();
                let (sealed, w) = mediaseal_crypto::seal_stream(
                    &plain[..],
                    std::mem::take(&mut out),
                    scheme,
                    key.public_key(),
                )
                .expect("seal");
                out = w;
                black_box(sealed.plaintext_len);
            });
        });
    }

    let recipients = [RecipientKey {
        key: key.public_key(),
        key_id: "CRbench",
    }];
    let sealed = native::seal_stream(
        &plain[..],
        Vec::new(),
        &recipients,
        StreamOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .expect("seal")
    .1;
    for threads in [1usize, 2] {
        let mut out = Vec::with_capacity(SIZE + SIZE / 1000 + 4096);
        group.bench_function(
            BenchmarkId::new("native seal", format!("{threads} threads")),
            |b| {
                b.iter(|| {
                    out.clear();
                    let options = StreamOptions {
                        threads,
                        ..Default::default()
                    };
                    out = native::seal_stream(
                        &plain[..],
                        std::mem::take(&mut out),
                        &recipients,
                        options,
                    )
                    .expect("seal")
                    .1;
                });
            },
        );
        group.bench_function(
            BenchmarkId::new("native open", format!("{threads} threads")),
            |b| {
                b.iter(|| {
                    out.clear();
                    out = native::open_stream(&sealed[..], std::mem::take(&mut out), &key, threads)
                        .expect("open")
                        .1;
                });
            },
        );
    }
    group.finish();

    let mut rsa = c.benchmark_group("rsa-2048");
    let cek = ContentKey::generate();
    let wrapped = cek.wrap_oaep(key.public_key()).expect("wrap");
    rsa.bench_function("OAEP-SHA256 wrap", |b| {
        b.iter(|| black_box(cek.wrap_oaep(key.public_key()).expect("wrap")))
    });
    rsa.bench_function("OAEP-SHA256 unwrap", |b| {
        b.iter(|| black_box(ContentKey::unwrap_oaep(&wrapped, &key).expect("unwrap")))
    });
    rsa.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
