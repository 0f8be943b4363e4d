//! The RecordingRules resource of a group room (`GET`/`POST /v1/Rooms/{room}/RecordingRules`):
//! which published tracks the room records, in Twilio's shape (`room_sid`, `date_created`,
//! `date_updated`, `rules`).
//!
//! A room starts with "include all" when it records participants on connect, else with no rule
//! (nothing recorded); those are shown, dated like the room, until a client sets rules. Rules
//! are checked as Twilio checks them (53120, with the rule and the reason), stored, and sent to
//! the room's process, which starts recording tracks that match now and finishes the
//! recordings of tracks that no longer do. Only group rooms record (53122 otherwise), and only
//! a room in progress takes new rules. A room created with `RecordingRules` starts with those
//! (checked the same way), whatever `RecordParticipantsOnConnect` says.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mediaseal_rooms::recording_rules::{INVALID_RULES, RecordingRules};
use mediaseal_store::model::recording_rules::RoomRecordingRules;
use mediaseal_store::video::Room;
use serde::Serialize;

use super::rooms::resolve;
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::state::AppState;

/// Twilio's code for a recording request a room type cannot serve.
const NOT_FOR_ROOM_TYPE: u32 = 53122;

/// Twilio's code for a room that is over.
const ROOM_COMPLETED: u32 = 53118;

/// The resource.
#[derive(Debug, Serialize)]
pub(crate) struct RecordingRulesResource {
    room_sid: String,
    date_created: String,
    date_updated: String,
    rules: RecordingRules,
}

/// Peer-to-peer and Go rooms have no media in mediaseal to record.
fn group_room_only(room: &Room) -> ApiResult<()> {
    group_type_only(&format!("room {}", room.sid), &room.room_type)
}

fn group_type_only(what: &str, room_type: &str) -> ApiResult<()> {
    if matches!(room_type, "group" | "group-small") {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        NOT_FOR_ROOM_TYPE,
        format!(
            "Recording Rules are only available in group rooms: {what} is {room_type}, whose \
             media goes between the participants and is never recorded"
        ),
    ))
}

/// `Rules` (or, on room creation, `RecordingRules`) checked as Twilio checks them: 53120 with
/// the rule at fault.
fn parse_rules(raw: &str) -> ApiResult<RecordingRules> {
    RecordingRules::parse(raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            INVALID_RULES,
            format!("Invalid Recording Rule(s): {e}"),
        )
    })
}

/// The `RecordingRules` parameter of `POST /v1/Rooms`, if given: checked like the resource's
/// `Rules`, and refused (53122) for a room type that records nothing.
pub(super) fn creation_rules(form: &Params, room_type: &str) -> ApiResult<Option<RecordingRules>> {
    let Some(raw) = form.get("RecordingRules") else {
        return Ok(None);
    };
    group_type_only(&format!("a {room_type} room"), room_type)?;
    parse_rules(raw).map(Some)
}

/// Stores the rules a new room was created with, dated like the room, so the resource shows
/// them from the start.
pub(super) async fn store_creation_rules(
    st: &AppState,
    room: &Room,
    rules: &RecordingRules,
) -> ApiResult<()> {
    st.meta
        .put_room_recording_rules(&RoomRecordingRules {
            account_sid: room.account_sid.clone(),
            room_sid: room.sid.clone(),
            rules: serde_json::to_string(rules).unwrap_or_default(),
            date_created: room.date_created,
            date_updated: room.date_created,
        })
        .await?;
    Ok(())
}

/// The room's rules as stored, or the ones it started with.
async fn current(st: &AppState, room: &Room) -> ApiResult<RecordingRulesResource> {
    let stored = st
        .meta
        .room_recording_rules(&room.account_sid, &room.sid)
        .await?;
    Ok(match stored {
        Some(row) => RecordingRulesResource {
            room_sid: room.sid.clone(),
            date_created: iso8601(row.date_created),
            date_updated: iso8601(row.date_updated),
            // Stored only after the API checked it; a row this version cannot read shows the
            // room's starting rules rather than failing the room.
            rules: serde_json::from_str(&row.rules).unwrap_or_else(|e| {
                tracing::warn!(room = %room.sid, error = %e, "stored recording rules are unreadable");
                RecordingRules::initial(room.record_participants_on_connect)
            }),
        },
        None => RecordingRulesResource {
            room_sid: room.sid.clone(),
            date_created: iso8601(room.date_created),
            date_updated: iso8601(room.date_created),
            rules: RecordingRules::initial(room.record_participants_on_connect),
        },
    })
}

/// `GET /v1/Rooms/{room}/RecordingRules`.
pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(ident): Path<String>,
) -> ApiResult<Json<RecordingRulesResource>> {
    let room = resolve(&st, auth.principal.sid(), &ident, &auth.path).await?;
    group_room_only(&room)?;
    Ok(Json(current(&st, &room).await?))
}

/// `POST /v1/Rooms/{room}/RecordingRules` with `Rules`, a JSON array of rules.
pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path(ident): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RecordingRulesResource>> {
    let room = resolve(&st, auth.principal.sid(), &ident, &auth.path).await?;
    group_room_only(&room)?;
    let form = Params::from_form(&body);
    let Some(raw) = form.get("Rules") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            INVALID_RULES,
            "Invalid Recording Rule(s): the Rules parameter is missing; send a JSON array such \
             as [{\"type\":\"include\",\"all\":true}]",
        ));
    };
    let rules = parse_rules(raw)?;
    if room.status != "in-progress" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ROOM_COMPLETED,
            format!(
                "Room {} is {}: recording rules can only change while it is in progress",
                room.sid, room.status
            ),
        ));
    }
    let now = now_us();
    let stored = st
        .meta
        .put_room_recording_rules(&RoomRecordingRules {
            account_sid: room.account_sid.clone(),
            room_sid: room.sid.clone(),
            // Plain data with string keys: serializing cannot fail.
            rules: serde_json::to_string(&rules).unwrap_or_default(),
            date_created: now,
            date_updated: now,
        })
        .await?;
    tracing::info!(room = %room.sid, rules = rules.rules.len(), "recording rules updated");
    super::live_recordings::apply_rules(&st, &room, rules.clone()).await;
    Ok(Json(RecordingRulesResource {
        room_sid: room.sid.clone(),
        date_created: iso8601(stored.date_created),
        date_updated: iso8601(stored.date_updated),
        rules,
    }))
}
