//! Conversational Intelligence metadata: services and transcripts.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::intelligence::{
    AbandonedTranscript, IntelligenceService, ServiceUpdate, Transcript, TranscriptFilter,
};
use crate::model::{Callback, Cursor};

/// Conversational Intelligence metadata.
#[async_trait]
pub trait IntelligenceStore: Send + Sync {
    /// Adds a service; `false` when the account already has one with its unique name.
    async fn insert_intelligence_service(&self, service: &IntelligenceService)
    -> StoreResult<bool>;
    /// One service of an account.
    async fn intelligence_service(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<IntelligenceService>>;
    /// An account's services, newest first.
    async fn list_intelligence_services(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<IntelligenceService>>;
    /// Replaces a service's settings if its stored version is still `expected_version`; the
    /// stored version becomes `service.version`.
    async fn update_intelligence_service(
        &self,
        service: &IntelligenceService,
        expected_version: i64,
    ) -> StoreResult<ServiceUpdate>;
    /// Deletes a service; `false` when it did not exist.
    async fn delete_intelligence_service(&self, account_sid: &str, sid: &str) -> StoreResult<bool>;

    /// Switches data logging of service `sid` (of any account: an operator's command, never
    /// the API) and returns the service, or `None` when it does not exist.
    async fn set_intelligence_data_logging(
        &self,
        sid: &str,
        on: bool,
        now: i64,
    ) -> StoreResult<Option<IntelligenceService>>;

    /// Adds a transcript.
    async fn insert_transcript(&self, transcript: &Transcript) -> StoreResult<()>;
    /// One transcript of an account (deleted ones are not shown).
    async fn transcript(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Transcript>>;
    /// An account's transcripts, newest first.
    async fn list_transcripts(
        &self,
        account_sid: &str,
        filter: &TranscriptFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Transcript>>;
    /// Stores a transcript's new state and queues `callbacks`, in one transaction, unless it was
    /// deleted meanwhile (`false`: nothing changed, and the caller destroys what it stored).
    /// The lease is left alone, except that a `completed` or `failed` transcript has none.
    async fn update_transcript(
        &self,
        transcript: &Transcript,
        callbacks: &[Callback],
    ) -> StoreResult<bool>;
    /// Marks a transcript deleted and forgets its object; returns it as it was, or `None` when
    /// it did not exist (or was already deleted).
    async fn delete_transcript(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Transcript>>;
    /// Extends the lease of `owner`'s job on transcript `sid` to `lease_until`; `false` when
    /// `owner` holds it no more (the transcript ended, was deleted, or was taken over).
    async fn renew_transcript_lease(
        &self,
        sid: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool>;
    /// Claims for `owner`, until `lease_until`, up to `limit` transcripts left `queued` or
    /// `in-progress` by a job that died: their lease lapsed before `now` (or they have none).
    /// Each is claimed atomically, so two nodes never both take one; a live job's transcript is
    /// never returned. Returned with the new lease, and with how many times each was claimed so
    /// (this claim included).
    async fn claim_abandoned_transcripts(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<AbandonedTranscript>>;
}
