//! The store's share of an ingest, without HTTP or sealing: each worker reserves a recording
//! row, writes a 1 MiB object, finishes it (durable) and publishes the row (durable), as the
//! server does for every upload. Prints one JSON line: recordings/s, latency percentiles, and
//! the mean time of each step, so the cost of the object store and of the metadata commits can
//! be seen apart.
//!
//! `ingest_bench DATABASE_URL OBJECTS CONCURRENCY SECONDS [SIZE_BYTES]`, where OBJECTS is a
//! directory or an `s3://` URL (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
//! Uses only the store's public API, so the same file measures an older version of the store.
//! Bounded: stops after SECONDS or 100 000 recordings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mediaseal_store::model::{Recording, Sealing};
use mediaseal_store::{
    FsObjectStore, MetadataStore, ObjectMeta, ObjectStore, S3Config, S3ObjectStore, SqlStore,
};

const MAX_RECORDINGS: u64 = 100_000;

#[derive(Default, Clone, Copy)]
struct Steps {
    reserve: Duration,
    write: Duration,
    finish: Duration,
    publish: Duration,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (database, objects, concurrency, seconds, size) = match args.as_slice() {
        [_, d, o, c, s] => (d, o, c, s, 1usize << 20),
        [_, d, o, c, s, n] => (d, o, c, s, n.parse().expect("SIZE_BYTES")),
        _ => {
            eprintln!("usage: ingest_bench DATABASE_URL OBJECTS CONCURRENCY SECONDS [SIZE_BYTES]");
            std::process::exit(2);
        }
    };
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY");
    let seconds: u64 = seconds.parse().expect("SECONDS");
    let meta: Arc<dyn MetadataStore> = Arc::new(SqlStore::connect(database).await.unwrap());
    let objects: Arc<dyn ObjectStore> = if objects.starts_with("s3://") {
        let config = S3Config::from_url(objects).unwrap().with_env_credentials();
        Arc::new(S3ObjectStore::connect(config).await.unwrap())
    } else {
        Arc::new(FsObjectStore::new(objects).unwrap())
    };
    // Random-looking bytes, like ciphertext.
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
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let account = format!("ACbench{run:x}");
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (meta, objects, body, issued, account) = (
            meta.clone(),
            objects.clone(),
            body.clone(),
            issued.clone(),
            account.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut steps = Steps::default();
            while Instant::now() < deadline
                && issued.fetch_add(1, Ordering::Relaxed) < MAX_RECORDINGS
            {
                let sid = format!("RE{worker:04}x{:08}", latencies.len());
                let key = format!("{account}/{sid}");
                let now = i64::try_from(run / 1000).unwrap_or(0);
                let mut rec = Recording {
                    sid,
                    account_sid: account.clone(),
                    call_sid: None,
                    conference_sid: None,
                    channels: 1,
                    source: "OutboundAPI".to_owned(),
                    track: None,
                    duration: None,
                    status: "processing".to_owned(),
                    error_code: None,
                    start_time: now,
                    date_created: now,
                    date_updated: now,
                    encryption_details: None,
                    sealing: Sealing::None,
                    object_key: Some(key.clone()),
                    sealed_size: 0,
                    plain_size: 0,
                    content_type: "audio/x-wav".to_owned(),
                    visible: false,
                    deleted: false,
                    date_deleted: None,
                    interruption: None,
                };
                let t0 = Instant::now();
                meta.reserve_recording(&rec).await.unwrap();
                let t1 = Instant::now();
                let mut writer = objects.create(&key).await.unwrap();
                for chunk in body.chunks(64 * 1024) {
                    writer.write(body.slice_ref(chunk)).await.unwrap();
                }
                let t2 = Instant::now();
                let stored = writer.finish(ObjectMeta::new()).await.unwrap();
                let t3 = Instant::now();
                rec.status = "completed".to_owned();
                rec.sealing = Sealing::AtRest;
                rec.sealed_size = i64::try_from(stored).unwrap_or(0);
                rec.plain_size = rec.sealed_size;
                rec.visible = true;
                meta.publish_recording(&rec, &[], &[]).await.unwrap();
                let t4 = Instant::now();
                steps.reserve += t1 - t0;
                steps.write += t2 - t1;
                steps.finish += t3 - t2;
                steps.publish += t4 - t3;
                latencies.push(t4 - t0);
            }
            (latencies, steps)
        }));
    }
    let mut latencies = Vec::new();
    let mut total = Steps::default();
    for t in tasks {
        let (l, s) = t.await.unwrap();
        latencies.extend(l);
        total.reserve += s.reserve;
        total.write += s.write;
        total.finish += s.finish;
        total.publish += s.publish;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let n = latencies.len().max(1) as f64;
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let mean_ms = |d: Duration| d.as_secs_f64() * 1000.0 / n;
    println!(
        "{{\"recordings\": {}, \"seconds\": {elapsed:.2}, \"rps\": {:.1}, \"p50_ms\": {:.1}, \"p99_ms\": {:.1}, \
         \"reserve_ms\": {:.2}, \"write_ms\": {:.2}, \"finish_ms\": {:.2}, \"publish_ms\": {:.2}}}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        mean_ms(total.reserve),
        mean_ms(total.write),
        mean_ms(total.finish),
        mean_ms(total.publish),
    );
}
