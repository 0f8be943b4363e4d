//! Sealing on arrival: request body in, ciphertext out to the object store, with no plaintext
//! ever written anywhere. Used by every ingest door (voice recordings, track recordings,
//! compositions).

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use mediaseal_crypto::native::{NativeSealer, RecipientKey};
use mediaseal_crypto::{
    CbcSealer, ContentKey, EncryptError, EncryptionDetails, GcmSealer, PublicKey, S3Headers, Scheme,
};
use mediaseal_store::{ObjectMeta, ObjectStore, StoreError};

/// Key id recorded in the header of objects sealed with the service's own key.
pub const AT_REST_KEY_ID: &str = "mediaseal-at-rest";

/// Flush sealed output to the store in blocks of about this size.
const WRITE_BLOCK: usize = 512 * 1024;

/// Whom to seal to.
#[derive(Debug)]
pub enum SealTo<'a> {
    /// The customer's key in the voice format (`rsa-aes`).
    CustomerRsaAes {
        /// The key.
        key: &'a PublicKey,
        /// Its `CR…` SID.
        sid: &'a str,
    },
    /// The customer's key in an S3 envelope (`s3-cbc` for video, `s3-gcm` for transcripts).
    CustomerS3 {
        /// The key.
        key: &'a PublicKey,
        /// Its `CR…` SID.
        sid: &'a str,
        /// CBC or GCM.
        scheme: Scheme,
    },
    /// The service's own key, in the native format.
    AtRest(&'a PublicKey),
}

/// What sealing produced besides the object.
#[derive(Debug, Clone)]
pub enum SealDetails {
    /// The voice `encryption_details`.
    RsaAes(EncryptionDetails),
    /// The S3 envelope headers (also stored as object headers).
    S3(S3Headers),
    /// Native at-rest: self-describing.
    Native,
}

/// A stored, sealed object.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Bytes received.
    pub plain_size: u64,
    /// Bytes stored.
    pub sealed_size: u64,
    /// Key material for the customer, if any.
    pub details: SealDetails,
    /// The first bytes of the plaintext, kept in memory only, for format sniffing (WAV duration).
    pub head: Vec<u8>,
}

/// Why an upload did not become an object.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The client's body failed or was cut off.
    #[error("the upload was interrupted: {0}")]
    Body(String),
    /// Sealing failed (the seed's "unable to encrypt" case).
    #[error("sealing failed: {0}")]
    Seal(#[from] EncryptError),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Sealer {
    Gcm(GcmSealer),
    Cbc(CbcSealer),
    Native(Box<NativeSealer>),
}

impl Sealer {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        match self {
            Self::Gcm(s) => s.seal_into(input, out),
            Self::Cbc(s) => s.seal_into(input, out),
            Self::Native(s) => s.update(input, out),
        }
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<(), EncryptError> {
        match self {
            Self::Gcm(s) => {
                let tag = s.finish()?;
                out.extend_from_slice(&tag);
                Ok(())
            }
            Self::Cbc(s) => s.finish_into(out),
            Self::Native(s) => s.finish(out),
        }
    }
}

/// How many leading plaintext bytes [`Sealed::head`] keeps.
const HEAD_LEN: usize = 4096;

/// Streams `body` through the sealer into `key` of `objects`. On any failure the partial object
/// is discarded and nothing is left behind.
pub async fn seal_body(
    objects: &dyn ObjectStore,
    key: &str,
    body: Body,
    to: SealTo<'_>,
) -> Result<Sealed, IngestError> {
    let mut writer = objects.create(key).await?;
    match seal_into_writer(&mut *writer, body, to).await {
        Ok((sealed, meta)) => match writer.finish(meta).await {
            Ok(size) => Ok(Sealed {
                sealed_size: size,
                ..sealed
            }),
            Err(e) => Err(e.into()),
        },
        Err(e) => {
            writer.abort().await;
            Err(e)
        }
    }
}

async fn seal_into_writer(
    writer: &mut dyn mediaseal_store::ObjectWriter,
    body: Body,
    to: SealTo<'_>,
) -> Result<(Sealed, ObjectMeta), IngestError> {
    let cek;
    let mut out = Vec::with_capacity(WRITE_BLOCK + 64 * 1024);
    let (mut sealer, wrapped, iv) = match &to {
        SealTo::CustomerRsaAes { key, .. } => {
            cek = ContentKey::generate();
            let wrapped = cek.wrap_oaep(key).map_err(|_| EncryptError::Wrap)?;
            let s = GcmSealer::new(&cek)?;
            let iv = s.iv().to_vec();
            (Sealer::Gcm(s), wrapped, iv)
        }
        SealTo::CustomerS3 { key, scheme, .. } => {
            cek = ContentKey::generate();
            match scheme {
                Scheme::CbcPkcs1 => {
                    let wrapped = cek.wrap_pkcs1(key).map_err(|_| EncryptError::Wrap)?;
                    let s = CbcSealer::new(&cek)?;
                    let iv = s.iv().to_vec();
                    (Sealer::Cbc(s), wrapped, iv)
                }
                _ => {
                    let wrapped = cek.wrap_oaep(key).map_err(|_| EncryptError::Wrap)?;
                    let s = GcmSealer::new(&cek)?;
                    let iv = s.iv().to_vec();
                    (Sealer::Gcm(s), wrapped, iv)
                }
            }
        }
        SealTo::AtRest(key) => {
            let recipients = [RecipientKey {
                key,
                key_id: AT_REST_KEY_ID,
            }];
            let s = NativeSealer::new(&recipients, mediaseal_crypto::native::DEFAULT_SEGMENT_LOG2)?;
            out.extend_from_slice(s.header());
            (Sealer::Native(Box::new(s)), Vec::new(), Vec::new())
        }
    };

    let mut plain_size = 0u64;
    let mut head = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let chunk: Bytes = frame.map_err(|e| IngestError::Body(e.to_string()))?;
        if head.len() < HEAD_LEN {
            let take = (HEAD_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        plain_size += chunk.len() as u64;
        sealer.update(&chunk, &mut out)?;
        if out.len() >= WRITE_BLOCK {
            writer.write(Bytes::from(std::mem::take(&mut out))).await?;
            out.reserve(WRITE_BLOCK + 64 * 1024);
        }
    }
    sealer.finish(&mut out)?;
    if !out.is_empty() {
        writer.write(Bytes::from(out)).await?;
    }

    let (details, meta) = match to {
        SealTo::CustomerRsaAes { sid, .. } => (
            SealDetails::RsaAes(EncryptionDetails::new(Some(sid.to_owned()), &wrapped, &iv)),
            ObjectMeta::new(),
        ),
        SealTo::CustomerS3 { key, sid, scheme } => {
            let headers = S3Headers::new(scheme, &wrapped, &iv, Some(plain_size))
                .with_key(Some(sid), key.fingerprint());
            let meta = headers
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            (SealDetails::S3(headers), meta)
        }
        SealTo::AtRest(_) => (SealDetails::Native, ObjectMeta::new()),
    };
    Ok((
        Sealed {
            plain_size,
            sealed_size: 0,
            details,
            head,
        },
        meta,
    ))
}

/// Duration in whole seconds of a PCM WAV file, from its header, if `head` starts with one.
pub fn wav_duration(head: &[u8], total_len: u64) -> Option<i64> {
    if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut pos = 12usize;
    let mut byte_rate = None;
    while pos + 8 <= head.len() {
        let id = head.get(pos..pos + 4)?;
        let size = u32::from_le_bytes(head.get(pos + 4..pos + 8)?.try_into().ok()?) as u64;
        if id == b"fmt " {
            byte_rate =
                Some(u32::from_le_bytes(head.get(pos + 16..pos + 20)?.try_into().ok()?) as u64);
        } else if id == b"data" {
            let rate = byte_rate.filter(|r| *r > 0)?;
            // Streamed WAVs often carry a placeholder size; trust what actually arrived.
            let data = size.min(total_len.saturating_sub(pos as u64 + 8));
            return Some((data / rate) as i64);
        }
        pos = pos.checked_add(8 + size as usize + (size as usize & 1))?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(seconds: u32) -> Vec<u8> {
        let rate = 8000u32;
        let data_len = rate * 2 * seconds;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data_len).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * 2).to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data_len.to_le_bytes());
        v.resize(44 + data_len as usize, 0);
        v
    }

    #[test]
    fn wav_header_duration() {
        let w = wav(3);
        assert_eq!(wav_duration(&w[..100], w.len() as u64), Some(3));
        assert_eq!(wav_duration(b"not a wav", 9), None);
        assert_eq!(wav_duration(&w[..20], w.len() as u64), None);
    }
}
