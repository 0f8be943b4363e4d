//! Lists mapped to a domain's `Auth/Calls`: who may place calls to it. A credential list
//! mapping admits callers that pass digest authentication with one of its credentials; an IP
//! access control list mapping admits callers from one of its addresses. Credential lists
//! mapped to `Auth/Registrations` say who may REGISTER to a domain with `SipRegistration`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::{Cursor, SipDomain, SipListKind, SipMapping, SipMappingKind};
use serde::Serialize;

use super::lists::owned_list;
use super::parent_sid;
use crate::api::{Authed, json_sid};
use crate::auth::accessible_account;
use crate::clock::{now_us, rfc2822};
use crate::error::{ApiError, ApiResult};
use crate::paging::{Envelope2010, Page, PageRequest, envelope_2010};
use crate::params::Params;
use crate::state::AppState;

/// A mapping as the API shows it. `sid` is the mapped list's.
#[derive(Debug, Serialize)]
pub(crate) struct MappingResource {
    account_sid: String,
    date_created: String,
    date_updated: String,
    domain_sid: String,
    friendly_name: String,
    sid: String,
    uri: String,
}

impl MappingResource {
    fn from_record(m: &SipMapping, base: &str) -> Self {
        Self {
            account_sid: m.account_sid.clone(),
            date_created: rfc2822(m.date_created),
            date_updated: rfc2822(m.date_updated),
            domain_sid: m.domain_sid.clone(),
            friendly_name: m.friendly_name.clone(),
            sid: m.sid.clone(),
            uri: format!("{base}/{}.json", m.sid),
        }
    }
}

/// The form parameter naming the list, and the list SID prefix.
fn spelling(kind: SipListKind) -> (&'static str, &'static str) {
    match kind {
        SipListKind::Credential => ("CredentialListSid", "CL"),
        SipListKind::IpAccessControl => ("IpAccessControlListSid", "AL"),
    }
}

async fn owned_domain(
    st: &AppState,
    auth: &Authed,
    account: &str,
    domain: &str,
) -> ApiResult<SipDomain> {
    let account = accessible_account(st, &auth.principal, account, &auth.path).await?;
    let sid = parent_sid(domain, "SD", &auth.path)?;
    st.meta
        .sip_domain(&account.sid, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))
}

/// The collection path of a request (`…/CredentialListMappings`), for item URIs.
fn collection(path: &str) -> String {
    let trimmed = path.strip_suffix(".json").unwrap_or(path);
    match trimmed.rsplit_once('/') {
        Some((head, last)) if last.starts_with("CL") || last.starts_with("AL") => head.to_owned(),
        _ => trimmed.to_owned(),
    }
}

async fn create(
    st: &AppState,
    auth: &Authed,
    account: &str,
    domain: &str,
    body: &[u8],
    kind: SipMappingKind,
) -> ApiResult<Response> {
    let d = owned_domain(st, auth, account, domain).await?;
    let form = Params::from_form(body);
    let (param, prefix) = spelling(kind.list_kind());
    let list_sid = form
        .sid(param, prefix)?
        .ok_or_else(|| ApiError::missing_param(param))?;
    // The list must be the domain's own account's: a list of any other account is as absent.
    let list = owned_list(st, auth, &d.account_sid, list_sid, kind.list_kind(), false)
        .await
        .map_err(|_| {
            ApiError::bad_param(
                param,
                format!("{list_sid} is not a list of account {}", d.account_sid),
            )
        })?;
    if !st
        .meta
        .insert_sip_mapping(&d.account_sid, &d.sid, kind, &list.sid, now_us())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            21231,
            format!("{} is already mapped to domain {}", list.sid, d.sid),
        ));
    }
    let m = st
        .meta
        .sip_mapping(&d.account_sid, &d.sid, kind, &list.sid)
        .await?
        .ok_or_else(|| ApiError::internal("a mapping vanished right after it was made"))?;
    tracing::info!(domain = %d.sid, list = %list.sid, "SIP list mapped");
    Ok((
        StatusCode::CREATED,
        Json(MappingResource::from_record(&m, &collection(&auth.path))),
    )
        .into_response())
}

async fn list(
    st: &AppState,
    auth: &Authed,
    account: &str,
    domain: &str,
    kind: SipMappingKind,
) -> ApiResult<Json<Envelope2010<MappingResource>>> {
    let d = owned_domain(st, auth, account, domain).await?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_sip_mappings(
            &d.account_sid,
            &d.sid,
            kind,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |m| Cursor {
        date_created: m.date_created,
        sid: m.sid.clone(),
    });
    let base = collection(&auth.path);
    let key = if auth.path.contains("/Auth/") {
        "contents"
    } else {
        match kind.list_kind() {
            SipListKind::Credential => "credential_list_mappings",
            SipListKind::IpAccessControl => "ip_access_control_list_mappings",
        }
    };
    Ok(Json(envelope_2010(
        key,
        &auth.path,
        &page,
        &req,
        &auth.query,
        &[],
        |m| MappingResource::from_record(m, &base),
    )))
}

async fn owned_mapping(
    st: &AppState,
    auth: &Authed,
    account: &str,
    domain: &str,
    file: &str,
    kind: SipMappingKind,
) -> ApiResult<SipMapping> {
    let d = owned_domain(st, auth, account, domain).await?;
    let sid = json_sid(file, spelling(kind.list_kind()).1, &auth.path)?;
    st.meta
        .sip_mapping(&d.account_sid, &d.sid, kind, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))
}

async fn fetch(
    st: &AppState,
    auth: &Authed,
    account: &str,
    domain: &str,
    file: &str,
    kind: SipMappingKind,
) -> ApiResult<Json<MappingResource>> {
    let m = owned_mapping(st, auth, account, domain, file, kind).await?;
    Ok(Json(MappingResource::from_record(
        &m,
        &collection(&auth.path),
    )))
}

async fn delete(
    st: &AppState,
    auth: &Authed,
    account: &str,
    domain: &str,
    file: &str,
    kind: SipMappingKind,
) -> ApiResult<StatusCode> {
    let m = owned_mapping(st, auth, account, domain, file, kind).await?;
    if !st
        .meta
        .delete_sip_mapping(&m.account_sid, &m.domain_sid, kind, &m.sid)
        .await?
    {
        return Err(ApiError::not_found(&auth.path));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn create_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    create(
        &st,
        &auth,
        &account,
        &domain,
        &body,
        SipMappingKind::CallsCredential,
    )
    .await
}
pub(crate) async fn list_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain)): Path<(String, String)>,
) -> ApiResult<Json<Envelope2010<MappingResource>>> {
    list(
        &st,
        &auth,
        &account,
        &domain,
        SipMappingKind::CallsCredential,
    )
    .await
}
pub(crate) async fn fetch_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain, file)): Path<(String, String, String)>,
) -> ApiResult<Json<MappingResource>> {
    fetch(
        &st,
        &auth,
        &account,
        &domain,
        &file,
        SipMappingKind::CallsCredential,
    )
    .await
}
pub(crate) async fn delete_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain, file)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    delete(
        &st,
        &auth,
        &account,
        &domain,
        &file,
        SipMappingKind::CallsCredential,
    )
    .await
}
pub(crate) async fn create_ip(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    create(
        &st,
        &auth,
        &account,
        &domain,
        &body,
        SipMappingKind::CallsIp,
    )
    .await
}
pub(crate) async fn list_ip(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain)): Path<(String, String)>,
) -> ApiResult<Json<Envelope2010<MappingResource>>> {
    list(&st, &auth, &account, &domain, SipMappingKind::CallsIp).await
}
pub(crate) async fn fetch_ip(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain, file)): Path<(String, String, String)>,
) -> ApiResult<Json<MappingResource>> {
    fetch(
        &st,
        &auth,
        &account,
        &domain,
        &file,
        SipMappingKind::CallsIp,
    )
    .await
}
pub(crate) async fn delete_ip(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain, file)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    delete(
        &st,
        &auth,
        &account,
        &domain,
        &file,
        SipMappingKind::CallsIp,
    )
    .await
}
pub(crate) async fn create_registration(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    create(
        &st,
        &auth,
        &account,
        &domain,
        &body,
        SipMappingKind::RegistrationCredential,
    )
    .await
}
pub(crate) async fn list_registration(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain)): Path<(String, String)>,
) -> ApiResult<Json<Envelope2010<MappingResource>>> {
    list(
        &st,
        &auth,
        &account,
        &domain,
        SipMappingKind::RegistrationCredential,
    )
    .await
}
pub(crate) async fn fetch_registration(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain, file)): Path<(String, String, String)>,
) -> ApiResult<Json<MappingResource>> {
    fetch(
        &st,
        &auth,
        &account,
        &domain,
        &file,
        SipMappingKind::RegistrationCredential,
    )
    .await
}
pub(crate) async fn delete_registration(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, domain, file)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    delete(
        &st,
        &auth,
        &account,
        &domain,
        &file,
        SipMappingKind::RegistrationCredential,
    )
    .await
}
