//! SIP Domains (`SD…`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::{Cursor, SipDomain, SipListKind};
use serde::Serialize;

use crate::api::{Authed, json_sid};
use crate::auth::accessible_account;
use crate::clock::{now_us, rfc2822};
use crate::error::{ApiError, ApiResult};
use crate::paging::{Envelope2010, Page, PageRequest, envelope_2010};
use crate::params::{Params, webhook_url};
use crate::sid::new_sid;
use crate::state::AppState;

/// The legacy mapping paths Twilio lists under a domain.
#[derive(Debug, Serialize)]
pub(crate) struct DomainSubresources {
    credential_list_mappings: String,
    ip_access_control_list_mappings: String,
}

/// A domain as the API shows it (fields in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct DomainResource {
    account_sid: String,
    api_version: &'static str,
    auth_type: Option<String>,
    byoc_trunk_sid: Option<String>,
    date_created: String,
    date_updated: String,
    domain_name: String,
    emergency_caller_sid: Option<String>,
    emergency_calling_enabled: bool,
    friendly_name: Option<String>,
    secure: bool,
    sid: String,
    sip_registration: bool,
    subresource_uris: DomainSubresources,
    uri: String,
    voice_fallback_method: String,
    voice_fallback_url: Option<String>,
    voice_method: String,
    voice_status_callback_method: String,
    voice_status_callback_url: Option<String>,
    voice_url: Option<String>,
}

impl DomainResource {
    fn from_record(d: &SipDomain, auth_type: Option<String>) -> Self {
        let base = format!(
            "/2010-04-01/Accounts/{}/SIP/Domains/{}",
            d.account_sid, d.sid
        );
        Self {
            account_sid: d.account_sid.clone(),
            api_version: "2010-04-01",
            auth_type,
            byoc_trunk_sid: None,
            date_created: rfc2822(d.date_created),
            date_updated: rfc2822(d.date_updated),
            domain_name: d.domain_name.clone(),
            emergency_caller_sid: None,
            emergency_calling_enabled: false,
            friendly_name: d.friendly_name.clone(),
            secure: d.secure,
            sid: d.sid.clone(),
            sip_registration: d.sip_registration,
            subresource_uris: DomainSubresources {
                credential_list_mappings: format!("{base}/CredentialListMappings.json"),
                ip_access_control_list_mappings: format!("{base}/IpAccessControlListMappings.json"),
            },
            uri: format!("{base}.json"),
            voice_fallback_method: d.voice_fallback_method.clone(),
            voice_fallback_url: d.voice_fallback_url.clone(),
            voice_method: d.voice_method.clone(),
            voice_status_callback_method: d.voice_status_callback_method.clone(),
            voice_status_callback_url: d.voice_status_callback_url.clone(),
            voice_url: d.voice_url.clone(),
        }
    }
}

/// `IP_ACL`, `CREDENTIAL_LIST`, both comma-joined, or null: what the domain's mappings allow.
async fn auth_type(st: &AppState, d: &SipDomain) -> ApiResult<Option<String>> {
    let mut kinds = Vec::new();
    for (kind, name) in [
        (SipListKind::IpAccessControl, "IP_ACL"),
        (SipListKind::Credential, "CREDENTIAL_LIST"),
    ] {
        if !st
            .meta
            .list_sip_mappings(&d.account_sid, &d.sid, kind.into(), None, 1)
            .await?
            .is_empty()
        {
            kinds.push(name);
        }
    }
    Ok((!kinds.is_empty()).then(|| kinds.join(",")))
}

async fn render(st: &AppState, d: &SipDomain) -> ApiResult<DomainResource> {
    Ok(DomainResource::from_record(d, auth_type(st, d).await?))
}

/// A `DomainName`: a DNS name (lower-cased) ending in the configured suffix, with at least one
/// label of its own before it.
fn domain_name(raw: &str, suffix: Option<&str>) -> Result<String, ApiError> {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| ApiError::bad_param("DomainName", why);
    if name.is_empty() || name.len() > 253 {
        return Err(bad("must be a DNS name of 1 to 253 characters"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad(
                "each label must be 1 to 63 letters, digits or inner hyphens",
            ));
        }
    }
    if let Some(suffix) = suffix {
        let suffix = suffix.trim_matches('.').to_ascii_lowercase();
        let Some(own) = name.strip_suffix(&suffix) else {
            return Err(bad(&format!("must end with .{suffix}")));
        };
        if own.len() < 2 || !own.ends_with('.') {
            return Err(bad(&format!(
                "must be a name of your choice followed by .{suffix}"
            )));
        }
    }
    Ok(name)
}

fn taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        21232,
        format!("The SIP domain name {name} is already in use; choose another"),
    )
}

/// Parameters Twilio has that this server does not implement: refused when asked for, so a
/// client never believes it has something it has not.
fn refuse_unsupported(form: &Params) -> ApiResult<()> {
    for flag in ["EmergencyCallingEnabled"] {
        if form.boolean(flag)? == Some(true) {
            return Err(ApiError::bad_param(flag, "not supported by this server"));
        }
    }
    for sid in ["ByocTrunkSid", "EmergencyCallerSid"] {
        if form.get(sid).is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::bad_param(sid, "not supported by this server"));
        }
    }
    Ok(())
}

/// Applies the optional parameters present in `form` to `d` (an empty URL clears it).
fn apply(st: &AppState, form: &Params, d: &mut SipDomain) -> ApiResult<()> {
    let policy = &st.services.config.webhook_policy;
    if form.has("FriendlyName") {
        d.friendly_name = form
            .friendly_name("FriendlyName", 64)?
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
    }
    for (name, field) in [
        ("VoiceUrl", &mut d.voice_url),
        ("VoiceFallbackUrl", &mut d.voice_fallback_url),
        ("VoiceStatusCallbackUrl", &mut d.voice_status_callback_url),
    ] {
        if form.has(name) {
            *field = webhook_url(form, name, policy)?.map(str::to_owned);
        }
    }
    for (name, field) in [
        ("VoiceMethod", &mut d.voice_method),
        ("VoiceFallbackMethod", &mut d.voice_fallback_method),
        (
            "VoiceStatusCallbackMethod",
            &mut d.voice_status_callback_method,
        ),
    ] {
        if form.has(name) {
            *field = form.method(name)?;
        }
    }
    if let Some(secure) = form.boolean("Secure")? {
        d.secure = secure;
    }
    // Phones may REGISTER only while this is on (credentials: `Auth/Registrations`).
    if let Some(registration) = form.boolean("SipRegistration")? {
        d.sip_registration = registration;
    }
    Ok(())
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let form = Params::from_form(&body);
    refuse_unsupported(&form)?;
    let name = domain_name(
        form.required("DomainName")?,
        st.config.sip_domain_suffix.as_deref(),
    )?;
    let now = now_us();
    let mut d = SipDomain {
        sid: new_sid("SD"),
        account_sid: account.sid.clone(),
        domain_name: name,
        friendly_name: None,
        voice_url: None,
        voice_method: "POST".to_owned(),
        voice_fallback_url: None,
        voice_fallback_method: "POST".to_owned(),
        voice_status_callback_url: None,
        voice_status_callback_method: "POST".to_owned(),
        secure: false,
        sip_registration: false,
        date_created: now,
        date_updated: now,
    };
    apply(&st, &form, &mut d)?;
    if !st.meta.insert_sip_domain(&d).await? {
        return Err(taken(&d.domain_name));
    }
    tracing::info!(domain = %d.sid, account = %d.account_sid, secure = d.secure, "SIP domain created");
    Ok((StatusCode::CREATED, Json(render(&st, &d).await?)).into_response())
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account_sid): Path<String>,
) -> ApiResult<Json<Envelope2010<DomainResource>>> {
    let account = accessible_account(&st, &auth.principal, &account_sid, &auth.path).await?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_sip_domains(&account.sid, req.cursor.as_ref(), req.fetch_limit())
        .await?;
    let page = Page::cut(rows, &req, |d| Cursor {
        date_created: d.date_created,
        sid: d.sid.clone(),
    });
    let mut auth_types = Vec::with_capacity(page.items.len());
    for d in &page.items {
        auth_types.push(auth_type(&st, d).await?);
    }
    let mut envelope = envelope_2010("domains", &auth.path, &page, &req, &auth.query, &[], |d| {
        DomainResource::from_record(d, None)
    });
    for (item, t) in envelope.items.iter_mut().zip(auth_types) {
        item.auth_type = t;
    }
    Ok(Json(envelope))
}

async fn owned(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    file: &str,
) -> ApiResult<SipDomain> {
    let account = accessible_account(st, &auth.principal, account_sid, &auth.path).await?;
    let sid = json_sid(file, "SD", &auth.path)?;
    st.meta
        .sip_domain(&account.sid, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<Json<DomainResource>> {
    let d = owned(&st, &auth, &account_sid, &file).await?;
    Ok(Json(render(&st, &d).await?))
}

pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<DomainResource>> {
    let mut d = owned(&st, &auth, &account_sid, &file).await?;
    let form = Params::from_form(&body);
    refuse_unsupported(&form)?;
    if let Some(raw) = form.get("DomainName") {
        d.domain_name = domain_name(raw, st.config.sip_domain_suffix.as_deref())?;
    }
    apply(&st, &form, &mut d)?;
    d.date_updated = now_us();
    if !st.meta.update_sip_domain(&d).await? {
        return Err(taken(&d.domain_name));
    }
    Ok(Json(render(&st, &d).await?))
}

pub(crate) async fn delete(
    State(st): State<AppState>,
    auth: Authed,
    Path((account_sid, file)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let d = owned(&st, &auth, &account_sid, &file).await?;
    if !st.meta.delete_sip_domain(&d.account_sid, &d.sid).await? {
        return Err(ApiError::not_found(&auth.path));
    }
    tracing::info!(domain = %d.sid, account = %d.account_sid, "SIP domain deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        let s = Some("sip.example.com");
        assert_eq!(
            domain_name("Acme.SIP.example.com", s).unwrap(),
            "acme.sip.example.com"
        );
        assert_eq!(
            domain_name("a.b.sip.example.com", None).unwrap(),
            "a.b.sip.example.com"
        );
        for bad in [
            "sip.example.com",
            "acme.example.com",
            "xsip.example.com",
            "-a.sip.example.com",
            "a_b.sip.example.com",
            "",
            "a..sip.example.com",
        ] {
            assert!(domain_name(bad, s).is_err(), "{bad}");
        }
    }
}
