//! mediaseal's native chunked format (specified in `docs/FORMAT.md`).
//!
//! A header names the recipients and the segment size; the body is a sequence of AES-256-GCM
//! segments. Each segment is authenticated on its own, so plaintext is released segment by
//! segment, any byte range can be read without the rest, and segments seal and open in parallel.
//! The nonce carries the segment's position and a last-segment flag, and every segment's
//! associated data is the SHA-256 of the header, so reordering, truncation, extension and header
//! edits all fail authentication.

mod header;
mod opener;
mod reader;

use std::fs::File;
use std::io::{Read, Write};

use mediaseal_lc::gcm::GcmSegmentCipher;
use zeroize::Zeroize;

pub use self::header::{
    DEFAULT_SEGMENT_LOG2, FIXED_LEN, Header, HeaderError, MAGIC, MAX_HEADER_LEN, MAX_KEY_ID_LEN,
    MAX_RECIPIENTS, NONCE_PREFIX_LEN, RECIPIENT_RSA_OAEP_SHA256, Recipient, SEGMENT_LOG2_RANGE,
    SUITE_AES256GCM_SEGMENTS, VERSION,
};
pub use self::opener::{NativeOpener, UnlockedHeader};
pub use self::reader::{NativeReader, decrypt_range};
use crate::cek::{ContentKey, fill_random};
use crate::error::{DecryptError, EncryptError};
use crate::gcm::{IV_LEN, TAG_LEN};
use crate::keys::{PrivateKey, PublicKey};
use crate::pump::{PumpConfig, PumpError, advise_sequential, changed_size, pump, remaining_len};
use crate::sealer::Sealer;

/// Plaintext bytes per chunk handed to the workers by the streaming functions. Three chunks of
/// input and three of output are in flight, so this bounds memory (about 6 × 4 MiB) for every
/// segment size up to 4 MiB; larger segments need at least one whole segment per worker.
const TARGET_CHUNK_BYTES: usize = 4 << 20;
/// More workers than this gain nothing and would only inflate the chunk size.
const MAX_THREADS: usize = 64;
/// A segment index must fit the nonce's 32-bit counter.
const MAX_SEGMENTS: u64 = 1 << 32;

/// A public key to seal to, and the name to record for it (typically its `CR…` SID).
#[derive(Debug, Clone)]
pub struct RecipientKey<'a> {
    /// The key.
    pub key: &'a PublicKey,
    /// Recorded in the header; empty for none.
    pub key_id: &'a str,
}

/// How to cut and who works.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// log2 of the segment size (12..=24).
    pub segment_log2: u8,
    /// Worker threads for the cipher; 1 does everything, I/O included, on the calling thread.
    pub threads: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            segment_log2: DEFAULT_SEGMENT_LOG2,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The secrets and parameters shared by every segment of one file.
#[derive(Clone)]
pub(crate) struct SegmentKeys {
    cek: ContentKey,
    aad: [u8; 32],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    segment_size: usize,
}

impl SegmentKeys {
    fn new(cek: ContentKey, header: &Header, header_bytes: &[u8]) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, header_bytes);
        let mut aad = [0u8; 32];
        aad.copy_from_slice(digest.as_ref());
        Self {
            cek,
            aad,
            nonce_prefix: header.nonce_prefix,
            segment_size: header.segment_size(),
        }
    }

    fn nonce(&self, index: u64, last: bool) -> [u8; IV_LEN] {
        let mut nonce = [0u8; IV_LEN];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        // Callers check `index < MAX_SEGMENTS`, so the truncation keeps every bit.
        nonce[NONCE_PREFIX_LEN..IV_LEN - 1].copy_from_slice(&(index as u32).to_be_bytes());
        nonce[IV_LEN - 1] = u8::from(last);
        nonce
    }

    fn sealing_cipher(&self) -> Result<GcmSegmentCipher, EncryptError> {
        GcmSegmentCipher::sealing(self.cek.expose()).map_err(|_| EncryptError::Crypto)
    }

    fn opening_cipher(&self) -> Result<GcmSegmentCipher, DecryptError> {
        GcmSegmentCipher::opening(self.cek.expose()).map_err(|_| DecryptError::AuthenticationFailed)
    }

    /// Seals one segment: `output` receives ciphertext then tag (`input.len() + 16` bytes).
    fn seal_segment(
        &self,
        cipher: &mut GcmSegmentCipher,
        index: u64,
        last: bool,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(), EncryptError> {
        if index >= MAX_SEGMENTS {
            return Err(EncryptError::Crypto);
        }
        let (body, tag_out) = output.split_at_mut(input.len());
        let tag = cipher
            .seal(&self.nonce(index, last), &self.aad, input, body)
            .map_err(|_| EncryptError::Crypto)?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Opens one segment (ciphertext then tag) into `output` (`input.len() - 16` bytes).
    fn open_segment(
        &self,
        cipher: &mut GcmSegmentCipher,
        index: u64,
        last: bool,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(), DecryptError> {
        // An empty final segment exists only for an empty file, so each plaintext has one encoding.
        let too_short = input.len() < TAG_LEN || (input.len() == TAG_LEN && index > 0);
        let too_long = input.len() > self.segment_size + TAG_LEN;
        if too_short
            || too_long
            || index >= MAX_SEGMENTS
            || (!last && input.len() != self.segment_size + TAG_LEN)
        {
            return Err(DecryptError::AuthenticationFailed);
        }
        let (body, tag) = input.split_at(input.len() - TAG_LEN);
        let tag: &[u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| DecryptError::AuthenticationFailed)?;
        cipher
            .open(&self.nonce(index, last), &self.aad, body, tag, output)
            .map_err(|_| DecryptError::AuthenticationFailed)
    }
}

/// Starts a native file: a fresh CEK wrapped to every recipient, and the header bytes.
fn new_file(
    recipients: &[RecipientKey<'_>],
    segment_log2: u8,
) -> Result<(SegmentKeys, Vec<u8>), EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(EncryptError::TooManyRecipients {
            given: recipients.len(),
            max: MAX_RECIPIENTS,
            format: "native",
        });
    }
    if !SEGMENT_LOG2_RANGE.contains(&segment_log2) {
        return Err(EncryptError::BadSegmentSize(
            1usize.checked_shl(u32::from(segment_log2)).unwrap_or(0),
        ));
    }
    let cek = ContentKey::generate();
    let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
    fill_random(&mut nonce_prefix);
    let mut list = Vec::with_capacity(recipients.len());
    for r in recipients {
        if r.key_id.len() > MAX_KEY_ID_LEN || !r.key_id.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(EncryptError::BadKeySid(r.key_id.to_owned()));
        }
        list.push(Recipient {
            key_id: r.key_id.to_owned(),
            fingerprint: r.key.fingerprint(),
            wrapped_cek: cek.wrap_oaep(r.key).map_err(|_| EncryptError::Wrap)?,
        });
    }
    let header = Header {
        segment_log2,
        nonce_prefix,
        recipients: list,
    };
    let bytes = header.to_bytes().map_err(|_| EncryptError::Crypto)?;
    Ok((SegmentKeys::new(cek, &header, &bytes), bytes))
}

/// Finds the recipient entry for `key` and unwraps the CEK, or explains who the file is for.
pub(crate) fn unlock(
    header: &Header,
    header_bytes: &[u8],
    key: &PrivateKey,
) -> Result<SegmentKeys, DecryptError> {
    let fingerprint = key.fingerprint();
    let Some(entry) = header
        .recipients
        .iter()
        .find(|r| r.fingerprint == fingerprint)
    else {
        return Err(DecryptError::WrongKey {
            sealed_for: header.recipients.iter().map(describe_recipient).collect(),
            given: fingerprint,
            detail: "its fingerprint is not among the file's recipients".to_owned(),
        });
    };
    let cek =
        ContentKey::unwrap_oaep(&entry.wrapped_cek, key).map_err(|_| DecryptError::WrongKey {
            sealed_for: vec![describe_recipient(entry)],
            given: fingerprint,
            detail:
                "the fingerprint matches but the wrapped key does not open; the header was altered"
                    .to_owned(),
        })?;
    Ok(SegmentKeys::new(cek, header, header_bytes))
}

fn describe_recipient(r: &Recipient) -> String {
    if r.key_id.is_empty() {
        format!("fingerprint {}", r.fingerprint.short())
    } else {
        format!("{} (fingerprint {})", r.key_id, r.fingerprint.short())
    }
}

/// Sans-IO sealer: feed plaintext of any chunking, collect the native file's bytes.
pub struct NativeSealer {
    keys: SegmentKeys,
    cipher: GcmSegmentCipher,
    header: Vec<u8>,
    pending: Vec<u8>,
    next_index: u64,
}

impl core::fmt::Debug for NativeSealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NativeSealer")
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl NativeSealer {
    /// Starts a file sealed to `recipients` with segments of 2^`segment_log2` bytes.
    pub fn new(recipients: &[RecipientKey<'_>], segment_log2: u8) -> Result<Self, EncryptError> {
        let (keys, header) = new_file(recipients, segment_log2)?;
        let cipher = keys.sealing_cipher()?;
        let pending = Vec::with_capacity(keys.segment_size);
        Ok(Self {
            keys,
            cipher,
            header,
            pending,
            next_index: 0,
        })
    }

    /// The header bytes; they come first in the file.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The file's segment keys, for sealing its segments in parallel instead.
    pub(crate) fn keys(&self) -> &SegmentKeys {
        &self.keys
    }

    /// Seals what `input` completes, appending whole segments to `out`. A full segment is held
    /// back until more input shows it is not the last.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let seg = self.keys.segment_size;
        while !input.is_empty() {
            if self.pending.len() == seg {
                self.flush_pending(false, out)?;
            }
            let take = (seg - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }

    /// Seals the final segment into `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), EncryptError> {
        self.flush_pending(true, out)
    }

    fn flush_pending(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let start = out.len();
        out.resize(start + self.pending.len() + TAG_LEN, 0);
        self.keys.seal_segment(
            &mut self.cipher,
            self.next_index,
            last,
            &self.pending,
            &mut out[start..],
        )?;
        self.next_index += 1;
        self.pending.zeroize();
        self.pending.clear();
        Ok(())
    }
}

impl Drop for NativeSealer {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

/// Runs `work` for each of `groups` on the pool (or inline without one).
fn run_groups<G: Send, E: Send>(
    pool: Option<&rayon::ThreadPool>,
    groups: Vec<G>,
    work: impl Fn(G) -> Result<(), E> + Sync,
) -> Result<(), E> {
    match pool {
        Some(pool) if groups.len() > 1 => pool.install(|| {
            use rayon::prelude::*;
            groups.into_par_iter().try_for_each(&work)
        }),
        _ => groups.into_iter().try_for_each(work),
    }
}

fn make_pool(threads: usize) -> Option<rayon::ThreadPool> {
    if threads <= 1 {
        return None;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("mediaseal-seg-{i}"))
        .build()
        .ok()
}

/// Whole segments per pump chunk: about [`TARGET_CHUNK_BYTES`], and at least one per worker.
fn segments_per_chunk(segment_size: usize, parts: usize) -> usize {
    (TARGET_CHUNK_BYTES / segment_size).max(parts).max(1)
}

/// Splits `segments` segments into at most `parts` contiguous runs of similar size.
fn split_counts(segments: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, segments.max(1));
    let base = segments / parts;
    let extra = segments % parts;
    (0..parts)
        .map(|i| base + usize::from(i < extra))
        .filter(|&n| n > 0)
        .collect()
}

/// A run of consecutive segments one worker handles: its input and output bytes, the index of
/// its first segment, and whether it ends the file.
struct Group<'a> {
    input: &'a [u8],
    output: &'a mut [u8],
    first: u64,
    last: bool,
}

/// Cuts one chunk of plaintext (`input`) and its output buffer into per-worker groups.
/// `out` must hold `input.len() + segments * TAG_LEN` bytes.
fn seal_groups<'a>(
    input: &'a [u8],
    out: &'a mut [u8],
    seg: usize,
    parts: usize,
    first_index: u64,
    last: bool,
) -> (Vec<Group<'a>>, u64) {
    let segments = input.len().div_ceil(seg).max(1);
    let counts = split_counts(segments, parts);
    let n_groups = counts.len();
    let mut groups = Vec::with_capacity(n_groups);
    let (mut rest_in, mut rest_out) = (input, out);
    let mut index = first_index;
    for (g, count) in counts.into_iter().enumerate() {
        let in_len = (count * seg).min(rest_in.len());
        let (gi, ri) = rest_in.split_at(in_len);
        let (go, ro) = rest_out.split_at_mut(in_len + count * TAG_LEN);
        groups.push(Group {
            input: gi,
            output: go,
            first: index,
            last: last && g + 1 == n_groups,
        });
        rest_in = ri;
        rest_out = ro;
        index += count as u64;
    }
    (groups, index)
}

/// Cuts one chunk of sealed segments and its output buffer into per-worker groups. `out` must
/// hold `input.len() - segments * TAG_LEN` bytes; every segment must carry at least a tag.
fn open_groups<'a>(
    input: &'a [u8],
    out: &'a mut [u8],
    stride: usize,
    parts: usize,
    first_index: u64,
    last: bool,
) -> Result<(Vec<Group<'a>>, u64), DecryptError> {
    let segments = input.len().div_ceil(stride);
    let counts = split_counts(segments, parts);
    let n_groups = counts.len();
    let mut groups = Vec::with_capacity(n_groups);
    let (mut rest_in, mut rest_out) = (input, out);
    let mut index = first_index;
    for (g, count) in counts.into_iter().enumerate() {
        let in_len = (count * stride).min(rest_in.len());
        let (gi, ri) = rest_in.split_at(in_len);
        let out_len = in_len
            .checked_sub(count * TAG_LEN)
            .ok_or(DecryptError::AuthenticationFailed)?;
        let (go, ro) = rest_out
            .split_at_mut_checked(out_len)
            .ok_or(DecryptError::AuthenticationFailed)?;
        groups.push(Group {
            input: gi,
            output: go,
            first: index,
            last: last && g + 1 == n_groups,
        });
        rest_in = ri;
        rest_out = ro;
        index += count as u64;
    }
    Ok((groups, index))
}

/// Seals the segments of one group (plaintext `input` into `output`).
fn seal_group(
    keys: &SegmentKeys,
    input: &[u8],
    output: &mut [u8],
    first: u64,
    last: bool,
) -> Result<(), EncryptError> {
    let seg = keys.segment_size;
    let mut cipher = keys.sealing_cipher()?;
    let count = input.len().div_ceil(seg).max(1);
    for k in 0..count {
        let pin = input
            .get(k * seg..((k + 1) * seg).min(input.len()))
            .unwrap_or_default();
        let o = k * (seg + TAG_LEN);
        let pout = output
            .get_mut(o..o + pin.len() + TAG_LEN)
            .ok_or(EncryptError::Crypto)?;
        keys.seal_segment(
            &mut cipher,
            first + k as u64,
            last && k + 1 == count,
            pin,
            pout,
        )?;
    }
    Ok(())
}

/// Opens the segments of one group (sealed `input` into `output`).
fn open_group(
    keys: &SegmentKeys,
    input: &[u8],
    output: &mut [u8],
    first: u64,
    last: bool,
) -> Result<(), DecryptError> {
    let seg = keys.segment_size;
    let stride = seg + TAG_LEN;
    let mut cipher = keys.opening_cipher()?;
    let count = input.len().div_ceil(stride);
    for k in 0..count {
        let cin = input
            .get(k * stride..((k + 1) * stride).min(input.len()))
            .unwrap_or_default();
        let plain = cin
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(DecryptError::AuthenticationFailed)?;
        let pout = output
            .get_mut(k * seg..k * seg + plain)
            .ok_or(DecryptError::AuthenticationFailed)?;
        keys.open_segment(
            &mut cipher,
            first + k as u64,
            last && k + 1 == count,
            cin,
            pout,
        )?;
    }
    Ok(())
}

/// Checks a chunk of sealed segments has a plausible length and returns its plaintext length.
fn sealed_chunk_plain_len(len: usize, stride: usize) -> Result<usize, DecryptError> {
    if len == 0 {
        // A header with no segments after it: the body was cut off.
        return Err(DecryptError::AuthenticationFailed);
    }
    // Every segment carries a whole tag; a shorter tail means the file was cut or padded, and
    // checking it here keeps the slicing consistent.
    let tail = len % stride;
    if tail != 0 && tail < TAG_LEN {
        return Err(DecryptError::AuthenticationFailed);
    }
    len.checked_sub(len.div_ceil(stride) * TAG_LEN)
        .ok_or(DecryptError::AuthenticationFailed)
}

fn encrypt_pump_error(e: PumpError<EncryptError>) -> EncryptError {
    match e {
        PumpError::Io(io) => EncryptError::Io(io),
        PumpError::Transform(t) => t,
    }
}

fn decrypt_pump_error(e: PumpError<DecryptError>) -> DecryptError {
    match e {
        PumpError::Io(io) => DecryptError::Io(io),
        PumpError::Transform(t) => t,
    }
}

/// Seals `reader` into `writer` as a native file, on `options.threads` threads.
/// Returns the number of plaintext bytes sealed.
///
/// The same as driving a [`Sealer`] for [`crate::Format::Native`] with
/// [`Sealer::seal_reader`], which is what this does.
pub fn seal_stream<R: Read + Send, W: Write + Send>(
    reader: R,
    writer: W,
    recipients: &[RecipientKey<'_>],
    options: StreamOptions,
) -> Result<(u64, W), EncryptError> {
    let sealer =
        Sealer::with_segment_log2(crate::Format::Native, recipients, options.segment_log2)?;
    let (receipt, writer) = sealer.seal_reader(reader, writer, options.threads)?;
    Ok((receipt.plaintext_len, writer))
}

/// Seals the rest of a regular file (from its current offset) into `writer`, like
/// [`seal_stream`], reading it sequentially with large reads so that a file that is not in the
/// page cache streams off the disk at full speed. Fails if the file changes size meanwhile.
pub fn seal_file<W: Write + Send>(
    file: &File,
    writer: W,
    recipients: &[RecipientKey<'_>],
    options: StreamOptions,
) -> Result<(u64, W), EncryptError> {
    let sealer =
        Sealer::with_segment_log2(crate::Format::Native, recipients, options.segment_log2)?;
    let (receipt, writer) = sealer.seal_file(file, writer, options.threads)?;
    Ok((receipt.plaintext_len, writer))
}

/// Seals the segments of a file whose header is already written, reading `reader` to its end
/// on `threads` threads. Returns the plaintext and sealed byte counts.
pub(crate) fn seal_parallel<R: Read + Send, W: Write + Send>(
    keys: &SegmentKeys,
    reader: R,
    writer: W,
    threads: usize,
) -> Result<(u64, u64, W), EncryptError> {
    let seg = keys.segment_size;
    let parts = threads.clamp(1, MAX_THREADS);
    let pool = make_pool(parts);
    let mut next_index = 0u64;
    let mut consumed = 0u64;
    let mut sealed = 0u64;
    let config = PumpConfig {
        chunk: seg * segments_per_chunk(seg, parts),
        overlap_io: parts > 1,
    };
    let writer = pump(reader, writer, config, |input, out, last| {
        consumed += input.len() as u64;
        out.resize(input.len() + input.len().div_ceil(seg).max(1) * TAG_LEN, 0);
        sealed += out.len() as u64;
        let (groups, next) = seal_groups(input, out, seg, parts, next_index, last);
        next_index = next;
        run_groups(pool.as_ref(), groups, |g| {
            seal_group(keys, g.input, g.output, g.first, g.last)
        })
    })
    .map_err(encrypt_pump_error)?;
    Ok((consumed, sealed, writer))
}

/// Opens a native file from `reader` into `writer`, releasing each segment only once it is
/// authenticated. If the file turns out truncated, what was already written is authentic but
/// incomplete, and an error is returned; write to a path through [`crate::output::AtomicFile`]
/// to get all-or-nothing output.
pub fn open_stream<R: Read + Send, W: Write + Send>(
    mut reader: R,
    writer: W,
    key: &PrivateKey,
    threads: usize,
) -> Result<(u64, W), DecryptError> {
    let (header, header_bytes) = Header::read_from(&mut reader)?;
    let keys = unlock(&header, &header_bytes, key)?;
    open_body(reader, writer, &keys, threads)
}

/// Opens the segments that follow a header whose keys are already unlocked.
pub(crate) fn open_body<R: Read + Send, W: Write + Send>(
    reader: R,
    writer: W,
    keys: &SegmentKeys,
    threads: usize,
) -> Result<(u64, W), DecryptError> {
    let stride = keys.segment_size + TAG_LEN;
    let parts = threads.clamp(1, MAX_THREADS);
    let pool = make_pool(parts);
    let mut next_index = 0u64;
    let mut produced = 0u64;
    let config = PumpConfig {
        chunk: stride * segments_per_chunk(keys.segment_size, parts),
        overlap_io: parts > 1,
    };
    let writer = pump(reader, writer, config, |input, out, last| {
        let plain_len = sealed_chunk_plain_len(input.len(), stride)?;
        out.resize(plain_len, 0);
        let (groups, next) = open_groups(input, out, stride, parts, next_index, last)?;
        next_index = next;
        run_groups(pool.as_ref(), groups, |g| {
            open_group(keys, g.input, g.output, g.first, g.last)
        })?;
        produced += plain_len as u64;
        Ok(())
    })
    .map_err(decrypt_pump_error)?;
    Ok((produced, writer))
}

/// Opens a native file that is a regular file (from its current offset) into `writer`, like
/// [`open_stream`], reading it sequentially with large reads (and telling the kernel so), so a
/// file that is not in the page cache streams off the disk at full speed. Fails if the file
/// changes size meanwhile.
pub fn open_file<W: Write + Send>(
    file: &File,
    writer: W,
    key: &PrivateKey,
    threads: usize,
) -> Result<(u64, W), DecryptError> {
    advise_sequential(file);
    let mut cursor = file;
    let (header, header_bytes) = Header::read_from(&mut cursor)?;
    let keys = unlock(&header, &header_bytes, key)?;
    let body_len = remaining_len(file)?;
    let (produced, writer) = open_body(file, writer, &keys, threads)?;
    if plaintext_len(0, keys.segment_size as u64, body_len) != Some(produced) {
        return Err(DecryptError::Io(changed_size()));
    }
    Ok((produced, writer))
}

/// Plaintext length of a native file whose header is `header_len` bytes and whose total length
/// is `file_len`, or `None` if no valid file has that shape.
pub fn plaintext_len(header_len: u64, segment_size: u64, file_len: u64) -> Option<u64> {
    let body = file_len.checked_sub(header_len)?;
    let stride = segment_size + TAG_LEN as u64;
    let full = body / stride;
    let rest = body % stride;
    match (full, rest) {
        (0, 0) => None,
        (_, 0) => Some(full * segment_size),
        (0, r) if r >= TAG_LEN as u64 => Some(r - TAG_LEN as u64),
        (f, r) if r > TAG_LEN as u64 => Some(f * segment_size + r - TAG_LEN as u64),
        _ => None,
    }
}

/// Ciphertext length of a native file with this header length, segment size and plaintext length.
pub fn ciphertext_len(header_len: u64, segment_size: u64, plaintext_len: u64) -> u64 {
    let segments = plaintext_len.div_ceil(segment_size).max(1);
    header_len + plaintext_len + segments * TAG_LEN as u64
}

#[cfg(test)]
mod tests;
