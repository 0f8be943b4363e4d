//! The pocketsphinx engine for real: Debian's `pocketsphinx_continuous` on synthesised speech.
//! Skips when pocketsphinx is not installed, fails then under `MEDIASEAL_REQUIRE_ASR=1`.

mod common;

use common::*;
use mediaseal_asr::score::{digit_recall, recall};
use mediaseal_asr::{
    AsrOptions, EngineSpec, PocketsphinxEngine, SpeechEngine, TranscribeError, select_engine,
};

fn engine() -> Option<PocketsphinxEngine> {
    match PocketsphinxEngine::debian() {
        Ok(engine) => Some(engine),
        Err(e) if asr_required() => panic!("MEDIASEAL_REQUIRE_ASR=1 but {e}"),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

#[test]
fn pocketsphinx_recognises_a_synthesised_customer() {
    let Some(engine) = engine() else { return };
    assert_eq!(engine.id(), "pocketsphinx:en-us");
    // Pocketsphinx copes with flite's voices and fails on espeak-ng's (see docs/ASR.md), so the
    // bar depends on which synthesiser is installed.
    let (wav, words_bar, digits_bar) = match flite(CUSTOMER, "slt") {
        Some(wav) => (wav, 0.6, 0.6),
        None => {
            eprintln!("flite not installed: espeak-ng voice, low bar");
            (espeak(CUSTOMER, "en-us"), 0.1, 0.0)
        }
    };
    let pcm = mono_16k(&wav);
    let transcript = engine
        .transcribe(pcm.as_slice(), &AsrOptions::default())
        .unwrap();
    let text = transcript.text();
    let (words, card, phone) = (
        recall(CUSTOMER_KEY_WORDS, &text),
        digit_recall(CARD, &text),
        digit_recall(PHONE, &text),
    );
    eprintln!("pocketsphinx: key words {words:.2}, card digits {card:.2}, phone digits {phone:.2}");
    assert!(words >= words_bar, "key words {words:.2} in {text:?}");
    assert!(
        card >= digits_bar && phone >= digits_bar,
        "digits {card:.2}/{phone:.2} in {text:?}"
    );

    let mut last_end = 0.0f32;
    for segment in &transcript.segments {
        assert!(segment.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)));
        for word in &segment.words {
            assert!(
                word.start >= last_end - 0.001 && word.start < word.end,
                "{word:?}"
            );
            assert!(word.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)));
            assert!(
                !word.text.contains('(') && !word.text.starts_with('<'),
                "filler or variant kept"
            );
            last_end = word.end;
        }
    }
    assert!(f64::from(last_end) <= pcm.duration_secs() + 0.5);
}

#[test]
fn pocketsphinx_refuses_other_languages_and_handles_silence() {
    let Some(engine) = engine() else { return };
    let german = AsrOptions {
        language: Some("de".into()),
        ..AsrOptions::default()
    };
    let error = engine.transcribe(&[0; 1600], &german).unwrap_err();
    assert!(
        matches!(error, TranscribeError::Unsupported { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("whisper"), "{error}");
    let silence = engine
        .transcribe(&vec![0; 32_000], &AsrOptions::default())
        .unwrap();
    assert!(silence.word_count() <= 2);
    assert!(
        engine
            .transcribe(&[], &AsrOptions::default())
            .unwrap()
            .segments
            .is_empty()
    );
}

#[test]
fn pocketsphinx_is_selected_by_name() {
    if engine().is_none() {
        return;
    }
    let engine = select_engine(&EngineSpec::Pocketsphinx, None).unwrap();
    assert_eq!(engine.id(), "pocketsphinx:en-us");
}
