//! Calls (`CA…`): inbound calls to SIP Domains and the legs they dial.

use super::spelling::spelled_enum;

spelled_enum! {
    /// A call's status (`calls.status`), in Twilio's spelling.
    pub enum CallStatus ("call status") {
        /// Queued, not yet started.
        Queued = "queued",
        /// Being set up.
        Initiated = "initiated",
        /// Ringing.
        Ringing = "ringing",
        /// Answered.
        InProgress = "in-progress",
        /// Ended after an answer.
        Completed = "completed",
        /// The callee was busy.
        Busy = "busy",
        /// Nobody answered.
        NoAnswer = "no-answer",
        /// Could not be set up.
        Failed = "failed",
        /// Hung up before an answer.
        Canceled = "canceled",
    }
}

impl CallStatus {
    /// Whether the call is over; a final status never changes again.
    pub fn is_final(self) -> bool {
        self.rank() == 3
    }

    /// Order of the statuses in a call's life; a call only ever moves to a higher rank.
    pub fn rank(self) -> i64 {
        match self {
            Self::Queued | Self::Initiated => 0,
            Self::Ringing => 1,
            Self::InProgress => 2,
            Self::Completed | Self::Busy | Self::NoAnswer | Self::Failed | Self::Canceled => 3,
        }
    }
}

spelled_enum! {
    /// Which way a call goes (`calls.direction`).
    pub enum CallDirection ("call direction") {
        /// Came in to a SIP Domain.
        Inbound = "inbound",
        /// Placed through the API.
        OutboundApi = "outbound-api",
        /// Dialled by `<Dial>`.
        OutboundDial = "outbound-dial",
    }
}

/// A call (`CA…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `CA…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// For a dialled leg: the call that dialled it.
    pub parent_call_sid: Option<String>,
    /// Which way it goes.
    pub direction: CallDirection,
    /// The caller.
    pub from: String,
    /// The callee.
    pub to: String,
    /// Where it is in its life.
    pub status: CallStatus,
    /// When it was answered (µs).
    pub start_time: Option<i64>,
    /// When it ended (µs).
    pub end_time: Option<i64>,
    /// Seconds from the answer to the end; 0 for a call never answered; `None` until it ends.
    pub duration: Option<i64>,
    /// The SIP Call-ID of this leg.
    pub sip_call_id: Option<String>,
    /// First seen.
    pub date_created: i64,
    /// Last changed.
    pub date_updated: i64,
}

/// One status change of a call, as the SIP edge reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallChange {
    /// `CA…`.
    pub sid: String,
    /// The owning account.
    pub account_sid: String,
    /// For a dialled leg: the call that dialled it.
    pub parent_call_sid: Option<String>,
    /// Which way it goes.
    pub direction: CallDirection,
    /// The caller.
    pub from: String,
    /// The callee.
    pub to: String,
    /// The new status.
    pub status: CallStatus,
    /// Seconds since the answer, with a final status of an answered call.
    pub duration_secs: Option<i64>,
    /// The SIP Call-ID of this leg.
    pub sip_call_id: Option<String>,
    /// When it happened (µs).
    pub at: i64,
}

/// Filters of the call list; each one given must match.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// `To`.
    pub to: Option<String>,
    /// `From`.
    pub from: Option<String>,
    /// `Status`.
    pub status: Option<CallStatus>,
    /// `ParentCallSid`.
    pub parent_call_sid: Option<String>,
    /// Started at or after (µs).
    pub started_from: Option<i64>,
    /// Started before (µs).
    pub started_before: Option<i64>,
    /// Ended at or after (µs).
    pub ended_from: Option<i64>,
    /// Ended before (µs).
    pub ended_before: Option<i64>,
}
