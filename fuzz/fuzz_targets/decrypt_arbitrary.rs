//! Decryption of arbitrary bytes, in every format: never panics, and never returns plaintext for
//! bytes that were not sealed under the key.
//!
//! The first input byte picks what is fuzzed:
//! - 0: a whole native file opened with the golden test key (header parsing, recipient lookup,
//!   streaming and random-access decryption);
//! - 1: the segments after the golden `multi-segment.mseal` header, already unlocked, on one and
//!   on two threads (the two must agree);
//! - 2, 3: a single-tag AES-GCM / an AES-CBC body under a fixed key;
//! - 4: an encryption-details file (JSON or `x-amz-meta-*` lines).
#![no_main]

use std::io::{Cursor, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mediaseal_crypto::fuzzing::{UnlockedNative, open_envelope_body};
use mediaseal_crypto::native::{self, NativeReader};
use mediaseal_crypto::{DecryptError, PrivateKey};

const KEY_PEM: &[u8] = include_bytes!("../../testdata/native/v1/test-key-a.TEST-ONLY.pem");
const GOLDEN: &[u8] = include_bytes!("../../testdata/native/v1/multi-segment.mseal");

fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from_bytes(KEY_PEM).expect("the golden test key parses"))
}

fn unlocked() -> &'static UnlockedNative {
    static U: OnceLock<UnlockedNative> = OnceLock::new();
    U.get_or_init(|| {
        UnlockedNative::new(GOLDEN, key()).expect("the golden file unlocks with its key")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => {
            let streamed = native::open_stream(rest, Vec::new(), key(), 1);
            // Past the header and the key (the costly RSA step), compare with random access.
            let unlocked = matches!(
                streamed,
                Ok(_) | Err(DecryptError::AuthenticationFailed | DecryptError::Io(_))
            );
            if !unlocked {
                return;
            }
            if let Ok(mut reader) = NativeReader::new(Cursor::new(rest), key()) {
                let mut all = Vec::new();
                let random_access = reader.read_to_end(&mut all);
                if let Ok((len, out)) = &streamed {
                    assert_eq!(random_access.ok(), Some(out.len()));
                    assert_eq!(*len as usize, all.len());
                    assert_eq!(&all, out);
                }
            }
        }
        1 => {
            let one = unlocked().open_body(rest, 1);
            let two = unlocked().open_body(rest, 2);
            assert_eq!(
                one.as_ref().ok(),
                two.as_ref().ok(),
                "thread count changed the outcome"
            );
            if let Ok(plain) = one {
                // Anything that authenticates under the golden header is the golden body itself.
                assert_eq!(plain.len(), 12_388);
            }
        }
        2 => {
            let _ = open_envelope_body(true, [7; 32], &[9; 12], None, rest);
        }
        3 => {
            if let Ok(plain) = open_envelope_body(false, [7; 32], &[9; 16], None, rest) {
                assert!(plain.len() < rest.len() && rest.len() % 16 == 0);
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = mediaseal_crypto::parse_details(text);
            }
        }
    }
});
