//! Accounts, API keys and customer public keys.

use super::spelling::spelled_enum;

spelled_enum! {
    /// What an account may do (`accounts.status`).
    pub enum AccountStatus ("account status") {
        /// In use.
        Active = "active",
        /// Refused until reactivated.
        Suspended = "suspended",
        /// Closed for good.
        Closed = "closed",
    }
}

/// An account or subaccount (`AC…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `AC…`.
    pub sid: String,
    /// The owning account, for subaccounts.
    pub parent_sid: Option<String>,
    /// Display name.
    pub friendly_name: String,
    /// An [`AccountStatus`] spelling: `active`, `suspended` or `closed`.
    pub status: String,
    /// The auth token. Kept because webhook signatures are keyed with it (twilio-api.md §2.2).
    pub auth_token: String,
    /// A second auth token, accepted beside the primary while a rotation is under way.
    pub secondary_auth_token: Option<SecondaryAuthToken>,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// A secondary auth token (Twilio's `/v1/AuthTokens/Secondary`): it authenticates like the
/// primary until it is promoted to primary or deleted. Kept in full, like the primary, because a
/// promoted token keys webhook signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryAuthToken {
    /// The token.
    pub token: String,
    /// When it was made.
    pub date_created: i64,
}

/// An API key (`SK…`). Only a SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `SK…`.
    pub sid: String,
    /// The account the key acts for.
    pub account_sid: String,
    /// Display name.
    pub friendly_name: String,
    /// Hex SHA-256 of the secret (request authentication).
    pub secret_hash: String,
    /// The secret sealed for this key's SID (`mediaseal_service::sealed`), for verifying the
    /// HS256 Access Tokens it signs; `None` for keys made before it was kept.
    pub secret_sealed: Option<String>,
    /// Creation time.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}

/// A customer public key resource (`CR…`). The key itself is never returned by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyRecord {
    /// `CR…`.
    pub sid: String,
    /// Owner.
    pub account_sid: String,
    /// Display name.
    pub friendly_name: String,
    /// Hex of the SubjectPublicKeyInfo DER.
    pub spki_der_hex: String,
    /// Hex SHA-256 of the SPKI DER.
    pub fingerprint: String,
    /// Creation time; "most recently added" is the largest.
    pub date_created: i64,
    /// Last change.
    pub date_updated: i64,
}
