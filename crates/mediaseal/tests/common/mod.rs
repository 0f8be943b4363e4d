//! Helpers shared by the CLI and interop tests: running the binary, finding the external tools
//! (real ones, never mocks), and making inputs.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) const SETUP_HINT: &str =
    "run scripts/setup.sh (or scripts/test.sh, which runs it) to install the test tools";

pub(crate) fn workspace() -> PathBuf {
    mediaseal_test_support::workspace_root()
}

pub(crate) fn testdata(rel: &str) -> PathBuf {
    workspace().join("testdata").join(rel)
}

/// The golden test key A (2048-bit, PKCS#8) and its public half.
pub(crate) fn key_a() -> (PathBuf, PathBuf) {
    (
        testdata("native/v1/test-key-a.TEST-ONLY.pem"),
        testdata("native/v1/test-key-a.pub.pem"),
    )
}

/// The golden test key B (3072-bit, PKCS#1) and its public half.
pub(crate) fn key_b() -> (PathBuf, PathBuf) {
    (
        testdata("native/v1/test-key-b.TEST-ONLY.pem"),
        testdata("native/v1/test-key-b.pub.pem"),
    )
}

pub(crate) const SID_A: &str = "CR0123456789abcdef0123456789abcdef";
pub(crate) const SID_B: &str = "CRfedcba9876543210fedcba9876543210";

pub(crate) fn mediaseal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mediaseal"))
}

/// Runs `mediaseal ARGS` with no standard input.
pub(crate) fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    mediaseal()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the mediaseal binary runs")
}

/// Runs `mediaseal ARGS` with `input` on standard input.
pub(crate) fn run_with_stdin<I, S>(args: I, input: &[u8]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::io::Write;
    let mut child = mediaseal()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mediaseal binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit before reading everything (a failure test); that is fine.
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success with nothing at all on stderr (stderr is a pipe here, not a terminal).
#[track_caller]
pub(crate) fn assert_ok(out: &Output) {
    assert!(out.status.success(), "mediaseal failed: {}", stderr(out));
    assert!(
        out.stderr.is_empty(),
        "stderr should stay empty when it is not a terminal, got: {}",
        stderr(out)
    );
}

/// Asserts failure with a non-zero exit code and one `mediaseal: …` sentence (plus at most a
/// `hint:` line) on stderr; returns the sentence.
#[track_caller]
pub(crate) fn assert_fails(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got success");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        out.status.code().is_some(),
        "killed by a signal (a panic abort?)"
    );
    let text = stderr(out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "no message on stderr");
    assert!(
        lines[0].starts_with("mediaseal: "),
        "first line is not the error sentence: {text}"
    );
    assert!(!text.contains("panicked"), "panicked: {text}");
    assert!(
        lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
        "more than one sentence: {text}"
    );
    lines[0].to_owned()
}

/// Deterministic pseudo-random bytes.
pub(crate) fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Every entry of `dir`, to check that a failed command left nothing behind.
pub(crate) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The Python interpreter of the test venv, which has `cryptography`. Fails (never skips) when it
/// is missing.
pub(crate) fn python() -> PathBuf {
    mediaseal_test_support::python(&["cryptography"])
}

pub(crate) fn interop_script(name: &str) -> PathBuf {
    workspace().join("interop/crypto").join(name)
}

/// Fails (never skips) when a command-line tool the test drives is not installed.
pub(crate) fn require_tool(tool: &str, probe: &[&str]) {
    mediaseal_test_support::require_tool(tool, probe);
}

/// Runs a shell script in `dir` and returns its output; fails the test on a non-zero exit.
#[track_caller]
pub(crate) fn sh(dir: &Path, script: &str) -> Output {
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shell step failed:\n{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    out
}

pub(crate) fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
