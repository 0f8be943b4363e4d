//! SIP (api/2010-04-01 `SIP/…`): Domains, CredentialLists with Credentials,
//! IpAccessControlLists with IpAddresses, and the lists mapped to a domain's `Auth/Calls`
//! (also under the older `Domains/{SD}/CredentialListMappings` paths, which Twilio keeps as
//! the same thing), and the credential lists mapped to `Auth/Registrations` (who may REGISTER
//! to a domain whose `SipRegistration` is on). The SIP edge reads them through the store to admit calls.
//!
//! Owners and their parent accounts see these resources (as recordings); anyone else gets the
//! 404 of a resource that does not exist. Passwords are sealed before they reach the store and
//! never shown.

mod domains;
mod lists;
mod mappings;

use axum::Router;
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// The SIP routes.
pub(crate) fn routes() -> Router<AppState> {
    const BASE: &str = "/2010-04-01/Accounts/{account}/SIP";
    let r = |p: &str| format!("{BASE}{p}");
    Router::new()
        .route(
            &r("/Domains.json"),
            get(domains::list).post(domains::create),
        )
        .route(
            &r("/Domains/{file}"),
            get(domains::fetch)
                .post(domains::update)
                .delete(domains::delete),
        )
        .route(
            &r("/Domains/{domain}/Auth/Calls/CredentialListMappings.json"),
            get(mappings::list_credential).post(mappings::create_credential),
        )
        .route(
            &r("/Domains/{domain}/Auth/Calls/CredentialListMappings/{file}"),
            get(mappings::fetch_credential).delete(mappings::delete_credential),
        )
        .route(
            &r("/Domains/{domain}/Auth/Calls/IpAccessControlListMappings.json"),
            get(mappings::list_ip).post(mappings::create_ip),
        )
        .route(
            &r("/Domains/{domain}/Auth/Calls/IpAccessControlListMappings/{file}"),
            get(mappings::fetch_ip).delete(mappings::delete_ip),
        )
        .route(
            &r("/Domains/{domain}/Auth/Registrations/CredentialListMappings.json"),
            get(mappings::list_registration).post(mappings::create_registration),
        )
        .route(
            &r("/Domains/{domain}/Auth/Registrations/CredentialListMappings/{file}"),
            get(mappings::fetch_registration).delete(mappings::delete_registration),
        )
        .route(
            &r("/Domains/{domain}/CredentialListMappings.json"),
            get(mappings::list_credential).post(mappings::create_credential),
        )
        .route(
            &r("/Domains/{domain}/CredentialListMappings/{file}"),
            get(mappings::fetch_credential).delete(mappings::delete_credential),
        )
        .route(
            &r("/Domains/{domain}/IpAccessControlListMappings.json"),
            get(mappings::list_ip).post(mappings::create_ip),
        )
        .route(
            &r("/Domains/{domain}/IpAccessControlListMappings/{file}"),
            get(mappings::fetch_ip).delete(mappings::delete_ip),
        )
        .route(
            &r("/CredentialLists.json"),
            get(lists::list_credential_lists).post(lists::create_credential_list),
        )
        .route(
            &r("/CredentialLists/{file}"),
            get(lists::fetch_credential_list)
                .post(lists::update_credential_list)
                .delete(lists::delete_credential_list),
        )
        .route(
            &r("/CredentialLists/{list}/Credentials.json"),
            get(lists::list_credentials).post(lists::create_credential),
        )
        .route(
            &r("/CredentialLists/{list}/Credentials/{file}"),
            get(lists::fetch_credential)
                .post(lists::update_credential)
                .delete(lists::delete_credential),
        )
        .route(
            &r("/IpAccessControlLists.json"),
            get(lists::list_ip_lists).post(lists::create_ip_list),
        )
        .route(
            &r("/IpAccessControlLists/{file}"),
            get(lists::fetch_ip_list)
                .post(lists::update_ip_list)
                .delete(lists::delete_ip_list),
        )
        .route(
            &r("/IpAccessControlLists/{list}/IpAddresses.json"),
            get(lists::list_addresses).post(lists::create_address),
        )
        .route(
            &r("/IpAccessControlLists/{list}/IpAddresses/{file}"),
            get(lists::fetch_address)
                .post(lists::update_address)
                .delete(lists::delete_address),
        )
}

/// A parent SID in a path (`SD…`, `CL…`, `AL…`, no extension); anything else is a 404.
fn parent_sid<'a>(raw: &'a str, prefix: &str, path: &str) -> Result<&'a str, ApiError> {
    if crate::sid::is_sid(raw, prefix) {
        Ok(raw)
    } else {
        Err(ApiError::not_found(path))
    }
}

/// A required, non-empty `FriendlyName` of at most 64 characters.
fn required_name(params: &crate::params::Params) -> Result<String, ApiError> {
    match params.friendly_name("FriendlyName", 64)? {
        Some(n) if !n.trim().is_empty() => Ok(n.to_owned()),
        _ => Err(ApiError::missing_param("FriendlyName")),
    }
}
