//! What mediaseal-asr reads from outside: WAV recordings, an OpenAI-compatible server's
//! `verbose_json` answer and pocketsphinx's output. None may panic on arbitrary bytes, and a
//! prepared recording always has one 16 kHz buffer per declared channel.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(prepared) = mediaseal_asr::audio::prepare_wav(data) {
        assert_eq!(prepared.channels.len(), usize::from(prepared.source.channels));
    }
    let _ = mediaseal_asr::parse_verbose_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let transcript = mediaseal_asr::parse_pocketsphinx_output(text, true);
        assert!(transcript.segments.iter().all(|s| !s.words.is_empty()));
    }
});
