//! The composition worker: claims queued compositions and makes them.
//!
//! The queue is the `compositions` table: a worker on every node claims a row with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL), renews it while ffmpeg runs, and publishes the
//! result and its callbacks in one transaction only while it still holds the lease. A node that
//! dies mid-composition loses its lease; another node takes the row over and starts again. A new
//! composition is first reserved for the node that accepted it, so it normally runs there.
//!
//! No account may hold the workers: a node runs [`crate::Limits::workers`] of them, the queue
//! hands the next composition to the account with the fewest running (then the one served
//! longest ago), and every ffmpeg run is bounded in wall time and output size.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mediaseal_service::ledger::LedgerError;
use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Product, Seal, SinkError};
use mediaseal_store::model::{Callback, Sealing};
use mediaseal_store::video::Composition;
use tokio_util::sync::CancellationToken;

use crate::Composer;
use crate::ffmpeg::{probe_duration_ms, start};
use crate::plan::{check_timeline, origin, plan};
use crate::select::select;
use crate::spec::{MAX_SOURCES, spec_of};

/// How long a claim holds before another node may take the composition over.
const LEASE: Duration = Duration::from_secs(60);
/// How often a running composition renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// Tries before a composition is failed for good (a crash each time, say).
const MAX_ATTEMPTS: i64 = 3;
/// Idle poll interval of the worker.
const POLL: Duration = Duration::from_secs(1);

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2)
}

enum JobError {
    /// Another node took the composition, or it was deleted: drop the work silently.
    LeaseLost,
    /// The composition cannot be made; the message is for the customer.
    Failed(String),
}

struct Made {
    object_key: String,
    sealing: Sealing,
    sealed_size: u64,
    plain_size: u64,
    duration_ms: u64,
}

impl Composer {
    /// Claims and runs compositions until `cancel`, [`crate::Limits::workers`] at a time. A
    /// composition in progress when `cancel` fires is abandoned (its lease runs out and a node
    /// takes it over).
    pub async fn run(self, cancel: CancellationToken) {
        // More than one worker, so that one long composition does not hold up every other
        // account's (the queue hands the next one to another account: see `claim_composition`).
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.limits.workers.max(1) {
            let (me, cancel) = (self.clone(), cancel.clone());
            workers.spawn(async move { me.work(cancel).await });
        }
        while let Some(done) = workers.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a composition worker stopped");
            }
        }
    }

    async fn work(self, cancel: CancellationToken) {
        let node = self.services.config.node_id.clone();
        let per_account = match self.limits.max_per_account {
            0 => i64::MAX,
            n => i64::from(n),
        };
        while !cancel.is_cancelled() {
            let now = self.services.now_us();
            match self
                .services
                .meta
                .claim_composition(&node, now, now + micros(LEASE), per_account)
                .await
            {
                Ok(Some(c)) => {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = self.process(c) => {}
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "composition queue poll failed"),
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.services.compositions.kicked() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn process(&self, c: Composition) {
        let services = &self.services;
        let node = services.config.node_id.clone();
        if c.attempts > MAX_ATTEMPTS {
            let reason =
                format!("the composition was interrupted {MAX_ATTEMPTS} times and was abandoned");
            self.finish_failed(c, &node, &reason).await;
            return;
        }
        if c.attempts == 1
            && let Some(cb) = services.composition_callback(&c, "composition-started", &[])
            && let Err(e) = services.meta.enqueue_callbacks(&[cb]).await
        {
            tracing::warn!(composition = %c.sid, error = %e, "composition-started callback not queued");
        }
        tracing::info!(composition = %c.sid, account = %c.account_sid, attempt = c.attempts, "composing");
        let started = Instant::now();
        match self.compose(&c).await {
            Ok(made) => {
                let now = services.now_us();
                let mut done = c.clone();
                done.status = "completed".to_owned();
                done.object_key = Some(made.object_key.clone());
                done.sealing = made.sealing;
                done.sealed_size = i64::try_from(made.sealed_size).unwrap_or(i64::MAX);
                done.plain_size = i64::try_from(made.plain_size).unwrap_or(i64::MAX);
                done.duration = i64::try_from(made.duration_ms.div_ceil(1000)).unwrap_or(i64::MAX);
                done.bitrate = i64::try_from(
                    (made.plain_size * 8 * 1000)
                        .checked_div(made.duration_ms)
                        .unwrap_or(0),
                )
                .unwrap_or(i64::MAX);
                done.date_updated = now;
                done.date_completed = Some(now);
                let size = if made.sealing == Sealing::Customer {
                    made.sealed_size
                } else {
                    made.plain_size
                };
                let extra = [
                    ("MediaUri", format!("/v1/Compositions/{}/Media", c.sid)),
                    ("Duration", done.duration.to_string()),
                    ("Size", size.to_string()),
                ];
                let callbacks: Vec<Callback> = services
                    .composition_callback(&done, "composition-available", &extra)
                    .into_iter()
                    .collect();
                match services
                    .meta
                    .finish_composition(&done, &node, &callbacks)
                    .await
                {
                    Ok(true) => {
                        metrics::counter!("mediaseal_compositions_completed_total").increment(1);
                        tracing::info!(composition = %c.sid, seconds = started.elapsed().as_secs_f64(), bytes = made.plain_size, "composition stored");
                    }
                    Ok(false) => {
                        tracing::info!(composition = %c.sid, "composition was deleted or taken over while composing; result discarded");
                        let _ = services.objects().delete(&made.object_key).await;
                    }
                    Err(e) => {
                        // The row still shows processing; the lease runs out and it is tried again.
                        tracing::error!(composition = %c.sid, error = %e, "composition could not be recorded");
                        let _ = services.objects().delete(&made.object_key).await;
                    }
                }
            }
            Err(JobError::LeaseLost) => {
                tracing::info!(composition = %c.sid, "composition was deleted or taken over; stopped");
            }
            Err(JobError::Failed(reason)) => self.finish_failed(c, &node, &reason).await,
        }
    }

    async fn finish_failed(&self, c: Composition, node: &str, reason: &str) {
        let services = &self.services;
        let now = services.now_us();
        let mut failed = c;
        failed.status = "failed".to_owned();
        failed.error_message = Some(reason.to_owned());
        failed.date_updated = now;
        failed.object_key = None;
        failed.sealing = Sealing::None;
        let extra = [
            ("FailedOperation", "composition".to_owned()),
            ("ErrorMessage", reason.to_owned()),
        ];
        let callbacks: Vec<Callback> = services
            .composition_callback(&failed, "composition-failed", &extra)
            .into_iter()
            .collect();
        metrics::counter!("mediaseal_compositions_failed_total").increment(1);
        tracing::warn!(composition = %failed.sid, reason, "composition failed");
        if let Err(e) = services
            .meta
            .finish_composition(&failed, node, &callbacks)
            .await
        {
            tracing::error!(composition = %failed.sid, error = %e, "composition failure could not be recorded");
        }
    }

    /// How the composition's result is sealed: the key chosen when it was requested, which must
    /// still exist (seed 001), or at rest.
    async fn seal_for(&self, c: &Composition) -> Result<Seal, JobError> {
        let setting = Setting {
            enabled: c.seal_key_sid.is_some(),
            key_sid: c.seal_key_sid.as_deref(),
        };
        match policy::resolve(
            self.services.meta.as_ref(),
            Product::Composition,
            &c.account_sid,
            setting,
        )
        .await
        {
            Ok(Ok(decision)) => Ok(decision.seal),
            Ok(Err(refusal)) => Err(JobError::Failed(format!("{refusal}; nothing was stored"))),
            Err(e) => Err(JobError::Failed(e.to_string())),
        }
    }

    async fn compose(&self, c: &Composition) -> Result<Made, JobError> {
        let failed = JobError::Failed;
        let services = &self.services;
        let ffmpeg = self
            .ffmpeg
            .clone()
            .ok_or_else(|| failed("this server has no ffmpeg installed".to_owned()))?;
        let spec = spec_of(c).map_err(failed)?;
        let recordings = services
            .meta
            .room_track_recordings(&c.account_sid, &c.room_sid)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let sel = select(&recordings, &spec);
        if sel.is_empty() {
            return Err(failed(
                "no recording of the room matches the composition's sources".to_owned(),
            ));
        }
        let encrypted = sel.encrypted();
        if !encrypted.is_empty() {
            return Err(failed(format!(
                "recordings {} are encrypted with your public key and cannot be composed",
                encrypted.join(", ")
            )));
        }
        if sel.all().count() > MAX_SOURCES {
            return Err(failed(format!(
                "more than {MAX_SOURCES} recordings match; narrow the sources"
            )));
        }

        // Lengths: from the recording where known, else measured by reading the track once.
        let mut durations = HashMap::new();
        for r in sel.all() {
            let ms = match r.duration_ms {
                Some(ms) => u64::try_from(ms).unwrap_or(0),
                None => {
                    let (ffmpeg, reader) = (ffmpeg.clone(), self.reader.clone());
                    let key = r.object_key.clone().unwrap_or_default();
                    tokio::task::spawn_blocking(move || probe_duration_ms(&ffmpeg, reader, &key))
                        .await
                        .map_err(|e| failed(e.to_string()))?
                        .map_err(|e| failed(format!("recording {}: {e}", r.sid)))?
                }
            };
            durations.insert(r.sid.clone(), ms);
        }
        let plan = plan(
            &sel,
            &spec,
            &|sid| durations.get(sid).copied().unwrap_or(0),
            origin(&sel, &recordings, spec.trim),
        );
        check_timeline(plan.total_ms).map_err(failed)?;
        let seal = self.seal_for(c).await?;
        let limits = self.limits;

        let reader = self.reader.clone();
        let plan_for_start = plan.clone();
        let scratch = self.scratch.clone();
        let mut running =
            tokio::task::spawn_blocking(move || start(&ffmpeg, &scratch, &plan_for_start, &reader))
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(format!("ffmpeg could not be started: {e}")))?;

        let object_key = format!("{}/{}-{}", c.account_sid, c.sid, c.attempts);
        let mut sink = services
            .sinks
            .open(&object_key, &seal)
            .await
            .map_err(|e| seal_failure(c, &e))?;
        let mut renew = tokio::time::interval(RENEW_EVERY);
        renew.tick().await;
        let mut progress = running.progress.clone();
        let mut progress_done = false;
        let mut reported = 0u64;
        let mut last_report = Instant::now();
        let began = Instant::now();
        let node = services.config.node_id.clone();
        // The bounds of issue 10: past either, ffmpeg is killed and nothing is stored.
        let expiry = tokio::time::sleep(limits.max_wall_time);
        tokio::pin!(expiry);
        let mut produced = 0u64;
        // ffmpeg's output, sealed as it arrives; `Err` ends the stream when the pipeline failed.
        let piped: Result<(), String> = loop {
            tokio::select! {
                () = &mut expiry => {
                    running.kill();
                    running.output.close();
                    break Err(format!(
                        "the composition ran longer than this server allows ({} s) and was stopped; \
                         nothing was stored. Compose fewer or shorter recordings, or ask the operator \
                         to raise the limit",
                        limits.max_wall_time.as_secs()
                    ));
                }
                chunk = running.output.recv() => match chunk {
                    Some(Ok(bytes)) => {
                        produced = produced.saturating_add(bytes.len() as u64);
                        if produced > limits.max_output_bytes {
                            running.kill();
                            running.output.close();
                            break Err(format!(
                                "the composition grew past this server's limit of {} bytes and was \
                                 stopped; nothing was stored. Compose fewer or shorter recordings, a \
                                 lower Resolution, or ask the operator to raise the limit",
                                limits.max_output_bytes
                            ));
                        }
                        if let Err(e) = sink.write(&bytes).await {
                            running.kill();
                            // Unblocks the stdout pump so the pipeline's outcome can arrive.
                            running.output.close();
                            break Err(seal_failure_text(c, &e));
                        }
                    }
                    Some(Err(e)) => break Err(e.to_string()),
                    None => break Ok(()),
                },
                _ = renew.tick() => {
                    let until = services.now_us() + micros(LEASE);
                    match services.meta.renew_composition_lease(&c.sid, &node, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            running.kill();
                            sink.abort().await;
                            return Err(JobError::LeaseLost);
                        }
                        Err(e) => tracing::warn!(composition = %c.sid, error = %e, "lease renewal failed; retrying"),
                    }
                }
                changed = progress.changed(), if !progress_done => {
                    if changed.is_err() {
                        // The progress sender is gone: ffmpeg finished; keep draining its output.
                        progress_done = true;
                        continue;
                    }
                    let us = *progress.borrow_and_update();
                    let percent = (us / 1000).saturating_mul(100) / plan.total_ms.max(1);
                    if percent / 10 > reported / 10 && percent < 100 && last_report.elapsed() >= Duration::from_secs(1) {
                        reported = percent;
                        last_report = Instant::now();
                        let spent = began.elapsed().as_secs();
                        let remaining = spent.saturating_mul(100 - percent) / percent.max(1);
                        let extra = [("PercentageDone", percent.to_string()), ("SecondsRemaining", remaining.to_string())];
                        if let Some(cb) = services.composition_callback(c, "composition-progress", &extra)
                            && let Err(e) = services.meta.enqueue_callbacks(&[cb]).await
                        {
                            tracing::warn!(composition = %c.sid, error = %e, "composition-progress callback not queued");
                        }
                    }
                }
            }
        };
        let outcome = (&mut running.outcome)
            .await
            .unwrap_or_else(|_| Err("the composition pipeline stopped".to_owned()));
        if let Err(e) = piped.and(outcome) {
            sink.abort().await;
            return Err(failed(e));
        }
        let stored = sink.finish().await.map_err(|e| seal_failure(c, &e))?;
        if stored.plain_size == 0 {
            let _ = services.objects().delete(&object_key).await;
            return Err(failed("ffmpeg produced no media".to_owned()));
        }
        Ok(Made {
            object_key,
            sealing: stored.sealing,
            sealed_size: stored.sealed_size,
            plain_size: stored.plain_size,
            duration_ms: plan.total_ms,
        })
    }
}

fn seal_failure_text(c: &Composition, e: &SinkError) -> String {
    match e {
        SinkError::Seal(e) => format!("sealing failed: {e}"),
        other => {
            tracing::error!(composition = %c.sid, error = %other, "storing the composition failed");
            "the composition could not be stored".to_owned()
        }
    }
}

fn seal_failure(c: &Composition, e: &SinkError) -> JobError {
    JobError::Failed(seal_failure_text(c, e))
}

impl From<LedgerError> for JobError {
    fn from(e: LedgerError) -> Self {
        Self::Failed(e.to_string())
    }
}
