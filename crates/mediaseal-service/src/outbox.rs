//! Status callbacks: a durable outbox in the metadata store, delivered by a worker on every node,
//! signed with `X-Twilio-Signature`, retried with exponential backoff, and surviving restarts.
//!
//! Delivery is at least once; each callback carries its outbox id as `I-Twilio-Idempotency-Token`
//! so a receiver can drop the rare duplicate (a node dying between the receiver's 2xx and the
//! outbox update).

use std::collections::HashMap;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mediaseal_store::model::Callback;
use tokio::task::JoinSet;
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
    // Parsed once: the URL standard's parse normalises every spelling of an IP literal
    // (`127.1`, `2130706433`, `0x7f000001`), which the client connects to without asking the
    // resolver, so the policy is applied to literals here.
    let mut url = reqwest::Url::parse(&cb.url).map_err(|e| format!("bad URL: {e}"))?;
    services
        .config
        .webhook_policy
        .check_url(&url)
        .map_err(|e| format!("refused: {e}"))?;
    // `user:password@` in the URL becomes a Basic Authorization header (as on Twilio); the URL
    // with the credentials never reaches a log line or the recorded error.
    let request = if cb.method == "GET" {
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
            .post(url)
            .header("X-Twilio-Signature", sig)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let response = request
        .header("I-Twilio-Idempotency-Token", &cb.id)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", error_chain(&e.without_url())))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {}", response.status()))
    }
}

/// An error and its causes, `: `-separated: the cause (a refused address, a timeout, a refused
/// connection) is what an operator needs, and reqwest's own message alone does not say it.
/// Without the URL: it may carry credentials.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and reqwest repeat a cause in the next level's message; keep each once.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Polls the outbox until `cancel`, delivering what is due. Several nodes can run it at once:
/// leases keep them from taking the same callback.
///
/// Deliveries run independently: a slot that frees is refilled at once, up to
/// `callback_max_in_flight` on this node and `callback_max_in_flight_per_account` per account.
/// Callbacks are leased account by account, so the due callbacks of an account at its cap stay
/// unleased in the outbox (another node may take them) and never sit in front of another
/// account's.
pub async fn run(services: Services, cancel: CancellationToken) {
    let lease = Duration::from_secs(60).max(services.config.callback_timeout * 2);
    let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
    let global_cap = services.config.callback_max_in_flight.max(1);
    let account_cap = services.config.callback_max_in_flight_per_account.max(1);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut slots = Slots::default();
    while !cancel.is_cancelled() {
        // Reap what has finished without waiting, then refill the free slots.
        while let Some(done) = tasks.try_join_next_with_id() {
            slots.release(done);
        }
        let mut filled = false;
        if tasks.len() < global_cap {
            let now = services.now_us();
            let free = global_cap - tasks.len();
            match lease_round(&services, &slots, free, account_cap, now, now + lease_us).await {
                Ok(batch) => {
                    filled = batch.len() >= free;
                    for cb in batch {
                        let account = cb.account_sid.clone();
                        let services = services.clone();
                        let task = tasks.spawn(async move {
                            deliver_and_record(&services, cb).await;
                        });
                        slots.take(task.id(), account);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "outbox poll failed"),
            }
        }
        // Wait for a free slot or for the next poll; a full node waits for a slot only.
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => slots.release(done),
            () = tokio::time::sleep(services.config.callback_poll), if !filled => {}
        }
    }
    // Deliveries in progress get a moment to finish; the rest are abandoned, their leases run
    // out and another node (or this one after a restart) sends them again, with the same
    // idempotency token.
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            deliveries = tasks.len(),
            "callback deliveries abandoned at shutdown; they will be retried"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// How long deliveries in progress may finish after the outbox is cancelled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Deliveries in flight on this node, per account.
#[derive(Debug, Default)]
struct Slots {
    by_task: HashMap<tokio::task::Id, String>,
    by_account: HashMap<String, usize>,
}

impl Slots {
    fn take(&mut self, task: tokio::task::Id, account: String) {
        *self.by_account.entry(account.clone()).or_default() += 1;
        self.by_task.insert(task, account);
    }

    /// Frees the slot of a finished delivery (by task id, so a delivery that panicked frees its
    /// slot too).
    fn release(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                tracing::error!(error = %e, "a callback delivery task failed");
                e.id()
            }
        };
        let Some(account) = self.by_task.remove(&id) else {
            return;
        };
        if let Some(n) = self.by_account.get_mut(&account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_account.remove(&account);
            }
        }
    }

    fn of(&self, account: &str) -> usize {
        self.by_account.get(account).copied().unwrap_or(0)
    }
}

/// Leases up to `free` due callbacks, account by account, the longest-waiting account first,
/// each account up to its free slots.
async fn lease_round(
    services: &Services,
    slots: &Slots,
    free: usize,
    account_cap: usize,
    now: i64,
    lease_until: i64,
) -> Result<Vec<Callback>, mediaseal_store::StoreError> {
    // Saturated accounts are skipped below; ask for enough accounts that `free` others remain.
    let saturated = slots
        .by_account
        .values()
        .filter(|n| **n >= account_cap)
        .count();
    let want = i64::try_from(free + saturated).unwrap_or(i64::MAX);
    let accounts = services.meta.accounts_with_due_callbacks(now, want).await?;
    let mut leased = Vec::new();
    for account in accounts {
        let room = account_cap.saturating_sub(slots.of(&account));
        let room = room.min(free - leased.len());
        if room == 0 {
            if leased.len() >= free {
                break;
            }
            continue;
        }
        let batch = services
            .meta
            .lease_due_callbacks_of(
                &services.config.node_id,
                &account,
                now,
                lease_until,
                i64::try_from(room).unwrap_or(i64::MAX),
            )
            .await?;
        leased.extend(batch);
    }
    Ok(leased)
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
