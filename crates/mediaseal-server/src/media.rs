//! Serving stored media: sealed bytes as they are, or at-rest objects decrypted on the fly, with
//! single-range HTTP Range support, and MP3 transcoding through ffmpeg over pipes.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use mediaseal_readback::AtRestReader;
use mediaseal_store::ObjectStore;
use tokio::sync::mpsc;

use crate::error::ApiError;

pub use mediaseal_wire::range::{ByteRange, Unsatisfiable};

/// Reads a `Range: bytes=…` header. `Ok(None)` means "serve everything" (no header, or one this
/// server does not honour such as several ranges); `Err` means 416.
pub fn parse_range(headers: &HeaderMap, len: u64) -> Result<Option<ByteRange>, Unsatisfiable> {
    let value = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    mediaseal_wire::range::parse_range(value, len)
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
/// touches as the object store streams them. Plaintext exists only in memory on its way to the
/// client, and only once its segment authenticated.
pub async fn serve_at_rest(
    reader: &AtRestReader,
    key: &str,
    headers: &HeaderMap,
    content_type: &str,
) -> Result<Response, ApiError> {
    // Opening reads the header and measures the object; failures here become a clean 500.
    let object = reader.unlock(key).await.map_err(ApiError::internal)?;
    let len = object.len();
    let Ok(range) = parse_range(headers, len) else {
        return Ok(range_not_satisfiable(len));
    };
    let (start, end) = range.map_or((0, len), |r| (r.start, r.end + 1));
    let stream = reader
        .stream(&object, start..end)
        .await
        .map_err(ApiError::internal)?;
    response_head(range, len, content_type)
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}

/// Transcodes an at-rest WAV to MP3 with ffmpeg, plaintext flowing only through pipes.
pub async fn serve_at_rest_mp3(
    reader: AtRestReader,
    key: String,
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
            let mut plain = reader.open_blocking(&key).map_err(|e| e.to_string())?;
            std::io::copy(&mut plain, &mut stdin).map_err(|e| e.to_string())?;
            stdin.flush().map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "feeding ffmpeg stopped");
        }
    });
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        let _ = child.kill();
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    let _ = child.kill();
                    break;
                }
            }
        }
        // A transcoder that gave up part-way must not pass for a complete file: the response
        // then ends with an error instead of a clean end of stream.
        match child.wait() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(format!(
                    "ffmpeg stopped transcoding ({status})"
                ))));
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    // The status goes out only once the transcoder has produced audio: an undecodable
    // recording gets an error, not a 200 with an empty body.
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "MP3 transcoding failed before any output");
            return Err(not_transcodable());
        }
        None => return Err(not_transcodable()),
    };
    let rest = tokio_stream_from(rx);
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "audio/mpeg")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from_stream(body))
        .map_err(ApiError::internal)
}

fn not_transcodable() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        20422,
        "the recording's audio could not be transcoded to MP3 (it is not audio ffmpeg can \
         decode); download the .wav instead, which is served exactly as it was stored",
    )
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
