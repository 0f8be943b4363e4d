//! Video rooms, sans-IO: who may join, what participants and the control plane say, and the
//! selective forwarding unit that moves media between participants.
//!
//! - [`token`]: Twilio Access Token verification (HS256 JWT with a video grant, Twilio's error
//!   codes), on AWS-LC's constant-time HMAC.
//! - [`signal`]: the WebSocket room signalling messages between participants and mediaseal.
//! - [`mesh`]: peer-to-peer rooms: membership and the relay of peer-addressed signalling.
//! - [`control`]: the length-prefixed JSON control pipe between the server and a room worker
//!   process.
//! - [`recording_rules`]: which tracks a room records (Twilio's RecordingRules), and what starts
//!   and stops when they change.
//! - [`subscribe_rules`]: which tracks a participant receives (Twilio's SubscribeRules).
//! - [`track_rules`]: the rule grammar both share: one parser, one matcher.
//! - [`room`]: the room itself: one str0m `Rtc` (ICE, DTLS-SRTP on AWS-LC) per participant,
//!   frame-level forwarding with per-subscriber re-encryption, keyframe-request throttling,
//!   simulcast layer selection, renegotiation, and [`room::FrameSink`]s for the recorder.
//!
//! Nothing here opens a socket, spawns a thread or reads a clock: `mediaseal-room-worker` is
//! the process that owns the sockets and drives a [`room::Room`], and the server owns the
//! WebSocket and REST sides. See `docs/ROOMS.md`.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod control;
pub mod mesh;
pub mod recording_rules;
pub mod room;
pub mod signal;
pub mod subscribe_rules;
pub mod token;
pub mod track_rules;

/// The str0m version the room is built on, for callers that need its types (sinks, tests).
pub use str0m;
