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
    /// Plaintext was written to a sink whose sealing happens in another process.
    #[error("this object is sealed by another process; it takes ciphertext only")]
    SealedElsewhere,
    /// Ciphertext was written to a sink that seals itself.
    #[error("this sink seals its own plaintext; it takes no ciphertext")]
    NotSealedElsewhere,
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

    /// The service's at-rest public key (a process that seals at rest elsewhere, such as a room
    /// worker, is handed it).
    pub fn at_rest_key(&self) -> &PublicKey {
        &self.at_rest
    }

    /// Starts an object under `object_key`, sealed as `seal` says. Nothing is visible under the
    /// key until [`SealingSink::finish`] returns.
    pub async fn open(&self, object_key: &str, seal: &Seal) -> Result<SealingSink, SinkError> {
        let stream = SealingStream::new(seal, &self.at_rest)?;
        let writer = self.objects.create(object_key).await?;
        Ok(SealingSink {
            object_key: object_key.to_owned(),
            writer: Some(writer),
            sealing: stream.sealing,
            stage: Stage::Local(Some(Box::new(stream))),
            out: Vec::with_capacity(WRITE_BLOCK + 64 * 1024),
        })
    }

    /// Starts an object under `object_key` whose plaintext is sealed by another process (a
    /// room worker holding a [`SealingStream`]): this sink only ever sees ciphertext, through
    /// [`SealingSink::write_sealed`], and is finished with [`SealingSink::finish_sealed`].
    pub async fn open_sealed_elsewhere(
        &self,
        object_key: &str,
        sealing: Sealing,
    ) -> Result<SealingSink, SinkError> {
        let writer = self.objects.create(object_key).await?;
        Ok(SealingSink {
            object_key: object_key.to_owned(),
            writer: Some(writer),
            sealing,
            stage: Stage::Remote { failed: false },
            out: Vec::with_capacity(WRITE_BLOCK + 64 * 1024),
        })
    }
}

/// Plaintext in, ciphertext out, in memory: the sealing half of a [`SealingSink`], with no
/// store behind it. A process that must not hold store credentials (a room worker) seals with
/// one and hands the ciphertext to a sink opened with
/// [`SinkFactory::open_sealed_elsewhere`].
pub struct SealingStream {
    sealer: Option<Sealer>,
    sealing: Sealing,
    head: HeadTap,
    taps: Vec<Box<dyn PlainTap>>,
}

impl core::fmt::Debug for SealingStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SealingStream")
            .field("sealing", &self.sealing)
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

impl SealingStream {
    /// Seals as `seal` says; `at_rest` is the service's public key, used for [`Seal::AtRest`].
    pub fn new(seal: &Seal, at_rest: &PublicKey) -> Result<Self, SinkError> {
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
                        key: at_rest,
                        key_id: AT_REST_KEY_ID,
                    }],
                )?,
                Sealing::AtRest,
            ),
        };
        Ok(Self {
            sealer: Some(sealer),
            sealing,
            head: HeadTap::new(HEAD_LEN),
            taps: Vec::new(),
        })
    }

    /// Whose key seals.
    pub fn sealing(&self) -> Sealing {
        self.sealing
    }

    /// Plaintext bytes sealed so far.
    pub fn plain_size(&self) -> u64 {
        self.sealer.as_ref().map_or(0, Sealer::plaintext_len)
    }

    /// Adds a tap that sees every plaintext byte written from now on.
    pub fn attach(&mut self, tap: Box<dyn PlainTap>) {
        self.taps.push(tap);
    }

    /// Seals `plain`, appending ciphertext to `out`. After an error the stream is poisoned.
    pub fn write(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), SinkError> {
        let sealer = self.sealer.as_mut().ok_or(SinkError::Poisoned)?;
        self.head.feed(plain);
        for tap in &mut self.taps {
            tap.feed(plain);
        }
        if let Err(e) = sealer.update(plain, out) {
            self.sealer = None;
            return Err(e.into());
        }
        Ok(())
    }

    /// Seals the tail into `out`; the receipt says what the object needs beside it. The head
    /// (the first plaintext bytes, for format sniffing) stays in memory and is wiped on drop.
    pub fn finish(
        mut self,
        out: &mut Vec<u8>,
    ) -> Result<(Receipt, zeroize::Zeroizing<Vec<u8>>), SinkError> {
        let sealer = self.sealer.take().ok_or(SinkError::Poisoned)?;
        let receipt = sealer.finish(out)?;
        Ok((receipt, zeroize::Zeroizing::new(self.head.bytes().to_vec())))
    }
}

/// The object headers a sealed object carries: the S3 envelope's key material (the
/// `x-amz-meta-*` headers the seeds' recipes read); none for the other formats, which keep theirs
/// in the object or in the ledger.
pub fn receipt_object_meta(receipt: &Receipt) -> ObjectMeta {
    receipt
        .s3_headers()
        .map(|headers| {
            headers
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
        })
        .unwrap_or_default()
}

/// Where a sink's sealing happens.
enum Stage {
    /// Here; `None` once finished or failed. (Boxed: a sealer is large, a remote stage tiny.)
    Local(Option<Box<SealingStream>>),
    /// In another process, which sends ciphertext.
    Remote {
        /// A store write failed: the sink is poisoned.
        failed: bool,
    },
}

/// An object being sealed. Write plaintext in any pieces, then [`finish`](Self::finish) it;
/// [`abort`](Self::abort) it, or drop it, to leave nothing behind.
pub struct SealingSink {
    object_key: String,
    writer: Option<Box<dyn ObjectWriter>>,
    sealing: Sealing,
    stage: Stage,
    /// Ciphertext waiting to be handed to the store.
    out: Vec<u8>,
}

impl core::fmt::Debug for SealingSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let stage = match &self.stage {
            Stage::Local(stream) => format!("{stream:?}"),
            Stage::Remote { failed } => format!("sealed elsewhere (failed: {failed})"),
        };
        f.debug_struct("SealingSink")
            .field("object_key", &self.object_key)
            .field("sealing", &self.sealing)
            .field("stage", &stage)
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

    /// Plaintext bytes written so far (0 for a sink sealed elsewhere).
    pub fn plain_size(&self) -> u64 {
        match &self.stage {
            Stage::Local(Some(stream)) => stream.plain_size(),
            _ => 0,
        }
    }

    /// Adds a tap that sees every plaintext byte written from now on. A sink sealed elsewhere
    /// never sees plaintext, so its taps see nothing.
    pub fn attach(&mut self, tap: Box<dyn PlainTap>) {
        if let Stage::Local(Some(stream)) = &mut self.stage {
            stream.attach(tap);
        }
    }

    /// Seals `plain` and hands the ciphertext to the store as it accumulates.
    pub async fn write(&mut self, plain: &[u8]) -> Result<(), SinkError> {
        let Stage::Local(slot) = &mut self.stage else {
            return Err(SinkError::SealedElsewhere);
        };
        let stream = slot.as_mut().ok_or(SinkError::Poisoned)?;
        if let Err(e) = stream.write(plain, &mut self.out) {
            *slot = None;
            return Err(e);
        }
        if self.out.len() >= WRITE_BLOCK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Stores ciphertext sealed by another process (a sink from
    /// [`SinkFactory::open_sealed_elsewhere`] only).
    pub async fn write_sealed(&mut self, sealed: &[u8]) -> Result<(), SinkError> {
        match self.stage {
            Stage::Remote { failed: false } => {}
            Stage::Remote { failed: true } => return Err(SinkError::Poisoned),
            Stage::Local(_) => return Err(SinkError::NotSealedElsewhere),
        }
        self.out.extend_from_slice(sealed);
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
            self.stage = match self.stage {
                Stage::Local(_) => Stage::Local(None),
                Stage::Remote { .. } => Stage::Remote { failed: true },
            };
            return Err(e.into());
        }
        Ok(())
    }

    /// Seals the tail, makes the object durable and visible, and says what was stored.
    pub async fn finish(mut self) -> Result<Stored, SinkError> {
        let stream = match &mut self.stage {
            Stage::Local(slot) => *slot.take().ok_or(SinkError::Poisoned)?,
            Stage::Remote { .. } => return Err(SinkError::SealedElsewhere),
        };
        let (receipt, head) = stream.finish(&mut self.out)?;
        let sealed_size = self.store_tail(receipt_object_meta(&receipt)).await?;
        Ok(Stored {
            object_key: std::mem::take(&mut self.object_key),
            plain_size: receipt.plaintext_len,
            sealed_size,
            sealing: self.sealing,
            receipt,
            head,
        })
    }

    /// Finishes a sink sealed elsewhere with the object headers of the sealing process's
    /// receipt ([`receipt_object_meta`]): the object is durable and visible. Returns the bytes
    /// stored.
    pub async fn finish_sealed(mut self, meta: ObjectMeta) -> Result<u64, SinkError> {
        match self.stage {
            Stage::Remote { failed: false } => {}
            Stage::Remote { failed: true } => return Err(SinkError::Poisoned),
            Stage::Local(_) => return Err(SinkError::NotSealedElsewhere),
        }
        self.store_tail(meta).await
    }

    /// Writes what is buffered and finishes the object with `meta` as its headers.
    async fn store_tail(&mut self, meta: ObjectMeta) -> Result<u64, SinkError> {
        if !self.out.is_empty() {
            self.flush().await?;
        }
        let writer = self.writer.take().ok_or(SinkError::Poisoned)?;
        Ok(writer.finish(meta).await?)
    }

    /// Discards everything written. Dropping the sink does the same (the object store's writer
    /// removes its partial object on drop); this waits for it.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
    }
}
