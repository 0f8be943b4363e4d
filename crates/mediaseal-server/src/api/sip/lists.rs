//! CredentialLists (`CL…`) with their Credentials (`CR…`), and IpAccessControlLists (`AL…`)
//! with their IpAddresses (`IP…`). Both kinds of list share one table and one set of handlers.

use std::net::IpAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::{Cursor, SipCredential, SipIpAddress, SipList, SipListKind};
use serde::Serialize;

use super::{parent_sid, required_name};
use crate::api::{Authed, json_sid};
use crate::auth::accessible_account;
use crate::clock::{now_us, rfc2822};
use crate::error::{ApiError, ApiResult};
use crate::paging::{Envelope2010, Page, PageRequest, envelope_2010};
use crate::params::Params;
use crate::sid::new_sid;
use crate::state::AppState;

/// How a kind of list is spelled in paths, SIDs and list keys.
struct Kind {
    kind: SipListKind,
    prefix: &'static str,
    path: &'static str,
    key: &'static str,
}

const CREDENTIAL_LISTS: Kind = Kind {
    kind: SipListKind::Credential,
    prefix: "CL",
    path: "CredentialLists",
    key: "credential_lists",
};
const IP_LISTS: Kind = Kind {
    kind: SipListKind::IpAccessControl,
    prefix: "AL",
    path: "IpAccessControlLists",
    key: "ip_access_control_lists",
};

/// A list's entries.
#[derive(Debug, Serialize)]
pub(crate) struct ListSubresources {
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_addresses: Option<String>,
}

/// A credential list or IP access control list as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct ListResource {
    account_sid: String,
    date_created: String,
    date_updated: String,
    friendly_name: String,
    sid: String,
    subresource_uris: ListSubresources,
    uri: String,
}

impl ListResource {
    fn from_record(l: &SipList) -> Self {
        let (path, entries) = match l.kind {
            SipListKind::Credential => (CREDENTIAL_LISTS.path, "Credentials"),
            SipListKind::IpAccessControl => (IP_LISTS.path, "IpAddresses"),
        };
        let base = format!(
            "/2010-04-01/Accounts/{}/SIP/{path}/{}",
            l.account_sid, l.sid
        );
        let entries_uri = format!("{base}/{entries}.json");
        Self {
            account_sid: l.account_sid.clone(),
            date_created: rfc2822(l.date_created),
            date_updated: rfc2822(l.date_updated),
            friendly_name: l.friendly_name.clone(),
            sid: l.sid.clone(),
            subresource_uris: match l.kind {
                SipListKind::Credential => ListSubresources {
                    credentials: Some(entries_uri),
                    ip_addresses: None,
                },
                SipListKind::IpAccessControl => ListSubresources {
                    credentials: None,
                    ip_addresses: Some(entries_uri),
                },
            },
            uri: format!("{base}.json"),
        }
    }
}

/// A credential as the API shows it: never the password.
#[derive(Debug, Serialize)]
pub(crate) struct CredentialResource {
    account_sid: String,
    credential_list_sid: String,
    date_created: String,
    date_updated: String,
    sid: String,
    uri: String,
    username: String,
}

impl CredentialResource {
    fn from_record(c: &SipCredential) -> Self {
        Self {
            account_sid: c.account_sid.clone(),
            credential_list_sid: c.list_sid.clone(),
            date_created: rfc2822(c.date_created),
            date_updated: rfc2822(c.date_updated),
            sid: c.sid.clone(),
            uri: format!(
                "/2010-04-01/Accounts/{}/SIP/CredentialLists/{}/Credentials/{}.json",
                c.account_sid, c.list_sid, c.sid
            ),
            username: c.username.clone(),
        }
    }
}

/// An IP address as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct AddressResource {
    account_sid: String,
    cidr_prefix_length: i64,
    date_created: String,
    date_updated: String,
    friendly_name: String,
    ip_access_control_list_sid: String,
    ip_address: String,
    sid: String,
    uri: String,
}

impl AddressResource {
    fn from_record(a: &SipIpAddress) -> Self {
        Self {
            account_sid: a.account_sid.clone(),
            cidr_prefix_length: a.cidr_prefix_length,
            date_created: rfc2822(a.date_created),
            date_updated: rfc2822(a.date_updated),
            friendly_name: a.friendly_name.clone(),
            ip_access_control_list_sid: a.list_sid.clone(),
            ip_address: a.ip_address.clone(),
            sid: a.sid.clone(),
            uri: format!(
                "/2010-04-01/Accounts/{}/SIP/IpAccessControlLists/{}/IpAddresses/{}.json",
                a.account_sid, a.list_sid, a.sid
            ),
        }
    }
}

fn cursor_of<T>(
    date_created: impl Fn(&T) -> i64,
    sid: impl Fn(&T) -> &str,
) -> impl Fn(&T) -> Cursor {
    move |t| Cursor {
        date_created: date_created(t),
        sid: sid(t).to_owned(),
    }
}

// ---- lists ----

async fn create_list(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    body: &[u8],
    kind: &Kind,
) -> ApiResult<Response> {
    let account = accessible_account(st, &auth.principal, account_sid, &auth.path).await?;
    let form = Params::from_form(body);
    let name = required_name(&form)?;
    let now = now_us();
    let l = SipList {
        sid: new_sid(kind.prefix),
        account_sid: account.sid.clone(),
        kind: kind.kind,
        friendly_name: name,
        date_created: now,
        date_updated: now,
    };
    st.meta.insert_sip_list(&l).await?;
    Ok((StatusCode::CREATED, Json(ListResource::from_record(&l))).into_response())
}

async fn list_lists(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    kind: &Kind,
) -> ApiResult<Json<Envelope2010<ListResource>>> {
    let account = accessible_account(st, &auth.principal, account_sid, &auth.path).await?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_sip_lists(
            &account.sid,
            kind.kind,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(
        rows,
        &req,
        cursor_of(|l: &SipList| l.date_created, |l| &l.sid),
    );
    Ok(Json(envelope_2010(
        kind.key,
        &auth.path,
        &page,
        &req,
        &auth.query,
        &[],
        ListResource::from_record,
    )))
}

/// The list `sid_or_file` (`CL…` or `CL….json`) of an account the caller may act on.
pub(super) async fn owned_list(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    raw: &str,
    kind: SipListKind,
    with_json: bool,
) -> ApiResult<SipList> {
    let account = accessible_account(st, &auth.principal, account_sid, &auth.path).await?;
    let prefix = match kind {
        SipListKind::Credential => CREDENTIAL_LISTS.prefix,
        SipListKind::IpAccessControl => IP_LISTS.prefix,
    };
    let sid = if with_json {
        json_sid(raw, prefix, &auth.path)?
    } else {
        parent_sid(raw, prefix, &auth.path)?
    };
    st.meta
        .sip_list(&account.sid, kind, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))
}

async fn update_list(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    file: &str,
    body: &[u8],
    kind: &Kind,
) -> ApiResult<Json<ListResource>> {
    let l = owned_list(st, auth, account_sid, file, kind.kind, true).await?;
    let form = Params::from_form(body);
    let name = required_name(&form)?;
    let l = st
        .meta
        .rename_sip_list(&l.account_sid, kind.kind, &l.sid, &name, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(ListResource::from_record(&l)))
}

async fn delete_list(
    st: &AppState,
    auth: &Authed,
    account_sid: &str,
    file: &str,
    kind: &Kind,
) -> ApiResult<StatusCode> {
    let l = owned_list(st, auth, account_sid, file, kind.kind, true).await?;
    if !st
        .meta
        .delete_sip_list(&l.account_sid, kind.kind, &l.sid)
        .await?
    {
        return Err(ApiError::not_found(&auth.path));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn create_credential_list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    create_list(&st, &auth, &account, &body, &CREDENTIAL_LISTS).await
}
pub(crate) async fn list_credential_lists(
    State(st): State<AppState>,
    auth: Authed,
    Path(account): Path<String>,
) -> ApiResult<Json<Envelope2010<ListResource>>> {
    list_lists(&st, &auth, &account, &CREDENTIAL_LISTS).await
}
pub(crate) async fn fetch_credential_list(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, file)): Path<(String, String)>,
) -> ApiResult<Json<ListResource>> {
    let l = owned_list(&st, &auth, &account, &file, SipListKind::Credential, true).await?;
    Ok(Json(ListResource::from_record(&l)))
}
pub(crate) async fn update_credential_list(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, file)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<ListResource>> {
    update_list(&st, &auth, &account, &file, &body, &CREDENTIAL_LISTS).await
}
pub(crate) async fn delete_credential_list(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, file)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_list(&st, &auth, &account, &file, &CREDENTIAL_LISTS).await
}
pub(crate) async fn create_ip_list(
    State(st): State<AppState>,
    auth: Authed,
    Path(account): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    create_list(&st, &auth, &account, &body, &IP_LISTS).await
}
pub(crate) async fn list_ip_lists(
    State(st): State<AppState>,
    auth: Authed,
    Path(account): Path<String>,
) -> ApiResult<Json<Envelope2010<ListResource>>> {
    list_lists(&st, &auth, &account, &IP_LISTS).await
}
pub(crate) async fn fetch_ip_list(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, file)): Path<(String, String)>,
) -> ApiResult<Json<ListResource>> {
    let l = owned_list(
        &st,
        &auth,
        &account,
        &file,
        SipListKind::IpAccessControl,
        true,
    )
    .await?;
    Ok(Json(ListResource::from_record(&l)))
}
pub(crate) async fn update_ip_list(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, file)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<ListResource>> {
    update_list(&st, &auth, &account, &file, &body, &IP_LISTS).await
}
pub(crate) async fn delete_ip_list(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, file)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_list(&st, &auth, &account, &file, &IP_LISTS).await
}

// ---- credentials ----

/// A digest username: 1 to 32 visible ASCII characters without `:`, `"`, `\` or `@` (they
/// would make the digest's `username:realm:password` or the SIP URI ambiguous).
fn username(raw: &str) -> Result<&str, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b":\"\\@".contains(&b));
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::bad_param(
            "Username",
            "must be 1 to 32 visible ASCII characters without : \" \\ or @",
        ))
    }
}

/// Twilio's rules for SIP credential passwords: at least 12 characters, with a digit, an upper
/// case and a lower case letter (and at most 128 here). The message never repeats it.
fn password(raw: &str) -> Result<&str, ApiError> {
    let n = raw.chars().count();
    let ok = (12..=128).contains(&n)
        && raw.chars().any(|c| c.is_ascii_digit())
        && raw.chars().any(|c| c.is_uppercase())
        && raw.chars().any(|c| c.is_lowercase())
        && !raw.chars().any(char::is_control);
    if ok {
        Ok(raw)
    } else {
        Err(ApiError::bad_param(
            "Password",
            "must be 12 to 128 characters with at least one digit, one upper case and one lower case letter",
        ))
    }
}

fn seal(st: &AppState, credential_sid: &str, password: &str) -> ApiResult<String> {
    let key = st
        .sip_passwords
        .as_ref()
        .ok_or_else(|| ApiError::internal("the SIP password key is unavailable"))?;
    key.seal(credential_sid, password)
        .map_err(ApiError::internal)
}

pub(crate) async fn create_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let l = owned_list(&st, &auth, &account, &list, SipListKind::Credential, false).await?;
    let form = Params::from_form(&body);
    let user = username(form.required("Username")?)?.to_owned();
    let pass = zeroize::Zeroizing::new(password(form.required("Password")?)?.to_owned());
    let sid = new_sid("CR");
    let now = now_us();
    let c = SipCredential {
        password_sealed: seal(&st, &sid, &pass)?,
        sid,
        account_sid: l.account_sid.clone(),
        list_sid: l.sid.clone(),
        username: user,
        date_created: now,
        date_updated: now,
    };
    if !st.meta.insert_sip_credential(&c).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            21450,
            format!(
                "The username {} already exists in credential list {}",
                c.username, l.sid
            ),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(CredentialResource::from_record(&c)),
    )
        .into_response())
}

pub(crate) async fn list_credentials(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list)): Path<(String, String)>,
) -> ApiResult<Json<Envelope2010<CredentialResource>>> {
    let l = owned_list(&st, &auth, &account, &list, SipListKind::Credential, false).await?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_sip_credentials(
            &l.account_sid,
            &l.sid,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(
        rows,
        &req,
        cursor_of(|c: &SipCredential| c.date_created, |c| &c.sid),
    );
    Ok(Json(envelope_2010(
        "credentials",
        &auth.path,
        &page,
        &req,
        &auth.query,
        &[],
        CredentialResource::from_record,
    )))
}

async fn owned_credential(
    st: &AppState,
    auth: &Authed,
    account: &str,
    list: &str,
    file: &str,
) -> ApiResult<SipCredential> {
    let l = owned_list(st, auth, account, list, SipListKind::Credential, false).await?;
    let sid = json_sid(file, "CR", &auth.path)?;
    st.meta
        .sip_credential(&l.account_sid, &l.sid, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))
}

pub(crate) async fn fetch_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list, file)): Path<(String, String, String)>,
) -> ApiResult<Json<CredentialResource>> {
    let c = owned_credential(&st, &auth, &account, &list, &file).await?;
    Ok(Json(CredentialResource::from_record(&c)))
}

pub(crate) async fn update_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list, file)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<CredentialResource>> {
    let c = owned_credential(&st, &auth, &account, &list, &file).await?;
    let form = Params::from_form(&body);
    let Some(raw) = form.get("Password") else {
        return Ok(Json(CredentialResource::from_record(&c)));
    };
    let pass = zeroize::Zeroizing::new(password(raw)?.to_owned());
    let sealed = seal(&st, &c.sid, &pass)?;
    let c = st
        .meta
        .update_sip_credential(&c.account_sid, &c.list_sid, &c.sid, &sealed, now_us())
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(CredentialResource::from_record(&c)))
}

pub(crate) async fn delete_credential(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list, file)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let c = owned_credential(&st, &auth, &account, &list, &file).await?;
    if !st
        .meta
        .delete_sip_credential(&c.account_sid, &c.list_sid, &c.sid)
        .await?
    {
        return Err(ApiError::not_found(&auth.path));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---- IP addresses ----

fn ip_address(raw: &str) -> Result<IpAddr, ApiError> {
    raw.trim().parse().map_err(|_| {
        ApiError::bad_param(
            "IpAddress",
            "must be one IPv4 or IPv6 address (the range length goes in CidrPrefixLength)",
        )
    })
}

fn prefix_length(form: &Params, ip: IpAddr, current: Option<i64>) -> ApiResult<i64> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match form.int_in("CidrPrefixLength", 0..=max)? {
        Some(n) => Ok(n),
        None => Ok(current.filter(|&n| n <= max).unwrap_or(max)),
    }
}

pub(crate) async fn create_address(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let l = owned_list(
        &st,
        &auth,
        &account,
        &list,
        SipListKind::IpAccessControl,
        false,
    )
    .await?;
    let form = Params::from_form(&body);
    let name = required_name(&form)?;
    let ip = ip_address(form.required("IpAddress")?)?;
    let now = now_us();
    let a = SipIpAddress {
        sid: new_sid("IP"),
        account_sid: l.account_sid.clone(),
        list_sid: l.sid.clone(),
        friendly_name: name,
        ip_address: ip.to_string(),
        cidr_prefix_length: prefix_length(&form, ip, None)?,
        date_created: now,
        date_updated: now,
    };
    st.meta.insert_sip_ip_address(&a).await?;
    Ok((StatusCode::CREATED, Json(AddressResource::from_record(&a))).into_response())
}

pub(crate) async fn list_addresses(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list)): Path<(String, String)>,
) -> ApiResult<Json<Envelope2010<AddressResource>>> {
    let l = owned_list(
        &st,
        &auth,
        &account,
        &list,
        SipListKind::IpAccessControl,
        false,
    )
    .await?;
    let req = PageRequest::from_params(&auth.query, 1000)?;
    let rows = st
        .meta
        .list_sip_ip_addresses(
            &l.account_sid,
            &l.sid,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(
        rows,
        &req,
        cursor_of(|a: &SipIpAddress| a.date_created, |a| &a.sid),
    );
    Ok(Json(envelope_2010(
        "ip_addresses",
        &auth.path,
        &page,
        &req,
        &auth.query,
        &[],
        AddressResource::from_record,
    )))
}

async fn owned_address(
    st: &AppState,
    auth: &Authed,
    account: &str,
    list: &str,
    file: &str,
) -> ApiResult<SipIpAddress> {
    let l = owned_list(st, auth, account, list, SipListKind::IpAccessControl, false).await?;
    let sid = json_sid(file, "IP", &auth.path)?;
    st.meta
        .sip_ip_address(&l.account_sid, &l.sid, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))
}

pub(crate) async fn fetch_address(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list, file)): Path<(String, String, String)>,
) -> ApiResult<Json<AddressResource>> {
    let a = owned_address(&st, &auth, &account, &list, &file).await?;
    Ok(Json(AddressResource::from_record(&a)))
}

pub(crate) async fn update_address(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list, file)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<AddressResource>> {
    let mut a = owned_address(&st, &auth, &account, &list, &file).await?;
    let form = Params::from_form(&body);
    if form.has("FriendlyName") {
        a.friendly_name = required_name(&form)?;
    }
    let ip = match form.get("IpAddress") {
        Some(raw) => ip_address(raw)?,
        None => a.ip_address.parse().map_err(ApiError::internal)?,
    };
    let keep = if form.has("IpAddress") {
        None
    } else {
        Some(a.cidr_prefix_length)
    };
    a.cidr_prefix_length = prefix_length(&form, ip, keep)?;
    a.ip_address = ip.to_string();
    a.date_updated = now_us();
    if !st.meta.update_sip_ip_address(&a).await? {
        return Err(ApiError::not_found(&auth.path));
    }
    Ok(Json(AddressResource::from_record(&a)))
}

pub(crate) async fn delete_address(
    State(st): State<AppState>,
    auth: Authed,
    Path((account, list, file)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let a = owned_address(&st, &auth, &account, &list, &file).await?;
    if !st
        .meta
        .delete_sip_ip_address(&a.account_sid, &a.list_sid, &a.sid)
        .await?
    {
        return Err(ApiError::not_found(&auth.path));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert!(password("Abcdefghijk1").is_ok());
        for bad in [
            "Abcdefghij1",
            "abcdefghijk1",
            "ABCDEFGHIJK1",
            "Abcdefghijkl",
        ] {
            let e = password(bad).unwrap_err();
            assert!(!e.message.contains(bad), "the message repeats the password");
        }
        assert!(username("alice").is_ok());
        for bad in ["", "a:b", "a b", "a@b", &"x".repeat(33)] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }
}
