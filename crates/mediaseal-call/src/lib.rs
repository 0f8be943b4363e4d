//! Sans-IO call core: the back-to-back user agent behind SIP Domains and its SRTP-rekeying
//! media relay.
//!
//! No sockets, no threads, no clock reads, no async: like `mediaseal-srtp` and
//! `mediaseal-sip`, everything here takes bytes and an [`Instant`](std::time::Instant) and
//! returns what to send and what to do. The IO shell (`mediaseal-voice`) owns the sockets,
//! the TLS connections, the HTTP client, the speech synthesiser, the relay threads and the
//! recorder, and drives two machines:
//!
//! - [`b2bua::CallCore`]: every call's signalling. Inbound INVITE → domain lookup →
//!   authentication (IP ACL or digest) → secure-media policy → 180 → webhook → the TwiML
//!   interpreter's commands as SIP and media actions (answer, `<Dial><Sip>` with a
//!   re-keyed SRTP leg, prompts, DTMF collection, recording, reject, hang-up). It speaks to
//!   the shell in [`effect::Effect`]s.
//! - [`relay::RelayCall`]: one call's media. Every packet is authenticated and decrypted on
//!   the leg it arrives on and re-encrypted for the other; forgeries, replays and plain RTP
//!   on a secure leg are dropped and counted; the peer's address is latched only after a
//!   packet authenticates. It decodes G.711 for the recording tap, detects RFC 4733 DTMF, and
//!   plays prompts.
//!
//! Supporting modules: [`g711`] (μ-law/A-law), [`rtp`] (header access), [`dtmf`] (RFC 4733
//! events), [`prompt`] (WAV decoding, resampling, tones), [`recording`] (tap frames and the
//! mixer that writes WAV), [`domain`] (what a SIP Domain allows), [`fork`] (ringing every
//! registered device of an address at once: which answer wins, what to cancel).
//!
//! `docs/VOICE.md` in the repository describes the call flow, the relay's threads and
//! counters, and the seams to the rest of mediaseal.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod b2bua;
pub mod domain;
pub mod dtmf;
pub mod effect;
pub mod fork;
/// G.711, shared with the speech recogniser: it lives in `mediaseal-media`.
pub use mediaseal_media::g711;
pub mod prompt;
pub mod recording;
pub mod relay;
pub mod rtp;

pub use b2bua::{
    ApiRecording, CallCore, CoreConfig, CoreError, CoreStats, HangUpError, HangUpMode,
    LiveRecordingError, Originate, OriginateError, Output, RecordingControl, Redirect,
    RedirectError,
};
pub use domain::{Domain, DomainCredential, IpRange};
pub use effect::{
    CallId, CallStatusCallback, CallUpdate, Effect, FetchFailure, FetchId, MediaCommand, Prompt,
    RecordingId, RecordingRequest, RecordingSource, WebhookKind, WebhookRequest,
};
pub use relay::{LegSetup, MediaEvent, RelayCall, RelayConfig, Side};
