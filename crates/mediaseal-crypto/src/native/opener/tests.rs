//! The sans-IO opener against the streaming sealer: arbitrary sizes and chunkings, ranged reads,
//! and every way of damaging an object, with the rule that nothing unauthenticated is released.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::native::{FIXED_LEN, HeaderError, RecipientKey, StreamOptions, seal_stream};

const LOG2: u8 = 12;
const SEG: usize = 1 << LOG2;
const STRIDE: usize = SEG + TAG_LEN;

fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).unwrap())
}

fn plain(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

fn seal(data: &[u8]) -> Vec<u8> {
    let recipients = [RecipientKey {
        key: key().public_key(),
        key_id: "CRopener",
    }];
    let options = StreamOptions {
        segment_log2: LOG2,
        threads: 1,
    };
    seal_stream(data, Vec::new(), &recipients, options)
        .unwrap()
        .1
}

fn unlocked(object: &[u8]) -> UnlockedHeader {
    UnlockedHeader::unlock(object, key()).unwrap()
}

/// Feeds `input` cut at `cuts` (sizes, cycled) and returns what was released and the outcome.
fn feed(mut opener: NativeOpener, input: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<u64, ()>) {
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = cuts.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        if opener.update(piece, &mut out).is_err() {
            return (out, Err(()));
        }
        rest = tail;
    }
    let result = opener.finish(&mut out).map_err(|_| ());
    (out, result)
}

/// Unlocks `object`'s own header (as a server would) and streams the whole object through.
fn open_whole(object: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<u64, ()>) {
    match UnlockedHeader::unlock(object, key()) {
        Ok(unlocked) => feed(NativeOpener::new(&unlocked), object, cuts),
        Err(_) => (Vec::new(), Err(())),
    }
}

fn open_range(object: &[u8], range: Range<u64>, cuts: &[usize]) -> Result<Vec<u8>, ()> {
    let opener =
        NativeOpener::ranged(&unlocked(object), object.len() as u64, range).map_err(|_| ())?;
    let bytes = match opener.fetch_range() {
        Some(fetch) => &object[fetch.start as usize..fetch.end as usize],
        None => &[][..],
    };
    let (out, result) = feed(opener, bytes, cuts);
    result.map(|_| out)
}

fn interesting_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(SEG - 1),
        Just(SEG),
        Just(SEG + 1),
        Just(3 * SEG),
        0..6 * SEG + 100,
    ]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![1..40usize, STRIDE - 2..STRIDE + 3, 1..3 * STRIDE],
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn whole_objects_open_in_any_chunking(len in interesting_len(), cuts in cuts()) {
        let data = plain(len);
        let object = seal(&data);
        let (out, result) = open_whole(&object, &cuts);
        prop_assert_eq!(result, Ok(len as u64));
        prop_assert!(out == data);
    }

    #[test]
    fn ranged_reads_equal_the_slice(
        len in interesting_len(),
        a in 0.0..=1.0f64,
        b in 0.0..=1.0f64,
        cuts in cuts(),
    ) {
        let data = plain(len);
        let object = seal(&data);
        let (mut start, mut end) = ((a * len as f64) as u64, (b * len as f64) as u64);
        if start > end {
            core::mem::swap(&mut start, &mut end);
        }
        let out = open_range(&object, start..end, &cuts);
        prop_assert_eq!(out, Ok(data[start as usize..end as usize].to_vec()));
    }

    #[test]
    fn damage_is_refused_and_nothing_unauthenticated_is_released(
        len in 1..5 * SEG,
        at in 0.0..1.0f64,
        bit in 0..8u8,
        cuts in cuts(),
    ) {
        let data = plain(len);
        let object = seal(&data);
        let header_len = unlocked(&object).header_len() as usize;

        // A flipped bit anywhere, header included.
        let mut flipped = object.clone();
        let pos = (at * object.len() as f64) as usize;
        flipped[pos] ^= 1 << bit;
        let (out, result) = open_whole(&flipped, &cuts);
        prop_assert!(result.is_err(), "a flipped bit at {} went unnoticed", pos);
        prop_assert!(data.starts_with(&out), "released bytes that are not the plaintext");
        // Segments before the damaged one are released; the damaged one and later never are.
        let damaged_segment = pos.saturating_sub(header_len) / STRIDE;
        prop_assert!(out.len() <= damaged_segment * SEG);

        // Truncated anywhere after the header.
        let cut = header_len + (at * (object.len() - header_len) as f64) as usize;
        let (out, result) = open_whole(&object[..cut], &cuts);
        prop_assert!(result.is_err(), "truncation at {} went unnoticed", cut);
        prop_assert!(data.starts_with(&out));

        // Extended by one byte.
        let mut longer = object;
        longer.push(0);
        let (out, result) = open_whole(&longer, &cuts);
        prop_assert!(result.is_err());
        prop_assert!(data.starts_with(&out));
    }
}

#[test]
fn reordered_segments_fail() {
    let data = plain(4 * SEG);
    let object = seal(&data);
    let h = unlocked(&object).header_len() as usize;
    let mut swapped = object.clone();
    let (first, second) = (h..h + STRIDE, h + STRIDE..h + 2 * STRIDE);
    let a = object[first.clone()].to_vec();
    swapped[first].copy_from_slice(&object[second.clone()]);
    swapped[second].copy_from_slice(&a);
    let (out, result) = open_whole(&swapped, &[STRIDE]);
    assert!(result.is_err());
    assert!(
        out.is_empty(),
        "segment 0's slot held segment 1 and was released"
    );
    // Dropping a whole middle segment keeps a valid-looking length but breaks the counters.
    let mut dropped = object[..h + STRIDE].to_vec();
    dropped.extend_from_slice(&object[h + 2 * STRIDE..]);
    let (out, result) = open_whole(&dropped, &[1000]);
    assert!(result.is_err());
    assert_eq!(out, &data[..SEG]);
}

#[test]
fn a_body_cut_at_a_segment_boundary_fails_for_want_of_the_final_flag() {
    let data = plain(3 * SEG + 10);
    let object = seal(&data);
    let h = unlocked(&object).header_len() as usize;
    for segments in 0..=3 {
        let (out, result) = open_whole(&object[..h + segments * STRIDE], &[STRIDE + 1]);
        assert!(result.is_err(), "cut after {segments} segments");
        assert!(data.starts_with(&out));
    }
    // Cut inside the header.
    let (out, result) = open_whole(&object[..h - 1], &[7]);
    assert!(result.is_err());
    assert!(out.is_empty());
}

#[test]
fn another_objects_header_is_refused() {
    let data = plain(SEG + 5);
    let a = seal(&data);
    let b = seal(&data);
    let mut opener = NativeOpener::new(&unlocked(&a));
    let mut out = Vec::new();
    assert!(opener.update(&b, &mut out).is_err());
    assert!(out.is_empty());
    // And once failed, it stays failed.
    assert!(opener.update(&a, &mut out).is_err());
    assert!(opener.finish(&mut out).is_err());
}

#[test]
fn ranged_reads_fetch_only_the_covering_segments() {
    let data = plain(10 * SEG + 123);
    let object = seal(&data);
    let unlocked = unlocked(&object);
    let h = unlocked.header_len();
    let len = object.len() as u64;
    let opener =
        NativeOpener::ranged(&unlocked, len, 3 * SEG as u64 + 5..4 * SEG as u64 + 1).unwrap();
    let stride = STRIDE as u64;
    assert_eq!(opener.fetch_range(), Some(h + 3 * stride..h + 5 * stride));
    assert_eq!(
        opener.plaintext_range(),
        Some(3 * SEG as u64 + 5..4 * SEG as u64 + 1)
    );
    // The end is clamped to the plaintext; the final segment is the short one.
    let opener = NativeOpener::ranged(&unlocked, len, 10 * SEG as u64..u64::MAX).unwrap();
    assert_eq!(opener.fetch_range(), Some(h + 10 * stride..len));
    assert_eq!(
        opener.plaintext_range(),
        Some(10 * SEG as u64..data.len() as u64)
    );
    // Empty ranges fetch nothing and release nothing.
    let empty = NativeOpener::ranged(&unlocked, len, 7..7).unwrap();
    assert_eq!(empty.fetch_range(), None);
    assert_eq!(empty.plaintext_range(), Some(7..7));
    assert_eq!(NativeOpener::new(&unlocked).fetch_range(), None);
    assert_eq!(open_range(&object, 7..7, &[1]), Ok(Vec::new()));
    assert_eq!(
        open_range(&object, data.len() as u64..data.len() as u64, &[1]),
        Ok(Vec::new())
    );
    // Past the end is an error naming the length.
    let err = NativeOpener::ranged(&unlocked, len, data.len() as u64 + 1..data.len() as u64 + 2)
        .unwrap_err();
    assert!(
        matches!(err, DecryptError::RangeOutOfBounds { .. }),
        "{err}"
    );
    // A length no object can have.
    assert!(NativeOpener::ranged(&unlocked, h + 3, 0..1).is_err());
}

#[test]
fn ranged_reads_catch_truncation_when_they_reach_the_end() {
    let data = plain(5 * SEG + 300);
    let object = seal(&data);
    let unlocked = unlocked(&object);
    // Drop the last segment: the object still has a valid length, but its new final segment
    // was sealed as not-last.
    let h = unlocked.header_len() as usize;
    let short = &object[..h + 5 * STRIDE];
    let opener = NativeOpener::ranged(
        &unlocked,
        short.len() as u64,
        4 * SEG as u64..5 * SEG as u64,
    )
    .unwrap();
    let fetch = opener.fetch_range().unwrap();
    let (out, result) = feed(
        opener,
        &short[fetch.start as usize..fetch.end as usize],
        &[999],
    );
    assert!(result.is_err());
    assert!(out.is_empty());
    // Feeding fewer bytes than fetch_range named fails at finish; more fails at once.
    let mut opener = NativeOpener::ranged(&unlocked, object.len() as u64, 0..10).unwrap();
    let fetch = opener.fetch_range().unwrap();
    let mut out = Vec::new();
    opener
        .update(
            &object[fetch.start as usize..fetch.end as usize - 1],
            &mut out,
        )
        .unwrap();
    assert!(opener.finish(&mut out).is_err());
    let mut opener = NativeOpener::ranged(&unlocked, object.len() as u64, 0..10).unwrap();
    let mut out = Vec::new();
    assert!(
        opener
            .update(
                &object[fetch.start as usize..fetch.end as usize + 1],
                &mut out
            )
            .is_err()
    );
}

#[test]
fn declared_len_says_when_the_header_is_complete() {
    let object = seal(b"x");
    let h = unlocked(&object).header_len() as usize;
    for n in 0..FIXED_LEN {
        assert_eq!(
            Header::declared_len(&object[..n]).unwrap(),
            None,
            "{n} bytes"
        );
    }
    for n in [FIXED_LEN, FIXED_LEN + 1, h, object.len()] {
        assert_eq!(Header::declared_len(&object[..n]).unwrap(), Some(h));
    }
    assert!(matches!(
        Header::declared_len(b"\x89MSX"),
        Err(HeaderError::NotNative)
    ));
    let mut bad = object[..FIXED_LEN].to_vec();
    bad[8] = 9;
    assert!(matches!(
        Header::declared_len(&bad),
        Err(HeaderError::UnsupportedVersion(9))
    ));
    // Unlocking needs the whole header.
    assert!(matches!(
        UnlockedHeader::unlock(&object[..h - 1], key()),
        Err(DecryptError::Header(HeaderError::Truncated))
    ));
}

#[test]
fn unlocking_with_a_stranger_names_the_recipients() {
    let object = seal(b"secret");
    let stranger = PrivateKey::generate(2048).unwrap();
    let err = UnlockedHeader::unlock(&object, &stranger).unwrap_err();
    assert!(matches!(err, DecryptError::WrongKey { .. }));
    assert!(err.to_string().contains("CRopener"), "{err}");
}

#[test]
fn debug_shows_no_key_material() {
    let object = seal(b"secret");
    let unlocked = unlocked(&object);
    let text = format!("{unlocked:?} {:?}", NativeOpener::new(&unlocked));
    assert!(
        text.contains("header_len") && text.contains("released"),
        "{text}"
    );
    assert!(
        !text.to_lowercase().contains("cek") && !text.contains("aad"),
        "{text}"
    );
}
