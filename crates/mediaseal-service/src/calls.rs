//! Calls (`CA…`): the status changes the SIP edge reports, kept as Twilio's Calls resource, and
//! the call status callbacks, queued in the outbox in the same transaction as the row (so they
//! are signed, retried and survive restarts like recording callbacks).
//!
//! The edge builds a callback's parameters (it knows the call's SIP details); this layer adds
//! what needs the clock (`Timestamp`) and decides, through the store, whether the change moved
//! the call forward: a repeated or late status queues nothing.

use mediaseal_store::StoreError;
use mediaseal_store::model::{Call, CallChange, CallFilter, Cursor};

use crate::Services;
use crate::clock::rfc2822;
use crate::outbox::new_callback;

/// A call status callback to send with a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatusCallback {
    /// The receiver (the domain's `VoiceStatusCallbackUrl`).
    pub url: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Form parameters, in order: `CallSid`, `AccountSid`, `From`, `To`, `CallStatus`,
    /// `Direction`, `ApiVersion`, `CallDuration` on a final status, and the SIP ones.
    pub params: Vec<(String, String)>,
}

/// A status change could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordCallError {
    /// The metadata store failed; the change (and its callback) is lost, and logged by the
    /// caller.
    #[error("recording the status of call {call_sid} failed: {source}")]
    Store {
        /// The call.
        call_sid: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
}

/// A call or a list of calls could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading calls failed: {0}")]
pub struct ReadCallsError(#[from] pub StoreError);

/// How the API asks a live call to end: Twilio's `Status` of a call update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangUp {
    /// `completed`: end the call whatever its state (BYE when answered, 487 when ringing).
    Completed,
    /// `canceled`: end it only if it has not been answered yet.
    Canceled,
}

/// A live call could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveCallError {
    /// No call with that SID of that account is in progress on this node's SIP edge.
    #[error("call {call_sid} is not in progress on this server")]
    NotLive {
        /// The call.
        call_sid: String,
    },
    /// `Status=canceled` asked of a call that has been answered.
    #[error(
        "call {call_sid} has been answered; Status=canceled only ends a ringing call, use Status=completed"
    )]
    Answered {
        /// The call.
        call_sid: String,
    },
    /// The SIP edge is stopping or did not answer.
    #[error("the SIP edge did not take the request ({reason}); try again")]
    Unavailable {
        /// What happened.
        reason: String,
    },
    /// A recording was asked of a call that has not been answered.
    #[error(
        "call {call_sid} has not been answered yet; start the recording once it is in progress"
    )]
    NotAnswered {
        /// The call.
        call_sid: String,
    },
    /// A recording was asked of a call that is already being recorded (a `<Record>`, a
    /// recording `<Dial>` or an earlier API recording): a call has one recording at a time.
    #[error("call {call_sid} is already being recorded; stop that recording first")]
    AlreadyRecording {
        /// The call.
        call_sid: String,
    },
    /// The recording is not one the API started on that call, or it has ended.
    #[error("recording {recording_sid} is not in progress on call {call_sid}")]
    NotRecording {
        /// The call.
        call_sid: String,
        /// The recording.
        recording_sid: String,
    },
    /// A parameter of a call the API places cannot be used (a `To` that is not a SIP URI,
    /// TwiML that does not parse…).
    #[error("{param}: {reason}")]
    Invalid {
        /// The parameter, as Twilio names it.
        param: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The recording could not start: refused under the account's RecordingSettings (seed
    /// 000: encryption on and no usable key; the failed recording is published with 16104)
    /// or the store failed.
    #[error("the recording of call {call_sid} could not start: {reason}")]
    RecordingFailed {
        /// The call.
        call_sid: String,
        /// What happened.
        reason: String,
    },
}

/// How the API records a live call (`POST …/Calls/{CA}/Recordings.json`), in Twilio's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRecordingOptions {
    /// `RecordingChannels=dual`: caller and callee in two channels; else a mono mix.
    pub dual: bool,
    /// `RecordingTrack=inbound`: only what the caller sends; else both parties.
    pub inbound_only: bool,
    /// `Trim=trim-silence` (Twilio's default) rather than `do-not-trim`.
    pub trim_silence: bool,
    /// `RecordingStatusCallback`, absolute.
    pub status_callback: Option<String>,
    /// `RecordingStatusCallbackMethod`: `GET` or `POST`.
    pub status_callback_method: String,
    /// `RecordingStatusCallbackEvent`: any of `in-progress`, `completed`, `absent`, `failed`.
    pub status_callback_events: Vec<String>,
}

/// A call the API places (`POST …/Calls.json`), as the API checked it: `To` is a `sip:` URI,
/// exactly one of `url` and `twiml` is set, URLs passed the webhook egress policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall {
    /// `To`: `sip:…`, `;secure=true` for TLS and SRTP.
    pub to: String,
    /// `From`: the caller ID.
    pub from: String,
    /// `CallerId`: what the callee sees as the caller instead of `From` (the INVITE's From):
    /// a number or name (`+15551230000`, `alice`) or a SIP address (`sip:alice@example.com`).
    pub caller_id: Option<String>,
    /// `Url`: the TwiML to fetch once answered.
    pub url: Option<String>,
    /// `Method`: `GET` or `POST`.
    pub method: String,
    /// `Twiml`: the document to run once answered.
    pub twiml: Option<String>,
    /// `FallbackUrl`.
    pub fallback_url: Option<String>,
    /// `FallbackMethod`.
    pub fallback_method: String,
    /// `StatusCallback`.
    pub status_callback: Option<String>,
    /// `StatusCallbackMethod`.
    pub status_callback_method: String,
    /// `StatusCallbackEvent`: any of `initiated`, `ringing`, `answered`, `completed`
    /// (`completed` alone when none is given).
    pub status_callback_events: Vec<String>,
    /// `Timeout`: seconds it may ring.
    pub timeout_secs: u32,
    /// `TimeLimit`: seconds the call may last once answered (Twilio's default: 4 hours).
    pub time_limit_secs: u32,
    /// `Record=true`: record from the answer (source `OutboundAPI`) with these
    /// `RecordingChannels`, `RecordingTrack`, `Trim` and `RecordingStatusCallback*` options.
    pub record: Option<LiveRecordingOptions>,
    /// `SendDigits`: keys sent as RFC 4733 events once answered, before the TwiML runs
    /// (`0-9`, `A-D`, `*`, `#`; `w` waits half a second, `W` a second).
    pub send_digits: Option<String>,
    /// `SipAuthUsername` + `SipAuthPassword`: answers a 401/407 digest challenge of the
    /// callee once, as `<Dial><Sip username password>` does.
    pub sip_auth: Option<SipAuth>,
}

/// Digest credentials for a callee that challenges. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct SipAuth {
    /// `SipAuthUsername`.
    pub username: String,
    /// `SipAuthPassword`.
    pub password: String,
}

impl std::fmt::Debug for SipAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// New TwiML for a live call (`POST …/Calls/{CA}.json` with `Url` or `Twiml`), as the API
/// checked it: exactly one of `url` and `twiml` is set, URLs passed the webhook egress policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRedirect {
    /// `Url`: the TwiML to fetch now.
    pub url: Option<String>,
    /// `Method`: `GET` or `POST`.
    pub method: String,
    /// `Twiml`: the document to run now.
    pub twiml: Option<String>,
    /// `FallbackUrl`.
    pub fallback_url: Option<String>,
    /// `FallbackMethod`.
    pub fallback_method: String,
}

/// What the API does to a recording it started: Twilio's recording `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingChange {
    /// `paused`: the audio is left out until resumed (`PauseBehavior=skip`).
    Paused,
    /// `in-progress`: recording again.
    InProgress,
    /// `stopped`: the recording ends and is stored.
    Stopped,
}

impl RecordingChange {
    /// Twilio's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paused => "paused",
            Self::InProgress => "in-progress",
            Self::Stopped => "stopped",
        }
    }
}

/// The seam between the REST API and the calls a SIP edge carries right now: the edge
/// implements it by handing each request to its call core, and `serve` installs it in the
/// HTTP state when it starts the edge. The API checks the caller may see the call before it
/// asks; implementations check the account again.
#[async_trait::async_trait]
pub trait LiveCalls: Send + Sync {
    /// Ends the live call `call_sid` of `account_sid` (or only its dialled leg, when that is
    /// the leg's SID). The Calls row goes to its final status through the edge's ledger, as
    /// for any ending.
    async fn hang_up(
        &self,
        account_sid: &str,
        call_sid: &str,
        how: HangUp,
    ) -> Result<(), LiveCallError>;

    /// Starts recording the live call `call_sid` of `account_sid` through the call
    /// recorder (source `StartCallRecordingAPI`), sealed as the audio arrives like any call
    /// recording. Returns the recording's row as it will be published (`in-progress` until
    /// it is stored).
    async fn start_recording(
        &self,
        account_sid: &str,
        call_sid: &str,
        options: &LiveRecordingOptions,
    ) -> Result<mediaseal_store::model::Recording, LiveCallError>;

    /// Pauses, resumes or stops the API recording `recording_sid` of the live call
    /// `call_sid`. Returns the recording's row as started.
    async fn change_recording(
        &self,
        account_sid: &str,
        call_sid: &str,
        recording_sid: &str,
        change: RecordingChange,
    ) -> Result<mediaseal_store::model::Recording, LiveCallError>;

    /// Replaces the TwiML of the live call `call_sid` of `account_sid`: what it is doing
    /// stops (a `<Dial>`led leg is hung up) and the new TwiML runs on it. An edge that cannot
    /// redirect calls keeps this default.
    async fn redirect(
        &self,
        account_sid: &str,
        call_sid: &str,
        to: &CallRedirect,
    ) -> Result<(), LiveCallError> {
        let _ = (account_sid, call_sid, to);
        Err(LiveCallError::Unavailable {
            reason: "this SIP edge does not redirect calls".to_owned(),
        })
    }

    /// Places a call for `account_sid` (`POST …/Calls.json`): the Calls row appears `queued`
    /// through the edge's ledger and moves on as the call does. Returns its `CA…` SID. An edge
    /// that cannot place calls keeps this default.
    async fn originate(
        &self,
        account_sid: &str,
        call: &OutboundCall,
    ) -> Result<String, LiveCallError> {
        let _ = (account_sid, call);
        Err(LiveCallError::Unavailable {
            reason: "this SIP edge does not place calls".to_owned(),
        })
    }
}

impl Services {
    /// Records one status change of a call and queues `callback`, if any, with it. `Ok(None)`
    /// when the change did not move the call forward (nothing changed, nothing queued).
    pub async fn record_call_change(
        &self,
        change: &CallChange,
        callback: Option<&CallStatusCallback>,
    ) -> Result<Option<Call>, RecordCallError> {
        let callbacks: Vec<_> = callback
            .map(|cb| {
                let mut params = cb.params.clone();
                // Twilio's call progress parameters. The domain callback is sent once per
                // call, so its sequence number is 0; a call the API placed numbers its events
                // itself.
                params.push(("Timestamp".to_owned(), rfc2822(change.at)));
                if !params.iter().any(|(k, _)| k == "SequenceNumber") {
                    params.push(("SequenceNumber".to_owned(), "0".to_owned()));
                }
                new_callback(
                    self,
                    &change.account_sid,
                    &change.sid,
                    &cb.url,
                    &cb.method,
                    &params,
                )
            })
            .into_iter()
            .collect();
        self.meta
            .apply_call_change(change, &callbacks)
            .await
            .map_err(|source| RecordCallError::Store {
                call_sid: change.sid.clone(),
                source,
            })
    }

    /// One call of `account_sid`.
    pub async fn call(&self, account_sid: &str, sid: &str) -> Result<Option<Call>, ReadCallsError> {
        Ok(self.meta.call(account_sid, sid).await?)
    }

    /// A page of `account_sid`'s calls, newest first.
    pub async fn list_calls(
        &self,
        account_sid: &str,
        filter: &CallFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<Call>, ReadCallsError> {
        Ok(self
            .meta
            .list_calls(account_sid, filter, after, limit)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mediaseal_crypto::PrivateKey;
    use mediaseal_store::model::{CallDirection, CallStatus};
    use mediaseal_store::{FsObjectStore, MetadataStore, ObjectStore, SqlStore};

    use super::*;
    use crate::clock::ManualClock;
    use crate::{ServiceConfig, SinkFactory};

    async fn services() -> (Services, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetadataStore> = Arc::new(
            SqlStore::open_sqlite(&data.path().join("m.db"))
                .await
                .unwrap(),
        );
        let objects: Arc<dyn ObjectStore> =
            Arc::new(FsObjectStore::new(data.path().join("objects")).unwrap());
        let key = PrivateKey::generate(2048).unwrap();
        // reqwest is built without a default crypto provider; the server installs AWS-LC.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let services = Services::new(
            meta,
            SinkFactory::new(objects, key.public_key().clone()),
            Arc::new(ManualClock::at(1_700_000_000_000_000)),
            ServiceConfig::default(),
        );
        (services, data)
    }

    fn change(status: CallStatus, at: i64, duration: Option<i64>) -> CallChange {
        CallChange {
            sid: "CA0123456789abcdef0123456789abcdef".to_owned(),
            account_sid: "AC0123456789abcdef0123456789abcdef".to_owned(),
            parent_call_sid: None,
            direction: CallDirection::Inbound,
            from: "sip:alice@example.com".to_owned(),
            to: "sip:bob@d.sip.test".to_owned(),
            status,
            duration_secs: duration,
            sip_call_id: Some("x@y".to_owned()),
            at,
        }
    }

    #[tokio::test]
    async fn a_final_status_queues_its_callback_once_with_a_timestamp() {
        let (s, _data) = services().await;
        let at = s.now_us();
        let cb = CallStatusCallback {
            url: "https://example.com/status".to_owned(),
            method: "POST".to_owned(),
            params: vec![("CallStatus".to_owned(), "completed".to_owned())],
        };
        s.record_call_change(&change(CallStatus::Ringing, at, None), None)
            .await
            .unwrap()
            .unwrap();
        let done = s
            .record_call_change(
                &change(CallStatus::Completed, at + 5_000_000, Some(5)),
                Some(&cb),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.duration, Some(5));
        // A repeat changes nothing and queues nothing.
        let again = s
            .record_call_change(
                &change(CallStatus::Completed, at + 6_000_000, Some(6)),
                Some(&cb),
            )
            .await
            .unwrap();
        assert!(again.is_none());
        let queued = s.meta.callbacks_for(&done.sid).await.unwrap();
        assert_eq!(queued.len(), 1);
        let params: Vec<(String, String)> = serde_json::from_str(&queued[0].params).unwrap();
        assert!(params.contains(&("CallStatus".to_owned(), "completed".to_owned())));
        assert!(params.contains(&("Timestamp".to_owned(), rfc2822(at + 5_000_000))));
        assert_eq!(queued[0].url, "https://example.com/status");
        assert_eq!(queued[0].account_sid, done.account_sid);

        let listed = s
            .list_calls(&done.account_sid, &CallFilter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(listed, vec![done.clone()]);
        assert_eq!(
            s.call(&done.account_sid, &done.sid).await.unwrap(),
            Some(done)
        );
    }
}
