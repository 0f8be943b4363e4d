//! `media_properties.media_url`: a transcript's audio fetched over HTTP(S), into memory only.
//!
//! The URL is the customer's, so it goes where webhooks may go and nowhere else: the webhook
//! egress policy is checked on the literal host when the transcript is requested, and on every
//! resolved address when the job connects (the [`GuardedResolver`]), so a name pointing at a
//! private address is refused at the moment it would be fetched. Redirects are not followed
//! (each hop would need the same checks; the customer can give the final URL). The body is read
//! into one buffer, refused beyond [`MAX_URL_AUDIO`], and wiped when dropped; nothing touches a
//! file. Error messages never repeat the URL, which may carry a credential in its query.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mediaseal_intelligence::transcripts::AudioSource;
use mediaseal_service::egress::{GuardedResolver, WebhookPolicy};
use zeroize::Zeroizing;

/// Largest audio fetched from a `media_url`.
pub(crate) const MAX_URL_AUDIO: u64 = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole download, so a slow sender cannot hold a job for ever.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);
/// The first buffer when the sender announces no length.
const FIRST_BUFFER: usize = 1 << 20;

/// Fetches `media_url`s through the egress policy.
#[derive(Debug, Clone)]
pub(crate) struct UrlSource {
    client: reqwest::Client,
    policy: WebhookPolicy,
}

impl UrlSource {
    pub(crate) fn new(policy: WebhookPolicy) -> Self {
        // The client's TLS needs the process's provider (`AppState::new` installs it too).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "mediaseal-intelligence/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .unwrap_or_default();
        Self { client, policy }
    }

    /// The URL, if it can be fetched at all: `http(s)`, a host, and not a literal address (or
    /// `localhost`) the policy refuses. Names are checked when resolved.
    pub(crate) fn check(&self, url: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| format!("media_properties.media_url is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(
                "media_properties.media_url must be an http:// or https:// URL with a host"
                    .to_owned(),
            );
        }
        self.policy
            .check_url(&url)
            .map_err(|e| format!("media_properties.media_url cannot be fetched: {e}"))?;
        Ok(url)
    }
}

/// `e` and its causes, without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[async_trait]
impl AudioSource for UrlSource {
    async fn read_all(&self, url: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, String> {
        let limit = limit.min(MAX_URL_AUDIO);
        let too_large = || {
            format!("the media URL holds more than the {limit} bytes a transcript can be made of")
        };
        let url = self.check(url)?;
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("the media URL could not be fetched: {}", describe(e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "the media URL answered with a redirect (HTTP {}), which is not followed; give the final URL",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            return Err(format!("the media URL answered HTTP {}", status.as_u16()));
        }
        let announced = response.content_length();
        if announced.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        let first = announced
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(FIRST_BUFFER)
            .min(limit_usize);
        let mut out = Zeroizing::new(Vec::with_capacity(first));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the media URL's body could not be read: {}", describe(e)))?
        {
            let needed = out.len() + chunk.len();
            if needed > limit_usize {
                return Err(too_large());
            }
            if needed > out.capacity() {
                // Grown by hand: a reallocating `Vec` would leave the old buffer unwiped.
                let mut bigger = Zeroizing::new(Vec::with_capacity(
                    needed.max(out.capacity() * 2).min(limit_usize),
                ));
                bigger.extend_from_slice(&out);
                out = bigger;
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use mediaseal_service::egress::parse_network;

    /// A server on loopback: `/small` (100 bytes), `/big` (10,000 bytes with a length),
    /// `/stream` (10,000 bytes without one), `/moved` (a redirect), `/gone` (404).
    async fn origin() -> String {
        let app = Router::new()
            .route("/small", get(|| async { vec![7u8; 100] }))
            .route("/big", get(|| async { vec![7u8; 10_000] }))
            .route(
                "/stream",
                get(|| async {
                    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![7u8; 1000]));
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                "/moved",
                get(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "/small")]).into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn loopback_allowed() -> UrlSource {
        UrlSource::new(WebhookPolicy::allowing([
            parse_network("127.0.0.0/8").unwrap()
        ]))
    }

    #[tokio::test]
    async fn fetches_into_memory_within_the_limit() {
        let base = origin().await;
        let source = loopback_allowed();
        let body = source
            .read_all(&format!("{base}/small"), 1000)
            .await
            .unwrap();
        assert_eq!(body.as_slice(), [7u8; 100]);
        let body = source
            .read_all(&format!("{base}/stream"), 20_000)
            .await
            .unwrap();
        assert_eq!(body.len(), 10_000);

        // Too large, announced or not.
        for path in ["/big", "/stream"] {
            let e = source
                .read_all(&format!("{base}{path}"), 5000)
                .await
                .unwrap_err();
            assert!(e.contains("more than the 5000 bytes"), "{path}: {e}");
        }
        let e = source
            .read_all(&format!("{base}/moved"), 1000)
            .await
            .unwrap_err();
        assert!(e.contains("redirect (HTTP 302)"), "{e}");
        let e = source
            .read_all(&format!("{base}/gone"), 1000)
            .await
            .unwrap_err();
        assert_eq!(e, "the media URL answered HTTP 404");
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allowed() {
        let base = origin().await;
        let strict = UrlSource::new(WebhookPolicy::strict());
        let e = strict.check(&format!("{base}/small")).unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        let e = strict
            .read_all(&format!("{base}/small"), 1000)
            .await
            .unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        let port = base.rsplit(':').next().unwrap();
        let e = strict
            .check(&format!("http://localhost:{port}/small"))
            .unwrap_err();
        assert!(e.contains("names this machine"), "{e}");
        // A fetch that fails does not repeat the URL, which may carry a credential. (Names that
        // resolve to refused addresses are the `GuardedResolver`'s, tested with it.)
        let e = strict
            .read_all(
                &format!("http://127.0.0.1.nip.invalid:{port}/small?token=secret"),
                1000,
            )
            .await
            .unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(strict.check("ftp://example.com/a.wav").is_err());
        assert!(strict.check("not a url").is_err());
    }
}
