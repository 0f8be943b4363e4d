//! What mediaseal-intelligence reads from outside: a transcript's `Channel` JSON (from the
//! client), an opened sentences object (from storage) and recognised text (the PII finder and
//! the redacted view). None may panic on arbitrary bytes; an accepted `Channel` names a recording
//! and survives its own normalisation unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_intelligence::ChannelSpec;
use mediaseal_intelligence::sentences::SentencesDoc;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(spec) = ChannelSpec::parse(text)
    {
        assert!(spec.source_sid().is_some());
        let again = ChannelSpec::parse(&spec.to_json()).expect("a normalised Channel parses");
        assert_eq!(again, spec);
    }
    if let Ok(doc) = SentencesDoc::parse(data) {
        // The redacted view keeps every sentence and never grows its words.
        let redacted = mediaseal_intelligence::pii::redact(&doc.sentences);
        assert_eq!(redacted.len(), doc.sentences.len());
        for (r, s) in redacted.iter().zip(&doc.sentences) {
            assert!(r.words.len() <= s.words.len());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let words: Vec<&str> = text.split_whitespace().collect();
        for (first, last, _) in mediaseal_intelligence::pii::find(&words) {
            assert!(first <= last && last < words.len());
        }
    }
});
