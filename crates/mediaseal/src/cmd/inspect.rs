//! `mediaseal inspect`: what a native header says, readable without any key.

use std::fs::File;

use mediaseal_crypto::native::{self, Header};

use crate::cli::InspectArgs;
use crate::error::CliError;

pub(crate) fn run(args: &InspectArgs) -> Result<(), CliError> {
    let mut file = File::open(&args.file).map_err(|e| CliError::io("open", &args.file, &e))?;
    let file_len = file
        .metadata()
        .map_err(|e| CliError::io("read", &args.file, &e))?
        .len();
    let (header, raw) = Header::read_from(&mut file)
        .map_err(|e| CliError::new(format!("'{}': {e}", args.file.display())))?;
    let segment = header.segment_size() as u64;
    let plaintext = native::plaintext_len(raw.len() as u64, segment, file_len);
    if args.json {
        let recipients: Vec<_> = header
            .recipients
            .iter()
            .map(|r| {
                serde_json::json!({
                    "key_id": r.key_id,
                    "fingerprint": r.fingerprint.to_hex(),
                    "wrap": "RSA-OAEP-SHA256",
                    "rsa_bits": r.wrapped_cek.len() * 8,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "format": "mediaseal-native",
            "version": native::VERSION,
            "cipher": "AES-256-GCM segments",
            "segment_size": segment,
            "header_length": raw.len(),
            "recipients": recipients,
            "plaintext_length": plaintext,
            "file_length": file_len,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!(
        "format:        mediaseal native, version {}",
        native::VERSION
    );
    println!(
        "cipher:        AES-256-GCM segments, nonce = prefix|counter|last, header bound as AAD"
    );
    println!("segment size:  {segment} bytes");
    println!("recipients:    {}", header.recipients.len());
    for (i, r) in header.recipients.iter().enumerate() {
        let id = if r.key_id.is_empty() {
            "(no key id)"
        } else {
            r.key_id.as_str()
        };
        println!(
            "  {}. {id}  {}  RSA-OAEP-SHA256, {}-bit key",
            i + 1,
            r.fingerprint,
            r.wrapped_cek.len() * 8
        );
    }
    match plaintext {
        Some(len) => println!(
            "length:        {len} bytes of plaintext in {} segment(s), {file_len} bytes on disk",
            len.div_ceil(segment).max(1)
        ),
        None => println!(
            "length:        invalid: {file_len} bytes on disk is not a whole native file (truncated?)"
        ),
    }
    Ok(())
}
