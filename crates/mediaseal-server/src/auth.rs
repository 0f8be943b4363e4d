//! HTTP Basic authentication with `AC…:token` or `SK…:secret`, compared in constant time, and the
//! rule of who may see which account: itself, and a parent its subaccounts. While an account has a
//! secondary auth token (a rotation under way), either token authenticates it.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mediaseal_store::model::Account;

use crate::error::ApiError;
use crate::state::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account the credentials act for.
    pub account: Account,
    /// The API key used, when not the auth token.
    pub api_key: Option<String>,
}

impl Principal {
    /// The calling account's SID.
    pub fn sid(&self) -> &str {
        &self.account.sid
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares two secrets in time independent of where they differ and of their lengths, by
/// comparing fixed-length digests.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(
        &sha256(given.as_bytes()),
        &sha256(expected.as_bytes()),
    )
    .is_ok()
}

/// Compares a secret with a stored hex SHA-256, in constant time.
pub fn secret_matches_hash(given: &str, expected_hex: &str) -> bool {
    let given_hex = crate::sid::hex(&sha256(given.as_bytes()));
    aws_lc_rs::constant_time::verify_slices_are_equal(given_hex.as_bytes(), expected_hex.as_bytes())
        .is_ok()
}

/// Hex SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    crate::sid::hex(&sha256(secret.as_bytes()))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Checks the request's credentials. Any failure is the same 401, so the answer does not tell
/// whether the SID exists.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some((user, pass)) = basic_credentials(headers) else {
        return Err(ApiError::unauthenticated());
    };
    if crate::sid::is_sid(&user, "AC") {
        let account = state.meta.account(&user).await?;
        // Compare against something even when the account is unknown, so timing does not
        // reveal which SIDs exist; and always against two tokens, so it does not reveal
        // whether a rotation is under way either.
        let primary = account.as_ref().map_or("-", |a| a.auth_token.as_str());
        let secondary = account
            .as_ref()
            .and_then(|a| a.secondary_auth_token.as_ref());
        let secondary_ok = secrets_match(&pass, secondary.map_or("-", |s| s.token.as_str()));
        // `|` and `&`, not `||` and `&&`: both comparisons always run. The placeholder
        // compared when there is no secondary token never authenticates.
        let ok = secrets_match(&pass, primary) | (secondary.is_some() & secondary_ok);
        return match account {
            Some(a) if ok && a.status == "active" => Ok(Principal {
                account: a,
                api_key: None,
            }),
            _ => Err(ApiError::unauthenticated()),
        };
    }
    if crate::sid::is_sid(&user, "SK") {
        let key = state.meta.api_key(&user).await?;
        let expected = key.as_ref().map_or("-", |k| k.secret_hash.as_str());
        let ok = secret_matches_hash(&pass, expected);
        let Some(key) = key.filter(|_| ok) else {
            return Err(ApiError::unauthenticated());
        };
        return match state.meta.account(&key.account_sid).await? {
            Some(a) if a.status == "active" => Ok(Principal {
                account: a,
                api_key: Some(key.sid),
            }),
            _ => Err(ApiError::unauthenticated()),
        };
    }
    Err(ApiError::unauthenticated())
}

/// The account `sid` if `principal` may act on it (itself, or one of its subaccounts);
/// otherwise a 404 for `path`, exactly as for a resource that does not exist.
pub async fn accessible_account(
    state: &AppState,
    principal: &Principal,
    sid: &str,
    path: &str,
) -> Result<Account, ApiError> {
    if sid == principal.sid() {
        return Ok(principal.account.clone());
    }
    if !crate::sid::is_sid(sid, "AC") {
        return Err(ApiError::not_found(path));
    }
    match state.meta.account(sid).await? {
        Some(a) if a.parent_sid.as_deref() == Some(principal.sid()) => Ok(a),
        _ => Err(ApiError::not_found(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
        let h = hash_secret("s3cret");
        assert!(secret_matches_hash("s3cret", &h));
        assert!(!secret_matches_hash("s3cres", &h));
    }
}
