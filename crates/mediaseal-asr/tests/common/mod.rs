//! Shared helpers for the engine tests: speech synthesised at test time by Debian's espeak-ng
//! (and flite when installed) into memory, the telephone chain through sox on pipes, and the
//! rule that a missing engine fails the test under `MEDIASEAL_REQUIRE_ASR=1`.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use mediaseal_asr::audio::{MonoPcm, prepare_wav};
use mediaseal_asr::{WhisperConfig, WhisperEngine, WhisperEnvironment};

/// The agent's lines in the test call.
pub const AGENT: &str = "Thank you for calling Acme Bank customer service. \
    Can I have the card number please? And the expiry date? Thank you, one moment.";
/// The customer's lines: a card number, an expiry date and a phone number.
pub const CUSTOMER: &str = "Hello, I would like to report a lost card. \
    My card number is 4 5 3 9, 1 4 8 8, 0 3 4 3, 6 4 6 7. \
    The expiry date is twelve twenty seven. \
    You can call me back on 4 1 5, 5 5 5, 0 1 3 2.";
pub const CARD: &str = "4539148803436467";
pub const PHONE: &str = "4155550132";
/// Words a usable transcript of [`CUSTOMER`] contains.
pub const CUSTOMER_KEY_WORDS: &str = "lost card card number expiry date call me back";
pub const AGENT_KEY_WORDS: &str = "thank you calling customer service card number expiry date";

/// Whether a missing engine must fail the test rather than skip it.
pub fn asr_required() -> bool {
    std::env::var("MEDIASEAL_REQUIRE_ASR").is_ok_and(|v| v == "1")
}

/// The Whisper environment, or `None` (skip) — or a panic under `MEDIASEAL_REQUIRE_ASR=1`.
pub fn whisper_environment() -> Option<WhisperEnvironment> {
    match WhisperEnvironment::locate() {
        Ok(env) => Some(env),
        Err(e) if asr_required() => panic!("MEDIASEAL_REQUIRE_ASR=1 but {e}"),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// One warm Whisper engine shared by the tests of this binary.
pub fn shared_whisper() -> Option<Arc<WhisperEngine>> {
    static ENGINE: OnceLock<Option<Arc<WhisperEngine>>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let env = whisper_environment()?;
            Some(Arc::new(
                WhisperEngine::start(WhisperConfig::new(&env)).expect("start the Whisper sidecar"),
            ))
        })
        .clone()
}

fn run(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} is needed for this test ({e}); scripts/setup.sh installs it")
        });
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        output.status
    );
    output.stdout
}

/// WAV bytes of `text` spoken by espeak-ng (22.05 kHz, streaming header) with `voice`.
pub fn espeak(text: &str, voice: &str) -> Vec<u8> {
    run(
        "espeak-ng",
        &["-v", voice, "-s", "150", "--stdout", text],
        b"",
    )
}

/// WAV bytes of `text` spoken by flite's `voice`, if flite is installed.
pub fn flite(text: &str, voice: &str) -> Option<Vec<u8>> {
    Command::new("flite").arg("-lv").output().ok()?;
    Some(run(
        "flite",
        &["-voice", voice, "-t", text, "-o", "/dev/stdout"],
        b"",
    ))
}

/// The best available "human-like" voice for `text`: flite's slt when installed, else espeak-ng.
pub fn customer_voice(text: &str) -> Vec<u8> {
    flite(text, "slt").unwrap_or_else(|| espeak(text, "en-us+f3"))
}

/// `wav` through a telephone channel by sox: 300–3400 Hz band-pass, 8 kHz, G.711 μ-law, as a
/// WAV written to a pipe (so its size fields are placeholders).
pub fn telephone_mulaw_wav(wav: &[u8]) -> Vec<u8> {
    run(
        "sox",
        &[
            "-V1", "-t", "wav", "-", "-t", "wav", "-r", "8000", "-e", "mu-law", "-b", "8", "-c",
            "1", "-", "sinc", "300-3400",
        ],
        wav,
    )
}

/// 8 kHz mono s16 samples of `wav` after the band-pass (for building a stereo call).
pub fn telephone_pcm8k(wav: &[u8]) -> Vec<i16> {
    let raw = run(
        "sox",
        &[
            "-V1", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c",
            "1", "-", "sinc", "300-3400",
        ],
        wav,
    );
    raw.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// A dual-channel 8 kHz μ-law call: `left` then silence, and silence then `right`, so the two
/// speakers take turns; encoded by sox from interleaved PCM on a pipe.
pub fn stereo_call(left: &[i16], right: &[i16]) -> Vec<u8> {
    let total = left.len() + right.len() + 8000;
    let mut raw = Vec::with_capacity(total * 4);
    for n in 0..total {
        let l = left.get(n).copied().unwrap_or(0);
        let r = n
            .checked_sub(left.len() + 4000)
            .and_then(|i| right.get(i))
            .copied()
            .unwrap_or(0);
        raw.extend_from_slice(&l.to_le_bytes());
        raw.extend_from_slice(&r.to_le_bytes());
    }
    run(
        "sox",
        &[
            "-V1", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "2", "-", "-t",
            "wav", "-e", "mu-law", "-b", "8", "-",
        ],
        &raw,
    )
}

/// The single channel of a mono WAV, prepared to 16 kHz by mediaseal-asr.
pub fn mono_16k(wav: &[u8]) -> MonoPcm {
    let mut prepared = prepare_wav(wav).expect("synthesised WAV parses");
    assert_eq!(prepared.channels.len(), 1);
    prepared.channels.remove(0)
}
