//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep-03) into group rooms (docs/ROOMS.md §3,
//! "WHIP and WHEP"): `POST /v1/Rooms/{RoomSidOrUniqueName}/Whip` publishes, `…/Whep` watches,
//! each with one SDP offer and the answer in the `201 Created`; `DELETE` on the `Location`
//! leaves.
//!
//! The bearer token is a Twilio Access Token, admitted by the same rules as the signalling
//! WebSocket ([`super::room_access`]). A WHIP or WHEP client cannot renegotiate, so it joins
//! the worker with `renegotiate: false` (and a WHIP publisher with `subscribe: false`): a
//! watcher's `recvonly` m-lines are filled with published tracks of their kind as they come.
//!
//! The server remembers each live session (room, account, identity) so `DELETE` can be
//! checked against the token that made it; an entry goes when the participant leaves the
//! worker for any reason (`DELETE`, a media timeout, a kick, the room's end). Neither trickle
//! ICE nor ICE restarts are supported: `PATCH` is 405, so clients put their candidates in the
//! offer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mediaseal_rooms::control::{Request, WorkerEvent};
use mediaseal_rooms::signal::MAX_SDP_LEN;
use mediaseal_rooms::token::{AccessTokenError, VerifiedAccessToken};
use mediaseal_store::video::Room;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::room_access::{
    AccessError, CODE_ROOM_COMPLETED, CODE_SIGNALING, find_room, room_media, verify,
};
use crate::error::ApiError;
use crate::room_processes::RoomProcesses;
use crate::sid::{is_sid, new_secret, new_sid};
use crate::state::AppState;

/// How long the worker may take to answer an offer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Twilio's "Room is full".
const CODE_ROOM_FULL: u32 = 53105;

/// RFC 9725 §4.1 / WHEP: what `POST` takes, announced by `OPTIONS`.
static ACCEPT_POST: HeaderName = HeaderName::from_static("accept-post");

/// Publish or watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whip,
    Whep,
}

impl Kind {
    /// The path segment, as in `Location`.
    fn segment(self) -> &'static str {
        match self {
            Self::Whip => "Whip",
            Self::Whep => "Whep",
        }
    }
}

/// A live WHIP or WHEP session: who may end it.
struct Session {
    kind: Kind,
    room_sid: String,
    account_sid: String,
    identity: String,
}

/// Live WHIP and WHEP sessions of one server, by participant SID (fresh random `PA…` SIDs;
/// every lookup checks the room and account too). Held in [`AppState`] beside the room
/// processes the sessions point into.
#[derive(Default)]
pub(crate) struct WhipSessions(Mutex<HashMap<String, Session>>);

impl WhipSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic elsewhere while holding the lock leaves the map itself consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An error answer in the usual JSON shape; a 401 challenges for a bearer token.
struct WhipError(ApiError);

impl From<ApiError> for WhipError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<AccessError> for WhipError {
    fn from(e: AccessError) -> Self {
        let status = match &e {
            AccessError::Token(AccessTokenError::RoomNotGranted) => StatusCode::FORBIDDEN,
            AccessError::Token(_) => StatusCode::UNAUTHORIZED,
            AccessError::RoomNotFound => StatusCode::NOT_FOUND,
            AccessError::RoomEnded => StatusCode::CONFLICT,
            AccessError::NoMediaProcess | AccessError::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        Self(ApiError::new(status, e.code(), e.message()))
    }
}

impl IntoResponse for WhipError {
    fn into_response(self) -> Response {
        let unauthorized = self.0.status == StatusCode::UNAUTHORIZED;
        let mut response = self.0.into_response();
        if unauthorized {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mediaseal\""),
            );
        }
        response
    }
}

type WhipResult<T> = Result<T, WhipError>;

/// `POST /v1/Rooms/{room}/Whip`.
pub(crate) async fn publish(
    State(st): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    result(create(&st, Kind::Whip, &room, &headers, body).await)
}

/// `POST /v1/Rooms/{room}/Whep`.
pub(crate) async fn watch(
    State(st): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    result(create(&st, Kind::Whep, &room, &headers, body).await)
}

/// `DELETE /v1/Rooms/{room}/Whip/{participant}`.
pub(crate) async fn end_publish(
    State(st): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    result(end(&st, Kind::Whip, &room, &participant, &headers).await)
}

/// `DELETE /v1/Rooms/{room}/Whep/{participant}`.
pub(crate) async fn end_watch(
    State(st): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    result(end(&st, Kind::Whep, &room, &participant, &headers).await)
}

/// `OPTIONS` on either endpoint (also a CORS preflight, so no token is asked for).
pub(crate) async fn options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        ACCEPT_POST.clone(),
        HeaderValue::from_static("application/sdp"),
    );
    headers.insert(ALLOW, HeaderValue::from_static("OPTIONS, POST"));
    response
}

/// `PATCH` on a session: neither trickle ICE nor ICE restarts are supported (RFC 9725 §4.3
/// lets a server answer 405).
pub(crate) async fn patch() -> Response {
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        20004,
        "this session supports neither trickle ICE nor ICE restarts: put every candidate in \
         the offer (non-trickle), and to restart DELETE the session and POST a new offer",
    );
    let mut response = WhipError(error).into_response();
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("DELETE"));
    response
}

fn result(r: WhipResult<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// The `Authorization: Bearer` token, verified.
async fn bearer(st: &AppState, headers: &HeaderMap) -> WhipResult<VerifiedAccessToken> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            AccessTokenError::Malformed.code(),
            "send the room's Access Token as `Authorization: Bearer <token>`",
        )
        .into());
    };
    Ok(verify(st, token).await?)
}

/// The offer in the body: `application/sdp`, UTF-8, at most [`MAX_SDP_LEN`] bytes.
async fn offer(headers: &HeaderMap, body: Body) -> WhipResult<String> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            20415,
            format!(
                "the offer must be sent as Content-Type: application/sdp, not '{}'",
                content_type.chars().take(64).collect::<String>()
            ),
        )
        .into());
    }
    let too_large = || {
        WhipError(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            20413,
            format!("the SDP offer is larger than {} KiB", MAX_SDP_LEN / 1024),
        ))
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_SDP_LEN as u64) {
        return Err(too_large());
    }
    // Also the bound for a body without Content-Length (chunked).
    let bytes = axum::body::to_bytes(body, MAX_SDP_LEN)
        .await
        .map_err(|_| too_large())?;
    let sdp = String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            "the SDP offer is not UTF-8 text",
        )
    })?;
    if sdp.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            20001,
            "the request has no SDP offer in its body",
        )
        .into());
    }
    Ok(sdp)
}

/// Sends `leave` for a participant whose join was sent, unless disarmed: the POST's future
/// may be dropped (the client went away) while it waits for the answer.
struct LeaveOnDrop {
    processes: Arc<dyn RoomProcesses>,
    room_sid: String,
    participant_sid: String,
    armed: bool,
}

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let processes = self.processes.clone();
        let room_sid = std::mem::take(&mut self.room_sid);
        let participant_sid = std::mem::take(&mut self.participant_sid);
        runtime.spawn(async move {
            processes
                .send(&room_sid, Request::Leave { participant_sid })
                .await;
        });
    }
}

async fn create(
    st: &AppState,
    kind: Kind,
    ident: &str,
    headers: &HeaderMap,
    body: Body,
) -> WhipResult<Response> {
    let verified = bearer(st, headers).await?;
    let room = find_room(st, &verified, ident).await?;
    let sdp = offer(headers, body).await?;
    let (processes, subscription) = room_media(st, &room)?;
    let mut events = subscription.events;
    let participant_sid = new_sid("PA");
    let join = Request::Join {
        participant_sid: participant_sid.clone(),
        identity: verified.identity.clone(),
        sdp,
        subscribe: kind == Kind::Whep,
        renegotiate: false,
    };
    if !processes.send(&room.sid, join).await {
        return Err(AccessError::RoomEnded.into());
    }
    let mut guard = LeaveOnDrop {
        processes,
        room_sid: room.sid.clone(),
        participant_sid: participant_sid.clone(),
        armed: true,
    };
    let waited = tokio::time::timeout(ANSWER_TIMEOUT, answer_for(&participant_sid, &mut events));
    let answer = match waited.await {
        Ok(Ok(answer)) => answer,
        Ok(Err(Refused::ByWorker(e))) => {
            // Not admitted: nothing to leave.
            guard.armed = false;
            return Err(e);
        }
        Ok(Err(Refused::Unknown(e))) => return Err(e),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                CODE_SIGNALING,
                format!("the room did not answer the offer within {ANSWER_TIMEOUT:?}; try again"),
            )
            .into());
        }
    };
    guard.armed = false;
    st.whip_sessions.lock().insert(
        participant_sid.clone(),
        Session {
            kind,
            room_sid: room.sid.clone(),
            account_sid: verified.account_sid.clone(),
            identity: verified.identity.clone(),
        },
    );
    tokio::spawn(forget_when_gone(
        st.whip_sessions.clone(),
        participant_sid.clone(),
        events,
    ));
    tracing::info!(room = %room.sid, participant = %participant_sid, kind = kind.segment(), "WHIP/WHEP session started");
    Ok(created(kind, &room, &participant_sid, answer))
}

/// Why a join got no answer.
enum Refused {
    /// The worker refused it (or removed the participant): it is not in the room.
    ByWorker(WhipError),
    /// The outcome is unknown: the participant may be in the room.
    Unknown(WhipError),
}

/// The worker's answer to the participant's join, or its refusal.
async fn answer_for(
    participant_sid: &str,
    events: &mut broadcast::Receiver<Arc<WorkerEvent>>,
) -> Result<String, Refused> {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Closed) => {
                return Err(Refused::ByWorker(AccessError::RoomEnded.into()));
            }
            Err(RecvError::Lagged(_)) => {
                return Err(Refused::Unknown(
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        CODE_SIGNALING,
                        "the room is too busy to answer now; try again",
                    )
                    .into(),
                ));
            }
        };
        match &*event {
            WorkerEvent::Answer {
                participant_sid: sid,
                sdp,
            } if sid == participant_sid => return Ok(sdp.clone()),
            WorkerEvent::Error {
                participant_sid: Some(sid),
                code,
                message,
            } if sid == participant_sid => {
                // Room full or ended is the room's state; anything else is the offer's fault.
                let status = match *code {
                    CODE_ROOM_FULL | CODE_ROOM_COMPLETED => StatusCode::CONFLICT,
                    _ => StatusCode::BAD_REQUEST,
                };
                return Err(Refused::ByWorker(
                    ApiError::new(status, *code, message.clone()).into(),
                ));
            }
            WorkerEvent::ParticipantDisconnected {
                participant_sid: sid,
                code,
                ..
            } if sid == participant_sid => {
                return Err(Refused::ByWorker(
                    ApiError::new(
                        StatusCode::CONFLICT,
                        code.unwrap_or(CODE_SIGNALING),
                        "the room removed this participant before answering its offer",
                    )
                    .into(),
                ));
            }
            _ => {}
        }
    }
}

/// `201 Created` with the answer.
fn created(kind: Kind, room: &Room, participant_sid: &str, answer: String) -> Response {
    let location = format!(
        "/v1/Rooms/{}/{}/{participant_sid}",
        room.sid,
        kind.segment()
    );
    // RFC 9725 §4.3: the ETag names the ICE session (there is one per session: no restarts).
    let etag = format!("\"{}\"", new_secret());
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    // SIDs and hex only: always valid header values.
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, v);
    }
    response
}

/// Drops the session's entry once its participant is gone from the worker (left, timed out,
/// kicked, replaced, the room ended).
async fn forget_when_gone(
    sessions: Arc<WhipSessions>,
    participant_sid: String,
    mut events: broadcast::Receiver<Arc<WorkerEvent>>,
) {
    loop {
        match events.recv().await {
            Ok(event) => {
                if let WorkerEvent::ParticipantDisconnected {
                    participant_sid: sid,
                    ..
                } = &*event
                    && *sid == participant_sid
                {
                    break;
                }
            }
            // A missed disconnect keeps the entry until the room ends; a DELETE then sends a
            // `leave` the worker ignores.
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => break,
        }
    }
    sessions.lock().remove(&participant_sid);
}

async fn end(
    st: &AppState,
    kind: Kind,
    ident: &str,
    participant_sid: &str,
    headers: &HeaderMap,
) -> WhipResult<Response> {
    let verified = bearer(st, headers).await?;
    let room = find_room(st, &verified, ident).await?;
    let not_found = || {
        WhipError(ApiError::new(
            StatusCode::NOT_FOUND,
            20404,
            format!(
                "no such {} session: it ended, or was made on the other endpoint",
                kind.segment().to_uppercase()
            ),
        ))
    };
    if !is_sid(participant_sid, "PA") {
        return Err(not_found());
    }
    {
        let sessions = st.whip_sessions.lock();
        let session = sessions
            .get(participant_sid)
            .filter(|s| {
                s.kind == kind && s.room_sid == room.sid && s.account_sid == verified.account_sid
            })
            .ok_or_else(not_found)?;
        if session.identity != verified.identity {
            return Err(ApiError::forbidden(
                "this session belongs to another identity: end it with the token that made it",
            )
            .into());
        }
    }
    if let Some(processes) = st.room_processes() {
        let leave = Request::Leave {
            participant_sid: participant_sid.to_owned(),
        };
        // `false`: the room's process is gone, and the participant with it.
        processes.send(&room.sid, leave).await;
    }
    st.whip_sessions.lock().remove(participant_sid);
    tracing::info!(room = %room.sid, participant = %participant_sid, kind = kind.segment(), "WHIP/WHEP session ended by DELETE");
    Ok(StatusCode::OK.into_response())
}
