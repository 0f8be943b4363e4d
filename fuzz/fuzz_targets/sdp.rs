//! SDP: arbitrary bytes never panic the parser, the typed attribute views, the secure-media
//! policy or the answer builder; whatever parses serializes to bytes that parse to the same
//! description.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_sip::message::Transport;
use mediaseal_sip::policy::evaluate_offer;
use mediaseal_sip::sdp::{AudioConfig, SessionDescription, audio_answer};

fuzz_target!(|data: &[u8]| {
    let Ok(sd) = SessionDescription::parse(data) else {
        return;
    };
    let again = SessionDescription::parse(&sd.to_bytes()).expect("serialized SDP parses");
    assert_eq!(again, sd, "round trip changed the description");
    for (i, m) in sd.media.iter().enumerate() {
        let _ = (m.rtpmaps(), m.ptime(), m.rtcp(), m.rtcp_mux(), m.crypto(), sd.direction(i));
        let _ = sd.rtp_destination(i);
    }
    let cfg = AudioConfig::new([192, 0, 2, 1].into(), 30000);
    for secure in [false, true] {
        for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            let Ok(accepted) = evaluate_offer(secure, transport, Some(&sd)) else {
                continue;
            };
            assert_eq!(accepted.srtp.is_some(), secure);
            let crypto = accepted.srtp.as_ref().and_then(|c| c.answer().ok()).map(|a| a.attribute);
            if let Ok(answer) = audio_answer(&sd, accepted.media_index, &cfg, crypto.as_ref()) {
                let bytes = answer.sdp.to_bytes();
                let parsed = SessionDescription::parse(&bytes).expect("our answer parses");
                assert_eq!(parsed.media.len(), sd.media.len());
            }
        }
    }
});
