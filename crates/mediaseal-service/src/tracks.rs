//! Video track recordings (`RT…`) and the rules of seed 001: sealed in `s3-cbc` with the
//! customer's key when video recording encryption is on (and then nobody but the customer can
//! read or compose them), otherwise at rest; Matroska media only.
//!
//! The ingest door uses [`Services::start_track_recording`] today; the room workers will use
//! it next.

use mediaseal_media::matroska::{self, BlockClock, MatroskaError};
use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Product, Refusal, SinkError};
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

    /// Starts a track recording under the account's recording settings, or says why the
    /// settings forbid storing it.
    pub async fn start_track_recording(
        &self,
        req: TrackRequest,
    ) -> Result<Result<TrackRecorder, Refusal>, LedgerError> {
        let account = req.room.account_sid.clone();
        let settings = self
            .video_settings(&account, SettingsKind::Recording)
            .await?;
        let setting = Setting {
            enabled: settings.encryption_enabled,
            key_sid: settings.encryption_key_sid.as_deref(),
        };
        let seal = match policy::resolve(
            self.meta.as_ref(),
            Product::TrackRecording,
            &account,
            setting,
        )
        .await?
        {
            Ok(decision) => decision.seal,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let now = self.now_us();
        let sid = new_sid("RT");
        let rec = TrackRecording {
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
        };
        let pending = self.reserve(rec, &seal).await?;
        Ok(Ok(TrackRecorder {
            pending,
            room: req.room,
            clock: BlockClock::new(),
        }))
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
        let services = self.pending.services().clone();
        let now = services.now_us();
        let rec = self.pending.row_mut();
        rec.plain_size = i64::try_from(stored.plain_size).unwrap_or(i64::MAX);
        rec.sealed_size = i64::try_from(stored.sealed_size).unwrap_or(i64::MAX);
        rec.sealing = stored.sealing;
        rec.status = "completed".to_owned();
        rec.visible = true;
        rec.date_updated = now;
        let rec = rec.clone();
        let room = &self.room;
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
        let rec = self.pending.publish(&callbacks, &[]).await?;
        metrics::counter!("mediaseal_track_recordings_ingested_total", "sealing" => rec.sealing.as_str()).increment(1);
        tracing::info!(recording = %rec.sid, room = %room.sid, account = %rec.account_sid, sealing = rec.sealing.as_str(), bytes = rec.plain_size, "track recording stored");
        Ok(Ok(rec))
    }
}
