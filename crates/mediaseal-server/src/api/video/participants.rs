//! Room participants (`PA…`), shaped like Twilio's: list, fetch by SID or identity,
//! `Status=disconnected` to kick one, the tracks each publishes now (`PublishedTracks`) and the
//! tracks each receives now (`SubscribedTracks`).
//!
//! The rows are written by one consumer per room ([`record`]), started where the room's media
//! process (or a peer-to-peer room's signalling relay, [`super::mesh`]) is: it follows the
//! process's events (`participant_connected` / `participant_disconnected`) rather than any one
//! signalling path, so every way into the room (the WebSocket today, WHIP and WHEP later) is
//! recorded alike. Published tracks are rows while they are published, subscribed tracks while they are subscribed (`track_subscribed` /
//! `track_unsubscribed`, and gone with the track, its publisher or its subscriber). When the
//! process ends (the room completed, timed out or failed) every participant still connected is
//! closed and every track row goes.

use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mediaseal_rooms::control::{Request, WorkerEvent};
use mediaseal_rooms::signal::TrackInfo;
use mediaseal_store::model::participants::{
    Participant, ParticipantFilter, PublishedTrack, SubscribedTrack,
};
use mediaseal_store::video::Room;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::{MAX_PAGE, cursor, date_param, one_of};
use crate::api::Authed;
use crate::clock::{iso8601, now_us};
use crate::error::{ApiError, ApiResult};
use crate::paging::{EnvelopeV1, Page, PageRequest, envelope_v1};
use crate::params::Params;
use crate::room_processes::RoomSubscription;
use crate::sid::is_sid;
use crate::state::AppState;

/// How long a kick waits for the room's process to confirm the participant is gone.
const KICK_WAIT: Duration = Duration::from_secs(2);

/// A participant as the API shows it (Twilio's fields, alphabetical).
#[derive(Debug, Serialize)]
pub(crate) struct ParticipantResource {
    account_sid: String,
    date_created: String,
    date_updated: String,
    /// Seconds; null while connected.
    duration: Option<i64>,
    end_time: Option<String>,
    identity: String,
    links: ParticipantLinks,
    room_sid: String,
    sid: String,
    start_time: String,
    status: String,
    url: String,
}

/// `links` of a participant.
#[derive(Debug, Serialize)]
struct ParticipantLinks {
    anonymize: String,
    published_tracks: String,
    subscribe_rules: String,
    subscribed_tracks: String,
}

impl ParticipantResource {
    fn from_record(base: &str, p: &Participant) -> Self {
        let url = format!("{base}/v1/Rooms/{}/Participants/{}", p.room_sid, p.sid);
        Self {
            account_sid: p.account_sid.clone(),
            date_created: iso8601(p.date_created),
            date_updated: iso8601(p.date_updated),
            duration: p.duration,
            end_time: p.end_time.map(iso8601),
            identity: p.identity.clone(),
            links: ParticipantLinks {
                anonymize: format!("{url}/Anonymize"),
                published_tracks: format!("{url}/PublishedTracks"),
                subscribe_rules: format!("{url}/SubscribeRules"),
                subscribed_tracks: format!("{url}/SubscribedTracks"),
            },
            room_sid: p.room_sid.clone(),
            sid: p.sid.clone(),
            start_time: iso8601(p.start_time),
            status: p.status.clone(),
            url,
        }
    }
}

/// A published track as the API shows it (Twilio's fields, alphabetical).
#[derive(Debug, Serialize)]
pub(crate) struct PublishedTrackResource {
    date_created: String,
    date_updated: String,
    enabled: bool,
    kind: String,
    name: String,
    participant_sid: String,
    room_sid: String,
    sid: String,
    url: String,
}

impl PublishedTrackResource {
    fn from_record(base: &str, t: &PublishedTrack) -> Self {
        Self {
            date_created: iso8601(t.date_created),
            date_updated: iso8601(t.date_updated),
            enabled: t.enabled,
            kind: t.kind.clone(),
            name: t.name.clone(),
            participant_sid: t.participant_sid.clone(),
            room_sid: t.room_sid.clone(),
            sid: t.sid.clone(),
            url: format!(
                "{base}/v1/Rooms/{}/Participants/{}/PublishedTracks/{}",
                t.room_sid, t.participant_sid, t.sid
            ),
        }
    }
}

/// A subscribed track as the API shows it (Twilio's fields, alphabetical). `participant_sid` is
/// the subscriber, as in Twilio's resource; `subscriber_sid` repeats it (Twilio's documented
/// shape carries both).
#[derive(Debug, Serialize)]
pub(crate) struct SubscribedTrackResource {
    date_created: String,
    date_updated: String,
    enabled: bool,
    kind: String,
    name: String,
    participant_sid: String,
    publisher_sid: String,
    room_sid: String,
    sid: String,
    subscriber_sid: String,
    url: String,
}

impl SubscribedTrackResource {
    fn from_record(base: &str, t: &SubscribedTrack) -> Self {
        Self {
            date_created: iso8601(t.date_created),
            date_updated: iso8601(t.date_updated),
            enabled: t.enabled,
            kind: t.kind.clone(),
            name: t.name.clone(),
            participant_sid: t.participant_sid.clone(),
            publisher_sid: t.publisher_sid.clone(),
            room_sid: t.room_sid.clone(),
            sid: t.sid.clone(),
            subscriber_sid: t.participant_sid.clone(),
            url: format!(
                "{base}/v1/Rooms/{}/Participants/{}/SubscribedTracks/{}",
                t.room_sid, t.participant_sid, t.sid
            ),
        }
    }
}

/// The room's participant `ident` (a `PA…` SID or an identity), or a 404 for `path`.
pub(super) async fn resolve(
    st: &AppState,
    room: &Room,
    ident: &str,
    path: &str,
) -> ApiResult<Participant> {
    let found = if is_sid(ident, "PA") {
        st.meta
            .participant(&room.account_sid, &room.sid, ident)
            .await?
    } else if !ident.is_empty() && ident.len() <= 128 {
        st.meta
            .participant_by_identity(&room.account_sid, &room.sid, ident)
            .await?
    } else {
        None
    };
    found.ok_or_else(|| ApiError::not_found(path))
}

/// `GET /v1/Rooms/{RoomSidOrUniqueName}/Participants`.
pub(crate) async fn list(
    State(st): State<AppState>,
    auth: Authed,
    Path(room): Path<String>,
) -> ApiResult<Json<EnvelopeV1<ParticipantResource>>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let filter = ParticipantFilter {
        status: one_of(q, "Status", &["connected", "disconnected"])?.map(str::to_owned),
        identity: q
            .get("Identity")
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        created_after: date_param(q, "DateCreatedAfter")?,
        created_before: date_param(q, "DateCreatedBefore")?,
    };
    let rows = st
        .meta
        .list_participants(
            &room.account_sid,
            &room.sid,
            &filter,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |p| cursor(p.date_created, &p.sid));
    let base = auth.base_url.clone();
    let keep = [
        "Status",
        "Identity",
        "DateCreatedAfter",
        "DateCreatedBefore",
    ];
    Ok(Json(envelope_v1(
        "participants",
        &base,
        &format!("/v1/Rooms/{}/Participants", room.sid),
        &page,
        &req,
        q,
        &keep,
        |p| ParticipantResource::from_record(&base, p),
    )))
}

/// `GET /v1/Rooms/{RoomSidOrUniqueName}/Participants/{ParticipantSidOrIdentity}`.
pub(crate) async fn fetch(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident)): Path<(String, String)>,
) -> ApiResult<Json<ParticipantResource>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let p = resolve(&st, &room, &ident, &auth.path).await?;
    Ok(Json(ParticipantResource::from_record(&auth.base_url, &p)))
}

/// `GET …/Participants/{ParticipantSidOrIdentity}/PublishedTracks`: the tracks it publishes now.
pub(crate) async fn list_tracks(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident)): Path<(String, String)>,
) -> ApiResult<Json<EnvelopeV1<PublishedTrackResource>>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let p = resolve(&st, &room, &ident, &auth.path).await?;
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let rows = st
        .meta
        .list_published_tracks(
            &room.account_sid,
            &room.sid,
            &p.sid,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |t| cursor(t.date_created, &t.sid));
    let base = auth.base_url.clone();
    Ok(Json(envelope_v1(
        "published_tracks",
        &base,
        &format!(
            "/v1/Rooms/{}/Participants/{}/PublishedTracks",
            room.sid, p.sid
        ),
        &page,
        &req,
        q,
        &[],
        |t| PublishedTrackResource::from_record(&base, t),
    )))
}

/// `GET …/Participants/{ParticipantSidOrIdentity}/PublishedTracks/{TrackSid}`.
pub(crate) async fn fetch_track(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident, track)): Path<(String, String, String)>,
) -> ApiResult<Json<PublishedTrackResource>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let p = resolve(&st, &room, &ident, &auth.path).await?;
    let found = if is_sid(&track, "MT") {
        st.meta
            .published_track(&room.account_sid, &room.sid, &p.sid, &track)
            .await?
    } else {
        None
    };
    let t = found.ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(PublishedTrackResource::from_record(
        &auth.base_url,
        &t,
    )))
}

/// `GET …/Participants/{ParticipantSidOrIdentity}/SubscribedTracks`: the tracks it receives now.
pub(crate) async fn list_subscribed(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident)): Path<(String, String)>,
) -> ApiResult<Json<EnvelopeV1<SubscribedTrackResource>>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let p = resolve(&st, &room, &ident, &auth.path).await?;
    let q = &auth.query;
    let req = PageRequest::from_params(q, MAX_PAGE)?;
    let rows = st
        .meta
        .list_subscribed_tracks(
            &room.account_sid,
            &room.sid,
            &p.sid,
            req.cursor.as_ref(),
            req.fetch_limit(),
        )
        .await?;
    let page = Page::cut(rows, &req, |t| cursor(t.date_created, &t.sid));
    let base = auth.base_url.clone();
    Ok(Json(envelope_v1(
        "subscribed_tracks",
        &base,
        &format!(
            "/v1/Rooms/{}/Participants/{}/SubscribedTracks",
            room.sid, p.sid
        ),
        &page,
        &req,
        q,
        &[],
        |t| SubscribedTrackResource::from_record(&base, t),
    )))
}

/// `GET …/Participants/{ParticipantSidOrIdentity}/SubscribedTracks/{TrackSid}`.
pub(crate) async fn fetch_subscribed(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident, track)): Path<(String, String, String)>,
) -> ApiResult<Json<SubscribedTrackResource>> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let p = resolve(&st, &room, &ident, &auth.path).await?;
    let found = if is_sid(&track, "MT") {
        st.meta
            .subscribed_track(&room.account_sid, &room.sid, &p.sid, &track)
            .await?
    } else {
        None
    };
    let t = found.ok_or_else(|| ApiError::not_found(&auth.path))?;
    Ok(Json(SubscribedTrackResource::from_record(
        &auth.base_url,
        &t,
    )))
}

/// `POST …/Participants/{ParticipantSidOrIdentity}` with `Status=disconnected`: the room's
/// process is told to `kick` the participant (its media connection is closed at once, and its
/// signalling socket hears why), and the row is closed. Answers the participant as it is now.
pub(crate) async fn update(
    State(st): State<AppState>,
    auth: Authed,
    Path((room, ident)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let room = super::rooms::resolve(&st, auth.principal.sid(), &room, &auth.path).await?;
    let p = resolve(&st, &room, &ident, &auth.path).await?;
    let form = Params::from_form(&body);
    match form.required("Status")? {
        "disconnected" => {}
        other => {
            return Err(ApiError::bad_param(
                "Status",
                format!("'{other}' is not disconnected (the only change a participant takes)"),
            ));
        }
    }
    let p = if p.status == "connected" {
        kick(&st, &room, &p.sid).await;
        st.meta
            .disconnect_participant(&room.account_sid, &room.sid, &p.sid, now_us())
            .await?
            .ok_or_else(|| ApiError::not_found(&auth.path))?
    } else {
        p
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(ParticipantResource::from_record(&auth.base_url, &p)),
    )
        .into_response())
}

/// Sends `kick` to the room's process and waits (at most [`KICK_WAIT`]) until it reports the
/// participant gone. A room without a process, or a participant it does not have, has nothing
/// to wait for; a process that does not confirm in time is logged (the row is closed anyway).
async fn kick(st: &AppState, room: &Room, participant_sid: &str) {
    // A peer-to-peer room's relay removes it at once (its socket closes, the others hear).
    if let Some(hub) = st.mesh_rooms.get(&room.sid) {
        hub.kick(participant_sid);
        return;
    }
    let Some(processes) = st.room_processes() else {
        return;
    };
    // Subscribed before the kick, so the confirmation cannot slip past.
    let Some(mut events) = processes.subscribe(&room.sid) else {
        return;
    };
    if !events.participants.iter().any(|p| p.sid == participant_sid) {
        return;
    }
    let request = Request::Kick {
        participant_sid: participant_sid.to_owned(),
    };
    if !processes.send(&room.sid, request).await {
        return;
    }
    let gone = async {
        loop {
            match events.events.recv().await {
                Ok(event) => {
                    if let WorkerEvent::ParticipantDisconnected {
                        participant_sid: sid,
                        ..
                    } = event.as_ref()
                        && sid == participant_sid
                    {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
                Err(RecvError::Lagged(_)) => {}
            }
        }
    };
    if tokio::time::timeout(KICK_WAIT, gone).await.is_err() {
        tracing::warn!(room = %room.sid, participant = %participant_sid, "the room's process did not confirm a kick in time");
    }
}

/// Keeps the room's participant rows in step with its process until the process ends, then
/// closes every participant still connected. Store errors are logged and skipped: a missed row
/// must not stop the room's other rows.
pub(crate) async fn record(st: AppState, room: Room, mut subscription: RoomSubscription) {
    reconcile(&st, &room, &subscription).await;
    loop {
        match subscription.events.recv().await {
            Ok(event) => match event.as_ref() {
                WorkerEvent::ParticipantConnected {
                    participant_sid,
                    identity,
                } => connected(&st, &room, participant_sid, identity).await,
                WorkerEvent::ParticipantDisconnected {
                    participant_sid, ..
                } => {
                    untrack(&st, &room, Some(participant_sid), None).await;
                    unsubscribe(&st, &room, Some(participant_sid), None, None).await;
                    unsubscribe(&st, &room, None, Some(participant_sid), None).await;
                    if let Err(e) = st
                        .meta
                        .disconnect_participant(
                            &room.account_sid,
                            &room.sid,
                            participant_sid,
                            now_us(),
                        )
                        .await
                    {
                        tracing::error!(room = %room.sid, participant = %participant_sid, error = %e, "a participant's departure could not be recorded");
                    }
                }
                WorkerEvent::TrackPublished {
                    participant_sid,
                    track,
                } => published(&st, &room, participant_sid, track).await,
                WorkerEvent::TrackUnpublished {
                    participant_sid,
                    track_sid,
                } => {
                    untrack(&st, &room, Some(participant_sid), Some(track_sid)).await;
                    // Nobody receives a track that is gone, whatever the subscribers hear.
                    unsubscribe(&st, &room, None, None, Some(track_sid)).await;
                }
                WorkerEvent::TrackSubscribed {
                    participant_sid,
                    publisher_sid,
                    track_sid,
                } => subscribed(&st, &room, participant_sid, publisher_sid, track_sid).await,
                WorkerEvent::TrackUnsubscribed {
                    participant_sid,
                    track_sid,
                } => unsubscribe(&st, &room, Some(participant_sid), None, Some(track_sid)).await,
                _ => {}
            },
            Err(RecvError::Closed) => break,
            Err(RecvError::Lagged(n)) => {
                // Events were missed: start again from what the process says now.
                tracing::warn!(room = %room.sid, missed = n, "the participant recorder fell behind the room; resynchronising");
                let fresh = match st.mesh_rooms.get(&room.sid) {
                    Some(hub) => hub.subscribe(),
                    None => st.room_processes().and_then(|p| p.subscribe(&room.sid)),
                };
                match fresh {
                    Some(fresh) => {
                        subscription = fresh;
                        reconcile(&st, &room, &subscription).await;
                    }
                    None => break,
                }
            }
        }
    }
    untrack(&st, &room, None, None).await;
    unsubscribe(&st, &room, None, None, None).await;
    match st
        .meta
        .disconnect_room_participants(&room.account_sid, &room.sid, now_us())
        .await
    {
        Ok(n) if n > 0 => {
            tracing::info!(room = %room.sid, participants = n, "participants disconnected: the room's process ended");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(room = %room.sid, error = %e, "the room's participants could not be marked disconnected");
        }
    }
}

async fn connected(st: &AppState, room: &Room, participant_sid: &str, identity: &str) {
    let now = now_us();
    let row = Participant {
        sid: participant_sid.to_owned(),
        account_sid: room.account_sid.clone(),
        room_sid: room.sid.clone(),
        identity: identity.to_owned(),
        status: "connected".to_owned(),
        start_time: now,
        end_time: None,
        duration: None,
        date_created: now,
        date_updated: now,
    };
    if let Err(e) = st.meta.insert_participant(&row).await {
        tracing::error!(room = %room.sid, participant = %participant_sid, error = %e, "a participant's connection could not be recorded");
    }
}

async fn published(st: &AppState, room: &Room, participant_sid: &str, track: &TrackInfo) {
    let now = now_us();
    let kind = serde_json::to_string(&track.kind).unwrap_or_default();
    let row = PublishedTrack {
        sid: track.sid.clone(),
        account_sid: room.account_sid.clone(),
        room_sid: room.sid.clone(),
        participant_sid: participant_sid.to_owned(),
        kind: kind.trim_matches('"').to_owned(),
        name: track.name.clone(),
        enabled: true,
        date_created: now,
        date_updated: now,
    };
    if let Err(e) = st.meta.insert_published_track(&row).await {
        tracing::error!(room = %room.sid, track = %track.sid, error = %e, "a published track could not be recorded");
    }
}

/// Forgets the room's published tracks: all, one participant's, or one.
async fn untrack(
    st: &AppState,
    room: &Room,
    participant_sid: Option<&str>,
    track_sid: Option<&str>,
) {
    if let Err(e) = st
        .meta
        .remove_published_tracks(&room.account_sid, &room.sid, participant_sid, track_sid)
        .await
    {
        tracing::error!(room = %room.sid, error = %e, "unpublished tracks could not be forgotten");
    }
}

/// Records that `subscriber` receives `publisher`'s track `track_sid`, named and kinded as its
/// published-track row says (recorded from the earlier `track_published`). A track with no such
/// row (unpublished meanwhile) is not recorded.
async fn subscribed(
    st: &AppState,
    room: &Room,
    subscriber: &str,
    publisher: &str,
    track_sid: &str,
) {
    let published = match st
        .meta
        .published_track(&room.account_sid, &room.sid, publisher, track_sid)
        .await
    {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::debug!(room = %room.sid, track = %track_sid, "a subscription to a track no longer published is not recorded");
            return;
        }
        Err(e) => {
            tracing::error!(room = %room.sid, track = %track_sid, error = %e, "a subscribed track could not be recorded: its published track could not be read");
            return;
        }
    };
    let now = now_us();
    let row = SubscribedTrack {
        sid: published.sid,
        account_sid: room.account_sid.clone(),
        room_sid: room.sid.clone(),
        participant_sid: subscriber.to_owned(),
        publisher_sid: publisher.to_owned(),
        kind: published.kind,
        name: published.name,
        enabled: published.enabled,
        date_created: now,
        date_updated: now,
    };
    if let Err(e) = st.meta.insert_subscribed_track(&row).await {
        tracing::error!(room = %room.sid, track = %track_sid, subscriber = %subscriber, error = %e, "a subscribed track could not be recorded");
    }
}

/// Forgets the room's subscribed tracks matching every narrowing given (none: all of them).
async fn unsubscribe(
    st: &AppState,
    room: &Room,
    subscriber: Option<&str>,
    publisher: Option<&str>,
    track_sid: Option<&str>,
) {
    if let Err(e) = st
        .meta
        .remove_subscribed_tracks(
            &room.account_sid,
            &room.sid,
            subscriber,
            publisher,
            track_sid,
        )
        .await
    {
        tracing::error!(room = %room.sid, error = %e, "ended subscriptions could not be forgotten");
    }
}

/// Makes the rows match a snapshot of the process: its participants and tracks are recorded
/// (the track rows replaced), and participant rows still `connected` that it no longer has are
/// closed. The snapshot does not list subscriptions, so subscribed-track rows are pruned rather
/// than rebuilt: a row stays only while its subscriber and publisher are in the room and its
/// track is published (a subscription made while the recorder lagged is not recovered).
async fn reconcile(st: &AppState, room: &Room, snapshot: &RoomSubscription) {
    for p in &snapshot.participants {
        connected(st, room, &p.sid, &p.identity).await;
    }
    untrack(st, room, None, None).await;
    for t in &snapshot.tracks {
        published(st, room, &t.participant_sid, &t.track).await;
    }
    let live: HashSet<&str> = snapshot
        .participants
        .iter()
        .map(|p| p.sid.as_str())
        .collect();
    let filter = ParticipantFilter {
        status: Some("connected".to_owned()),
        ..ParticipantFilter::default()
    };
    // A room holds at most 50 participants; a page of MAX_PAGE covers them.
    let rows = match st
        .meta
        .list_participants(&room.account_sid, &room.sid, &filter, None, MAX_PAGE)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(room = %room.sid, error = %e, "the room's participants could not be read to resynchronise");
            return;
        }
    };
    let published: HashSet<&str> = snapshot
        .tracks
        .iter()
        .map(|t| t.track.sid.as_str())
        .collect();
    for sid in &live {
        prune_subscriptions(st, room, sid, &live, &published).await;
    }
    for row in rows.iter().filter(|r| !live.contains(r.sid.as_str())) {
        unsubscribe(st, room, Some(&row.sid), None, None).await;
        unsubscribe(st, room, None, Some(&row.sid), None).await;
        if let Err(e) = st
            .meta
            .disconnect_participant(&room.account_sid, &room.sid, &row.sid, now_us())
            .await
        {
            tracing::error!(room = %room.sid, participant = %row.sid, error = %e, "a participant's departure could not be recorded");
        }
    }
}

/// Forgets the subscribed-track rows of `subscriber` whose publisher has left or whose track is
/// no longer published.
async fn prune_subscriptions(
    st: &AppState,
    room: &Room,
    subscriber: &str,
    live: &HashSet<&str>,
    published: &HashSet<&str>,
) {
    // At most 50 participants each publishing a few tracks: a page of MAX_PAGE covers them.
    let rows = match st
        .meta
        .list_subscribed_tracks(&room.account_sid, &room.sid, subscriber, None, MAX_PAGE)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(room = %room.sid, participant = %subscriber, error = %e, "subscribed tracks could not be read to resynchronise");
            return;
        }
    };
    for t in rows
        .iter()
        .filter(|t| !live.contains(t.publisher_sid.as_str()) || !published.contains(t.sid.as_str()))
    {
        unsubscribe(st, room, Some(subscriber), None, Some(&t.sid)).await;
    }
}
