//! Incremental AES-256-GCM over AWS-LC's `EVP_CIPHER` interface.
//!
//! Output is byte-identical to a one-shot AES-256-GCM seal with the same key, 12-byte IV and no
//! associated data (tested against `aws_lc_rs::aead` below).

use core::ffi::c_int;
use core::fmt;
use core::ptr;

use aws_lc_sys as sys;

/// Length of the authentication tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Length of the IV (nonce), in bytes.
pub const IV_LEN: usize = 12;
/// Length of the key, in bytes.
pub const KEY_LEN: usize = 32;

// EVP takes `int` lengths; feed it at most this much per call.
const MAX_CHUNK: usize = 1 << 30;

/// AWS-LC refused an operation (allocation failure or a misuse the wrapper could not rule out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcmError;

impl fmt::Display for GcmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AES-GCM operation failed")
    }
}

impl std::error::Error for GcmError {}

/// Owns an `EVP_CIPHER_CTX`; freeing it also cleanses the expanded key schedule.
struct Ctx(ptr::NonNull<sys::EVP_CIPHER_CTX>);

impl Ctx {
    fn new() -> Result<Self, GcmError> {
        // SAFETY: EVP_CIPHER_CTX_new has no preconditions; a null return is handled.
        let raw = unsafe { sys::EVP_CIPHER_CTX_new() };
        ptr::NonNull::new(raw).map(Self).ok_or(GcmError)
    }

    fn as_ptr(&mut self) -> *mut sys::EVP_CIPHER_CTX {
        self.0.as_ptr()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_CIPHER_CTX_new and is freed exactly once, here.
        unsafe { sys::EVP_CIPHER_CTX_free(self.0.as_ptr()) }
    }
}

// SAFETY: an EVP_CIPHER_CTX has no thread affinity; `&mut self` on every method keeps use exclusive.
unsafe impl Send for Ctx {}

/// Runs `update` over `input` into `output` in `int`-sized pieces. `output` must be at least as long
/// as `input`; GCM is a stream mode, so EVP writes exactly as many bytes as it reads.
fn update_all(
    ctx: &mut Ctx,
    input: &[u8],
    output: &mut [u8],
    update: unsafe extern "C" fn(
        *mut sys::EVP_CIPHER_CTX,
        *mut u8,
        *mut c_int,
        *const u8,
        c_int,
    ) -> c_int,
) -> Result<(), GcmError> {
    assert!(output.len() >= input.len(), "output shorter than input");
    for (inp, out) in input.chunks(MAX_CHUNK).zip(output.chunks_mut(MAX_CHUNK)) {
        let mut written: c_int = 0;
        let in_len = c_int::try_from(inp.len()).map_err(|_| GcmError)?;
        // SAFETY: `inp` is valid for `in_len` bytes and `out` for at least as many (checked above,
        // and the chunks line up); GCM writes exactly `in_len` bytes; `ctx` was initialised for GCM.
        let ok = unsafe {
            update(
                ctx.as_ptr(),
                out.as_mut_ptr(),
                &mut written,
                inp.as_ptr(),
                in_len,
            )
        };
        if ok != 1 || usize::try_from(written).ok() != Some(inp.len()) {
            return Err(GcmError);
        }
    }
    Ok(())
}

/// Same as [`update_all`] but in place: `buf` is both input and output, which EVP permits for
/// stream modes when the pointers are identical.
fn update_in_place(
    ctx: &mut Ctx,
    buf: &mut [u8],
    update: unsafe extern "C" fn(
        *mut sys::EVP_CIPHER_CTX,
        *mut u8,
        *mut c_int,
        *const u8,
        c_int,
    ) -> c_int,
) -> Result<(), GcmError> {
    for piece in buf.chunks_mut(MAX_CHUNK) {
        let mut written: c_int = 0;
        let len = c_int::try_from(piece.len()).map_err(|_| GcmError)?;
        let p = piece.as_mut_ptr();
        // SAFETY: `p` is valid for reads and writes of `len` bytes; AWS-LC's GCM supports exact
        // in-place operation (in == out); `ctx` was initialised for GCM.
        let ok = unsafe { update(ctx.as_ptr(), p, &mut written, p, len) };
        if ok != 1 || usize::try_from(written).ok() != Some(piece.len()) {
            return Err(GcmError);
        }
    }
    Ok(())
}

fn init(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    init: unsafe extern "C" fn(
        *mut sys::EVP_CIPHER_CTX,
        *const sys::EVP_CIPHER,
        *mut sys::ENGINE,
        *const u8,
        *const u8,
    ) -> c_int,
) -> Result<Ctx, GcmError> {
    let mut ctx = Ctx::new()?;
    // SAFETY: `ctx` is a fresh context; EVP_aes_256_gcm returns a static cipher; the key is 32 bytes
    // and the IV 12 bytes, which is GCM's default IV length, so no IVLEN ctrl is needed.
    let ok = unsafe {
        init(
            ctx.as_ptr(),
            sys::EVP_aes_256_gcm(),
            ptr::null_mut(),
            key.as_ptr(),
            iv.as_ptr(),
        )
    };
    if ok != 1 {
        return Err(GcmError);
    }
    Ok(ctx)
}

/// Streaming AES-256-GCM encryption with one tag over everything passed to it.
pub struct GcmEncryptor {
    ctx: Ctx,
}

impl fmt::Debug for GcmEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcmEncryptor").finish_non_exhaustive()
    }
}

impl GcmEncryptor {
    /// Starts an encryption under `key` with `iv`. Never reuse an (key, IV) pair.
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN]) -> Result<Self, GcmError> {
        Ok(Self {
            ctx: init(key, iv, sys::EVP_EncryptInit_ex)?,
        })
    }

    /// Encrypts `input` into the first `input.len()` bytes of `output`.
    ///
    /// # Panics
    /// If `output` is shorter than `input`.
    pub fn update(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), GcmError> {
        update_all(&mut self.ctx, input, output, sys::EVP_EncryptUpdate)
    }

    /// Encrypts `buf` in place.
    pub fn update_in_place(&mut self, buf: &mut [u8]) -> Result<(), GcmError> {
        update_in_place(&mut self.ctx, buf, sys::EVP_EncryptUpdate)
    }

    /// Finishes the message and returns its 16-byte tag.
    pub fn finish(mut self) -> Result<[u8; TAG_LEN], GcmError> {
        let mut written: c_int = 0;
        let mut scratch = [0u8; 16];
        // SAFETY: GCM's final step writes no output bytes; `scratch` is spare room regardless.
        let ok = unsafe {
            sys::EVP_EncryptFinal_ex(self.ctx.as_ptr(), scratch.as_mut_ptr(), &mut written)
        };
        if ok != 1 || written != 0 {
            return Err(GcmError);
        }
        let mut tag = [0u8; TAG_LEN];
        // SAFETY: GET_TAG copies `TAG_LEN` bytes into `tag`, which has exactly that size.
        let ok = unsafe {
            sys::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                sys::EVP_CTRL_GCM_GET_TAG as c_int,
                TAG_LEN as c_int,
                tag.as_mut_ptr().cast(),
            )
        };
        if ok != 1 {
            return Err(GcmError);
        }
        Ok(tag)
    }
}

/// Streaming AES-256-GCM decryption. The plaintext it produces is **unauthenticated** until
/// [`GcmDecryptor::verify`] returns `Ok`; callers must hold it back until then.
pub struct GcmDecryptor {
    ctx: Ctx,
}

impl fmt::Debug for GcmDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcmDecryptor").finish_non_exhaustive()
    }
}

impl GcmDecryptor {
    /// Starts a decryption under `key` with `iv`.
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN]) -> Result<Self, GcmError> {
        Ok(Self {
            ctx: init(key, iv, sys::EVP_DecryptInit_ex)?,
        })
    }

    /// Decrypts `input` into the first `input.len()` bytes of `output`.
    ///
    /// # Panics
    /// If `output` is shorter than `input`.
    pub fn update(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), GcmError> {
        update_all(&mut self.ctx, input, output, sys::EVP_DecryptUpdate)
    }

    /// Decrypts `buf` in place.
    pub fn update_in_place(&mut self, buf: &mut [u8]) -> Result<(), GcmError> {
        update_in_place(&mut self.ctx, buf, sys::EVP_DecryptUpdate)
    }

    /// Checks `tag` against everything decrypted so far, in constant time.
    pub fn verify(mut self, tag: &[u8; TAG_LEN]) -> Result<(), GcmError> {
        let mut tag_copy = *tag;
        // SAFETY: SET_TAG reads `TAG_LEN` bytes from `tag_copy`, which has exactly that size.
        let ok = unsafe {
            sys::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                sys::EVP_CTRL_AEAD_SET_TAG as c_int,
                TAG_LEN as c_int,
                tag_copy.as_mut_ptr().cast(),
            )
        };
        if ok != 1 {
            return Err(GcmError);
        }
        let mut written: c_int = 0;
        let mut scratch = [0u8; 16];
        // SAFETY: GCM's final step writes no output and compares the tag in constant time.
        let ok = unsafe {
            sys::EVP_DecryptFinal_ex(self.ctx.as_ptr(), scratch.as_mut_ptr(), &mut written)
        };
        if ok == 1 && written == 0 {
            Ok(())
        } else {
            Err(GcmError)
        }
    }
}

/// AES-256-GCM over many short messages under one key: the native format's segments.
///
/// The key schedule is expanded once; each message only resets the IV, which is what makes
/// per-segment sealing as fast as one long stream. Not shareable between threads: give each
/// worker its own.
pub struct GcmSegmentCipher {
    ctx: Ctx,
    encrypting: bool,
}

impl fmt::Debug for GcmSegmentCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcmSegmentCipher").finish_non_exhaustive()
    }
}

impl GcmSegmentCipher {
    /// A cipher that seals segments under `key`.
    pub fn sealing(key: &[u8; KEY_LEN]) -> Result<Self, GcmError> {
        Self::keyed(key, true)
    }

    /// A cipher that opens segments under `key`.
    pub fn opening(key: &[u8; KEY_LEN]) -> Result<Self, GcmError> {
        Self::keyed(key, false)
    }

    fn keyed(key: &[u8; KEY_LEN], encrypting: bool) -> Result<Self, GcmError> {
        let mut ctx = Ctx::new()?;
        let init = if encrypting {
            sys::EVP_EncryptInit_ex
        } else {
            sys::EVP_DecryptInit_ex
        };
        // SAFETY: fresh context; static cipher; the key is 32 bytes; a null IV defers the IV to
        // the per-message call, which EVP allows.
        let ok = unsafe {
            init(
                ctx.as_ptr(),
                sys::EVP_aes_256_gcm(),
                ptr::null_mut(),
                key.as_ptr(),
                ptr::null(),
            )
        };
        if ok != 1 {
            return Err(GcmError);
        }
        Ok(Self { ctx, encrypting })
    }

    fn start(&mut self, iv: &[u8; IV_LEN], aad: &[u8]) -> Result<(), GcmError> {
        let init = if self.encrypting {
            sys::EVP_EncryptInit_ex
        } else {
            sys::EVP_DecryptInit_ex
        };
        // SAFETY: the context already holds the cipher and key; null cipher and key keep them;
        // the IV is 12 bytes, GCM's default length.
        let ok = unsafe {
            init(
                self.ctx.as_ptr(),
                ptr::null(),
                ptr::null_mut(),
                ptr::null(),
                iv.as_ptr(),
            )
        };
        if ok != 1 {
            return Err(GcmError);
        }
        if aad.is_empty() {
            return Ok(());
        }
        let update = if self.encrypting {
            sys::EVP_EncryptUpdate
        } else {
            sys::EVP_DecryptUpdate
        };
        let len = c_int::try_from(aad.len()).map_err(|_| GcmError)?;
        let mut written: c_int = 0;
        // SAFETY: a null output pointer makes EVP treat the input as associated data; `aad` is
        // valid for `len` bytes.
        let ok = unsafe {
            update(
                self.ctx.as_ptr(),
                ptr::null_mut(),
                &mut written,
                aad.as_ptr(),
                len,
            )
        };
        if ok != 1 {
            return Err(GcmError);
        }
        Ok(())
    }

    /// Seals one message: writes `input.len()` bytes of ciphertext to `output` and returns the tag.
    ///
    /// # Panics
    /// If `output` is shorter than `input`, or the cipher was made with [`GcmSegmentCipher::opening`].
    pub fn seal(
        &mut self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        input: &[u8],
        output: &mut [u8],
    ) -> Result<[u8; TAG_LEN], GcmError> {
        assert!(self.encrypting, "seal called on an opening cipher");
        self.start(iv, aad)?;
        update_all(&mut self.ctx, input, output, sys::EVP_EncryptUpdate)?;
        let mut written: c_int = 0;
        let mut scratch = [0u8; 16];
        // SAFETY: GCM's final step writes no output bytes.
        let ok = unsafe {
            sys::EVP_EncryptFinal_ex(self.ctx.as_ptr(), scratch.as_mut_ptr(), &mut written)
        };
        if ok != 1 || written != 0 {
            return Err(GcmError);
        }
        let mut tag = [0u8; TAG_LEN];
        // SAFETY: GET_TAG copies `TAG_LEN` bytes into `tag`, which has exactly that size.
        let ok = unsafe {
            sys::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                sys::EVP_CTRL_GCM_GET_TAG as c_int,
                TAG_LEN as c_int,
                tag.as_mut_ptr().cast(),
            )
        };
        if ok != 1 {
            return Err(GcmError);
        }
        Ok(tag)
    }

    /// Opens one message into `output`. On `Err` the bytes written to `output` are unauthenticated
    /// garbage and must be discarded; this function overwrites them with zeros before returning.
    ///
    /// # Panics
    /// If `output` is shorter than `input`, or the cipher was made with [`GcmSegmentCipher::sealing`].
    pub fn open(
        &mut self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; TAG_LEN],
        output: &mut [u8],
    ) -> Result<(), GcmError> {
        assert!(!self.encrypting, "open called on a sealing cipher");
        let result = self.open_inner(iv, aad, input, tag, output);
        if result.is_err() {
            output[..input.len()].fill(0);
        }
        result
    }

    fn open_inner(
        &mut self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; TAG_LEN],
        output: &mut [u8],
    ) -> Result<(), GcmError> {
        self.start(iv, aad)?;
        update_all(&mut self.ctx, input, output, sys::EVP_DecryptUpdate)?;
        let mut tag_copy = *tag;
        // SAFETY: SET_TAG reads `TAG_LEN` bytes from `tag_copy`, which has exactly that size.
        let ok = unsafe {
            sys::EVP_CIPHER_CTX_ctrl(
                self.ctx.as_ptr(),
                sys::EVP_CTRL_AEAD_SET_TAG as c_int,
                TAG_LEN as c_int,
                tag_copy.as_mut_ptr().cast(),
            )
        };
        if ok != 1 {
            return Err(GcmError);
        }
        let mut written: c_int = 0;
        let mut scratch = [0u8; 16];
        // SAFETY: GCM's final step writes no output and compares the tag in constant time.
        let ok = unsafe {
            sys::EVP_DecryptFinal_ex(self.ctx.as_ptr(), scratch.as_mut_ptr(), &mut written)
        };
        if ok == 1 && written == 0 {
            Ok(())
        } else {
            Err(GcmError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    fn one_shot(key: &[u8; 32], iv: &[u8; 12], msg: &[u8]) -> Vec<u8> {
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut buf = msg.to_vec();
        k.seal_in_place_append_tag(Nonce::assume_unique_for_key(*iv), Aad::empty(), &mut buf)
            .unwrap();
        buf
    }

    #[test]
    fn incremental_matches_one_shot_at_odd_chunkings() {
        let key = [7u8; 32];
        let iv = [9u8; 12];
        let msg: Vec<u8> = (0..100_003u32).map(|i| (i * 31 % 251) as u8).collect();
        let expected = one_shot(&key, &iv, &msg);
        for step in [1usize, 15, 16, 17, 4096, 65_537, 200_000] {
            let mut enc = GcmEncryptor::new(&key, &iv).unwrap();
            let mut out = vec![0u8; msg.len()];
            for (i, o) in msg.chunks(step).zip(out.chunks_mut(step)) {
                enc.update(i, o).unwrap();
            }
            out.extend_from_slice(&enc.finish().unwrap());
            assert_eq!(out, expected, "chunk size {step}");
        }
    }

    #[test]
    fn decrypt_verifies_and_rejects_tampering() {
        let key = [1u8; 32];
        let iv = [2u8; 12];
        let msg = b"the quick brown fox".repeat(1000);
        let sealed = one_shot(&key, &iv, &msg);
        let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let tag: [u8; 16] = tag.try_into().unwrap();

        let mut dec = GcmDecryptor::new(&key, &iv).unwrap();
        let mut buf = ct.to_vec();
        dec.update_in_place(&mut buf).unwrap();
        dec.verify(&tag).unwrap();
        assert_eq!(buf, msg);

        let mut bad = ct.to_vec();
        bad[100] ^= 1;
        let mut dec = GcmDecryptor::new(&key, &iv).unwrap();
        dec.update_in_place(&mut bad).unwrap();
        assert_eq!(dec.verify(&tag), Err(GcmError));
    }

    #[test]
    fn empty_message_has_the_one_shot_tag() {
        let key = [3u8; 32];
        let iv = [4u8; 12];
        let enc = GcmEncryptor::new(&key, &iv).unwrap();
        assert_eq!(enc.finish().unwrap().to_vec(), one_shot(&key, &iv, b""));
    }

    #[test]
    fn segment_cipher_matches_one_shot_with_aad_and_reuses_its_key() {
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let key = [5u8; 32];
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut sealer = GcmSegmentCipher::sealing(&key).unwrap();
        let mut opener = GcmSegmentCipher::opening(&key).unwrap();
        for (i, len) in [0usize, 1, 16, 1000, 65_536].into_iter().enumerate() {
            let iv = [i as u8; 12];
            let aad = [0xaa; 32];
            let msg: Vec<u8> = (0..len).map(|j| (j * 7) as u8).collect();
            let mut expected = msg.clone();
            let expected_tag = aead
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(iv),
                    Aad::from(&aad),
                    &mut expected,
                )
                .unwrap();
            let mut ct = vec![0u8; len];
            let tag = sealer.seal(&iv, &aad, &msg, &mut ct).unwrap();
            assert_eq!(ct, expected);
            assert_eq!(tag.as_slice(), expected_tag.as_ref());
            let mut pt = vec![0u8; len];
            opener.open(&iv, &aad, &ct, &tag, &mut pt).unwrap();
            assert_eq!(pt, msg);
            let mut bad_tag = tag;
            bad_tag[0] ^= 1;
            assert_eq!(
                opener.open(&iv, &aad, &ct, &bad_tag, &mut pt),
                Err(GcmError)
            );
            assert!(pt.iter().all(|&b| b == 0));
        }
    }
}
