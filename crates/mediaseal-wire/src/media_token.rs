//! Capability tokens of `/Media` download URLs, for when the object store cannot presign its
//! own (the directory backend).
//!
//! A token names one object, how to serve it and when it stops working, and carries an
//! HMAC-SHA256 over all of that keyed with the service's URL-signing secret. Holding the URL is
//! the permission (like an S3 presigned URL), so the download needs no credentials; a changed or
//! expired token is refused with 403. The MAC is checked in constant time before anything in the
//! token is believed.
//!
//! Layout: `base64url(payload) "." base64url(mac)`, where
//! `payload = version(1) ‖ expires(u64 BE, Unix seconds) ‖ mode(1) ‖ content_type(1) ‖ key` and
//! `mac = HMAC-SHA256(secret, "mediaseal/media-url/v1" ‖ 0x00 ‖ payload)`.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const VERSION: u8 = 1;
const CONTEXT: &[u8] = b"mediaseal/media-url/v1\0";
/// Longest object key a token carries (the store's own limit).
const MAX_KEY: usize = 256;

/// How the object behind a token is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeMode {
    /// Sealed with the customer's key: the stored bytes, with the envelope headers.
    Sealed,
    /// Sealed with the service's own key: decrypted on the way out.
    AtRest,
}

/// The media types a download is served as.
const CONTENT_TYPES: [&str; 6] = [
    "application/octet-stream",
    "audio/x-matroska",
    "video/x-matroska",
    "video/mp4",
    "video/webm",
    // Appended: a token's index of a type must keep its meaning.
    "audio/x-wav",
];

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The object.
    pub key: String,
    /// How to serve it.
    pub mode: ServeMode,
    /// `Content-Type` of the response.
    pub content_type: &'static str,
    /// Expiry, Unix seconds.
    pub expires: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token this service made, or altered.
    Invalid,
    /// Genuine, but past its expiry.
    Expired,
}

fn mac_key(secret: &[u8; 32]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

fn tag(key: &hmac::Key, payload: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(CONTEXT);
    ctx.update(payload);
    ctx.sign()
}

/// A token for `key`, valid until `expires` (Unix seconds).
pub fn sign(
    secret: &[u8; 32],
    key: &str,
    mode: ServeMode,
    content_type: &str,
    expires: u64,
) -> String {
    let ctype = CONTENT_TYPES
        .iter()
        .position(|c| *c == content_type)
        .unwrap_or(0) as u8;
    let mut payload = Vec::with_capacity(11 + key.len());
    payload.push(VERSION);
    payload.extend_from_slice(&expires.to_be_bytes());
    payload.push(match mode {
        ServeMode::Sealed => 0,
        ServeMode::AtRest => 1,
    });
    payload.push(ctype);
    payload.extend_from_slice(key.as_bytes());
    let mac = tag(&mac_key(secret), &payload);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(mac.as_ref())
    )
}

/// Checks a token at time `now` (Unix seconds).
pub fn verify(secret: &[u8; 32], token: &str, now: u64) -> Result<Grant, Refusal> {
    if token.len() > 2 * MAX_KEY + 128 {
        return Err(Refusal::Invalid);
    }
    let (payload_b64, mac_b64) = token.split_once('.').ok_or(Refusal::Invalid)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| Refusal::Invalid)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac_b64)
        .map_err(|_| Refusal::Invalid)?;
    let mut signed = Vec::with_capacity(CONTEXT.len() + payload.len());
    signed.extend_from_slice(CONTEXT);
    signed.extend_from_slice(&payload);
    // Constant-time comparison inside AWS-LC; nothing in the payload is trusted before it.
    hmac::verify(&mac_key(secret), &signed, &mac).map_err(|_| Refusal::Invalid)?;
    let (&version, rest) = payload.split_first().ok_or(Refusal::Invalid)?;
    if version != VERSION || rest.len() < 10 {
        return Err(Refusal::Invalid);
    }
    let (expires, rest) = rest.split_at(8);
    let expires = u64::from_be_bytes(expires.try_into().map_err(|_| Refusal::Invalid)?);
    let mode = match rest[0] {
        0 => ServeMode::Sealed,
        1 => ServeMode::AtRest,
        _ => return Err(Refusal::Invalid),
    };
    let content_type = *CONTENT_TYPES
        .get(usize::from(rest[1]))
        .ok_or(Refusal::Invalid)?;
    let key = std::str::from_utf8(&rest[2..]).map_err(|_| Refusal::Invalid)?;
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Refusal::Invalid);
    }
    if now > expires {
        return Err(Refusal::Expired);
    }
    Ok(Grant {
        key: key.to_owned(),
        mode,
        content_type,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [9u8; 32];

    #[test]
    fn round_trip_and_expiry() {
        let t = sign(
            &SECRET,
            "AC1/RT1",
            ServeMode::Sealed,
            "application/octet-stream",
            1000,
        );
        let g = verify(&SECRET, &t, 999).unwrap();
        assert_eq!(g.key, "AC1/RT1");
        assert_eq!(g.mode, ServeMode::Sealed);
        assert_eq!(verify(&SECRET, &t, 1000).unwrap().expires, 1000);
        assert_eq!(verify(&SECRET, &t, 1001), Err(Refusal::Expired));
        let t = sign(&SECRET, "AC1/CJ1-1", ServeMode::AtRest, "video/webm", 5);
        let g = verify(&SECRET, &t, 0).unwrap();
        assert_eq!((g.mode, g.content_type), (ServeMode::AtRest, "video/webm"));
    }

    #[test]
    fn tampering_and_other_keys_are_refused() {
        let t = sign(
            &SECRET,
            "AC1/RT1",
            ServeMode::Sealed,
            "application/octet-stream",
            1000,
        );
        assert_eq!(verify(&[8u8; 32], &t, 0), Err(Refusal::Invalid));
        // Re-sign nothing, but change the expiry or the key inside the payload.
        let (p, m) = t.split_once('.').unwrap();
        let mut payload = URL_SAFE_NO_PAD.decode(p).unwrap();
        payload[8] ^= 1;
        let forged = format!("{}.{m}", URL_SAFE_NO_PAD.encode(&payload));
        assert_eq!(verify(&SECRET, &forged, 0), Err(Refusal::Invalid));
        let mut payload = URL_SAFE_NO_PAD.decode(p).unwrap();
        *payload.last_mut().unwrap() = b'2';
        let forged = format!("{}.{m}", URL_SAFE_NO_PAD.encode(&payload));
        assert_eq!(verify(&SECRET, &forged, 0), Err(Refusal::Invalid));
        for junk in ["", ".", "abc", "a.b", &"x".repeat(5000), &format!("{p}.")] {
            assert_eq!(
                verify(&SECRET, junk, 0),
                Err(Refusal::Invalid),
                "{junk:.20}"
            );
        }
    }
}
