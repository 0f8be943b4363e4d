//! The command-line contract of issue 2: spellings, exit codes, one-sentence errors, no output
//! file after a failed decryption, nothing extra on stderr when it is not a terminal.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

const SEG: usize = 4096;
/// The single-tag envelopes stream in chunks of this many bytes (`STREAM_CHUNK`).
const CHUNK: usize = 1 << 20;

fn encrypt(
    format: &str,
    public: &Path,
    input: &Path,
    output: &Path,
    details: Option<&Path>,
) -> std::process::Output {
    let mut args = vec![
        "encrypt",
        "--format",
        format,
        "--public-key",
        p(public),
        "--in",
        p(input),
        "--out",
        p(output),
    ];
    if format == "native" {
        args.extend(["--segment-size", "4096"]);
    }
    if let Some(d) = details {
        args.extend(["--details", p(d)]);
    }
    run(args)
}

fn decrypt(
    private: &Path,
    input: &Path,
    output: &Path,
    details: Option<&Path>,
) -> std::process::Output {
    let mut args = vec![
        "decrypt",
        "--private-key",
        p(private),
        "--in",
        p(input),
        "--out",
        p(output),
    ];
    if let Some(d) = details {
        args.extend(["--details", p(d)]);
    }
    run(args)
}

/// Seals `plain` in `format` to key A with SID A; returns (sealed path, details path).
fn seal(
    dir: &Path,
    format: &str,
    plain: &[u8],
) -> (std::path::PathBuf, Option<std::path::PathBuf>) {
    let input = dir.join("plain.in");
    fs::write(&input, plain).unwrap();
    let sealed = dir.join(format!("sealed.{format}"));
    let details = (format != "native").then(|| dir.join(format!("details.{format}")));
    let mut args = vec!["encrypt", "--format", format, "--public-key"];
    let (_, public) = key_a();
    args.extend([
        p(&public),
        "--key-sid",
        SID_A,
        "--in",
        p(&input),
        "--out",
        p(&sealed),
    ]);
    if format == "native" {
        args.extend(["--segment-size", "4096"]);
    }
    if let Some(d) = &details {
        args.extend(["--details", p(d)]);
    }
    assert_ok(&run(args));
    fs::remove_file(&input).unwrap();
    (sealed, details)
}

#[test]
fn keygen_writes_a_0600_pkcs8_private_key_and_an_spki_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(["keygen", "--out", p(&dir.path().join("keys"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stderr.is_empty());
    let private = dir.path().join("keys/private_key.pem");
    let public = dir.path().join("keys/public_key.pem");
    assert_eq!(
        fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        fs::read_to_string(&private)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    assert!(
        fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    // Refuses to overwrite a key without --force.
    let again = run(["keygen", "--out", p(&dir.path().join("keys"))]);
    assert!(assert_fails(&again).contains("already exists"));

    let out = run([
        "keygen",
        "--pkcs1",
        "--bits",
        "3072",
        "--out",
        p(&dir.path().join("pkcs1")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pem = fs::read_to_string(dir.path().join("pkcs1/private_key.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert_eq!(
        fs::metadata(dir.path().join("pkcs1/private_key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // The generated pair works end to end.
    let k = dir.path().join("pkcs1");
    fs::write(dir.path().join("msg"), b"hello").unwrap();
    assert_ok(&encrypt(
        "native",
        &k.join("public_key.pem"),
        &dir.path().join("msg"),
        &dir.path().join("msg.ms"),
        None,
    ));
    assert_ok(&decrypt(
        &k.join("private_key.pem"),
        &dir.path().join("msg.ms"),
        &dir.path().join("msg.out"),
        None,
    ));
    assert_eq!(fs::read(dir.path().join("msg.out")).unwrap(), b"hello");
}

#[test]
fn keygen_refuses_sizes_other_than_2048_3072_4096() {
    let dir = tempfile::tempdir().unwrap();
    for bits in ["1024", "1000", "8192"] {
        let out = run(["keygen", "--bits", bits, "--out", p(dir.path())]);
        assert_eq!(out.status.code(), Some(2), "{bits}");
        assert!(
            stderr(&out).contains("2048, 3072 or 4096"),
            "{}",
            stderr(&out)
        );
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn every_format_round_trips_file_to_file_at_the_boundary_sizes() {
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, &[usize]); 4] = [
        (
            "native",
            &[0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 17, 70 * SEG],
        ),
        ("rsa-aes", &[0, 1, 15, 16, 17, CHUNK - 1, CHUNK, CHUNK + 1]),
        ("s3-gcm", &[0, 1, CHUNK - 1, CHUNK, CHUNK + 1]),
        ("s3-cbc", &[0, 1, 15, 16, 17, CHUNK - 1, CHUNK, CHUNK + 1]),
    ];
    for (format, sizes) in cases {
        for &len in sizes {
            let plain = data(len, len as u64);
            fs::write(d.join("in"), &plain).unwrap();
            let details = (format != "native").then(|| d.join("details"));
            assert_ok(&encrypt(
                format,
                &public,
                &d.join("in"),
                &d.join("sealed"),
                details.as_deref(),
            ));
            assert_ok(&decrypt(
                &private,
                &d.join("sealed"),
                &d.join("out"),
                details.as_deref(),
            ));
            assert_eq!(fs::read(d.join("out")).unwrap(), plain, "{format} {len}");
            let sealed_len = fs::metadata(d.join("sealed")).unwrap().len() as usize;
            match format {
                "rsa-aes" | "s3-gcm" => assert_eq!(sealed_len, len + 16),
                "s3-cbc" => assert_eq!(sealed_len, (len / 16 + 1) * 16),
                _ => assert!(sealed_len > len),
            }
        }
    }
}

/// Files of several pipeline chunks (4 MiB each at these segment sizes), on one and two threads,
/// file to file and file to stdout: every chunk must arrive, in order.
#[test]
fn large_native_files_round_trip_on_one_and_two_threads() {
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = data(5 * (4 << 20) + 12_345, 77);
    fs::write(d.join("in"), &plain).unwrap();
    for threads in ["1", "2"] {
        for segment in ["4096", "1048576"] {
            assert_ok(&run([
                "encrypt",
                "--format",
                "native",
                "--threads",
                threads,
                "--segment-size",
                segment,
                "--public-key",
                p(&public),
                "--in",
                p(&d.join("in")),
                "--out",
                p(&d.join("sealed")),
            ]));
            assert_ok(&run([
                "decrypt",
                "--threads",
                threads,
                "--private-key",
                p(&private),
                "--in",
                p(&d.join("sealed")),
                "--out",
                p(&d.join("out")),
            ]));
            assert!(
                fs::read(d.join("out")).unwrap() == plain,
                "file to file, {threads} threads, {segment}"
            );
            let out = run([
                "decrypt",
                "--threads",
                threads,
                "--private-key",
                p(&private),
                "--in",
                p(&d.join("sealed")),
                "--out",
                "-",
            ]);
            assert_ok(&out);
            assert!(
                out.stdout == plain,
                "file to stdout, {threads} threads, {segment}"
            );
        }
    }
}

#[test]
fn every_format_round_trips_through_pipes() {
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for format in ["native", "rsa-aes", "s3-gcm", "s3-cbc"] {
        for len in [0usize, 1, 5 * SEG + 3, CHUNK + 1] {
            let plain = data(len, 7);
            let details = d.join("details");
            let mut args = vec![
                "encrypt",
                "--format",
                format,
                "--public-key",
                p(&public),
                "--in",
                "-",
                "--out",
                "-",
            ];
            if format != "native" {
                args.extend(["--details", p(&details)]);
            }
            let sealed = run_with_stdin(&args, &plain);
            assert_ok(&sealed);
            let mut args = vec![
                "decrypt",
                "--private-key",
                p(&private),
                "--in",
                "-",
                "--out",
                "-",
            ];
            if format != "native" {
                args.extend(["--details", p(&details)]);
            }
            let opened = run_with_stdin(&args, &sealed.stdout);
            assert_ok(&opened);
            assert!(opened.stdout == plain, "{format} {len} through pipes");
        }
    }
}

#[test]
fn tampered_truncated_and_reordered_files_fail_authentication_and_leave_no_output() {
    let (private, _) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = data(4 * SEG + 100, 3);
    for format in ["native", "rsa-aes", "s3-gcm"] {
        let (sealed, details) = seal(d, format, &plain);
        let good = fs::read(&sealed).unwrap();
        let body = if format == "native" {
            good.len() - (4 * SEG + 100) - 5 * 16
        } else {
            0
        };
        let stride = SEG + 16;
        let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut flipped = good.clone();
        flipped[body + 10] ^= 0x20;
        variants.push(("bit flip", flipped));
        variants.push(("truncated by one byte", good[..good.len() - 1].to_vec()));
        variants.push((
            "truncated by half",
            good[..body + (good.len() - body) / 2].to_vec(),
        ));
        let mut extended = good.clone();
        extended.push(0);
        variants.push(("extended", extended));
        if format == "native" {
            variants.push((
                "cut at a segment boundary",
                good[..body + 2 * stride].to_vec(),
            ));
            let mut swapped = good.clone();
            swapped[body..body + stride].copy_from_slice(&good[body + stride..body + 2 * stride]);
            swapped[body + stride..body + 2 * stride].copy_from_slice(&good[body..body + stride]);
            variants.push(("segments reordered", swapped));
            variants.push(("header only", good[..body].to_vec()));
        }
        for (what, bytes) in variants {
            let bad = d.join("bad");
            fs::write(&bad, &bytes).unwrap();
            let target = d.join("opened");
            let before = entries(d);
            let msg = assert_fails(&decrypt(&private, &bad, &target, details.as_deref()));
            assert!(
                msg.contains("authentication failed"),
                "{format} {what}: {msg}"
            );
            assert!(
                !target.exists(),
                "{format} {what}: an output file was left behind"
            );
            assert_eq!(
                entries(d),
                before,
                "{format} {what}: a temporary file was left behind"
            );
        }
        fs::remove_file(&sealed).unwrap();
    }
}

#[test]
fn damaged_s3_cbc_fails_coarsely_and_leaves_no_output() {
    let (private, _) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (sealed, details) = seal(d, "s3-cbc", &data(1000, 1));
    let good = fs::read(&sealed).unwrap();
    for (what, bytes) in [
        ("truncated", good[..good.len() - 16].to_vec()),
        ("not whole blocks", good[..good.len() - 3].to_vec()),
    ] {
        fs::write(&sealed, &bytes).unwrap();
        let msg = assert_fails(&decrypt(
            &private,
            &sealed,
            &d.join("out"),
            details.as_deref(),
        ));
        assert!(msg.contains("decryption failed"), "{what}: {msg}");
        assert!(!d.join("out").exists());
    }
}

#[test]
fn a_wrong_private_key_names_the_sealing_key_and_the_given_one() {
    let (_, public_a) = key_a();
    let (private_b, public_b) = key_b();
    let b_fp = fingerprint_of(&public_b);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for format in ["native", "rsa-aes", "s3-gcm", "s3-cbc"] {
        let (sealed, details) = seal(d, format, b"secret words");
        let msg = assert_fails(&decrypt(
            &private_b,
            &sealed,
            &d.join("out"),
            details.as_deref(),
        ));
        assert!(msg.contains("does not match"), "{format}: {msg}");
        assert!(
            msg.contains(SID_A),
            "{format}: sealed-for SID missing: {msg}"
        );
        assert!(
            msg.contains(&b_fp),
            "{format}: given key's fingerprint missing: {msg}"
        );
        assert!(!d.join("out").exists());
    }
    // Without a SID the fingerprint of the sealing key names it.
    fs::write(d.join("in"), b"x").unwrap();
    assert_ok(&encrypt(
        "native",
        &public_a,
        &d.join("in"),
        &d.join("nosid"),
        None,
    ));
    let msg = assert_fails(&decrypt(&private_b, &d.join("nosid"), &d.join("out"), None));
    assert!(msg.contains(&fingerprint_of(&public_a)[..16]), "{msg}");
}

/// The hex fingerprint `mediaseal inspect --json` reports for a key, via a file sealed to it.
fn fingerprint_of(public: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in"), b"").unwrap();
    assert_ok(&encrypt(
        "native",
        public,
        &dir.path().join("in"),
        &dir.path().join("f"),
        None,
    ));
    let out = run(["inspect", "--json", p(&dir.path().join("f"))]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["recipients"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn several_recipients_each_open_the_native_file() {
    let (private_a, public_a) = key_a();
    let (private_b, public_b) = key_b();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = data(10_000, 9);
    fs::write(d.join("in"), &plain).unwrap();
    let out = run([
        "encrypt",
        "--format",
        "native",
        "--public-key",
        p(&public_a),
        "--key-sid",
        SID_A,
        "--public-key",
        p(&public_b),
        "--key-sid",
        SID_B,
        "--in",
        p(&d.join("in")),
        "--out",
        p(&d.join("sealed")),
    ]);
    assert_ok(&out);
    for private in [&private_a, &private_b] {
        assert_ok(&decrypt(private, &d.join("sealed"), &d.join("out"), None));
        assert_eq!(fs::read(d.join("out")).unwrap(), plain);
    }
    let text = run(["inspect", p(&d.join("sealed"))]);
    assert_ok(&text);
    let shown = String::from_utf8(text.stdout).unwrap();
    assert!(shown.contains(SID_A) && shown.contains(SID_B), "{shown}");
    assert!(shown.contains("segment size:  65536"), "{shown}");
    assert!(shown.contains("10000 bytes of plaintext"), "{shown}");
    // The single-key formats refuse several recipients.
    let out = run([
        "encrypt",
        "--format",
        "rsa-aes",
        "--public-key",
        p(&public_a),
        "--public-key",
        p(&public_b),
        "--in",
        p(&d.join("in")),
        "--out",
        p(&d.join("x")),
        "--details",
        p(&d.join("x.json")),
    ]);
    assert!(assert_fails(&out).contains("exactly one public key"));
}

#[test]
fn inspect_needs_no_key_and_refuses_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let golden = testdata("native/v1/multi-recipient.mseal");
    let out = run(["inspect", "--json", p(&golden)]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["segment_size"], 4096);
    assert_eq!(v["plaintext_length"], 5000);
    assert_eq!(v["recipients"].as_array().unwrap().len(), 2);
    assert_eq!(v["recipients"][1]["rsa_bits"], 3072);
    fs::write(dir.path().join("plain"), b"just some text").unwrap();
    let msg = assert_fails(&run(["inspect", p(&dir.path().join("plain"))]));
    assert!(msg.contains("not a mediaseal native file"), "{msg}");
}

#[test]
fn a_byte_range_of_a_native_file_decrypts_alone() {
    let (private, _) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let plain = data(20 * SEG + 5, 11);
    let (sealed, _) = seal(dir.path(), "native", &plain);
    let out = run([
        "decrypt",
        "--private-key",
        p(&private),
        "--in",
        p(&sealed),
        "--out",
        "-",
        "--range",
        "5000-13000",
    ]);
    assert_ok(&out);
    assert!(out.stdout == plain[5000..=13000]);
    let msg = assert_fails(&run([
        "decrypt",
        "--private-key",
        p(&private),
        "--in",
        p(&sealed),
        "--out",
        "-",
        "--range",
        "999999-1000000",
    ]));
    assert!(msg.contains("outside"), "{msg}");
}

#[test]
fn a_private_key_given_as_a_public_key_is_refused() {
    let (private_a, _) = key_a();
    let (private_b, _) = key_b();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in"), b"x").unwrap();
    for private in [private_a, private_b] {
        let msg = assert_fails(&encrypt(
            "native",
            &private,
            &dir.path().join("in"),
            &dir.path().join("out"),
            None,
        ));
        assert!(msg.contains("private key"), "{msg}");
        assert!(!dir.path().join("out").exists());
    }
}

#[test]
fn malformed_inputs_get_a_message_naming_the_field() {
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (sealed, _) = seal(d, "rsa-aes", b"hi");
    let cases: &[(&str, &str, &str)] = &[
        (
            "bad PEM base64",
            "-----BEGIN PUBLIC KEY-----\nMII*not-base64*\n-----END PUBLIC KEY-----\n",
            "PUBLIC KEY",
        ),
        (
            "unterminated PEM",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n",
            "END PUBLIC KEY",
        ),
        ("not a key", "hello", "no key found"),
        (
            "certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "CERTIFICATE",
        ),
    ];
    for (what, pem, expect) in cases {
        fs::write(d.join("key.pem"), pem).unwrap();
        let msg = assert_fails(&encrypt(
            "native",
            &d.join("key.pem"),
            &sealed,
            &d.join("o"),
            None,
        ));
        assert!(
            msg.contains(expect) && msg.contains("key.pem"),
            "{what}: {msg}"
        );
    }
    let details_cases: &[(&str, &str, &str)] = &[
        ("bad JSON", "{\"type\": \"rsa-aes\", ", "not valid JSON"),
        ("missing iv", "{\"encrypted_cek\": \"AAAA\"}", "'iv'"),
        (
            "bad base64",
            "{\"encrypted_cek\": \"@@@\", \"iv\": \"AAAAAAAAAAAAAAAA\"}",
            "'encrypted_cek'",
        ),
        (
            "bad iv base64",
            "{\"encrypted_cek\": \"AAAA\", \"iv\": \"!!\"}",
            "'iv'",
        ),
        (
            "null details",
            "{\"encryption_details\": null}",
            "not encrypted",
        ),
        (
            "unknown type",
            "{\"type\":\"xor\",\"encrypted_cek\":\"AAAA\",\"iv\":\"AAAAAAAAAAAAAAAA\"}",
            "'xor'",
        ),
        (
            "bad length header",
            "x-amz-meta-x-amz-key: AAAA\nx-amz-meta-x-amz-iv: AAAAAAAAAAAAAAAAAAAAAA==\nx-amz-meta-x-amz-unencrypted-content-length: ten\n",
            "x-amz-meta-x-amz-unencrypted-content-length",
        ),
        (
            "missing iv header",
            "x-amz-meta-x-amz-key: AAAA\n",
            "x-amz-meta-x-amz-iv",
        ),
        (
            "bad key header",
            "x-amz-meta-x-amz-key: %%%\nx-amz-meta-x-amz-iv: AAAAAAAAAAAAAAAAAAAAAA==\n",
            "x-amz-meta-x-amz-key",
        ),
        (
            "bad iv length",
            "x-amz-meta-x-amz-key: AAAA\nx-amz-meta-x-amz-iv: AAAA\n",
            "x-amz-meta-x-amz-iv",
        ),
        (
            "unknown cek-alg",
            "x-amz-meta-x-amz-key: AAAA\nx-amz-meta-x-amz-iv: AAAAAAAAAAAAAAAA\nx-amz-meta-x-amz-cek-alg: AES/CTR\n",
            "x-amz-meta-x-amz-cek-alg",
        ),
        (
            "bad fingerprint",
            "x-amz-meta-x-amz-key: AAAA\nx-amz-meta-x-amz-iv: AAAAAAAAAAAAAAAA\nx-amz-meta-mediaseal-public-key-fingerprint: zz\n",
            "fingerprint",
        ),
        ("nothing", "hello there", "no encryption details"),
    ];
    for (what, text, expect) in details_cases {
        fs::write(d.join("details"), text).unwrap();
        let msg = assert_fails(&decrypt(
            &private,
            &sealed,
            &d.join("o"),
            Some(&d.join("details")),
        ));
        assert!(msg.contains(expect), "{what}: {msg}");
        assert!(!d.join("o").exists());
    }
    let raw = run([
        "decrypt",
        "--private-key",
        p(&private),
        "--in",
        p(&sealed),
        "--out",
        p(&d.join("o")),
        "--encrypted-key",
        "not base64!",
        "--iv",
        "AAAAAAAAAAAAAAAA",
    ]);
    assert!(assert_fails(&raw).contains("x-amz-meta-x-amz-key"));
    // A native file given details is told it needs none.
    let (native, _) = seal(d, "native", b"n");
    fs::write(
        d.join("details"),
        "x-amz-meta-x-amz-key: AAAA\nx-amz-meta-x-amz-iv: AAAAAAAAAAAAAAAA\n",
    )
    .unwrap();
    let msg = assert_fails(&decrypt(
        &private,
        &native,
        &d.join("o"),
        Some(&d.join("details")),
    ));
    assert!(msg.contains("native"), "{msg}");
    // A non-native file without details is told what to pass.
    let msg = assert_fails(&decrypt(&private, &sealed, &d.join("o"), None));
    assert!(msg.contains("not a mediaseal native file"), "{msg}");
    // A damaged native header names what is wrong with it.
    let mut bytes = fs::read(&native).unwrap();
    bytes[8] = 9;
    fs::write(d.join("v9"), &bytes).unwrap();
    let msg = assert_fails(&decrypt(&private, &d.join("v9"), &d.join("o"), None));
    assert!(msg.contains("version 9"), "{msg}");
    let _ = public;
}

#[test]
fn usage_mistakes_exit_2_with_one_sentence() {
    let (_, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in"), b"x").unwrap();
    let input = dir.path().join("in");
    let out = run([
        "encrypt",
        "--format",
        "rsa-aes",
        "--public-key",
        p(&public),
        "--in",
        p(&input),
        "--out",
        p(&dir.path().join("o")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(assert_fails(&out).contains("--details"));
    let out = run([
        "encrypt",
        "--format",
        "native",
        "--segment-size",
        "1000",
        "--public-key",
        p(&public),
        "--in",
        p(&input),
        "--out",
        p(&dir.path().join("o")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(assert_fails(&out).contains("power of two"));
    let out = run([
        "encrypt",
        "--format",
        "s3-gcm",
        "--public-key",
        p(&public),
        "--in",
        p(&input),
        "--out",
        "-",
        "--details",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = run([
        "encrypt",
        "--format",
        "rot13",
        "--public-key",
        p(&public),
        "--in",
        p(&input),
        "--out",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("rot13"));
    assert!(!dir.path().join("o").exists());
}

#[test]
fn missing_files_are_named() {
    let (private, public) = key_a();
    let dir = tempfile::tempdir().unwrap();
    let msg = assert_fails(&encrypt(
        "native",
        &public,
        &dir.path().join("absent"),
        &dir.path().join("o"),
        None,
    ));
    assert!(
        msg.contains("absent") && msg.contains("no such file"),
        "{msg}"
    );
    let msg = assert_fails(&decrypt(
        &dir.path().join("nokey.pem"),
        &dir.path().join("x"),
        &dir.path().join("o"),
        None,
    ));
    assert!(msg.contains("nokey.pem"), "{msg}");
    let _ = private;
}
