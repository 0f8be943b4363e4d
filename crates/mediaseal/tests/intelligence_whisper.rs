//! Issue 13 end to end with the default engine: a real `mediaseal serve` started from the
//! checkout with no `--asr` option picks Whisper base from `.asr-venv` (installed by the
//! README's test command), and the official twilio-python drives services, operators and
//! transcripts (`interop/intelligence/twilio_intelligence.py`). The recording is a caller
//! spoken by flite at test time; the sentences sealed with the customer's key are downloaded
//! and opened by seed 002's own decryption steps; the PII operator's sealed result names the
//! phone number; nothing of the speech rests in the data directory or the log.

mod server;

use std::process::{Command, Stdio};

use server::*;

/// What the caller says: a lost card, then a number to call back.
const CALLER: &str = "Hello, I would like to report a lost card. You can call me back on \
    4 1 5, 5 5 5, 0 1 3 2. Thank you very much.";
/// The words whose recall is measured (what a recogniser must get for the transcript to be
/// any use); a threshold, not an exact text.
const KEY_WORDS: [&str; 8] = [
    "hello", "report", "lost", "card", "call", "back", "thank", "much",
];
/// The phone number, as the PII operator reports it.
const PHONE: &str = "4155550132";

fn spoken(text: &str) -> Vec<u8> {
    let flite = mediaseal_test_support::require_tool("flite", &["-lv"]);
    let out = Command::new(flite)
        .args(["-voice", "slt", "-t", text, "-o", "/dev/stdout"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run flite");
    assert!(out.status.success() && out.stdout.len() > 1000, "flite");
    out.stdout
}

/// The share of [`KEY_WORDS`] in `text`.
fn recall(text: &str) -> f64 {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    let found = KEY_WORDS
        .iter()
        .filter(|k| words.iter().any(|w| w == *k))
        .count();
    found as f64 / KEY_WORDS.len() as f64
}

#[test]
fn serve_picks_whisper_and_twilio_python_opens_the_sealed_transcript() {
    let whisper_env = workspace_root().join(".asr-venv/.mediaseal-asr-ready");
    assert!(
        whisper_env.exists(),
        "{} is missing: run scripts/setup-asr.sh (the README's test command does)",
        whisper_env.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let account = create_account(&data);
    let srv = Server::start(&data, &log, &[]);
    let work = dir.path().join("work");
    let keys = work.join("keys");
    let made = Command::new(bin())
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(made.status.success(), "keygen");
    let wav = work.join("caller.wav");
    std::fs::write(&wav, spoken(CALLER)).unwrap();
    let config = serde_json::json!({
        "base_url": srv.url(),
        "account_sid": account.sid,
        "auth_token": account.token,
        "public_key_pem": keys.join("public_key.pem"),
        "private_key_pem": keys.join("private_key.pem"),
        "recording_wav": wav,
    });
    let cfg = work.join("config.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let out = Command::new(mediaseal_test_support::python(&[
        "twilio",
        "requests",
        "cryptography",
    ]))
    .arg(workspace_root().join("interop/intelligence/twilio_intelligence.py"))
    .arg(&cfg)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "twilio-python scenario failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The engine is picked at the first transcript: Whisper, from the checkout's `.asr-venv`.
    let log_text = std::fs::read_to_string(&log).unwrap();
    let picked = log_text
        .lines()
        .find(|l| l.contains("speech engine picked"))
        .unwrap_or_else(|| panic!("no engine was picked:\n{log_text}"));
    assert!(
        picked.contains("whisper"),
        "serve chose another engine: {picked}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("whisper through mediaseal: {report}");
    for key in ["encrypted_text", "plain_text"] {
        let text = report[key].as_str().unwrap();
        assert!(recall(text) >= 0.75, "{key}: {text:?}");
    }
    // The PII operator's result, sealed with the customer's key and opened by the seed's
    // script, names the phone number Whisper wrote.
    assert_eq!(
        report["encrypted_phones"],
        serde_json::json!([PHONE]),
        "{report}"
    );
    // Nothing spoken rests in the server's data directory or its log.
    drop(srv);
    for needle in ["lost card", "report a lost", PHONE] {
        let found = files_containing(&data, needle.as_bytes());
        assert!(found.is_empty(), "{needle:?} at rest in {found:?}");
        let log_text = std::fs::read_to_string(&log).unwrap();
        assert!(!log_text.contains(needle), "{needle:?} in the log");
    }
}
