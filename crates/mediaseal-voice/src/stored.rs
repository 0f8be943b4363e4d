//! The seams on the metadata store: SIP Domains with the addresses and credentials of their
//! mapped lists ([`StoreDirectory`]), accounts' auth tokens ([`StoreTokens`]), and the call
//! ledger that keeps the Calls resource and queues call status callbacks ([`StoreLedger`]; it
//! also logs and counts like [`LoggingLedger`]).
//!
//! Credentials are stored with their passwords sealed (see
//! `mediaseal_service::sip_passwords`): the HA1 for the domain's realm is derived here, per
//! lookup, and the password lives only in a [`zeroize::Zeroizing`] buffer meanwhile.

use std::sync::Arc;

use async_trait::async_trait;
use mediaseal_call::{CallUpdate, Domain, DomainCredential, IpRange};
use mediaseal_service::Services;
use mediaseal_service::calls::CallStatusCallback;
use mediaseal_service::sip_passwords::SipPasswordKey;
use mediaseal_sip::auth::Ha1Set;
use mediaseal_store::MetadataStore;
use mediaseal_store::model::{CallChange, CallDirection, CallStatus, SipDomain};
use mediaseal_twiml::HttpMethod;
use url::Url;
use zeroize::Zeroizing;

use crate::seams::{AuthTokens, CallLedger, DirectoryError, DomainDirectory};

/// SIP Domains from the metadata store.
#[derive(Clone)]
pub struct StoreDirectory {
    meta: Arc<dyn MetadataStore>,
    passwords: Arc<SipPasswordKey>,
}

impl std::fmt::Debug for StoreDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDirectory")
            .field("backend", &self.meta.backend())
            .finish_non_exhaustive()
    }
}

impl StoreDirectory {
    /// Domains from `meta`; passwords opened with `passwords`.
    pub fn new(meta: Arc<dyn MetadataStore>, passwords: Arc<SipPasswordKey>) -> Self {
        Self { meta, passwords }
    }
}

fn method(stored: &str) -> HttpMethod {
    if stored.eq_ignore_ascii_case("GET") {
        HttpMethod::Get
    } else {
        HttpMethod::Post
    }
}

/// A stored URL; one that no longer parses (it was checked when stored) is left out, logged.
fn url(domain: &SipDomain, field: &str, stored: Option<&str>) -> Option<Url> {
    let raw = stored?;
    match Url::parse(raw) {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::warn!(domain = %domain.sid, field, error = %e, "a stored SIP domain URL does not parse; ignored");
            None
        }
    }
}

#[async_trait]
impl DomainDirectory for StoreDirectory {
    async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>, DirectoryError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(d) = self
            .meta
            .sip_domain_by_name(&name)
            .await
            .map_err(|e| DirectoryError(e.to_string()))?
        else {
            return Ok(None);
        };
        let auth = self
            .meta
            .sip_domain_auth(&d.sid)
            .await
            .map_err(|e| DirectoryError(e.to_string()))?;
        let mut ip_ranges = Vec::with_capacity(auth.ip_addresses.len());
        for a in &auth.ip_addresses {
            match format!("{}/{}", a.ip_address, a.cidr_prefix_length).parse::<IpRange>() {
                Ok(r) => ip_ranges.push(r),
                Err(e) => {
                    tracing::warn!(address = %a.sid, error = %e, "a stored IP address does not parse; ignored")
                }
            }
        }
        let credentials = self.digest_credentials(&auth.credentials, &d.domain_name);
        // Only a domain with SipRegistration lets anyone register; its lists are not opened
        // otherwise.
        let registration_credentials = if d.sip_registration {
            self.digest_credentials(&auth.registration_credentials, &d.domain_name)
        } else {
            Vec::new()
        };
        Ok(Some(Domain {
            voice_url: url(&d, "voice_url", d.voice_url.as_deref()),
            voice_method: method(&d.voice_method),
            voice_fallback_url: url(&d, "voice_fallback_url", d.voice_fallback_url.as_deref()),
            voice_fallback_method: method(&d.voice_fallback_method),
            voice_status_callback_url: url(
                &d,
                "voice_status_callback_url",
                d.voice_status_callback_url.as_deref(),
            ),
            voice_status_callback_method: method(&d.voice_status_callback_method),
            secure: d.secure,
            sid: d.sid,
            account_sid: d.account_sid,
            name: d.domain_name,
            ip_ranges,
            credentials,
            sip_registration: d.sip_registration,
            registration_credentials,
        }))
    }
}

impl StoreDirectory {
    /// The HA1 of stored credentials for `realm`; one whose sealed password cannot be opened is
    /// left out, logged.
    fn digest_credentials(
        &self,
        stored: &[mediaseal_store::model::SipCredential],
        realm: &str,
    ) -> Vec<DomainCredential> {
        let mut out = Vec::with_capacity(stored.len());
        for c in stored {
            let password: Zeroizing<String> = match self.passwords.open(&c.sid, &c.password_sealed)
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(credential = %c.sid, error = %e, "a SIP credential cannot be used");
                    continue;
                }
            };
            out.push(DomainCredential {
                username: c.username.clone(),
                ha1: Ha1Set::compute(&c.username, realm, &password),
            });
        }
        out
    }
}

/// Auth tokens of active accounts, from the metadata store.
#[derive(Clone)]
pub struct StoreTokens {
    meta: Arc<dyn MetadataStore>,
}

impl std::fmt::Debug for StoreTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTokens").finish_non_exhaustive()
    }
}

impl StoreTokens {
    /// Tokens from `meta`.
    pub fn new(meta: Arc<dyn MetadataStore>) -> Self {
        Self { meta }
    }
}

#[async_trait]
impl AuthTokens for StoreTokens {
    async fn auth_token(&self, account_sid: &str) -> Option<Zeroizing<String>> {
        match self.meta.account(account_sid).await {
            Ok(Some(a)) if a.status == "active" => Some(Zeroizing::new(a.auth_token)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(account = %account_sid, error = %e, "auth token lookup failed");
                None
            }
        }
    }
}

/// Logs every call status change (no numbers or URIs: SIDs, status, direction, duration) and
/// counts them in `mediaseal_voice_call_updates_total{status}`.
#[derive(Debug, Default, Clone)]
pub struct LoggingLedger;

#[async_trait]
impl CallLedger for LoggingLedger {
    async fn call_updated(&self, update: CallUpdate) {
        metrics::counter!("mediaseal_voice_call_updates_total", "status" => update.status)
            .increment(1);
        tracing::info!(
            call = %update.call_sid,
            account = %update.account_sid,
            parent = update.parent_call_sid.as_deref().unwrap_or(""),
            direction = update.direction,
            status = update.status,
            duration_secs = update.duration_secs,
            "call status"
        );
    }
}

/// The Calls resource on the service layer: every status change is logged and counted as by
/// [`LoggingLedger`], then upserted into the call's row; the domain's status callback, when the
/// change carries one, is queued in the outbox in the same transaction (signed, retried).
#[derive(Clone)]
pub struct StoreLedger {
    services: Services,
}

impl std::fmt::Debug for StoreLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLedger").finish_non_exhaustive()
    }
}

impl StoreLedger {
    /// Calls kept through `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

#[async_trait]
impl CallLedger for StoreLedger {
    async fn call_updated(&self, update: CallUpdate) {
        LoggingLedger.call_updated(update.clone()).await;
        // The call core spells these from fixed sets; anything else is a bug worth a warning,
        // not a row with a status no client knows.
        let (Ok(status), Ok(direction)) = (
            update.status.parse::<CallStatus>(),
            update.direction.parse::<CallDirection>(),
        ) else {
            tracing::warn!(call = %update.call_sid, status = update.status, direction = update.direction, "a call update with an unknown status or direction; not stored");
            return;
        };
        if update.call_sid.is_empty() || update.account_sid.is_empty() {
            tracing::warn!(
                status = update.status,
                "a call update without a call or account SID; not stored"
            );
            return;
        }
        let change = CallChange {
            sid: update.call_sid,
            account_sid: update.account_sid,
            parent_call_sid: update.parent_call_sid,
            direction,
            from: update.from,
            to: update.to,
            status,
            duration_secs: update.duration_secs.map(i64::from),
            sip_call_id: (!update.sip_call_id.is_empty()).then_some(update.sip_call_id),
            at: self.services.now_us(),
        };
        let callback = update.status_callback.map(|cb| {
            let cb = *cb;
            CallStatusCallback {
                url: cb.url.to_string(),
                method: cb.method.as_str().to_owned(),
                params: cb.params,
            }
        });
        if let Err(e) = self
            .services
            .record_call_change(&change, callback.as_ref())
            .await
        {
            metrics::counter!("mediaseal_voice_call_update_failures_total").increment(1);
            tracing::warn!(call = %change.sid, error = %e, "a call status change was not stored");
        }
    }
}
