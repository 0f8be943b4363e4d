//! [`SealingSink`]: plaintext in, a sealed object out.

use std::sync::Arc;

use bytes::Bytes;
use mediaseal_crypto::{EncryptError, PublicKey, Receipt, RecipientKey, Sealer};
use mediaseal_store::model::Sealing;
use mediaseal_store::{ObjectMeta, ObjectStore, ObjectWriter, StoreError};

use crate::policy::Seal;
use crate::tap::{HeadTap, PlainTap};

/// Key id recorded in the header of objects sealed with the service's own key.
pub const AT_REST_KEY_ID: &str = "mediaseal-at-rest";

/// Hand sealed output to the store in blocks of about this size.
const WRITE_BLOCK: usize = 512 * 1024;

/// How many leading plaintext bytes [`Stored::head`] keeps for format sniffing.
const HEAD_LEN: usize = 4096;

/// Why a sink could not store its object. Nothing is left behind either way.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Sealing failed (the seeds' "unable to encrypt" case).
    #[error("sealing failed: {0}")]
    Seal(#[from] EncryptError),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink was used after it failed.
    #[error("the sealing sink was used after an earlier failure")]
    Poisoned,
}

/// Opens sinks: the object store plus the service's at-rest *public* key. It can seal to the
/// service but never read back.
#[derive(Clone)]
pub struct SinkFactory {
    objects: Arc<dyn ObjectStore>,
    at_rest: Arc<PublicKey>,
}

impl core::fmt::Debug for SinkFactory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SinkFactory")
            .field("objects", &self.objects.backend())
            .field("at_rest", &self.at_rest.fingerprint())
            .finish()
    }
}

impl SinkFactory {
    /// Sinks into `objects`, sealing at rest to `at_rest`.
    pub fn new(objects: Arc<dyn ObjectStore>, at_rest: PublicKey) -> Self {
        Self {
            objects,
            at_rest: Arc::new(at_rest),
        }
    }

    /// The object store the sinks write to.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Starts an object under `object_key`, sealed as `seal` says. Nothing is visible under the
    /// key until [`SealingSink::finish`] returns.
    pub async fn open(&self, object_key: &str, seal: &Seal) -> Result<SealingSink, SinkError> {
        let (sealer, sealing) = match seal {
            Seal::Customer { format, key } => (
                Sealer::new(
                    *format,
                    &[RecipientKey {
                        key: &key.key,
                        key_id: &key.sid,
                    }],
                )?,
                Sealing::Customer,
            ),
            Seal::AtRest => (
                Sealer::new(
                    mediaseal_crypto::Format::Native,
                    &[RecipientKey {
                        key: &self.at_rest,
                        key_id: AT_REST_KEY_ID,
                    }],
                )?,
                Sealing::AtRest,
            ),
        };
        let writer = self.objects.create(object_key).await?;
        Ok(SealingSink {
            object_key: object_key.to_owned(),
            writer: Some(writer),
            sealer: Some(sealer),
            sealing,
            out: Vec::with_capacity(WRITE_BLOCK + 64 * 1024),
            head: HeadTap::new(HEAD_LEN),
            taps: Vec::new(),
        })
    }
}

/// An object being sealed. Write plaintext in any pieces, then [`finish`](Self::finish) it;
/// [`abort`](Self::abort) it, or drop it, to leave nothing behind.
pub struct SealingSink {
    object_key: String,
    writer: Option<Box<dyn ObjectWriter>>,
    sealer: Option<Sealer>,
    sealing: Sealing,
    /// Ciphertext waiting to be handed to the store.
    out: Vec<u8>,
    head: HeadTap,
    taps: Vec<Box<dyn PlainTap>>,
}

impl core::fmt::Debug for SealingSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealingSink")
            .field("object_key", &self.object_key)
            .field("sealing", &self.sealing)
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

/// What a sink stored.
#[derive(Debug)]
pub struct Stored {
    /// The object's key.
    pub object_key: String,
    /// Plaintext bytes received.
    pub plain_size: u64,
    /// Bytes stored.
    pub sealed_size: u64,
    /// Whose key sealed it.
    pub sealing: Sealing,
    /// The key material the customer needs beside the object (for `rsa-aes` and `s3-*`).
    pub receipt: Receipt,
    /// The first plaintext bytes, in memory only, for format sniffing; wiped on drop.
    pub head: zeroize::Zeroizing<Vec<u8>>,
}

impl Stored {
    /// The `encryption_details` JSON of a voice recording sealed to the customer.
    pub fn encryption_details_json(&self) -> Option<String> {
        self.receipt.encryption_details().map(|d| d.to_json())
    }
}

impl SealingSink {
    /// The object's key.
    pub fn object_key(&self) -> &str {
        &self.object_key
    }

    /// Whose key seals this object.
    pub fn sealing(&self) -> Sealing {
        self.sealing
    }

    /// Plaintext bytes written so far.
    pub fn plain_size(&self) -> u64 {
        self.sealer.as_ref().map_or(0, Sealer::plaintext_len)
    }

    /// Adds a tap that sees every plaintext byte written from now on.
    pub fn attach(&mut self, tap: Box<dyn PlainTap>) {
        self.taps.push(tap);
    }

    /// Seals `plain` and hands the ciphertext to the store as it accumulates.
    pub async fn write(&mut self, plain: &[u8]) -> Result<(), SinkError> {
        let sealer = self.sealer.as_mut().ok_or(SinkError::Poisoned)?;
        self.head.feed(plain);
        for tap in &mut self.taps {
            tap.feed(plain);
        }
        if let Err(e) = sealer.update(plain, &mut self.out) {
            self.sealer = None;
            return Err(e.into());
        }
        if self.out.len() >= WRITE_BLOCK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        let writer = self.writer.as_mut().ok_or(SinkError::Poisoned)?;
        let block = Bytes::from(std::mem::replace(
            &mut self.out,
            Vec::with_capacity(WRITE_BLOCK + 64 * 1024),
        ));
        if let Err(e) = writer.write(block).await {
            self.sealer = None;
            return Err(e.into());
        }
        Ok(())
    }

    /// Seals the tail, makes the object durable and visible, and says what was stored.
    pub async fn finish(mut self) -> Result<Stored, SinkError> {
        let sealer = self.sealer.take().ok_or(SinkError::Poisoned)?;
        let receipt = sealer.finish(&mut self.out)?;
        if !self.out.is_empty() {
            self.flush().await?;
        }
        // The S3 envelope's key material travels as object headers, as the seeds' recipes
        // expect; the other formats keep theirs in the object or in the ledger.
        let meta: ObjectMeta = receipt
            .s3_headers()
            .map(|headers| {
                headers
                    .pairs()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            })
            .unwrap_or_default();
        let writer = self.writer.take().ok_or(SinkError::Poisoned)?;
        let sealed_size = writer.finish(meta).await?;
        Ok(Stored {
            object_key: std::mem::take(&mut self.object_key),
            plain_size: receipt.plaintext_len,
            sealed_size,
            sealing: self.sealing,
            receipt,
            head: zeroize::Zeroizing::new(self.head.bytes().to_vec()),
        })
    }

    /// Discards everything written. Dropping the sink does the same (the object store's writer
    /// removes its partial object on drop); this waits for it.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
    }
}
