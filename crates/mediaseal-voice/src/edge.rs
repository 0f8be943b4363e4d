//! The signalling task: SIP transports (UDP, TCP, TLS) around the sans-IO [`CallCore`], and
//! the effects it asks for (domain lookups, webhooks, prompts, recordings, relay commands).
//!
//! One tokio task owns the core. Socket readers, connection tasks, lookups, webhooks and the
//! recorder consumers run as their own tasks and report back on channels, so the core only
//! ever sees one input at a time and never waits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediaseal_call::b2bua::Output;
use mediaseal_call::prompt::{self, MAX_PROMPT_SAMPLES};
use mediaseal_call::recording::TapTracks;
use mediaseal_call::relay::PromptAudio;
use mediaseal_call::{
    CallCore, CallId, Domain, Effect, FetchFailure, FetchId, MediaCommand, MediaEvent, Prompt,
    RecordingId, WebhookKind,
};
use mediaseal_sip::message::{ParseLimits, SipMessage, StreamFramer, Transport};
use mediaseal_sip::transaction::Transmit;
use mediaseal_twiml::Repeat;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::Seams;
use crate::metrics::VoiceMetrics;
use crate::recorder::{self, Finished, TapSender};
use crate::relay::{RelayCommand, RelayNotice, RelayPool};
use crate::speech::Espeak;
use crate::webhook::fetch_audio;

/// Largest `<Play>` download.
const MAX_AUDIO_BYTES: usize = 32 * 1024 * 1024;
/// How long a TCP/TLS connection (and handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Inputs of the signalling task.
#[derive(Debug)]
pub(crate) enum EdgeEvent {
    Datagram(Vec<u8>, SocketAddr),
    Stream(SipMessage, Transport, SocketAddr),
    ConnectionUp {
        peer: SocketAddr,
        transport: Transport,
        writer: mpsc::Sender<Vec<u8>>,
    },
    ConnectionDown {
        peer: SocketAddr,
        transport: Transport,
        connect_failed: bool,
    },
    DomainFound(CallId, Option<Domain>),
    Resolved(CallId, Option<SocketAddr>),
    WebhookDone(CallId, FetchId, Result<Vec<u8>, FetchFailure>),
    PromptReady {
        call: CallId,
        generation: u64,
        prompts: Vec<(PromptAudio, Repeat)>,
    },
    RecordingReady {
        call: CallId,
        recording: RecordingId,
        tracks: TapTracks,
        sender: TapSender,
        /// The row as it will be published (for the start-recording API).
        row: Option<Box<mediaseal_store::model::Recording>>,
    },
    /// The API ends a live call ([`crate::live::EdgeLiveCalls`]).
    HangUp {
        account_sid: String,
        call_sid: String,
        mode: mediaseal_call::HangUpMode,
        reply: tokio::sync::oneshot::Sender<Result<(), mediaseal_call::HangUpError>>,
    },
    /// The API starts recording a live call.
    StartApiRecording {
        account_sid: String,
        call_sid: String,
        options: Box<mediaseal_call::ApiRecording>,
        reply: crate::live::RecordingReply,
    },
    /// The API gives a live call new TwiML.
    Redirect {
        account_sid: String,
        call_sid: String,
        redirect: Box<mediaseal_call::Redirect>,
        reply: tokio::sync::oneshot::Sender<Result<(), mediaseal_call::RedirectError>>,
    },
    /// The API places a call.
    Originate {
        request: Box<mediaseal_call::Originate>,
        reply: tokio::sync::oneshot::Sender<Result<String, mediaseal_call::OriginateError>>,
    },
    /// The API pauses, resumes or stops a recording it started.
    ControlApiRecording {
        account_sid: String,
        call_sid: String,
        recording_sid: String,
        control: mediaseal_call::RecordingControl,
        reply: crate::live::RecordingReply,
    },
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordingState {
    Starting { stop: bool },
    Running,
}

pub(crate) struct Edge {
    pub(crate) core: CallCore,
    pub(crate) udp: Option<Arc<UdpSocket>>,
    pub(crate) conns: HashMap<(Transport, SocketAddr), mpsc::Sender<Vec<u8>>>,
    pub(crate) tls_names: HashMap<SocketAddr, String>,
    pub(crate) connector: Option<TlsConnector>,
    pub(crate) events: UnboundedSender<EdgeEvent>,
    pub(crate) finished: UnboundedSender<Finished>,
    pub(crate) seams: Seams,
    /// Status changes for the ledger, written one after another by [`ledger_writer`].
    pub(crate) ledger_updates: UnboundedSender<mediaseal_call::CallUpdate>,
    pub(crate) relay: RelayPool,
    pub(crate) metrics: Arc<VoiceMetrics>,
    pub(crate) http: crate::webhook::AudioClient,
    pub(crate) speech: Espeak,
    pub(crate) recorder_queue: usize,
    pub(crate) play_generation: HashMap<CallId, u64>,
    pub(crate) recordings: HashMap<(CallId, RecordingId), RecordingState>,
    /// The API's recordings: pending starts, running ones by SID, pause switches.
    pub(crate) live: crate::live::LiveState,
}

impl Edge {
    pub(crate) async fn run(
        mut self,
        mut events: UnboundedReceiver<EdgeEvent>,
        mut notices: UnboundedReceiver<RelayNotice>,
        mut finished: UnboundedReceiver<Finished>,
    ) {
        loop {
            let wake = self
                .core
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                ev = events.recv() => match ev {
                    None | Some(EdgeEvent::Shutdown) => break,
                    Some(ev) => self.on_event(ev),
                },
                Some(n) = notices.recv() => {
                    let now = Instant::now();
                    match n {
                        RelayNotice::Media(call, ev) => self.core.media_event(call, ev, now),
                        // Only the end of the prompts the core asked for last: one that
                        // finished while a newer `Play` or a stop was on its way (a redirect,
                        // the next verb) would cut the new prompts short.
                        RelayNotice::PlaybackDone(call, generation) => {
                            if self.play_generation.get(&call) == Some(&generation) {
                                self.core.media_event(call, MediaEvent::PlaybackDone, now);
                            }
                        }
                        RelayNotice::OpenFailed(call, side) => self.core.media_failed(call, side, now),
                    }
                }
                Some(f) = finished.recv() => {
                    self.recordings.remove(&(f.call, f.recording));
                    self.live.pauses.remove(&(f.call, f.recording));
                    self.live.running.retain(|_, (c, r, _)| (*c, *r) != (f.call, f.recording));
                    if let Some((call_sid, reply)) = self.live.starting.remove(&(f.call, f.recording)) {
                        // Ended before it started: refused under the account's settings, or
                        // the store failed (logged where it happened).
                        let _ = reply.send(Err(mediaseal_service::calls::LiveCallError::RecordingFailed {
                            call_sid,
                            reason: "refused under the account's RecordingSettings or not stored; see the Recordings list and the server log".to_owned(),
                        }));
                    }
                    self.core.recording_finished(f.call, f.recording, f.info, Instant::now());
                }
                () = tokio::time::sleep_until(wake) => self.core.handle_timeout(Instant::now()),
            }
            self.drain();
        }
        self.relay.shutdown();
    }

    fn on_event(&mut self, ev: EdgeEvent) {
        let now = Instant::now();
        match ev {
            EdgeEvent::Datagram(bytes, source) => self.core.handle_datagram(&bytes, source, now),
            EdgeEvent::Stream(msg, transport, source) => {
                self.core.handle_message(msg, transport, source, now);
            }
            EdgeEvent::ConnectionUp {
                peer,
                transport,
                writer,
            } => {
                self.conns.insert((transport, peer), writer);
            }
            EdgeEvent::ConnectionDown {
                peer,
                transport,
                connect_failed,
            } => {
                self.conns.remove(&(transport, peer));
                if connect_failed {
                    self.core.transport_error(transport, peer, now);
                }
            }
            EdgeEvent::DomainFound(call, domain) => self.core.domain_found(call, domain, now),
            EdgeEvent::Resolved(call, addr) => self.core.resolved(call, addr, now),
            EdgeEvent::WebhookDone(call, fetch, result) => {
                self.core.webhook_done(call, fetch, result, now);
            }
            EdgeEvent::PromptReady {
                call,
                generation,
                prompts,
            } => {
                if self.play_generation.get(&call) == Some(&generation) {
                    self.relay.send(RelayCommand::Play {
                        call,
                        prompts,
                        generation,
                    });
                }
            }
            EdgeEvent::RecordingReady {
                call,
                recording,
                tracks,
                sender,
                row,
            } => {
                if let Some((_, reply)) = self.live.starting.remove(&(call, recording)) {
                    match row {
                        Some(row) => {
                            self.live
                                .running
                                .insert(row.sid.clone(), (call, recording, (*row).clone()));
                            let _ = reply.send(Ok(*row));
                        }
                        None => {
                            let _ = reply.send(Err(
                                mediaseal_service::calls::LiveCallError::RecordingFailed {
                                    call_sid: self
                                        .core
                                        .call_sid(call)
                                        .unwrap_or_default()
                                        .to_owned(),
                                    reason: "the call recorder keeps no Recording row".to_owned(),
                                },
                            ));
                        }
                    }
                } else if let Some(row) = row
                    .filter(|r| r.source == mediaseal_call::RecordingSource::OutboundApi.as_str())
                {
                    // `Record=true` of `POST …/Calls.json`: the API controls it by its SID
                    // like a recording it started.
                    self.live
                        .running
                        .insert(row.sid.clone(), (call, recording, *row));
                }
                let state = self.recordings.get_mut(&(call, recording));
                if let Some(s @ RecordingState::Starting { stop: false }) = state {
                    *s = RecordingState::Running;
                    self.relay.send(RelayCommand::StartTap {
                        call,
                        tracks,
                        sink: Box::new(sender),
                    });
                }
                // Otherwise the sender drops here: the consumer finishes an empty recording
                // and reports it.
            }
            EdgeEvent::HangUp {
                account_sid,
                call_sid,
                mode,
                reply,
            } => {
                let result = self.core.hang_up(&account_sid, &call_sid, mode, now);
                let _ = reply.send(result);
            }
            EdgeEvent::StartApiRecording {
                account_sid,
                call_sid,
                options,
                reply,
            } => match self
                .core
                .start_api_recording(&account_sid, &call_sid, *options, now)
            {
                // Answered once the recorder has the row (`RecordingReady`) or gave up.
                Ok(key) => {
                    self.live.starting.insert(key, (call_sid, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(crate::live::recording_error(e, &call_sid, "")));
                }
            },
            EdgeEvent::ControlApiRecording {
                account_sid,
                call_sid,
                recording_sid,
                control,
                reply,
            } => {
                let Some((_, recording, row)) = self
                    .live
                    .running
                    .get(&recording_sid)
                    .filter(|(c, _, _)| self.core.call_sid(*c) == Some(call_sid.as_str()))
                    .cloned()
                else {
                    let _ = reply.send(Err(crate::live::recording_error(
                        mediaseal_call::LiveRecordingError::NotRecording,
                        &call_sid,
                        &recording_sid,
                    )));
                    return;
                };
                let result = self
                    .core
                    .control_api_recording(&account_sid, &call_sid, recording, control, now)
                    .map(|()| row)
                    .map_err(|e| crate::live::recording_error(e, &call_sid, &recording_sid));
                let _ = reply.send(result);
            }
            EdgeEvent::Redirect {
                account_sid,
                call_sid,
                redirect,
                reply,
            } => {
                let result = self.core.redirect(&account_sid, &call_sid, *redirect, now);
                let _ = reply.send(result);
            }
            EdgeEvent::Originate { request, reply } => {
                let result = self.core.originate(*request, now).map(|(_, sid)| sid);
                let _ = reply.send(result);
            }
            EdgeEvent::Shutdown => {}
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Transmit(t) => self.transmit(t),
                Output::Effect(e) => self.effect(e),
            }
        }
        self.metrics.set_core(self.core.stats());
    }

    fn transmit(&mut self, t: Transmit) {
        match t.transport {
            Transport::Udp => {
                if let Some(udp) = &self.udp
                    && udp.try_send_to(&t.bytes, t.destination).is_err()
                {
                    let udp = udp.clone();
                    tokio::spawn(async move {
                        let _ = udp.send_to(&t.bytes, t.destination).await;
                    });
                }
            }
            Transport::Tcp | Transport::Tls => {
                let key = (t.transport, t.destination);
                if let Some(w) = self.conns.get(&key) {
                    if w.try_send(t.bytes).is_err() {
                        // Full or closed: the connection is stuck or gone.
                        self.conns.remove(&key);
                        self.core
                            .transport_error(t.transport, t.destination, Instant::now());
                    }
                    return;
                }
                self.connect(t);
            }
        }
    }

    /// Opens a connection for a message to a peer we have no connection with.
    fn connect(&mut self, t: Transmit) {
        let (writer, queue) = mpsc::channel::<Vec<u8>>(64);
        let _ = writer.try_send(t.bytes);
        let peer = t.destination;
        let transport = t.transport;
        self.conns.insert((transport, peer), writer);
        let events = self.events.clone();
        let connector = self.connector.clone();
        let name = self
            .tls_names
            .get(&peer)
            .cloned()
            .unwrap_or_else(|| peer.ip().to_string());
        tokio::spawn(async move {
            let failed = || EdgeEvent::ConnectionDown {
                peer,
                transport,
                connect_failed: true,
            };
            let Ok(Ok(tcp)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await
            else {
                let _ = events.send(failed());
                return;
            };
            let _ = tcp.set_nodelay(true);
            if transport == Transport::Tcp {
                run_connection(tcp, peer, transport, queue, events).await;
                return;
            }
            let (Some(connector), Ok(server_name)) =
                (connector, ServerName::try_from(name.clone()))
            else {
                tracing::warn!(%peer, name, "no TLS client configuration or bad server name");
                let _ = events.send(failed());
                return;
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name, tcp)).await {
                Ok(Ok(tls)) => run_connection(tls, peer, transport, queue, events).await,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, name, error = %e, "outbound SIP TLS handshake failed");
                    let _ = events.send(failed());
                }
                Err(_) => {
                    tracing::warn!(%peer, name, "outbound SIP TLS handshake timed out");
                    let _ = events.send(failed());
                }
            }
        });
    }

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::LookupDomain { call, name } => {
                let dir = self.seams.directory.clone();
                let events = self.events.clone();
                tokio::spawn(async move {
                    let found = match dir.domain_by_name(&name).await {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::error!(domain = name, error = %e, "domain lookup failed");
                            None
                        }
                    };
                    let _ = events.send(EdgeEvent::DomainFound(call, found));
                });
            }
            Effect::Resolve {
                call, host, port, ..
            } => {
                let events = self.events.clone();
                tokio::spawn(async move {
                    let addr = tokio::net::lookup_host((host.as_str(), port))
                        .await
                        .ok()
                        .and_then(|mut a| a.next());
                    let _ = events.send(EdgeEvent::Resolved(call, addr));
                });
            }
            Effect::TlsServerName { addr, server_name } => {
                self.tls_names.insert(addr, server_name);
            }
            Effect::Webhook(request) => {
                let hooks = self.seams.webhooks.clone();
                let events = self.events.clone();
                tokio::spawn(async move {
                    let result = hooks.send(&request).await;
                    if let Err(f) = &result {
                        // Host and path only: URLs may carry user:password.
                        tracing::warn!(
                            call = %request.call,
                            host = request.url.host_str().unwrap_or_default(),
                            path = request.url.path(),
                            code = f.code,
                            "webhook failed"
                        );
                    }
                    if request.kind == WebhookKind::Twiml {
                        let _ = events.send(EdgeEvent::WebhookDone(
                            request.call,
                            request.fetch,
                            result,
                        ));
                    }
                });
            }
            Effect::Media(command) => self.media(command),
            Effect::StartRecording(request) => {
                let key = (request.call, request.recording);
                self.recordings
                    .insert(key, RecordingState::Starting { stop: false });
                let recorder = self.seams.recorder.clone();
                let events = self.events.clone();
                let finished = self.finished.clone();
                let capacity = self.recorder_queue.max(1);
                let paused = recorder::PauseFlag::default();
                self.live.pauses.insert(key, paused.clone());
                tokio::spawn(async move {
                    let sink = match recorder.start(&request).await {
                        Ok(Some(sink)) => sink,
                        Ok(None) => {
                            tracing::warn!(call = %request.call, "recording refused under the account's settings");
                            let _ = finished.send(Finished {
                                call: request.call,
                                recording: request.recording,
                                info: None,
                            });
                            return;
                        }
                        Err(e) => {
                            tracing::error!(call = %request.call, error = %e, "recording could not start");
                            let _ = finished.send(Finished {
                                call: request.call,
                                recording: request.recording,
                                info: None,
                            });
                            return;
                        }
                    };
                    let (tx, rx) = mpsc::channel(capacity);
                    let row = sink.recording().map(Box::new);
                    tokio::spawn(recorder::consume(
                        request.call,
                        request.recording,
                        request.layout,
                        rx,
                        sink,
                        finished,
                        paused,
                    ));
                    let _ = events.send(EdgeEvent::RecordingReady {
                        call: request.call,
                        recording: request.recording,
                        tracks: request.tracks,
                        sender: TapSender(tx),
                        row,
                    });
                });
            }
            Effect::StopRecording { call, recording } => {
                match self.recordings.get_mut(&(call, recording)) {
                    Some(RecordingState::Starting { stop }) => *stop = true,
                    Some(RecordingState::Running) => {
                        self.relay.send(RelayCommand::StopTap { call });
                    }
                    None => {}
                }
            }
            Effect::PauseRecording {
                call,
                recording,
                paused,
            } => {
                if let Some(flag) = self.live.pauses.get(&(call, recording)) {
                    flag.store(paused, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Effect::CallStatus(update) => {
                let _ = self.ledger_updates.send(update);
            }
            _ => {}
        }
    }

    fn media(&mut self, command: MediaCommand) {
        let relay = &mut self.relay;
        match command {
            MediaCommand::OpenLeg { call, side, port } => {
                relay.send(RelayCommand::Open { call, side, port });
            }
            MediaCommand::ConfigureLeg { call, side, setup } => {
                relay.send(RelayCommand::Configure { call, side, setup });
            }
            MediaCommand::CloseLeg { call, side } => {
                relay.send(RelayCommand::CloseLeg { call, side });
            }
            MediaCommand::Bridge { call, bridged } => {
                relay.send(RelayCommand::Bridge { call, bridged });
            }
            MediaCommand::Play { call, prompts } => {
                let generation = {
                    let g = self.play_generation.entry(call).or_default();
                    *g += 1;
                    *g
                };
                let events = self.events.clone();
                let http = self.http.clone();
                let speech = self.speech.clone();
                tokio::spawn(async move {
                    let prompts = render_prompts(prompts, &http, &speech).await;
                    let _ = events.send(EdgeEvent::PromptReady {
                        call,
                        generation,
                        prompts,
                    });
                });
            }
            MediaCommand::StopPlayback { call } => {
                *self.play_generation.entry(call).or_default() += 1;
                relay.send(RelayCommand::StopPlayback { call });
            }
            MediaCommand::ArmSilence { call, timeout } => {
                relay.send(RelayCommand::ArmSilence { call, timeout });
            }
            MediaCommand::Close { call } => {
                self.play_generation.remove(&call);
                relay.send(RelayCommand::Close { call });
                for (key, state) in self.recordings.iter_mut() {
                    if key.0 == call
                        && let RecordingState::Starting { stop } = state
                    {
                        *stop = true;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Turns prompts into audio: speech, downloads, tones. A prompt that fails is skipped (and
/// logged), as Twilio carries on with the next verb.
async fn render_prompts(
    prompts: Vec<(Prompt, Repeat)>,
    http: &crate::webhook::AudioClient,
    speech: &Espeak,
) -> Vec<(PromptAudio, Repeat)> {
    let mut out = Vec::with_capacity(prompts.len());
    for (p, repeat) in prompts {
        let audio = match p {
            Prompt::Say {
                text,
                voice,
                language,
            } => match speech
                .synthesize(&text, voice.as_deref(), language.as_deref())
                .await
            {
                Ok(pcm) => Some(PromptAudio::Pcm(pcm.into())),
                Err(e) => {
                    tracing::warn!(error = %e, "<Say> could not be synthesised");
                    None
                }
            },
            Prompt::Url(url) => match fetch_audio(http, &url, MAX_AUDIO_BYTES).await {
                Ok(bytes) => match prompt::decode_wav(&bytes) {
                    Ok(pcm) if pcm.len() <= MAX_PROMPT_SAMPLES => {
                        Some(PromptAudio::Pcm(pcm.into()))
                    }
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(host = url.host_str().unwrap_or_default(), path = url.path(), error = %e, "<Play> audio could not be decoded");
                        None
                    }
                },
                Err(f) => {
                    tracing::warn!(
                        host = url.host_str().unwrap_or_default(),
                        path = url.path(),
                        code = f.code,
                        "<Play> audio could not be fetched"
                    );
                    None
                }
            },
            Prompt::Digits(d) => Some(PromptAudio::Digits(d)),
            Prompt::Silence(d) => Some(PromptAudio::Silence(d)),
            Prompt::Beep => Some(PromptAudio::Pcm(prompt::tone(1000.0, 400, 8000).into())),
        };
        if let Some(a) = audio {
            out.push((a, repeat));
        }
    }
    out
}

/// Reads SIP messages from a stream and writes what the edge queues for it.
pub(crate) async fn run_connection<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut queue: mpsc::Receiver<Vec<u8>>,
    events: UnboundedSender<EdgeEvent>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    // RFC 5626 §3.5.1: a double-CRLF "ping" gets one CRLF back, written between queued
    // messages (never inside one). A full channel drops pongs: a flood of pings gets fewer.
    let (pongs, mut pong_rx) = mpsc::channel::<()>(4);
    let writer_task = tokio::spawn(async move {
        loop {
            let bytes: &[u8] = tokio::select! {
                queued = queue.recv() => match queued {
                    Some(bytes) => {
                        if writer.write_all(&bytes).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    None => break,
                },
                Some(()) = pong_rx.recv() => b"\r\n",
            };
            if writer.write_all(bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut framer = StreamFramer::new(ParseLimits::default());
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Some(next) = framer.next_message() {
            match next {
                Ok(Ok(msg)) => {
                    let _ = events.send(EdgeEvent::Stream(msg, transport, peer));
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "malformed SIP message on a stream");
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "SIP stream lost framing; closing");
                    break 'read;
                }
            }
        }
        for _ in 0..framer.take_pings() {
            let _ = pongs.try_send(());
        }
    }
    writer_task.abort();
    let _ = events.send(EdgeEvent::ConnectionDown {
        peer,
        transport,
        connect_failed: false,
    });
}

/// Accepts an inbound stream connection: registers its writer, then reads it.
pub(crate) async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    events: UnboundedSender<EdgeEvent>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (writer, queue) = mpsc::channel(64);
    let _ = events.send(EdgeEvent::ConnectionUp {
        peer,
        transport,
        writer,
    });
    run_connection(stream, peer, transport, queue, events).await;
}

pub(crate) async fn udp_reader(socket: Arc<UdpSocket>, events: UnboundedSender<EdgeEvent>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if events
                    .send(EdgeEvent::Datagram(buf[..n].to_vec(), from))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                // ICMP port unreachable surfaces here on Linux; keep reading.
                tracing::debug!(error = %e, "SIP UDP receive error");
            }
        }
    }
}

pub(crate) async fn tcp_acceptor(listener: TcpListener, events: UnboundedSender<EdgeEvent>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            peer,
            Transport::Tcp,
            events.clone(),
        ));
    }
}

pub(crate) async fn tls_acceptor(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    events: UnboundedSender<EdgeEvent>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let events = events.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(tls, peer, Transport::Tls, events).await,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "inbound SIP TLS handshake failed")
                }
                Err(_) => tracing::debug!(%peer, "inbound SIP TLS handshake timed out"),
            }
        });
    }
}

/// Writes the core's status changes to the ledger in the order the core made them: a call's
/// rows move only forward, and the status callbacks they carry are queued in that order, so a
/// change stored after a later one would lose its callback.
pub(crate) async fn ledger_writer(
    ledger: Arc<dyn crate::CallLedger>,
    mut updates: UnboundedReceiver<mediaseal_call::CallUpdate>,
) {
    while let Some(update) = updates.recv().await {
        ledger.call_updated(update).await;
    }
}
