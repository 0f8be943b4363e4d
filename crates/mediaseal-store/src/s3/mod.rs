//! Sealed objects in an S3-compatible store (AWS S3, Garage, MinIO, Ceph RGW), through the AWS
//! SDK for Rust.
//!
//! Writing: the sealing pipeline streams ciphertext in; an object smaller than one part is sent as
//! a single `PutObject` at [`ObjectWriter::finish`], with its `x-amz-meta-*` headers, so it
//! appears atomically, complete and with its headers. A larger object goes up as a multipart
//! upload while it streams (two parts in flight); its headers are known only at the end (the
//! plaintext length), so after `CompleteMultipartUpload` a self-copy with
//! `x-amz-metadata-directive: REPLACE` sets them. Until `finish` returns, nothing refers to the
//! key, because the metadata row that makes a recording visible is committed only afterwards; a
//! crash in between leaves a reserved row or an unreferenced key, both removed by the sweeper.
//! Multipart uploads abandoned by a crash are invisible and are aborted by
//! [`S3ObjectStore::abort_stale_uploads`] (or a bucket lifecycle rule).
//!
//! Reading: ranged `GetObject`s; [`ObjectStore::open_blocking`] is a `Read + Seek` over ranged
//! GETs with an adaptive read-ahead, for the at-rest decryptor that runs in a blocking task.
//! [`ObjectStore::presign_get`] returns a SigV4 presigned GET URL, so the store itself can serve
//! an object with its headers.
//!
//! The module is split by job: `config` (the `s3://` URL), `writer` (single PUT and multipart
//! upload), `reader` (the blocking `Read + Seek`), `presign` and `sweep` (stale multipart
//! uploads).

mod config;
mod presign;
mod reader;
mod sweep;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use bytes::Bytes;
use futures::StreamExt;

pub use self::config::S3Config;
use self::writer::MIN_PART;
use crate::error::StoreError;
use crate::meta::StoreResult;
use crate::objects::{
    ByteStream, ObjectInfo, ObjectMeta, ObjectStore, ObjectWriter, ReadSeek, validate_key,
};

/// What S3 calls user metadata travels as headers with this prefix; the SDK wants it without.
const USER_META_PREFIX: &str = "x-amz-meta-";
/// Every sealed object is opaque bytes to the store.
const CONTENT_TYPE: &str = "application/octet-stream";

/// State shared by the store, its writers and its blocking readers.
#[derive(Debug)]
struct Inner {
    client: Client,
    presigner: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
    /// Send object bodies as `UNSIGNED-PAYLOAD` (see [`S3Config::sign_payload`]).
    unsigned_payload: bool,
    /// For the blocking reader and for aborting uploads from `Drop`.
    runtime: tokio::runtime::Handle,
}

/// Sealed objects in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    inner: Arc<Inner>,
    describe: String,
}

impl S3ObjectStore {
    /// Connects and checks that the bucket answers with these credentials. Must be called inside
    /// a Tokio runtime, which the store then uses.
    pub async fn connect(config: S3Config) -> StoreResult<Self> {
        let (Some(key_id), Some(secret)) = (&config.access_key_id, &config.secret_access_key)
        else {
            return Err(StoreError::Config(format!(
                "no credentials for {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or s3_access_key_id and s3_secret_access_key in the config file)",
                config.describe()
            )));
        };
        let credentials = Credentials::new(
            key_id,
            secret,
            config.session_token.clone(),
            None,
            "mediaseal-config",
        );
        let build = |endpoint: Option<&String>| {
            let mut b = aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(config.region.clone()))
                .credentials_provider(credentials.clone())
                .force_path_style(config.path_style)
                // Integrity is the payload SHA-256 of SigV4 (and, for the content, the AEAD tags
                // of the sealing); extra CRC trailers would cost time and are not understood by
                // every S3-compatible store.
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
            if let Some(e) = endpoint {
                b = b.endpoint_url(e);
            }
            Client::from_conf(b.build())
        };
        let client = build(config.endpoint.as_ref());
        let presigner = build(
            config
                .presign_endpoint
                .as_ref()
                .or(config.endpoint.as_ref()),
        );
        let describe = config.describe();
        client
            .head_bucket()
            .bucket(&config.bucket)
            .send()
            .await
            .map_err(|e| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let hint = match status {
                    Some(403) => "access denied: check the key and its permissions on the bucket",
                    Some(404) => "no such bucket",
                    Some(_) => "the store refused the request",
                    None => "the store could not be reached",
                };
                StoreError::Config(format!(
                    "object store {describe}: {hint} ({})",
                    DisplayErrorContext(&e)
                ))
            })?;
        let unsigned_payload = !config.signs_payload();
        let inner = Inner {
            client,
            presigner,
            bucket: config.bucket,
            prefix: config.prefix,
            part_size: config.part_size.max(MIN_PART),
            unsigned_payload,
            runtime: tokio::runtime::Handle::current(),
        };
        Ok(Self {
            inner: Arc::new(inner),
            describe,
        })
    }
}

impl Inner {
    fn full_key(&self, key: &str) -> StoreResult<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    async fn head_full(&self, full: &str, key: &str) -> StoreResult<ObjectInfo> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| sdk_error("head", key, &e))?;
        Ok(ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            meta: from_user_metadata(out.metadata()),
            modified: out
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok()),
        })
    }

    /// Bytes `range` of `full`, whole.
    async fn get_range(&self, full: &str, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .map_err(|e| sdk_error("get", key, &e))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::ObjectStore(format!("get {key}: {e}")))?;
        Ok(body.into_bytes())
    }
}

/// An SDK failure as a store error: `ObjectNotFound` for 404, else the operation and the
/// store's error code and message (which never contain credentials).
fn sdk_error<E, R>(op: &str, key: &str, e: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: fmt::Debug + HasStatus,
{
    if e.raw_response().and_then(HasStatus::status) == Some(404) {
        return StoreError::ObjectNotFound(key.to_owned());
    }
    StoreError::ObjectStore(format!("{op} {key}: {}", DisplayErrorContext(e)))
}

/// The HTTP status of a raw SDK response.
trait HasStatus {
    fn status(&self) -> Option<u16>;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

/// `x-amz-meta-NAME` headers → S3 user metadata `NAME`. Other headers cannot be stored.
fn to_user_metadata(meta: &ObjectMeta) -> StoreResult<HashMap<String, String>> {
    meta.iter()
        .map(|(k, v)| match k.strip_prefix(USER_META_PREFIX) {
            Some(name) if !name.is_empty() => Ok((name.to_owned(), v.clone())),
            _ => Err(StoreError::Config(format!(
                "object header '{k}' is not an x-amz-meta-* header"
            ))),
        })
        .collect()
}

fn from_user_metadata(meta: Option<&HashMap<String, String>>) -> ObjectMeta {
    meta.into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                format!("{USER_META_PREFIX}{}", k.to_ascii_lowercase()),
                v.clone(),
            )
        })
        .collect()
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn create(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        let full = self.inner.full_key(key)?;
        Ok(Box::new(writer::S3Writer::new(
            self.inner.clone(),
            full,
            key,
        )))
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        let full = self.inner.full_key(key)?;
        self.inner.head_full(&full, key).await
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        let inner = &self.inner;
        let full = inner.full_key(key)?;
        if let Some(r) = &range
            && r.start >= r.end
        {
            let info = inner.head_full(&full, key).await?;
            return Ok((info, futures::stream::empty().boxed()));
        }
        let mut request = inner.client.get_object().bucket(&inner.bucket).key(&full);
        if let Some(r) = &range {
            request = request.range(format!("bytes={}-{}", r.start, r.end - 1));
        }
        let out = match request.send().await {
            Ok(out) => out,
            // A range starting past the end: the same empty answer as the directory store.
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(416) => {
                let info = inner.head_full(&full, key).await?;
                return Ok((info, futures::stream::empty().boxed()));
            }
            Err(e) => return Err(sdk_error("get", key, &e)),
        };
        let size = match (&range, out.content_range()) {
            // `bytes a-b/total`
            (Some(_), Some(cr)) => cr
                .rsplit('/')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            _ => out.content_length().unwrap_or(0).max(0) as u64,
        };
        let info = ObjectInfo {
            size,
            meta: from_user_metadata(out.metadata()),
            modified: out
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok()),
        };
        let stream = futures::stream::unfold(out.body, |mut body| async move {
            body.next()
                .await
                .map(|item| (item.map_err(io::Error::other), body))
        })
        .boxed();
        Ok((info, stream))
    }

    fn open_blocking(&self, key: &str) -> StoreResult<Box<dyn ReadSeek>> {
        let full = self.inner.full_key(key)?;
        Ok(Box::new(reader::S3Reader::new(
            self.inner.clone(),
            full,
            key,
        )))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let inner = &self.inner;
        let full = inner.full_key(key)?;
        inner
            .client
            .delete_object()
            .bucket(&inner.bucket)
            .key(&full)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("delete", key, &e))
            .or_else(|e| {
                if matches!(e, StoreError::ObjectNotFound(_)) {
                    Ok(())
                } else {
                    Err(e)
                }
            })
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<(String, SystemTime)>> {
        let inner = &self.inner;
        let full_prefix = format!("{}{prefix}", inner.prefix);
        let mut out = Vec::new();
        let mut pages = inner
            .client
            .list_objects_v2()
            .bucket(&inner.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("list", &full_prefix, &e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&inner.prefix)) else {
                    continue;
                };
                let modified = object
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((key.to_owned(), modified));
            }
        }
        Ok(out)
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> StoreResult<Option<String>> {
        let full = self.inner.full_key(key)?;
        self.inner.presign_get(&full, key, ttl).await.map(Some)
    }
}

impl fmt::Display for S3ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe)
    }
}

#[cfg(test)]
mod tests;
