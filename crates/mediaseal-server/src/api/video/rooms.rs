//! A minimal Room resource (`RM…`), shaped like Twilio's so the helper libraries parse it: it
//! groups track recordings, and completing it runs the account's composition hooks. A group room
//! owns a media process while it is in progress when the state has room processes
//! ([`crate::room_processes`]): started on create, ended on `Status=completed`, and the room is
//! `failed` if the process dies. Participants join through the signalling WebSocket
//! (`connect`); their status callbacks are queued here, and their rows written by
//! `participants::record`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_store::model::Callback;
use mediaseal_store::video::{Composition, Room, RoomCompletion, RoomFilter};
use serde::Serialize;

use super::{MAX_PAGE, cursor, date_param, one_of};
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::sid::{is_sid, new_sid};
use crate::state::AppState;
use mediaseal_service::outbox::new_callback;

const TYPES: [&str; 4] = ["group", "go", "peer-to-peer", "group-small"];

/// Twilio's range of `EmptyRoomTimeout` and `UnusedRoomTimeout`, in minutes, and their default.
const ROOM_TIMEOUT_MINUTES: std::ops::RangeInclusive<i64> = 1..=60;
const DEFAULT_ROOM_TIMEOUT_MINUTES: i64 = 5;

/// A room as the API shows it (fields in alphabetical order, as clients have always seen them).
#[derive(Debug, Serialize)]
pub(crate) struct RoomResource {
    account_sid: String,
    audio_only: bool,
    date_created: String,
    date_updated: String,
    /// Seconds; null while in progress.
    duration: Option<i64>,
    empty_room_timeout: i64,
    enable_turn: bool,
    end_time: Option<String>,
    large_room: bool,
    links: RoomLinks,
    max_concurrent_published_tracks: u32,
    max_participant_duration: u32,
    max_participants: i64,
    media_region: Option<String>,
    record_participants_on_connect: bool,
    sid: String,
    status: String,
    status_callback: Option<String>,
    status_callback_method: String,
    #[serde(rename = "type")]
    room_type: String,
    unique_name: String,
    unused_room_timeout: i64,
    url: String,
    video_codecs: [&'static str; 2],
}

/// `links` of a room.
#[derive(Debug, Serialize)]
struct RoomLinks {
    participants: String,
    recording_rules: String,
    recordings: String,
    transcriptions: String,
}

impl RoomResource {
    fn from_record(base: &str, r: &Room) -> Self {
        let url = format!("{base}/v1/Rooms/{}", r.sid);
        Self {
            account_sid: r.account_sid.clone(),
            audio_only: r.audio_only,
            date_created: iso8601(r.date_created),
            date_updated: iso8601(r.date_updated),
            duration: r.end_time.map(|end| (end - r.date_created) / 1_000_000),
            empty_room_timeout: r.empty_room_timeout,
            enable_turn: true,
            end_time: r.end_time.map(iso8601),
            large_room: false,
            links: RoomLinks {
                participants: format!("{url}/Participants"),
                recording_rules: format!("{url}/RecordingRules"),
                recordings: format!("{url}/Recordings"),
                transcriptions: format!("{url}/Transcriptions"),
            },
            max_concurrent_published_tracks: 170,
            max_participant_duration: 14400,
            max_participants: r.max_participants,
            media_region: r.media_region.clone(),
            record_participants_on_connect: r.record_participants_on_connect,
            sid: r.sid.clone(),
            status: r.status.clone(),
            status_callback: r.status_callback.clone(),
            status_callback_method: r.status_callback_method.clone(),
            room_type: r.room_type.clone(),
            unique_name: r.unique_name.clone(),
            unused_room_timeout: r.unused_room_timeout,
            url,
            video_codecs: ["VP8", "H264"],
        }
    }
}

/// The account's room named by SID or unique name, or a 404 for `path`.
pub(super) async fn resolve(
    st: &AppState,
    account: &str,
    ident: &str,
    path: &str,
) -> ApiResult<Room> {
    let found = if is_sid(ident, "RM") {
        st.meta.room(account, ident).await?
    } else if !ident.is_empty() && ident.len() <= 128 {
        st.meta.room_by_name(account, ident).await?
    } else {
        None
    };
    found.ok_or_else(|| ApiError::not_found(path))
}

/// A room event for the room's status callback, if it has one.
pub(super) fn room_callback(
    st: &AppState,
    r: &Room,
    event: &str,
    extra: &[(&str, String)],
) -> Option<Callback> {
    let url = r.status_callback.as_deref()?;
    let mut params = vec![
        ("AccountSid".to_owned(), r.account_sid.clone()),
        ("RoomSid".to_owned(), r.sid.clone()),
        ("RoomName".to_owned(), r.unique_name.clone()),
        ("RoomStatus".to_owned(), r.status.clone()),
        ("RoomType".to_owned(), r.room_type.clone()),
        ("StatusCallbackEvent".to_owned(), event.to_owned()),
        ("Timestamp".to_owned(), iso8601(now_us())),
    ];
    params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Some(new_callback(
        &st.services,
        &r.account_sid,
        &r.sid,
        url,
        &r.status_callback_method,
        &params,
    ))
}

pub(crate) async fn create(
    State(st): State<AppState>,
    auth: Authed,
    body: Bytes,
) -> ApiResult<Response> {
    let account = auth.principal.sid().to_owned();
    let form = Params::from_form(&body);
    let sid = new_sid("RM");
    let unique_name = match form.get("UniqueName").filter(|v| !v.is_empty()) {
        None => sid.clone(),
        Some(n) if n.len() > 128 || n.chars().any(char::is_control) || is_sid(n, "RM") => {
            return Err(ApiError::bad_param(
                "UniqueName",
                "must be at most 128 printable characters and not a room SID",
            ));
        }
        Some(n) => {
            if st
                .meta
                .room_by_name(&account, n)
                .await?
                .is_some_and(|r| r.status == "in-progress")
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    53113,
                    format!("Room {n} already exists and is in progress"),
                ));
            }
            n.to_owned()
        }
    };
    let room_type = one_of(&form, "Type", &TYPES)?.unwrap_or("group").to_owned();
    let status_callback =
        crate::params::webhook_url(&form, "StatusCallback", &st.services.config.webhook_policy)?
            .map(str::to_owned);
    let status_callback_method = form.method("StatusCallbackMethod")?;
    let max_participants = super::mesh::max_participants(&form, &room_type)?;
    let media_region = match form.get("MediaRegion") {
        None => Some("us1".to_owned()),
        Some(r)
            if !r.is_empty()
                && r.len() <= 16
                && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Some(r.to_owned())
        }
        Some(r) => {
            return Err(ApiError::bad_param(
                "MediaRegion",
                format!("'{r}' is not a region name"),
            ));
        }
    };
    let empty_room_timeout = form
        .int_in("EmptyRoomTimeout", ROOM_TIMEOUT_MINUTES)?
        .unwrap_or(DEFAULT_ROOM_TIMEOUT_MINUTES);
    let unused_room_timeout = form
        .int_in("UnusedRoomTimeout", ROOM_TIMEOUT_MINUTES)?
        .unwrap_or(DEFAULT_ROOM_TIMEOUT_MINUTES);
    // Explicit rules replace the "include all" that RecordParticipantsOnConnect would start
    // the room with.
    let recording_rules = super::recording_rules::creation_rules(&form, &room_type)?;
    // The process first: a node that cannot run one more room refuses before a row exists.
    let processes = st
        .room_processes()
        .filter(|_| has_media_process(&room_type));
    let now = now_us();
    let room = Room {
        sid,
        account_sid: account.clone(),
        unique_name,
        room_type,
        status: "in-progress".to_owned(),
        status_callback,
        status_callback_method,
        max_participants,
        record_participants_on_connect: form
            .boolean("RecordParticipantsOnConnect")?
            .unwrap_or(false),
        audio_only: form.boolean("AudioOnly")?.unwrap_or(false),
        media_region,
        date_created: now,
        date_updated: now,
        end_time: None,
        empty_room_timeout,
        unused_room_timeout,
        // Recorded so that this node, started again after dying, fails the rooms it ran.
        node: processes.map(|_| st.config.room_node.clone()),
    };
    let callbacks: Vec<Callback> = room_callback(&st, &room, "room-created", &[])
        .into_iter()
        .collect();
    if let Some(processes) = processes {
        processes.start(&room).await.map_err(|e| {
            tracing::error!(room = %room.sid, error = %e, "the room's media process did not start");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                53103,
                format!("Unable to create Room: {e}"),
            )
        })?;
    }
    // The rules first, so the room never exists without them (a failed create leaves a rules
    // row no room points at, which nothing reads).
    let stored = match &recording_rules {
        Some(rules) => super::recording_rules::store_creation_rules(&st, &room, rules).await,
        None => Ok(()),
    };
    let inserted = match stored {
        Ok(()) => st
            .meta
            .insert_room(&room, &callbacks)
            .await
            .map_err(Into::into),
        Err(e) => Err(e),
    };
    if let Err(e) = inserted {
        if let Some(processes) = processes {
            processes.complete(&room.sid).await;
        }
        return Err(e);
    }
    tracing::info!(room = %room.sid, account = %account, "room created");
    // Before the room is announced to its creator, so tracks are recorded from the first.
    match recording_rules {
        Some(rules) => super::live_recordings::apply_rules(&st, &room, rules).await,
        None => super::live_recordings::start(&st, &room).await,
    }
    if room.room_type == super::mesh::PEER_TO_PEER {
        // Its signalling relay, which starts the participant rows and callbacks (`follow`).
        st.mesh_rooms.open(&st, &room);
    } else if let Some(processes) = processes {
        follow(&st, &room, || processes.subscribe(&room.sid));
    }
    Ok((
        StatusCode::CREATED,
        Json(RoomResource::from_record(&auth.base_url, &room)),
    )
        .into_response())
}

pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<EnvelopeV1<RoomResource>>> {
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let filter = RoomFilter {
        status: one_of(q, "Status", &["in-progress", "completed", "failed"])?.map(str::to_owned),
        unique_name: q
            .get("UniqueName")
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        created_after: date_param(q, "DateCreatedAfter")?,
        created_before: date_param(q, "DateCreatedBefore")?,
    };
    let rows = st
        .meta
        .list_rooms(
            auth.principal.sid(),
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |r| cursor(r.date_created, &r.sid));
    let base = auth.base_url.clone();
    let keep = [
        "Status",
        "UniqueName",
        "DateCreatedAfter",
        "DateCreatedBefore",
    ];
    Ok(Json(envelope_v1(
        "rooms",
        &base,
        "/v1/Rooms",
        &page,
        &req,
        q,
        &keep,
        |r| RoomResource::from_record(&base, r),
    )))
}

pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path(ident): Path<String>,
) -> ApiResult<Json<RoomResource>> {
    let room = resolve(&st, auth.principal.sid(), &ident, &auth.path).await?;
    Ok(Json(RoomResource::from_record(&auth.base_url, &room)))
}

/// `POST /v1/Rooms/{RM}` with `Status=completed`: ends the room, tells its status callback, and
/// queues a composition for every enabled composition hook of the account.
pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path(ident): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let account = auth.principal.sid().to_owned();
    let room = resolve(&st, &account, &ident, &auth.path).await?;
    let form = Params::from_form(&body);
    match form.required("Status")? {
        "completed" => {}
        other => {
            return Err(ApiError::bad_param(
                "Status",
                format!("'{other}' is not completed (the only change a room takes)"),
            ));
        }
    }
    if room.status != "in-progress" {
        return Ok((
            StatusCode::ACCEPTED,
            Json(RoomResource::from_record(&auth.base_url, &room)),
        )
            .into_response());
    }
    let done = complete_now(&st, &room)
        .await?
        .ok_or_else(|| ApiError::not_found(&auth.path))?;
    // The row says completed before the process is told, so its exit is not taken for a crash.
    if let Some(processes) = st.room_processes() {
        processes.complete(&room.sid).await;
    }
    st.mesh_rooms.end(&room.sid);
    Ok((
        StatusCode::ACCEPTED,
        Json(RoomResource::from_record(&auth.base_url, &done.room)),
    )
        .into_response())
}

/// Keeps `room`'s participant rows and participant status callbacks in step with its
/// participant events (a group room's process or a peer-to-peer room's relay) until they end.
/// `subscribe` is called once per follower, before this returns.
pub(super) fn follow(
    st: &AppState,
    room: &Room,
    subscribe: impl Fn() -> Option<crate::room_processes::RoomSubscription>,
) {
    if let Some(events) = subscribe() {
        tokio::spawn(super::participants::record(
            st.clone(),
            room.clone(),
            events,
        ));
    }
    if room.status_callback.is_some()
        && let Some(events) = subscribe()
    {
        tokio::spawn(participant_callbacks(st.clone(), room.clone(), events));
    }
}

/// Rooms whose media runs in a room process of this node (peer-to-peer and Go rooms relay
/// signalling only).
fn has_media_process(room_type: &str) -> bool {
    matches!(room_type, "group" | "group-small")
}

/// Completes `room` in the store now: `room-ended` to its status callback and a composition for
/// every enabled hook, if this call ended it. `None` when the room is gone.
pub(super) async fn complete_now(st: &AppState, room: &Room) -> ApiResult<Option<RoomCompletion>> {
    let now = now_us();
    let mut ended = room.clone();
    ended.status = "completed".to_owned();
    ended.end_time = Some(now);
    let duration = ((now - room.date_created) / 1_000_000).to_string();
    let callbacks: Vec<Callback> =
        room_callback(st, &ended, "room-ended", &[("RoomDuration", duration)])
            .into_iter()
            .collect();
    let compositions: Vec<(Composition, Vec<Callback>)> =
        super::hooks::compositions_for(st, &ended).await?;
    let done = st
        .meta
        .complete_room(&room.account_sid, &room.sid, now, &callbacks, &compositions)
        .await?;
    if done.as_ref().is_some_and(|d| d.transitioned) {
        tracing::info!(room = %room.sid, account = %room.account_sid, hooks = compositions.len(), "room completed");
        if !compositions.is_empty() {
            st.services.compositions.kick();
        }
    }
    Ok(done)
}

/// The room's participant and track events as status callbacks (`participant-connected`,
/// `participant-disconnected` with `ParticipantDuration`, `track-added`), until its process
/// ends. Callbacks are queued in the outbox like every other room callback; one that cannot be
/// queued, or events missed by falling behind the room, are logged and skipped.
async fn participant_callbacks(
    st: AppState,
    room: Room,
    mut events: crate::room_processes::RoomSubscription,
) {
    use mediaseal_rooms::control::WorkerEvent;
    use tokio::sync::broadcast::error::RecvError;
    // Participant SID → (identity, connected at): for durations and track callbacks.
    let mut connected: std::collections::HashMap<String, (String, i64)> =
        std::collections::HashMap::new();
    loop {
        let event = match events.events.recv().await {
            Ok(event) => event,
            Err(RecvError::Closed) => return,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(room = %room.sid, missed = n, "participant status callbacks fell behind the room; some were skipped");
                continue;
            }
        };
        let callback = match event.as_ref() {
            WorkerEvent::ParticipantConnected {
                participant_sid,
                identity,
            } => {
                connected.insert(participant_sid.clone(), (identity.clone(), now_us()));
                room_callback(
                    &st,
                    &room,
                    "participant-connected",
                    &[
                        ("ParticipantSid", participant_sid.clone()),
                        ("ParticipantIdentity", identity.clone()),
                        ("ParticipantStatus", "connected".to_owned()),
                    ],
                )
            }
            WorkerEvent::ParticipantDisconnected {
                participant_sid,
                identity,
                ..
            } => {
                let Some((_, since)) = connected.remove(participant_sid) else {
                    // It never connected (a refused or abandoned join): Twilio reports nothing.
                    continue;
                };
                room_callback(
                    &st,
                    &room,
                    "participant-disconnected",
                    &[
                        ("ParticipantSid", participant_sid.clone()),
                        ("ParticipantIdentity", identity.clone()),
                        ("ParticipantStatus", "disconnected".to_owned()),
                        (
                            "ParticipantDuration",
                            ((now_us() - since) / 1_000_000).to_string(),
                        ),
                    ],
                )
            }
            WorkerEvent::TrackPublished {
                participant_sid,
                track,
            } => {
                let identity = connected
                    .get(participant_sid)
                    .map(|(identity, _)| identity.clone())
                    .unwrap_or_default();
                let kind = serde_json::to_string(&track.kind).unwrap_or_default();
                room_callback(
                    &st,
                    &room,
                    "track-added",
                    &[
                        ("ParticipantSid", participant_sid.clone()),
                        ("ParticipantIdentity", identity),
                        ("ParticipantStatus", "connected".to_owned()),
                        ("TrackSid", track.sid.clone()),
                        ("TrackKind", kind.trim_matches('"').to_owned()),
                        ("TrackName", track.name.clone()),
                    ],
                )
            }
            _ => None,
        };
        if let Some(callback) = callback
            && let Err(e) = st.meta.enqueue_callbacks(&[callback]).await
        {
            tracing::error!(room = %room.sid, error = %e, "a participant status callback could not be queued");
        }
    }
}

/// A room process ended. Asked to: nothing to do. It ended the room itself (empty or unused
/// room timeout): the room completes as if by REST. It died: the room is `failed`, and its
/// status callback hears `room-ended` with `RoomStatus=failed` (no compositions: the room's
/// recordings may be cut short).
pub(crate) async fn worker_exited(
    st: &AppState,
    exit: &crate::room_processes::RoomExit,
) -> ApiResult<()> {
    use crate::room_processes::ExitOutcome;
    if exit.outcome == ExitOutcome::Completed {
        return Ok(());
    }
    let Some(room) = st.meta.room(&exit.account_sid, &exit.room_sid).await? else {
        return Ok(());
    };
    if room.status != "in-progress" {
        return Ok(());
    }
    match &exit.outcome {
        ExitOutcome::Completed => {}
        ExitOutcome::Ended(reason) => {
            tracing::info!(room = %room.sid, ?reason, "the room's process ended the room");
            complete_now(st, &room).await?;
        }
        ExitOutcome::Failed(how) => {
            if fail_now(st, &room).await? {
                tracing::warn!(room = %room.sid, account = %room.account_sid, exit = %how, "room failed: its media process died");
            }
        }
    }
    Ok(())
}

/// Marks `room` failed in the store now, with `room-ended` (`RoomStatus=failed`) to its status
/// callback; `true` if this call ended it.
async fn fail_now(st: &AppState, room: &Room) -> ApiResult<bool> {
    let now = now_us();
    let mut failed = room.clone();
    failed.status = "failed".to_owned();
    failed.end_time = Some(now);
    let duration = ((now - room.date_created) / 1_000_000).to_string();
    let callbacks: Vec<Callback> =
        room_callback(st, &failed, "room-ended", &[("RoomDuration", duration)])
            .into_iter()
            .collect();
    let done = st
        .meta
        .fail_room(&room.account_sid, &room.sid, now, &callbacks)
        .await?;
    Ok(done.is_some_and(|d| d.transitioned))
}

/// The recordings of `room` (which ended with its process) still `processing`: nobody will
/// finish them, so they are `failed`, with `recording-failed`.
async fn fail_unfinished_recordings(st: &AppState, room: &Room) -> ApiResult<()> {
    let Some(ended) = st.meta.room(&room.account_sid, &room.sid).await? else {
        return Ok(());
    };
    for r in st
        .meta
        .room_track_recordings(&room.account_sid, &room.sid)
        .await?
    {
        if r.status == "processing" {
            st.services
                .fail_track_recording(&ended, r)
                .await
                .map_err(ApiError::internal)?;
        }
    }
    Ok(())
}

/// At start, before this node runs any room: the rooms a previous process of this node (same
/// [`crate::state::Config::room_node`]) left `in-progress` lost their media processes with it,
/// so they become `failed` as if their process had died now, and their participants
/// `disconnected`. Rooms other nodes run are not touched; running it again changes nothing.
/// Returns how many rooms it failed.
pub(crate) async fn fail_abandoned_rooms(st: &AppState) -> ApiResult<usize> {
    let node = &st.config.room_node;
    let mut failed = 0;
    for room in st.meta.rooms_in_progress_on(node).await? {
        // Its participant recorder died too: nobody is connected, nothing is published. (First,
        // so that a start that stops half-way leaves the room for the next start to finish.)
        st.meta
            .remove_published_tracks(&room.account_sid, &room.sid, None, None)
            .await?;
        st.meta
            .remove_subscribed_tracks(&room.account_sid, &room.sid, None, None, None)
            .await?;
        st.meta
            .disconnect_room_participants(&room.account_sid, &room.sid, now_us())
            .await?;
        if fail_now(st, &room).await? {
            tracing::warn!(room = %room.sid, account = %room.account_sid, node = %node, "room failed: this node stopped while it ran");
            failed += 1;
        }
        fail_unfinished_recordings(st, &room).await?;
    }
    Ok(failed)
}
