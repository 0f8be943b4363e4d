//! AES in counter mode with a key schedule expanded once, for per-packet keystreams.
//!
//! `aws-lc-rs` offers AES-CTR only through `EVP_CIPHER` contexts that are set up per call; SRTP
//! encrypts one short packet per call with a fixed key, so the per-call setup would dominate. This
//! keeps an expanded `AES_KEY` and calls `AES_ctr128_encrypt`, which AWS-LC routes to AES-NI/VAES
//! when the CPU has them.

use core::ffi::c_uint;
use core::fmt;

use aws_lc_sys as sys;

/// The AES block size, in bytes; also the size of a counter block (IV).
pub const BLOCK_LEN: usize = 16;

/// The key given to [`AesCtr::new`] was not 16, 24 or 32 bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLengthError;

impl fmt::Display for KeyLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AES key must be 16, 24 or 32 bytes")
    }
}

impl std::error::Error for KeyLengthError {}

/// An AES-128/192/256 key prepared for counter-mode keystream generation.
///
/// The expanded key schedule is cleansed when the value is dropped.
pub struct AesCtr {
    key: sys::AES_KEY,
}

impl fmt::Debug for AesCtr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesCtr").finish_non_exhaustive()
    }
}

impl AesCtr {
    /// Expands `key` (16, 24 or 32 bytes) into an encryption key schedule.
    pub fn new(key: &[u8]) -> Result<Self, KeyLengthError> {
        let bits: c_uint = match key.len() {
            16 => 128,
            24 => 192,
            32 => 256,
            _ => return Err(KeyLengthError),
        };
        let mut this = Self {
            key: sys::AES_KEY {
                rd_key: [0; 60],
                rounds: 0,
            },
        };
        // SAFETY: `key` is valid for `bits / 8` bytes (checked above) and `this.key` is a valid,
        // writable AES_KEY. The call only fails for bad lengths, which are excluded.
        let rc = unsafe { sys::AES_set_encrypt_key(key.as_ptr(), bits, &mut this.key) };
        if rc != 0 {
            return Err(KeyLengthError);
        }
        Ok(this)
    }

    /// XORs `buf` in place with the keystream `E(k, iv) ‖ E(k, iv + 1) ‖ …`.
    ///
    /// The counter is the big-endian integer in the last 32 bits of `iv`, with carries into the
    /// upper 96 bits, which matches a 128-bit counter for any `buf` shorter than 64 GiB.
    pub fn apply_keystream(&self, iv: &[u8; BLOCK_LEN], buf: &mut [u8]) {
        let mut ivec = *iv;
        let mut ecount = [0u8; BLOCK_LEN];
        let mut num: c_uint = 0;
        let p = buf.as_mut_ptr();
        // SAFETY: `p` is valid for reads and writes of `buf.len()` bytes, and AES_ctr128_encrypt
        // supports exact in-place operation (in == out). `ivec` and `ecount` are 16-byte writable
        // buffers as the function requires, and `num` = 0 says `ecount` holds no unused keystream.
        unsafe {
            sys::AES_ctr128_encrypt(
                p,
                p,
                buf.len(),
                &self.key,
                ivec.as_mut_ptr(),
                ecount.as_mut_ptr(),
                &mut num,
            );
        }
        // `ecount` may hold keystream bytes that were not used; it is not key material, but the
        // keystream of a partial block should not linger either.
        cleanse(&mut ecount);
    }

    /// Writes the keystream starting at counter block `iv` into `out` (overwriting its contents).
    pub fn keystream(&self, iv: &[u8; BLOCK_LEN], out: &mut [u8]) {
        out.fill(0);
        self.apply_keystream(iv, out);
    }
}

impl Drop for AesCtr {
    fn drop(&mut self) {
        // SAFETY: `self.key` is a live, exclusively borrowed AES_KEY of exactly this size.
        unsafe {
            sys::OPENSSL_cleanse((&raw mut self.key).cast(), size_of::<sys::AES_KEY>());
        }
    }
}

fn cleanse(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    unsafe { sys::OPENSSL_cleanse(buf.as_mut_ptr().cast(), buf.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc3711_b2_keystream() {
        // RFC 3711 Appendix B.2: session key, IV = salt ‖ 0000.
        let ctr = AesCtr::new(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
        let mut ks = [0u8; 48];
        ctr.keystream(&iv, &mut ks);
        assert_eq!(
            ks.to_vec(),
            hex(concat!(
                "E03EAD0935C95E80E166B16DD92B4EB4",
                "D23513162B02D0F72A43A2FE4A5F97AB",
                "41E95B3BB0A2E8DD477901E4FCA894C0"
            ))
        );
    }

    #[test]
    fn rfc6188_aes256_keystream() {
        // RFC 6188 §7.1 AES-256 counter-mode keystream.
        let ctr = AesCtr::new(&hex(
            "57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98",
        ))
        .unwrap();
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&hex("f0f1f2f3f4f5f6f7f8f9fafbfcfd"));
        let mut ks = [0u8; 48];
        ctr.keystream(&iv, &mut ks);
        assert_eq!(
            ks.to_vec(),
            hex(concat!(
                "92bdd28a93c3f52511c677d08b5515a4",
                "9da71b2378a854f67050756ded165bac",
                "63c4868b7096d88421b563b8c94c9a31"
            ))
        );
    }

    #[test]
    fn matches_aws_lc_rs_ctr_for_odd_lengths_and_counter_carry() {
        use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
        let key = [7u8; 16];
        // A counter that carries out of the low 32 bits after one block.
        let mut iv = [0x5au8; 16];
        iv[12..].copy_from_slice(&[0xff; 4]);
        for len in [0usize, 1, 15, 16, 17, 100, 160, 1500] {
            let mut ours: Vec<u8> = (0..len).map(|i| i as u8).collect();
            AesCtr::new(&key).unwrap().apply_keystream(&iv, &mut ours);
            let mut theirs: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let k = EncryptingKey::ctr(UnboundCipherKey::new(&AES_128, &key).unwrap()).unwrap();
            k.less_safe_encrypt(&mut theirs, EncryptionContext::Iv128(iv.into()))
                .unwrap();
            assert_eq!(ours, theirs, "len {len}");
        }
    }

    #[test]
    fn rejects_bad_key_lengths() {
        for len in [0, 15, 17, 31, 33] {
            assert!(AesCtr::new(&vec![0; len]).is_err());
        }
        assert!(AesCtr::new(&[0; 24]).is_ok());
    }
}
