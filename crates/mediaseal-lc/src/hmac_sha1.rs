//! HMAC-SHA1 with the key's inner and outer pad states computed once.
//!
//! SRTP authenticates every packet with the same key. `aws-lc-rs`'s `hmac::Context` re-derives
//! nothing per message either, but it allocates and dispatches through `EVP_MD` on each call; for
//! ~200-byte packets that overhead is comparable to the hash itself. Here a message costs a copy of
//! the 96-byte inner state, the compression of the message blocks, and one compression for the
//! outer hash, whose padded block is built directly.

use core::fmt;

use aws_lc_sys as sys;

/// SHA-1 output length, in bytes.
pub const OUTPUT_LEN: usize = 20;
const BLOCK_LEN: usize = 64;

/// An HMAC-SHA1 key, kept as the SHA-1 states after absorbing `key ⊕ ipad` and `key ⊕ opad`.
///
/// Those states are as good as the key for forging tags, so they are cleansed on drop.
pub struct HmacSha1Key {
    inner: sys::SHA_CTX,
    outer: sys::SHA_CTX,
}

impl fmt::Debug for HmacSha1Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSha1Key").finish_non_exhaustive()
    }
}

fn fresh_ctx() -> sys::SHA_CTX {
    let mut ctx = sys::SHA_CTX {
        h: [0; 5],
        Nl: 0,
        Nh: 0,
        data: [0; 64],
        num: 0,
    };
    // SAFETY: `ctx` is a valid, writable SHA_CTX; SHA1_Init always succeeds.
    unsafe { sys::SHA1_Init(&mut ctx) };
    ctx
}

fn update(ctx: &mut sys::SHA_CTX, data: &[u8]) {
    // SAFETY: `ctx` was initialised by SHA1_Init; `data` is valid for `data.len()` bytes.
    unsafe { sys::SHA1_Update(ctx, data.as_ptr().cast(), data.len()) };
}

fn cleanse<T>(value: &mut T) {
    // SAFETY: `value` is an exclusively borrowed, live object of `size_of::<T>()` bytes.
    unsafe { sys::OPENSSL_cleanse((value as *mut T).cast(), size_of::<T>()) }
}

/// Compresses one 64-byte block into `ctx`.
#[inline]
fn compress(ctx: &mut sys::SHA_CTX, block: &[u8; BLOCK_LEN]) {
    // SAFETY: `block` is exactly one SHA-1 block; `ctx` is an initialised SHA_CTX whose own
    // buffer is empty (`num == 0`: nothing is ever left in it here), so this only updates `h`.
    unsafe { sys::SHA1_Transform(ctx, block.as_ptr()) };
}

/// Compresses `data`, a whole number of blocks, into `ctx`.
#[inline]
fn compress_blocks(ctx: &mut sys::SHA_CTX, data: &[u8]) {
    if !data.is_empty() {
        // With an empty SHA_CTX buffer and a whole number of blocks, SHA1_Update hands `data`
        // straight to the multi-block compression function and buffers nothing.
        update(ctx, data);
    }
}

/// Pads the final `fill` bytes in `block` for a message of `total` bytes, compresses, and
/// returns the digest.
#[inline]
fn finish(
    ctx: &mut sys::SHA_CTX,
    block: &mut [u8; BLOCK_LEN],
    fill: usize,
    total: u64,
) -> [u8; OUTPUT_LEN] {
    let mut fill = fill.min(BLOCK_LEN - 1);
    block[fill] = 0x80;
    fill += 1;
    if fill > BLOCK_LEN - 8 {
        block[fill..].fill(0);
        compress(ctx, block);
        fill = 0;
    }
    block[fill..BLOCK_LEN - 8].fill(0);
    block[BLOCK_LEN - 8..].copy_from_slice(&(total * 8).to_be_bytes());
    compress(ctx, block);
    let mut out = [0u8; OUTPUT_LEN];
    for (chunk, word) in out.chunks_exact_mut(4).zip(ctx.h.iter()) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

impl HmacSha1Key {
    /// Prepares `key` (any length; keys longer than 64 bytes are hashed first, per RFC 2104).
    pub fn new(key: &[u8]) -> Self {
        let mut block = [0u8; BLOCK_LEN];
        if key.len() > BLOCK_LEN {
            let mut ctx = fresh_ctx();
            update(&mut ctx, key);
            let mut digest = [0u8; OUTPUT_LEN];
            // SAFETY: `digest` has room for the 20-byte output; `ctx` is initialised.
            unsafe { sys::SHA1_Final(digest.as_mut_ptr(), &mut ctx) };
            block[..OUTPUT_LEN].copy_from_slice(&digest);
            cleanse(&mut digest);
            cleanse(&mut ctx);
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut pad = [0u8; BLOCK_LEN];
        for (p, k) in pad.iter_mut().zip(block.iter()) {
            *p = k ^ 0x36;
        }
        let mut inner = fresh_ctx();
        update(&mut inner, &pad);
        for (p, k) in pad.iter_mut().zip(block.iter()) {
            *p = k ^ 0x5c;
        }
        let mut outer = fresh_ctx();
        update(&mut outer, &pad);
        cleanse(&mut pad);
        cleanse(&mut block);
        Self { inner, outer }
    }

    /// Returns HMAC-SHA1 over the concatenation of `parts`.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; OUTPUT_LEN] {
        // The inner hash: whole blocks go straight to the compression function, partial ones
        // through `block`, and the padding is written by hand, so no bytes pass through
        // SHA_CTX's own buffer (that buffering costs as much as a compression for SRTP-sized
        // messages split in parts).
        let mut ctx = self.inner;
        let mut block = [0u8; BLOCK_LEN];
        let mut fill = 0usize;
        let mut total = BLOCK_LEN as u64; // the ipad block already absorbed
        for part in parts {
            let mut p: &[u8] = part;
            total += p.len() as u64;
            if fill > 0 {
                let take = p.len().min(BLOCK_LEN - fill);
                let (head, rest) = p.split_at(take);
                block[fill..fill + take].copy_from_slice(head);
                fill += take;
                p = rest;
                if fill < BLOCK_LEN {
                    continue; // `part` is used up
                }
                compress(&mut ctx, &block);
                // `fill` is reset below, from what remains of `part`.
            }
            let whole = p.len() - p.len() % BLOCK_LEN;
            let (blocks, rest) = p.split_at(whole);
            compress_blocks(&mut ctx, blocks);
            block[..rest.len()].copy_from_slice(rest);
            fill = rest.len();
        }
        let inner_digest = finish(&mut ctx, &mut block, fill, total);

        // The outer message is the 20-byte inner digest after one 64-byte pad block, so its
        // padded form is always exactly one block: digest ‖ 0x80 ‖ zeros ‖ bit length (672).
        let mut outer = self.outer;
        let mut block = [0u8; BLOCK_LEN];
        block[..OUTPUT_LEN].copy_from_slice(&inner_digest);
        finish(
            &mut outer,
            &mut block,
            OUTPUT_LEN,
            (BLOCK_LEN + OUTPUT_LEN) as u64,
        )
    }

    /// Checks in constant time that `tag` equals the first `tag.len()` bytes of the HMAC over
    /// `parts`. Tags of length 0 or longer than 20 bytes never verify.
    pub fn verify_truncated(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        if tag.is_empty() || tag.len() > OUTPUT_LEN {
            return false;
        }
        let full = self.sign(parts);
        let expected = full.get(..tag.len()).unwrap_or(&[]);
        // SAFETY: both pointers are valid for `tag.len()` bytes (`expected` was sliced to that
        // length from a 20-byte array, and `tag.len() <= 20`).
        unsafe { sys::CRYPTO_memcmp(expected.as_ptr().cast(), tag.as_ptr().cast(), tag.len()) == 0 }
    }
}

impl Drop for HmacSha1Key {
    fn drop(&mut self) {
        cleanse(&mut self.inner);
        cleanse(&mut self.outer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    fn reference(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        hmac::sign(&k, msg).as_ref().to_vec()
    }

    #[test]
    fn rfc2202_case_1_and_2() {
        let k = HmacSha1Key::new(&[0x0b; 20]);
        let tag = k.sign(&[b"Hi There"]);
        assert_eq!(tag.to_vec(), reference(&[0x0b; 20], b"Hi There"));
        assert_eq!(
            tag,
            [
                0xb6, 0x17, 0x31, 0x86, 0x55, 0x05, 0x72, 0x64, 0xe2, 0x8b, 0xc0, 0xb6, 0xfb, 0x37,
                0x8c, 0x8e, 0xf1, 0x46, 0xbe, 0x00
            ]
        );
        let k = HmacSha1Key::new(b"Jefe");
        let tag = k.sign(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            tag.to_vec(),
            reference(b"Jefe", b"what do ya want for nothing?")
        );
    }

    #[test]
    fn matches_aws_lc_rs_across_lengths_and_splits() {
        for key_len in [0usize, 1, 20, 63, 64, 65, 100] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 13 + 1) as u8).collect();
            let k = HmacSha1Key::new(&key);
            for msg_len in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 172, 176, 1500] {
                let msg: Vec<u8> = (0..msg_len).map(|i| (i * 7) as u8).collect();
                let want = reference(&key, &msg);
                assert_eq!(
                    k.sign(&[&msg]).to_vec(),
                    want,
                    "key {key_len} msg {msg_len}"
                );
                let split = msg_len / 3;
                assert_eq!(k.sign(&[&msg[..split], &msg[split..]]).to_vec(), want);
                assert!(k.verify_truncated(&[&msg], &want[..10]));
                assert!(k.verify_truncated(&[&msg], &want[..4]));
                let mut bad = want.clone();
                bad[3] ^= 1;
                assert!(!k.verify_truncated(&[&msg], &bad[..4]));
            }
        }
    }

    #[test]
    fn three_way_splits_at_every_block_offset() {
        // Exercises the partial-block buffering and the padding branch (fill > 55) of `sign`.
        let k = HmacSha1Key::new(b"split key");
        for len in (0usize..200).chain([255, 256, 257, 1000]) {
            let msg: Vec<u8> = (0..len).map(|i| (i * 11 + 3) as u8).collect();
            let want = reference(b"split key", &msg);
            for a in (0..=len).step_by(7) {
                for b in (a..=len).step_by(13) {
                    let got = k.sign(&[&msg[..a], &msg[a..b], &[], &msg[b..]]);
                    assert_eq!(got.to_vec(), want, "len {len} split {a}/{b}");
                }
            }
        }
    }

    #[test]
    fn verify_rejects_empty_and_overlong_tags() {
        let k = HmacSha1Key::new(b"k");
        assert!(!k.verify_truncated(&[b"m"], &[]));
        let mut long = k.sign(&[b"m"]).to_vec();
        assert!(k.verify_truncated(&[b"m"], &long));
        long.push(0);
        assert!(!k.verify_truncated(&[b"m"], &long));
    }
}
