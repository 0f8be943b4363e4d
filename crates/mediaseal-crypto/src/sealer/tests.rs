//! The one sealer against the existing openers, for every format.

use std::io::Cursor;
use std::sync::OnceLock;

use super::*;
use crate::details::parse_details;
use crate::envelope::open_seekable_to_writer;
use crate::keys::PrivateKey;
use crate::native::{MAGIC, open_stream};

const ALL: [Format; 4] = [Format::Native, Format::RsaAes, Format::S3Gcm, Format::S3Cbc];
const SID: &str = "CR0123456789abcdef0123456789abcdef";

fn keys() -> &'static [PrivateKey; 2] {
    static KEYS: OnceLock<[PrivateKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            PrivateKey::generate(2048).unwrap(),
            PrivateKey::generate(2048).unwrap(),
        ]
    })
}

fn recipient(i: usize, sid: &'static str) -> RecipientKey<'static> {
    RecipientKey {
        key: keys()[i].public_key(),
        key_id: sid,
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Opens an object with the crate's long-standing readers, given its receipt.
fn open(object: &[u8], receipt: &Receipt, key: &PrivateKey) -> Vec<u8> {
    match receipt.details_text() {
        None => open_stream(object, Vec::new(), key, 1).unwrap().1,
        Some(text) => {
            let envelope = parse_details(&text).unwrap();
            open_seekable_to_writer(Cursor::new(object), Vec::new(), &envelope, key).unwrap()
        }
    }
}

fn seal_in_pieces(format: Format, plain: &[u8], piece: usize) -> (Vec<u8>, Receipt) {
    let mut sealer = Sealer::with_segment_log2(format, &[recipient(0, SID)], 12).unwrap();
    let mut out = Vec::new();
    for chunk in plain.chunks(piece.max(1)) {
        sealer.update(chunk, &mut out).unwrap();
    }
    assert_eq!(sealer.plaintext_len(), plain.len() as u64);
    assert_eq!(sealer.sealed_len(), out.len() as u64);
    let receipt = sealer.finish(&mut out).unwrap();
    (out, receipt)
}

#[test]
fn every_format_round_trips_in_any_pieces() {
    for format in ALL {
        for len in [0usize, 1, 15, 16, 17, 4095, 4096, 4097, 3 * 4096 + 1000] {
            for piece in [1usize, 7, 4096, 100_000] {
                let plain = data(len);
                let (object, receipt) = seal_in_pieces(format, &plain, piece);
                assert_eq!(receipt.format, format);
                assert_eq!(receipt.plaintext_len, len as u64);
                assert_eq!(receipt.sealed_len, object.len() as u64, "{format} {len}");
                assert_eq!(
                    open(&object, &receipt, &keys()[0]),
                    plain,
                    "{format} {len}/{piece}"
                );
            }
        }
    }
}

#[test]
fn receipts_carry_what_each_format_needs() {
    let plain = data(1000);
    let (object, receipt) = seal_in_pieces(Format::Native, &plain, 100);
    let header_len = receipt.native_header_len().unwrap();
    assert!(object.starts_with(&MAGIC));
    assert_eq!(native::Header::parse(&object).unwrap().1, header_len);
    assert_eq!(receipt.details_text(), None);

    let (_, receipt) = seal_in_pieces(Format::RsaAes, &plain, 100);
    let details = receipt.encryption_details().unwrap();
    assert_eq!(details.kind, "rsa-aes");
    assert_eq!(details.public_key_sid.as_deref(), Some(SID));
    assert!(receipt.details_text().unwrap().ends_with("}\n"));
    assert!(receipt.s3_headers().is_none());

    for (format, scheme) in [
        (Format::S3Gcm, Scheme::GcmOaep),
        (Format::S3Cbc, Scheme::CbcPkcs1),
    ] {
        let (_, receipt) = seal_in_pieces(format, &plain, 100);
        let headers = receipt.s3_headers().unwrap();
        // Exactly what the server has always stored.
        let envelope = headers.to_envelope().unwrap();
        let expected = S3Headers::new(scheme, &envelope.wrapped_cek, &envelope.iv, Some(1000))
            .with_key(Some(SID), keys()[0].fingerprint());
        assert_eq!(headers, &expected);
        assert_eq!(headers.unencrypted_content_length, Some(1000));
        assert_eq!(headers.key_sid.as_deref(), Some(SID));
        assert!(receipt.encryption_details().is_none());
    }

    // No SID given: none recorded.
    let mut sealer = Sealer::new(Format::RsaAes, &[recipient(0, "")]).unwrap();
    let mut out = Vec::new();
    sealer.update(b"x", &mut out).unwrap();
    let receipt = sealer.finish(&mut out).unwrap();
    assert_eq!(receipt.encryption_details().unwrap().public_key_sid, None);
}

#[test]
fn the_native_header_comes_first_even_without_input() {
    let mut sealer = Sealer::new(Format::Native, &[recipient(0, SID)]).unwrap();
    let mut out = Vec::new();
    sealer.update(&[], &mut out).unwrap();
    assert!(
        out.starts_with(&MAGIC),
        "header not emitted by the first update"
    );
    let receipt = sealer.finish(&mut out).unwrap();
    assert_eq!(open(&out, &receipt, &keys()[0]), b"");

    let sealer = Sealer::new(Format::Native, &[recipient(0, SID)]).unwrap();
    let mut out = Vec::new();
    let receipt = sealer.finish(&mut out).unwrap();
    assert_eq!(out.len(), receipt.native_header_len().unwrap() + TAG);
    assert_eq!(open(&out, &receipt, &keys()[0]), b"");
}

const TAG: usize = crate::gcm::TAG_LEN;

#[test]
fn native_seals_to_several_recipients() {
    let recipients = [recipient(0, "CRa"), recipient(1, "CRb")];
    let mut sealer = Sealer::new(Format::Native, &recipients).unwrap();
    let mut out = Vec::new();
    sealer.update(b"both can read this", &mut out).unwrap();
    let receipt = sealer.finish(&mut out).unwrap();
    for key in keys() {
        assert_eq!(open(&out, &receipt, key), b"both can read this");
    }
}

#[test]
fn wrong_recipient_counts_are_errors() {
    for format in ALL {
        assert!(
            matches!(Sealer::new(format, &[]), Err(EncryptError::NoRecipients)),
            "{format}"
        );
    }
    let two = [recipient(0, "CRa"), recipient(1, "CRb")];
    for format in [Format::RsaAes, Format::S3Gcm, Format::S3Cbc] {
        let err = Sealer::new(format, &two).unwrap_err();
        assert!(
            matches!(
                err,
                EncryptError::TooManyRecipients {
                    given: 2,
                    max: 1,
                    ..
                }
            ),
            "{format}: {err}"
        );
        assert!(err.to_string().contains(format.name()), "{err}");
    }
    let many: Vec<RecipientKey<'_>> = (0..17).map(|i| recipient(i % 2, "")).collect();
    assert!(matches!(
        Sealer::new(Format::Native, &many),
        Err(EncryptError::TooManyRecipients { given: 17, .. })
    ));
    for format in ALL {
        assert!(
            matches!(
                Sealer::new(format, &[recipient(0, "CR with space")]),
                Err(EncryptError::BadKeySid(_))
            ),
            "{format}"
        );
    }
    assert!(matches!(
        Sealer::with_segment_log2(Format::Native, &[recipient(0, "")], 30),
        Err(EncryptError::BadSegmentSize(_))
    ));
}

#[test]
fn debug_shows_counts_only() {
    for format in ALL {
        let mut sealer = Sealer::new(format, &[recipient(0, SID)]).unwrap();
        let mut out = Vec::new();
        sealer.update(b"abc", &mut out).unwrap();
        // Exactly these fields and nothing else: no key, IV or wrapped key can hide in it.
        assert_eq!(
            format!("{sealer:?}"),
            format!(
                "Sealer {{ format: {format:?}, plaintext_len: 3, sealed_len: {}, .. }}",
                sealer.sealed_len()
            )
        );
    }
}

#[test]
fn the_drivers_match_the_sans_io_path() {
    let plain = data(3 * STREAM_CHUNK + 12_345);
    for format in ALL {
        for threads in [1, 2] {
            let sealer = Sealer::with_segment_log2(format, &[recipient(0, SID)], 12).unwrap();
            let (receipt, object) = sealer.seal_reader(&plain[..], Vec::new(), threads).unwrap();
            assert_eq!(receipt.plaintext_len, plain.len() as u64);
            assert_eq!(receipt.sealed_len, object.len() as u64);
            let (by_update, _) = seal_in_pieces(format, &plain, 65_536);
            assert_eq!(object.len(), by_update.len(), "{format}: layouts differ");
            assert!(open(&object, &receipt, &keys()[0]) == plain, "{format}");

            let mut file = tempfile::tempfile().unwrap();
            Write::write_all(&mut file, &plain).unwrap();
            std::io::Seek::rewind(&mut file).unwrap();
            let sealer = Sealer::new(format, &[recipient(0, SID)]).unwrap();
            let (receipt, object) = sealer.seal_file(&file, Vec::new(), threads).unwrap();
            assert_eq!(receipt.plaintext_len, plain.len() as u64);
            assert!(
                open(&object, &receipt, &keys()[0]) == plain,
                "{format} file"
            );
        }
    }
}
