//! The two ways an envelope's key material travels beside the ciphertext:
//! the voice `encryption_details` JSON, and S3-style `x-amz-meta-*` object headers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::gcm::IV_LEN as GCM_IV_LEN;
use crate::keys::Fingerprint;

/// Length of the CBC IV (one AES block).
pub const CBC_IV_LEN: usize = 16;

/// The content cipher and key wrap an envelope uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// AES-256-GCM, tag last, CEK wrapped with RSA-OAEP-SHA256 (`rsa-aes`, `s3-gcm`).
    GcmOaep,
    /// AES-256-CBC with PKCS#7 padding, CEK wrapped with RSA PKCS#1 v1.5 (`s3-cbc`).
    CbcPkcs1,
}

/// Everything needed, besides the private key, to open a non-native object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Which cipher and wrap.
    pub scheme: Scheme,
    /// The RSA-wrapped CEK.
    pub wrapped_cek: Vec<u8>,
    /// The content IV (12 bytes for GCM, 16 for CBC).
    pub iv: Vec<u8>,
    /// The public key SID the object says it was sealed for, when known.
    pub key_sid: Option<String>,
    /// The plaintext length the headers announce, when known.
    pub plaintext_len: Option<u64>,
    /// Fingerprint of the key it was sealed for, when the headers say.
    pub key_fingerprint: Option<Fingerprint>,
}

/// Why envelope details could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetailsError {
    /// The details are not valid JSON.
    #[error("the encryption details are not valid JSON: {0}")]
    Json(String),
    /// The details say the object is not encrypted.
    #[error("encryption_details is null: this recording was not encrypted with a public key")]
    NotEncrypted,
    /// A required field is absent.
    #[error("the encryption details have no '{0}' field")]
    MissingField(&'static str),
    /// A field is not valid base64.
    #[error("the '{field}' value is not valid base64: {reason}")]
    Base64 {
        /// Which field.
        field: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The IV has a length no supported scheme uses.
    #[error(
        "the '{field}' value decodes to {len} bytes; an IV is 12 bytes (AES-GCM) or 16 bytes (AES-CBC)"
    )]
    IvLength {
        /// Which field.
        field: &'static str,
        /// Its decoded length.
        len: usize,
    },
    /// `type` names an algorithm this tool does not know.
    #[error("unsupported encryption type '{0}': only 'rsa-aes' is defined")]
    UnknownType(String),
    /// An algorithm header names something unsupported.
    #[error("unsupported value '{value}' in header '{field}'")]
    UnsupportedAlgorithm {
        /// Which header.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// The length header is not a decimal number.
    #[error("header 'x-amz-meta-x-amz-unencrypted-content-length' is not a decimal number: '{0}'")]
    BadLength(String),
    /// The fingerprint header is not 64 hex digits.
    #[error(
        "header '{HEADER_KEY_FINGERPRINT}' is not a SHA-256 fingerprint (64 hex digits): '{0}'"
    )]
    BadFingerprint(String),
    /// Neither JSON nor recognisable headers were found.
    #[error(
        "no encryption details found: expected the encryption_details JSON or \
         'x-amz-meta-x-amz-key:' and 'x-amz-meta-x-amz-iv:' header lines"
    )]
    Unrecognised,
}

/// The `encryption_details` object of a voice recording (seed 000), in the real API's spelling.
/// The OpenAPI example's `encryption_*` spellings are accepted on input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionDetails {
    /// Always `rsa-aes`.
    #[serde(rename = "type", default = "rsa_aes")]
    pub kind: String,
    /// The `CR…` SID of the public key used.
    #[serde(alias = "encryption_public_key_sid", default)]
    pub public_key_sid: Option<String>,
    /// Base64 of the OAEP-wrapped CEK.
    #[serde(alias = "encryption_cek")]
    pub encrypted_cek: String,
    /// Base64 of the 12-byte GCM IV.
    #[serde(alias = "encryption_iv")]
    pub iv: String,
}

fn rsa_aes() -> String {
    "rsa-aes".to_owned()
}

impl EncryptionDetails {
    /// Builds the details for a freshly sealed object.
    pub fn new(public_key_sid: Option<String>, wrapped_cek: &[u8], iv: &[u8]) -> Self {
        Self {
            kind: rsa_aes(),
            public_key_sid,
            encrypted_cek: STANDARD.encode(wrapped_cek),
            iv: STANDARD.encode(iv),
        }
    }

    /// The JSON text, keys in the seed's order.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes into an [`Envelope`].
    pub fn to_envelope(&self) -> Result<Envelope, DetailsError> {
        if self.kind != "rsa-aes" {
            return Err(DetailsError::UnknownType(self.kind.clone()));
        }
        let wrapped_cek = decode_b64("encrypted_cek", &self.encrypted_cek)?;
        let iv = decode_b64("iv", &self.iv)?;
        if iv.len() != GCM_IV_LEN {
            return Err(DetailsError::IvLength {
                field: "iv",
                len: iv.len(),
            });
        }
        Ok(Envelope {
            scheme: Scheme::GcmOaep,
            wrapped_cek,
            iv,
            key_sid: self.public_key_sid.clone(),
            plaintext_len: None,
            key_fingerprint: None,
        })
    }
}

/// The S3 envelope headers served beside a video recording, composition or transcript.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Headers {
    /// `x-amz-meta-x-amz-key`: base64 of the wrapped CEK.
    pub key: String,
    /// `x-amz-meta-x-amz-iv`: base64 of the IV.
    pub iv: String,
    /// `x-amz-meta-x-amz-unencrypted-content-length`.
    pub unencrypted_content_length: Option<u64>,
    /// `x-amz-meta-x-amz-matdesc`, `{}` unless a key SID is recorded.
    pub matdesc: String,
    /// `x-amz-meta-x-amz-cek-alg`, present on `s3-gcm`.
    pub cek_alg: Option<String>,
    /// `x-amz-meta-x-amz-wrap-alg`, present on `s3-gcm`.
    pub wrap_alg: Option<String>,
    /// `x-amz-meta-mediaseal-public-key-sid`: which public key resource sealed the object.
    pub key_sid: Option<String>,
    /// `x-amz-meta-mediaseal-public-key-fingerprint`: SHA-256 of that key's SPKI, hex.
    pub key_fingerprint: Option<String>,
}

/// Header naming the public key SID, beside the S3 envelope headers.
pub const HEADER_KEY_SID: &str = "x-amz-meta-mediaseal-public-key-sid";
/// Header naming the public key fingerprint, beside the S3 envelope headers.
pub const HEADER_KEY_FINGERPRINT: &str = "x-amz-meta-mediaseal-public-key-fingerprint";

/// `x-amz-meta-x-amz-cek-alg` value for GCM content.
pub const CEK_ALG_GCM: &str = "AES/GCM/NoPadding";
/// `x-amz-meta-x-amz-cek-alg` value for CBC content.
pub const CEK_ALG_CBC: &str = "AES/CBC/PKCS5Padding";
/// `x-amz-meta-x-amz-wrap-alg` value for the OAEP wrap.
pub const WRAP_ALG_OAEP: &str = "RSA-OAEP-SHA256";

impl S3Headers {
    /// Headers for a freshly sealed object.
    pub fn new(scheme: Scheme, wrapped_cek: &[u8], iv: &[u8], len: Option<u64>) -> Self {
        let (cek_alg, wrap_alg) = match scheme {
            // The V1 video envelope carries exactly the four headers of seed 001.
            Scheme::CbcPkcs1 => (None, None),
            Scheme::GcmOaep => (Some(CEK_ALG_GCM.to_owned()), Some(WRAP_ALG_OAEP.to_owned())),
        };
        Self {
            key: STANDARD.encode(wrapped_cek),
            iv: STANDARD.encode(iv),
            unencrypted_content_length: len,
            matdesc: "{}".to_owned(),
            cek_alg,
            wrap_alg,
            key_sid: None,
            key_fingerprint: None,
        }
    }

    /// Records which key sealed the object, so a wrong private key is named before it is tried.
    pub fn with_key(mut self, sid: Option<&str>, fingerprint: Fingerprint) -> Self {
        self.key_sid = sid.filter(|s| !s.is_empty()).map(str::to_owned);
        self.key_fingerprint = Some(fingerprint.to_hex());
        self
    }

    /// `(name, value)` pairs in a stable order, names in lowercase as S3 serves them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("x-amz-meta-x-amz-key", self.key.clone()),
            ("x-amz-meta-x-amz-iv", self.iv.clone()),
        ];
        if let Some(len) = self.unencrypted_content_length {
            out.push((
                "x-amz-meta-x-amz-unencrypted-content-length",
                len.to_string(),
            ));
        }
        out.push(("x-amz-meta-x-amz-matdesc", self.matdesc.clone()));
        if let Some(alg) = &self.cek_alg {
            out.push(("x-amz-meta-x-amz-cek-alg", alg.clone()));
        }
        if let Some(alg) = &self.wrap_alg {
            out.push(("x-amz-meta-x-amz-wrap-alg", alg.clone()));
        }
        if let Some(sid) = &self.key_sid {
            out.push((HEADER_KEY_SID, sid.clone()));
        }
        if let Some(fp) = &self.key_fingerprint {
            out.push((HEADER_KEY_FINGERPRINT, fp.clone()));
        }
        out
    }

    /// `Name: value` lines, one per header.
    pub fn to_lines(&self) -> String {
        self.pairs()
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect()
    }

    /// Reads headers from `Name: value` lines. Tolerates `wget -S` and `curl -i` output: other
    /// lines, indentation, any case, and the names without their `x-amz-meta-` prefix.
    pub fn from_lines(text: &str) -> Result<Self, DetailsError> {
        let mut headers = Self::default();
        let mut saw_key = false;
        let mut saw_iv = false;
        for line in text.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let name = name.strip_prefix("x-amz-meta-").unwrap_or(&name);
            let value = value.trim();
            match name {
                "x-amz-key" | "x-amz-key-v2" => {
                    headers.key = value.to_owned();
                    saw_key = true;
                }
                "x-amz-iv" => {
                    headers.iv = value.to_owned();
                    saw_iv = true;
                }
                "x-amz-unencrypted-content-length" => {
                    let len = value
                        .parse()
                        .map_err(|_| DetailsError::BadLength(value.to_owned()))?;
                    headers.unencrypted_content_length = Some(len);
                }
                "x-amz-matdesc" => headers.matdesc = value.to_owned(),
                "x-amz-cek-alg" => headers.cek_alg = Some(value.to_owned()),
                "x-amz-wrap-alg" => headers.wrap_alg = Some(value.to_owned()),
                "mediaseal-public-key-sid" => headers.key_sid = Some(value.to_owned()),
                "mediaseal-public-key-fingerprint" => {
                    headers.key_fingerprint = Some(value.to_owned())
                }
                _ => {}
            }
        }
        match (saw_key, saw_iv) {
            (true, true) => Ok(headers),
            (false, false) => Err(DetailsError::Unrecognised),
            (false, true) => Err(DetailsError::MissingField("x-amz-meta-x-amz-key")),
            (true, false) => Err(DetailsError::MissingField("x-amz-meta-x-amz-iv")),
        }
    }

    /// Decodes into an [`Envelope`], choosing the scheme from `cek-alg` or else the IV length.
    pub fn to_envelope(&self) -> Result<Envelope, DetailsError> {
        let wrapped_cek = decode_b64("x-amz-meta-x-amz-key", &self.key)?;
        let iv = decode_b64("x-amz-meta-x-amz-iv", &self.iv)?;
        let scheme = match self.cek_alg.as_deref() {
            Some(CEK_ALG_GCM) => Scheme::GcmOaep,
            Some(CEK_ALG_CBC) => Scheme::CbcPkcs1,
            Some(other) => {
                return Err(DetailsError::UnsupportedAlgorithm {
                    field: "x-amz-meta-x-amz-cek-alg",
                    value: other.to_owned(),
                });
            }
            None => match iv.len() {
                GCM_IV_LEN => Scheme::GcmOaep,
                CBC_IV_LEN => Scheme::CbcPkcs1,
                len => {
                    return Err(DetailsError::IvLength {
                        field: "x-amz-meta-x-amz-iv",
                        len,
                    });
                }
            },
        };
        let expected_iv = match scheme {
            Scheme::GcmOaep => GCM_IV_LEN,
            Scheme::CbcPkcs1 => CBC_IV_LEN,
        };
        if iv.len() != expected_iv {
            return Err(DetailsError::IvLength {
                field: "x-amz-meta-x-amz-iv",
                len: iv.len(),
            });
        }
        if let Some(wrap) = self.wrap_alg.as_deref()
            && scheme == Scheme::GcmOaep
            && !wrap.eq_ignore_ascii_case(WRAP_ALG_OAEP)
        {
            return Err(DetailsError::UnsupportedAlgorithm {
                field: "x-amz-meta-x-amz-wrap-alg",
                value: wrap.to_owned(),
            });
        }
        let key_fingerprint = match &self.key_fingerprint {
            Some(hex) => {
                Some(parse_fingerprint(hex).ok_or(DetailsError::BadFingerprint(hex.clone()))?)
            }
            None => None,
        };
        Ok(Envelope {
            scheme,
            wrapped_cek,
            iv,
            key_sid: self
                .key_sid
                .clone()
                .or_else(|| matdesc_key_sid(&self.matdesc)),
            plaintext_len: self.unencrypted_content_length,
            key_fingerprint,
        })
    }
}

fn parse_fingerprint(hex: &str) -> Option<Fingerprint> {
    let hex = hex.trim().trim_start_matches("SHA256:");
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Fingerprint(out))
}

/// A `matdesc` of `{"public_key_sid":"CR…"}` names the key; `{}` names none.
fn matdesc_key_sid(matdesc: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(matdesc).ok()?;
    value.get("public_key_sid")?.as_str().map(str::to_owned)
}

/// Reads a details file of either shape: `encryption_details` JSON (bare, inside a whole
/// Recording resource, or as the JSON string a status callback carries), or S3 header lines.
pub fn parse_details(text: &str) -> Result<Envelope, DetailsError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('"') {
        let mut value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| DetailsError::Json(e.to_string()))?;
        if let serde_json::Value::String(inner) = &value {
            value = serde_json::from_str(inner).map_err(|e| DetailsError::Json(e.to_string()))?;
        }
        if let Some(inner) = value.get("encryption_details") {
            value = inner.clone();
            if let serde_json::Value::String(s) = &value {
                value = serde_json::from_str(s).map_err(|e| DetailsError::Json(e.to_string()))?;
            }
        }
        if value.is_null() {
            return Err(DetailsError::NotEncrypted);
        }
        for field in ["encrypted_cek", "iv"] {
            let alias = if field == "iv" {
                "encryption_iv"
            } else {
                "encryption_cek"
            };
            if value.get(field).is_none() && value.get(alias).is_none() {
                return Err(DetailsError::MissingField(field));
            }
        }
        let details: EncryptionDetails =
            serde_json::from_value(value).map_err(|e| DetailsError::Json(e.to_string()))?;
        return details.to_envelope();
    }
    S3Headers::from_lines(text)?.to_envelope()
}

/// Builds an envelope from the two raw base64 values the seeds hand out.
pub fn envelope_from_raw(encrypted_key_b64: &str, iv_b64: &str) -> Result<Envelope, DetailsError> {
    let headers = S3Headers {
        key: encrypted_key_b64.trim().to_owned(),
        iv: iv_b64.trim().to_owned(),
        matdesc: "{}".to_owned(),
        ..S3Headers::default()
    };
    headers.to_envelope()
}

fn decode_b64(field: &'static str, value: &str) -> Result<Vec<u8>, DetailsError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).map_err(|e| DetailsError::Base64 {
        field,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEK: &str = "OV4h6zrsxMIW7h0Zfqwfn6TI2GCNl54KALlg8wn8YB8KYZhXt6HlgvBWAmQTlfYVeLWydMiCewY0YkDDT1xmNe5huEo9vjuKBS5OmYK4CZkSx1NVv3XOGrZHpd2Pl/5WJHVhUK//AUO87uh5qnUP2E0KoLh1nyCLeGcEkXU0RfpPn/6nxjof/n6m6OzZOyeIRK4Oed5+rEtjqFDfqT0EVKjs6JAxv+f0DCc1xYRHl2yV8bahUPVKs+bHYdy4PVszFKa76M/Uae4jFA9Lv233JqWcxj+K2UoghuGhAFbV/JQIIswY2CBYI8JlVSifSqNEl9vvsTJ8bkVMm3MKbG2P7Q==";

    #[test]
    fn seed_000_resource_with_openapi_spellings() {
        let json = format!(
            r#"{{"sid":"RE1","encryption_details":{{"type":"rsa-aes","encryption_public_key_sid":"CRXX","encryption_cek":"{CEK}","iv":"8I2hhNIYNTrwxfHk"}}}}"#
        );
        let env = parse_details(&json).unwrap();
        assert_eq!(env.scheme, Scheme::GcmOaep);
        assert_eq!(env.wrapped_cek.len(), 256);
        assert_eq!(env.iv.len(), 12);
        assert_eq!(env.key_sid.as_deref(), Some("CRXX"));
    }

    #[test]
    fn callback_json_string_form() {
        let inner = format!(
            r#"{{"type":"rsa-aes","public_key_sid":"CR2","encrypted_cek":"{CEK}","iv":"7MiadYE7QDgVSRm9"}}"#
        );
        let outer = serde_json::to_string(&inner).unwrap();
        assert_eq!(
            parse_details(&outer).unwrap().key_sid.as_deref(),
            Some("CR2")
        );
    }

    #[test]
    fn wget_output_from_seed_001() {
        let text = "HTTP/1.1 200 OK\n  x-amz-meta-x-amz-key: AAAA\n  x-amz-meta-x-amz-unencrypted-content-length: 746518\n  x-amz-meta-x-amz-matdesc: {}\n  x-amz-meta-x-amz-iv: EmKjzVpvXC9rE6DJ00Xv7Q==\nContent-Length: 746528\n";
        let env = parse_details(text).unwrap();
        assert_eq!(env.scheme, Scheme::CbcPkcs1);
        assert_eq!(env.plaintext_len, Some(746_518));
    }

    #[test]
    fn errors_name_the_field() {
        assert!(matches!(
            parse_details("{\"encryption_details\":null}"),
            Err(DetailsError::NotEncrypted)
        ));
        assert!(matches!(
            parse_details("{\"iv\":\"AAAA\"}"),
            Err(DetailsError::MissingField("encrypted_cek"))
        ));
        let bad = parse_details(r#"{"encrypted_cek":"%%%","iv":"AAAA"}"#).unwrap_err();
        assert!(bad.to_string().contains("encrypted_cek"), "{bad}");
        let short = parse_details(r#"{"encrypted_cek":"AAAA","iv":"AAAA"}"#).unwrap_err();
        assert!(matches!(short, DetailsError::IvLength { len: 3, .. }));
        assert!(matches!(
            parse_details("hello"),
            Err(DetailsError::Unrecognised)
        ));
        assert!(matches!(parse_details("{"), Err(DetailsError::Json(_))));
    }

    #[test]
    fn headers_round_trip() {
        let h = S3Headers::new(Scheme::GcmOaep, &[1; 256], &[2; 12], Some(5));
        let back = S3Headers::from_lines(&h.to_lines()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.to_envelope().unwrap().scheme, Scheme::GcmOaep);
    }
}
