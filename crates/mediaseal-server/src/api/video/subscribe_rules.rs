//! The SubscribeRules resource of a group-room participant
//! (`GET`/`POST /v1/Rooms/{room}/Participants/{participant}/SubscribeRules`): which of the other
//! participants' tracks it receives, in Twilio's shape (`participant_sid`, `room_sid`, `rules`,
//! `date_created`, `date_updated`).
//!
//! Every participant starts with `[{"type":"include","all":true}]` (shown with null dates, as
//! Twilio shows a participant's default rule). A `POST` checks the rules as Twilio does (53215,
//! with the rule and the reason) and sends them to the room's process, which stops forwarding
//! the tracks they no longer include and subscribes the participant to the ones they now
//! include, renegotiating as when a publisher comes or goes (`mediaseal_rooms::subscribe_rules`
//! decides). The rules live as long as the participant's media does, so this node keeps the ones
//! it set in memory beside the room's process: a room whose process is gone (completed, failed,
//! or this node restarted) has no rules to show but the default.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mediaseal_rooms::control::Request;
use mediaseal_rooms::subscribe_rules::{INVALID_RULES, SubscribeRules};
use mediaseal_store::video::Room;
use serde::Serialize;

use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::state::AppState;

/// Twilio's code for an operation the room's type does not support (its media never reaches
/// mediaseal: peer-to-peer and Go rooms).
const NOT_FOR_ROOM_TYPE: u32 = 53122;

/// Twilio's "Participant not found": the participant is no longer in the room's media.
const PARTICIPANT_NOT_CONNECTED: u32 = 53204;

/// Twilio's generic room error, for a room whose process this node cannot reach.
const ROOM_UNREACHABLE: u32 = 53000;

/// The resource (Twilio's fields, alphabetical).
#[derive(Debug, Serialize)]
pub(crate) struct SubscribeRulesResource {
    /// Null until rules were set.
    date_created: Option<String>,
    /// Null until rules were set.
    date_updated: Option<String>,
    participant_sid: String,
    room_sid: String,
    rules: SubscribeRules,
}

/// Rules set through this node, per (room, participant): what `GET` shows.
#[derive(Debug, Default)]
pub(crate) struct SubscribeRulesBook {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    rules: SubscribeRules,
    date_created: i64,
    date_updated: i64,
}

impl SubscribeRulesBook {
    fn get(&self, room: &str, participant: &str) -> Option<Entry> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&(room.to_owned(), participant.to_owned()))
            .cloned()
    }

    /// Records `rules` for the participant; forgets the rules of rooms for which `live` says
    /// their process is gone (their participants are too), so the book stays bounded.
    fn put(
        &self,
        room: &str,
        participant: &str,
        rules: SubscribeRules,
        now: i64,
        live: impl Fn(&str) -> bool,
    ) -> Entry {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|(r, _), _| r == room || live(r));
        let entry = entries
            .entry((room.to_owned(), participant.to_owned()))
            .and_modify(|e| {
                e.rules = rules.clone();
                e.date_updated = now;
            })
            .or_insert(Entry {
                rules,
                date_created: now,
                date_updated: now,
            });
        entry.clone()
    }
}

/// Peer-to-peer and Go rooms' media goes between the participants: nothing to enforce.
fn group_room_only(room: &Room) -> ApiResult<()> {
    if matches!(room.room_type.as_str(), "group" | "group-small") {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        NOT_FOR_ROOM_TYPE,
        format!(
            "Subscribe Rules are only available in group rooms: room {} is {}, whose media goes \
             between the participants without passing through mediaseal",
            room.sid, room.room_type
        ),
    ))
}

fn resource(room: &Room, participant_sid: &str, entry: Option<Entry>) -> SubscribeRulesResource {
    let (rules, date_created, date_updated) = match entry {
        Some(e) => (
            e.rules,
            Some(iso8601(e.date_created)),
            Some(iso8601(e.date_updated)),
        ),
        None => (SubscribeRules::default(), None, None),
    };
    SubscribeRulesResource {
        date_created,
        date_updated,
        participant_sid: participant_sid.to_owned(),
        room_sid: room.sid.clone(),
        rules,
    }
}

/// `GET …/Participants/{ParticipantSidOrIdentity}/SubscribeRules`.
pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident)): Path<(String, String)>,
) -> ApiResult<Json<SubscribeRulesResource>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    group_room_only(&room)?;
    let p = super::participants::resolve(&st, &room, &ident, &auth.path).await?;
    let entry = st.subscribe_rules.get(&room.sid, &p.sid);
    Ok(Json(resource(&room, &p.sid, entry)))
}

/// `POST …/Participants/{ParticipantSidOrIdentity}/SubscribeRules` with `Rules`, a JSON array
/// of rules that replaces the participant's.
pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<SubscribeRulesResource>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    group_room_only(&room)?;
    let p = super::participants::resolve(&st, &room, &ident, &auth.path).await?;
    let form = Params::from_form(&body);
    let Some(raw) = form.get("Rules") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            INVALID_RULES,
            "Invalid Subscribe Rule(s): the Rules parameter is missing; send a JSON array such \
             as [{\"type\":\"include\",\"all\":true}]",
        ));
    };
    let rules = SubscribeRules::parse(raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            INVALID_RULES,
            format!("Invalid Subscribe Rule(s): {e}"),
        )
    })?;
    if p.status != "connected" || room.status != "in-progress" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            PARTICIPANT_NOT_CONNECTED,
            format!(
                "Participant {} is {} (room {} is {}): subscribe rules apply only while the \
                 participant is connected",
                p.sid, p.status, room.sid, room.status
            ),
        ));
    }
    let processes = st.room_processes();
    let request = Request::SubscribeRules {
        participant_sid: p.sid.clone(),
        rules: rules.clone(),
    };
    let sent = match processes {
        Some(processes) => processes.send(&room.sid, request).await,
        None => false,
    };
    if !sent {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ROOM_UNREACHABLE,
            format!(
                "Room {}'s media process is not running on this node, so its subscriptions \
                 cannot change here; send the request to the node hosting the room",
                room.sid
            ),
        ));
    }
    tracing::info!(room = %room.sid, participant = %p.sid, rules = rules.rules.len(), "subscribe rules updated");
    let live = |r: &str| processes.is_some_and(|ps| ps.pid(r).is_some());
    let entry = st
        .subscribe_rules
        .put(&room.sid, &p.sid, rules, now_us(), live);
    Ok(Json(resource(&room, &p.sid, Some(entry))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_keeps_the_first_date_and_forgets_rooms_that_ended() {
        let book = SubscribeRulesBook::default();
        let none = SubscribeRules::parse(r#"[{"type":"exclude","all":true}]"#).unwrap();
        book.put("RM1", "PA1", none.clone(), 10, |_| true);
        let e = book.put("RM1", "PA1", SubscribeRules::default(), 20, |_| true);
        assert_eq!((e.date_created, e.date_updated), (10, 20));
        assert_eq!(e.rules, SubscribeRules::default());
        book.put("RM2", "PA2", none, 30, |_| true);
        // RM1's process is gone: its entries go with the next write.
        book.put("RM2", "PA2", SubscribeRules::default(), 40, |r| r != "RM1");
        assert!(book.get("RM1", "PA1").is_none());
        assert!(book.get("RM2", "PA2").is_some());
    }
}
