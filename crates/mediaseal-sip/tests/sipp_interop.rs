//! Interop with a real SIP peer: SIPp 3.6.1 (Debian `sip-tester`, installed by
//! `scripts/setup.sh`). These tests are the IO shell: they own a UDP (or TCP) socket on
//! 127.0.0.1 and drive the sans-IO [`Endpoint`] and [`Dialog`] with real time.
//!
//! - `sipp -sn uac` calls the core, which answers 180 and 200 (SDP answer built by the policy
//!   and the SDP module), receives the ACK and the BYE, and answers 200;
//! - the same over TCP (the stream framer against a real peer);
//! - the core calls `sipp -sn uas`: INVITE, 180, 200, ACK, BYE, 200;
//! - UDP loss: the shell drops SIPp's first INVITE and first ACK; SIPp retransmits the INVITE,
//!   the core retransmits its 200 until SIPp re-sends the ACK.
//!
//! SIPp's exit status (0 = every call succeeded) and its final statistics screen are checked.
//! SIPp is required: the tests fail (they do not skip) if it is missing.

#![allow(clippy::disallowed_methods)] // tests and benches read the clock for an epoch

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mediaseal_sip::dialog::{Dialog, DialogState, new_invite};
use mediaseal_sip::message::{
    HeaderName, Host, Method, NameAddr, ParseLimits, Request, Response, StatusCode, StreamFramer,
    Transport, Uri,
};
use mediaseal_sip::policy::evaluate_offer;
use mediaseal_sip::sdp::{AudioConfig, SessionDescription, audio_answer, audio_offer};
use mediaseal_sip::transaction::{
    ClientTransactionId, Endpoint, EndpointConfig, Event, Output, Target, TimerConfig,
};

/// A SIPp process, killed by PID when dropped.
struct Sipp {
    child: Child,
    screen: PathBuf,
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.screen);
    }
}

impl Sipp {
    fn spawn(name: &str, args: &[&str]) -> Self {
        let sipp = which_sipp();
        let screen = std::env::temp_dir().join(format!(
            "mediaseal-sip-{}-{name}.screen",
            std::process::id()
        ));
        let mut cmd = Command::new(sipp);
        cmd.args(args)
            .args([
                "-nostdin",
                "-timeout",
                "15s",
                "-timeout_error",
                "-trace_screen",
                "-screen_file",
            ])
            .arg(&screen)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("start sipp");
        Self { child, screen }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll sipp")
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// The final statistics screen.
    fn screen(&self) -> String {
        std::fs::read_to_string(&self.screen).unwrap_or_default()
    }
}

fn which_sipp() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file())
        .expect("SIPp is required for this test: run scripts/setup.sh (Debian package sip-tester)")
}

fn free_port() -> u16 {
    mediaseal_test_support::free_port()
}

/// SIPp's `-mp`: it binds that port and the three after it (RTCP, video RTP and RTCP).
fn sipp_media_port() -> u16 {
    mediaseal_test_support::free_ports(4)
}

/// `(messages, retransmissions)` for the first row of SIPp's message table for `what` with
/// `arrow` (`---------->` is the caller→callee direction). SIPp writes `INVITE ---------->` on
/// the UAC screen and `----------> INVITE` on the UAS screen.
fn sipp_counts(screen: &str, arrow: &str, what: &str) -> Option<(u32, u32)> {
    screen.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == arrow)?;
        let name_at = if at > 0 && words.get(at - 1) == Some(&what) {
            at
        } else if words.get(at + 1) == Some(&what) {
            at + 1
        } else {
            return None;
        };
        let nums: Vec<u32> = words[name_at + 1..]
            .iter()
            .filter_map(|w| w.parse().ok())
            .collect();
        Some((*nums.first()?, *nums.get(1)?))
    })
}

/// SIPp's cumulative "Successful call" count.
fn sipp_successful_calls(screen: &str) -> Option<u32> {
    screen
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with("Successful call"))
        .find_map(|l| l.rsplit('|').next()?.trim().parse().ok())
}

fn endpoint(port: u16, transport: Transport) -> Endpoint {
    let mut cfg = EndpointConfig::new(Host::V4("127.0.0.1".parse().unwrap()));
    match transport {
        Transport::Udp => cfg.udp_port = port,
        Transport::Tcp => cfg.tcp_port = port,
        Transport::Tls => cfg.tls_port = port,
    }
    cfg.user_agent = Some("mediaseal-sip-test".into());
    cfg.timers = TimerConfig {
        t1: Duration::from_millis(500),
        ..TimerConfig::default()
    };
    Endpoint::new(cfg)
}

/// What the UAS side saw.
#[derive(Debug, Default)]
struct UasLog {
    invites: u32,
    acks: u32,
    byes: u32,
    dialog_state: Option<DialogState>,
    answered_codec_pt: Option<u8>,
}

/// The core as UAS: answers INVITE with 180 + 200 (policy + SDP answer), takes the ACK,
/// answers BYE with 200.
struct Uas {
    dialog: Option<Dialog>,
    log: UasLog,
    contact: String,
}

impl Uas {
    fn new(port: u16) -> Self {
        Self {
            dialog: None,
            log: UasLog::default(),
            contact: format!("<sip:core@127.0.0.1:{port}>"),
        }
    }

    fn on_event(&mut self, ep: &mut Endpoint, event: Event, now: Instant) {
        match event {
            Event::NewRequest {
                id,
                request,
                transport,
                ..
            } if request.method == Method::Invite => {
                self.log.invites += 1;
                let offer = SessionDescription::parse(&request.body).ok();
                let accepted = evaluate_offer(false, transport, offer.as_ref())
                    .expect("policy accepts SIPp's RTP/AVP offer");
                let cfg = AudioConfig::new("127.0.0.1".parse().unwrap(), 40000);
                let answer =
                    audio_answer(offer.as_ref().unwrap(), accepted.media_index, &cfg, None)
                        .unwrap();
                self.log.answered_codec_pt = Some(answer.payload_type);
                let tag = mediaseal_sip::ids::new_tag();
                let ringing = Response::for_request(&request, StatusCode::RINGING)
                    .with_to_tag(&tag)
                    .with_header(HeaderName::CONTACT, &self.contact);
                ep.respond(id, ringing, now).unwrap();
                let ok = Response::for_request(&request, StatusCode::OK)
                    .with_to_tag(&tag)
                    .with_header(HeaderName::CONTACT, &self.contact)
                    .with_body("application/sdp", answer.sdp.to_bytes());
                self.dialog = Some(Dialog::new_uas(&request, &ok).unwrap());
                ep.respond(id, ok, now).unwrap();
            }
            Event::Ack {
                request, invite, ..
            } => {
                assert!(invite.is_some(), "ACK matched the INVITE's 2xx");
                if let Some(d) = &mut self.dialog {
                    d.receive_request(&request).unwrap();
                }
                self.log.acks += 1;
            }
            Event::NewRequest { id, request, .. } if request.method == Method::Bye => {
                self.log.byes += 1;
                let d = self.dialog.as_mut().expect("BYE after INVITE");
                d.receive_request(&request).unwrap();
                self.log.dialog_state = Some(d.state());
                ep.respond(id, Response::for_request(&request, StatusCode::OK), now)
                    .unwrap();
            }
            Event::NewRequest { id, request, .. } => {
                ep.respond(
                    id,
                    Response::for_request(&request, StatusCode::NOT_IMPLEMENTED).with_to_tag("x"),
                    now,
                )
                .unwrap();
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// Runs the UDP shell until SIPp exits. `drop_incoming` decides, per received datagram,
/// whether to simulate its loss.
fn udp_shell(
    sock: &UdpSocket,
    ep: &mut Endpoint,
    sipp: &mut Sipp,
    mut on_event: impl FnMut(&mut Endpoint, Event, Instant),
    mut drop_incoming: impl FnMut(&[u8]) -> bool,
) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(18);
    let mut buf = vec![0u8; 65536];
    loop {
        if let Some(status) = sipp.exited() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "call did not finish; sipp stderr: {}",
            sipp.stderr()
        );
        let now = Instant::now();
        let wait = ep
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        sock.set_read_timeout(Some(wait)).unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if !drop_incoming(&buf[..n]) {
                    ep.handle_datagram(&buf[..n], Transport::Udp, from, Instant::now());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
        ep.handle_timeout(Instant::now());
        while let Some(out) = ep.poll_output() {
            match out {
                Output::Transmit(t) => {
                    sock.send_to(&t.bytes, t.destination).unwrap();
                }
                Output::Event(e) => on_event(ep, e, Instant::now()),
            }
        }
    }
}

fn starts_with_method(datagram: &[u8], method: &str) -> bool {
    datagram.starts_with(format!("{method} ").as_bytes())
}

#[test]
fn sipp_uac_calls_the_core() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut ep = endpoint(port, Transport::Udp);
    let target = format!("127.0.0.1:{port}");
    let (sp, mp) = (free_port().to_string(), sipp_media_port().to_string());
    let mut sipp = Sipp::spawn(
        "uac",
        &[
            "-sn",
            "uac",
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &sp,
            "-mp",
            &mp,
            "-m",
            "1",
            "-d",
            "200",
        ],
    );
    let mut uas = Uas::new(port);
    let status = udp_shell(
        &sock,
        &mut ep,
        &mut sipp,
        |ep, e, now| uas.on_event(ep, e, now),
        |_| false,
    );
    let screen = sipp.screen();
    assert!(
        status.success(),
        "sipp exit {status}; stderr: {}\n{screen}",
        sipp.stderr()
    );
    assert_eq!(
        (uas.log.invites, uas.log.acks, uas.log.byes),
        (1, 1, 1),
        "{:?}",
        uas.log
    );
    assert_eq!(uas.log.dialog_state, Some(DialogState::Terminated));
    assert_eq!(uas.log.answered_codec_pt, Some(0));
    assert_eq!(
        sipp_counts(&screen, "<----------", "180"),
        Some((1, 0)),
        "{screen}"
    );
    assert_eq!(
        sipp_counts(&screen, "---------->", "INVITE"),
        Some((1, 0)),
        "{screen}"
    );
    assert_eq!(sipp_successful_calls(&screen), Some(1), "{screen}");
}

#[test]
fn sipp_uac_retransmits_through_udp_loss() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut ep = endpoint(port, Transport::Udp);
    let target = format!("127.0.0.1:{port}");
    let (sp, mp) = (free_port().to_string(), sipp_media_port().to_string());
    // The pause (-d) outlasts the core's first 200 retransmission (T1 = 500 ms), so the
    // re-sent ACK comes before SIPp's BYE.
    let mut sipp = Sipp::spawn(
        "uac-loss",
        &[
            "-sn",
            "uac",
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &sp,
            "-mp",
            &mp,
            "-m",
            "1",
            "-d",
            "1500",
        ],
    );
    let mut uas = Uas::new(port);
    let (mut dropped_invite, mut dropped_ack) = (false, false);
    let status = udp_shell(
        &sock,
        &mut ep,
        &mut sipp,
        |ep, e, now| uas.on_event(ep, e, now),
        |d| {
            if !dropped_invite && starts_with_method(d, "INVITE") {
                dropped_invite = true;
                return true;
            }
            if !dropped_ack && starts_with_method(d, "ACK") {
                dropped_ack = true;
                return true;
            }
            false
        },
    );
    let screen = sipp.screen();
    assert!(
        status.success(),
        "sipp exit {status}; stderr: {}\n{screen}",
        sipp.stderr()
    );
    assert!(dropped_invite && dropped_ack);
    assert_eq!(
        (uas.log.invites, uas.log.acks, uas.log.byes),
        (1, 1, 1),
        "{:?}",
        uas.log
    );
    // SIPp retransmitted its INVITE once; we retransmitted the 200 (seen by SIPp as one
    // retransmission) and SIPp answered it with its ACK again.
    assert_eq!(
        sipp_counts(&screen, "---------->", "INVITE"),
        Some((1, 1)),
        "{screen}"
    );
    assert_eq!(
        sipp_counts(&screen, "<----------", "200"),
        Some((1, 1)),
        "{screen}"
    );
    assert_eq!(
        sipp_counts(&screen, "---------->", "ACK"),
        Some((1, 1)),
        "{screen}"
    );
    assert!(ep.stats().retransmissions_sent >= 1, "{:?}", ep.stats());
    assert_eq!(sipp_successful_calls(&screen), Some(1), "{screen}");
}

#[test]
fn sipp_uac_calls_the_core_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut ep = endpoint(port, Transport::Tcp);
    let target = format!("127.0.0.1:{port}");
    let sp = free_port().to_string();
    let mp = sipp_media_port().to_string();
    let mut sipp = Sipp::spawn(
        "uac-tcp",
        &[
            "-sn",
            "uac",
            "-t",
            "t1",
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &sp,
            "-mp",
            &mp,
            "-m",
            "1",
            "-d",
            "200",
        ],
    );
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut stream, peer): (TcpStream, SocketAddr) = loop {
        match listener.accept() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "SIPp never connected: {}",
                    sipp.stderr()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut framer = StreamFramer::new(ParseLimits::default());
    let mut uas = Uas::new(port);
    let mut buf = vec![0u8; 16384];
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = sipp.exited() {
            break s;
        }
        assert!(Instant::now() < deadline, "TCP call did not finish");
        match stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => framer.push(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
        while let Some(frame) = framer.next_message() {
            let msg = frame
                .expect("SIPp frames correctly")
                .expect("SIPp's messages parse");
            ep.handle_message(msg, Transport::Tcp, peer, Instant::now());
        }
        ep.handle_timeout(Instant::now());
        while let Some(out) = ep.poll_output() {
            match out {
                Output::Transmit(t) => {
                    assert_eq!((t.transport, t.destination), (Transport::Tcp, peer));
                    stream.write_all(&t.bytes).unwrap();
                }
                Output::Event(e) => uas.on_event(&mut ep, e, Instant::now()),
            }
        }
    };
    let screen = sipp.screen();
    assert!(
        status.success(),
        "sipp exit {status}; stderr: {}\n{screen}",
        sipp.stderr()
    );
    assert_eq!(
        (uas.log.invites, uas.log.acks, uas.log.byes),
        (1, 1, 1),
        "{:?}",
        uas.log
    );
    assert_eq!(
        ep.stats().retransmissions_sent,
        0,
        "no request retransmission over TCP"
    );
}

#[test]
fn core_calls_sipp_uas() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut ep = endpoint(port, Transport::Udp);
    let (sp, mp) = (free_port(), sipp_media_port().to_string());
    let mut sipp = Sipp::spawn(
        "uas",
        &[
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &sp.to_string(),
            "-mp",
            &mp,
            "-m",
            "1",
        ],
    );
    // SIPp binds within milliseconds; an INVITE sent earlier is simply retransmitted (timer A).
    let sipp_addr: SocketAddr = format!("127.0.0.1:{sp}").parse().unwrap();
    let mut invite = new_invite(
        Uri::parse(&format!("sip:service@{sipp_addr}")).unwrap(),
        NameAddr::parse("\"mediaseal\" <sip:core@127.0.0.1>").unwrap(),
        &NameAddr::parse(&format!("<sip:service@{sipp_addr}>")).unwrap(),
        &NameAddr::parse(&format!("<sip:core@127.0.0.1:{port}>")).unwrap(),
        None,
    );
    let offer = audio_offer(&AudioConfig::new("127.0.0.1".parse().unwrap(), 40010), &[]);
    invite.set_body("application/sdp", offer.to_bytes());
    let target = Target {
        transport: Transport::Udp,
        addr: sipp_addr,
    };
    let invite_id: ClientTransactionId = ep.send_request(invite, target, Instant::now()).unwrap();

    let mut dialog: Option<Dialog> = None;
    let mut bye_id = None;
    let mut bye_at: Option<Instant> = None;
    let mut seen: Vec<u16> = Vec::new();
    let mut bye_ok = false;
    let mut answer_sdp: Option<SessionDescription> = None;
    let status = {
        let sock = &sock;
        let deadline = Instant::now() + Duration::from_secs(18);
        let mut buf = vec![0u8; 65536];
        loop {
            if let Some(s) = sipp.exited() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "call did not finish; sipp: {}",
                sipp.stderr()
            );
            sock.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                ep.handle_datagram(&buf[..n], Transport::Udp, from, Instant::now());
            }
            let now = Instant::now();
            ep.handle_timeout(now);
            if let (Some(at), Some(d)) = (bye_at, dialog.as_mut())
                && now >= at
                && bye_id.is_none()
            {
                let bye: Request = d.bye();
                let t = d.next_hop().expect("SIPp's Contact is an IP literal");
                bye_id = Some(ep.send_request(bye, t, now).unwrap());
            }
            while let Some(out) = ep.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        sock.send_to(&t.bytes, t.destination).unwrap();
                    }
                    Output::Event(Event::Response { id, response }) if id == invite_id => {
                        seen.push(response.status.as_u16());
                        if response.status.is_success() {
                            let sent = ep.client_request(invite_id).unwrap().clone();
                            let mut d = Dialog::new_uac(&sent, &response).unwrap();
                            answer_sdp = SessionDescription::parse(&response.body).ok();
                            let t = d.next_hop().unwrap();
                            ep.send_ack(invite_id, d.ack(), t, Instant::now()).unwrap();
                            dialog = Some(d);
                            bye_at = Some(Instant::now() + Duration::from_millis(300));
                        }
                    }
                    Output::Event(Event::Response { id, response }) if Some(id) == bye_id => {
                        bye_ok = response.status == StatusCode::OK;
                    }
                    Output::Event(e) => panic!("unexpected event {e:?}"),
                }
            }
        }
    };
    let screen = sipp.screen();
    assert!(
        status.success(),
        "sipp exit {status}; stderr: {}\n{screen}",
        sipp.stderr()
    );
    assert!(seen.contains(&180) && seen.contains(&200), "{seen:?}");
    assert!(bye_ok, "BYE answered 200");
    assert_eq!(dialog.unwrap().state(), DialogState::Terminated);
    let answer = answer_sdp.expect("SIPp's 200 has SDP");
    assert_eq!(answer.media[0].formats, ["0"]);
    assert_eq!(
        sipp_counts(&screen, "---------->", "ACK").map(|c| c.0),
        Some(1),
        "{screen}"
    );
    assert_eq!(
        sipp_counts(&screen, "---------->", "BYE").map(|c| c.0),
        Some(1),
        "{screen}"
    );
}
