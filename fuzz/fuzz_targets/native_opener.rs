//! The sans-IO native opener on arbitrary bytes, fed in arbitrary pieces: never panics, releases
//! only authenticated plaintext (a prefix of the golden file's, since nothing else authenticates
//! under its header), agrees with the streaming reader, and ranged opening agrees with the slice.
//!
//! Input: byte 0 picks the mode, bytes 1..9 give piece sizes (and, for ranged mode, the range),
//! the rest is the object (modes 0, 1) or the ciphertext after the golden header (mode 2).
//! - 0: a whole object unlocked from its own header, if that header unlocks with the test key;
//! - 1: the golden header followed by arbitrary segments, through `NativeOpener::new`;
//! - 2: a ranged open of the golden object, fed arbitrary bytes for its fetch range.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mediaseal_crypto::native::{self, Header};
use mediaseal_crypto::{NativeOpener, PrivateKey, UnlockedHeader};

const KEY_PEM: &[u8] = include_bytes!("../../testdata/native/v1/test-key-a.TEST-ONLY.pem");
const GOLDEN: &[u8] = include_bytes!("../../testdata/native/v1/multi-segment.mseal");
const GOLDEN_PLAIN: &[u8] = include_bytes!("../../testdata/native/v1/plaintext/multi-segment.bin");

fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from_bytes(KEY_PEM).expect("the golden test key parses"))
}

fn golden() -> &'static UnlockedHeader {
    static U: OnceLock<UnlockedHeader> = OnceLock::new();
    U.get_or_init(|| UnlockedHeader::unlock(GOLDEN, key()).expect("the golden header unlocks"))
}

/// Feeds `input` in pieces whose sizes cycle through `sizes` (0 means 1); returns what was
/// released and whether everything succeeded.
fn feed(mut opener: NativeOpener, input: &[u8], sizes: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut rest = input;
    let mut cycle = sizes.iter().cycle();
    while !rest.is_empty() {
        let scale = 1 + usize::from(*cycle.next().unwrap_or(&255));
        let n = (scale * scale).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        // A failing update keeps what earlier segments of the same piece released (they did
        // authenticate); the callers check that all of it is authentic.
        if opener.update(piece, &mut out).is_err() {
            return (out, false);
        }
        rest = tail;
    }
    let ok = opener.finish(&mut out).is_ok();
    (out, ok)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (control, body) = data.split_at(9);
    let (mode, sizes) = (control[0], &control[1..]);
    match mode % 3 {
        0 => {
            // Unlocking costs an RSA operation: only for inputs whose header parses.
            if Header::parse(body).is_err() {
                return;
            }
            let Ok(unlocked) = UnlockedHeader::unlock(body, key()) else {
                return;
            };
            let (out, ok) = feed(NativeOpener::new(&unlocked), body, sizes);
            let streamed = native::open_stream(body, Vec::new(), key(), 1);
            match streamed {
                Ok((_, whole)) => {
                    assert!(ok, "the stream reader opened what the opener refused");
                    assert_eq!(out, whole);
                }
                Err(_) => {
                    assert!(!ok, "the opener accepted what the stream reader refused");
                    assert!(whole_prefix(&out, body));
                }
            }
        }
        1 => {
            let header_len = golden().header_len() as usize;
            let mut object = GOLDEN[..header_len].to_vec();
            object.extend_from_slice(body);
            let (out, ok) = feed(NativeOpener::new(golden()), &object, sizes);
            // Only the golden segments authenticate under the golden header.
            assert!(
                GOLDEN_PLAIN.starts_with(&out),
                "released bytes that are not authentic"
            );
            if ok {
                assert_eq!(out, GOLDEN_PLAIN);
            }
        }
        _ => {
            let len = GOLDEN_PLAIN.len() as u64;
            let a = u64::from(u16::from_be_bytes([sizes[0], sizes[1]])) % (len + 2);
            let b = u64::from(u16::from_be_bytes([sizes[2], sizes[3]])) % (len + 2);
            let Ok(opener) = NativeOpener::ranged(golden(), GOLDEN.len() as u64, a..b) else {
                assert!(a > b || a > len || (a == len && b > len));
                return;
            };
            let range = opener
                .plaintext_range()
                .expect("ranged openers name their range");
            // Nothing to fetch only for an empty range.
            let fetch = opener.fetch_range().unwrap_or(0..0);
            assert_eq!(fetch.is_empty(), range.is_empty());
            // Half the time the real ciphertext (which must open to the slice), otherwise the
            // fuzzer's bytes (which must not open to anything else).
            let genuine = sizes[4] & 1 == 0;
            let input = if genuine {
                &GOLDEN[fetch.start as usize..fetch.end as usize]
            } else {
                body
            };
            let (out, ok) = feed(opener, input, &sizes[5..]);
            let expected = &GOLDEN_PLAIN[range.start as usize..range.end as usize];
            assert!(
                expected.starts_with(&out),
                "released bytes outside the range's plaintext"
            );
            if genuine {
                assert!(ok, "the genuine ciphertext did not open");
            }
            if ok {
                assert_eq!(out, expected);
            }
        }
    }
});

/// The opener releases segment by segment and the stream reader chunk by chunk, so after a
/// failure their partial outputs differ in length; both are prefixes of the same authentic
/// plaintext, so one must be a prefix of the other.
fn whole_prefix(out: &[u8], object: &[u8]) -> bool {
    let mut partial = Vec::new();
    let _ = native::open_stream(object, &mut partial, key(), 1);
    partial.starts_with(out) || out.starts_with(&partial)
}
