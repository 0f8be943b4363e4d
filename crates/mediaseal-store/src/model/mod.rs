//! The records the metadata store keeps. Times are microseconds since the Unix epoch.
//!
//! Nothing here is ever plaintext media, a transcript, a private key or a CEK: the store holds
//! SIDs, settings, public keys, wrapped keys and the bookkeeping around sealed objects.
//!
//! Columns that hold one of a fixed set of words (a status, a kind) have an enum here with
//! `as_str` and [`FromStr`](core::str::FromStr). The SQL row readers parse every such column, so
//! a value this version does not know surfaces as [`StoreError::Corrupt`](crate::StoreError)
//! instead of travelling on as a free string. The records still carry those columns as `String`
//! for source compatibility; the enums are the spelling both sides agree on.
//!
//! This module depends on nothing else in the crate: the traits (`meta`) and the SQL
//! implementations (`sql`) build on it, never the other way round.

mod account;
mod calls;
pub mod intelligence;
pub mod operators;
mod outbox;
pub mod participants;
pub mod recording_rules;
mod sip;
mod spelling;
pub(crate) mod video;
mod voice;

pub use account::{Account, AccountStatus, ApiKey, PublicKeyRecord, SecondaryAuthToken};
pub use calls::{Call, CallChange, CallDirection, CallFilter, CallStatus};
pub use outbox::{Callback, CallbackState, HttpMethod};
pub use sip::{
    SipCredential, SipDomain, SipDomainAuth, SipIpAddress, SipList, SipListKind, SipMapping,
    SipMappingKind,
};
pub use spelling::UnknownValue;
pub use voice::{
    Notification, Recording, RecordingFilter, RecordingSettings, RecordingStatus, Sealing,
};

/// A position in a newest-first listing: the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `date_created` of the last item shown.
    pub date_created: i64,
    /// `sid` of the last item shown.
    pub sid: String,
}
