//! Serving stored media: sealed bytes as they are, or at-rest objects decrypted on the fly, with
//! single-range HTTP Range support, and MP3 transcoding through ffmpeg over pipes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use mediaseal_crypto::PrivateKey;
use mediaseal_crypto::native::NativeReader;
use mediaseal_store::ObjectStore;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// Bytes per chunk streamed to the client from a blocking reader.
const CHUNK: usize = 256 * 1024;

/// An inclusive byte range, resolved against a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    fn len(self) -> u64 {
        self.end - self.start + 1
    }
}

/// A `Range` header that no byte of the object satisfies: the answer is 416.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Reads a `Range: bytes=…` header. `Ok(None)` means "serve everything" (no header, or one this
/// server does not honour such as several ranges); `Err` means 416.
pub fn parse_range(headers: &HeaderMap, len: u64) -> Result<Option<ByteRange>, Unsatisfiable> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || len == 0 {
            return Err(Unsatisfiable);
        }
        ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        }
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(Unsatisfiable);
        }
        ByteRange { start, end }
    };
    Ok(Some(range))
}

/// The response head for a full or partial body.
pub fn response_head(
    status_range: Option<ByteRange>,
    len: u64,
    content_type: &str,
) -> axum::http::response::Builder {
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-store");
    match status_range {
        Some(r) => {
            builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{len}", r.start, r.end),
                )
                .header(header::CONTENT_LENGTH, r.len());
        }
        None => {
            builder = builder
                .status(StatusCode::OK)
                .header(header::CONTENT_LENGTH, len);
        }
    }
    builder
}

/// 416 for a range outside the object.
pub fn range_not_satisfiable(len: u64) -> Response {
    Response::builder()
        .status(StatusCode::RANGE_NOT_SATISFIABLE)
        .header(header::CONTENT_RANGE, format!("bytes */{len}"))
        .body(Body::empty())
        .unwrap_or_default()
}

/// Serves the stored (sealed) bytes of `key`, honouring Range. `extra` headers are added.
pub async fn serve_stored(
    objects: &dyn ObjectStore,
    key: &str,
    headers: &HeaderMap,
    content_type: &str,
    extra: &[(String, String)],
) -> Result<Response, ApiError> {
    let info = objects.head(key).await?;
    let Ok(range) = parse_range(headers, info.size) else {
        return Ok(range_not_satisfiable(info.size));
    };
    let (_, stream) = objects.get(key, range.map(|r| r.start..r.end + 1)).await?;
    let mut builder = response_head(range, info.size, content_type);
    for (k, v) in extra {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}

/// Serves the plaintext of an at-rest (native) object, decrypting only the segments the range
/// touches. Plaintext exists only in memory on its way to the client.
pub async fn serve_at_rest(
    objects: Arc<dyn ObjectStore>,
    key: String,
    at_rest: Arc<PrivateKey>,
    headers: &HeaderMap,
    content_type: &str,
) -> Result<Response, ApiError> {
    // Opening reads the header and measures the object; failures here become a clean 500.
    let opened = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let raw = objects.open_blocking(&key)?;
        NativeReader::new(raw, &at_rest).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)??;
    let len = opened.len();
    let Ok(range) = parse_range(headers, len) else {
        return Ok(range_not_satisfiable(len));
    };
    let (start, count) = range.map_or((0, len), |r| (r.start, r.len()));
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = opened;
        if let Err(e) = reader.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut remaining = count;
        while remaining > 0 {
            let mut buf = vec![0u8; CHUNK.min(remaining as usize)];
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    remaining -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "at-rest object failed authentication while streaming");
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let stream = tokio_stream_from(rx);
    response_head(range, len, content_type)
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}

/// Transcodes an at-rest WAV to MP3 with ffmpeg, plaintext flowing only through pipes.
pub async fn serve_at_rest_mp3(
    objects: Arc<dyn ObjectStore>,
    key: String,
    at_rest: Arc<PrivateKey>,
    ffmpeg: PathBuf,
) -> Result<Response, ApiError> {
    let mut child = Command::new(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-i",
            "pipe:0",
            "-f",
            "mp3",
            "-b:a",
            "64k",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(ApiError::internal)?;
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(ApiError::internal("ffmpeg pipes missing"));
    };
    tokio::task::spawn_blocking(move || {
        let result = (|| -> Result<(), String> {
            let raw = objects.open_blocking(&key).map_err(|e| e.to_string())?;
            let mut reader = NativeReader::new(raw, &at_rest).map_err(|e| e.to_string())?;
            std::io::copy(&mut reader, &mut stdin).map_err(|e| e.to_string())?;
            stdin.flush().map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "feeding ffmpeg stopped");
        }
    });
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "audio/mpeg")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .map_err(ApiError::internal)
}

fn tokio_stream_from(
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
) -> futures::stream::BoxStream<'static, std::io::Result<Bytes>> {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(&HeaderMap::new(), 10), Ok(None));
        assert_eq!(
            parse_range(&h("bytes=0-3"), 10),
            Ok(Some(ByteRange { start: 0, end: 3 }))
        );
        assert_eq!(
            parse_range(&h("bytes=5-"), 10),
            Ok(Some(ByteRange { start: 5, end: 9 }))
        );
        assert_eq!(
            parse_range(&h("bytes=-4"), 10),
            Ok(Some(ByteRange { start: 6, end: 9 }))
        );
        assert_eq!(
            parse_range(&h("bytes=8-100"), 10),
            Ok(Some(ByteRange { start: 8, end: 9 }))
        );
        assert_eq!(parse_range(&h("bytes=10-"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(&h("bytes=4-2"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(&h("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(&h("items=0-1"), 10), Ok(None));
        assert_eq!(parse_range(&h("bytes=x-1"), 10), Err(Unsatisfiable));
    }
}
