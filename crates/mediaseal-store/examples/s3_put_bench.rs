//! The ceiling for `scripts/bench-scale.sh`: plain S3 `PutObject`s of one size, with a fixed
//! number in flight, straight from the AWS SDK to the store (no mediaseal in between).
//!
//! `s3_put_bench ENDPOINT BUCKET SIZE_BYTES CONCURRENCY SECONDS [signed|unsigned]` with
//! credentials in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`; prints one JSON line with
//! requests/s and latency percentiles. Bounded: stops after SECONDS or 100 000 requests.
//! `signed` (the default) is the SDK's default request, the body's SHA-256 in the signature;
//! `unsigned` sends `UNSIGNED-PAYLOAD`, as mediaseal does on loopback and HTTPS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

const MAX_REQUESTS: u64 = 100_000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (endpoint, bucket, size, concurrency, seconds, unsigned) = match args.as_slice() {
        [_, e, b, s, c, secs] => (e, b, s, c, secs, false),
        [_, e, b, s, c, secs, mode] if mode == "signed" || mode == "unsigned" => {
            (e, b, s, c, secs, mode == "unsigned")
        }
        _ => {
            eprintln!(
                "usage: s3_put_bench ENDPOINT BUCKET SIZE_BYTES CONCURRENCY SECONDS [signed|unsigned]"
            );
            std::process::exit(2);
        }
    };
    let (size, concurrency, seconds): (usize, usize, u64) = (
        size.parse().unwrap(),
        concurrency.parse().unwrap(),
        seconds.parse().unwrap(),
    );
    let credentials = Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY"),
        None,
        None,
        "env",
    );
    // The same client settings as mediaseal's S3 store, so the difference is mediaseal's work.
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("garage"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    // Random-looking bytes, like ciphertext: nothing for the store to compress.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let body: Bytes = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, bucket, body, issued) =
            (client.clone(), bucket.clone(), body.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
            {
                let key = format!("bench/w{worker}/{}", latencies.len() + errors as usize);
                let t = Instant::now();
                let request = client
                    .put_object()
                    .bucket(&bucket)
                    .key(key)
                    .body(ByteStream::from(body.clone()));
                let r = if unsigned {
                    request.customize().disable_payload_signing().send().await
                } else {
                    request.send().await
                };
                match r {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{{\"requests\": {}, \"errors\": {errors}, \"seconds\": {elapsed:.2}, \"rps\": {:.1}, \"p50_ms\": {:.1}, \"p99_ms\": {:.1}}}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}
