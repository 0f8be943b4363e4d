//! The metadata store traits. The API layer only ever sees `Arc<dyn MetadataStore>`, so a backend
//! is chosen by configuration without touching it.
//!
//! The store never reads the clock: callers pass `now`, which keeps behaviour testable and the
//! same on every node. The traits are written in terms of [`crate::model`] alone; the SQL
//! implementations in `sql` depend on them, never the other way round.

mod account;
mod calls;
mod intelligence;
mod operators;
mod outbox;
mod participants;
mod recording_rules;
mod sip;
mod video;
mod voice;

pub use account::AccountStore;
pub use calls::CallStore;
pub use intelligence::IntelligenceStore;
pub use operators::OperatorStore;
pub use outbox::OutboxStore;
pub use participants::ParticipantStore;
pub use recording_rules::RecordingRuleStore;
pub use sip::SipStore;
pub use video::VideoStore;
pub use voice::VoiceStore;

use crate::error::StoreError;

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the service keeps besides the sealed objects.
pub trait MetadataStore:
    AccountStore
    + VoiceStore
    + OutboxStore
    + VideoStore
    + IntelligenceStore
    + SipStore
    + OperatorStore
    + CallStore
    + ParticipantStore
    + RecordingRuleStore
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
}
