//! Properties of the parsers: no input panics them, what parses round-trips, and no edit of a
//! valid Access Token verifies.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mediaseal_rooms::control::{FrameDecoder, Request, encode_frame};
use mediaseal_rooms::signal::{ClientMessage, ServerMessage};
use mediaseal_rooms::token::{ApiKey, VerifyOptions, verify_access_token};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const SECRET: &[u8] = b"proptest secret";

fn valid_token() -> String {
    let header = r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#;
    let payload = format!(
        r#"{{"jti":"SK1-{NOW}","grants":{{"identity":"bob","video":{{"room":"r"}}}},"iss":"SK1","exp":{},"nbf":{NOW},"sub":"AC1"}}"#,
        NOW + 600
    );
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SECRET), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn lookup(sid: &str) -> Option<ApiKey> {
    (sid == "SK1").then(|| ApiKey::new("AC1", SECRET))
}

proptest! {
    #[test]
    fn any_edit_of_a_valid_token_is_refused(index in 0usize..400, byte in 0x21u8..0x7f) {
        let token = valid_token();
        prop_assume!(index < token.len());
        prop_assume!(token.as_bytes()[index] != byte);
        let mut edited = token.into_bytes();
        edited[index] = byte;
        let edited = String::from_utf8(edited).unwrap();
        prop_assert!(verify_access_token(&edited, NOW, &lookup, VerifyOptions::default()).is_err());
    }

    #[test]
    fn arbitrary_tokens_never_panic(s in ".{0,600}") {
        let _ = verify_access_token(&s, NOW, &lookup, VerifyOptions::default());
    }

    #[test]
    fn arbitrary_signal_messages_never_panic_and_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(m) = ClientMessage::from_json(&bytes) {
            prop_assert_eq!(ClientMessage::from_json(m.to_json().as_bytes()).unwrap(), m);
        }
        let _ = ServerMessage::from_json(&bytes);
    }

    #[test]
    fn control_frames_survive_any_chunking(cuts in proptest::collection::vec(1usize..40, 1..20)) {
        let requests = vec![
            Request::Stats,
            Request::Leave { participant_sid: "PA1".into() },
            Request::Answer { participant_sid: "PA2".into(), sdp: "v=0\r\n".repeat(20) },
            Request::Complete,
        ];
        let stream: Vec<u8> = requests.iter().flat_map(encode_frame).collect();
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
            decoder.push(chunk);
            rest = tail;
            while let Some(r) = decoder.next_message::<Request>().unwrap() {
                got.push(r);
            }
        }
        prop_assert_eq!(got, requests);
    }
}
