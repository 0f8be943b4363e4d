//! The frozen native-format golden files of `testdata/native/v1/` must keep opening, byte for byte,
//! with the current code. They are never regenerated: see `testdata/native/v1/README.md`.

use std::fs;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use mediaseal_crypto::native::{self, Header, NativeReader};
use mediaseal_crypto::{DecryptError, PrivateKey, PublicKey};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/native/v1")
}

fn manifest() -> Value {
    let text = fs::read_to_string(dir().join("manifest.json"))
        .expect("testdata/native/v1/manifest.json is readable");
    serde_json::from_str(&text).expect("manifest.json is valid JSON")
}

fn key(name: &str) -> PrivateKey {
    PrivateKey::from_bytes(&fs::read(dir().join(name)).unwrap()).unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("manifest field '{field}' is missing or not a string"))
}

fn files() -> Vec<Value> {
    let files = manifest()["files"]
        .as_array()
        .expect("manifest has a files list")
        .clone();
    assert!(files.len() >= 5, "the golden set shrank");
    files
}

#[test]
fn every_golden_file_opens_to_its_recorded_plaintext() {
    for entry in files() {
        let name = str_of(&entry, "file");
        let sealed = fs::read(dir().join(name)).unwrap();
        let want_len = entry["plaintext_len"].as_u64().unwrap();
        let want_sha = str_of(&entry, "plaintext_sha256");
        let plaintext_file = fs::read(dir().join(str_of(&entry, "plaintext"))).unwrap();
        assert_eq!(
            sha256_hex(&plaintext_file),
            want_sha,
            "{name}: the committed plaintext changed"
        );
        let opens_with = entry["opens_with"].as_array().unwrap();
        assert!(!opens_with.is_empty());
        for k in opens_with {
            let k = key(k.as_str().unwrap());
            for threads in [1, 2] {
                let (len, out) = native::open_stream(&sealed[..], Vec::new(), &k, threads)
                    .unwrap_or_else(|e| panic!("{name} no longer opens: {e}"));
                assert_eq!(len, want_len, "{name}");
                assert_eq!(sha256_hex(&out), want_sha, "{name}");
            }
        }
    }
}

#[test]
fn golden_headers_say_what_the_manifest_says_and_serialise_canonically() {
    for entry in files() {
        let name = str_of(&entry, "file");
        let sealed = fs::read(dir().join(name)).unwrap();
        let (header, header_len) = Header::parse(&sealed).unwrap();
        assert_eq!(
            header.segment_size() as u64,
            entry["segment_size"].as_u64().unwrap(),
            "{name}"
        );
        let recipients = entry["recipients"].as_array().unwrap();
        assert_eq!(header.recipients.len(), recipients.len(), "{name}");
        for (got, want) in header.recipients.iter().zip(recipients) {
            assert_eq!(got.key_id, str_of(want, "key_id"), "{name}");
            assert_eq!(
                got.fingerprint.to_hex(),
                str_of(want, "fingerprint"),
                "{name}"
            );
        }
        assert_eq!(
            header.to_bytes().unwrap(),
            &sealed[..header_len],
            "{name}: header is not canonical"
        );
        let len = native::plaintext_len(
            header_len as u64,
            header.segment_size() as u64,
            sealed.len() as u64,
        );
        assert_eq!(len, entry["plaintext_len"].as_u64(), "{name}");
    }
}

#[test]
fn golden_recipient_fingerprints_match_the_public_keys() {
    let m = manifest();
    for (name, k) in m["keys"].as_object().unwrap() {
        let public =
            PublicKey::from_bytes(&fs::read(dir().join(str_of(k, "public"))).unwrap()).unwrap();
        assert_eq!(
            public.fingerprint().to_hex(),
            str_of(k, "fingerprint"),
            "{name}"
        );
        assert_eq!(key(name).fingerprint(), public.fingerprint(), "{name}");
        assert_eq!(public.bits() as u64, k["bits"].as_u64().unwrap());
    }
}

#[test]
fn other_keys_are_told_who_the_golden_file_is_for() {
    for entry in files() {
        let name = str_of(&entry, "file");
        let sealed = fs::read(dir().join(name)).unwrap();
        for k in entry["refused_by"].as_array().unwrap() {
            let k = key(k.as_str().unwrap());
            let err = native::open_stream(&sealed[..], Vec::new(), &k, 1).unwrap_err();
            assert!(
                matches!(err, DecryptError::WrongKey { .. }),
                "{name}: {err}"
            );
            let text = err.to_string();
            for r in entry["recipients"].as_array().unwrap() {
                let id = str_of(r, "key_id");
                let named = if id.is_empty() {
                    &str_of(r, "fingerprint")[..16]
                } else {
                    id
                };
                assert!(
                    text.contains(named),
                    "{name}: '{text}' does not name {named}"
                );
            }
            assert!(
                text.contains(&k.fingerprint().to_hex()),
                "{name}: '{text}' does not name the given key"
            );
        }
    }
}

#[test]
fn golden_files_allow_random_access() {
    let entry = files()
        .into_iter()
        .find(|e| e["file"] == "multi-segment.mseal")
        .unwrap();
    let sealed = fs::read(dir().join("multi-segment.mseal")).unwrap();
    let plain = fs::read(dir().join(str_of(&entry, "plaintext"))).unwrap();
    let mut reader =
        NativeReader::new(Cursor::new(&sealed), &key("test-key-a.TEST-ONLY.pem")).unwrap();
    assert_eq!(reader.len(), plain.len() as u64);
    for (start, len) in [
        (0usize, 1usize),
        (4095, 2),
        (8192, 4096),
        (12_300, 88),
        (100, 12_000),
    ] {
        reader.seek(SeekFrom::Start(start as u64)).unwrap();
        let mut got = vec![0u8; len];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(got, &plain[start..start + len], "range {start}+{len}");
    }
}

#[test]
fn damaged_golden_files_fail_authentication() {
    let sealed = fs::read(dir().join("multi-segment.mseal")).unwrap();
    let k = key("test-key-a.TEST-ONLY.pem");
    let (_, header_len) = Header::parse(&sealed).unwrap();
    let stride = 4096 + 16;
    let auth_failed = |file: &[u8]| {
        matches!(
            native::open_stream(file, Vec::new(), &k, 1),
            Err(DecryptError::AuthenticationFailed)
        )
    };
    let mut flipped = sealed.clone();
    flipped[header_len + stride + 7] ^= 1;
    assert!(auth_failed(&flipped), "bit flip");
    assert!(
        auth_failed(&sealed[..header_len + 2 * stride]),
        "cut at a segment boundary"
    );
    assert!(auth_failed(&sealed[..sealed.len() - 1]), "one byte short");
    let mut swapped = sealed.clone();
    swapped[header_len..header_len + stride]
        .copy_from_slice(&sealed[header_len + stride..header_len + 2 * stride]);
    swapped[header_len + stride..header_len + 2 * stride]
        .copy_from_slice(&sealed[header_len..header_len + stride]);
    assert!(auth_failed(&swapped), "segments swapped");
    let mut prefix_changed = sealed;
    prefix_changed[12] ^= 1; // first byte of the nonce prefix: the header is bound into every segment
    assert!(auth_failed(&prefix_changed), "nonce prefix edited");
}

/// The worked example of `docs/FORMAT.md` §1.8, recomputed with aws-lc-rs's one-shot AEAD from
/// the values the document prints, so the document cannot drift from the file.
#[test]
fn format_md_worked_example_is_right() {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
    let file = fs::read(dir().join("one-byte.mseal")).unwrap();
    assert_eq!(file.len(), 366);
    assert_eq!(&file[..12], hex("894d5345414c0d0a01010c01").as_slice());
    assert_eq!(&file[12..19], hex("d038295f49440f").as_slice());
    assert_eq!(&file[19..23], hex("0000015d").as_slice());
    assert_eq!(
        sha256_hex(&file[..349]),
        "92cce4d78e354540b1c857983eb9002901d6ab305d087b6b0fc7a8d228134b58"
    );
    let cek = hex("d79ac08ee6fd876668c76f2c2efe27ca30de8da414234a299fb316d012b0fab6");
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
    let nonce = Nonce::try_assume_unique_for_key(&hex("d038295f49440f0000000001")).unwrap();
    let aad = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &file[..349]);
    let mut segment = file[349..].to_vec();
    assert_eq!(segment, hex("1e2fae2a91b93d260bdb7a89b59e146689"));
    let plain = aead
        .open_in_place(nonce, Aad::from(aad.as_ref()), &mut segment)
        .unwrap();
    assert_eq!(plain, b"M");
    // And the CEK is what the test key unwraps from the header.
    let (_, plaintext) =
        native::open_stream(&file[..], Vec::new(), &key("test-key-a.TEST-ONLY.pem"), 1).unwrap();
    assert_eq!(plaintext, b"M");
}
