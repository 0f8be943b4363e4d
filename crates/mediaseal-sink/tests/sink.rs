//! The sink against a real directory object store: what it stores opens with the customer's
//! (or the service's) private key through the crypto crate's own readers, and nothing survives
//! an abort or a drop.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use mediaseal_crypto::{
    Envelope, Format, PrivateKey, S3Headers, native, open_seekable_to_writer, parse_details,
};
use mediaseal_sink::{
    CustomerKey, Seal, SealingStream, SinkError, SinkFactory, receipt_object_meta,
};
use mediaseal_store::model::Sealing;
use mediaseal_store::{FsObjectStore, ObjectStore};

fn keys() -> &'static (PrivateKey, PrivateKey) {
    static KEYS: OnceLock<(PrivateKey, PrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            PrivateKey::generate(2048).unwrap(),
            PrivateKey::generate(2048).unwrap(),
        )
    })
}

fn factory(dir: &std::path::Path) -> (Arc<dyn ObjectStore>, SinkFactory) {
    let objects: Arc<dyn ObjectStore> = Arc::new(FsObjectStore::new(dir).unwrap());
    let at_rest = keys().1.public_key().clone();
    (objects.clone(), SinkFactory::new(objects, at_rest))
}

fn customer(format: Format) -> Seal {
    Seal::Customer {
        format,
        key: CustomerKey {
            sid: "CR0123456789abcdef0123456789abcdef".to_owned(),
            key: keys().0.public_key().clone(),
        },
    }
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn stored_bytes(objects: &Arc<dyn ObjectStore>, key: &str) -> Vec<u8> {
    let mut r = objects.open_blocking(key).unwrap();
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut v).unwrap();
    v
}

/// The S3 envelope of a stored object: it travels as object headers, as the seeds' recipes read
/// it.
async fn s3_envelope(objects: &Arc<dyn ObjectStore>, key: &str) -> Envelope {
    let info = objects.head(key).await.unwrap();
    let lines: String = info
        .meta
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    S3Headers::from_lines(&lines)
        .unwrap()
        .to_envelope()
        .unwrap()
}

#[tokio::test]
async fn every_seal_opens_with_the_right_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let (objects, sinks) = factory(dir.path());
    let plain = content(1_300_000);
    for (i, seal) in [
        customer(Format::RsaAes),
        customer(Format::S3Cbc),
        customer(Format::S3Gcm),
        Seal::AtRest,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("AC1/RE{i}");
        let mut sink = sinks.open(&key, &seal).await.unwrap();
        for piece in plain.chunks(70_001) {
            sink.write(piece).await.unwrap();
        }
        let stored = sink.finish().await.unwrap();
        assert_eq!(stored.plain_size, plain.len() as u64);
        assert_eq!(&stored.head[..], &plain[..4096]);
        let sealed = stored_bytes(&objects, &key).await;
        assert_eq!(sealed.len() as u64, stored.sealed_size);
        assert!(
            !sealed.windows(64).any(|w| w == &plain[1000..1064]),
            "plaintext stored"
        );
        let opened = match &seal {
            Seal::AtRest => {
                assert_eq!(stored.sealing, Sealing::AtRest);
                native::open_stream(Cursor::new(sealed), Vec::new(), &keys().1, 1)
                    .unwrap()
                    .1
            }
            Seal::Customer { format, .. } => {
                assert_eq!(stored.sealing, Sealing::Customer);
                let envelope = if *format == Format::RsaAes {
                    parse_details(&stored.encryption_details_json().unwrap()).unwrap()
                } else {
                    s3_envelope(&objects, &key).await
                };
                open_seekable_to_writer(Cursor::new(sealed), Vec::new(), &envelope, &keys().0)
                    .unwrap()
            }
        };
        assert_eq!(opened, plain, "{seal:?}");
    }
}

/// A room worker seals with a `SealingStream` (public keys, no store) and the server stores its
/// ciphertext in a sink opened "sealed elsewhere": the object opens like one the sink sealed
/// itself, and each half refuses the other's kind of input.
#[tokio::test]
async fn ciphertext_sealed_in_another_process_is_stored_as_the_sink_would() {
    let dir = tempfile::tempdir().unwrap();
    let (objects, sinks) = factory(dir.path());
    let plain = content(900_000);
    for (i, seal) in [customer(Format::S3Cbc), Seal::AtRest]
        .into_iter()
        .enumerate()
    {
        let key = format!("AC1/RT{i}");
        let mut stream = SealingStream::new(&seal, sinks.at_rest_key()).unwrap();
        let mut remote = sinks
            .open_sealed_elsewhere(&key, stream.sealing())
            .await
            .unwrap();
        assert!(matches!(
            remote.write(b"plaintext").await,
            Err(SinkError::SealedElsewhere)
        ));
        let mut sealed = Vec::new();
        for piece in plain.chunks(33_333) {
            stream.write(piece, &mut sealed).unwrap();
            remote.write_sealed(&sealed).await.unwrap();
            sealed.clear();
        }
        let (receipt, head) = stream.finish(&mut sealed).unwrap();
        assert_eq!(&head[..], &plain[..4096]);
        remote.write_sealed(&sealed).await.unwrap();
        let stored = remote
            .finish_sealed(receipt_object_meta(&receipt))
            .await
            .unwrap();
        let bytes = stored_bytes(&objects, &key).await;
        assert_eq!(bytes.len() as u64, stored);
        let opened = match &seal {
            Seal::AtRest => {
                native::open_stream(Cursor::new(bytes), Vec::new(), &keys().1, 1)
                    .unwrap()
                    .1
            }
            Seal::Customer { .. } => {
                let envelope = s3_envelope(&objects, &key).await;
                open_seekable_to_writer(Cursor::new(bytes), Vec::new(), &envelope, &keys().0)
                    .unwrap()
            }
        };
        assert_eq!(opened, plain, "{seal:?}");
    }
    // A sink that seals itself takes no ciphertext.
    let mut local = sinks.open("AC1/RTx", &Seal::AtRest).await.unwrap();
    assert!(matches!(
        local.write_sealed(b"sealed").await,
        Err(SinkError::NotSealedElsewhere)
    ));
}

#[tokio::test]
async fn aborted_and_dropped_sinks_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (objects, sinks) = factory(dir.path());
    let mut a = sinks.open("AC1/REa", &Seal::AtRest).await.unwrap();
    a.write(&content(2_000_000)).await.unwrap();
    a.abort().await;
    let mut b = sinks
        .open("AC1/REb", &customer(Format::RsaAes))
        .await
        .unwrap();
    b.write(&content(700_000)).await.unwrap();
    drop(b);
    assert!(objects.list("").await.unwrap().is_empty());
    let partials: Vec<_> = walk(dir.path());
    assert!(partials.is_empty(), "left behind: {partials:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
