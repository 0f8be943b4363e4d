//! Status callbacks: a durable outbox in the metadata store, delivered by a worker on every node,
//! signed with `X-Twilio-Signature`, retried with exponential backoff, and surviving restarts.
//!
//! Delivery is at least once; each callback carries its outbox id as `I-Twilio-Idempotency-Token`
//! so a receiver can drop the rare duplicate (a node dying between the receiver's 2xx and the
//! outbox update).

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mediaseal_store::model::Callback;
use tokio_util::sync::CancellationToken;

use crate::Services;
use crate::sid::new_sid;

/// A new pending callback, due now.
pub fn new_callback(
    services: &Services,
    account_sid: &str,
    resource_sid: &str,
    url: &str,
    method: &str,
    params: &[(String, String)],
) -> Callback {
    let now = services.now_us();
    Callback {
        id: new_sid("CB"),
        account_sid: account_sid.to_owned(),
        resource_sid: resource_sid.to_owned(),
        url: url.to_owned(),
        method: method.to_owned(),
        params: serde_json::to_string(params).unwrap_or_else(|_| "[]".to_owned()),
        attempts: 0,
        next_attempt_at: now,
        state: "pending".to_owned(),
        last_error: None,
        created_at: now,
        delivered_at: None,
    }
}

/// `X-Twilio-Signature` of a request to `url` with form `params` (twilio-api.md §2.2): the URL,
/// then each distinct parameter name in order with each of its distinct values in order,
/// HMAC-SHA1 keyed with the auth token, base64.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut data = url.to_owned();
    for name in names {
        let mut values: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort_unstable();
        values.dedup();
        for v in values {
            data.push_str(name);
            data.push_str(v);
        }
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    STANDARD.encode(hmac::sign(&key, data.as_bytes()).as_ref())
}

fn backoff(services: &Services, attempts: i64) -> Duration {
    let base = services.config.callback_retry_base;
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(2u32.saturating_pow(exp.saturating_sub(1)))
        .min(services.config.callback_retry_cap)
}

/// Delivers one callback; `Err` carries the reason to record.
async fn deliver(services: &Services, cb: &Callback) -> Result<(), String> {
    let params: Vec<(String, String)> =
        serde_json::from_str(&cb.params).map_err(|e| format!("corrupt params: {e}"))?;
    let account = services
        .meta
        .account(&cb.account_sid)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the account no longer exists".to_owned())?;
    let request = if cb.method == "GET" {
        let mut url = reqwest::Url::parse(&cb.url).map_err(|e| format!("bad URL: {e}"))?;
        url.query_pairs_mut().extend_pairs(params.iter());
        // For GET the signature covers the full URL with the query and no body parameters.
        let sig = signature(&account.auth_token, url.as_str(), &[]);
        services.http.get(url).header("X-Twilio-Signature", sig)
    } else {
        let sig = signature(&account.auth_token, &cb.url, &params);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        services
            .http
            .post(&cb.url)
            .header("X-Twilio-Signature", sig)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let response = request
        .header("I-Twilio-Idempotency-Token", &cb.id)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {}", response.status()))
    }
}

/// Polls the outbox until `cancel`, delivering what is due. Several nodes can run it at once:
/// leases keep them from taking the same callback.
pub async fn run(services: Services, cancel: CancellationToken) {
    let lease = Duration::from_secs(60).max(services.config.callback_timeout * 2);
    while !cancel.is_cancelled() {
        let now = services.now_us();
        let due = services
            .meta
            .lease_due_callbacks(
                &services.config.node_id,
                now,
                now + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2),
                32,
            )
            .await;
        match due {
            Ok(batch) if !batch.is_empty() => {
                let mut tasks = tokio::task::JoinSet::new();
                for cb in batch {
                    let services = services.clone();
                    tasks.spawn(async move { deliver_and_record(&services, cb).await });
                }
                while tasks.join_next().await.is_some() {}
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox poll failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(services.config.callback_poll) => {}
        }
    }
}

async fn deliver_and_record(services: &Services, cb: Callback) {
    match deliver(services, &cb).await {
        Ok(()) => {
            metrics::counter!("mediaseal_callbacks_delivered_total").increment(1);
            tracing::info!(callback = %cb.id, resource = %cb.resource_sid, attempt = cb.attempts + 1, "callback delivered");
            if let Err(e) = services
                .meta
                .mark_delivered(&cb.id, services.now_us())
                .await
            {
                tracing::error!(callback = %cb.id, error = %e, "delivered callback could not be marked");
            }
        }
        Err(reason) => {
            let attempts = cb.attempts + 1;
            let give_up = attempts >= services.config.callback_max_attempts;
            let next = services.now_us()
                + i64::try_from(backoff(services, attempts).as_micros()).unwrap_or(i64::MAX / 2);
            metrics::counter!("mediaseal_callbacks_failed_attempts_total").increment(1);
            tracing::warn!(callback = %cb.id, resource = %cb.resource_sid, attempt = attempts, give_up, reason = %reason, "callback delivery failed");
            if let Err(e) = services
                .meta
                .mark_attempt_failed(&cb.id, attempts, next, &reason, give_up)
                .await
            {
                tracing::error!(callback = %cb.id, error = %e, "failed attempt could not be recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn twilio_signature_vectors() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let repeated = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            signature("12345", url, &repeated),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }
}
