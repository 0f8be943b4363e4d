//! A custom operator's `Config` (from the client) and an opened operator result (from storage):
//! neither may panic on arbitrary bytes. An accepted `Config` survives its own normalisation
//! unchanged, and the phrase operator it makes runs over arbitrary text without panicking,
//! with every position inside the utterance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_intelligence::operators::{
    Operator, OperatorConfig, OperatorResult, PHRASE_TYPE, PII_TYPE, parse_config, run,
};
use mediaseal_intelligence::sentences::Sentence;

fuzz_target!(|data: &[u8]| {
    let _ = OperatorResult::parse(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    assert!(parse_config(PII_TYPE, text).is_err());
    // The first line is the configuration, the rest the utterance it runs over.
    let (config, spoken) = text.split_once('\n').unwrap_or((text, text));
    let Ok(parsed) = parse_config(PHRASE_TYPE, config) else {
        return;
    };
    let again = parse_config(PHRASE_TYPE, &parsed.to_json()).expect("a normalised Config parses");
    assert_eq!(again, parsed);
    let sentence = Sentence {
        confidence: None,
        end_time: None,
        media_channel: 1,
        sentence_index: 0,
        sid: "GX00000000000000000000000000000000".to_owned(),
        start_time: None,
        transcript: spoken.to_owned(),
        words: Vec::new(),
    };
    let words = spoken.split_whitespace().count();
    for operator in [
        Operator::pii(),
        Operator {
            sid: "LY00000000000000000000000000000002".to_owned(),
            name: "fuzz".to_owned(),
            config: OperatorConfig::Phrases(parsed),
        },
    ] {
        let result = run(&operator, "GT00000000000000000000000000000000", &[sentence.clone()]);
        for u in &result.utterance_results {
            for p in &u.utterance_parts {
                assert!(p.start_word <= p.end_word && p.end_word < words);
            }
        }
        let back = OperatorResult::parse(&result.to_json()).expect("a result parses");
        assert_eq!(back, result);
    }
});
