//! The single-key envelopes of the seeds: AES-256-GCM with one tag (`rsa-aes`, `s3-gcm`) and
//! AES-256-CBC (`s3-cbc`). Both stream in bounded memory; neither releases unauthenticated
//! plaintext where a user would find it.
//!
//! The sealers are sans-IO (bytes in, bytes out) so the server can drive them from an async body;
//! the `seal_*`/`open_*` functions drive them over `Read`/`Write`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptionContext, StreamingDecryptingKey, StreamingEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use mediaseal_lc::gcm::{GcmDecryptor, GcmEncryptor};

use crate::cek::{ContentKey, fill_random};
use crate::details::{CBC_IV_LEN, Envelope, Scheme};
use crate::error::{DecryptError, EncryptError};
use crate::format::Format;
use crate::gcm::{IV_LEN, TAG_LEN};
use crate::keys::{PrivateKey, PublicKey};
use crate::native::RecipientKey;
use crate::output::AtomicFile;
use crate::pump::{PumpConfig, PumpError, pump};
use crate::sealer::Sealer;

/// Bytes handed to the cipher at a time by the streaming functions.
pub const STREAM_CHUNK: usize = 1 << 20;

const AES_BLOCK: usize = 16;

/// Incremental single-tag AES-256-GCM sealing with a fresh random IV.
pub struct GcmSealer {
    encryptor: GcmEncryptor,
    iv: [u8; IV_LEN],
}

impl core::fmt::Debug for GcmSealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GcmSealer").finish_non_exhaustive()
    }
}

impl GcmSealer {
    /// Starts sealing under `cek` with a fresh random 12-byte IV.
    pub fn new(cek: &ContentKey) -> Result<Self, EncryptError> {
        let mut iv = [0u8; IV_LEN];
        fill_random(&mut iv);
        let encryptor = GcmEncryptor::new(cek.expose(), &iv).map_err(|_| EncryptError::Crypto)?;
        Ok(Self { encryptor, iv })
    }

    /// The IV in use.
    pub fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// Encrypts `buf` in place; the ciphertext has the same length.
    pub fn seal_in_place(&mut self, buf: &mut [u8]) -> Result<(), EncryptError> {
        self.encryptor
            .update_in_place(buf)
            .map_err(|_| EncryptError::Crypto)
    }

    /// Encrypts `input` and appends the ciphertext to `out`.
    pub fn seal_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let start = out.len();
        out.resize(start + input.len(), 0);
        self.encryptor
            .update(input, &mut out[start..])
            .map_err(|_| EncryptError::Crypto)
    }

    /// Encrypts `input` into the first `input.len()` bytes of `output`.
    ///
    /// # Panics
    /// If `output` is shorter than `input`.
    pub fn seal_slice(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), EncryptError> {
        self.encryptor
            .update(input, output)
            .map_err(|_| EncryptError::Crypto)
    }

    /// Ends the message; the returned tag goes after the last ciphertext byte.
    pub fn finish(self) -> Result<[u8; TAG_LEN], EncryptError> {
        self.encryptor.finish().map_err(|_| EncryptError::Crypto)
    }
}

/// Incremental AES-256-CBC (PKCS#7) sealing with a fresh random IV.
pub struct CbcSealer {
    key: StreamingEncryptingKey,
    iv: [u8; CBC_IV_LEN],
}

impl core::fmt::Debug for CbcSealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CbcSealer").finish_non_exhaustive()
    }
}

impl CbcSealer {
    /// Starts sealing under `cek` with a fresh random 16-byte IV.
    pub fn new(cek: &ContentKey) -> Result<Self, EncryptError> {
        let mut iv = [0u8; CBC_IV_LEN];
        fill_random(&mut iv);
        let unbound =
            UnboundCipherKey::new(&AES_256, cek.expose()).map_err(|_| EncryptError::Crypto)?;
        let key = StreamingEncryptingKey::less_safe_cbc_pkcs7(
            unbound,
            EncryptionContext::Iv128(FixedLength::from(iv)),
        )
        .map_err(|_| EncryptError::Crypto)?;
        Ok(Self { key, iv })
    }

    /// The IV in use.
    pub fn iv(&self) -> &[u8; CBC_IV_LEN] {
        &self.iv
    }

    /// Encrypts `input`, appending whole blocks of ciphertext to `out`.
    pub fn seal_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let start = out.len();
        out.resize(start + input.len() + AES_BLOCK, 0);
        let written = self
            .key
            .update(input, &mut out[start..])
            .map_err(|_| EncryptError::Crypto)?
            .written()
            .len();
        out.truncate(start + written);
        Ok(())
    }

    /// Encrypts `input` into `output`, which must have room for `input.len() + 16` bytes;
    /// returns how many bytes of whole blocks were written.
    pub fn seal_slice(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, EncryptError> {
        Ok(self
            .key
            .update(input, output)
            .map_err(|_| EncryptError::Crypto)?
            .written()
            .len())
    }

    /// Pads and encrypts what remains into `output` (room for 16 bytes); returns the count.
    pub fn finish_slice(self, output: &mut [u8]) -> Result<usize, EncryptError> {
        let (_, update) = self.key.finish(output).map_err(|_| EncryptError::Crypto)?;
        Ok(update.written().len())
    }

    /// Pads and encrypts what remains, appending it to `out`.
    pub fn finish_into(self, out: &mut Vec<u8>) -> Result<(), EncryptError> {
        let start = out.len();
        out.resize(start + AES_BLOCK, 0);
        let (_, update) = self
            .key
            .finish(&mut out[start..])
            .map_err(|_| EncryptError::Crypto)?;
        let written = update.written().len();
        out.truncate(start + written);
        Ok(())
    }
}

/// The result of sealing a stream into a single-key envelope.
#[derive(Debug)]
pub struct Sealed {
    /// The scheme used.
    pub scheme: Scheme,
    /// The CEK wrapped to the recipient.
    pub wrapped_cek: Vec<u8>,
    /// The content IV.
    pub iv: Vec<u8>,
    /// Plaintext bytes consumed.
    pub plaintext_len: u64,
}

/// Seals `reader` into `writer` with `scheme`, wrapping a fresh CEK to `recipient`.
///
/// A thin wrapper over a [`Sealer`] for `s3-gcm` or `s3-cbc` (`rsa-aes` is byte-for-byte the
/// same body as `s3-gcm`); use the sealer directly to get the details or headers ready-made.
pub fn seal_stream<R: Read + Send, W: Write + Send>(
    reader: R,
    writer: W,
    scheme: Scheme,
    recipient: &PublicKey,
) -> Result<(Sealed, W), EncryptError> {
    let format = match scheme {
        Scheme::GcmOaep => Format::S3Gcm,
        Scheme::CbcPkcs1 => Format::S3Cbc,
    };
    let recipients = [RecipientKey {
        key: recipient,
        key_id: "",
    }];
    let (receipt, writer) = Sealer::new(format, &recipients)?.seal_reader(reader, writer, 1)?;
    let envelope = receipt
        .s3_headers()
        .and_then(|headers| headers.to_envelope().ok())
        .ok_or(EncryptError::Crypto)?;
    Ok((
        Sealed {
            scheme,
            wrapped_cek: envelope.wrapped_cek,
            iv: envelope.iv,
            plaintext_len: receipt.plaintext_len,
        },
        writer,
    ))
}

fn pump_decrypt_error(e: PumpError<DecryptError>) -> DecryptError {
    match e {
        PumpError::Io(io) => DecryptError::Io(io),
        PumpError::Transform(t) => t,
    }
}

/// Unwraps the envelope's CEK with `key`. For OAEP a failure is reported with the key names the
/// caller knows; PKCS#1 v1.5 never fails here (implicit rejection) and is caught later, coarsely.
pub fn unwrap_envelope_key(
    envelope: &Envelope,
    key: &PrivateKey,
) -> Result<ContentKey, DecryptError> {
    if let Some(expected) = envelope.key_fingerprint
        && expected != key.fingerprint()
    {
        let mut sealed_for: Vec<String> = envelope.key_sid.iter().cloned().collect();
        sealed_for.push(format!("fingerprint {}", expected.short()));
        return Err(DecryptError::WrongKey {
            sealed_for,
            given: key.fingerprint(),
            detail: "the fingerprints differ".to_owned(),
        });
    }
    if envelope.wrapped_cek.len() != key.public_key().bits().div_ceil(8) {
        return Err(DecryptError::WrongKey {
            sealed_for: envelope.key_sid.iter().cloned().collect(),
            given: key.fingerprint(),
            detail: format!(
                "the wrapped key is {} bytes but this is a {}-bit key",
                envelope.wrapped_cek.len(),
                key.public_key().bits()
            ),
        });
    }
    match envelope.scheme {
        Scheme::GcmOaep => ContentKey::unwrap_oaep(&envelope.wrapped_cek, key).map_err(|_| {
            DecryptError::WrongKey {
                sealed_for: envelope.key_sid.iter().cloned().collect(),
                given: key.fingerprint(),
                detail: "RSA-OAEP (SHA-256, MGF1-SHA-256) could not unwrap the content key with it"
                    .to_owned(),
            }
        }),
        Scheme::CbcPkcs1 => Ok(ContentKey::unwrap_pkcs1_implicit(
            &envelope.wrapped_cek,
            key,
        )),
    }
}

/// Decrypts GCM ciphertext‖tag chunk by chunk, holding back the last 16 bytes as the tag.
struct GcmOpenState {
    decryptor: Option<GcmDecryptor>,
    held: Vec<u8>,
}

impl GcmOpenState {
    fn new(cek: &ContentKey, iv: &[u8]) -> Result<Self, DecryptError> {
        let iv: &[u8; IV_LEN] = iv
            .try_into()
            .map_err(|_| DecryptError::AuthenticationFailed)?;
        let decryptor =
            GcmDecryptor::new(cek.expose(), iv).map_err(|_| DecryptError::AuthenticationFailed)?;
        Ok(Self {
            decryptor: Some(decryptor),
            held: Vec::with_capacity(2 * TAG_LEN),
        })
    }

    /// Sets `out` to the plaintext of all but the trailing 16 bytes seen so far; on the last chunk
    /// checks the tag and fails if it does not match.
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>, last: bool) -> Result<(), DecryptError> {
        let dec = self
            .decryptor
            .as_mut()
            .ok_or(DecryptError::AuthenticationFailed)?;
        let total = self.held.len() + input.len();
        let release = total.saturating_sub(TAG_LEN);
        let from_held = release.min(self.held.len());
        let from_input = release - from_held;
        let start = 0;
        out.resize(release, 0);
        let fail = |_| DecryptError::AuthenticationFailed;
        dec.update(&self.held[..from_held], &mut out[start..start + from_held])
            .map_err(fail)?;
        dec.update(&input[..from_input], &mut out[start + from_held..])
            .map_err(fail)?;
        self.held.drain(..from_held);
        self.held.extend_from_slice(&input[from_input..]);
        if last {
            let tag: [u8; TAG_LEN] = self
                .held
                .as_slice()
                .try_into()
                .map_err(|_| DecryptError::AuthenticationFailed)?;
            let dec = self
                .decryptor
                .take()
                .ok_or(DecryptError::AuthenticationFailed)?;
            dec.verify(&tag)
                .map_err(|_| DecryptError::AuthenticationFailed)?;
        }
        Ok(())
    }
}

/// Decrypts CBC chunk by chunk; padding is checked on the last chunk.
struct CbcOpenState {
    key: Option<StreamingDecryptingKey>,
}

impl CbcOpenState {
    fn new(cek: &ContentKey, iv: &[u8]) -> Result<Self, DecryptError> {
        let iv: [u8; CBC_IV_LEN] = iv.try_into().map_err(|_| DecryptError::DecryptionFailed)?;
        let unbound = UnboundCipherKey::new(&AES_256, cek.expose())
            .map_err(|_| DecryptError::DecryptionFailed)?;
        let key = StreamingDecryptingKey::cbc_pkcs7(
            unbound,
            DecryptionContext::Iv128(FixedLength::from(iv)),
        )
        .map_err(|_| DecryptError::DecryptionFailed)?;
        Ok(Self { key: Some(key) })
    }

    fn step(&mut self, input: &[u8], out: &mut Vec<u8>, last: bool) -> Result<(), DecryptError> {
        let key = self.key.as_mut().ok_or(DecryptError::DecryptionFailed)?;
        out.resize(input.len() + 2 * AES_BLOCK, 0);
        let mut written = key
            .update(input, out)
            .map_err(|_| DecryptError::DecryptionFailed)?
            .written()
            .len();
        if last {
            let key = self.key.take().ok_or(DecryptError::DecryptionFailed)?;
            let rest = out
                .get_mut(written..)
                .ok_or(DecryptError::DecryptionFailed)?;
            // Wrong key, wrong IV, truncation and tampering all surface here as bad padding; the
            // error stays coarse on purpose.
            written += key
                .finish(rest)
                .map_err(|_| DecryptError::DecryptionFailed)?
                .written()
                .len();
        }
        out.truncate(written);
        Ok(())
    }
}

enum OpenState {
    Gcm(GcmOpenState),
    Cbc(CbcOpenState),
}

impl OpenState {
    fn new(envelope: &Envelope, cek: &ContentKey) -> Result<Self, DecryptError> {
        Ok(match envelope.scheme {
            Scheme::GcmOaep => Self::Gcm(GcmOpenState::new(cek, &envelope.iv)?),
            Scheme::CbcPkcs1 => Self::Cbc(CbcOpenState::new(cek, &envelope.iv)?),
        })
    }

    fn step(&mut self, input: &[u8], out: &mut Vec<u8>, last: bool) -> Result<(), DecryptError> {
        match self {
            Self::Gcm(s) => s.step(input, out, last),
            Self::Cbc(s) => s.step(input, out, last),
        }
    }
}

/// Runs the envelope's decryption over `reader` into `writer`, checking the announced length.
/// The output is unauthenticated until this returns `Ok`.
pub(crate) fn open_into<R: Read + Send, W: Write + Send>(
    reader: R,
    writer: W,
    envelope: &Envelope,
    cek: &ContentKey,
) -> Result<W, DecryptError> {
    let mut state = OpenState::new(envelope, cek)?;
    let mut produced = 0u64;
    let config = PumpConfig {
        chunk: STREAM_CHUNK,
        overlap_io: true,
    };
    let writer = pump(reader, writer, config, |input, out, last| {
        state.step(input, out, last)?;
        produced += out.len() as u64;
        Ok(())
    })
    .map_err(pump_decrypt_error)?;
    check_length(envelope, produced)?;
    Ok(writer)
}

fn check_length(envelope: &Envelope, produced: u64) -> Result<(), DecryptError> {
    match envelope.plaintext_len {
        Some(expected) if expected != produced => Err(match envelope.scheme {
            Scheme::GcmOaep => DecryptError::AuthenticationFailed,
            Scheme::CbcPkcs1 => DecryptError::DecryptionFailed,
        }),
        _ => Ok(()),
    }
}

/// Opens an envelope into the file at `out_path`. The plaintext is written to a temporary file
/// beside it and only renamed into place (after fsync) once it is verified; on any failure the
/// temporary file is removed and `out_path` is left untouched.
pub fn open_to_path<R: Read + Send>(
    reader: R,
    out_path: &Path,
    envelope: &Envelope,
    key: &PrivateKey,
) -> Result<u64, DecryptError> {
    let cek = unwrap_envelope_key(envelope, key)?;
    let file = AtomicFile::create(out_path).map_err(DecryptError::Io)?;
    let file = open_into(reader, file, envelope, &cek)?;
    let len = file.written();
    file.commit().map_err(DecryptError::Io)?;
    Ok(len)
}

/// Opens an envelope whose ciphertext can be read twice into a writer that cannot take back what
/// it is given (a pipe, a socket). GCM is verified in a first pass that releases nothing, then
/// decrypted in a second pass that checks the tag again, so a file changed between the passes is
/// still caught. CBC has no tag, so it is decrypted in one pass.
pub fn open_seekable_to_writer<R: Read + Seek + Send, W: Write + Send>(
    mut reader: R,
    writer: W,
    envelope: &Envelope,
    key: &PrivateKey,
) -> Result<W, DecryptError> {
    let cek = unwrap_envelope_key(envelope, key)?;
    if envelope.scheme == Scheme::GcmOaep {
        open_into(&mut reader, io::sink(), envelope, &cek)?;
        reader.seek(SeekFrom::Start(0)).map_err(DecryptError::Io)?;
    }
    open_into(reader, writer, envelope, &cek)
}

/// Copies a non-seekable input into an anonymous temporary file (already unlinked, mode 0600) so
/// it can be verified before any plaintext is released. Only ciphertext is written.
pub fn spool_ciphertext<R: Read>(mut reader: R) -> io::Result<File> {
    let mut file = tempfile::tempfile()?;
    io::copy(&mut reader, &mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::details::{EncryptionDetails, S3Headers};

    fn key() -> &'static PrivateKey {
        use std::sync::OnceLock;
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(2048).unwrap())
    }

    fn seal(scheme: Scheme, data: &[u8]) -> (Envelope, Vec<u8>) {
        let (sealed, out) = seal_stream(data, Vec::new(), scheme, key().public_key()).unwrap();
        let env = Envelope {
            scheme,
            wrapped_cek: sealed.wrapped_cek,
            iv: sealed.iv,
            key_sid: Some("CRtest".to_owned()),
            plaintext_len: Some(sealed.plaintext_len),
            key_fingerprint: None,
        };
        (env, out)
    }

    fn open(env: &Envelope, ct: &[u8]) -> Result<Vec<u8>, DecryptError> {
        open_seekable_to_writer(io::Cursor::new(ct), Vec::new(), env, key())
    }

    #[test]
    fn round_trips_across_chunk_boundaries() {
        for scheme in [Scheme::GcmOaep, Scheme::CbcPkcs1] {
            for len in [
                0usize,
                1,
                15,
                16,
                17,
                STREAM_CHUNK - 1,
                STREAM_CHUNK,
                STREAM_CHUNK + 1,
                3 * STREAM_CHUNK + 5,
            ] {
                let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
                let (env, ct) = seal(scheme, &data);
                let expected_len = match scheme {
                    Scheme::GcmOaep => len + TAG_LEN,
                    Scheme::CbcPkcs1 => (len / 16 + 1) * 16,
                };
                assert_eq!(ct.len(), expected_len);
                assert_eq!(open(&env, &ct).unwrap(), data, "{scheme:?} {len}");
            }
        }
    }

    #[test]
    fn gcm_output_matches_one_shot_aead() {
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let data = vec![0x5au8; 2 * STREAM_CHUNK + 3];
        let (env, ct) = seal(Scheme::GcmOaep, &data);
        let cek = unwrap_envelope_key(&env, key()).unwrap();
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek.expose()).unwrap());
        let mut buf = data;
        let nonce = Nonce::try_assume_unique_for_key(&env.iv).unwrap();
        aead.seal_in_place_append_tag(nonce, Aad::empty(), &mut buf)
            .unwrap();
        assert_eq!(buf, ct);
    }

    #[test]
    fn tampering_and_truncation_fail_gcm_authentication() {
        let data = vec![7u8; 100_000];
        let (env, ct) = seal(Scheme::GcmOaep, &data);
        let mut flipped = ct.clone();
        flipped[500] ^= 0x01;
        assert!(matches!(
            open(&env, &flipped),
            Err(DecryptError::AuthenticationFailed)
        ));
        assert!(matches!(
            open(&env, &ct[..ct.len() - 1]),
            Err(DecryptError::AuthenticationFailed)
        ));
        assert!(matches!(
            open(&env, &ct[..10]),
            Err(DecryptError::AuthenticationFailed)
        ));
    }

    #[test]
    fn wrong_key_names_the_sealing_key() {
        let (env, ct) = seal(Scheme::GcmOaep, b"hello");
        let other = PrivateKey::generate(2048).unwrap();
        let err =
            open_seekable_to_writer(io::Cursor::new(&ct), Vec::new(), &env, &other).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("CRtest"), "{text}");
        assert!(text.contains(&other.fingerprint().short()), "{text}");
    }

    #[test]
    fn a_recorded_fingerprint_names_the_key_before_trying() {
        let (env, ct) = seal(Scheme::CbcPkcs1, b"video");
        let headers = S3Headers::new(Scheme::CbcPkcs1, &env.wrapped_cek, &env.iv, Some(5))
            .with_key(Some("CRvideo"), key().fingerprint());
        let env = crate::details::parse_details(&headers.to_lines()).unwrap();
        assert_eq!(open(&env, &ct).unwrap(), b"video");
        let other = PrivateKey::generate(2048).unwrap();
        let err = open_seekable_to_writer(io::Cursor::new(&ct), Vec::new(), &env, &other)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CRvideo") && err.contains(&key().fingerprint().short()),
            "{err}"
        );
    }

    #[test]
    fn cbc_wrong_key_is_coarse() {
        let (env, ct) = seal(Scheme::CbcPkcs1, &[1u8; 1000]);
        let other = PrivateKey::generate(2048).unwrap();
        let err =
            open_seekable_to_writer(io::Cursor::new(&ct), Vec::new(), &env, &other).unwrap_err();
        assert!(matches!(err, DecryptError::DecryptionFailed), "{err}");
    }

    #[test]
    fn failed_open_leaves_no_output_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.wav");
        let (env, mut ct) = seal(Scheme::GcmOaep, &vec![3u8; 3 * STREAM_CHUNK]);
        let n = ct.len();
        ct[n - 1] ^= 0x80;
        assert!(open_to_path(&ct[..], &target, &env, key()).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        ct[n - 1] ^= 0x80;
        assert_eq!(
            open_to_path(&ct[..], &target, &env, key()).unwrap(),
            3 * STREAM_CHUNK as u64
        );
        assert_eq!(std::fs::read(&target).unwrap(), vec![3u8; 3 * STREAM_CHUNK]);
    }

    #[test]
    fn details_and_headers_carry_the_envelope() {
        let (env, ct) = seal(Scheme::GcmOaep, b"payload");
        let details = EncryptionDetails::new(Some("CR1".into()), &env.wrapped_cek, &env.iv);
        let env2 = crate::details::parse_details(&details.to_json()).unwrap();
        assert_eq!(open(&env2, &ct).unwrap(), b"payload");
        let headers = S3Headers::new(Scheme::GcmOaep, &env.wrapped_cek, &env.iv, Some(7));
        let env3 = crate::details::parse_details(&headers.to_lines()).unwrap();
        assert_eq!(open(&env3, &ct).unwrap(), b"payload");
    }
}
