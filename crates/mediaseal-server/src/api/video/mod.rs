//! Twilio Video v1 (seed 001): recording and composition settings, rooms, track recordings
//! sealed on arrival, compositions made by ffmpeg, composition hooks, and `/Media` downloads
//! through signed URLs.
//!
//! Every resource belongs to the authenticated account (v1 paths carry no account), and every
//! lookup is scoped to it: another account's SID is a 404, as a SID that does not exist.

mod compositions;
mod connect;
mod hooks;
mod join;
mod live_recordings;
mod media;
pub(crate) mod mesh;
mod participants;
mod recording_rules;
mod recordings;
mod room_access;
pub(crate) mod rooms;
mod settings;
pub(crate) mod subscribe_rules;
pub(crate) mod whip;

use axum::Router;
use axum::routing::{delete, get, post};
use mediaseal_store::model::Cursor;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::parse_date;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::state::AppState;

/// The video routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/RecordingSettings/Default",
            get(settings::get_recording).post(settings::post_recording),
        )
        .route(
            "/v1/CompositionSettings/Default",
            get(settings::get_composition).post(settings::post_composition),
        )
        .route("/v1/Rooms", get(rooms::list).post(rooms::create))
        .route("/v1/Rooms/{room}", get(rooms::fetch).post(rooms::update))
        .route("/v1/Rooms/{room}/Connect", get(connect::connect))
        .route(
            "/v1/Rooms/{room}/Whip",
            post(whip::publish).options(whip::options),
        )
        .route(
            "/v1/Rooms/{room}/Whip/{participant}",
            delete(whip::end_publish).patch(whip::patch),
        )
        .route(
            "/v1/Rooms/{room}/Whep",
            post(whip::watch).options(whip::options),
        )
        .route(
            "/v1/Rooms/{room}/Whep/{participant}",
            delete(whip::end_watch).patch(whip::patch),
        )
        .route("/rooms/join", get(join::page))
        .route("/rooms/join.js", get(join::script))
        .route("/v1/Rooms/{room}/Participants", get(participants::list))
        .route(
            "/v1/Rooms/{room}/Participants/{participant}",
            get(participants::fetch).post(participants::update),
        )
        .route(
            "/v1/Rooms/{room}/Participants/{participant}/PublishedTracks",
            get(participants::list_tracks),
        )
        .route(
            "/v1/Rooms/{room}/Participants/{participant}/PublishedTracks/{track}",
            get(participants::fetch_track),
        )
        .route(
            "/v1/Rooms/{room}/Participants/{participant}/SubscribedTracks",
            get(participants::list_subscribed),
        )
        .route(
            "/v1/Rooms/{room}/Participants/{participant}/SubscribedTracks/{track}",
            get(participants::fetch_subscribed),
        )
        .route(
            "/v1/Rooms/{room}/Participants/{participant}/SubscribeRules",
            get(subscribe_rules::fetch).post(subscribe_rules::update),
        )
        .route(
            "/v1/Rooms/{room}/RecordingRules",
            get(recording_rules::fetch).post(recording_rules::update),
        )
        .route(
            "/v1/Rooms/{room}/Recordings",
            get(recordings::list_for_room).post(recordings::ingest),
        )
        .route(
            "/v1/Rooms/{room}/Recordings/{sid}",
            get(recordings::fetch_in_room).delete(recordings::delete_in_room),
        )
        .route(
            "/v1/Rooms/{room}/Recordings/{sid}/Media",
            get(media::room_recording),
        )
        .route(
            "/v1/Rooms/{room}/Recordings/{sid}/Media/",
            get(media::room_recording),
        )
        .route("/v1/Recordings", get(recordings::list))
        .route(
            "/v1/Recordings/{sid}",
            get(recordings::fetch).delete(recordings::delete),
        )
        .route("/v1/Recordings/{sid}/Media", get(media::recording))
        .route("/v1/Recordings/{sid}/Media/", get(media::recording))
        .route(
            "/v1/Compositions",
            get(compositions::list).post(compositions::create),
        )
        .route(
            "/v1/Compositions/{sid}",
            get(compositions::fetch).delete(compositions::delete),
        )
        .route("/v1/Compositions/{sid}/Media", get(media::composition))
        .route("/v1/Compositions/{sid}/Media/", get(media::composition))
        .route("/v1/CompositionHooks", get(hooks::list).post(hooks::create))
        .route(
            "/v1/CompositionHooks/{sid}",
            get(hooks::fetch).post(hooks::update).delete(hooks::delete),
        )
        .route("/v1/MediaDownload/{token}", get(media::download))
}

/// Largest page of a video list (Twilio's limit).
const MAX_PAGE: i64 = 100;

fn cursor(date_created: i64, sid: &str) -> Cursor {
    Cursor {
        date_created,
        sid: sid.to_owned(),
    }
}

/// An optional `YYYY-MM-DDTHH:MM:SSZ` (or `YYYY-MM-DD`) filter, in µs.
fn date_param(q: &Params, name: &str) -> ApiResult<Option<i64>> {
    match q.get(name) {
        None | Some("") => Ok(None),
        Some(v) => parse_date(v).map(|(t, _)| Some(t)).ok_or_else(|| {
            ApiError::bad_param(name, format!("'{v}' is not a date (YYYY-MM-DDTHH:MM:SSZ)"))
        }),
    }
}

/// An optional value from a fixed set.
fn one_of<'a>(q: &'a Params, name: &str, allowed: &[&str]) -> ApiResult<Option<&'a str>> {
    match q.get(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(ApiError::bad_param(
            name,
            format!("'{v}' is not one of {}", allowed.join(", ")),
        )),
    }
}

/// Track names and patterns of `AudioSources`-style lists: repeated keys (and, leniently, commas).
fn source_list(q: &Params, name: &str) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for raw in q.all(name) {
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.len() > 256 || item.chars().any(char::is_control) {
                return Err(ApiError::bad_param(
                    name,
                    format!("'{item}' is not a track name"),
                ));
            }
            out.push(item.to_owned());
        }
    }
    if out.len() > 64 {
        return Err(ApiError::bad_param(name, "more than 64 entries"));
    }
    Ok(out)
}

/// A stored JSON list of track names (`audio_sources` of a composition or hook); empty if
/// unreadable.
fn stored_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// A stored `VideoLayout`, the client's own JSON; `{}` if unreadable.
fn stored_layout(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::Object(Map::new()))
}

/// `links` of a composition or track recording.
#[derive(Debug, Serialize)]
struct MediaLinks {
    media: String,
}

impl MediaLinks {
    /// The links of the resource at `url`.
    fn of(url: &str) -> Self {
        Self {
            media: format!("{url}/Media"),
        }
    }
}
