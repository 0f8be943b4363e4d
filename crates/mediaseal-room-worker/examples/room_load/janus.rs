//! Janus VideoRoom signalling for `room_load --janus-url`: the same str0m peers and media as
//! against a room worker, but each room is a Janus VideoRoom reached over Janus's HTTP API.
//!
//! The generator's requests are translated, so its main flow stays the worker's: a publisher's
//! `join` becomes attach + `join` (ptype publisher) + `configure` with the str0m offer; a
//! subscriber's `join` becomes attach + `join` (ptype subscriber) to every publisher's feed on
//! one handle (Janus 1.x multistream: one PeerConnection per subscriber, as with the worker),
//! and its `answer` becomes `start`. Janus's replies come back as the worker events the
//! generator already handles: a JSEP answer as `answer`, a JSEP offer as `offer`, a plugin
//! error as `error`, a hang-up as `participant_disconnected`.
//!
//! One Janus session per room. A thread long-polls the session for events; Janus counts each
//! long poll as a keep-alive, so the session never reaches its 60 s idle timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mediaseal_rooms::control::{Request, WorkerEvent};
use mediaseal_rooms::room::DisconnectReason;
use serde::{Deserialize, Serialize};

use super::Res;

const PLUGIN: &str = "janus.plugin.videoroom";
/// Events taken per long poll.
const MAX_EVENTS: u32 = 16;

/// A request to Janus's core API; `janus` names the verb.
#[derive(Debug, Serialize)]
#[serde(tag = "janus", rename_all = "snake_case")]
enum Outgoing<'a> {
    Create {
        transaction: String,
    },
    Attach {
        plugin: &'a str,
        transaction: String,
    },
    Message {
        body: VideoRoom<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        jsep: Option<Jsep<'a>>,
        transaction: String,
    },
    /// Every candidate of ours is in the SDP already.
    Trickle {
        candidate: TrickleDone,
        transaction: String,
    },
    Destroy {
        transaction: String,
    },
}

/// A VideoRoom plugin request (the `body` of a `message`).
#[derive(Debug, Serialize)]
#[serde(tag = "request", rename_all = "snake_case")]
enum VideoRoom<'a> {
    Create {
        room: u64,
        publishers: usize,
        audiocodec: &'a str,
        videocodec: &'a str,
        permanent: bool,
    },
    Join {
        ptype: PType,
        room: u64,
        /// The publisher's feed id (chosen here, so subscribers need not wait for it).
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        display: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        streams: Vec<Feed>,
    },
    /// With the publisher's offer as JSEP: publish.
    Configure {},
    /// With the subscriber's answer as JSEP.
    Start {},
    Destroy {
        room: u64,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum PType {
    Publisher,
    Subscriber,
}

/// One subscription: every stream of this publisher.
#[derive(Debug, Serialize)]
struct Feed {
    feed: u64,
}

#[derive(Debug, Serialize)]
struct Jsep<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    sdp: &'a str,
}

#[derive(Debug, Serialize)]
struct TrickleDone {
    completed: bool,
}

/// Anything Janus sends: replies to requests and long-poll events.
#[derive(Debug, Deserialize)]
struct Incoming {
    janus: Kind,
    /// `success` to `create` and `attach`: the new session or handle id.
    #[serde(default)]
    data: Option<NewId>,
    #[serde(default)]
    error: Option<CoreError>,
    /// The handle the event is about.
    #[serde(default)]
    sender: Option<u64>,
    #[serde(default)]
    plugindata: Option<PluginData>,
    #[serde(default)]
    jsep: Option<JsepIn>,
    /// Why a `hangup` happened.
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Success,
    Ack,
    Error,
    Event,
    Hangup,
    Keepalive,
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct NewId {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct CoreError {
    code: i64,
    reason: String,
}

#[derive(Debug, Deserialize)]
struct PluginData {
    data: PluginReply,
}

#[derive(Debug, Deserialize)]
struct PluginReply {
    #[serde(default)]
    error_code: Option<u32>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JsepIn {
    #[serde(rename = "type")]
    kind: String,
    sdp: String,
}

/// Janus's HTTP API at one base URL.
#[derive(Clone)]
struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    fn new(base: &str, timeout: Duration) -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .build()
                .into(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// POSTs one request to `base/path` and returns Janus's reply, or its error as ours.
    fn post(&self, path: &str, what: &str, request: &Outgoing<'_>) -> Res<Incoming> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(serde_json::to_string(request)?)
            .map_err(|e| format!("{what}: POST {url}: {e} (is Janus listening there?)"))?;
        let text = response.body_mut().read_to_string()?;
        let reply: Incoming = serde_json::from_str(&text)
            .map_err(|e| format!("{what}: Janus's reply from {url} is not understood: {e}"))?;
        if let Some(e) = &reply.error {
            return Err(format!("{what}: Janus refused it: {} {}", e.code, e.reason).into());
        }
        if let Some(PluginReply {
            error_code: Some(code),
            error,
        }) = reply.plugindata.as_ref().map(|p| &p.data)
        {
            return Err(format!(
                "{what}: the VideoRoom plugin refused it: {code} {}",
                error.as_deref().unwrap_or("")
            )
            .into());
        }
        Ok(reply)
    }

    /// Events of a session, waiting up to Janus's long-poll limit (30 s) for the first.
    fn poll(&self, session: u64) -> Res<Vec<Incoming>> {
        let url = format!("{}/{session}?maxev={MAX_EVENTS}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| format!("long poll {url}: {e}"))?;
        if response.status() != 200 {
            return Err(format!("long poll {url}: HTTP {}", response.status()).into());
        }
        let text = response.body_mut().read_to_string()?;
        let events: Vec<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| format!("long poll {url}: not a list of events: {e}"))?;
        // An event of a shape not modelled here is skipped, not fatal to the room.
        Ok(events
            .into_iter()
            .filter_map(|event| match serde_json::from_value(event) {
                Ok(event) => Some(event),
                Err(e) => {
                    eprintln!("Janus session {session}: an event is skipped: {e}");
                    None
                }
            })
            .collect())
    }
}

/// One VideoRoom and the Janus session that drives it.
pub(super) struct Room {
    api: Api,
    session: u64,
    /// The handle that created the room (and destroys it).
    manager: u64,
    room: u64,
    /// Participant SID → handle.
    handles: HashMap<String, u64>,
    /// Handle → participant SID, read by the event thread.
    sids: Arc<Mutex<HashMap<u64, String>>>,
    feeds: Vec<u64>,
    transactions: u64,
    /// Set by `close`: the event thread's failing poll is then the session going away.
    closing: Arc<AtomicBool>,
}

impl Room {
    /// Opens a session, creates a VideoRoom for `publishers` senders of Opus (and VP8), and
    /// starts the thread that turns the session's events into worker events.
    pub(super) fn open(
        base: &str,
        index: usize,
        publishers: usize,
    ) -> Res<(Self, Receiver<WorkerEvent>)> {
        let api = Api::new(base, Duration::from_secs(10));
        // Distinct per generator run, so a Janus that served an earlier run has no such room.
        let room = u64::from(std::process::id()) * 1000 + index as u64 + 1;
        let session = id_of(
            api.post(
                "",
                "create a Janus session",
                &Outgoing::Create {
                    transaction: "s".to_owned(),
                },
            )?,
            "session",
        )?;
        let mut this = Self {
            api,
            session,
            manager: 0,
            room,
            handles: HashMap::new(),
            sids: Arc::new(Mutex::new(HashMap::new())),
            feeds: Vec::new(),
            transactions: 0,
            closing: Arc::new(AtomicBool::new(false)),
        };
        this.manager = this.attach()?;
        this.message(
            this.manager,
            "create the VideoRoom",
            VideoRoom::Create {
                room,
                publishers: publishers.max(1),
                audiocodec: "opus",
                videocodec: "vp8",
                permanent: false,
            },
            None,
        )?;
        let (tx, rx) = channel();
        // The long poll outlasts Janus's 30 s hold.
        let poller = Api::new(base, Duration::from_secs(60));
        let sids = Arc::clone(&this.sids);
        let closing = Arc::clone(&this.closing);
        thread::Builder::new()
            .name(format!("janus-{session}"))
            .stack_size(256 * 1024)
            .spawn(move || poll_events(&poller, session, &sids, &tx, &closing))?;
        Ok((this, rx))
    }

    /// A readable name for the room in messages.
    pub(super) fn name(&self) -> String {
        format!("janus-{}", self.room)
    }

    /// Carries out one generator request against Janus.
    pub(super) fn send(&mut self, request: &Request) -> Res<()> {
        match request {
            Request::Join {
                participant_sid,
                sdp,
                subscribe: false,
                ..
            } => {
                let handle = self.attach_for(participant_sid)?;
                let feed = self.feeds.len() as u64 + 1;
                self.message(
                    handle,
                    "join as publisher",
                    VideoRoom::Join {
                        ptype: PType::Publisher,
                        room: self.room,
                        id: Some(feed),
                        display: Some(participant_sid.as_str()),
                        streams: Vec::new(),
                    },
                    None,
                )?;
                // Janus handles a handle's messages in order: this follows the join.
                let offer = Jsep { kind: "offer", sdp };
                self.message(handle, "publish", VideoRoom::Configure {}, Some(offer))?;
                self.candidates_done(handle)?;
                self.feeds.push(feed);
            }
            Request::Join {
                participant_sid,
                subscribe: true,
                ..
            } => {
                if self.feeds.is_empty() {
                    return Err("a Janus subscriber needs a publisher to subscribe to".into());
                }
                let handle = self.attach_for(participant_sid)?;
                // Janus makes the offer (every publisher's streams) and sends it as an event.
                self.message(
                    handle,
                    "join as subscriber",
                    VideoRoom::Join {
                        ptype: PType::Subscriber,
                        room: self.room,
                        id: None,
                        display: None,
                        streams: self.feeds.iter().map(|&feed| Feed { feed }).collect(),
                    },
                    None,
                )?;
            }
            Request::Answer {
                participant_sid,
                sdp,
            } => {
                let handle = *self
                    .handles
                    .get(participant_sid)
                    .ok_or_else(|| format!("answer from {participant_sid}, who never joined"))?;
                let answer = Jsep {
                    kind: "answer",
                    sdp,
                };
                self.message(handle, "start", VideoRoom::Start {}, Some(answer))?;
                self.candidates_done(handle)?;
            }
            other => {
                return Err(format!(
                    "the Janus mode carries only joins and answers, not {other:?}"
                )
                .into());
            }
        }
        Ok(())
    }

    /// Destroys the room and the session (its handles and PeerConnections go with it), so a
    /// Janus that serves the next run starts empty. Best effort: the run is over.
    pub(super) fn close(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        let _ = self.message(
            self.manager,
            "destroy the VideoRoom",
            VideoRoom::Destroy { room: self.room },
            None,
        );
        let transaction = self.transaction();
        let _ = self.api.post(
            &format!("/{}", self.session),
            "destroy the Janus session",
            &Outgoing::Destroy { transaction },
        );
    }

    fn transaction(&mut self) -> String {
        self.transactions += 1;
        format!("t{}", self.transactions)
    }

    fn attach(&mut self) -> Res<u64> {
        let transaction = self.transaction();
        id_of(
            self.api.post(
                &format!("/{}", self.session),
                "attach to the VideoRoom plugin",
                &Outgoing::Attach {
                    plugin: PLUGIN,
                    transaction,
                },
            )?,
            "handle",
        )
    }

    /// A handle for a participant, known to the event thread before any event can name it.
    fn attach_for(&mut self, participant_sid: &str) -> Res<u64> {
        let handle = self.attach()?;
        self.handles.insert(participant_sid.to_owned(), handle);
        self.sids
            .lock()
            .map_err(|_| "the Janus event thread panicked")?
            .insert(handle, participant_sid.to_owned());
        Ok(handle)
    }

    fn message(
        &mut self,
        handle: u64,
        what: &str,
        body: VideoRoom<'_>,
        jsep: Option<Jsep<'_>>,
    ) -> Res<Incoming> {
        let transaction = self.transaction();
        self.api.post(
            &format!("/{}/{handle}", self.session),
            what,
            &Outgoing::Message {
                body,
                jsep,
                transaction,
            },
        )
    }

    fn candidates_done(&mut self, handle: u64) -> Res<()> {
        let transaction = self.transaction();
        self.api.post(
            &format!("/{}/{handle}", self.session),
            "end of candidates",
            &Outgoing::Trickle {
                candidate: TrickleDone { completed: true },
                transaction,
            },
        )?;
        Ok(())
    }
}

fn id_of(reply: Incoming, what: &str) -> Res<u64> {
    match (reply.janus, reply.data) {
        (Kind::Success, Some(NewId { id })) => Ok(id),
        (kind, _) => Err(format!("Janus answered a new {what} with {kind:?} and no id").into()),
    }
}

/// The event thread: long-polls until the session is gone or the generator stops listening.
/// Dropping `tx` on the way out tells the generator the room is dead.
fn poll_events(
    api: &Api,
    session: u64,
    sids: &Mutex<HashMap<u64, String>>,
    tx: &Sender<WorkerEvent>,
    closing: &AtomicBool,
) {
    loop {
        let events = match api.poll(session) {
            Ok(events) => events,
            Err(e) => {
                if !closing.load(Ordering::Relaxed) {
                    eprintln!("Janus session {session}: {e}");
                }
                return;
            }
        };
        // Hang-ups of a room being taken down are not news.
        if closing.load(Ordering::Relaxed) {
            return;
        }
        for event in events {
            let Some(event) = translate(event, sids) else {
                continue;
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    }
}

/// The worker event a Janus event stands for, if any.
fn translate(event: Incoming, sids: &Mutex<HashMap<u64, String>>) -> Option<WorkerEvent> {
    let sid = sids.lock().ok()?.get(&event.sender?)?.clone();
    match event.janus {
        Kind::Event => {
            if let Some(jsep) = event.jsep {
                return match jsep.kind.as_str() {
                    "answer" => Some(WorkerEvent::Answer {
                        participant_sid: sid,
                        sdp: jsep.sdp,
                    }),
                    "offer" => Some(WorkerEvent::Offer {
                        participant_sid: sid,
                        sdp: jsep.sdp,
                    }),
                    _ => None,
                };
            }
            let reply = event.plugindata?.data;
            Some(WorkerEvent::Error {
                participant_sid: Some(sid),
                code: reply.error_code?,
                message: format!("Janus VideoRoom: {}", reply.error.unwrap_or_default()),
            })
        }
        Kind::Hangup => {
            eprintln!(
                "Janus hung up on {sid}: {}",
                event.reason.as_deref().unwrap_or("no reason given")
            );
            Some(WorkerEvent::ParticipantDisconnected {
                identity: sid.to_lowercase(),
                participant_sid: sid,
                reason: DisconnectReason::MediaFailed,
                code: None,
            })
        }
        _ => None,
    }
}
