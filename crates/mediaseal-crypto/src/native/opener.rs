//! Sans-IO opening of native objects: bytes in, authenticated plaintext out.
//!
//! Opening takes two steps. [`UnlockedHeader::unlock`] parses a header and unwraps its content
//! key with the private key: the one RSA operation per object, which a server can do once and
//! keep. A [`NativeOpener`] then takes the object's bytes in pieces of any size and appends the
//! plaintext of each segment to the caller's buffer only once that segment has authenticated,
//! so an async server can open what an object store streams without a blocking thread, and
//! [`NativeOpener::ranged`] opens only the segments that cover a plaintext byte range.

use core::fmt;
use core::ops::Range;

use mediaseal_lc::gcm::GcmSegmentCipher;
use zeroize::Zeroize;

use super::{Header, SegmentKeys, plaintext_len, unlock};
use crate::error::DecryptError;
use crate::gcm::TAG_LEN;
use crate::keys::PrivateKey;

/// A native header whose content key has been unwrapped: everything needed to open the object's
/// segments, from one RSA operation. Cloning it is cheap and repeats no RSA work; the key inside
/// is wiped when the last copy is dropped.
#[derive(Clone)]
pub struct UnlockedHeader {
    keys: SegmentKeys,
    header: Header,
    header_bytes: Vec<u8>,
}

impl fmt::Debug for UnlockedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnlockedHeader")
            .field("header_len", &self.header_bytes.len())
            .field("segment_size", &self.keys.segment_size)
            .field("recipients", &self.header.recipients.len())
            .finish_non_exhaustive()
    }
}

impl UnlockedHeader {
    /// Parses the header at the start of `bytes` (which may go on into the body) and unwraps the
    /// content key with `key`. Fails with [`DecryptError::Header`] if the header is malformed or
    /// incomplete (see [`Header::declared_len`] to know how many bytes to gather first), and with
    /// [`DecryptError::WrongKey`] naming the object's recipients if `key` is not one of them.
    pub fn unlock(bytes: &[u8], key: &PrivateKey) -> Result<Self, DecryptError> {
        let (header, len) = Header::parse(bytes)?;
        let header_bytes = bytes.get(..len).unwrap_or_default().to_vec();
        let keys = unlock(&header, &header_bytes, key)?;
        Ok(Self {
            keys,
            header,
            header_bytes,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Length of the header in bytes: where the first segment starts.
    pub fn header_len(&self) -> u64 {
        self.header_bytes.len() as u64
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> u64 {
        self.keys.segment_size as u64
    }

    /// Plaintext length of the object if it is `object_len` bytes long, or `None` if no valid
    /// object has that length. Only claimed until the final segment authenticates.
    pub fn plaintext_len(&self, object_len: u64) -> Option<u64> {
        plaintext_len(self.header_len(), self.segment_size(), object_len)
    }
}

/// Which segments a ranged opener expects, when the object's length is known.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// One past the last segment to open.
    end_index: u64,
    /// Index of the object's final segment (sealed with `last = 1`).
    final_index: u64,
    /// Sealed length of the object's final segment.
    final_sealed_len: usize,
}

/// Opens a native object fed in pieces of any size, releasing each segment's plaintext only once
/// that segment has authenticated.
///
/// ```
/// use mediaseal_crypto::native::{self, Header, RecipientKey, StreamOptions};
/// use mediaseal_crypto::{NativeOpener, PrivateKey, UnlockedHeader};
///
/// let key = PrivateKey::generate(2048)?;
/// let recipients = [RecipientKey { key: key.public_key(), key_id: "" }];
/// let options = StreamOptions { segment_log2: 12, threads: 1 };
/// let plain: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
/// let (_, object) = native::seal_stream(&plain[..], Vec::new(), &recipients, options)?;
///
/// // Gather the header, unlock it once, then stream the whole object through.
/// let header_len = Header::declared_len(&object)?.expect("enough bytes for the fixed part");
/// let unlocked = UnlockedHeader::unlock(&object[..header_len], &key)?;
/// let mut opener = NativeOpener::new(&unlocked);
/// let mut out = Vec::new();
/// for piece in object.chunks(1000) {
///     opener.update(piece, &mut out)?;
/// }
/// opener.finish(&mut out)?;
/// assert_eq!(out, plain);
///
/// // Or fetch only the ciphertext that covers bytes 5000..5100.
/// let mut ranged = NativeOpener::ranged(&unlocked, object.len() as u64, 5000..5100)?;
/// let fetch = ranged.fetch_range().expect("a ranged opener knows what it needs");
/// let mut part = Vec::new();
/// ranged.update(&object[fetch.start as usize..fetch.end as usize], &mut part)?;
/// ranged.finish(&mut part)?;
/// assert_eq!(part, &plain[5000..5100]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Every failure (a tag that does not verify, a truncated, extended or reordered object, a
/// missing final segment) is the one coarse [`DecryptError::AuthenticationFailed`]; after it the
/// opener releases nothing more. What it released before is authentic but, for a failure at the
/// end, incomplete: a caller that must not show partial output buffers until
/// [`NativeOpener::finish`] succeeds.
pub struct NativeOpener {
    keys: SegmentKeys,
    /// `None` only if AWS-LC could not allocate a cipher context; every segment then fails.
    cipher: Option<GcmSegmentCipher>,
    /// Header bytes expected at the start of the input (whole-object mode), and how many have
    /// been seen.
    header: Vec<u8>,
    header_seen: usize,
    /// Sealed bytes of a segment that arrived in pieces.
    pending: Vec<u8>,
    next_index: u64,
    layout: Option<Layout>,
    fetch: Option<Range<u64>>,
    plaintext: Option<Range<u64>>,
    /// Plaintext bytes still to drop from the front (ranged reads starting inside a segment).
    skip: u64,
    /// Plaintext bytes still to release (ranged reads ending inside a segment).
    remaining: Option<u64>,
    released: u64,
    failed: bool,
}

impl fmt::Debug for NativeOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeOpener")
            .field("next_segment", &self.next_index)
            .field("released", &self.released)
            .field("fetch_range", &self.fetch)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl NativeOpener {
    /// Opens a whole object fed from its first byte (header included), whose length is not
    /// known in advance: a full segment is released once the next byte shows it is not the
    /// last, and the final segment at [`NativeOpener::finish`].
    pub fn new(unlocked: &UnlockedHeader) -> Self {
        let mut opener = Self::with_keys(unlocked);
        opener.header = unlocked.header_bytes.clone();
        opener
    }

    /// Opens plaintext bytes `range` of an object that is `object_len` bytes long, from only the
    /// segments that hold them: feed exactly the object bytes [`NativeOpener::fetch_range`]
    /// names, and the output is exactly the plaintext in `range` (its end clamped to the
    /// plaintext length). A range that reaches the end of the object authenticates the final
    /// segment, so truncation is caught there; a range that does not cannot tell.
    pub fn ranged(
        unlocked: &UnlockedHeader,
        object_len: u64,
        range: Range<u64>,
    ) -> Result<Self, DecryptError> {
        let len = unlocked
            .plaintext_len(object_len)
            .ok_or(DecryptError::AuthenticationFailed)?;
        if range.start > len || range.start > range.end || (range.start == len && range.end > len) {
            return Err(DecryptError::RangeOutOfBounds {
                start: range.start,
                len,
            });
        }
        let (start, end) = (range.start, range.end.min(len));
        let segment = unlocked.segment_size();
        let stride = segment + TAG_LEN as u64;
        let header_len = unlocked.header_len();
        let segments = len.div_ceil(segment).max(1);
        let final_index = segments - 1;
        let final_plain = len - final_index * segment;
        let sealed_len = |index: u64| {
            if index == final_index {
                final_plain + TAG_LEN as u64
            } else {
                stride
            }
        };
        let mut opener = Self::with_keys(unlocked);
        let (first, end_index) = if start == end {
            (0, 0)
        } else {
            (start / segment, (end - 1) / segment + 1)
        };
        let fetch = if start == end {
            header_len..header_len
        } else {
            let from = header_len + first * stride;
            from..header_len + (end_index - 1) * stride + sealed_len(end_index - 1)
        };
        opener.next_index = first;
        opener.layout = Some(Layout {
            end_index,
            final_index,
            final_sealed_len: usize::try_from(final_plain)
                .map_err(|_| DecryptError::AuthenticationFailed)?
                + TAG_LEN,
        });
        opener.skip = start - first * segment;
        opener.remaining = Some(end - start);
        opener.fetch = Some(fetch);
        opener.plaintext = Some(start..end);
        Ok(opener)
    }

    fn with_keys(unlocked: &UnlockedHeader) -> Self {
        let keys = unlocked.keys.clone();
        Self {
            cipher: keys.opening_cipher().ok(),
            keys,
            header: Vec::new(),
            header_seen: 0,
            pending: Vec::new(),
            next_index: 0,
            layout: None,
            fetch: None,
            plaintext: None,
            skip: 0,
            remaining: None,
            released: 0,
            failed: false,
        }
    }

    /// For a ranged opener, the object bytes to feed it: exactly these, in order. `None` when
    /// there is nothing to fetch: an empty range, or a whole-object opener (which takes the
    /// object from its first byte).
    pub fn fetch_range(&self) -> Option<Range<u64>> {
        self.fetch.clone().filter(|fetch| !fetch.is_empty())
    }

    /// For a ranged opener, the plaintext bytes it will release (the range asked for, its end
    /// clamped to the plaintext length).
    pub fn plaintext_range(&self) -> Option<Range<u64>> {
        self.plaintext.clone()
    }

    /// Plaintext bytes released so far.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Takes the next piece of the object and appends to `out` the plaintext of every segment
    /// it completes and that authenticates. On error `out` is left as it was before the failing
    /// segment, and every later call fails too.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if self.failed {
            return Err(DecryptError::AuthenticationFailed);
        }
        let result = self.update_inner(input, out);
        self.failed = result.is_err();
        result
    }

    /// Ends the input: opens the final segment of a whole object, and fails if the object
    /// ended early (inside the header, inside a segment, before its final segment, or with no
    /// segment at all). Returns the number of plaintext bytes released in all.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<u64, DecryptError> {
        if self.failed || self.header_seen < self.header.len() {
            return Err(DecryptError::AuthenticationFailed);
        }
        match self.layout {
            Some(layout) => {
                if self.next_index != layout.end_index || !self.pending.is_empty() {
                    return Err(DecryptError::AuthenticationFailed);
                }
            }
            None => {
                // Whatever is held is the final segment; nothing held means no segment at all
                // (or a body cut off exactly after the header).
                if self.pending.is_empty() {
                    return Err(DecryptError::AuthenticationFailed);
                }
                let sealed = core::mem::take(&mut self.pending);
                self.open_one(&sealed, true, out)?;
            }
        }
        Ok(self.released)
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if self.header_seen < self.header.len() {
            let take = (self.header.len() - self.header_seen).min(input.len());
            let (head, rest) = input.split_at(take);
            if self.header.get(self.header_seen..self.header_seen + take) != Some(head) {
                // Not the object this header was unlocked from.
                return Err(DecryptError::AuthenticationFailed);
            }
            self.header_seen += take;
            input = rest;
        }
        match self.layout {
            Some(layout) => self.feed_known(input, layout, out),
            None => self.feed_streaming(input, out),
        }
    }

    /// Whole-object mode: a full segment is opened as non-final once more bytes follow it.
    fn feed_streaming(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        let stride = self.keys.segment_size + TAG_LEN;
        loop {
            if self.pending.len() == stride && !input.is_empty() {
                let sealed = core::mem::take(&mut self.pending);
                self.open_one(&sealed, false, out)?;
                self.pending = sealed;
                self.pending.clear();
            }
            if input.is_empty() {
                return Ok(());
            }
            if self.pending.is_empty() && input.len() > stride {
                // Straight from the caller's buffer: no copy for segments that arrive whole.
                let (segment, rest) = input.split_at(stride);
                self.open_one(segment, false, out)?;
                input = rest;
                continue;
            }
            let take = (stride - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
    }

    /// Ranged mode: every segment's length and finality are known from the object's length.
    fn feed_known(
        &mut self,
        mut input: &[u8],
        layout: Layout,
        out: &mut Vec<u8>,
    ) -> Result<(), DecryptError> {
        let stride = self.keys.segment_size + TAG_LEN;
        while !input.is_empty() {
            if self.next_index >= layout.end_index {
                // More bytes than the range's segments: not what fetch_range named.
                return Err(DecryptError::AuthenticationFailed);
            }
            let last = self.next_index == layout.final_index;
            let need = if last {
                layout.final_sealed_len
            } else {
                stride
            };
            if self.pending.is_empty() && input.len() >= need {
                let (segment, rest) = input.split_at(need);
                self.open_one(segment, last, out)?;
                input = rest;
                continue;
            }
            let take = (need - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == need {
                let sealed = core::mem::take(&mut self.pending);
                self.open_one(&sealed, last, out)?;
                self.pending = sealed;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Opens segment `next_index` and appends what the range wants of its plaintext to `out`.
    fn open_one(
        &mut self,
        sealed: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DecryptError> {
        let start = out.len();
        let plain = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(DecryptError::AuthenticationFailed)?;
        let cipher = self
            .cipher
            .as_mut()
            .ok_or(DecryptError::AuthenticationFailed)?;
        out.resize(start + plain, 0);
        let opened =
            self.keys
                .open_segment(cipher, self.next_index, last, sealed, &mut out[start..]);
        if let Err(e) = opened {
            // The cipher has already overwritten what it wrote with zeros.
            out.truncate(start);
            return Err(e);
        }
        self.next_index += 1;
        // Trim to the range: drop bytes before its start, and after its end.
        let skip = usize::try_from(self.skip.min(plain as u64)).unwrap_or(plain);
        self.skip -= skip as u64;
        let mut keep = plain - skip;
        if let Some(remaining) = self.remaining.as_mut() {
            keep = keep.min(usize::try_from(*remaining).unwrap_or(keep));
            *remaining -= keep as u64;
        }
        if skip > 0 {
            out.copy_within(start + skip..start + skip + keep, start);
        }
        out[start + keep..].zeroize();
        out.truncate(start + keep);
        self.released += keep as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
