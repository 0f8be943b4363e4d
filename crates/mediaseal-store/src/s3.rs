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

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinSet;

use crate::error::StoreError;
use crate::meta::StoreResult;
use crate::objects::{
    ByteStream, ObjectInfo, ObjectMeta, ObjectStore, ObjectWriter, ReadSeek, validate_key,
};

/// What S3 calls user metadata travels as headers with this prefix; the SDK wants it without.
const USER_META_PREFIX: &str = "x-amz-meta-";
/// Every sealed object is opaque bytes to the store.
const CONTENT_TYPE: &str = "application/octet-stream";
/// The largest object `CopyObject` accepts; larger ones are re-headed with a multipart copy.
const MAX_SINGLE_COPY: u64 = 5 << 30;
/// Range size of one `UploadPartCopy`.
const COPY_PART: u64 = 1 << 30;
/// Part uploads running at once per writer: one on the wire while the next fills.
const PARTS_IN_FLIGHT: usize = 2;
/// S3's lower bound on every part but the last.
const MIN_PART: usize = 5 << 20;
/// Read-ahead bounds of the blocking reader: small after a seek, doubling while reads are
/// sequential.
const READ_AHEAD_MIN: u64 = 256 << 10;
const READ_AHEAD_MAX: u64 = 8 << 20;

/// Where and how to reach an S3 bucket. Parsed from
/// `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME&path_style=BOOL&part_size_mib=N&presign_endpoint=URL`.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (empty, or ending in `/`).
    pub prefix: String,
    /// Endpoint URL for S3-compatible stores (`http://127.0.0.1:3900`); AWS when absent.
    pub endpoint: Option<String>,
    /// Endpoint written into presigned URLs, when clients reach the store under another name
    /// than this server does.
    pub presign_endpoint: Option<String>,
    /// Signing region (`garage` for Garage's default).
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`); the default with a custom endpoint.
    pub path_style: bool,
    /// Part size of multipart uploads, and the size under which an object is sent in one PUT.
    pub part_size: usize,
    /// Access key id; from `AWS_ACCESS_KEY_ID` when absent.
    pub access_key_id: Option<String>,
    /// Secret access key; from `AWS_SECRET_ACCESS_KEY` when absent. Never printed.
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials; from `AWS_SESSION_TOKEN` when absent.
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("presign_endpoint", &self.presign_endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("part_size", &self.part_size)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

fn config_error(msg: impl fmt::Display) -> StoreError {
    StoreError::Config(format!("object store URL: {msg}"))
}

impl S3Config {
    /// Parses an `s3://` URL. Credentials are never taken from the URL (it ends up in process
    /// listings and logs); they come from the environment or the config file.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        let parsed = url::Url::parse(url).map_err(|e| config_error(format!("not a URL ({e})")))?;
        if parsed.scheme() != "s3" {
            return Err(config_error("expected s3://BUCKET[/PREFIX]?endpoint=…"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(config_error(
                "credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or s3_access_key_id / s3_secret_access_key in the config file)",
            ));
        }
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !bucket_ok {
            return Err(config_error(format!(
                "'{bucket}' is not an S3 bucket name (3-63 of a-z 0-9 . -)"
            )));
        }
        let prefix = parsed.path().trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            validate_key(prefix)
                .map_err(|_| config_error(format!("'{prefix}' is not a usable key prefix")))?;
            format!("{prefix}/")
        };
        let mut cfg = Self {
            bucket,
            prefix,
            endpoint: None,
            presign_endpoint: None,
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".to_owned()),
            path_style: false,
            part_size: 8 << 20,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
        };
        let mut path_style = None;
        for (name, value) in parsed.query_pairs() {
            match &*name {
                "endpoint" => cfg.endpoint = Some(endpoint_url("endpoint", &value)?),
                "presign_endpoint" => {
                    cfg.presign_endpoint = Some(endpoint_url("presign_endpoint", &value)?)
                }
                "region" if !value.is_empty() => cfg.region = value.into_owned(),
                "path_style" => {
                    path_style = Some(match &*value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(config_error(format!(
                                "path_style='{other}' is not true or false"
                            )));
                        }
                    });
                }
                "part_size_mib" => {
                    let mib: usize = value
                        .parse()
                        .ok()
                        .filter(|m| (5..=1024).contains(m))
                        .ok_or_else(|| {
                            config_error(format!(
                                "part_size_mib='{value}' is not a number from 5 to 1024"
                            ))
                        })?;
                    cfg.part_size = mib << 20;
                }
                other => {
                    return Err(config_error(format!(
                        "unknown parameter '{other}' (known: endpoint, region, path_style, part_size_mib, presign_endpoint)"
                    )));
                }
            }
        }
        // Garage, MinIO and Ceph are usually reached by IP or one host name: path style.
        cfg.path_style = path_style.unwrap_or(cfg.endpoint.is_some());
        Ok(cfg)
    }

    /// Fills missing credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`.
    pub fn with_env_credentials(mut self) -> Self {
        if self.access_key_id.is_none() && self.secret_access_key.is_none() {
            self.access_key_id = std::env::var("AWS_ACCESS_KEY_ID")
                .ok()
                .filter(|v| !v.is_empty());
            self.secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY")
                .ok()
                .filter(|v| !v.is_empty());
            if self.session_token.is_none() {
                self.session_token = std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|v| !v.is_empty());
            }
        }
        self
    }

    /// `s3://bucket/prefix` at the endpoint, for messages.
    pub fn describe(&self) -> String {
        let at = self
            .endpoint
            .as_deref()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default();
        format!("s3://{}/{}{at}", self.bucket, self.prefix)
    }
}

fn endpoint_url(name: &str, value: &str) -> StoreResult<String> {
    let u = url::Url::parse(value)
        .map_err(|e| config_error(format!("{name}='{value}' is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(config_error(format!(
            "{name}='{value}' must be an http:// or https:// URL"
        )));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(config_error(format!("{name} must not carry credentials")));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// State shared by the store, its writers and its blocking readers.
#[derive(Debug)]
struct Inner {
    client: Client,
    presigner: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
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
        let inner = Inner {
            client,
            presigner,
            bucket: config.bucket,
            prefix: config.prefix,
            part_size: config.part_size.max(MIN_PART),
            runtime: tokio::runtime::Handle::current(),
        };
        Ok(Self {
            inner: Arc::new(inner),
            describe,
        })
    }

    /// Multipart uploads open under this store's prefix: full key, upload id, start time.
    pub async fn open_uploads(&self) -> StoreResult<Vec<(String, String, SystemTime)>> {
        let inner = &self.inner;
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = inner
                .client
                .list_multipart_uploads()
                .bucket(&inner.bucket)
                .prefix(&inner.prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| sdk_error("listing uploads", &inner.prefix, &e))?;
            for up in page.uploads() {
                let started = up
                    .initiated()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                if let (Some(key), Some(id)) = (up.key(), up.upload_id()) {
                    out.push((key.to_owned(), id.to_owned(), started));
                }
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if page.is_truncated() != Some(true) || (key_marker.is_none() && id_marker.is_none()) {
                return Ok(out);
            }
        }
    }

    /// Aborts multipart uploads started more than `age` ago and never completed (a node died
    /// mid-upload); their parts are invisible but take space. Returns how many were aborted.
    pub async fn abort_stale_uploads(&self, age: Duration) -> StoreResult<usize> {
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut aborted = 0;
        for (key, id, started) in self.open_uploads().await? {
            if started <= cutoff {
                self.inner
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.inner.bucket)
                    .key(&key)
                    .upload_id(&id)
                    .send()
                    .await
                    .map_err(|e| sdk_error("aborting upload", &key, &e))?;
                aborted += 1;
            }
        }
        Ok(aborted)
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

    /// Sets `meta` on the finished object `full` of `size` bytes by copying it onto itself.
    async fn replace_metadata(
        &self,
        full: &str,
        key: &str,
        size: u64,
        meta: HashMap<String, String>,
    ) -> StoreResult<()> {
        // Keys are validated to URL-safe characters, so the copy source needs no encoding.
        let source = format!("{}/{full}", self.bucket);
        if size <= MAX_SINGLE_COPY {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(full)
                .copy_source(&source)
                .metadata_directive(MetadataDirective::Replace)
                .content_type(CONTENT_TYPE)
                .set_metadata(Some(meta))
                .send()
                .await
                .map_err(|e| sdk_error("setting headers of", key, &e))?;
            return Ok(());
        }
        let id = self.create_upload(full, key, Some(meta)).await?;
        let result = async {
            let mut parts = Vec::new();
            let mut start = 0u64;
            let mut number = 1;
            while start < size {
                let end = (start + COPY_PART).min(size);
                let out = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&id)
                    .part_number(number)
                    .copy_source(&source)
                    .copy_source_range(format!("bytes={start}-{}", end - 1))
                    .send()
                    .await
                    .map_err(|e| sdk_error("copying a part of", key, &e))?;
                let etag = out
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_owned);
                parts.push(
                    CompletedPart::builder()
                        .set_e_tag(etag)
                        .part_number(number)
                        .build(),
                );
                start = end;
                number += 1;
            }
            self.complete_upload(full, key, &id, parts).await
        }
        .await;
        if result.is_err() {
            self.abort_upload(full, &id).await;
        }
        result
    }

    async fn create_upload(
        &self,
        full: &str,
        key: &str,
        meta: Option<HashMap<String, String>>,
    ) -> StoreResult<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .content_type(CONTENT_TYPE)
            .set_metadata(meta)
            .send()
            .await
            .map_err(|e| sdk_error("starting upload of", key, &e))?;
        out.upload_id()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::ObjectStore(format!("no upload id for {key}")))
    }

    async fn complete_upload(
        &self,
        full: &str,
        key: &str,
        id: &str,
        mut parts: Vec<CompletedPart>,
    ) -> StoreResult<()> {
        parts.sort_by_key(|p| p.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error("completing upload of", key, &e))?;
        Ok(())
    }

    async fn abort_upload(&self, full: &str, id: &str) {
        let r = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(id)
            .send()
            .await;
        if let Err(e) = r {
            // Left for abort_stale_uploads.
            tracing::warn!(object = %full, error = %DisplayErrorContext(&e), "could not abort a multipart upload");
        }
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

/// A multipart upload under way.
struct Upload {
    id: String,
    parts: Vec<CompletedPart>,
    in_flight: JoinSet<StoreResult<CompletedPart>>,
    next_part: i32,
}

/// Buffers one part; sends it with a single PUT at `finish`, or starts a multipart upload once
/// the object outgrows it.
struct S3Writer {
    inner: Arc<Inner>,
    full: String,
    key: String,
    buffer: Vec<u8>,
    written: u64,
    upload: Option<Upload>,
}

impl S3Writer {
    /// Sends the first `part_size` buffered bytes (or all of them, for the last part).
    async fn send_part(&mut self, last: bool) -> StoreResult<()> {
        let inner = self.inner.clone();
        if self.upload.is_none() {
            let id = inner.create_upload(&self.full, &self.key, None).await?;
            self.upload = Some(Upload {
                id,
                parts: Vec::new(),
                in_flight: JoinSet::new(),
                next_part: 1,
            });
        }
        let Some(upload) = self.upload.as_mut() else {
            return Ok(());
        };
        let body = if last {
            std::mem::take(&mut self.buffer)
        } else {
            let rest = self.buffer.split_off(inner.part_size);
            std::mem::replace(&mut self.buffer, rest)
        };
        while upload.in_flight.len() >= PARTS_IN_FLIGHT {
            collect_part(upload).await?;
        }
        let number = upload.next_part;
        upload.next_part += 1;
        let (full, key, id) = (self.full.clone(), self.key.clone(), upload.id.clone());
        upload.in_flight.spawn(async move {
            let out = inner
                .client
                .upload_part()
                .bucket(&inner.bucket)
                .key(&full)
                .upload_id(&id)
                .part_number(number)
                .body(SdkByteStream::from(body))
                .send()
                .await
                .map_err(|e| sdk_error("uploading a part of", &key, &e))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag().map(str::to_owned))
                .part_number(number)
                .build())
        });
        Ok(())
    }

    async fn finish_multipart(&mut self, meta: HashMap<String, String>) -> StoreResult<()> {
        self.send_part(true).await?;
        let Some(upload) = self.upload.as_mut() else {
            return Ok(());
        };
        while !upload.in_flight.is_empty() {
            collect_part(upload).await?;
        }
        let parts = std::mem::take(&mut upload.parts);
        let id = upload.id.clone();
        self.inner
            .complete_upload(&self.full, &self.key, &id, parts)
            .await?;
        // Completed: nothing left to abort, but the object exists now.
        self.upload = None;
        if !meta.is_empty()
            && let Err(e) = self
                .inner
                .replace_metadata(&self.full, &self.key, self.written, meta)
                .await
        {
            // An object without its headers must not stay behind.
            let _ = self
                .inner
                .client
                .delete_object()
                .bucket(&self.inner.bucket)
                .key(&self.full)
                .send()
                .await;
            return Err(e);
        }
        Ok(())
    }
}

async fn collect_part(upload: &mut Upload) -> StoreResult<()> {
    match upload.in_flight.join_next().await {
        Some(Ok(part)) => {
            upload.parts.push(part?);
            Ok(())
        }
        Some(Err(e)) => Err(StoreError::ObjectStore(format!(
            "part upload task failed: {e}"
        ))),
        None => Ok(()),
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> StoreResult<()> {
        self.written += chunk.len() as u64;
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= self.inner.part_size {
            self.send_part(false).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>, meta: ObjectMeta) -> StoreResult<u64> {
        let meta = to_user_metadata(&meta)?;
        if self.upload.is_some() {
            if let Err(e) = self.finish_multipart(meta).await {
                if let Some(mut up) = self.upload.take() {
                    up.in_flight.abort_all();
                    self.inner.abort_upload(&self.full, &up.id).await;
                }
                return Err(e);
            }
            return Ok(self.written);
        }
        let inner = &self.inner;
        let body = std::mem::take(&mut self.buffer);
        inner
            .client
            .put_object()
            .bucket(&inner.bucket)
            .key(&self.full)
            .content_type(CONTENT_TYPE)
            .set_metadata((!meta.is_empty()).then_some(meta))
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error("put", &self.key, &e))?;
        Ok(self.written)
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(mut up) = self.upload.take() {
            up.in_flight.abort_all();
            self.inner.abort_upload(&self.full, &up.id).await;
        }
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Dropped mid-upload (the request was cancelled): abort in the background so the parts
        // do not wait for the stale-upload sweep.
        if let Some(mut up) = self.upload.take() {
            up.in_flight.abort_all();
            let inner = self.inner.clone();
            let full = std::mem::take(&mut self.full);
            inner
                .runtime
                .clone()
                .spawn(async move { inner.abort_upload(&full, &up.id).await });
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn create(&self, key: &str) -> StoreResult<Box<dyn ObjectWriter>> {
        let full = self.inner.full_key(key)?;
        Ok(Box::new(S3Writer {
            inner: self.inner.clone(),
            full,
            key: key.to_owned(),
            buffer: Vec::new(),
            written: 0,
            upload: None,
        }))
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
        Ok(Box::new(S3Reader {
            inner: self.inner.clone(),
            full,
            key: key.to_owned(),
            size: None,
            pos: 0,
            buffer: Bytes::new(),
            buffer_start: 0,
            ahead: READ_AHEAD_MIN,
        }))
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
        let inner = &self.inner;
        let full = inner.full_key(key)?;
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| StoreError::Config(format!("presigned URL lifetime: {e}")))?;
        let request = inner
            .presigner
            .get_object()
            .bucket(&inner.bucket)
            .key(&full)
            .presigned(config)
            .await
            .map_err(|e| sdk_error("presign", key, &e))?;
        Ok(Some(request.uri().to_owned()))
    }
}

impl fmt::Display for S3ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe)
    }
}

/// A blocking `Read + Seek` over ranged GETs. Runs the requests on the store's runtime from the
/// calling (blocking) thread.
struct S3Reader {
    inner: Arc<Inner>,
    full: String,
    key: String,
    size: Option<u64>,
    pos: u64,
    buffer: Bytes,
    buffer_start: u64,
    ahead: u64,
}

fn to_io(e: StoreError) -> io::Error {
    match e {
        StoreError::ObjectNotFound(_) => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        StoreError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl S3Reader {
    fn size(&mut self) -> io::Result<u64> {
        if let Some(size) = self.size {
            return Ok(size);
        }
        let inner = self.inner.clone();
        let size = inner
            .runtime
            .block_on(inner.head_full(&self.full, &self.key))
            .map_err(to_io)?
            .size;
        self.size = Some(size);
        Ok(size)
    }

    fn fill(&mut self, size: u64) -> io::Result<()> {
        let sequential =
            self.pos == self.buffer_start + self.buffer.len() as u64 && !self.buffer.is_empty();
        self.ahead = if sequential {
            (self.ahead * 2).min(READ_AHEAD_MAX)
        } else {
            READ_AHEAD_MIN
        };
        let end = (self.pos + self.ahead).min(size);
        let inner = self.inner.clone();
        let bytes = inner
            .runtime
            .block_on(inner.get_range(&self.full, &self.key, self.pos..end))
            .map_err(to_io)?;
        if (bytes.len() as u64) < end - self.pos {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while being read", self.key),
            ));
        }
        self.buffer = bytes;
        self.buffer_start = self.pos;
        Ok(())
    }
}

impl Read for S3Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let size = self.size()?;
        if out.is_empty() || self.pos >= size {
            return Ok(0);
        }
        let buffered = self.buffer_start..self.buffer_start + self.buffer.len() as u64;
        if !buffered.contains(&self.pos) {
            self.fill(size)?;
        }
        let offset = (self.pos - self.buffer_start) as usize;
        let available = &self.buffer[offset..];
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for S3Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size()?.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_name_the_setting() {
        let c = S3Config::from_url("s3://media-bucket/tenant-a?endpoint=http://127.0.0.1:3900&region=garage&part_size_mib=16")
            .unwrap();
        assert_eq!(c.bucket, "media-bucket");
        assert_eq!(c.prefix, "tenant-a/");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(c.region, "garage");
        assert!(c.path_style, "custom endpoints default to path style");
        assert_eq!(c.part_size, 16 << 20);
        let aws = S3Config::from_url("s3://media-bucket?region=eu-west-1").unwrap();
        assert!(!aws.path_style && aws.endpoint.is_none() && aws.prefix.is_empty());

        for (url, needle) in [
            (
                "s3://AKIA:topsecret@bucket?endpoint=http://x",
                "credentials",
            ),
            ("s3://b?endpoint=http://x", "bucket name"),
            ("s3://bucket?endpoint=ftp://x", "endpoint"),
            ("s3://bucket?endpoint=http://u:pw@x", "endpoint"),
            ("s3://bucket?part_size_mib=1", "part_size_mib"),
            ("s3://bucket?path_style=maybe", "path_style"),
            ("s3://bucket?secret=x", "unknown parameter 'secret'"),
            ("s3://bucket/a%20b", "prefix"),
        ] {
            let e = S3Config::from_url(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(
                !e.contains("topsecret") && !e.contains(":pw@"),
                "{url} leaked a secret: {e}"
            );
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let mut c = S3Config::from_url("s3://bucket").unwrap();
        c.access_key_id = Some("GKexample".into());
        c.secret_access_key = Some("supersecretvalue".into());
        let shown = format!("{c:?}");
        assert!(shown.contains("GKexample") && !shown.contains("supersecretvalue"));
    }

    #[test]
    fn only_amz_meta_headers_are_stored() {
        let mut meta = ObjectMeta::new();
        meta.insert("x-amz-meta-x-amz-iv".into(), "abc".into());
        let user = to_user_metadata(&meta).unwrap();
        assert_eq!(user.get("x-amz-iv").map(String::as_str), Some("abc"));
        assert_eq!(from_user_metadata(Some(&user)), meta);
        meta.insert("content-type".into(), "x".into());
        assert!(to_user_metadata(&meta).is_err());
    }

    /// The Garage started by `scripts/services.sh`, under a fresh prefix, if the environment
    /// names it. `MEDIASEAL_REQUIRE_SERVICES=1` (set by `scripts/test.sh`) makes a missing one
    /// an error instead of a skip.
    async fn live_store(part_size_mib: usize) -> Option<S3ObjectStore> {
        let Ok(url) = std::env::var("MEDIASEAL_SCALE_OBJECTS") else {
            assert!(
                std::env::var("MEDIASEAL_REQUIRE_SERVICES").is_err(),
                "MEDIASEAL_REQUIRE_SERVICES is set but MEDIASEAL_SCALE_OBJECTS is not: source the env of scripts/services.sh"
            );
            eprintln!(
                "skipping: no S3 store (run scripts/services.sh start DIR and source DIR/env)"
            );
            return None;
        };
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let (base, query) = url.split_once('?').unwrap_or((&url, ""));
        let url = format!("{base}/t{nanos:x}?{query}&part_size_mib={part_size_mib}");
        let config = S3Config::from_url(&url).unwrap().with_env_credentials();
        Some(S3ObjectStore::connect(config).await.unwrap())
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    async fn write_object(store: &S3ObjectStore, key: &str, data: &[u8], meta: &ObjectMeta) -> u64 {
        let mut w = store.create(key).await.unwrap();
        for chunk in data.chunks(512 * 1024 + 7) {
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        w.finish(meta.clone()).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garage_small_and_multipart_objects_round_trip_with_headers() {
        let Some(store) = live_store(5).await else {
            return;
        };
        let mut meta = ObjectMeta::new();
        meta.insert("x-amz-meta-x-amz-key".into(), "d3JhcHBlZA==".into());
        meta.insert(
            "x-amz-meta-x-amz-unencrypted-content-length".into(),
            "12345".into(),
        );
        // One PUT (below a part), and a multipart upload of three parts (5 + 5 + 1 MiB).
        for (key, len) in [
            ("AC1/REsmall", 700 * 1024),
            ("AC1/RElarge", 11 * 1024 * 1024 + 3),
        ] {
            let data = pattern(len);
            let mut w = store.create(key).await.unwrap();
            w.write(Bytes::copy_from_slice(&data[..len / 2]))
                .await
                .unwrap();
            assert!(
                store.head(key).await.is_err(),
                "{key} visible before finish"
            );
            w.write(Bytes::copy_from_slice(&data[len / 2..]))
                .await
                .unwrap();
            assert_eq!(w.finish(meta.clone()).await.unwrap(), len as u64);
            let info = store.head(key).await.unwrap();
            assert_eq!((info.size, &info.meta), (len as u64, &meta), "{key}");
            let (whole, stream) = store.get(key, None).await.unwrap();
            assert_eq!(whole.meta, meta);
            let got: Vec<Bytes> = stream.map(|r| r.unwrap()).collect().await;
            assert_eq!(got.concat(), data, "{key}");
            let (info, stream) = store.get(key, Some(1000..70_000)).await.unwrap();
            assert_eq!(info.size, len as u64, "ranged get reports the whole size");
            let got: Vec<Bytes> = stream.map(|r| r.unwrap()).collect().await;
            assert_eq!(got.concat(), &data[1000..70_000]);
            let (_, empty) = store
                .get(key, Some(len as u64 + 10..len as u64 + 20))
                .await
                .unwrap();
            assert!(empty.collect::<Vec<_>>().await.is_empty());
            // Blocking random access, as the at-rest decryptor does it.
            let store2 = store.clone();
            let key2 = key.to_owned();
            let data2 = data.clone();
            tokio::task::spawn_blocking(move || {
                let mut r = store2.open_blocking(&key2).unwrap();
                assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), len as u64);
                let mut tail = [0u8; 100];
                r.seek(SeekFrom::End(-100)).unwrap();
                r.read_exact(&mut tail).unwrap();
                assert_eq!(&tail[..], &data2[len - 100..]);
                r.seek(SeekFrom::Start(3)).unwrap();
                let mut all = Vec::new();
                r.read_to_end(&mut all).unwrap();
                assert_eq!(all, &data2[3..]);
            })
            .await
            .unwrap();
        }
        let mut keys: Vec<String> = store
            .list("AC1/")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        assert_eq!(keys, ["AC1/RElarge", "AC1/REsmall"]);
        assert_eq!(
            store.abort_stale_uploads(Duration::ZERO).await.unwrap(),
            0,
            "finished uploads leave no upload open"
        );
        for key in ["AC1/REsmall", "AC1/RElarge"] {
            store.delete(key).await.unwrap();
            assert!(matches!(
                store.head(key).await,
                Err(StoreError::ObjectNotFound(_))
            ));
            store.delete(key).await.unwrap();
        }
        assert!(store.list("").await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garage_aborted_and_dropped_uploads_leave_nothing() {
        let Some(store) = live_store(5).await else {
            return;
        };
        let mut w = store.create("AC2/REaborted").await.unwrap();
        w.write(Bytes::from(pattern(6 << 20))).await.unwrap();
        w.abort().await;
        let mut w = store.create("AC2/REdropped").await.unwrap();
        w.write(Bytes::from(pattern(6 << 20))).await.unwrap();
        drop(w);
        let w = store.create("AC2/REempty").await.unwrap();
        drop(w);
        // The dropped writer aborts in the background.
        let mut open = usize::MAX;
        for _ in 0..50 {
            open = store.open_uploads().await.unwrap().len();
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(open, 0, "an upload stayed open");
        assert!(store.list("").await.unwrap().is_empty());
        // A crashed writer's upload is found and aborted by the stale-upload sweep.
        let id = store
            .inner
            .create_upload(
                &store.inner.full_key("AC2/REcrashed").unwrap(),
                "AC2/REcrashed",
                None,
            )
            .await
            .unwrap();
        assert!(!id.is_empty());
        assert_eq!(store.abort_stale_uploads(Duration::ZERO).await.unwrap(), 1);
    }

    /// A plain HTTP/1.1 GET on loopback: status, header block, body.
    async fn http_get(url: &str) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let u = url::Url::parse(url).unwrap();
        let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
        let mut conn = tokio::net::TcpStream::connect(&host).await.unwrap();
        let target = &url[url.find(u.path()).unwrap()..];
        conn.write_all(
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split + 2]).into_owned();
        let status = head[9..12].parse().unwrap();
        (status, head, raw[split + 4..].to_vec())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garage_presigned_get_serves_bytes_and_headers() {
        let Some(store) = live_store(8).await else {
            return;
        };
        let mut meta = ObjectMeta::new();
        meta.insert("x-amz-meta-x-amz-iv".into(), "aXY=".into());
        let data = pattern(4096);
        write_object(&store, "AC3/REpresigned", &data, &meta).await;
        let url = store
            .presign_get("AC3/REpresigned", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(
            !url.contains(&std::env::var("AWS_SECRET_ACCESS_KEY").unwrap()),
            "secret in a presigned URL"
        );
        let (status, headers, body) = http_get(&url).await;
        assert_eq!(status, 200, "{headers}");
        assert!(
            headers.contains("\r\nx-amz-meta-x-amz-iv: aXY=\r\n"),
            "{headers}"
        );
        assert_eq!(body, data);
        let (status, _, _) = http_get(&url.replace("REpresigned", "REpresigneX")).await;
        assert_eq!(status, 403, "a changed URL must not verify");
        store.delete("AC3/REpresigned").await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_credentials_and_buckets_fail_with_a_clear_error() {
        let Some(store) = live_store(8).await else {
            return;
        };
        drop(store);
        let url = std::env::var("MEDIASEAL_SCALE_OBJECTS").unwrap();
        let mut wrong = S3Config::from_url(&url).unwrap();
        wrong.access_key_id = Some("GK000000000000000000000000".into());
        wrong.secret_access_key = Some("00wrongsecret00".into());
        let e = S3ObjectStore::connect(wrong).await.unwrap_err().to_string();
        assert!(e.contains("object store s3://mediaseal"), "{e}");
        assert!(!e.contains("00wrongsecret00"), "{e}");
        let missing = S3Config::from_url(&url.replacen("s3://mediaseal", "s3://no-such-bucket", 1))
            .unwrap()
            .with_env_credentials();
        let e = S3ObjectStore::connect(missing)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-bucket"), "{e}");
        let mut nocreds = S3Config::from_url(&url).unwrap();
        nocreds.access_key_id = None;
        let e = S3ObjectStore::connect(nocreds)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
    }
}
