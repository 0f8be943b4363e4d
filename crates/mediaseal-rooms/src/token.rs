//! Twilio Access Tokens for Programmable Video: verification of the HS256 JWTs that twilio-python's
//! `AccessToken` + `VideoGrant` (and every other Twilio helper library) mint.
//!
//! ```text
//! header  {"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}        (+ "twr": region)
//! payload {"jti":"SK…-<now>","grants":{"identity":"alice","video":{"room":"my-room"}},
//!          "iss":"SK…","sub":"AC…","nbf":<now>,"exp":<now+ttl>}
//! ```
//!
//! The token is signed with the secret of API key `iss`, which must belong to account `sub`. The
//! caller supplies that lookup ([`ApiKeyLookup`]) and the current Unix time; nothing here reads a
//! clock or a database.
//!
//! Checks run in this order, each with Twilio's error code ([`AccessTokenError::code`]):
//!
//! 1. three base64url segments of JSON, at most [`MAX_TOKEN_LEN`] bytes — else 20101;
//! 2. header `alg` exactly `HS256`, `typ` `JWT`, `cty` `twilio-fpa;v=1` — else 20102 (so `none`
//!    and every asymmetric algorithm are refused before any key is touched);
//! 3. HMAC-SHA256 by the secret of API key `iss`, where `iss` belongs to account `sub`, compared in
//!    constant time by AWS-LC — else 20107. An unknown key, a key of another account and a bad
//!    signature are one error, so the answer does not tell which API key SIDs exist;
//! 4. `nbf ≤ now` (with [`VerifyOptions::not_before_leeway`] for clock skew) — else 20105;
//!    `now < exp` and `exp − nbf ≤ 24 h` — else 20104;
//! 5. `grants.video` present and `grants.identity` non-empty — else 20101;
//! 6. [`VerifiedAccessToken::authorize_room`]: `grants.video.room`, when set, names the room by
//!    UniqueName or SID — else 20106. The error does not repeat either name.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Longest token accepted, in bytes. Twilio tokens with a video grant are about 500 bytes; the
/// bound keeps a hostile caller from making us decode megabytes of base64.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Longest lifetime (`exp − nbf`) Twilio accepts: 24 hours.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Longest participant identity Twilio accepts, in bytes (its limit is 128 characters).
pub const MAX_IDENTITY_LEN: usize = 128;

const CONTENT_TYPE: &str = "twilio-fpa;v=1";

/// The API key record a token names in `iss`: the account it belongs to and its secret.
pub struct ApiKey {
    /// `AC…` SID of the account that owns the key.
    pub account_sid: String,
    /// The key's secret, as given to `AccessToken(…, api_key_secret)`.
    pub secret: Zeroizing<Vec<u8>>,
}

impl ApiKey {
    /// A key record for `account_sid` with `secret`.
    pub fn new(account_sid: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            account_sid: account_sid.into(),
            secret: Zeroizing::new(secret.into()),
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("account_sid", &self.account_sid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Finds the API key named by a token's `iss` claim. Implemented for closures
/// `Fn(&str) -> Option<ApiKey>`.
pub trait ApiKeyLookup {
    /// The key with SID `api_key_sid` (`SK…`), or `None` when there is no such key.
    fn api_key(&self, api_key_sid: &str) -> Option<ApiKey>;
}

impl<F> ApiKeyLookup for F
where
    F: Fn(&str) -> Option<ApiKey>,
{
    fn api_key(&self, api_key_sid: &str) -> Option<ApiKey> {
        self(api_key_sid)
    }
}

/// Knobs of [`verify_access_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// How far in the future `nbf` may lie, in seconds, to absorb clock skew between the host
    /// that minted the token (`nbf` = its "now") and this one. Expiry gets no leeway.
    pub not_before_leeway: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            not_before_leeway: 60,
        }
    }
}

/// A token whose header, signature, lifetime and video grant checked out.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedAccessToken {
    /// `sub`: the account the token was minted for.
    pub account_sid: String,
    /// `iss`: the API key that signed it.
    pub api_key_sid: String,
    /// `grants.identity`: the participant identity.
    pub identity: String,
    /// `grants.video.room`, when the grant is limited to one room (UniqueName or SID).
    pub room: Option<String>,
    /// `jti`, when present.
    pub token_id: Option<String>,
    /// `nbf` (or `iat` when `nbf` is absent), Unix seconds.
    pub not_before: Option<u64>,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
    /// Header `twr` (the region the token was minted for), when present.
    pub region: Option<String>,
}

impl fmt::Debug for VerifiedAccessToken {
    // The identity is a person's name more often than not; keep it out of debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedAccessToken")
            .field("account_sid", &self.account_sid)
            .field("api_key_sid", &self.api_key_sid)
            .field("identity", &"<redacted>")
            .field("room", &self.room.as_ref().map(|_| "<set>"))
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The room a participant asks to join, by both of its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomRef<'a> {
    /// `RM…` SID.
    pub sid: &'a str,
    /// UniqueName (Twilio defaults it to the SID).
    pub unique_name: &'a str,
}

impl VerifiedAccessToken {
    /// Checks that the grant covers `room`: a grant without `room` covers every room of the
    /// account; one with `room` must name it by UniqueName or SID. The caller checks that the room
    /// belongs to [`VerifiedAccessToken::account_sid`].
    pub fn authorize_room(&self, room: RoomRef<'_>) -> Result<(), AccessTokenError> {
        match &self.room {
            None => Ok(()),
            Some(granted) if granted == room.unique_name || granted == room.sid => Ok(()),
            Some(_) => Err(AccessTokenError::RoomNotGranted),
        }
    }
}

/// Why a token was refused. [`AccessTokenError::code`] is the Twilio error code to send back;
/// messages never contain claim values, room names or key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// Not a JWT: wrong segment count, bad base64url, bad JSON, missing claims, or too long.
    #[error(
        "the Access Token is not a valid JWT (three base64url segments of JSON with iss, sub and \
         exp); mint a new one with a Twilio helper library"
    )]
    Malformed,
    /// Header is not `alg: HS256`, `typ: JWT`, `cty: twilio-fpa;v=1`.
    #[error(
        "the Access Token header must say alg HS256, typ JWT and cty twilio-fpa;v=1; other \
         algorithms (including none) are refused"
    )]
    InvalidHeader,
    /// Signature does not verify with the secret of API key `iss` of account `sub`.
    #[error(
        "the Access Token signature is invalid: sign it with the secret of the API key named in \
         iss, which must belong to the account in sub"
    )]
    InvalidSignature,
    /// `now ≥ exp`, or `exp − nbf` exceeds 24 hours.
    #[error("the Access Token has expired or its lifetime exceeds 24 hours; mint a new one")]
    Expired,
    /// `nbf` lies in the future.
    #[error(
        "the Access Token is not valid yet (nbf is in the future); check the minting host's clock"
    )]
    NotYetValid,
    /// No video grant, or no identity.
    #[error("the Access Token needs a video grant and a non-empty identity of at most 128 bytes")]
    MissingVideoGrant,
    /// The video grant names a different room.
    #[error("the Access Token's video grant does not cover this room")]
    RoomNotGranted,
}

impl AccessTokenError {
    /// Twilio's error code for this refusal (20101, 20102, 20104, 20105, 20106 or 20107).
    pub fn code(self) -> u32 {
        match self {
            Self::Malformed | Self::MissingVideoGrant => 20101,
            Self::InvalidHeader => 20102,
            Self::Expired => 20104,
            Self::NotYetValid => 20105,
            Self::RoomNotGranted => 20106,
            Self::InvalidSignature => 20107,
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    cty: Option<String>,
    #[serde(default)]
    twr: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    jti: Option<String>,
    iss: String,
    sub: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    grants: Option<Grants>,
}

#[derive(Deserialize)]
struct Grants {
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    video: Option<VideoGrant>,
}

#[derive(Deserialize)]
struct VideoGrant {
    #[serde(default)]
    room: Option<String>,
}

/// Verifies `token` at Unix time `now` with the API keys of `keys`, then checks that its video
/// grant covers `room`. The usual entry point for every door into a room.
pub fn verify_access_token_for_room(
    token: &str,
    room: RoomRef<'_>,
    now: u64,
    keys: &dyn ApiKeyLookup,
    options: VerifyOptions,
) -> Result<VerifiedAccessToken, AccessTokenError> {
    let verified = verify_access_token(token, now, keys, options)?;
    verified.authorize_room(room)?;
    Ok(verified)
}

/// Verifies `token` at Unix time `now` with the API keys of `keys` (see the module docs for the
/// order of checks). Does not look at the room: call [`VerifiedAccessToken::authorize_room`].
pub fn verify_access_token(
    token: &str,
    now: u64,
    keys: &dyn ApiKeyLookup,
    options: VerifyOptions,
) -> Result<VerifiedAccessToken, AccessTokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AccessTokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AccessTokenError::Malformed);
    };

    let header: Header = decode_json(header_b64)?;
    if header.alg != "HS256"
        || header.typ.as_deref() != Some("JWT")
        || header.cty.as_deref() != Some(CONTENT_TYPE)
    {
        return Err(AccessTokenError::InvalidHeader);
    }
    let claims: Claims = decode_json(payload_b64)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| AccessTokenError::Malformed)?;

    // Everything before the second dot is what was signed.
    let signed_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = token
        .as_bytes()
        .get(..signed_len)
        .ok_or(AccessTokenError::Malformed)?;

    let key = keys.api_key(&claims.iss);
    let account_matches = key
        .as_ref()
        .is_some_and(|k| k.account_sid.as_bytes() == claims.sub.as_bytes());
    // Run one HMAC verification whatever the lookup said, so an unknown key SID costs the same
    // time as a wrong signature.
    let secret: &[u8] = match &key {
        Some(k) => &k.secret,
        None => b"mediaseal: no such API key",
    };
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signature_ok = hmac::verify(&hmac_key, signing_input, &signature).is_ok();
    if !(signature_ok && account_matches) {
        return Err(AccessTokenError::InvalidSignature);
    }

    let not_before = claims.nbf.or(claims.iat);
    if let Some(nbf) = not_before
        && nbf > now.saturating_add(options.not_before_leeway)
    {
        return Err(AccessTokenError::NotYetValid);
    }
    let lifetime_start = not_before.unwrap_or(now);
    if now >= claims.exp || claims.exp.saturating_sub(lifetime_start) > MAX_TOKEN_LIFETIME_SECS {
        return Err(AccessTokenError::Expired);
    }

    let Some(grants) = claims.grants else {
        return Err(AccessTokenError::MissingVideoGrant);
    };
    let (Some(video), Some(identity)) = (grants.video, grants.identity) else {
        return Err(AccessTokenError::MissingVideoGrant);
    };
    if identity.is_empty() || identity.len() > MAX_IDENTITY_LEN {
        return Err(AccessTokenError::MissingVideoGrant);
    }

    Ok(VerifiedAccessToken {
        account_sid: claims.sub,
        api_key_sid: claims.iss,
        identity,
        room: video.room.filter(|r| !r.is_empty()),
        token_id: claims.jti,
        not_before,
        expires_at: claims.exp,
        region: header.twr,
    })
}

fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Result<T, AccessTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AccessTokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AccessTokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "AC00000000000000000000000000000001";
    const KEY_SID: &str = "SK00000000000000000000000000000001";
    const SECRET: &[u8] = b"an api key secret of some length!";
    const NOW: u64 = 1_800_000_000;

    fn sign(header: &str, payload: &str, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn keys(sid: &str) -> Option<ApiKey> {
        (sid == KEY_SID).then(|| ApiKey::new(ACCOUNT, SECRET))
    }

    const HEADER: &str = r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#;

    fn payload(grants: &str, nbf: u64, exp: u64) -> String {
        format!(
            r#"{{"jti":"{KEY_SID}-{nbf}","grants":{grants},"iss":"{KEY_SID}","exp":{exp},"nbf":{nbf},"sub":"{ACCOUNT}"}}"#
        )
    }

    fn verify(token: &str) -> Result<VerifiedAccessToken, AccessTokenError> {
        verify_access_token(token, NOW, &keys, VerifyOptions::default())
    }

    #[test]
    fn accepts_a_room_grant_and_checks_the_room() {
        let t = sign(
            HEADER,
            &payload(
                r#"{"identity":"alice","video":{"room":"standup"}}"#,
                NOW,
                NOW + 3600,
            ),
            SECRET,
        );
        let v = verify(&t).expect("valid");
        assert_eq!(v.identity, "alice");
        assert_eq!(v.account_sid, ACCOUNT);
        let by_name = RoomRef {
            sid: "RM00000000000000000000000000000001",
            unique_name: "standup",
        };
        assert!(v.authorize_room(by_name).is_ok());
        let other = RoomRef {
            sid: "RM00000000000000000000000000000002",
            unique_name: "other",
        };
        assert_eq!(v.authorize_room(other).unwrap_err().code(), 20106);
    }

    #[test]
    fn rejections_carry_twilio_codes() {
        let good = payload(r#"{"identity":"a","video":{}}"#, NOW, NOW + 60);
        let cases: Vec<(String, u32)> = vec![
            ("garbage".to_owned(), 20101),
            (
                sign(
                    r#"{"alg":"HS512","cty":"twilio-fpa;v=1","typ":"JWT"}"#,
                    &good,
                    SECRET,
                ),
                20102,
            ),
            (
                sign(
                    r#"{"alg":"none","cty":"twilio-fpa;v=1","typ":"JWT"}"#,
                    &good,
                    SECRET,
                ),
                20102,
            ),
            (sign(r#"{"alg":"HS256","typ":"JWT"}"#, &good, SECRET), 20102),
            (sign(HEADER, &good, b"wrong secret"), 20107),
            (
                sign(
                    HEADER,
                    &payload(r#"{"identity":"a","video":{}}"#, NOW - 100, NOW),
                    SECRET,
                ),
                20104,
            ),
            (
                sign(
                    HEADER,
                    &payload(r#"{"identity":"a","video":{}}"#, NOW, NOW + 86401),
                    SECRET,
                ),
                20104,
            ),
            (
                sign(
                    HEADER,
                    &payload(r#"{"identity":"a","video":{}}"#, NOW + 600, NOW + 900),
                    SECRET,
                ),
                20105,
            ),
            (
                sign(HEADER, &payload(r#"{"video":{}}"#, NOW, NOW + 60), SECRET),
                20101,
            ),
            (
                sign(
                    HEADER,
                    &payload(r#"{"identity":"","video":{}}"#, NOW, NOW + 60),
                    SECRET,
                ),
                20101,
            ),
            (
                sign(
                    HEADER,
                    &payload(r#"{"identity":"a"}"#, NOW, NOW + 60),
                    SECRET,
                ),
                20101,
            ),
        ];
        for (token, code) in cases {
            assert_eq!(verify(&token).unwrap_err().code(), code, "{token}");
        }
    }

    #[test]
    fn unknown_key_and_foreign_account_look_like_a_bad_signature() {
        let other_key = payload(r#"{"identity":"a","video":{}}"#, NOW, NOW + 60)
            .replace(KEY_SID, "SK00000000000000000000000000000009");
        assert_eq!(
            verify(&sign(HEADER, &other_key, SECRET)),
            Err(AccessTokenError::InvalidSignature)
        );
        let other_account = payload(r#"{"identity":"a","video":{}}"#, NOW, NOW + 60)
            .replace(ACCOUNT, "AC00000000000000000000000000000009");
        assert_eq!(
            verify(&sign(HEADER, &other_account, SECRET)),
            Err(AccessTokenError::InvalidSignature)
        );
    }

    #[test]
    fn a_flipped_signature_bit_or_extra_segment_is_refused() {
        let t = sign(
            HEADER,
            &payload(r#"{"identity":"a","video":{}}"#, NOW, NOW + 60),
            SECRET,
        );
        let mut sig = URL_SAFE_NO_PAD
            .decode(t.rsplit('.').next().unwrap())
            .unwrap();
        sig[0] ^= 1;
        let head = t.rsplit_once('.').unwrap().0;
        let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(verify(&flipped), Err(AccessTokenError::InvalidSignature));
        assert_eq!(verify(&format!("{t}.x")), Err(AccessTokenError::Malformed));
        assert_eq!(verify(&format!("{t}=")), Err(AccessTokenError::Malformed));
    }

    #[test]
    fn messages_do_not_echo_inputs() {
        for e in [
            AccessTokenError::Malformed,
            AccessTokenError::InvalidHeader,
            AccessTokenError::InvalidSignature,
            AccessTokenError::Expired,
            AccessTokenError::NotYetValid,
            AccessTokenError::MissingVideoGrant,
            AccessTokenError::RoomNotGranted,
        ] {
            let m = e.to_string();
            assert!(
                !m.contains("standup") && !m.contains("AC0") && !m.contains("SK0"),
                "{m}"
            );
        }
    }
}
