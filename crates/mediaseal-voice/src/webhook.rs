//! Webhooks over HTTP(S): form-encoded parameters, signed with `X-Twilio-Signature`, as
//! Twilio sends them; and audio downloads for `<Play>`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mediaseal_call::{FetchFailure, WebhookRequest};
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

impl HttpWebhooks {
    /// Webhooks sent with `client`, signed with the tokens from `tokens`.
    pub fn new(client: reqwest::Client, tokens: Arc<dyn AuthTokens>) -> Self {
        Self { client, tokens }
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
    client: &reqwest::Client,
    url: &Url,
    limit: usize,
) -> Result<Vec<u8>, FetchFailure> {
    let response = client
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
