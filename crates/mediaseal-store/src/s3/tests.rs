//! The S3 store against the Garage of `scripts/services.sh` (skipped without it, unless
//! `MEDIASEAL_REQUIRE_SERVICES=1`), and its header mapping.

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;

use super::*;

#[test]
fn only_amz_meta_headers_are_stored() {
    let mut meta = ObjectMeta::new();
    meta.insert("x-amz-meta-x-amz-iv".into(), "abc".into());
    let user = to_user_metadata(&meta).unwrap();
    assert_eq!(user.get("x-amz-iv").map(String::as_str), Some("abc"));
    assert_eq!(from_user_metadata(Some(&user)), meta);
    meta.insert("content-type".into(), "x".into());
    assert!(to_user_metadata(&meta).is_err());
}

/// The Garage started by `scripts/services.sh`, under a fresh prefix, if the environment
/// names it. `MEDIASEAL_REQUIRE_SERVICES=1` (set by `scripts/test.sh`) makes a missing one
/// an error instead of a skip.
async fn live_store(part_size_mib: usize) -> Option<S3ObjectStore> {
    let Ok(url) = std::env::var("MEDIASEAL_SCALE_OBJECTS") else {
        assert!(
            std::env::var("MEDIASEAL_REQUIRE_SERVICES").is_err(),
            "MEDIASEAL_REQUIRE_SERVICES is set but MEDIASEAL_SCALE_OBJECTS is not: source the env of scripts/services.sh"
        );
        eprintln!("skipping: no S3 store (run scripts/services.sh start DIR and source DIR/env)");
        return None;
    };
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let (base, query) = url.split_once('?').unwrap_or((&url, ""));
    let url = format!("{base}/t{nanos:x}?{query}&part_size_mib={part_size_mib}");
    let config = S3Config::from_url(&url).unwrap().with_env_credentials();
    Some(S3ObjectStore::connect(config).await.unwrap())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn write_object(store: &S3ObjectStore, key: &str, data: &[u8], meta: &ObjectMeta) -> u64 {
    let mut w = store.create(key).await.unwrap();
    for chunk in data.chunks(512 * 1024 + 7) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.finish(meta.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_small_and_multipart_objects_round_trip_with_headers() {
    let Some(store) = live_store(5).await else {
        return;
    };
    let mut meta = ObjectMeta::new();
    meta.insert("x-amz-meta-x-amz-key".into(), "d3JhcHBlZA==".into());
    meta.insert(
        "x-amz-meta-x-amz-unencrypted-content-length".into(),
        "12345".into(),
    );
    // One PUT (below a part), and a multipart upload of three parts (5 + 5 + 1 MiB).
    for (key, len) in [
        ("AC1/REsmall", 700 * 1024),
        ("AC1/RElarge", 11 * 1024 * 1024 + 3),
    ] {
        let data = pattern(len);
        let mut w = store.create(key).await.unwrap();
        w.write(Bytes::copy_from_slice(&data[..len / 2]))
            .await
            .unwrap();
        assert!(
            store.head(key).await.is_err(),
            "{key} visible before finish"
        );
        w.write(Bytes::copy_from_slice(&data[len / 2..]))
            .await
            .unwrap();
        assert_eq!(w.finish(meta.clone()).await.unwrap(), len as u64);
        let info = store.head(key).await.unwrap();
        assert_eq!((info.size, &info.meta), (len as u64, &meta), "{key}");
        let (whole, stream) = store.get(key, None).await.unwrap();
        assert_eq!(whole.meta, meta);
        let got: Vec<Bytes> = stream.map(|r| r.unwrap()).collect().await;
        assert_eq!(got.concat(), data, "{key}");
        let (info, stream) = store.get(key, Some(1000..70_000)).await.unwrap();
        assert_eq!(info.size, len as u64, "ranged get reports the whole size");
        let got: Vec<Bytes> = stream.map(|r| r.unwrap()).collect().await;
        assert_eq!(got.concat(), &data[1000..70_000]);
        let (_, empty) = store
            .get(key, Some(len as u64 + 10..len as u64 + 20))
            .await
            .unwrap();
        assert!(empty.collect::<Vec<_>>().await.is_empty());
        // Blocking random access, as the at-rest decryptor does it.
        let store2 = store.clone();
        let key2 = key.to_owned();
        let data2 = data.clone();
        tokio::task::spawn_blocking(move || {
            let mut r = store2.open_blocking(&key2).unwrap();
            assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), len as u64);
            let mut tail = [0u8; 100];
            r.seek(SeekFrom::End(-100)).unwrap();
            r.read_exact(&mut tail).unwrap();
            assert_eq!(&tail[..], &data2[len - 100..]);
            r.seek(SeekFrom::Start(3)).unwrap();
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            assert_eq!(all, &data2[3..]);
        })
        .await
        .unwrap();
    }
    let mut keys: Vec<String> = store
        .list("AC1/")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    assert_eq!(keys, ["AC1/RElarge", "AC1/REsmall"]);
    assert_eq!(
        store.abort_stale_uploads(Duration::ZERO).await.unwrap(),
        0,
        "finished uploads leave no upload open"
    );
    for key in ["AC1/REsmall", "AC1/RElarge"] {
        store.delete(key).await.unwrap();
        assert!(matches!(
            store.head(key).await,
            Err(StoreError::ObjectNotFound(_))
        ));
        store.delete(key).await.unwrap();
    }
    assert!(store.list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_aborted_and_dropped_uploads_leave_nothing() {
    let Some(store) = live_store(5).await else {
        return;
    };
    let mut w = store.create("AC2/REaborted").await.unwrap();
    w.write(Bytes::from(pattern(6 << 20))).await.unwrap();
    w.abort().await;
    let mut w = store.create("AC2/REdropped").await.unwrap();
    w.write(Bytes::from(pattern(6 << 20))).await.unwrap();
    drop(w);
    let w = store.create("AC2/REempty").await.unwrap();
    drop(w);
    // The dropped writer aborts in the background.
    let mut open = usize::MAX;
    for _ in 0..50 {
        open = store.open_uploads().await.unwrap().len();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, 0, "an upload stayed open");
    assert!(store.list("").await.unwrap().is_empty());
    // A crashed writer's upload is found and aborted by the stale-upload sweep.
    let id = store
        .inner
        .create_upload(
            &store.inner.full_key("AC2/REcrashed").unwrap(),
            "AC2/REcrashed",
            None,
        )
        .await
        .unwrap();
    assert!(!id.is_empty());
    assert_eq!(store.abort_stale_uploads(Duration::ZERO).await.unwrap(), 1);
}

/// A plain HTTP/1.1 GET on loopback: status, header block, body.
async fn http_get(url: &str) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let u = url::Url::parse(url).unwrap();
    let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let mut conn = tokio::net::TcpStream::connect(&host).await.unwrap();
    let target = &url[url.find(u.path()).unwrap()..];
    conn.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split + 2]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_presigned_get_serves_bytes_and_headers() {
    let Some(store) = live_store(8).await else {
        return;
    };
    let mut meta = ObjectMeta::new();
    meta.insert("x-amz-meta-x-amz-iv".into(), "aXY=".into());
    let data = pattern(4096);
    write_object(&store, "AC3/REpresigned", &data, &meta).await;
    let url = store
        .presign_get("AC3/REpresigned", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(
        !url.contains(&std::env::var("AWS_SECRET_ACCESS_KEY").unwrap()),
        "secret in a presigned URL"
    );
    let (status, headers, body) = http_get(&url).await;
    assert_eq!(status, 200, "{headers}");
    assert!(
        headers.contains("\r\nx-amz-meta-x-amz-iv: aXY=\r\n"),
        "{headers}"
    );
    assert_eq!(body, data);
    let (status, _, _) = http_get(&url.replace("REpresigned", "REpresigneX")).await;
    assert_eq!(status, 403, "a changed URL must not verify");
    store.delete("AC3/REpresigned").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_buckets_fail_with_a_clear_error() {
    let Some(store) = live_store(8).await else {
        return;
    };
    drop(store);
    let url = std::env::var("MEDIASEAL_SCALE_OBJECTS").unwrap();
    let mut wrong = S3Config::from_url(&url).unwrap();
    wrong.access_key_id = Some("GK000000000000000000000000".into());
    wrong.secret_access_key = Some("00wrongsecret00".into());
    let e = S3ObjectStore::connect(wrong).await.unwrap_err().to_string();
    assert!(e.contains("object store s3://mediaseal"), "{e}");
    assert!(!e.contains("00wrongsecret00"), "{e}");
    let missing = S3Config::from_url(&url.replacen("s3://mediaseal", "s3://no-such-bucket", 1))
        .unwrap()
        .with_env_credentials();
    let e = S3ObjectStore::connect(missing)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-bucket"), "{e}");
    let mut nocreds = S3Config::from_url(&url).unwrap();
    nocreds.access_key_id = None;
    let e = S3ObjectStore::connect(nocreds)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
}
