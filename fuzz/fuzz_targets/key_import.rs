//! Key import on arbitrary bytes (PEM in any layout, DER, public or private): never panics, and a
//! key that imports is within the size limits and re-imports to the same fingerprint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_crypto::{MAX_RSA_BITS, MIN_RSA_BITS, PrivateKey, PublicKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(public) = PublicKey::from_bytes(data) {
        assert!((MIN_RSA_BITS..=MAX_RSA_BITS).contains(&public.bits()));
        let again =
            PublicKey::from_bytes(public.to_pem().as_bytes()).expect("our own PEM re-imports");
        assert_eq!(again.fingerprint(), public.fingerprint());
        let from_der = PublicKey::from_der(public.spki_der()).expect("our own DER re-imports");
        assert_eq!(from_der.fingerprint(), public.fingerprint());
    }
    if let Ok(private) = PrivateKey::from_bytes(data) {
        assert!((MIN_RSA_BITS..=MAX_RSA_BITS).contains(&private.public_key().bits()));
        // A private key is never accepted where a public key belongs.
        assert!(PublicKey::from_bytes(data).is_err());
        let pem = private.to_pkcs8_pem().expect("a parsed key serialises");
        assert_eq!(
            PrivateKey::from_bytes(pem.as_bytes())
                .expect("re-imports")
                .fingerprint(),
            private.fingerprint()
        );
    }
});
