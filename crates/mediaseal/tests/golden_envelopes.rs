//! The frozen rsa-aes / s3-gcm / s3-cbc objects of `testdata/envelopes/`, sealed once by an
//! independent Python implementation, must keep opening through the CLI.

mod common;

use std::fs;

use common::*;

#[test]
fn golden_envelopes_open_with_details_and_with_raw_values() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _) = key_a();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(testdata("envelopes/manifest.json")).unwrap())
            .unwrap();
    let plain = fs::read(testdata("envelopes/plaintext.bin")).unwrap();
    assert_eq!(
        plain.len() as u64,
        manifest["plaintext_len"].as_u64().unwrap()
    );
    let objects = manifest["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 3);
    for object in objects {
        let format = object["format"].as_str().unwrap();
        let body = testdata(&format!("envelopes/{}", object["body"].as_str().unwrap()));
        let details = testdata(&format!(
            "envelopes/{}",
            object["details"].as_str().unwrap()
        ));
        let out = dir.path().join(format!("{format}.out"));
        assert_ok(&run([
            "decrypt",
            "--private-key",
            p(&private),
            "--in",
            p(&body),
            "--out",
            p(&out),
            "--details",
            p(&details),
        ]));
        assert_eq!(fs::read(&out).unwrap(), plain, "{format}");

        let text = fs::read_to_string(&details).unwrap();
        let (key, iv) = if format == "rsa-aes" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            (
                v["encrypted_cek"].as_str().unwrap().to_owned(),
                v["iv"].as_str().unwrap().to_owned(),
            )
        } else {
            let get = |n: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(n))
                    .unwrap()
                    .trim()
                    .to_owned()
            };
            (get("x-amz-meta-x-amz-key:"), get("x-amz-meta-x-amz-iv:"))
        };
        let opened = run([
            "decrypt",
            "--private-key",
            p(&private),
            "--in",
            p(&body),
            "--out",
            "-",
            "--encrypted-key",
            &key,
            "--iv",
            &iv,
        ]);
        assert_ok(&opened);
        assert!(opened.stdout == plain, "{format} with raw values");

        // A wrong key is told which key the object was sealed for.
        let (other, _) = key_b();
        let out = run([
            "decrypt",
            "--private-key",
            p(&other),
            "--in",
            p(&body),
            "--out",
            "-",
            "--details",
            p(&details),
        ]);
        let msg = assert_fails(&out);
        // Key B is 3072-bit, so the 256-byte wrapped key cannot be for it: said before any RSA
        // operation (the length is public, so this is no padding oracle).
        assert!(
            msg.contains("does not match") && msg.contains("3072-bit"),
            "{format}: {msg}"
        );
        assert!(
            out.stdout.is_empty(),
            "{format}: plaintext released before the failure"
        );
    }
}
