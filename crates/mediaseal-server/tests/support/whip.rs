//! aiortc at the WHIP and WHEP doors for room tests: a publisher (`tests/interop/whip_publish.py`:
//! an Opus tone and VP8 video), shared by the WHIP and recording tests, and a viewer
//! (`tests/interop/whep_watch.py`), shared by the WHIP and browser tests.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// An aiortc WHIP publisher (`tests/interop/whip_publish.py`) and its POST's outcome. It
/// publishes until dropped (killed: it never DELETEs on its own).
pub struct Publisher {
    /// What the POST got: `status`, `location`, `etag`, `answer_codecs`….
    pub posted: Value,
    pub child: tokio::process::Child,
}

impl Publisher {
    pub async fn start(url: &str, token: &str) -> Self {
        let python = mediaseal_test_support::python(&["aiortc"]);
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/whip_publish.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run whip_publish.py");
        let line = serde_json::json!({ "url": url, "token": token }).to_string() + "\n";
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let posted = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("whip_publish.py posts within 30 s")
            .unwrap()
            .expect("whip_publish.py prints the POST's outcome");
        Self {
            posted: serde_json::from_str(&posted).unwrap(),
            child,
        }
    }
}

/// Runs `tests/interop/whep_watch.py` against `url` and returns its report: it watches until it
/// decoded 50 audio and 20 video frames (or 30 s passed), then DELETEs its session.
pub async fn whep_watch(url: &str, token: &str) -> Value {
    let python = mediaseal_test_support::python(&["aiortc"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/whep_watch.py");
    let input = serde_json::to_vec(&serde_json::json!({
        "url": url,
        "token": token,
        "audio_frames": 50,
        "video_frames": 20,
        "timeout": 30,
    }))
    .unwrap();
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("run whep_watch.py");
    child.stdin.take().unwrap().write_all(&input).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("whep_watch.py ends within 90 s")
        .unwrap();
    assert!(out.status.success(), "whep_watch.py failed");
    serde_json::from_slice(&out.stdout).expect("whep_watch.py prints its report")
}
