//! The relay's parsers of hostile input: RTP headers, RFC 4733 telephone events (and the DTMF
//! detector), and WAV files fetched for `<Play>`. Arbitrary bytes never panic; what parses
//! re-encodes to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_call::dtmf::{DtmfDetector, TelephoneEvent};
use mediaseal_call::prompt::decode_wav;
use mediaseal_call::rtp::RtpHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = RtpHeader::parse(data) {
        assert!(h.payload_offset <= h.payload_end && h.payload_end <= data.len());
        let _ = h.payload(data);
    }
    if let Ok(ev) = TelephoneEvent::parse(data) {
        let again = TelephoneEvent::parse(&ev.to_bytes()).expect("an encoded event parses");
        assert_eq!(again, ev);
    }
    let mut detector = DtmfDetector::new();
    for (i, chunk) in data.chunks(6).enumerate() {
        let _ = detector.on_packet(1, i as u32 / 3, chunk);
    }
    if let Ok(pcm) = decode_wav(data) {
        assert!(pcm.len() <= mediaseal_call::prompt::MAX_PROMPT_SAMPLES);
    }
});
