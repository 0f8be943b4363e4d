//! Video track recordings (`RT…`) and the rules of seed 001: sealed in `s3-cbc` with the
//! customer's key when video recording encryption is on (and then nobody but the customer can
//! read or compose them), otherwise at rest; Matroska media only.
//!
//! The ingest door uses [`Services::start_track_recording`] (the server seals what is uploaded);
//! room workers seal as they record and hand over ciphertext through
//! [`Services::start_live_track_recording`].

use mediaseal_media::matroska::{self, BlockClock, MatroskaError};
use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Product, Refusal, Seal, SinkError};
use mediaseal_store::ObjectMeta;
use mediaseal_store::model::{Callback, Sealing};
use mediaseal_store::video::{Room, SettingsKind, TrackRecording, VideoSettings};

use crate::Services;
use crate::clock::iso8601;
use crate::ledger::{LedgerError, Pending};
use crate::outbox::new_callback;
use crate::sid::new_sid;

/// A track recording about to be made.
#[derive(Debug, Clone)]
pub struct TrackRequest {
    /// The room, in progress.
    pub room: Room,
    /// `PA…`.
    pub participant_sid: String,
    /// `MT…`.
    pub source_sid: String,
    /// The track's name.
    pub track_name: String,
    /// `audio`, `video` or `data`.
    pub media_type: String,
    /// `opus`, `pcmu`, `vp8`, `h264`.
    pub codec: String,
    /// `mka` or `mkv`.
    pub container_format: String,
    /// Where the track starts on the room's timeline.
    pub offset_ms: i64,
    /// The track's own status callback.
    pub status_callback: Option<String>,
    /// Its method.
    pub status_callback_method: String,
}

/// Why a finished track was not kept.
#[derive(Debug, thiserror::Error)]
pub enum TrackRejected {
    /// No bytes arrived.
    #[error("the body is empty; send the track's media")]
    Empty,
    /// The bytes are not Matroska.
    #[error(transparent)]
    NotMatroska(#[from] MatroskaError),
}

/// A track recording being sealed.
#[derive(Debug)]
pub struct TrackRecorder {
    pending: Pending<TrackRecording>,
    room: Room,
    /// The track's length, measured from its blocks: neither the uploader's `Duration` nor the
    /// file's own header is trusted, since compositions are sized by it (issue 10).
    clock: BlockClock,
}

impl Services {
    /// The account's video settings of `kind`, or the defaults.
    pub async fn video_settings(
        &self,
        account_sid: &str,
        kind: SettingsKind,
    ) -> Result<VideoSettings, LedgerError> {
        Ok(self
            .meta
            .video_settings(account_sid, kind)
            .await?
            .unwrap_or_else(|| VideoSettings::default_for(account_sid, kind)))
    }

    /// How the account's track recordings are sealed now (its video recording settings), or
    /// why the settings forbid storing any.
    pub async fn track_recording_seal(
        &self,
        account_sid: &str,
    ) -> Result<Result<Seal, Refusal>, LedgerError> {
        let settings = self
            .video_settings(account_sid, SettingsKind::Recording)
            .await?;
        let setting = Setting {
            enabled: settings.encryption_enabled,
            key_sid: settings.encryption_key_sid.as_deref(),
        };
        Ok(policy::resolve(
            self.meta.as_ref(),
            Product::TrackRecording,
            account_sid,
            setting,
        )
        .await?
        .map(|decision| decision.seal))
    }

    /// Starts a track recording under the account's recording settings, or says why the
    /// settings forbid storing it.
    pub async fn start_track_recording(
        &self,
        req: TrackRequest,
    ) -> Result<Result<TrackRecorder, Refusal>, LedgerError> {
        let seal = match self.track_recording_seal(&req.room.account_sid).await? {
            Ok(seal) => seal,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let room = req.room.clone();
        let pending = self.reserve(self.track_row(req, &seal), &seal).await?;
        Ok(Ok(TrackRecorder {
            pending,
            room,
            clock: BlockClock::new(),
        }))
    }

    /// Starts a track recording that a room worker seals as it records, with `seal` (decided
    /// by [`track_recording_seal`](Self::track_recording_seal) when the room started and handed
    /// to the worker): this side stores the worker's ciphertext and publishes the recording.
    pub async fn start_live_track_recording(
        &self,
        req: TrackRequest,
        seal: &Seal,
    ) -> Result<LiveTrackRecorder, LedgerError> {
        let sealing = match seal {
            Seal::Customer { .. } => Sealing::Customer,
            Seal::AtRest => Sealing::AtRest,
        };
        let room = req.room.clone();
        let pending = self
            .reserve_sealed_elsewhere(self.track_row(req, seal), sealing)
            .await?;
        Ok(LiveTrackRecorder {
            pending,
            room,
            sealing,
        })
    }

    /// The reserved (invisible) row of a new track recording.
    fn track_row(&self, req: TrackRequest, seal: &Seal) -> TrackRecording {
        let account = req.room.account_sid.clone();
        let now = self.now_us();
        let sid = new_sid("RT");
        TrackRecording {
            sid: sid.clone(),
            account_sid: account.clone(),
            room_sid: req.room.sid.clone(),
            participant_sid: req.participant_sid,
            source_sid: req.source_sid,
            track_name: req.track_name,
            media_type: req.media_type,
            codec: req.codec,
            container_format: req.container_format,
            offset_ms: req.offset_ms,
            duration_ms: None,
            status: "processing".to_owned(),
            sealing: Sealing::None,
            encryption_key_sid: seal.customer_key_sid().map(str::to_owned),
            object_key: Some(format!("{account}/{sid}")),
            sealed_size: 0,
            plain_size: 0,
            status_callback: req.status_callback,
            status_callback_method: req.status_callback_method,
            visible: false,
            deleted: false,
            date_created: now,
            date_updated: now,
            date_deleted: None,
        }
    }

    /// A room or track status callback about track recording `r`.
    pub fn track_callback(
        &self,
        url: &str,
        method: &str,
        room: &Room,
        r: &TrackRecording,
        event: &str,
    ) -> Callback {
        let params: Vec<(String, String)> = [
            ("AccountSid", r.account_sid.clone()),
            ("RoomSid", room.sid.clone()),
            ("RoomName", room.unique_name.clone()),
            ("RoomStatus", room.status.clone()),
            ("RoomType", room.room_type.clone()),
            ("StatusCallbackEvent", event.to_owned()),
            ("Timestamp", iso8601(self.now_us())),
            ("ParticipantSid", r.participant_sid.clone()),
            ("SourceSid", r.source_sid.clone()),
            ("TrackName", r.track_name.clone()),
            ("RecordingSid", r.sid.clone()),
            ("RecordingUri", format!("/v1/Recordings/{}", r.sid)),
            ("MediaUri", format!("/v1/Recordings/{}/Media", r.sid)),
            ("Container", r.container_format.clone()),
            ("Codec", r.codec.clone()),
            ("Type", r.media_type.clone()),
            (
                "Duration",
                r.duration_ms.map_or(0, |ms| (ms + 500) / 1000).to_string(),
            ),
            ("Size", track_size(r).to_string()),
            ("OffsetFromTwilioVectorEpoch", r.offset_ms.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        new_callback(self, &r.account_sid, &r.sid, url, method, &params)
    }
}

/// The size a client downloads: the sealed bytes for customer-sealed media, the plaintext for
/// media the service decrypts on the way out.
pub fn track_size(r: &TrackRecording) -> i64 {
    match r.sealing {
        Sealing::Customer => r.sealed_size,
        Sealing::AtRest => r.plain_size,
        Sealing::None => 0,
    }
}

impl TrackRecorder {
    /// The recording's SID.
    pub fn sid(&self) -> &str {
        &self.pending.row().sid
    }

    /// Seals the next media bytes.
    pub async fn write(&mut self, media: &[u8]) -> Result<(), SinkError> {
        self.clock.feed(media);
        self.pending.write(media).await
    }

    /// The producer's media stopped short: nothing is kept.
    pub async fn interrupted(self) -> Result<(), LedgerError> {
        self.pending.abandon().await
    }

    /// Seals the tail, checks the media is Matroska, and publishes the recording with its
    /// `recording-started` and `recording-completed` callbacks; a rejected track leaves
    /// nothing behind.
    pub async fn finish(mut self) -> Result<Result<TrackRecording, TrackRejected>, LedgerError> {
        let stored = match self.pending.seal().await {
            Ok(stored) => stored,
            Err(e) => {
                self.pending.abandon().await?;
                return Err(e.into());
            }
        };
        let rejected = if stored.plain_size == 0 {
            Some(TrackRejected::Empty)
        } else {
            match matroska::sniff(&stored.head) {
                Ok(_) => {
                    // No block read (a layout this clock does not follow): unknown, and the
                    // composition worker measures the track with ffmpeg when it needs to.
                    let measured = self.clock.duration_ms();
                    self.pending.row_mut().duration_ms =
                        measured.and_then(|ms| i64::try_from(ms).ok());
                    None
                }
                Err(e) => Some(e.into()),
            }
        };
        if let Some(why) = rejected {
            self.pending.abandon().await?;
            return Ok(Err(why));
        }
        let sealed_size = stored.sealed_size;
        let plain_size = stored.plain_size;
        publish_track(
            self.pending,
            &self.room,
            stored.sealing,
            plain_size,
            sealed_size,
        )
        .await
        .map(Ok)
    }
}

/// A track recording sealed by a room worker: the ciphertext arrives over the worker's control
/// pipe and is stored here; this side never sees the plaintext.
#[derive(Debug)]
pub struct LiveTrackRecorder {
    pending: Pending<TrackRecording>,
    room: Room,
    sealing: Sealing,
}

impl LiveTrackRecorder {
    /// The recording's SID.
    pub fn sid(&self) -> &str {
        &self.pending.row().sid
    }

    /// Stores the next ciphertext.
    pub async fn write_sealed(&mut self, sealed: &[u8]) -> Result<(), SinkError> {
        self.pending.write_sealed(sealed).await
    }

    /// The worker's recording stopped short (it failed, or died): nothing is kept.
    pub async fn interrupted(self) -> Result<(), LedgerError> {
        self.pending.abandon().await
    }

    /// The worker finished the recording: `meta` is its receipt's object headers,
    /// `duration_ms` the length it measured from the frames it muxed, `plain_size` the
    /// plaintext it sealed. Stores the object and publishes the recording with its callbacks.
    pub async fn finish(
        mut self,
        meta: ObjectMeta,
        duration_ms: u64,
        plain_size: u64,
    ) -> Result<TrackRecording, LedgerError> {
        let sealed_size = match self.pending.seal_elsewhere(meta).await {
            Ok(n) => n,
            Err(e) => {
                self.pending.abandon().await?;
                return Err(e.into());
            }
        };
        self.pending.row_mut().duration_ms = i64::try_from(duration_ms).ok();
        publish_track(
            self.pending,
            &self.room,
            self.sealing,
            plain_size,
            sealed_size,
        )
        .await
    }
}

/// Publishes a stored track recording with its `recording-started` and `recording-completed`
/// callbacks.
async fn publish_track(
    mut pending: Pending<TrackRecording>,
    room: &Room,
    sealing: Sealing,
    plain_size: u64,
    sealed_size: u64,
) -> Result<TrackRecording, LedgerError> {
    let services = pending.services().clone();
    let now = services.now_us();
    let rec = pending.row_mut();
    rec.plain_size = i64::try_from(plain_size).unwrap_or(i64::MAX);
    rec.sealed_size = i64::try_from(sealed_size).unwrap_or(i64::MAX);
    rec.sealing = sealing;
    rec.status = "completed".to_owned();
    rec.visible = true;
    rec.date_updated = now;
    let rec = rec.clone();
    let mut callbacks = Vec::new();
    // Recording events go to the room's status callback, as Twilio's do, and to the track's.
    for (url, method) in [
        (
            room.status_callback.as_deref(),
            room.status_callback_method.as_str(),
        ),
        (
            rec.status_callback.as_deref(),
            rec.status_callback_method.as_str(),
        ),
    ] {
        if let Some(url) = url {
            for event in ["recording-started", "recording-completed"] {
                callbacks.push(services.track_callback(url, method, room, &rec, event));
            }
        }
    }
    let rec = pending.publish(&callbacks, &[]).await?;
    metrics::counter!("mediaseal_track_recordings_ingested_total", "sealing" => rec.sealing.as_str()).increment(1);
    tracing::info!(recording = %rec.sid, room = %room.sid, account = %rec.account_sid, sealing = rec.sealing.as_str(), bytes = rec.plain_size, "track recording stored");
    Ok(rec)
}
