//! An aiortc WHIP publisher for room tests (`tests/interop/whip_publish.py`: an Opus tone and
//! VP8 video), shared by the WHIP and recording tests.

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
