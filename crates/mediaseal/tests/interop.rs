//! Interop with the seeds' own tools, both ways: the Python `cryptography` script of seed 002,
//! the openssl recipe of seed 001, keys made by `openssl genrsa`, and an independent Python
//! implementation of all four formats (`interop/crypto/independent.py`). The tools are real;
//! a missing tool fails the test with a pointer to `scripts/setup.sh`.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn seal(dir: &Path, format: &str, public: &Path, plain: &[u8]) {
    fs::write(dir.join("plain"), plain).unwrap();
    let mut args = vec![
        "encrypt",
        "--format",
        format,
        "--public-key",
        p(public),
        "--key-sid",
        SID_A,
    ];
    let sealed = dir.join("sealed");
    let details = dir.join("details");
    let plain_path = dir.join("plain");
    args.extend(["--in", p(&plain_path), "--out", p(&sealed)]);
    if format != "native" {
        args.extend(["--details", p(&details)]);
    }
    assert_ok(&run(args));
}

/// `(encrypted key, iv)` as base64, from either details shape.
fn raw_values(details: &str) -> (String, String) {
    if details.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(details).unwrap();
        (
            v["encrypted_cek"].as_str().unwrap().to_owned(),
            v["iv"].as_str().unwrap().to_owned(),
        )
    } else {
        let get = |name: &str| {
            details
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap()
        };
        (get("x-amz-meta-x-amz-key:"), get("x-amz-meta-x-amz-iv:"))
    }
}

#[test]
fn seed_002_python_script_opens_our_rsa_aes_and_s3_gcm_and_verifies_the_tag() {
    let python = python();
    let script = interop_script("seed002_decrypt.py");
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for format in ["rsa-aes", "s3-gcm"] {
        for len in [0usize, 1, 100_000, (1 << 20) + 3] {
            let plain = data(len, len as u64 + 5);
            seal(d, format, &public, &plain);
            let (key, iv) = raw_values(&fs::read_to_string(d.join("details")).unwrap());
            let out = std::process::Command::new(&python)
                .arg(&script)
                .args([
                    &key,
                    &iv,
                    p(&d.join("sealed")),
                    p(&private),
                    p(&d.join("py.out")),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{format} {len}: seed 002 script failed: {}",
                stderr(&out)
            );
            assert!(
                fs::read(d.join("py.out")).unwrap() == plain,
                "{format} {len}: plaintext differs"
            );
            fs::remove_file(d.join("py.out")).unwrap();

            // The tag is really checked: one flipped bit makes the script refuse.
            let mut bytes = fs::read(d.join("sealed")).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 1;
            fs::write(d.join("sealed"), &bytes).unwrap();
            let out = std::process::Command::new(&python)
                .arg(&script)
                .args([
                    &key,
                    &iv,
                    p(&d.join("sealed")),
                    p(&private),
                    p(&d.join("py.out")),
                ])
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(3),
                "{format} {len}: tampering not detected: {}",
                stderr(&out)
            );
            assert!(!d.join("py.out").exists());
        }
    }
}

#[test]
fn objects_sealed_by_independent_python_open_with_our_decrypt() {
    let python = python();
    let script = interop_script("independent.py");
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for format in ["rsa-aes", "s3-gcm", "s3-cbc"] {
        for len in [0usize, 1, 16, 4095, 77_777, (1 << 20) + 1] {
            let plain = data(len, 99 + len as u64);
            fs::write(d.join("plain"), &plain).unwrap();
            let out = std::process::Command::new(&python)
                .arg(&script)
                .args([
                    "seal",
                    format,
                    p(&public),
                    p(&d.join("plain")),
                    p(&d.join("body")),
                    p(&d.join("details")),
                    SID_A,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "python seal {format}: {}",
                stderr(&out)
            );
            // With the details file …
            let opened = run([
                "decrypt",
                "--private-key",
                p(&private),
                "--in",
                p(&d.join("body")),
                "--out",
                p(&d.join("out")),
                "--details",
                p(&d.join("details")),
            ]);
            assert_ok(&opened);
            assert!(fs::read(d.join("out")).unwrap() == plain, "{format} {len}");
            // … and with the raw values exactly as the seeds hand them out.
            let (key, iv) = raw_values(&fs::read_to_string(d.join("details")).unwrap());
            let opened = run([
                "decrypt",
                "--private-key",
                p(&private),
                "--in",
                p(&d.join("body")),
                "--out",
                "-",
                "--encrypted-key",
                &key,
                "--iv",
                &iv,
            ]);
            assert_ok(&opened);
            assert!(opened.stdout == plain, "{format} {len} (raw values)");
        }
    }
}

#[test]
fn seed_001_openssl_recipe_opens_our_s3_cbc_output() {
    require_tool("openssl", &["version"]);
    require_tool("hexdump", &["--version"]);
    require_tool("base64", &["--version"]);
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::copy(&private, d.join("private_key.pem")).unwrap();
    for len in [0usize, 1, 15, 16, 17, 746_518, (1 << 20) + 1] {
        let plain = data(len, 1234 + len as u64);
        seal(d, "s3-cbc", &public, &plain);
        fs::rename(d.join("sealed"), d.join("encrypted-filename")).unwrap();
        let headers = fs::read_to_string(d.join("details")).unwrap();
        assert!(headers.contains(&format!(
            "x-amz-meta-x-amz-unencrypted-content-length: {len}\n"
        )));
        assert!(headers.contains("x-amz-meta-x-amz-matdesc: {}\n"));
        let (key, iv) = raw_values(&headers);
        // Seed 001, step by step (with GNU base64's -d for the macOS -D).
        let script = format!(
            "rm -f key.bin.enc iv.bin key.bin decrypted-filename\n\
             base64 -d <<< '{key}' >> key.bin.enc\n\
             openssl rsautl -decrypt -inkey private_key.pem -in key.bin.enc -out key.bin 2>/dev/null\n\
             base64 -d <<< '{iv}' >> iv.bin\n\
             openssl enc -d -aes-256-cbc -in encrypted-filename -out decrypted-filename -K $(hexdump -v -e '/1 \"%02X\"' < key.bin) -iv $(hexdump -v -e '/1 \"%02X\"' < iv.bin)\n"
        );
        sh(d, &script);
        assert!(
            fs::read(d.join("decrypted-filename")).unwrap() == plain,
            "s3-cbc {len}: the openssl recipe got other bytes"
        );
    }
}

#[test]
fn keys_made_by_openssl_genrsa_work_with_the_cli() {
    require_tool("openssl", &["version"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Seed 000/001/002's steps: genrsa (PKCS#1 with -traditional, PKCS#8 as OpenSSL 3 writes by
    // default), the public key with `rsa -pubout`, and the pkcs8 conversion.
    sh(
        d,
        "openssl genrsa -traditional -out pkcs1.pem 2048 2>/dev/null\n\
         openssl genrsa -out pkcs8.pem 3072 2>/dev/null\n\
         openssl pkcs8 -in pkcs1.pem -topk8 -nocrypt -out pkcs1_as_pkcs8.pem\n\
         openssl rsa -in pkcs1.pem -pubout -out pub1.pem 2>/dev/null\n\
         openssl rsa -in pkcs8.pem -pubout -out pub8.pem 2>/dev/null\n\
         openssl rsa -in pkcs1.pem -RSAPublicKey_out -out pub1_pkcs1.pem 2>/dev/null\n\
         openssl rsa -in pkcs1.pem -pubout -outform DER -out pub1.der 2>/dev/null\n\
         openssl rsa -in pkcs1.pem -outform DER -out pkcs1.der 2>/dev/null\n\
         tr -d '\\n' < pub1.pem > pub1_oneline.pem\n\
         grep -q 'BEGIN RSA PRIVATE KEY' pkcs1.pem\n\
         grep -q 'BEGIN PRIVATE KEY' pkcs8.pem\n\
         grep -q 'BEGIN RSA PUBLIC KEY' pub1_pkcs1.pem\n",
    );
    let plain = data(50_000, 5);
    fs::write(d.join("plain"), &plain).unwrap();
    let pairs = [
        ("pub1.pem", "pkcs1.pem"),
        ("pub1_pkcs1.pem", "pkcs1_as_pkcs8.pem"),
        ("pub1.der", "pkcs1.der"),
        ("pub1_oneline.pem", "pkcs1.pem"),
        ("pub8.pem", "pkcs8.pem"),
    ];
    for (public, private) in pairs {
        for format in ["native", "rsa-aes", "s3-cbc", "s3-gcm"] {
            let mut args = vec![
                "encrypt",
                "--format",
                format,
                "--public-key",
                public,
                "--in",
                "plain",
                "--out",
                "sealed",
            ];
            if format != "native" {
                args.extend(["--details", "details"]);
            }
            let out = mediaseal().args(&args).current_dir(d).output().unwrap();
            assert_ok(&out);
            let mut args = vec![
                "decrypt",
                "--private-key",
                private,
                "--in",
                "sealed",
                "--out",
                "opened",
            ];
            if format != "native" {
                args.extend(["--details", "details"]);
            }
            let out = mediaseal().args(&args).current_dir(d).output().unwrap();
            assert_ok(&out);
            assert!(
                fs::read(d.join("opened")).unwrap() == plain,
                "{public}/{private} {format}"
            );
        }
    }
    // Our fingerprint is SHA-256 of the SPKI DER, as openssl computes it.
    let expected = sh(
        d,
        "openssl pkey -pubin -in pub1.pem -outform DER | sha256sum | cut -d' ' -f1",
    )
    .stdout;
    let expected = String::from_utf8(expected).unwrap().trim().to_owned();
    let out = mediaseal()
        .args([
            "encrypt",
            "--format",
            "native",
            "--public-key",
            "pub1_pkcs1.pem",
            "--in",
            "plain",
            "--out",
            "fp.ms",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert_ok(&out);
    let shown = mediaseal()
        .args(["inspect", "fp.ms"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(&expected),
        "fingerprint differs from openssl's {expected}"
    );
}

#[test]
fn keys_under_2048_bits_from_openssl_are_refused() {
    require_tool("openssl", &["version"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh(
        d,
        "openssl genrsa -out small.pem 1024 2>/dev/null\n\
         openssl genrsa -traditional -out small1.pem 1024 2>/dev/null\n\
         openssl rsa -in small.pem -pubout -out small_pub.pem 2>/dev/null\n\
         echo hi > plain\n",
    );
    let out = mediaseal()
        .args([
            "encrypt",
            "--format",
            "native",
            "--public-key",
            "small_pub.pem",
            "--in",
            "plain",
            "--out",
            "sealed",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let msg = assert_fails(&out);
    assert!(msg.contains("1024 bits") && msg.contains("2048"), "{msg}");
    assert!(!d.join("sealed").exists());
    let (_, public) = key_a();
    seal(d, "native", &public, b"x");
    for private in ["small.pem", "small1.pem"] {
        let out = mediaseal()
            .args([
                "decrypt",
                "--private-key",
                private,
                "--in",
                "sealed",
                "--out",
                "opened",
            ])
            .current_dir(d)
            .output()
            .unwrap();
        let msg = assert_fails(&out);
        assert!(msg.contains("1024 bits"), "{private}: {msg}");
    }
}

#[test]
fn native_files_interoperate_with_the_independent_python_reader_and_writer() {
    let python = python();
    let script = interop_script("independent.py");
    let (private_a, public_a) = key_a();
    let (private_b, public_b) = key_b();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Ours → Python.
    for len in [0usize, 1, 4095, 4096, 4097, 3 * 65_536 + 9] {
        let plain = data(len, len as u64);
        for segment in ["4096", "65536"] {
            fs::write(d.join("plain"), &plain).unwrap();
            assert_ok(&run([
                "encrypt",
                "--format",
                "native",
                "--segment-size",
                segment,
                "--public-key",
                p(&public_a),
                "--key-sid",
                SID_A,
                "--public-key",
                p(&public_b),
                "--key-sid",
                "",
                "--in",
                p(&d.join("plain")),
                "--out",
                p(&d.join("ours")),
            ]));
            for private in [&private_a, &private_b] {
                let out = std::process::Command::new(&python)
                    .arg(&script)
                    .args([
                        "open-native",
                        p(private),
                        p(&d.join("ours")),
                        p(&d.join("py.out")),
                    ])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "python open-native {len}/{segment}: {}",
                    stderr(&out)
                );
                assert!(
                    fs::read(d.join("py.out")).unwrap() == plain,
                    "{len}/{segment}"
                );
            }
        }
    }
    // Python → ours.
    for len in [0usize, 1, 4096, 10_000] {
        let plain = data(len, 3 + len as u64);
        fs::write(d.join("plain"), &plain).unwrap();
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args([
                "seal-native",
                "12",
                p(&d.join("plain")),
                p(&d.join("theirs")),
            ])
            .arg(format!("{}={SID_B}", p(&public_b)))
            .arg(p(&public_a))
            .output()
            .unwrap();
        assert!(out.status.success(), "python seal-native: {}", stderr(&out));
        for private in [&private_a, &private_b] {
            assert_ok(&run([
                "decrypt",
                "--private-key",
                p(private),
                "--in",
                p(&d.join("theirs")),
                "--out",
                p(&d.join("o")),
            ]));
            assert!(
                fs::read(d.join("o")).unwrap() == plain,
                "python-sealed {len}"
            );
        }
    }
    // The Python reader also opens every golden file.
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(testdata("native/v1/manifest.json")).unwrap())
            .unwrap();
    for entry in manifest["files"].as_array().unwrap() {
        let file = testdata(&format!("native/v1/{}", entry["file"].as_str().unwrap()));
        let key = testdata(&format!(
            "native/v1/{}",
            entry["opens_with"][0].as_str().unwrap()
        ));
        let plain = testdata(&format!(
            "native/v1/{}",
            entry["plaintext"].as_str().unwrap()
        ));
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(["open-native", p(&key), p(&file), p(&d.join("g"))])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python cannot open golden {}: {}",
            file.display(),
            stderr(&out)
        );
        assert_eq!(fs::read(d.join("g")).unwrap(), fs::read(plain).unwrap());
    }
}
