//! Webhooks over HTTP(S): form-encoded parameters, signed with `X-Twilio-Signature`, as
//! Twilio sends them; and audio downloads for `<Play>`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mediaseal_call::{FetchFailure, WebhookRequest};
use mediaseal_service::egress::{GuardedResolver, WebhookPolicy};
use mediaseal_service::outbox::signature;
use mediaseal_twiml::HttpMethod;
use url::Url;

use crate::seams::{AuthTokens, Webhooks};

/// Twilio's error for an HTTP error status from the application.
pub const HTTP_RETRIEVAL_FAILURE: u16 = 11200;
/// Twilio's error for a connection that failed or timed out.
pub const HTTP_CONNECTION_FAILURE: u16 = 11205;
/// Twilio's error for a body over the limit.
pub const BODY_TOO_LARGE: u16 = 11750;

/// Largest TwiML body read (the parser refuses more than 64 KiB anyway, with 11750).
const MAX_TWIML_BYTES: usize = 256 * 1024;

/// Sends signed webhooks with reqwest.
#[derive(Clone)]
pub struct HttpWebhooks {
    client: reqwest::Client,
    tokens: Arc<dyn AuthTokens>,
    policy: Option<WebhookPolicy>,
}

impl std::fmt::Debug for HttpWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhooks").finish_non_exhaustive()
    }
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("could not build the webhook HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// An HTTP client for webhooks and `<Play>` downloads: rustls on aws-lc-rs, system roots,
/// `timeout` per request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    crate::tls::install_default_provider();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("mediaseal-voice/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()?)
}

/// [`http_client`], and when `policy` is given, names resolved through it (refused ranges
/// dropped at connect time, so DNS rebinding gains nothing) and no redirects.
pub fn http_client_guarded(
    timeout: Duration,
    policy: Option<&WebhookPolicy>,
) -> Result<reqwest::Client, ClientError> {
    let Some(policy) = policy else {
        return http_client(timeout);
    };
    crate::tls::install_default_provider();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("mediaseal-voice/", env!("CARGO_PKG_VERSION")))
        // A redirect to an IP literal would skip the resolver's check.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
        .build()?)
}

/// Whether `url` may be requested under `policy`: an IP-literal host (which the resolver never
/// sees) or `localhost` is checked here. Refusals are logged with the host only.
fn destination_allowed(policy: Option<&WebhookPolicy>, url: &Url) -> bool {
    match policy.map(|p| p.check_url(url)) {
        Some(Err(e)) => {
            tracing::warn!(host = url.host_str().unwrap_or_default(), error = %e, "webhook destination refused");
            false
        }
        _ => true,
    }
}

/// The client for `<Play>` downloads with the policy its literal destinations are checked
/// against.
#[derive(Debug, Clone)]
pub struct AudioClient {
    client: reqwest::Client,
    policy: Option<WebhookPolicy>,
}

impl AudioClient {
    /// Downloads with `client`, refusing literal destinations `policy` refuses.
    pub fn new(client: reqwest::Client, policy: Option<WebhookPolicy>) -> Self {
        Self { client, policy }
    }
}

impl HttpWebhooks {
    /// Webhooks sent with `client`, signed with the tokens from `tokens`.
    pub fn new(client: reqwest::Client, tokens: Arc<dyn AuthTokens>) -> Self {
        Self {
            client,
            tokens,
            policy: None,
        }
    }

    /// Refuses literal destinations (`action`, `<Redirect>` and fallback URLs given as IP
    /// addresses) that `policy` refuses; names are checked by the client's resolver
    /// ([`http_client_guarded`]).
    #[must_use]
    pub fn with_policy(mut self, policy: WebhookPolicy) -> Self {
        self.policy = Some(policy);
        self
    }
}

fn form(params: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

#[async_trait]
impl Webhooks for HttpWebhooks {
    async fn send(&self, request: &WebhookRequest) -> Result<Vec<u8>, FetchFailure> {
        if !destination_allowed(self.policy.as_ref(), &request.url) {
            return Err(FetchFailure {
                code: HTTP_CONNECTION_FAILURE,
            });
        }
        let token = self
            .tokens
            .auth_token(&request.account_sid)
            .await
            .ok_or(FetchFailure {
                code: HTTP_RETRIEVAL_FAILURE,
            })?;
        let builder = match request.method {
            HttpMethod::Post => {
                let sig = signature(&token, request.url.as_str(), &request.params);
                self.client
                    .post(request.url.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("X-Twilio-Signature", sig)
                    .body(form(&request.params))
            }
            HttpMethod::Get => {
                let mut url = request.url.clone();
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in &request.params {
                        q.append_pair(k, v);
                    }
                }
                let sig = signature(&token, url.as_str(), &[]);
                self.client.get(url).header("X-Twilio-Signature", sig)
            }
        };
        let response = builder.send().await.map_err(|_| FetchFailure {
            code: HTTP_CONNECTION_FAILURE,
        })?;
        if !response.status().is_success() {
            return Err(FetchFailure {
                code: HTTP_RETRIEVAL_FAILURE,
            });
        }
        read_limited(response, MAX_TWIML_BYTES).await
    }
}

async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchFailure> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(FetchFailure {
                        code: BODY_TOO_LARGE,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(_) => {
                return Err(FetchFailure {
                    code: HTTP_CONNECTION_FAILURE,
                });
            }
        }
    }
}

/// Downloads `<Play>` audio (at most `limit` bytes).
pub async fn fetch_audio(
    client: &AudioClient,
    url: &Url,
    limit: usize,
) -> Result<Vec<u8>, FetchFailure> {
    if !destination_allowed(client.policy.as_ref(), url) {
        return Err(FetchFailure {
            code: HTTP_CONNECTION_FAILURE,
        });
    }
    let response = client
        .client
        .get(url.clone())
        .send()
        .await
        .map_err(|_| FetchFailure {
            code: HTTP_CONNECTION_FAILURE,
        })?;
    if !response.status().is_success() {
        return Err(FetchFailure {
            code: HTTP_RETRIEVAL_FAILURE,
        });
    }
    read_limited(response, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_internal_destinations_are_refused_before_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/prompt.wav",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let strict = WebhookPolicy::strict();
        let client = AudioClient::new(
            http_client_guarded(Duration::from_secs(2), Some(&strict)).unwrap(),
            Some(strict),
        );
        let refused = fetch_audio(&client, &url, 1024).await.unwrap_err();
        assert_eq!(refused.code, HTTP_CONNECTION_FAILURE);
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "the refused download still connected");

        // The allow-list admits an on-premises receiver.
        let loopback = mediaseal_service::egress::parse_network("127.0.0.0/8").unwrap();
        let allowing = WebhookPolicy::allowing([loopback]);
        let client = AudioClient::new(
            http_client_guarded(Duration::from_secs(2), Some(&allowing)).unwrap(),
            Some(allowing),
        );
        let fetch = tokio::spawn(async move { fetch_audio(&client, &url, 1024).await });
        let (stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("the allowed download connected")
            .unwrap();
        drop(stream);
        let _ = fetch.await;
    }
}
