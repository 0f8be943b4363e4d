//! Reading at-rest objects back: the one capability that needs the service's at-rest private
//! key.
//!
//! Objects sealed at rest (everything the customer did not ask to seal with their own key) can
//! be opened by the service, to serve them decrypted, transcode them or compose them. Only the
//! processes that do that link this crate and hold the key: the HTTP server and the composition
//! worker. A process that only records (a room worker, the call relay) is built from
//! `mediaseal-sink` alone and holds the public half, so it can seal but never read back. The
//! dependency rule is enforced in `deny.toml`.
//!
//! Opening is sans-IO underneath ([`mediaseal_crypto::NativeOpener`]): [`AtRestReader::unlock`]
//! reads the header once, and [`AtRestReader::stream`] decrypts exactly the segments a plaintext
//! range needs as the object store streams them, releasing only authenticated plaintext, with no
//! blocking thread.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use mediaseal_crypto::native::{Header, NativeReader};
use mediaseal_crypto::{DecryptError, NativeOpener, PrivateKey, PublicKey, UnlockedHeader};
use mediaseal_store::{ByteStream, ObjectStore, ReadSeek, StoreError};

/// Bytes fetched for the header on the first try; a header that declares more is fetched whole.
const HEADER_PROBE: u64 = 4096;

/// Why an at-rest object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object did not decrypt or authenticate (kept coarse: no oracle).
    #[error("the stored object could not be decrypted: {0}")]
    Decrypt(#[from] DecryptError),
}

/// Opens objects sealed at rest. Holds the private key: build it only where reading back is a
/// job of the process.
#[derive(Clone)]
pub struct AtRestReader {
    objects: Arc<dyn ObjectStore>,
    key: Arc<PrivateKey>,
}

impl core::fmt::Debug for AtRestReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AtRestReader")
            .field("objects", &self.objects.backend())
            .field("key", &self.key.fingerprint())
            .finish()
    }
}

/// An at-rest object whose header is unlocked: its plaintext length is known and any range of
/// it can be streamed.
#[derive(Debug, Clone)]
pub struct AtRestObject {
    key: String,
    object_len: u64,
    plaintext_len: u64,
    unlocked: UnlockedHeader,
}

impl AtRestReader {
    /// Reads objects from `objects` with the at-rest private key `key`.
    pub fn new(objects: Arc<dyn ObjectStore>, key: Arc<PrivateKey>) -> Self {
        Self { objects, key }
    }

    /// The public half, which sealing needs.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// Reads and unlocks the header of `object_key` (one RSA operation).
    pub async fn unlock(&self, object_key: &str) -> Result<AtRestObject, ReadError> {
        let info = self.objects.head(object_key).await?;
        let mut head = self
            .fetch(object_key, 0..HEADER_PROBE.min(info.size))
            .await?;
        if let Some(need) = Header::declared_len(&head).map_err(DecryptError::from)?
            && need as u64 > head.len() as u64
            && need as u64 <= info.size
        {
            head = self.fetch(object_key, 0..need as u64).await?;
        }
        let unlocked = UnlockedHeader::unlock(&head, &self.key)?;
        let plaintext_len = unlocked
            .plaintext_len(info.size)
            .ok_or(DecryptError::AuthenticationFailed)?;
        Ok(AtRestObject {
            key: object_key.to_owned(),
            object_len: info.size,
            plaintext_len,
            unlocked,
        })
    }

    async fn fetch(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>, ReadError> {
        let (_, mut stream) = self.objects.get(key, Some(range)).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(StoreError::Io)?);
        }
        Ok(out)
    }

    /// A blocking reader of the whole plaintext of `object_key`, for a blocking thread (the
    /// composition feeders, the MP3 transcoder's feeder).
    pub fn open_blocking(
        &self,
        object_key: &str,
    ) -> Result<NativeReader<Box<dyn ReadSeek>>, ReadError> {
        let raw = self.objects.open_blocking(object_key)?;
        Ok(NativeReader::new(raw, &self.key)?)
    }

    /// Streams the plaintext in `range` of `object`. Each piece is released only once its
    /// segment authenticated; a failure ends the stream with an error.
    pub async fn stream(
        &self,
        object: &AtRestObject,
        range: Range<u64>,
    ) -> Result<ByteStream, ReadError> {
        let opener = NativeOpener::ranged(&object.unlocked, object.object_len, range)?;
        let Some(fetch) = opener.fetch_range() else {
            return Ok(futures::stream::empty().boxed());
        };
        let (_, ciphertext) = self.objects.get(&object.key, Some(fetch)).await?;
        Ok(decrypting(ciphertext, opener, object.key.clone()))
    }
}

impl AtRestObject {
    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.plaintext_len
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.plaintext_len == 0
    }
}

/// Feeds `ciphertext` through `opener`, yielding plaintext as segments authenticate.
fn decrypting(ciphertext: ByteStream, opener: NativeOpener, key: String) -> ByteStream {
    struct State {
        ciphertext: ByteStream,
        opener: Option<NativeOpener>,
        key: String,
    }
    let state = State {
        ciphertext,
        opener: Some(opener),
        key,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            let opener = st.opener.as_mut()?;
            match st.ciphertext.next().await {
                Some(Ok(chunk)) => {
                    let mut out = Vec::new();
                    if let Err(e) = opener.update(&chunk, &mut out) {
                        st.opener = None;
                        tracing::error!(object = %st.key, error = %e, "at-rest object failed authentication while streaming");
                        return Some((Err(io::Error::other(e)), st));
                    }
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), st));
                    }
                }
                Some(Err(e)) => {
                    st.opener = None;
                    return Some((Err(e), st));
                }
                None => {
                    let opener = st.opener.take()?;
                    let mut out = Vec::new();
                    return match opener.finish(&mut out) {
                        Ok(_) if out.is_empty() => None,
                        Ok(_) => Some((Ok(Bytes::from(out)), st)),
                        Err(e) => {
                            tracing::error!(object = %st.key, error = %e, "at-rest object failed authentication at its end");
                            Some((Err(io::Error::other(e)), st))
                        }
                    };
                }
            }
        }
    })
    .boxed()
}
