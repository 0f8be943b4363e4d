//! Transcripts whose job died with its node (a crash, a kill, a power cut) stay `queued` or
//! `in-progress` in the store. Every job holds a lease that its node renews while it lives
//! ([`crate::transcripts::LEASE`]); any node claims the transcripts whose lease lapsed,
//! atomically, so that a live node's jobs are never touched and two nodes never take the same
//! one. Each claimed transcript is either run again, when its audio can still be read (a
//! recording sealed at rest, or a `media_url`, fetched again), or ends `failed` with the reason and the service's webhook, as any
//! failure does (a recording sealed with the customer's key, whose plaintext tap was in the
//! dead process's memory only).

use std::sync::Arc;

use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Product, Seal};
use mediaseal_store::StoreError;
use mediaseal_store::model::Sealing;
use mediaseal_store::model::intelligence::{
    AbandonedTranscript, IntelligenceService, Transcript, TranscriptStatus,
};

use crate::Intelligence;
use crate::channel::ChannelSpec;
use crate::transcripts::{AudioSource, LEASE, micros};

/// Most transcripts claimed in one pass; the next pass takes the rest.
const CLAIM_BATCH: i64 = 100;

/// How many times a transcript is run again after its job died. A transcript whose audio takes
/// its node down every time would otherwise take a node with it on every pass; past this it
/// fails.
pub const MAX_RECOVERIES: i64 = 3;

/// Which unfinished transcripts a pass may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// Every `queued` or `in-progress` one: at the start of a node that is alone on its
    /// metadata store (SQLite), whose jobs all died with the previous process.
    AllUnfinished,
    /// Only those whose lease lapsed: a shared store (PostgreSQL), where other nodes' jobs run.
    LapsedLeases,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Transcripts started again.
    pub rerun: usize,
    /// Transcripts that could not be run again and were failed.
    pub failed: usize,
}

/// Why an abandoned transcript cannot be run again. Shown as its `error_message`.
#[derive(Debug, thiserror::Error)]
enum Unrecoverable {
    #[error(
        "the server stopped before the transcript was finished, and recording {0} cannot be read again: it is \
         encrypted with your public key, and its audio was only available while it was being recorded"
    )]
    CustomerSealed(String),
    #[error(
        "the server stopped before the transcript was finished, and recording {0} no longer exists to run it again"
    )]
    RecordingGone(String),
    #[error(
        "the server stopped before the transcript was finished, and recording {0} has no audio to run it again \
         (status {1})"
    )]
    NoAudio(String, String),
    #[error(
        "the server stopped before the transcript was finished, and where its audio came from is not known, so it \
         cannot be run again"
    )]
    NoSource,
    #[error(
        "the server stopped before the transcript was finished, and its service no longer exists"
    )]
    ServiceGone,
    #[error(
        "the server stopped {0} times while this transcript was being made, so it was not run again; \
         if its audio plays, create a new transcript of it"
    )]
    TooManyRecoveries(i64),
    #[error(
        "the server stopped before the transcript was finished, and it cannot be sealed again: {0}"
    )]
    Refused(String),
}

/// How to run an abandoned transcript again.
struct Rerun {
    service: IntelligenceService,
    seal: Seal,
    /// An object key, or the `media_url`.
    audio_key: String,
    from_url: bool,
}

/// Where abandoned transcripts' audio is read again.
#[derive(Clone)]
pub struct Sources {
    /// Recordings sealed at rest.
    pub at_rest: Arc<dyn AudioSource>,
    /// `media_url`s, fetched through the egress policy.
    pub url: Arc<dyn AudioSource>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

impl Intelligence {
    /// Claims the transcripts whose job died (`which`) and runs each again from `sources`, or
    /// fails it with the reason and the webhook. Store errors are logged: the next pass
    /// retries.
    pub async fn recover_abandoned(&self, sources: &Sources, which: Abandoned) -> Recovered {
        let now = self.services.now_us();
        let before = match which {
            Abandoned::AllUnfinished => i64::MAX,
            Abandoned::LapsedLeases => now,
        };
        let claimed = match self
            .services
            .meta
            .claim_abandoned_transcripts(
                &self.services.config.node_id,
                before,
                now + micros(LEASE),
                CLAIM_BATCH,
            )
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "abandoned transcripts could not be listed");
                return Recovered::default();
            }
        };
        let mut done = Recovered::default();
        for abandoned in claimed {
            let sid = abandoned.transcript.sid.clone();
            match self.resume(abandoned, sources).await {
                Ok(true) => done.rerun += 1,
                Ok(false) => done.failed += 1,
                Err(e) => {
                    tracing::warn!(transcript = %sid, error = %e, "abandoned transcript left for the next pass")
                }
            }
        }
        if done != Recovered::default() {
            tracing::info!(
                rerun = done.rerun,
                failed = done.failed,
                "transcripts left unfinished by a stopped server were resolved"
            );
        }
        done
    }

    /// Runs a claimed transcript again (`true`) or fails it (`false`).
    async fn resume(
        &self,
        abandoned: AbandonedTranscript,
        sources: &Sources,
    ) -> Result<bool, StoreError> {
        let AbandonedTranscript {
            transcript: t,
            recoveries,
        } = abandoned;
        // Whatever the dead job recorded of its operators goes: a new run writes them afresh,
        // and a failed transcript keeps nothing.
        self.purge_operator_results(&t.account_sid, &t.sid).await;
        let service = self
            .services
            .meta
            .intelligence_service(&t.account_sid, &t.service_sid)
            .await?;
        let plan = if recoveries > MAX_RECOVERIES {
            Err(Unrecoverable::TooManyRecoveries(recoveries))
        } else {
            self.rerun_plan(&t, service.clone()).await?
        };
        let mut row = t;
        row.duration = None;
        row.sealing = Sealing::None;
        row.object_key = None;
        row.log_object_key = None;
        row.redacted_object_key = None;
        row.redacted_media_key = None;
        row.sentence_count = 0;
        row.date_updated = self.services.now_us();
        match plan {
            Ok(plan) => {
                tracing::warn!(transcript = %row.sid, account = %row.account_sid, "transcript left unfinished by a stopped server: running it again");
                row.status = TranscriptStatus::Queued.as_str().to_owned();
                row.error_message = None;
                let source = if plan.from_url {
                    sources.url.clone()
                } else {
                    sources.at_rest.clone()
                };
                drop(self.start(row, plan.service, plan.seal, plan.audio_key, source));
                Ok(true)
            }
            Err(why) => {
                tracing::warn!(transcript = %row.sid, account = %row.account_sid, reason = %why, "transcript left unfinished by a stopped server: failed");
                row.status = TranscriptStatus::Failed.as_str().to_owned();
                row.error_message = Some(why.to_string());
                let callbacks: Vec<_> = service
                    .and_then(|s| self.webhook(&s, &row, "voice_intelligence_transcript_failed"))
                    .into_iter()
                    .collect();
                self.services
                    .meta
                    .update_transcript(&row, &callbacks)
                    .await?;
                metrics::counter!("mediaseal_transcripts_total", "status" => "failed").increment(1);
                Ok(false)
            }
        }
    }

    /// What running `t` again takes, or why it cannot be.
    async fn rerun_plan(
        &self,
        t: &Transcript,
        service: Option<IntelligenceService>,
    ) -> Result<Result<Rerun, Unrecoverable>, StoreError> {
        let Some(service) = service else {
            return Ok(Err(Unrecoverable::ServiceGone));
        };
        let media_url = ChannelSpec::parse(&t.channel)
            .ok()
            .and_then(|c| c.media_url().map(str::to_owned));
        let (source_sid, media_url) = match (t.source_sid.as_deref(), media_url) {
            (Some(sid), _) => (sid, None),
            (None, Some(url)) => ("", Some(url)),
            (None, None) => return Ok(Err(Unrecoverable::NoSource)),
        };
        let seal = match self.rerun_seal(t).await? {
            Ok(seal) => seal,
            Err(why) => return Ok(Err(why)),
        };
        if let Some(url) = media_url {
            return Ok(Ok(Rerun {
                service,
                seal,
                audio_key: url,
                from_url: true,
            }));
        }
        let Some(recording) = self
            .services
            .meta
            .recording(&t.account_sid, source_sid, false)
            .await?
        else {
            return Ok(Err(Unrecoverable::RecordingGone(source_sid.to_owned())));
        };
        let audio_key = match (recording.sealing, recording.object_key) {
            (Sealing::Customer, _) => {
                return Ok(Err(Unrecoverable::CustomerSealed(source_sid.to_owned())));
            }
            (Sealing::AtRest, Some(key)) if recording.status == "completed" => key,
            _ => {
                return Ok(Err(Unrecoverable::NoAudio(
                    source_sid.to_owned(),
                    recording.status,
                )));
            }
        };
        Ok(Ok(Rerun {
            service,
            seal,
            audio_key,
            from_url: false,
        }))
    }

    /// How `t` is sealed: as decided when it was created, not as its service says now.
    async fn rerun_seal(&self, t: &Transcript) -> Result<Result<Seal, Unrecoverable>, StoreError> {
        let setting = Setting {
            enabled: t.encryption_credential_sid.is_some(),
            key_sid: t.encryption_credential_sid.as_deref(),
        };
        Ok(policy::resolve(
            self.services.meta.as_ref(),
            Product::Transcript,
            &t.account_sid,
            setting,
        )
        .await?
        .map(|decision| decision.seal)
        .map_err(|refusal| Unrecoverable::Refused(refusal.to_string())))
    }
}
