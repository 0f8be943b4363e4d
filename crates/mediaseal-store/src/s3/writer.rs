//! Writing: one `PutObject` for an object smaller than a part, a multipart upload (two parts in
//! flight) for a larger one, and the self-copy that sets a multipart object's headers.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::{CONTENT_TYPE, Inner, sdk_error, to_user_metadata};
use crate::error::StoreError;
use crate::meta::StoreResult;
use crate::objects::{ObjectMeta, ObjectWriter};

/// The largest object `CopyObject` accepts; larger ones are re-headed with a multipart copy.
const MAX_SINGLE_COPY: u64 = 5 << 30;
/// Range size of one `UploadPartCopy`.
const COPY_PART: u64 = 1 << 30;
/// Part uploads running at once per writer: one on the wire while the next fills.
const PARTS_IN_FLIGHT: usize = 2;
/// S3's lower bound on every part but the last.
pub(super) const MIN_PART: usize = 5 << 20;

impl Inner {
    /// Sets `meta` on the finished object `full` of `size` bytes by copying it onto itself.
    pub(super) async fn replace_metadata(
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

    pub(super) async fn create_upload(
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

    pub(super) async fn complete_upload(
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

    pub(super) async fn abort_upload(&self, full: &str, id: &str) {
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

/// A multipart upload under way.
struct Upload {
    id: String,
    parts: Vec<CompletedPart>,
    in_flight: JoinSet<StoreResult<CompletedPart>>,
    next_part: i32,
}

/// Buffers one part; sends it with a single PUT at `finish`, or starts a multipart upload once
/// the object outgrows it.
pub(super) struct S3Writer {
    inner: Arc<Inner>,
    full: String,
    key: String,
    buffer: Vec<u8>,
    written: u64,
    upload: Option<Upload>,
}

impl S3Writer {
    pub(super) fn new(inner: Arc<Inner>, full: String, key: &str) -> Self {
        Self {
            inner,
            full,
            key: key.to_owned(),
            buffer: Vec::new(),
            written: 0,
            upload: None,
        }
    }

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
            let request = inner
                .client
                .upload_part()
                .bucket(&inner.bucket)
                .key(&full)
                .upload_id(&id)
                .part_number(number)
                .body(SdkByteStream::from(body));
            let out = if inner.unsigned_payload {
                request.customize().disable_payload_signing().send().await
            } else {
                request.send().await
            }
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
        let request = inner
            .client
            .put_object()
            .bucket(&inner.bucket)
            .key(&self.full)
            .content_type(CONTENT_TYPE)
            .set_metadata((!meta.is_empty()).then_some(meta))
            .body(SdkByteStream::from(body));
        // Unsigned where the transport protects the body (S3Config::signs_payload says why).
        if inner.unsigned_payload {
            request.customize().disable_payload_signing().send().await
        } else {
            request.send().await
        }
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
