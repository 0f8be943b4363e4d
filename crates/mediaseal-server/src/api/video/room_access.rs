//! Admission to a room's media, shared by every door into it: the signalling WebSocket
//! (`connect.rs`, token in its `join` message) and WHIP/WHEP (`whip.rs`, token as
//! `Authorization: Bearer`). One set of rules, so the doors cannot drift apart:
//!
//! - the Access Token is verified with the secret of the API key it names
//!   ([`crate::room_processes::AccessTokenKeys`]), and the key's account must be active;
//! - the room is looked up in the token's account only, so nothing is learnt about rooms of
//!   other accounts, and a token limited to one room learns nothing about the others (20106
//!   whether or not the room in the path exists);
//! - a room takes participants while it is `in-progress` and has a media process here.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mediaseal_rooms::token::{
    AccessTokenError, ApiKey, RoomRef, VerifiedAccessToken, VerifyOptions, verify_access_token,
};
use mediaseal_store::video::Room;
use serde::Deserialize;

use crate::room_processes::{RoomProcesses, RoomSubscription};
use crate::sid::is_sid;
use crate::state::AppState;

/// Twilio's "Room not found".
pub(crate) const CODE_ROOM_NOT_FOUND: u32 = 53106;
/// Twilio's "Room completed".
pub(crate) const CODE_ROOM_COMPLETED: u32 = 53118;
/// Twilio's "Signaling connection error".
pub(crate) const CODE_SIGNALING: u32 = 53000;

/// Why a caller may not enter a room.
#[derive(Debug)]
pub(crate) enum AccessError {
    /// The token was refused (20101 … 20107; 20106: granted for another room).
    Token(AccessTokenError),
    /// No such room in the token's account (53106).
    RoomNotFound,
    /// The room is `completed` or `failed` (53118).
    RoomEnded,
    /// The room has no media process on this node: a peer-to-peer or go room, or a server
    /// without room workers (53000).
    NoMediaProcess,
    /// The store could not be read (logged where it happened; 53000).
    Unavailable,
}

impl AccessError {
    /// Twilio's code for the refusal.
    pub(crate) fn code(&self) -> u32 {
        match self {
            Self::Token(e) => e.code(),
            Self::RoomNotFound => CODE_ROOM_NOT_FOUND,
            Self::RoomEnded => CODE_ROOM_COMPLETED,
            Self::NoMediaProcess | Self::Unavailable => CODE_SIGNALING,
        }
    }

    /// What the caller is told. Never names the room or repeats a claim.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Token(e) => e.to_string(),
            Self::RoomNotFound => "Room not found".to_owned(),
            Self::RoomEnded => "Room completed".to_owned(),
            Self::NoMediaProcess => "this room has no media process on this node (group rooms \
                                     take participants on a node with room workers, \
                                     peer-to-peer rooms on any node; go rooms take none)"
                .to_owned(),
            Self::Unavailable => "internal error; try again".to_owned(),
        }
    }
}

impl From<AccessTokenError> for AccessError {
    fn from(e: AccessTokenError) -> Self {
        Self::Token(e)
    }
}

/// The claims read before verification, only to fetch the key that verifies them.
#[derive(Deserialize)]
struct Issuer {
    iss: String,
}

/// Verifies a room Access Token; the key's account must be active.
pub(crate) async fn verify(st: &AppState, token: &str) -> Result<VerifiedAccessToken, AccessError> {
    // The key lookup is async and the verifier's is not: fetch the key `iss` names first.
    // Anything unreadable here is refused by the verifier below with its own code.
    let issuer = token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|json| serde_json::from_slice::<Issuer>(&json).ok())
        .map(|claims| claims.iss)
        .filter(|iss| is_sid(iss, "SK"));
    let keys = st.access_token_keys.get();
    // Once per process: unauthenticated clients must not be able to flood the log.
    static WARNED: std::sync::Once = std::sync::Once::new();
    if keys.is_none() {
        WARNED.call_once(|| {
            tracing::warn!(
                "a room Access Token was refused because this server has no API key secrets to \
             verify it with (no AccessTokenKeys installed)"
            );
        });
    }
    let key = match (issuer, keys) {
        (Some(iss), Some(keys)) => keys.api_key(&iss).await.map(|k| (iss, k)),
        _ => None,
    };
    let lookup = |sid: &str| {
        key.as_ref()
            .filter(|(iss, _)| iss == sid)
            .map(|(_, k)| ApiKey::new(k.account_sid.clone(), k.secret.to_vec()))
    };
    let now = u64::try_from(crate::clock::now_us() / 1_000_000).unwrap_or(0);
    let verified = verify_access_token(token, now, &lookup, VerifyOptions::default())?;
    // A key of a suspended or closed account signs nothing: the same answer as a bad key.
    match st.meta.account(&verified.account_sid).await {
        Ok(Some(account)) if account.status == "active" => Ok(verified),
        Ok(_) => Err(AccessTokenError::InvalidSignature.into()),
        Err(e) => {
            tracing::error!(error = %e, "the account of an Access Token could not be read");
            Err(AccessError::Unavailable)
        }
    }
}

/// The room `ident` (SID or UniqueName) of the token's account, if its grant covers it.
pub(crate) async fn find_room(
    st: &AppState,
    verified: &VerifiedAccessToken,
    ident: &str,
) -> Result<Room, AccessError> {
    let account = verified.account_sid.as_str();
    let found = if is_sid(ident, "RM") {
        st.meta.room(account, ident).await
    } else if !ident.is_empty() && ident.len() <= 128 {
        st.meta.room_by_name(account, ident).await
    } else {
        Ok(None)
    };
    let found = found.map_err(|e| {
        tracing::error!(error = %e, "a room could not be read");
        AccessError::Unavailable
    })?;
    match found {
        Some(room) => {
            verified.authorize_room(RoomRef {
                sid: &room.sid,
                unique_name: &room.unique_name,
            })?;
            Ok(room)
        }
        // A token limited to another room is told only that: whether this one exists is not
        // its business.
        None if verified.room.is_some() => Err(AccessTokenError::RoomNotGranted.into()),
        None => Err(AccessError::RoomNotFound),
    }
}

/// The media process of a room that takes participants now, and the room's view from now on
/// (subscribe before sending the participant's first request, so no reply is missed).
pub(crate) fn room_media(
    st: &AppState,
    room: &Room,
) -> Result<(Arc<dyn RoomProcesses>, RoomSubscription), AccessError> {
    if room.status != "in-progress" {
        return Err(AccessError::RoomEnded);
    }
    let processes = st
        .room_processes()
        .ok_or(AccessError::NoMediaProcess)?
        .clone();
    let subscription = processes
        .subscribe(&room.sid)
        .ok_or(AccessError::NoMediaProcess)?;
    Ok((processes, subscription))
}
