//! Live track recordings of group rooms (`RecordParticipantsOnConnect=true`, or recording
//! rules that include tracks).
//!
//! When such a room starts, or when its recording rules first include something
//! ([`apply_rules`]), the account's video recording settings decide the seal (the customer's
//! key in `s3-cbc`, or the service's at-rest key) and the room's process is told to record with
//! that public key: it muxes each track its rules select into Matroska and seals it as the
//! frames arrive. New rules go to the process, which starts and finishes track recordings to
//! match; each start is a new `RT…` recording. What reaches this task is ciphertext, which it
//! stores through the ledger ([`Services::start_live_track_recording`]) as one `RT…` recording
//! per track: visible `processing` with `recording-started` as soon as the worker starts it,
//! `completed` with `recording-completed` when the worker reports the track finished. A
//! recording the worker could not finish (it failed, or the process died) keeps no media: its
//! partial object is destroyed and it is `failed`, with `recording-failed`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mediaseal_rooms::control::{RecordingSeal, Request, WorkerEvent};
use mediaseal_rooms::recording_rules::RecordingRules;
use mediaseal_rooms::signal::TrackKind;
use mediaseal_service::Services;
use mediaseal_service::tracks::{LiveTrackRecorder, TrackRequest};
use mediaseal_sink::{AT_REST_KEY_ID, Refusal, Seal};
use mediaseal_store::video::Room;

use crate::state::AppState;

/// Asks the room's process to record, if the room records participants on connect, and
/// stores what it sends. Call once, after the room's row exists.
pub(crate) async fn start(st: &AppState, room: &Room) {
    if room.record_participants_on_connect {
        record(st, room, true).await;
    }
}

/// Sends the room's process its new recording rules and, when they include something, makes
/// sure it records (the rules go first, so its recorder starts with them).
pub(super) async fn apply_rules(st: &AppState, room: &Room, rules: RecordingRules) {
    let Some(processes) = st.room_processes() else {
        return;
    };
    let can_record = rules.can_record();
    if !processes
        .send(&room.sid, Request::RecordingRules { rules })
        .await
    {
        tracing::warn!(room = %room.sid, "the room's process did not take its new recording rules");
        return;
    }
    if can_record {
        record(st, room, false).await;
    }
}

/// Starts the room's recorder with the account's seal and stores what it sends; a room that
/// records already is left as it is (`at_start`: the room was just created, so it cannot).
async fn record(st: &AppState, room: &Room, at_start: bool) {
    let Some(processes) = st.room_processes() else {
        return;
    };
    let services = st.services.clone();
    let seal = match services.track_recording_seal(&room.account_sid).await {
        Ok(Ok(seal)) => seal,
        Ok(Err(refusal)) => {
            let why = match refusal {
                Refusal::KeyGone { sid, .. } => format!(
                    "recording encryption is on, but its public key {} no longer exists",
                    sid.unwrap_or_default()
                ),
                other => other.to_string(),
            };
            tracing::warn!(room = %room.sid, account = %room.account_sid, reason = %why, "the room's tracks will not be recorded");
            return;
        }
        Err(e) => {
            tracing::error!(room = %room.sid, error = %e, "the room's recording settings could not be read; its tracks will not be recorded");
            return;
        }
    };
    let Some(events) = processes
        .record(&room.sid, worker_seal(&services, &seal))
        .await
    else {
        if at_start || processes.pid(&room.sid).is_none() {
            tracing::warn!(room = %room.sid, "the room's process did not take the recording request");
        }
        return;
    };
    tracing::info!(room = %room.sid, customer_key = seal.customer_key_sid().is_some(), "recording the room's tracks");
    tokio::spawn(store(services, room.clone(), seal, events));
}

/// The public half of `seal`, for the worker.
fn worker_seal(services: &Services, seal: &Seal) -> RecordingSeal {
    match seal {
        Seal::Customer { format, key } => RecordingSeal {
            customer: true,
            format: format.name().to_owned(),
            key_id: key.sid.clone(),
            public_key: BASE64.encode(key.key.spki_der()),
        },
        Seal::AtRest => RecordingSeal {
            customer: false,
            format: mediaseal_crypto::Format::Native.name().to_owned(),
            key_id: AT_REST_KEY_ID.to_owned(),
            public_key: BASE64.encode(services.sinks.at_rest_key().spki_der()),
        },
    }
}

/// Stores the worker's recordings until its event stream closes.
async fn store(
    services: Services,
    room: Room,
    seal: Seal,
    mut events: crate::room_processes::RecordingEvents,
) {
    let mut live: HashMap<String, LiveTrackRecorder> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            WorkerEvent::RecordingStarted {
                track_sid,
                participant_sid,
                track_name,
                kind,
                codec,
                container,
                offset_ms,
            } => {
                let request = TrackRequest {
                    room: room.clone(),
                    participant_sid,
                    source_sid: track_sid.clone(),
                    track_name,
                    media_type: match kind {
                        TrackKind::Audio => "audio",
                        TrackKind::Video => "video",
                        TrackKind::Data => "data",
                    }
                    .to_owned(),
                    codec,
                    container_format: container,
                    offset_ms: i64::try_from(offset_ms).unwrap_or(0),
                    status_callback: None,
                    status_callback_method: "POST".to_owned(),
                };
                match services.start_live_track_recording(request, &seal).await {
                    Ok(recorder) => {
                        tracing::info!(room = %room.sid, track = %track_sid, recording = %recorder.sid(), "track recording started");
                        live.insert(track_sid, recorder);
                    }
                    Err(e) => {
                        tracing::error!(room = %room.sid, track = %track_sid, error = %e, "the track recording could not be started; it is not kept");
                    }
                }
            }
            WorkerEvent::RecordingData { track_sid, sealed } => {
                let Some(recorder) = live.get_mut(&track_sid) else {
                    continue;
                };
                let stored = match BASE64.decode(sealed.as_bytes()) {
                    Ok(bytes) => recorder
                        .write_sealed(&bytes)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the room process sent bad base64: {e}")),
                };
                if let Err(why) = stored {
                    tracing::error!(room = %room.sid, track = %track_sid, error = %why, "the track recording could not be stored; it failed");
                    if let Some(recorder) = live.remove(&track_sid) {
                        fail(recorder).await;
                    }
                }
            }
            WorkerEvent::RecordingFinished {
                track_sid,
                duration_ms,
                plain_size,
                object_meta,
            } => {
                let Some(recorder) = live.remove(&track_sid) else {
                    continue;
                };
                match recorder.finish(object_meta, duration_ms, plain_size).await {
                    Ok(rec) => {
                        tracing::info!(room = %room.sid, track = %track_sid, recording = %rec.sid, duration_ms, "track recording completed");
                    }
                    Err(e) => {
                        tracing::error!(room = %room.sid, track = %track_sid, error = %e, "the track recording could not be stored; it failed");
                    }
                }
            }
            WorkerEvent::RecordingFailed { track_sid, message } => {
                tracing::warn!(room = %room.sid, track = %track_sid, reason = %message, "the room process could not record the track; it failed");
                if let Some(recorder) = live.remove(&track_sid) {
                    fail(recorder).await;
                }
            }
            _ => {}
        }
    }
    // The process is gone: whatever it did not finish is incomplete, and fails.
    for (track_sid, recorder) in live {
        tracing::warn!(room = %room.sid, track = %track_sid, "the room process ended before the track recording finished; it failed");
        fail(recorder).await;
    }
}

/// Destroys the recording's partial object and publishes it `failed`.
async fn fail(recorder: LiveTrackRecorder) {
    let sid = recorder.sid().to_owned();
    if let Err(e) = recorder.failed().await {
        tracing::error!(recording = %sid, error = %e, "an unfinished track recording could not be marked failed; the sweeper will");
    }
}
