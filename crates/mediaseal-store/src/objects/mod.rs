//! Sealed-object storage: the trait every backend implements, and the embedded directory
//! backend ([`FsObjectStore`]). The S3 backend lives in `crate::s3`.
//!
//! Only ciphertext ever reaches an object store. Writers are streaming (a recording of any size
//! passes through in bounded memory) and an object becomes visible under its key only when
//! [`ObjectWriter::finish`] returns, after the bytes are durable.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Seek};
use std::ops::Range;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::StoreError;
use crate::meta::StoreResult;

mod dir_sync;
mod fs;

pub use fs::FsObjectStore;

/// Object headers kept beside the bytes, e.g. the `x-amz-meta-*` envelope headers.
pub type ObjectMeta = BTreeMap<String, String>;

/// What is known about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// Headers stored with it.
    pub meta: ObjectMeta,
    /// Last modification.
    pub modified: Option<SystemTime>,
}

/// A stream of an object's bytes.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// A readable, seekable object, for synchronous random access in a blocking task.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// An object being written. Dropping it without [`ObjectWriter::finish`] discards it.
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends bytes.
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()>;
    /// Makes the object durable and visible with `meta` headers (known only once the content
    /// is, e.g. the plaintext length); returns its size.
    async fn finish(self: Box<Self>, meta: ObjectMeta) -> StoreResult<u64>;
    /// Discards everything written.
    async fn abort(self: Box<Self>);
}

/// Where sealed objects live.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// `fs` or `s3`.
    fn backend(&self) -> &'static str;
    /// Starts writing `key`.
    async fn create(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>>;
    /// Size and headers of `key`.
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo>;
    /// The bytes of `key`, or of `range` within it.
    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> StoreResult<(ObjectInfo, ByteStream)>;
    /// A blocking `Read + Seek` over `key`; call from a blocking task.
    fn open_blocking(&self, key: &str) -> StoreResult<Box<dyn ReadSeek>>;
    /// Destroys `key`. Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Keys (with modification times) under `prefix`, for the orphan sweeper.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<(String, SystemTime)>>;
    /// A URL that serves `key` directly for `ttl`, when the backend can sign one (S3).
    async fn presign_get(&self, key: &str, ttl: Duration) -> StoreResult<Option<String>>;
    /// Removes the temporary files of writers a crash interrupted, untouched for at least
    /// `age`; returns how many. Backends without such files (S3: unfinished multipart uploads
    /// are aborted by `S3ObjectStore::abort_stale_uploads`) have nothing to do.
    async fn sweep_partials(&self, age: Duration) -> StoreResult<usize> {
        let _ = age;
        Ok(0)
    }
}

/// Keys are `ACCOUNT/SID` made of SID characters; anything else is refused so no key can name a
/// path outside the store.
pub fn validate_key(key: &str) -> StoreResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 256
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!("invalid object key '{key}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_key;

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in ["", "../x", "a/../b", "/abs", "a//b", "a/b c", "a\\b"] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
        assert!(validate_key("AC0123/RE0123").is_ok());
    }
}
