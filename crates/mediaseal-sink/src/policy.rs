//! The seal policy: the one copy of the key rules of every product.
//!
//! | product | customer key | format | key missing |
//! |---|---|---|---|
//! | voice recording (seed 000) | `RecordingSettings.EncryptionPublicKeySid` | `rsa-aes` | the account's most recently added key, with a notice; none at all: refused (16104) |
//! | track recording (seed 001) | video `RecordingSettings.EncryptionKeySid` | `s3-cbc` | refused |
//! | composition (seed 001) | video `CompositionSettings.EncryptionKeySid` | `s3-cbc` | refused |
//! | transcript, operator result (seed 002) | the service's `EncryptionCredentialSid` | `s3-gcm` | refused |
//! | redacted media of a transcript (seed 002, `MediaRedaction`) | the transcript's key, as its sentences | `s3-gcm` | refused |
//!
//! Without customer encryption every product is sealed at rest with the service's own key in
//! the native format, so nothing is ever stored in the clear.
//!
//! [`decide`] is a pure function of the settings and the key records; [`resolve`] looks the
//! records up in the store first.

use mediaseal_crypto::{Format, PublicKey};
use mediaseal_store::model::PublicKeyRecord;
use mediaseal_store::{AccountStore, StoreError};

use crate::keys::{StoredKeyError, stored_public_key};

/// What is being sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// A voice recording (`RE…`).
    VoiceRecording,
    /// A video track recording (`RT…`).
    TrackRecording,
    /// A video composition (`CJ…`).
    Composition,
    /// A transcript's sentences (`GT…`).
    Transcript,
    /// An operator result of a transcript.
    OperatorResult,
    /// The copy of a transcript's audio with its PII silenced (`MediaRedaction`): sealed like
    /// the transcript, so whoever can read the sentences, and only they, can hear it.
    RedactedMedia,
}

impl Product {
    /// The format a customer-key object of this product is sealed in: the one the customer's
    /// decryption recipe (the seed) expects.
    pub fn customer_format(self) -> Format {
        match self {
            Self::VoiceRecording => Format::RsaAes,
            Self::TrackRecording | Self::Composition => Format::S3Cbc,
            Self::Transcript | Self::OperatorResult | Self::RedactedMedia => Format::S3Gcm,
        }
    }

    /// Whether a missing configured key falls back to the account's most recent one (seed 000
    /// says so for voice recordings only).
    fn falls_back_to_latest_key(self) -> bool {
        matches!(self, Self::VoiceRecording)
    }

    fn name(self) -> &'static str {
        match self {
            Self::VoiceRecording => "recording",
            Self::TrackRecording => "track recording",
            Self::Composition => "composition",
            Self::Transcript => "transcript",
            Self::OperatorResult => "operator result",
            Self::RedactedMedia => "redacted media",
        }
    }
}

/// What the account's settings say about customer encryption of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<'a> {
    /// Customer encryption is on.
    pub enabled: bool,
    /// The configured `CR…` key, if any.
    pub key_sid: Option<&'a str>,
}

/// A customer public key, parsed.
#[derive(Debug, Clone)]
pub struct CustomerKey {
    /// Its `CR…` SID, which the receipt names.
    pub sid: String,
    /// The key.
    pub key: PublicKey,
}

/// How to seal.
#[derive(Debug, Clone)]
pub enum Seal {
    /// With the customer's key, in the product's customer format.
    Customer {
        /// The format.
        format: Format,
        /// The key.
        key: CustomerKey,
    },
    /// With the service's own at-rest key, in the native format.
    AtRest,
}

impl Seal {
    /// The customer key's SID, when sealing to the customer.
    pub fn customer_key_sid(&self) -> Option<&str> {
        match self {
            Self::Customer { key, .. } => Some(&key.sid),
            Self::AtRest => None,
        }
    }
}

/// Something the account should be told about the decision (a debugger notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Seed 000: the configured key could not be used, so the account's most recently added key
    /// was.
    FallbackKey {
        /// The configured key, if one was configured.
        configured: Option<String>,
        /// The key used instead.
        used: String,
    },
}

/// How to seal, and what to tell the account.
#[derive(Debug, Clone)]
pub struct Decision {
    /// How to seal.
    pub seal: Seal,
    /// A notice for the account, if any.
    pub notice: Option<Notice>,
}

/// Why nothing may be stored.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Seed 000: encryption is on and the account has no usable public key at all. The
    /// recording fails with 16104 and its bytes are destroyed.
    #[error("{}", no_key_text(.configured.as_deref()))]
    NoPublicKey {
        /// The configured key, if one was configured.
        configured: Option<String>,
    },
    /// Seeds 001 and 002: encryption is on but its configured key no longer exists (or none
    /// is configured).
    #[error("{} encryption is on, but its public key {} no longer exists", .product.name(), .sid.as_deref().unwrap_or("(none set)"))]
    KeyGone {
        /// The product refused.
        product: Product,
        /// The configured key, if one was configured.
        sid: Option<String>,
    },
    /// The configured key exists but its stored bytes are damaged.
    #[error(transparent)]
    Damaged(#[from] StoredKeyError),
}

fn no_key_text(configured: Option<&str>) -> String {
    match configured {
        Some(c) => format!(
            "the configured public key {c} could not be found and the account has no other public key"
        ),
        None => "the account has no public key".to_owned(),
    }
}

/// The key record `sid`, if it exists and belongs to `account_sid`.
fn owned<'r>(
    record: Option<&'r PublicKeyRecord>,
    account_sid: &str,
) -> Option<&'r PublicKeyRecord> {
    record.filter(|r| r.account_sid == account_sid)
}

/// Decides how `product` of `account_sid` is sealed. `configured` is the record of
/// `setting.key_sid` (if it exists), `latest` the account's most recently added key (only
/// consulted for products that fall back to it).
pub fn decide(
    product: Product,
    account_sid: &str,
    setting: Setting<'_>,
    configured: Option<&PublicKeyRecord>,
    latest: Option<&PublicKeyRecord>,
) -> Result<Decision, Refusal> {
    if !setting.enabled {
        return Ok(Decision {
            seal: Seal::AtRest,
            notice: None,
        });
    }
    let customer = |record: &PublicKeyRecord, key: PublicKey| Seal::Customer {
        format: product.customer_format(),
        key: CustomerKey {
            sid: record.sid.clone(),
            key,
        },
    };
    let configured =
        owned(configured, account_sid).filter(|r| Some(r.sid.as_str()) == setting.key_sid);
    if product.falls_back_to_latest_key() {
        // Seed 000: a configured key that cannot be used is treated as missing.
        if let Some(record) = configured
            && let Ok(key) = stored_public_key(record)
        {
            return Ok(Decision {
                seal: customer(record, key),
                notice: None,
            });
        }
        let latest =
            owned(latest, account_sid).and_then(|r| stored_public_key(r).ok().map(|k| (r, k)));
        return match latest {
            Some((record, key)) => Ok(Decision {
                seal: customer(record, key),
                notice: Some(Notice::FallbackKey {
                    configured: setting.key_sid.map(str::to_owned),
                    used: record.sid.clone(),
                }),
            }),
            None => Err(Refusal::NoPublicKey {
                configured: setting.key_sid.map(str::to_owned),
            }),
        };
    }
    match configured {
        Some(record) => Ok(Decision {
            seal: customer(record, stored_public_key(record)?),
            notice: None,
        }),
        None => Err(Refusal::KeyGone {
            product,
            sid: setting.key_sid.map(str::to_owned),
        }),
    }
}

/// [`decide`], with the key records looked up in `meta`.
pub async fn resolve(
    meta: &dyn AccountStore,
    product: Product,
    account_sid: &str,
    setting: Setting<'_>,
) -> Result<Result<Decision, Refusal>, StoreError> {
    if !setting.enabled {
        return Ok(decide(product, account_sid, setting, None, None));
    }
    let configured = match setting.key_sid {
        Some(sid) => meta.public_key(sid).await?,
        None => None,
    };
    let usable = configured
        .as_ref()
        .is_some_and(|r| r.account_sid == account_sid && stored_public_key(r).is_ok());
    let latest = if product.falls_back_to_latest_key() && !usable {
        meta.latest_public_key(account_sid).await?
    } else {
        None
    };
    Ok(decide(
        product,
        account_sid,
        setting,
        configured.as_ref(),
        latest.as_ref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediaseal_crypto::PrivateKey;
    use std::sync::OnceLock;

    fn key() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(2048).unwrap())
    }

    fn record(sid: &str, account: &str) -> PublicKeyRecord {
        let der = key().public_key().spki_der();
        PublicKeyRecord {
            sid: sid.to_owned(),
            account_sid: account.to_owned(),
            friendly_name: String::new(),
            spki_der_hex: der.iter().map(|b| format!("{b:02x}")).collect(),
            fingerprint: String::new(),
            date_created: 1,
            date_updated: 1,
        }
    }

    fn on(sid: Option<&str>) -> Setting<'_> {
        Setting {
            enabled: true,
            key_sid: sid,
        }
    }

    #[test]
    fn off_means_at_rest_for_every_product() {
        for p in [
            Product::VoiceRecording,
            Product::TrackRecording,
            Product::Composition,
            Product::Transcript,
            Product::OperatorResult,
            Product::RedactedMedia,
        ] {
            let off = Setting {
                enabled: false,
                key_sid: Some("CR1"),
            };
            let d = decide(p, "AC1", off, None, None).unwrap();
            assert!(matches!(d.seal, Seal::AtRest));
            assert!(d.notice.is_none());
        }
    }

    #[test]
    fn each_product_gets_its_seeds_format() {
        let r = record("CR1", "AC1");
        for (p, f) in [
            (Product::VoiceRecording, Format::RsaAes),
            (Product::TrackRecording, Format::S3Cbc),
            (Product::Composition, Format::S3Cbc),
            (Product::Transcript, Format::S3Gcm),
            (Product::OperatorResult, Format::S3Gcm),
            (Product::RedactedMedia, Format::S3Gcm),
        ] {
            let d = decide(p, "AC1", on(Some("CR1")), Some(&r), None).unwrap();
            match d.seal {
                Seal::Customer { format, key } => {
                    assert_eq!(format, f);
                    assert_eq!(key.sid, "CR1");
                }
                Seal::AtRest => panic!("{p:?} sealed at rest"),
            }
        }
    }

    #[test]
    fn voice_falls_back_to_the_latest_key_with_a_notice() {
        let latest = record("CR2", "AC1");
        let d = decide(
            Product::VoiceRecording,
            "AC1",
            on(Some("CR1")),
            None,
            Some(&latest),
        )
        .unwrap();
        assert_eq!(d.seal.customer_key_sid(), Some("CR2"));
        assert_eq!(
            d.notice,
            Some(Notice::FallbackKey {
                configured: Some("CR1".to_owned()),
                used: "CR2".to_owned()
            })
        );
        // Another account's key is never used, neither configured nor as the fallback.
        let foreign = record("CR1", "AC9");
        let foreign_latest = record("CR3", "AC9");
        let r = decide(
            Product::VoiceRecording,
            "AC1",
            on(Some("CR1")),
            Some(&foreign),
            Some(&foreign_latest),
        );
        assert!(matches!(r, Err(Refusal::NoPublicKey { configured: Some(c) }) if c == "CR1"));
        // A damaged configured key is treated as missing.
        let mut damaged = record("CR1", "AC1");
        damaged.spki_der_hex = "zz".to_owned();
        let d = decide(
            Product::VoiceRecording,
            "AC1",
            on(Some("CR1")),
            Some(&damaged),
            Some(&latest),
        )
        .unwrap();
        assert_eq!(d.seal.customer_key_sid(), Some("CR2"));
    }

    #[test]
    fn other_products_refuse_a_missing_or_damaged_key() {
        let latest = record("CR2", "AC1");
        for p in [
            Product::TrackRecording,
            Product::Composition,
            Product::Transcript,
        ] {
            let r = decide(p, "AC1", on(Some("CR1")), None, Some(&latest));
            assert!(
                matches!(r, Err(Refusal::KeyGone { sid: Some(ref s), .. }) if s == "CR1"),
                "{p:?}"
            );
            let r = decide(p, "AC1", on(None), None, Some(&latest));
            assert!(
                matches!(r, Err(Refusal::KeyGone { sid: None, .. })),
                "{p:?}"
            );
            let mut damaged = record("CR1", "AC1");
            damaged.spki_der_hex.truncate(20);
            let r = decide(p, "AC1", on(Some("CR1")), Some(&damaged), None);
            assert!(matches!(r, Err(Refusal::Damaged(_))), "{p:?}");
        }
        let e = decide(Product::TrackRecording, "AC1", on(Some("CR1")), None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "track recording encryption is on, but its public key CR1 no longer exists"
        );
    }
}
