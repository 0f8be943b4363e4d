//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 2617, RFC 8760).
//!
//! **Server side** ([`DigestServer`]): challenges (401 `WWW-Authenticate` or 407
//! `Proxy-Authenticate`) with *stateless* nonces, and verification of `Authorization` /
//! `Proxy-Authorization` for `MD5`, `MD5-sess`, `SHA-256` and `SHA-256-sess` with `qop=auth`.
//!
//! - A nonce is `base64url(time ‖ salt ‖ HMAC-SHA256(secret, time ‖ salt ‖ client IP ‖ realm)[..16])`.
//!   `time` is milliseconds since the server's epoch (an [`Instant`] given at construction), so
//!   nothing is stored per challenge and no clock is read: `now` is an argument. A nonce older
//!   than the lifetime is *stale* and answered with a fresh challenge carrying `stale=true`; a
//!   nonce from another client address, another realm, or another server secret is invalid.
//! - Being stateless, a captured `Authorization` can be replayed for the *same* method and
//!   Request-URI from the *same* address until its nonce expires; keep the lifetime short
//!   (the default is 30 s) and run secure domains over TLS, where it cannot be captured.
//! - Only `qop=auth` is accepted (with `nc` and `cnonce`); RFC 2069 responses without qop are
//!   refused. The `uri` directive must name the Request-URI.
//! - Responses are compared in constant time (`aws_lc_rs::constant_time`).
//!
//! **Stored credentials.** Like Twilio, which never returns a SIP credential's password, the
//! server need not keep the password: [`Ha1Set::compute`] derives `HA1 = H(username:realm:password)`
//! once per algorithm (MD5 and SHA-256) when the credential is created, and [`StoredCredential::Ha1`]
//! verifies with those alone. HA1 is bound to the realm (the SIP domain name), so renaming a
//! domain requires the credentials' passwords again. HA1 is password-equivalent *for that
//! realm*: keep it secret like a password (it zeroizes on drop and `Debug` redacts it).
//!
//! **Client side** ([`respond`], [`authorize`]): answers a challenge for outbound legs
//! (`<Sip username password>`), preferring SHA-256 over MD5 when both are offered.

use core::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::{constant_time, digest, hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::md5::Md5;
use crate::message::{
    HeaderName, Method, Request, Response, StatusCode, Uri, quote, split_outside_quotes, unquote,
};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `MD5` (RFC 2617; what most SIP phones use).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl DigestAlgorithm {
    /// The token used in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parses the token (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    fn is_sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    fn base(self) -> Self {
        match self {
            Self::Md5 | Self::Md5Sess => Self::Md5,
            Self::Sha256 | Self::Sha256Sess => Self::Sha256,
        }
    }

    /// Lower-case hex of `H(parts joined by ':')`.
    fn hash_hex(self, parts: &[&[u8]]) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(64));
        match self.base() {
            Self::Sha256 | Self::Sha256Sess => {
                let mut ctx = digest::Context::new(&digest::SHA256);
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        ctx.update(b":");
                    }
                    ctx.update(p);
                }
                push_hex(&mut out, ctx.finish().as_ref());
            }
            Self::Md5 | Self::Md5Sess => {
                let mut ctx = Md5::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        ctx.update(b":");
                    }
                    ctx.update(p);
                }
                push_hex(&mut out, &Zeroizing::new(ctx.finish())[..]);
            }
        }
        out
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// Why an `Authorization` or `WWW-Authenticate` value could not be parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A `name=value` pair is malformed.
    #[error("malformed digest parameter list")]
    Malformed,
    /// A required parameter is missing.
    #[error("digest parameter {0} is missing")]
    Missing(&'static str),
    /// An algorithm other than MD5, MD5-sess, SHA-256, SHA-256-sess.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only qop values we cannot answer (`auth-int` only).
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
    /// The response has no usable challenge header.
    #[error("the response carries no Digest challenge we support")]
    NoChallenge,
}

/// Splits `Digest a=b, c="d"` into the scheme and its parameters (names lower-cased, values
/// unquoted).
fn parse_auth_params(value: &str) -> Result<Vec<(String, String)>, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    let mut out = Vec::new();
    for part in split_outside_quotes(rest, b',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, v) = part.split_once('=').ok_or(AuthError::Malformed)?;
        let name = name.trim().to_ascii_lowercase();
        let v = v.trim();
        if name.is_empty() || !crate::message::is_token(&name) || v.is_empty() {
            return Err(AuthError::Malformed);
        }
        if v.starts_with('"') && !(v.len() >= 2 && v.ends_with('"')) {
            return Err(AuthError::Malformed);
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(AuthError::Malformed);
        }
        out.push((name, unquote(v)));
    }
    Ok(out)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A Digest challenge (`WWW-Authenticate` / `Proxy-Authenticate` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// Protection realm (the SIP domain).
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo.
    pub opaque: Option<String>,
    /// Algorithm (default MD5).
    pub algorithm: DigestAlgorithm,
    /// Offered qop values (`auth`, `auth-int`); empty for RFC 2069 challenges.
    pub qop: Vec<String>,
    /// Whether the previous nonce was merely stale.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses a challenge header value.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let p = parse_auth_params(value)?;
        let algorithm = match param(&p, "algorithm") {
            Some(a) => DigestAlgorithm::parse(a)
                .ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_owned()))?,
            None => DigestAlgorithm::Md5,
        };
        Ok(Self {
            realm: param(&p, "realm")
                .ok_or(AuthError::Missing("realm"))?
                .to_owned(),
            nonce: param(&p, "nonce")
                .ok_or(AuthError::Missing("nonce"))?
                .to_owned(),
            opaque: param(&p, "opaque").map(str::to_owned),
            algorithm,
            qop: param(&p, "qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stale: param(&p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

impl fmt::Display for DigestChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}, algorithm={}",
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm
        )?;
        if !self.qop.is_empty() {
            write!(f, ", qop={}", quote(&self.qop.join(",")))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// Digest credentials (`Authorization` / `Proxy-Authorization` value). `Debug` redacts the
/// response.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// User name.
    pub username: String,
    /// Realm.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// The digest-uri (the Request-URI).
    pub uri: String,
    /// The response hash, lower-case hex.
    pub response: String,
    /// Algorithm (default MD5).
    pub algorithm: DigestAlgorithm,
    /// Client nonce.
    pub cnonce: Option<String>,
    /// Nonce count.
    pub nc: Option<u32>,
    /// Chosen qop.
    pub qop: Option<String>,
    /// Echoed opaque.
    pub opaque: Option<String>,
}

impl fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .field("algorithm", &self.algorithm)
            .field("qop", &self.qop)
            .field("nc", &self.nc)
            .finish_non_exhaustive()
    }
}

impl DigestCredentials {
    /// Parses a credentials header value.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let p = parse_auth_params(value)?;
        let get = |n: &'static str| param(&p, n).map(str::to_owned).ok_or(AuthError::Missing(n));
        let algorithm = match param(&p, "algorithm") {
            Some(a) => DigestAlgorithm::parse(a)
                .ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_owned()))?,
            None => DigestAlgorithm::Md5,
        };
        let nc = match param(&p, "nc") {
            Some(n) if n.len() == 8 => {
                Some(u32::from_str_radix(n, 16).map_err(|_| AuthError::Malformed)?)
            }
            Some(_) => return Err(AuthError::Malformed),
            None => None,
        };
        Ok(Self {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            algorithm,
            cnonce: param(&p, "cnonce").map(str::to_owned),
            nc,
            qop: param(&p, "qop").map(str::to_owned),
            opaque: param(&p, "opaque").map(str::to_owned),
        })
    }
}

impl fmt::Display for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response),
            self.algorithm
        )?;
        if let Some(c) = &self.cnonce {
            write!(f, ", cnonce={}", quote(c))?;
        }
        if let Some(q) = &self.qop {
            write!(f, ", qop={q}")?;
        }
        if let Some(n) = self.nc {
            write!(f, ", nc={n:08x}")?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        Ok(())
    }
}

/// HA1 values for one credential in one realm, as stored instead of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1Set {
    md5: Option<Zeroizing<String>>,
    sha256: Option<Zeroizing<String>>,
}

impl fmt::Debug for Ha1Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ha1Set")
            .field("md5", &self.md5.as_ref().map(|_| "<redacted>"))
            .field("sha256", &self.sha256.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Ha1Set {
    /// Computes `H(username:realm:password)` for MD5 and SHA-256.
    pub fn compute(username: &str, realm: &str, password: &str) -> Self {
        let parts: [&[u8]; 3] = [username.as_bytes(), realm.as_bytes(), password.as_bytes()];
        Self {
            md5: Some(DigestAlgorithm::Md5.hash_hex(&parts)),
            sha256: Some(DigestAlgorithm::Sha256.hash_hex(&parts)),
        }
    }

    /// Loads stored hex values (either may be absent; hex is checked and lower-cased).
    pub fn from_hex(md5: Option<&str>, sha256: Option<&str>) -> Result<Self, AuthError> {
        let check = |v: Option<&str>, len: usize| -> Result<Option<Zeroizing<String>>, AuthError> {
            match v {
                Some(h) if h.len() == len && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Ok(Some(Zeroizing::new(h.to_ascii_lowercase())))
                }
                Some(_) => Err(AuthError::Malformed),
                None => Ok(None),
            }
        };
        Ok(Self {
            md5: check(md5, 32)?,
            sha256: check(sha256, 64)?,
        })
    }

    /// The MD5 HA1 in hex (secret).
    pub fn md5_hex(&self) -> Option<&str> {
        self.md5.as_deref().map(String::as_str)
    }

    /// The SHA-256 HA1 in hex (secret).
    pub fn sha256_hex(&self) -> Option<&str> {
        self.sha256.as_deref().map(String::as_str)
    }

    fn for_algorithm(&self, a: DigestAlgorithm) -> Option<&str> {
        match a.base() {
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => self.sha256_hex(),
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => self.md5_hex(),
        }
    }
}

/// What the server knows about a user's secret.
#[derive(Clone)]
pub enum StoredCredential {
    /// The password itself (outbound legs, tests).
    Password(Zeroizing<String>),
    /// HA1 values only (how SIP credential lists are stored).
    Ha1(Ha1Set),
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Ha1(h) => f.debug_tuple("Ha1").field(h).finish(),
        }
    }
}

fn ha1(
    stored: &StoredCredential,
    username: &str,
    realm: &str,
    algorithm: DigestAlgorithm,
) -> Option<Zeroizing<String>> {
    match stored {
        StoredCredential::Password(p) => {
            Some(
                algorithm
                    .base()
                    .hash_hex(&[username.as_bytes(), realm.as_bytes(), p.as_bytes()]),
            )
        }
        StoredCredential::Ha1(set) => set
            .for_algorithm(algorithm)
            .map(|h| Zeroizing::new(h.to_owned())),
    }
}

/// The request-digest (RFC 7616 §3.4.1); `qop`/`nc`/`cnonce` absent means RFC 2069.
#[allow(clippy::too_many_arguments)]
fn request_digest(
    algorithm: DigestAlgorithm,
    ha1: &str,
    nonce: &str,
    cnonce: Option<&str>,
    nc: Option<u32>,
    qop: Option<&str>,
    method: &str,
    uri: &str,
) -> Zeroizing<String> {
    let ha1 = if algorithm.is_sess() {
        algorithm.hash_hex(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            cnonce.unwrap_or_default().as_bytes(),
        ])
    } else {
        Zeroizing::new(ha1.to_owned())
    };
    let ha2 = algorithm.hash_hex(&[method.as_bytes(), uri.as_bytes()]);
    match (qop, nc, cnonce) {
        (Some(q), Some(n), Some(c)) => {
            let nc = format!("{n:08x}");
            algorithm.hash_hex(&[
                ha1.as_bytes(),
                nonce.as_bytes(),
                nc.as_bytes(),
                c.as_bytes(),
                q.as_bytes(),
                ha2.as_bytes(),
            ])
        }
        _ => algorithm.hash_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Which header pair a challenge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// 401 with `WWW-Authenticate`, answered with `Authorization` (a UAS / registrar).
    Www,
    /// 407 with `Proxy-Authenticate`, answered with `Proxy-Authorization` (a proxy).
    Proxy,
}

impl ChallengeKind {
    /// The challenge status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Www => StatusCode::UNAUTHORIZED,
            Self::Proxy => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        }
    }
    /// The challenge header.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            Self::Www => HeaderName::WWW_AUTHENTICATE,
            Self::Proxy => HeaderName::PROXY_AUTHENTICATE,
        }
    }
    /// The credentials header.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            Self::Www => HeaderName::AUTHORIZATION,
            Self::Proxy => HeaderName::PROXY_AUTHORIZATION,
        }
    }
}

/// Why credentials were refused. Every case is answered with a new challenge; only
/// [`Self::Stale`] sets `stale=true`. The detail is for logs, never for the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No credentials header for this realm.
    #[error("no credentials for realm")]
    NoCredentials,
    /// The credentials header does not parse.
    #[error("malformed credentials: {0}")]
    Malformed(AuthError),
    /// The nonce is older than the lifetime (the client should retry with the new nonce).
    #[error("nonce expired")]
    Stale,
    /// The nonce was not issued by us for this client and realm.
    #[error("nonce not issued by this server for this client")]
    InvalidNonce,
    /// The digest-uri does not name the Request-URI.
    #[error("digest uri does not match the Request-URI")]
    UriMismatch,
    /// qop is not `auth`, or nc/cnonce are missing.
    #[error("qop=auth with nc and cnonce is required")]
    QopRequired,
    /// No HA1 is stored for the requested algorithm.
    #[error("no stored secret for {0}")]
    AlgorithmNotStored(DigestAlgorithm),
    /// The response does not match (wrong password, or tampered request).
    #[error("wrong digest response")]
    WrongResponse,
}

/// The server side: issues stateless nonces and verifies credentials.
pub struct DigestServer {
    key: hmac::Key,
    epoch: Instant,
    lifetime: Duration,
}

impl fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestServer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// Nonce layout: 8 bytes time (ms since epoch, big-endian) ‖ 8 bytes salt ‖ 16 bytes MAC.
const NONCE_BYTES: usize = 32;
/// Tolerated clock skew for nonces that look slightly in the future (none should).
const FUTURE_SLACK: Duration = Duration::from_secs(1);

impl DigestServer {
    /// Default nonce lifetime.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(30);

    /// A server with `secret` (at least 32 random bytes; share it between processes that
    /// must accept each other's nonces) and an epoch `Instant`. Nonces issued before `epoch`
    /// are impossible; nonces from a previous process are invalid and get a fresh challenge.
    pub fn new(secret: &[u8], epoch: Instant, nonce_lifetime: Duration) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            epoch,
            lifetime: nonce_lifetime,
        }
    }

    /// A server with a fresh random secret.
    pub fn with_random_secret(
        epoch: Instant,
        nonce_lifetime: Duration,
    ) -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::fill(&mut secret[..])?;
        Ok(Self::new(&secret[..], epoch, nonce_lifetime))
    }

    fn mac(&self, time_salt: &[u8], client: IpAddr, realm: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(time_salt);
        match client {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        ctx.update(realm.as_bytes());
        ctx.sign()
    }

    /// A new nonce for `client` in `realm`.
    pub fn nonce(&self, realm: &str, client: IpAddr, now: Instant) -> String {
        let ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        let mut buf = [0u8; NONCE_BYTES];
        let (time, rest) = buf.split_at_mut(8);
        time.copy_from_slice(&ms.to_be_bytes());
        let (salt, mac_out) = rest.split_at_mut(8);
        // A failed RNG leaves a zero salt: the nonce is still unforgeable, merely repeatable
        // within one millisecond.
        let _ = rand::fill(salt);
        let mut time_salt = [0u8; 16];
        time_salt[..8].copy_from_slice(&ms.to_be_bytes());
        time_salt[8..].copy_from_slice(salt);
        let tag = self.mac(&time_salt, client, realm);
        mac_out.copy_from_slice(&tag.as_ref()[..16]);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// A challenge value.
    pub fn challenge(
        &self,
        realm: &str,
        algorithm: DigestAlgorithm,
        client: IpAddr,
        now: Instant,
        stale: bool,
    ) -> DigestChallenge {
        DigestChallenge {
            realm: realm.to_owned(),
            nonce: self.nonce(realm, client, now),
            opaque: None,
            algorithm,
            qop: vec!["auth".to_owned()],
            stale,
        }
    }

    /// A 401 (or 407) response to `request` with one challenge per algorithm, in the given
    /// order (RFC 8760 §2.4: most preferred first; put SHA-256 before MD5).
    #[allow(clippy::too_many_arguments)]
    pub fn challenge_response(
        &self,
        request: &Request,
        kind: ChallengeKind,
        realm: &str,
        algorithms: &[DigestAlgorithm],
        client: IpAddr,
        now: Instant,
        stale: bool,
        to_tag: &str,
    ) -> Response {
        let mut r = Response::for_request(request, kind.status()).with_to_tag(to_tag);
        let nonce = self.nonce(realm, client, now);
        for &algorithm in algorithms {
            let c = DigestChallenge {
                realm: realm.to_owned(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm,
                qop: vec!["auth".to_owned()],
                stale,
            };
            r.headers.push(kind.challenge_header(), c.to_string());
        }
        r
    }

    /// Checks a nonce: `Ok` if we issued it to `client` for `realm` and it is fresh.
    pub fn check_nonce(
        &self,
        nonce: &str,
        realm: &str,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), VerifyError> {
        let raw = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| VerifyError::InvalidNonce)?;
        let raw: [u8; NONCE_BYTES] = raw.try_into().map_err(|_| VerifyError::InvalidNonce)?;
        let (time_salt, mac) = raw.split_at(16);
        let tag = self.mac(time_salt, client, realm);
        constant_time::verify_slices_are_equal(&tag.as_ref()[..16], mac)
            .map_err(|_| VerifyError::InvalidNonce)?;
        let mut time = [0u8; 8];
        time.copy_from_slice(&time_salt[..8]);
        let issued = self
            .epoch
            .checked_add(Duration::from_millis(u64::from_be_bytes(time)))
            .ok_or(VerifyError::InvalidNonce)?;
        if issued > now + FUTURE_SLACK {
            return Err(VerifyError::InvalidNonce);
        }
        if now.saturating_duration_since(issued) > self.lifetime {
            return Err(VerifyError::Stale);
        }
        Ok(())
    }

    /// Finds the credentials for `realm` in `request` (the header of `kind`).
    pub fn credentials(
        request: &Request,
        kind: ChallengeKind,
        realm: &str,
    ) -> Result<DigestCredentials, VerifyError> {
        let mut first_error = None;
        for v in request.headers.get_all(&kind.credentials_header()) {
            match DigestCredentials::parse(v) {
                Ok(c) if c.realm == realm => return Ok(c),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.map_or(VerifyError::NoCredentials, VerifyError::Malformed))
    }

    /// Verifies `creds` (from [`Self::credentials`]) against the stored secret.
    pub fn verify(
        &self,
        request: &Request,
        creds: &DigestCredentials,
        stored: &StoredCredential,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), VerifyError> {
        self.check_nonce(&creds.nonce, &creds.realm, client, now)?;
        let (Some(qop), Some(nc), Some(cnonce)) = (&creds.qop, creds.nc, &creds.cnonce) else {
            return Err(VerifyError::QopRequired);
        };
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(VerifyError::QopRequired);
        }
        if !uri_matches(&creds.uri, &request.uri) {
            return Err(VerifyError::UriMismatch);
        }
        let ha1 = ha1(stored, &creds.username, &creds.realm, creds.algorithm)
            .ok_or(VerifyError::AlgorithmNotStored(creds.algorithm))?;
        let expected = request_digest(
            creds.algorithm,
            &ha1,
            &creds.nonce,
            Some(cnonce),
            Some(nc),
            Some(qop),
            request.method.as_str(),
            &creds.uri,
        );
        let got = Zeroizing::new(creds.response.to_ascii_lowercase());
        constant_time::verify_slices_are_equal(expected.as_bytes(), got.as_bytes())
            .map_err(|_| VerifyError::WrongResponse)
    }
}

fn uri_matches(digest_uri: &str, request_uri: &Uri) -> bool {
    if digest_uri == request_uri.to_string() {
        return true;
    }
    match (Uri::parse(digest_uri), request_uri) {
        (Ok(Uri::Sip(a)), Uri::Sip(b)) => a.equivalent(b),
        _ => false,
    }
}

/// The client side: credentials answering `challenge` for `method` on `uri`. `cnonce` is
/// generated when `None`; `nc` counts requests made with this nonce (start at 1).
pub fn respond(
    challenge: &DigestChallenge,
    username: &str,
    password: &str,
    method: &Method,
    uri: &str,
    nc: u32,
    cnonce: Option<&str>,
) -> Result<DigestCredentials, AuthError> {
    let qop = if challenge.qop.is_empty() {
        None
    } else if challenge.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
        Some("auth")
    } else {
        return Err(AuthError::UnsupportedQop(challenge.qop.join(",")));
    };
    let cnonce = match (qop, cnonce) {
        (None, _) => None,
        (Some(_), Some(c)) => Some(c.to_owned()),
        (Some(_), None) => Some(crate::ids::random_token(16)),
    };
    let ha1 = challenge.algorithm.base().hash_hex(&[
        username.as_bytes(),
        challenge.realm.as_bytes(),
        password.as_bytes(),
    ]);
    let response = request_digest(
        challenge.algorithm,
        &ha1,
        &challenge.nonce,
        cnonce.as_deref(),
        qop.map(|_| nc),
        qop,
        method.as_str(),
        uri,
    );
    Ok(DigestCredentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response: response.as_str().to_owned(),
        algorithm: challenge.algorithm,
        cnonce,
        nc: qop.map(|_| nc),
        qop: qop.map(str::to_owned),
        opaque: challenge.opaque.clone(),
    })
}

/// Retries `request` after a 401/407 `challenge_response`: adds `Authorization` (or
/// `Proxy-Authorization`) for the preferred supported challenge (SHA-256 before MD5),
/// increments CSeq, and removes the Via headers so the endpoint sends it as a new transaction.
pub fn authorize(
    request: &mut Request,
    challenge_response: &Response,
    username: &str,
    password: &str,
) -> Result<(), AuthError> {
    let kind = match challenge_response.status {
        StatusCode::UNAUTHORIZED => ChallengeKind::Www,
        StatusCode::PROXY_AUTHENTICATION_REQUIRED => ChallengeKind::Proxy,
        _ => return Err(AuthError::NoChallenge),
    };
    let mut challenges: Vec<DigestChallenge> = challenge_response
        .headers
        .get_all(&kind.challenge_header())
        .filter_map(|v| DigestChallenge::parse(v).ok())
        .filter(|c| c.qop.is_empty() || c.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")))
        .collect();
    challenges.sort_by_key(|c| match c.algorithm.base() {
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => 0,
        DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => 1,
    });
    let challenge = challenges.first().ok_or(AuthError::NoChallenge)?;
    let uri = request.uri.to_string();
    let creds = respond(
        challenge,
        username,
        password,
        &request.method,
        &uri,
        1,
        None,
    )?;
    request.headers.remove(&kind.credentials_header());
    request
        .headers
        .push(kind.credentials_header(), creds.to_string());
    if let Ok(mut cseq) = request.headers.cseq() {
        cseq.seq = cseq.seq.saturating_add(1);
        request.headers.set(HeaderName::CSEQ, cseq.to_string());
    }
    request.headers.remove(&HeaderName::VIA);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an epoch for simulated time
mod tests {
    use super::*;
    use crate::message::{ParseLimits, SipMessage};

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5.
        let c = DigestChallenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algorithm: DigestAlgorithm::Md5,
            qop: vec!["auth".into(), "auth-int".into()],
            stale: false,
        };
        let r = respond(
            &c,
            "Mufasa",
            "Circle Of Life",
            &Method::Extension("GET".into()),
            "/dir/index.html",
            1,
            Some("0a4f113b"),
        )
        .unwrap();
        assert_eq!(r.response, "6629fae49393a05397450978507c4ef1");
    }

    fn invite(auth: Option<&str>) -> Request {
        let mut text = "INVITE sip:bob@acme.sip.example SIP/2.0\r\n\
Via: SIP/2.0/TLS 192.0.2.5:5061;branch=z9hG4bK1\r\n\
From: <sip:alice@acme.sip.example>;tag=1\r\nTo: <sip:bob@acme.sip.example>\r\n\
Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            .to_owned();
        if let Some(a) = auth {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        match SipMessage::parse(text.as_bytes(), &ParseLimits::default()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn challenge_then_verify_md5_and_sha256_with_password_or_ha1() {
        let epoch = Instant::now();
        let server = DigestServer::new(&[7u8; 32], epoch, Duration::from_secs(30));
        let client: IpAddr = "192.0.2.5".parse().unwrap();
        let realm = "acme.sip.example";
        let now = epoch + Duration::from_secs(100);
        let req = invite(None);
        let challenge = server.challenge_response(
            &req,
            ChallengeKind::Www,
            realm,
            &[DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            client,
            now,
            false,
            "totag",
        );
        assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge
                .headers
                .get_all(&HeaderName::WWW_AUTHENTICATE)
                .count(),
            2
        );
        let stored_pw = StoredCredential::Password(Zeroizing::new("s3cret".into()));
        let stored_ha1 = StoredCredential::Ha1(Ha1Set::compute("alice", realm, "s3cret"));

        for algorithm in [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
        ] {
            let c = server.challenge(realm, algorithm, client, now, false);
            let creds = respond(
                &c,
                "alice",
                "s3cret",
                &Method::Invite,
                "sip:bob@acme.sip.example",
                1,
                None,
            )
            .unwrap();
            let req = invite(Some(&creds.to_string()));
            let parsed = DigestServer::credentials(&req, ChallengeKind::Www, realm).unwrap();
            assert_eq!(parsed, creds);
            let later = now + Duration::from_secs(5);
            server
                .verify(&req, &parsed, &stored_pw, client, later)
                .unwrap();
            server
                .verify(&req, &parsed, &stored_ha1, client, later)
                .unwrap();
            // Wrong password, wrong client, stale nonce, tampered method.
            let bad = StoredCredential::Ha1(Ha1Set::compute("alice", realm, "guess"));
            assert_eq!(
                server.verify(&req, &parsed, &bad, client, later),
                Err(VerifyError::WrongResponse)
            );
            let other: IpAddr = "192.0.2.6".parse().unwrap();
            assert_eq!(
                server.verify(&req, &parsed, &stored_pw, other, later),
                Err(VerifyError::InvalidNonce)
            );
            assert_eq!(
                server.verify(
                    &req,
                    &parsed,
                    &stored_pw,
                    client,
                    now + Duration::from_secs(31)
                ),
                Err(VerifyError::Stale)
            );
            let mut bye = req.clone();
            bye.method = Method::Bye;
            assert_eq!(
                server.verify(&bye, &parsed, &stored_pw, client, later),
                Err(VerifyError::WrongResponse)
            );
        }
    }

    #[test]
    fn nonce_checks() {
        let epoch = Instant::now();
        let a = DigestServer::new(&[1u8; 32], epoch, Duration::from_secs(30));
        let b = DigestServer::new(&[2u8; 32], epoch, Duration::from_secs(30));
        let ip: IpAddr = "::1".parse().unwrap();
        let n = a.nonce("r", ip, epoch);
        assert_ne!(n, a.nonce("r", ip, epoch), "salted");
        assert_eq!(a.check_nonce(&n, "r", ip, epoch), Ok(()));
        assert_eq!(
            a.check_nonce(&n, "other", ip, epoch),
            Err(VerifyError::InvalidNonce)
        );
        assert_eq!(
            b.check_nonce(&n, "r", ip, epoch),
            Err(VerifyError::InvalidNonce)
        );
        assert_eq!(
            a.check_nonce("!!", "r", ip, epoch),
            Err(VerifyError::InvalidNonce)
        );
        assert_eq!(
            a.check_nonce("", "r", ip, epoch),
            Err(VerifyError::InvalidNonce)
        );
    }

    #[test]
    fn verify_requires_qop_and_matching_uri() {
        let epoch = Instant::now();
        let server = DigestServer::new(&[7u8; 32], epoch, Duration::from_secs(30));
        let ip: IpAddr = "192.0.2.5".parse().unwrap();
        let mut c = server.challenge("r", DigestAlgorithm::Md5, ip, epoch, false);
        let stored = StoredCredential::Password(Zeroizing::new("pw".into()));
        let creds = respond(
            &c,
            "u",
            "pw",
            &Method::Invite,
            "sip:someone@else.example",
            1,
            None,
        )
        .unwrap();
        let req = invite(Some(&creds.to_string()));
        assert_eq!(
            server.verify(&req, &creds, &stored, ip, epoch),
            Err(VerifyError::UriMismatch)
        );
        c.qop.clear();
        let creds = respond(
            &c,
            "u",
            "pw",
            &Method::Invite,
            "sip:bob@acme.sip.example",
            1,
            None,
        )
        .unwrap();
        assert!(creds.qop.is_none());
        assert_eq!(
            server.verify(&req, &creds, &stored, ip, epoch),
            Err(VerifyError::QopRequired)
        );
    }

    #[test]
    fn authorize_retries_with_the_preferred_challenge() {
        let epoch = Instant::now();
        let server = DigestServer::new(&[7u8; 32], epoch, Duration::from_secs(30));
        let ip: IpAddr = "192.0.2.5".parse().unwrap();
        let mut req = invite(None);
        let chall = server.challenge_response(
            &req,
            ChallengeKind::Proxy,
            "acme",
            &[DigestAlgorithm::Md5, DigestAlgorithm::Sha256],
            ip,
            epoch,
            false,
            "t",
        );
        authorize(&mut req, &chall, "alice", "pw").unwrap();
        assert_eq!(req.headers.cseq().unwrap().seq, 2);
        assert!(!req.headers.contains(&HeaderName::VIA));
        let creds = DigestServer::credentials(&req, ChallengeKind::Proxy, "acme").unwrap();
        assert_eq!(creds.algorithm, DigestAlgorithm::Sha256);
        let stored = StoredCredential::Password(Zeroizing::new("pw".into()));
        server.verify(&req, &creds, &stored, ip, epoch).unwrap();
        assert!(!format!("{creds:?}").contains(&creds.response));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            DigestChallenge::parse("Basic realm=\"x\""),
            Err(AuthError::NotDigest)
        );
        assert_eq!(
            DigestChallenge::parse("Digest nonce=\"n\""),
            Err(AuthError::Missing("realm"))
        );
        assert!(matches!(
            DigestChallenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
        assert_eq!(
            DigestCredentials::parse("Digest username=\"u\", realm"),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            DigestCredentials::parse(
                "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"x\", response=\"y\", nc=1"
            ),
            Err(AuthError::Malformed)
        );
        assert!(Ha1Set::from_hex(Some("zz"), None).is_err());
        let h = Ha1Set::from_hex(Some("939e7578ed9e3c518a452acee763bce9"), None).unwrap();
        assert!(format!("{h:?}").contains("redacted"));
    }
}
