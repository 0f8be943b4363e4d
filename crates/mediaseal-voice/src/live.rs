//! The edge's side of the live-call seam ([`mediaseal_service::calls::LiveCalls`]): each API
//! request becomes an input of the signalling task, which hands it to the call core with the
//! time and answers on a one-shot channel. The core never waits on the API, and the API never
//! touches a call except through the core.

use std::collections::HashMap;

use async_trait::async_trait;
use mediaseal_call::recording::{Layout, TapTracks};
use mediaseal_call::{
    ApiRecording, CallId, HangUpError, HangUpMode, LiveRecordingError, RecordingControl,
    RecordingId, RedirectError,
};
use mediaseal_service::calls::{
    CallRedirect, HangUp, LiveCallError, LiveCalls, LiveRecordingOptions, OutboundCall,
    RecordingChange,
};
use mediaseal_store::model::Recording;
use mediaseal_twiml::{
    CallProgressEvents, Callback, FetchTarget, HttpMethod, RecordingEvents, Script, SipUri, Trim,
};
use tokio::sync::{mpsc, oneshot};

use crate::edge::EdgeEvent;
use crate::recorder::PauseFlag;

/// The answer to a recording request of the API.
pub(crate) type RecordingReply = oneshot::Sender<Result<Recording, LiveCallError>>;

/// What the signalling task keeps for the API's recordings.
#[derive(Debug, Default)]
pub(crate) struct LiveState {
    /// Starts waiting for the recorder (the row has the SID the API answers with).
    pub(crate) starting: HashMap<(CallId, RecordingId), (String, RecordingReply)>,
    /// Running API recordings by `RE…`: the call, the core's id and the row as started.
    pub(crate) running: HashMap<String, (CallId, RecordingId, Recording)>,
    /// The pause switch of every running recording (shared with its consumer).
    pub(crate) pauses: HashMap<(CallId, RecordingId), PauseFlag>,
}

/// The API's error for a core refusal.
pub(crate) fn recording_error(
    e: LiveRecordingError,
    call_sid: &str,
    recording_sid: &str,
) -> LiveCallError {
    let call_sid = call_sid.to_owned();
    match e {
        LiveRecordingError::NotLive => LiveCallError::NotLive { call_sid },
        LiveRecordingError::NotAnswered => LiveCallError::NotAnswered { call_sid },
        LiveRecordingError::Busy => LiveCallError::AlreadyRecording { call_sid },
        LiveRecordingError::NotRecording => LiveCallError::NotRecording {
            call_sid,
            recording_sid: recording_sid.to_owned(),
        },
    }
}

/// The core's recording request from the API's options.
fn api_recording(options: &LiveRecordingOptions) -> Result<ApiRecording, String> {
    let status_callback = match &options.status_callback {
        None => None,
        Some(url) => {
            let url = url
                .parse()
                .map_err(|e| format!("RecordingStatusCallback '{url}' is not a URL: {e}"))?;
            let method = match options.status_callback_method.to_ascii_uppercase().as_str() {
                "GET" => HttpMethod::Get,
                _ => HttpMethod::Post,
            };
            let mut events = RecordingEvents {
                in_progress: false,
                completed: false,
                absent: false,
                failed: false,
            };
            for e in &options.status_callback_events {
                match e.as_str() {
                    "in-progress" => events.in_progress = true,
                    "completed" => events.completed = true,
                    "absent" => events.absent = true,
                    "failed" => events.failed = true,
                    _ => {}
                }
            }
            if options.status_callback_events.is_empty() {
                events = RecordingEvents::default();
            }
            Some(Callback {
                target: FetchTarget { url, method },
                events,
            })
        }
    };
    Ok(ApiRecording {
        layout: if options.dual {
            Layout::Dual
        } else {
            Layout::Mono
        },
        tracks: if options.inbound_only {
            TapTracks::CallerOnly
        } else {
            TapTracks::Both
        },
        trim: if options.trim_silence {
            Trim::TrimSilence
        } else {
            Trim::DoNotTrim
        },
        status_callback,
    })
}

fn http_method(m: &str) -> HttpMethod {
    if m.eq_ignore_ascii_case("GET") {
        HttpMethod::Get
    } else {
        HttpMethod::Post
    }
}

fn invalid(param: &str, reason: String) -> LiveCallError {
    LiveCallError::Invalid {
        param: param.to_owned(),
        reason,
    }
}

fn absolute_url(param: &str, v: &str) -> Result<url::Url, LiveCallError> {
    v.parse::<url::Url>()
        .map_err(|e| invalid(param, format!("'{v}' is not an absolute URL: {e}")))
}

/// The script of `Url`+`Method` or `Twiml` (parsed here, so bad TwiML is the API's 400).
fn script_of(
    url: Option<&str>,
    method: &str,
    twiml: Option<&str>,
) -> Result<Script, LiveCallError> {
    Ok(match (url, twiml) {
        (_, Some(doc)) => {
            let parsed = mediaseal_twiml::Response::parse_with(
                doc.as_bytes(),
                &mediaseal_twiml::ParseOptions {
                    unknown_attributes: mediaseal_twiml::AttributePolicy::Ignore,
                    ..mediaseal_twiml::ParseOptions::default()
                },
            )
            .map_err(|e| invalid("Twiml", format!("the TwiML does not parse: {e}")))?;
            Script::Inline(parsed.response)
        }
        (Some(u), None) => Script::Fetch(FetchTarget {
            url: absolute_url("Url", u)?,
            method: http_method(method),
        }),
        (None, None) => return Err(invalid("Url", "Url or Twiml is required".to_owned())),
    })
}

/// The core's request for a call the API places; `Invalid` names the parameter that cannot be
/// used.
fn originate_request(
    account_sid: &str,
    call: &OutboundCall,
) -> Result<mediaseal_call::Originate, LiveCallError> {
    let to = SipUri::parse(&call.to).map_err(|e| {
        invalid(
            "To",
            format!("'{}' is not a SIP URI this server can call: {e}", call.to),
        )
    })?;
    let script = script_of(call.url.as_deref(), &call.method, call.twiml.as_deref())?;
    let recording = call
        .record
        .as_ref()
        .map(|options| {
            api_recording(options).map_err(|reason| invalid("RecordingStatusCallback", reason))
        })
        .transpose()?;
    let send_digits = match call.send_digits.as_deref() {
        None | Some("") => None,
        Some(d) => {
            if let Some(c) = d.chars().find(|c| !"0123456789ABCDabcd*#wW".contains(*c)) {
                return Err(invalid(
                    "SendDigits",
                    format!("'{c}' is not a key (0-9, A-D, *, #) or a pause (w, W)"),
                ));
            }
            // The generator's pause is `w`, half a second; `W` is a second.
            Some(d.replace('W', "ww"))
        }
    };
    let fallback = call
        .fallback_url
        .as_deref()
        .map(|u| {
            Ok::<_, LiveCallError>(FetchTarget {
                url: absolute_url("FallbackUrl", u)?,
                method: http_method(&call.fallback_method),
            })
        })
        .transpose()?;
    let status_callback = call
        .status_callback
        .as_deref()
        .map(|u| {
            let mut events = CallProgressEvents {
                initiated: false,
                ringing: false,
                answered: false,
                completed: call.status_callback_events.is_empty(),
            };
            for e in &call.status_callback_events {
                match e.as_str() {
                    "initiated" => events.initiated = true,
                    "ringing" => events.ringing = true,
                    "answered" => events.answered = true,
                    _ => events.completed = true,
                }
            }
            Ok::<_, LiveCallError>(Callback {
                target: FetchTarget {
                    url: absolute_url("StatusCallback", u)?,
                    method: http_method(&call.status_callback_method),
                },
                events,
            })
        })
        .transpose()?;
    Ok(mediaseal_call::Originate {
        account_sid: account_sid.to_owned(),
        to,
        from: call.from.clone(),
        caller_id: call.caller_id.clone(),
        script,
        fallback,
        status_callback,
        timeout: std::time::Duration::from_secs(u64::from(call.timeout_secs)),
        time_limit: std::time::Duration::from_secs(u64::from(call.time_limit_secs)),
        recording,
        send_digits,
        sip_auth: call.sip_auth.as_ref().map(|a| {
            (
                a.username.clone(),
                mediaseal_twiml::SipPassword::new(a.password.clone()),
            )
        }),
    })
}

/// The core's redirect for the API's `Url`/`Twiml`.
fn redirect_request(to: &CallRedirect) -> Result<mediaseal_call::Redirect, LiveCallError> {
    Ok(mediaseal_call::Redirect {
        script: script_of(to.url.as_deref(), &to.method, to.twiml.as_deref())?,
        fallback: to
            .fallback_url
            .as_deref()
            .map(|u| {
                Ok::<_, LiveCallError>(FetchTarget {
                    url: absolute_url("FallbackUrl", u)?,
                    method: http_method(&to.fallback_method),
                })
            })
            .transpose()?,
    })
}

/// The live calls of one running edge ([`crate::VoiceEdgeHandle::live_calls`]).
#[derive(Debug, Clone)]
pub struct EdgeLiveCalls {
    pub(crate) events: mpsc::UnboundedSender<EdgeEvent>,
}

fn gone() -> LiveCallError {
    LiveCallError::Unavailable {
        reason: "the SIP edge has stopped".to_owned(),
    }
}

#[async_trait]
impl LiveCalls for EdgeLiveCalls {
    async fn hang_up(
        &self,
        account_sid: &str,
        call_sid: &str,
        how: HangUp,
    ) -> Result<(), LiveCallError> {
        let (reply, answer) = oneshot::channel();
        let mode = match how {
            HangUp::Completed => HangUpMode::Complete,
            HangUp::Canceled => HangUpMode::Cancel,
        };
        self.events
            .send(EdgeEvent::HangUp {
                account_sid: account_sid.to_owned(),
                call_sid: call_sid.to_owned(),
                mode,
                reply,
            })
            .map_err(|_| gone())?;
        match answer.await.map_err(|_| gone())? {
            Ok(()) => Ok(()),
            Err(HangUpError::NotLive) => Err(LiveCallError::NotLive {
                call_sid: call_sid.to_owned(),
            }),
            Err(HangUpError::Answered) => Err(LiveCallError::Answered {
                call_sid: call_sid.to_owned(),
            }),
        }
    }

    async fn start_recording(
        &self,
        account_sid: &str,
        call_sid: &str,
        options: &LiveRecordingOptions,
    ) -> Result<Recording, LiveCallError> {
        let options = api_recording(options).map_err(|reason| LiveCallError::RecordingFailed {
            call_sid: call_sid.to_owned(),
            reason,
        })?;
        let (reply, answer) = oneshot::channel();
        self.events
            .send(EdgeEvent::StartApiRecording {
                account_sid: account_sid.to_owned(),
                call_sid: call_sid.to_owned(),
                options: Box::new(options),
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn change_recording(
        &self,
        account_sid: &str,
        call_sid: &str,
        recording_sid: &str,
        change: RecordingChange,
    ) -> Result<Recording, LiveCallError> {
        let control = match change {
            RecordingChange::Paused => RecordingControl::Pause,
            RecordingChange::InProgress => RecordingControl::Resume,
            RecordingChange::Stopped => RecordingControl::Stop,
        };
        let (reply, answer) = oneshot::channel();
        self.events
            .send(EdgeEvent::ControlApiRecording {
                account_sid: account_sid.to_owned(),
                call_sid: call_sid.to_owned(),
                recording_sid: recording_sid.to_owned(),
                control,
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn redirect(
        &self,
        account_sid: &str,
        call_sid: &str,
        to: &CallRedirect,
    ) -> Result<(), LiveCallError> {
        let redirect = redirect_request(to)?;
        let (reply, answer) = oneshot::channel();
        self.events
            .send(EdgeEvent::Redirect {
                account_sid: account_sid.to_owned(),
                call_sid: call_sid.to_owned(),
                redirect: Box::new(redirect),
                reply,
            })
            .map_err(|_| gone())?;
        match answer.await.map_err(|_| gone())? {
            Ok(()) => Ok(()),
            Err(RedirectError::NotLive) => Err(LiveCallError::NotLive {
                call_sid: call_sid.to_owned(),
            }),
            Err(e @ RedirectError::DialledLeg) => Err(invalid("CallSid", e.to_string())),
        }
    }

    async fn originate(
        &self,
        account_sid: &str,
        call: &OutboundCall,
    ) -> Result<String, LiveCallError> {
        let request = originate_request(account_sid, call)?;
        let (reply, answer) = oneshot::channel();
        self.events
            .send(EdgeEvent::Originate {
                request: Box::new(request),
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?.map_err(|e| match e {
            mediaseal_call::OriginateError::BadUri(_) => LiveCallError::Invalid {
                param: "To".to_owned(),
                reason: e.to_string(),
            },
            mediaseal_call::OriginateError::BadCallerId(_) => LiveCallError::Invalid {
                param: "CallerId".to_owned(),
                reason: e.to_string(),
            },
            other => LiveCallError::Unavailable {
                reason: other.to_string(),
            },
        })
    }
}
