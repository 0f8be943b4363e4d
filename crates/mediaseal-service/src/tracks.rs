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
    ///
    /// As on Twilio, the recording is visible at once, `processing` (no size, no duration, no
    /// media), and `recording-started` is queued with it: the reservation is announced through
    /// the ledger ([`Pending::announce`]). It ends `completed` or `failed`.
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
        let mut pending = self
            .reserve_sealed_elsewhere(self.track_row(req, seal), sealing)
            .await?;
        pending.row_mut().visible = true;
        let callbacks = track_callbacks(self, &room, pending.row(), &["recording-started"]);
        if let Err(e) = pending.announce(&callbacks).await {
            // Not announced: the row is still invisible and goes with its sink.
            pending.row_mut().visible = false;
            pending.abandon().await?;
            return Err(e);
        }
        Ok(LiveTrackRecorder {
            pending,
            room,
            sealing,
        })
    }

    /// Publishes track recording `r` (visible, `processing`, its producer gone: the room's
    /// process or this server died mid-track) as `failed`, with `recording-failed` to its
    /// room's and its own status callbacks. It never had a complete object: whatever part of
    /// one exists is no longer pointed at, and the object sweeper removes it.
    pub async fn fail_track_recording(
        &self,
        room: &Room,
        mut r: TrackRecording,
    ) -> Result<TrackRecording, LedgerError> {
        mark_failed(&mut r, self.now_us());
        let callbacks = track_callbacks(self, room, &r, &["recording-failed"]);
        self.publish_without_object(&r, &callbacks, &[]).await?;
        metrics::counter!("mediaseal_track_recordings_failed_total").increment(1);
        tracing::warn!(recording = %r.sid, room = %room.sid, account = %r.account_sid, "track recording failed; nothing of it is kept");
        Ok(r)
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

/// `r` as a failed recording: no object, no size, no seal.
fn mark_failed(r: &mut TrackRecording, now: i64) {
    r.status = "failed".to_owned();
    r.object_key = None;
    r.sealing = Sealing::None;
    r.sealed_size = 0;
    r.plain_size = 0;
    r.visible = true;
    r.date_updated = now;
}

/// The `events` of recording `r`, for the room's status callback (as Twilio sends recording
/// events) and the recording's own.
fn track_callbacks(
    services: &Services,
    room: &Room,
    r: &TrackRecording,
    events: &[&str],
) -> Vec<Callback> {
    let mut callbacks = Vec::new();
    for (url, method) in [
        (
            room.status_callback.as_deref(),
            room.status_callback_method.as_str(),
        ),
        (
            r.status_callback.as_deref(),
            r.status_callback_method.as_str(),
        ),
    ] {
        if let Some(url) = url {
            for event in events {
                callbacks.push(services.track_callback(url, method, room, r, event));
            }
        }
    }
    callbacks
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
            // An upload is announced by nothing before it is stored: both events go now.
            &["recording-started", "recording-completed"],
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

    /// The worker's recording stopped short (it failed, or died): the partial object is
    /// destroyed and the recording, visible since it started, is published `failed` with
    /// `recording-failed`.
    pub async fn failed(self) -> Result<TrackRecording, LedgerError> {
        let services = self.pending.services().clone();
        let room = self.room;
        let row = self.pending.destroy_object().await?;
        services.fail_track_recording(&room, row).await
    }

    /// The worker finished the recording: `meta` is its receipt's object headers,
    /// `duration_ms` the length it measured from the frames it muxed, `plain_size` the
    /// plaintext it sealed. Stores the object and publishes the recording `completed` with
    /// `recording-completed` (`recording-started` went when it started). If the object cannot
    /// be stored, the recording is published `failed` and the error returned.
    pub async fn finish(
        mut self,
        meta: ObjectMeta,
        duration_ms: u64,
        plain_size: u64,
    ) -> Result<TrackRecording, LedgerError> {
        let sealed_size = match self.pending.seal_elsewhere(meta).await {
            Ok(n) => n,
            Err(e) => {
                let sid = self.sid().to_owned();
                if let Err(failing) = self.failed().await {
                    tracing::error!(recording = %sid, error = %failing, "a track recording that could not be stored could not be marked failed; the sweeper will");
                }
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
            &["recording-completed"],
        )
        .await
    }
}

/// Publishes a stored track recording `completed` with the callbacks of `events`.
async fn publish_track(
    mut pending: Pending<TrackRecording>,
    room: &Room,
    sealing: Sealing,
    plain_size: u64,
    sealed_size: u64,
    events: &[&str],
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
    let callbacks = track_callbacks(&services, room, &rec, events);
    let rec = pending.publish(&callbacks, &[]).await?;
    metrics::counter!("mediaseal_track_recordings_ingested_total", "sealing" => rec.sealing.as_str()).increment(1);
    tracing::info!(recording = %rec.sid, room = %room.sid, account = %rec.account_sid, sealing = rec.sealing.as_str(), bytes = rec.plain_size, "track recording stored");
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mediaseal_crypto::PrivateKey;
    use mediaseal_store::{FsObjectStore, MetadataStore, ObjectStore, SqlStore};

    use super::*;
    use crate::clock::ManualClock;
    use crate::{ServiceConfig, SinkFactory};

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    async fn services() -> (Services, Arc<ManualClock>, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetadataStore> = Arc::new(
            SqlStore::open_sqlite(&data.path().join("m.db"))
                .await
                .unwrap(),
        );
        let objects: Arc<dyn ObjectStore> =
            Arc::new(FsObjectStore::new(data.path().join("objects")).unwrap());
        let key = PrivateKey::generate(2048).unwrap();
        let clock = Arc::new(ManualClock::at(1_700_000_000_000_000));
        // reqwest is built without a default crypto provider; the server installs AWS-LC.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let services = Services::new(
            meta,
            SinkFactory::new(objects, key.public_key().clone()),
            clock.clone(),
            ServiceConfig::default(),
        );
        (services, clock, data)
    }

    /// A group room in progress with a status callback, stored.
    async fn room(services: &Services) -> Room {
        let now = services.now_us();
        let room = Room {
            sid: new_sid("RM"),
            account_sid: ACCOUNT.to_owned(),
            unique_name: "live".to_owned(),
            room_type: "group".to_owned(),
            status: "in-progress".to_owned(),
            status_callback: Some("https://app.example/rooms".to_owned()),
            status_callback_method: "POST".to_owned(),
            max_participants: 50,
            record_participants_on_connect: true,
            audio_only: false,
            media_region: None,
            date_created: now,
            date_updated: now,
            end_time: None,
            empty_room_timeout: 5,
            unused_room_timeout: 5,
            node: None,
        };
        services.meta.insert_room(&room, &[]).await.unwrap();
        room
    }

    fn request(room: &Room) -> TrackRequest {
        TrackRequest {
            room: room.clone(),
            participant_sid: new_sid("PA"),
            source_sid: new_sid("MT"),
            track_name: "mic".to_owned(),
            media_type: "audio".to_owned(),
            codec: "opus".to_owned(),
            container_format: "mka".to_owned(),
            offset_ms: 0,
            status_callback: None,
            status_callback_method: "POST".to_owned(),
        }
    }

    async fn events(services: &Services, sid: &str) -> Vec<String> {
        let callbacks = services.meta.callbacks_for(sid).await.unwrap();
        callbacks
            .iter()
            .filter_map(|c| {
                let params: Vec<(String, String)> = serde_json::from_str(&c.params).unwrap();
                params
                    .into_iter()
                    .find(|(k, _)| k == "StatusCallbackEvent")
                    .map(|(_, v)| v)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_live_recording_is_visible_while_it_records_and_fails_without_its_object() {
        let (s, _clock, data) = services().await;
        let room = room(&s).await;
        let mut recorder = s
            .start_live_track_recording(request(&room), &Seal::AtRest)
            .await
            .unwrap();
        let sid = recorder.sid().to_owned();
        let live = s.meta.track_recording(ACCOUNT, &sid).await.unwrap();
        let live = live.expect("listed while it records");
        assert_eq!(live.status, "processing");
        assert_eq!(track_size(&live), 0);
        assert_eq!(events(&s, &sid).await, ["recording-started"]);

        // Part of the track was stored when the room's process died.
        recorder.write_sealed(&[7u8; 4096]).await.unwrap();
        let partials = || -> Vec<std::path::PathBuf> {
            std::fs::read_dir(data.path().join("objects/.partial"))
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        assert!(!partials().is_empty(), "the part written so far is on disk");
        let failed = recorder.failed().await.unwrap();
        assert_eq!(failed.status, "failed");
        let row = s
            .meta
            .track_recording(ACCOUNT, &sid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "failed");
        assert_eq!(row.object_key, None);
        assert_eq!(track_size(&row), 0);
        assert!(
            s.objects().head(&format!("{ACCOUNT}/{sid}")).await.is_err(),
            "no object is left"
        );
        // Nor the part written so far (the store writes into `.partial` until it finishes).
        assert!(
            partials().is_empty(),
            "partial files left: {:?}",
            partials()
        );
        assert_eq!(
            events(&s, &sid).await,
            ["recording-started", "recording-failed"]
        );
    }

    #[tokio::test]
    async fn the_sweeper_fails_recordings_left_processing_after_their_room_ended() {
        let (s, clock, _data) = services().await;
        let room = room(&s).await;
        let recorder = s
            .start_live_track_recording(request(&room), &Seal::AtRest)
            .await
            .unwrap();
        let sid = recorder.sid().to_owned();
        // The server stops mid-track: nothing finishes the recording.
        std::mem::forget(recorder);
        s.meta
            .complete_room(ACCOUNT, &room.sid, s.now_us(), &[], &[])
            .await
            .unwrap();
        crate::sweep::sweep_track_reservations(&s).await;
        let row = s
            .meta
            .track_recording(ACCOUNT, &sid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "processing", "the room ended only now");

        let age = i64::try_from(s.config.orphan_age.as_micros()).unwrap();
        clock.advance(age + 1);
        crate::sweep::sweep_track_reservations(&s).await;
        let row = s
            .meta
            .track_recording(ACCOUNT, &sid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, "failed");
        assert_eq!(row.object_key, None);
        assert_eq!(
            events(&s, &sid).await,
            ["recording-started", "recording-failed"]
        );
    }
}
