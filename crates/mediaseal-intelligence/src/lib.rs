//! Conversational Intelligence without HTTP (issue 13, seed 002): services, and transcripts of
//! voice recordings made by a [`SpeechEngine`](mediaseal_asr::SpeechEngine) and sealed through
//! the one sealing seam (`mediaseal-sink`, [`Product::Transcript`]) as they are produced.
//!
//! - [`channel`]: the `Channel` parameter (which recording, who is on which channel);
//! - [`media`]: `MediaRedaction`, the audio with its PII silenced;
//! - [`operators`]: operator types, custom operators' configuration, and operator results,
//!   each sealed as its own object;
//! - [`pii`]: PII in recognised speech, and the redacted sentence view;
//! - [`recovery`]: transcripts whose job died with its node, run again or failed;
//! - [`sentences`]: the recogniser's segments merged by time into Twilio's sentence shape;
//! - [`speech`]: the node's engine, given at start or picked at first use;
//! - [`tap`]: the plaintext tap at ingest, for recordings sealed with the customer's key;
//! - [`transcripts`]: the background job `queued → in-progress → completed | failed`, with the
//!   service's webhook through the outbox.
//!
//! Reading the source audio needs the at-rest private key, which this crate never holds: the
//! caller (the HTTP server) passes an [`AudioSource`](transcripts::AudioSource) that opens it
//! into memory. Plaintext audio and text exist only in memory, in buffers wiped on drop; the
//! only thing written anywhere is the sealed sentences object.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod channel;
pub mod media;
pub mod operators;
pub mod pii;
pub mod recovery;
pub mod sentences;
pub mod speech;
pub mod tap;
pub mod transcripts;

use std::sync::Arc;

use mediaseal_service::Services;
use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Product, Refusal, Seal};
use mediaseal_store::StoreError;
use mediaseal_store::model::intelligence::IntelligenceService;

pub use channel::{ChannelError, ChannelSpec};
/// The speech engines, for the process that chooses one (`serve --asr`).
pub use mediaseal_asr as asr;
pub use speech::Speech;

/// The service layer plus the speech engine: cheap to clone.
#[derive(Debug, Clone)]
pub struct Intelligence {
    /// Storage, sink, clock, outbox.
    pub services: Services,
    /// The engine.
    pub speech: Arc<Speech>,
    /// Transcripts recognised at once on this node; the others wait `queued`.
    pub jobs: Arc<tokio::sync::Semaphore>,
}

/// Why an `EncryptionCredentialSid` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not a `CR…` SID.
    #[error("'{0}' is not a public key SID (CR followed by 32 hex digits)")]
    NotASid(String),
    /// No such key in the account.
    #[error(
        "public key {0} does not exist in this account; create it with POST /v1/Credentials/PublicKeys first"
    )]
    Unknown(String),
}

impl Intelligence {
    /// Intelligence over `services`, transcribing with `speech`.
    pub fn new(services: Services, speech: Speech) -> Self {
        // Recognition is CPU-bound: one job per core, the rest wait their turn.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            services,
            speech: Arc::new(speech),
            jobs: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    /// Checks that `sid` is a public key of `account_sid` (another account's key is unknown).
    pub async fn check_credential(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> Result<Result<(), CredentialError>, StoreError> {
        if !mediaseal_service::sid::is_sid(sid, "CR") {
            return Ok(Err(CredentialError::NotASid(sid.to_owned())));
        }
        Ok(match self.services.meta.public_key(sid).await? {
            Some(k) if k.account_sid == account_sid => Ok(()),
            _ => Err(CredentialError::Unknown(sid.to_owned())),
        })
    }

    /// How the transcripts of `service` are sealed: with its `EncryptionCredentialSid` in the
    /// seed's `s3-gcm` format, else at rest; refused when the configured key is gone.
    pub async fn transcript_seal(
        &self,
        service: &IntelligenceService,
    ) -> Result<Result<Seal, Refusal>, StoreError> {
        let setting = Setting {
            enabled: service.encryption_credential_sid.is_some(),
            key_sid: service.encryption_credential_sid.as_deref(),
        };
        Ok(policy::resolve(
            self.services.meta.as_ref(),
            Product::Transcript,
            &service.account_sid,
            setting,
        )
        .await?
        .map(|d| d.seal))
    }
}
