use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

fn keys() -> &'static [PrivateKey; 3] {
    static KEYS: OnceLock<[PrivateKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            PrivateKey::generate(2048).unwrap(),
            PrivateKey::generate(2048).unwrap(),
            PrivateKey::generate(3072).unwrap(),
        ]
    })
}

const SMALL_LOG2: u8 = 12;
const SMALL: usize = 1 << SMALL_LOG2;

fn seal(data: &[u8], log2: u8, threads: usize) -> Vec<u8> {
    let r = [RecipientKey {
        key: keys()[0].public_key(),
        key_id: "CRaaaa",
    }];
    seal_stream(
        data,
        Vec::new(),
        &r,
        StreamOptions {
            segment_log2: log2,
            threads,
        },
    )
    .unwrap()
    .1
}

fn open(file: &[u8], threads: usize) -> Result<Vec<u8>, DecryptError> {
    open_stream(file, Vec::new(), &keys()[0], threads).map(|(_, out)| out)
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn round_trip_at_segment_boundaries_and_thread_counts() {
    for len in [
        0,
        1,
        SMALL - 1,
        SMALL,
        SMALL + 1,
        3 * SMALL,
        64 * SMALL + 7,
        200 * SMALL,
    ] {
        let plain = data(len);
        for threads in [1, 2, 3] {
            let file = seal(&plain, SMALL_LOG2, threads);
            let (header, hlen) = Header::parse(&file).unwrap();
            assert_eq!(
                file.len() as u64,
                ciphertext_len(hlen as u64, SMALL as u64, len as u64)
            );
            assert_eq!(
                plaintext_len(hlen as u64, SMALL as u64, file.len() as u64),
                Some(len as u64)
            );
            assert_eq!(header.recipients[0].key_id, "CRaaaa");
            for open_threads in [1, 2] {
                assert_eq!(
                    open(&file, open_threads).unwrap(),
                    plain,
                    "len {len} threads {threads}/{open_threads}"
                );
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_the_layout() {
    let plain = data(10 * SMALL + 3);
    let a = seal(&plain, SMALL_LOG2, 1);
    let b = seal(&plain, SMALL_LOG2, 4);
    assert_eq!(a.len(), b.len());
}

#[test]
fn sans_io_sealer_matches_stream_layout_and_opens() {
    let plain = data(5 * SMALL + 100);
    let r = [RecipientKey {
        key: keys()[0].public_key(),
        key_id: "",
    }];
    let mut sealer = NativeSealer::new(&r, SMALL_LOG2).unwrap();
    let mut file = sealer.header().to_vec();
    for piece in plain.chunks(777) {
        sealer.update(piece, &mut file).unwrap();
    }
    sealer.finish(&mut file).unwrap();
    assert_eq!(open(&file, 1).unwrap(), plain);
    let mut exact = NativeSealer::new(&r, SMALL_LOG2).unwrap();
    let mut file2 = exact.header().to_vec();
    exact.update(&plain[..2 * SMALL], &mut file2).unwrap();
    exact.finish(&mut file2).unwrap();
    assert_eq!(open(&file2, 2).unwrap(), &plain[..2 * SMALL]);
}

#[test]
fn every_recipient_can_open_and_others_are_told_who_can() {
    let plain = data(3 * SMALL);
    let r = [
        RecipientKey {
            key: keys()[0].public_key(),
            key_id: "CR0000",
        },
        RecipientKey {
            key: keys()[2].public_key(),
            key_id: "CR2222",
        },
    ];
    let (_, file) = seal_stream(
        &plain[..],
        Vec::new(),
        &r,
        StreamOptions {
            segment_log2: SMALL_LOG2,
            threads: 1,
        },
    )
    .unwrap();
    for k in [&keys()[0], &keys()[2]] {
        assert_eq!(open_stream(&file[..], Vec::new(), k, 2).unwrap().1, plain);
    }
    let err = open_stream(&file[..], Vec::new(), &keys()[1], 1).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DecryptError::WrongKey { .. }));
    assert!(msg.contains("CR0000") && msg.contains("CR2222"), "{msg}");
    assert!(msg.contains(&keys()[1].fingerprint().to_hex()), "{msg}");
}

fn body_start(file: &[u8]) -> usize {
    Header::parse(file).unwrap().1
}

#[test]
fn tamper_truncate_reorder_extend_all_fail() {
    let plain = data(4 * SMALL + 10);
    let file = seal(&plain, SMALL_LOG2, 1);
    let start = body_start(&file);
    let stride = SMALL + TAG_LEN;
    let auth = |f: &[u8]| matches!(open(f, 1), Err(DecryptError::AuthenticationFailed));

    for pos in [start, start + 5, start + stride + 1, file.len() - 1] {
        let mut f = file.clone();
        f[pos] ^= 0x40;
        assert!(auth(&f), "flip at {pos}");
    }
    // Truncation at a segment boundary: the new last segment was not sealed as last.
    assert!(auth(&file[..start + 2 * stride]));
    assert!(auth(&file[..file.len() - 1]));
    assert!(auth(&file[..start]));
    // Swapping two segments.
    let mut swapped = file.clone();
    let (a, b) = (start, start + stride);
    let first = file[a..a + stride].to_vec();
    swapped.copy_within(b..b + stride, a);
    swapped[b..b + stride].copy_from_slice(&first);
    assert!(auth(&swapped));
    // Appending a copied segment.
    let mut extended = file.clone();
    extended.extend_from_slice(&file[start..start + stride]);
    assert!(auth(&extended));
    // Editing the header (the key id) breaks every segment's associated data.
    let mut edited = file.clone();
    let id_at = FIXED_LEN + 2;
    edited[id_at] = b'X';
    assert!(auth(&edited));
}

#[test]
fn header_problems_are_header_errors() {
    assert!(matches!(
        open(b"not a native file at all, no", 1),
        Err(DecryptError::Header(HeaderError::NotNative))
    ));
    let file = seal(b"x", SMALL_LOG2, 1);
    assert!(matches!(
        open(&file[..30], 1),
        Err(DecryptError::Header(HeaderError::Truncated))
    ));
}

#[test]
fn random_access_reads_only_what_it_needs() {
    let plain = data(10 * SMALL + 123);
    let file = seal(&plain, SMALL_LOG2, 2);
    let mut reader = NativeReader::new(Cursor::new(&file), &keys()[0]).unwrap();
    assert_eq!(reader.len(), plain.len() as u64);
    for (start, len) in [
        (0usize, 10usize),
        (SMALL - 3, 10),
        (5 * SMALL, SMALL),
        (10 * SMALL + 100, 23),
        (17, 7 * SMALL),
    ] {
        reader.seek(SeekFrom::Start(start as u64)).unwrap();
        let mut got = vec![0u8; len];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(got, &plain[start..start + len]);
    }
    let mut out = Vec::new();
    decrypt_range(
        Cursor::new(&file),
        &keys()[0],
        3 * SMALL as u64 + 1,
        1000,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, &plain[3 * SMALL + 1..3 * SMALL + 1001]);
    assert!(matches!(
        decrypt_range(
            Cursor::new(&file),
            &keys()[0],
            plain.len() as u64 + 1,
            1,
            Vec::new()
        ),
        Err(DecryptError::RangeOutOfBounds { .. })
    ));
    // A range in an intact segment of a file whose other segment was damaged still decrypts.
    let mut damaged = file.clone();
    let start = body_start(&file);
    damaged[start + 8 * (SMALL + TAG_LEN) + 3] ^= 1;
    let mut ok = Vec::new();
    decrypt_range(Cursor::new(&damaged), &keys()[0], 0, 100, &mut ok).unwrap();
    assert_eq!(ok, &plain[..100]);
    let bad = decrypt_range(
        Cursor::new(&damaged),
        &keys()[0],
        8 * SMALL as u64,
        100,
        Vec::new(),
    );
    assert!(matches!(bad, Err(DecryptError::AuthenticationFailed)));
}

#[test]
fn random_access_detects_truncation_at_segment_boundary() {
    let plain = data(4 * SMALL);
    let file = seal(&plain, SMALL_LOG2, 1);
    let cut = &file[..body_start(&file) + 2 * (SMALL + TAG_LEN)];
    let mut reader = NativeReader::new(Cursor::new(cut), &keys()[0]).unwrap();
    let mut all = Vec::new();
    assert!(reader.read_to_end(&mut all).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn prop_round_trip(len in 0usize..(6 * SMALL), threads in 1usize..4) {
        let plain = data(len);
        let file = seal(&plain, SMALL_LOG2, threads);
        prop_assert_eq!(open(&file, 1).unwrap(), plain);
    }

    #[test]
    fn prop_any_flip_fails(len in 1usize..(3 * SMALL), pos_frac in 0.0f64..1.0, bit in 0u8..8) {
        let plain = data(len);
        let mut file = seal(&plain, SMALL_LOG2, 1);
        let pos = ((file.len() as f64) * pos_frac) as usize % file.len();
        file[pos] ^= 1 << bit;
        prop_assert!(open(&file, 1).is_err());
    }

    #[test]
    fn prop_any_truncation_fails(len in 1usize..(3 * SMALL), cut_frac in 0.0f64..1.0) {
        let plain = data(len);
        let file = seal(&plain, SMALL_LOG2, 1);
        let cut = ((file.len() as f64) * cut_frac) as usize;
        prop_assert!(open(&file[..cut.min(file.len() - 1)], 1).is_err());
    }
}

/// Regression (found by `prop_any_truncation_fails`): a body cut to one whole segment plus fewer
/// bytes than a tag used to slice past the end of the output buffer and panic.
#[test]
fn a_tail_shorter_than_a_tag_fails_without_panicking() {
    let file = seal(&data(SMALL + 2000), SMALL_LOG2, 1);
    let start = body_start(&file);
    for extra in 0..=TAG_LEN {
        for threads in [1, 2] {
            let cut = &file[..start + SMALL + TAG_LEN + extra];
            assert!(
                matches!(open(cut, threads), Err(DecryptError::AuthenticationFailed)),
                "extra {extra}"
            );
        }
    }
}

/// The pread paths (`seal_file`, `open_file`) over several pipeline chunks, from a non-zero
/// starting offset, on one to three threads, agree with the streaming paths.
#[test]
fn positioned_file_paths_match_the_streaming_paths() {
    use std::io::Write as _;
    let plain = data(2 * TARGET_CHUNK_BYTES + 3 * SMALL + 11);
    let mut input = tempfile::tempfile().unwrap();
    input.write_all(b"skip me").unwrap();
    input.write_all(&plain).unwrap();
    let r = [RecipientKey {
        key: keys()[0].public_key(),
        key_id: "CRfile",
    }];
    for threads in [1, 2, 3] {
        input.seek(SeekFrom::Start(7)).unwrap();
        let options = StreamOptions {
            segment_log2: SMALL_LOG2,
            threads,
        };
        let (len, sealed) = seal_file(&input, Vec::new(), &r, options).unwrap();
        assert_eq!(len, plain.len() as u64);
        assert_eq!(
            open(&sealed, 2).unwrap(),
            plain,
            "seal_file, {threads} threads"
        );
        let mut sealed_file = tempfile::tempfile().unwrap();
        sealed_file.write_all(&sealed).unwrap();
        sealed_file.seek(SeekFrom::Start(0)).unwrap();
        let (n, opened) = open_file(&sealed_file, Vec::new(), &keys()[0], threads).unwrap();
        assert_eq!(n, plain.len() as u64);
        assert!(opened == plain, "open_file, {threads} threads");
        // A damaged segment in the last chunk fails the whole open.
        let mut damaged = sealed.clone();
        let at = damaged.len() - 100;
        damaged[at] ^= 1;
        let mut damaged_file = tempfile::tempfile().unwrap();
        damaged_file.write_all(&damaged).unwrap();
        damaged_file.seek(SeekFrom::Start(0)).unwrap();
        assert!(matches!(
            open_file(&damaged_file, Vec::new(), &keys()[0], threads),
            Err(DecryptError::AuthenticationFailed)
        ));
    }
}
