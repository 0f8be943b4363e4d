//! Admitting a composition: what a request (or a composition hook) asks for, checked against the
//! room's recordings and the account's composition settings before anything is queued.

use mediaseal_service::compositions::RESERVATION;
use mediaseal_service::ledger::LedgerError;
use mediaseal_service::sid::new_sid;
use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Product, Refusal};
use mediaseal_store::model::Sealing;
use mediaseal_store::video::{Composition, Room, SettingsKind};
use serde_json::json;

use crate::Composer;
use crate::plan::{check_timeline, origin, plan};
use crate::select::select;
use crate::spec::{MAX_SOURCES, Spec};

/// What to compose, as a request or a hook states it, already validated.
#[derive(Debug, Clone)]
pub struct Template {
    /// `AudioSources` patterns.
    pub audio_sources: Vec<String>,
    /// `AudioSourcesExcluded` patterns.
    pub audio_sources_excluded: Vec<String>,
    /// Canonical JSON of the layout (`{}` when none).
    pub video_layout: String,
    /// `WIDTHxHEIGHT`.
    pub resolution: String,
    /// `webm` or `mp4`.
    pub format: String,
    /// Cut the silence before the first track.
    pub trim: bool,
    /// Where composition events go.
    pub status_callback: Option<String>,
    /// Its method.
    pub status_callback_method: String,
}

impl Template {
    /// The parsed spec.
    pub fn spec(&self) -> Result<Spec, String> {
        Spec::from_stored(
            &json!(self.audio_sources).to_string(),
            &json!(self.audio_sources_excluded).to_string(),
            &self.video_layout,
            &self.resolution,
            &self.format,
            self.trim,
        )
    }
}

impl Composer {
    /// True when this node can compose at all (ffmpeg is installed).
    pub fn available(&self) -> bool {
        self.ffmpeg.is_some()
    }

    /// A new composition of `room` per `t`, ready to queue (reserved for this node for a
    /// moment), or the reason it cannot be made, for the customer.
    pub async fn prepare(
        &self,
        room: &Room,
        t: &Template,
        hook_sid: Option<&str>,
    ) -> Result<Result<Composition, String>, LedgerError> {
        let services = &self.services;
        let now = services.now_us();
        let mut c = Composition {
            sid: new_sid("CJ"),
            account_sid: room.account_sid.clone(),
            room_sid: room.sid.clone(),
            hook_sid: hook_sid.map(str::to_owned),
            status: "enqueued".to_owned(),
            audio_sources: json!(t.audio_sources).to_string(),
            audio_sources_excluded: json!(t.audio_sources_excluded).to_string(),
            video_layout: t.video_layout.clone(),
            resolution: t.resolution.clone(),
            format: t.format.clone(),
            trim: t.trim,
            status_callback: t.status_callback.clone(),
            status_callback_method: t.status_callback_method.clone(),
            seal_key_sid: None,
            sealing: Sealing::None,
            object_key: None,
            sealed_size: 0,
            plain_size: 0,
            bitrate: 0,
            duration: 0,
            error_code: None,
            error_message: None,
            attempts: 0,
            lease_owner: Some(services.config.node_id.clone()),
            lease_until: Some(now + i64::try_from(RESERVATION.as_micros()).unwrap_or(i64::MAX / 2)),
            deleted: false,
            date_created: now,
            date_updated: now,
            date_completed: None,
            date_deleted: None,
        };
        if !self.available() {
            return Ok(Err(
                "this server has no ffmpeg installed, which compositions need".to_owned(),
            ));
        }
        let spec = match t.spec() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let recordings = services
            .meta
            .room_track_recordings(&room.account_sid, &room.sid)
            .await?;
        let sel = select(&recordings, &spec);
        if sel.is_empty() {
            return Ok(Err(format!(
                "no completed audio or video recording of room {} matches the requested AudioSources/VideoLayout",
                room.sid
            )));
        }
        let encrypted = sel.encrypted();
        if !encrypted.is_empty() {
            return Ok(Err(format!(
                "recordings {} are encrypted with your public key, so they cannot be composed (seed: \"if you encrypt \
                 your Recordings, you will not be able to compose them\"); exclude them, or store the recordings you \
                 want to compose unencrypted",
                encrypted.join(", ")
            )));
        }
        if sel.all().count() > MAX_SOURCES {
            return Ok(Err(format!(
                "more than {MAX_SOURCES} recordings match; narrow AudioSources or VideoLayout"
            )));
        }
        // The lengths measured at ingest (unknown ones count as nothing here; the worker
        // measures them and checks again).
        let measured = |sid: &str| {
            sel.all()
                .find(|r| r.sid == sid)
                .and_then(|r| r.duration_ms)
                .and_then(|ms| u64::try_from(ms).ok())
                .unwrap_or(0)
        };
        let timeline = plan(&sel, &spec, &measured, origin(&sel, &recordings, spec.trim));
        if let Err(why) = check_timeline(timeline.total_ms) {
            return Ok(Err(why));
        }
        let settings = services
            .video_settings(&room.account_sid, SettingsKind::Composition)
            .await?;
        let setting = Setting {
            enabled: settings.encryption_enabled,
            key_sid: settings.encryption_key_sid.as_deref(),
        };
        match policy::resolve(
            services.meta.as_ref(),
            Product::Composition,
            &room.account_sid,
            setting,
        )
        .await?
        {
            Ok(decision) => c.seal_key_sid = decision.seal.customer_key_sid().map(str::to_owned),
            Err(refusal @ Refusal::KeyGone { .. }) => {
                return Ok(Err(format!(
                    "{refusal}; set a key in /v1/CompositionSettings/Default"
                )));
            }
            Err(other) => return Ok(Err(other.to_string())),
        }
        Ok(Ok(c))
    }
}
