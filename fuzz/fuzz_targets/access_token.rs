//! Access Tokens: arbitrary bytes never panic the verifier; a token that verifies keeps
//! verifying to the same claims, has exactly three segments, and its grant check answers
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_rooms::token::{ApiKey, RoomRef, VerifyOptions, verify_access_token};

const NOW: u64 = 1_796_190_000;

fn lookup(sid: &str) -> Option<ApiKey> {
    // The key the stored twilio-python vectors use, so the corpus can reach the claim checks.
    (sid == "SK77777777777777777777777777777777").then(|| {
        ApiKey::new(
            "AC55555555555555555555555555555555",
            b"mediaseal-test-api-key-secret-0123456789".to_vec(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    for now in [NOW, 0, u64::MAX] {
        let Ok(verified) = verify_access_token(&token, now, &lookup, VerifyOptions::default())
        else {
            continue;
        };
        assert_eq!(token.split('.').count(), 3);
        let again = verify_access_token(&token, now, &lookup, VerifyOptions::default())
            .expect("verification is deterministic");
        assert_eq!(again, verified);
        assert!(!verified.identity.is_empty());
        let room = RoomRef {
            sid: "RM99999999999999999999999999999999",
            unique_name: "daily-standup",
        };
        let _ = verified.authorize_room(room);
    }
});
