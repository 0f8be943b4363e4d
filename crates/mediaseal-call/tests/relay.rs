//! The relay core with simulated peers and time: re-keying between legs, forgeries, latching,
//! DTMF, the recording tap under back-pressure, prompts, RTCP.

#![allow(clippy::disallowed_methods)] // tests and benches read the clock for an epoch

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mediaseal_call::LegSetup;
use mediaseal_call::g711::Law;
use mediaseal_call::recording::{FrameSink, TapFrame, TapTracks, Track};
use mediaseal_call::relay::{
    Component, DropReason, MediaEvent, PacketOutcome, PromptAudio, RelayCall, RelayConfig, Side,
};
use mediaseal_call::rtp::{RtpHeader, write_header};
use mediaseal_srtp::negotiate::SrtpKeys;
use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, MasterKey, OutboundSession, SessionConfig, SrtpProfile,
};
use mediaseal_twiml::Repeat;

struct Peer {
    /// Protects what the peer sends (the relay's inbound key for this leg).
    tx: OutboundSession,
    /// Unprotects what the relay sends (the relay's outbound key for this leg).
    rx: InboundSession,
    addr: SocketAddr,
    keys: SrtpKeys,
}

fn peer(profile: SrtpProfile, addr: &str) -> Peer {
    let ours = MasterKey::generate(profile).unwrap();
    let theirs = MasterKey::generate(profile).unwrap();
    let cfg = SessionConfig::default();
    Peer {
        tx: OutboundSession::new(&theirs, &cfg).unwrap(),
        rx: InboundSession::new(&ours, &cfg).unwrap(),
        addr: addr.parse().unwrap(),
        keys: SrtpKeys {
            profile,
            outbound: ours,
            inbound: theirs,
        },
    }
}

fn setup(p: &Peer, pt: u8, te: Option<u8>) -> LegSetup {
    LegSetup {
        srtp: Some(p.keys.clone()),
        remote_rtp: Some(p.addr),
        remote_rtcp: None,
        rtcp_mux: false,
        law: Law::Mu,
        payload_type: pt,
        telephone_event: te,
    }
}

fn relay(now: Instant) -> RelayCall {
    RelayCall::new(RelayConfig {
        session: SessionConfig::default(),
        wallclock: Duration::from_secs(1_700_000_000),
        started: now,
        seeds: [0x1111, 0x2222, 0x3333, 0x4444],
    })
}

fn audio_packet(seq: u16, ts: u32, ssrc: u32, pt: u8, fill: u8) -> Vec<u8> {
    let mut p = vec![0u8; 12 + 160 + MAX_TRAILER_LEN];
    write_header(&mut p, false, pt, seq, ts, ssrc);
    p[12..172].fill(fill);
    p.truncate(172);
    p
}

fn protect(peer: &mut Peer, mut p: Vec<u8>) -> Vec<u8> {
    peer.tx.protect_rtp_vec(&mut p).unwrap();
    p
}

fn feed(
    r: &mut RelayCall,
    side: Side,
    from: SocketAddr,
    pkt: &[u8],
    now: Instant,
) -> (PacketOutcome, Vec<u8>) {
    let mut buf = vec![0u8; 2048];
    buf[..pkt.len()].copy_from_slice(pkt);
    let o = r.handle_packet(side, Component::Rtp, from, &mut buf, pkt.len(), now);
    let out = match o {
        PacketOutcome::Forward(t) => buf[..t.len].to_vec(),
        _ => Vec::new(),
    };
    (o, out)
}

#[test]
fn every_packet_is_decrypted_and_re_encrypted_with_the_other_legs_key() {
    let now = Instant::now();
    let mut r = relay(now);
    let mut a = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.1:4000");
    let mut b = peer(SrtpProfile::AesCm128HmacSha1_32, "127.0.0.2:5000");
    r.set_leg(Side::Caller, setup(&a, 0, Some(101)), now)
        .unwrap();
    r.set_leg(Side::Callee, setup(&b, 0, Some(96)), now)
        .unwrap();
    r.set_bridged(true);
    for i in 0..100u16 {
        let plain = audio_packet(1000 + i, 8000 + u32::from(i) * 160, 0xabcd, 0, i as u8);
        let wire = protect(&mut a, plain.clone());
        let (o, out) = feed(&mut r, Side::Caller, a.addr, &wire, now);
        let PacketOutcome::Forward(t) = o else {
            panic!("{o:?}")
        };
        assert_eq!((t.side, t.destination), (Side::Callee, b.addr));
        // Nothing passed through: the bytes differ, and only B's key opens them.
        assert_ne!(out, wire);
        assert!(a.rx.unprotect_rtp_vec(&mut out.clone()).is_err());
        let mut opened = out.clone();
        b.rx.unprotect_rtp_vec(&mut opened).unwrap();
        let h = RtpHeader::parse(&opened).unwrap();
        assert_eq!(h.payload(&opened), &plain[12..]);
        assert_ne!(h.ssrc, 0xabcd, "the relay sends its own SSRC");
        // _80 in, _32 out: 10-byte tag in, 4-byte tag out.
        assert_eq!((wire.len(), out.len()), (182, 176));
    }
    // And back: B's packets reach A re-encrypted with A's outbound key; events get A's PT.
    let mut ev = audio_packet(7, 700, 0x99, 96, 0);
    ev.truncate(16);
    ev[12..16].copy_from_slice(&[5, 10, 0, 160]);
    let wire = protect(&mut b, ev);
    let (o, mut out) = feed(&mut r, Side::Callee, b.addr, &wire, now);
    assert!(
        matches!(o, PacketOutcome::Forward(t) if t.destination == a.addr),
        "{o:?}"
    );
    a.rx.unprotect_rtp_vec(&mut out).unwrap();
    assert_eq!(RtpHeader::parse(&out).unwrap().payload_type, 101);
    let c = r.take_counters();
    assert_eq!((c.received, c.forwarded, c.auth_failures), (101, 101, 0));
}

#[test]
fn forged_replayed_and_plain_packets_are_dropped_counted_and_never_move_the_latch() {
    let now = Instant::now();
    let mut r = relay(now);
    let mut a = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.1:4000");
    let mut b = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.2:5000");
    r.set_leg(Side::Caller, setup(&a, 0, None), now).unwrap();
    r.set_leg(Side::Callee, setup(&b, 0, None), now).unwrap();
    r.set_bridged(true);
    // A's real packets come from a NAT-rewritten address, not the SDP one.
    let real_a: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let attacker: SocketAddr = "203.0.113.66:6666".parse().unwrap();
    let good = protect(&mut a, audio_packet(1, 160, 1, 0, 1));
    assert!(matches!(
        feed(&mut r, Side::Caller, real_a, &good, now).0,
        PacketOutcome::Forward(_)
    ));
    // Wrong key.
    let mut mallory = peer(SrtpProfile::AesCm128HmacSha1_80, "0.0.0.0:1");
    let forged = protect(&mut mallory, audio_packet(2, 320, 1, 0, 9));
    assert_eq!(
        feed(&mut r, Side::Caller, attacker, &forged, now).0,
        PacketOutcome::Dropped(DropReason::AuthenticationFailed)
    );
    // Replay of a real packet.
    assert_eq!(
        feed(&mut r, Side::Caller, attacker, &good, now).0,
        PacketOutcome::Dropped(DropReason::Replayed)
    );
    // Plain RTP on a secure leg.
    let plain = audio_packet(3, 480, 1, 0, 9);
    assert_eq!(
        feed(&mut r, Side::Caller, attacker, &plain, now).0,
        PacketOutcome::Dropped(DropReason::AuthenticationFailed)
    );
    // Garbage.
    assert!(matches!(
        feed(&mut r, Side::Caller, attacker, &[0x80, 0, 1], now).0,
        PacketOutcome::Dropped(_)
    ));
    // B's audio still goes to the address A's authenticated packet latched.
    let from_b = protect(&mut b, audio_packet(1, 160, 2, 0, 3));
    let (o, _) = feed(&mut r, Side::Callee, b.addr, &from_b, now);
    assert!(
        matches!(o, PacketOutcome::Forward(t) if t.destination == real_a),
        "{o:?}"
    );
    let c = r.take_counters();
    assert_eq!(c.auth_failures, 2);
    assert_eq!(c.replays, 1);
    assert_eq!(c.other_drops, 1);
    assert_eq!(c.forwarded, 2);
}

#[test]
fn unbridged_audio_is_consumed_and_dtmf_reported_once_per_key() {
    let now = Instant::now();
    let mut r = relay(now);
    let mut a = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.1:4000");
    r.set_leg(Side::Caller, setup(&a, 0, Some(101)), now)
        .unwrap();
    let audio = protect(&mut a, audio_packet(1, 160, 5, 0, 0xff));
    assert_eq!(
        feed(&mut r, Side::Caller, a.addr, &audio, now).0,
        PacketOutcome::Consumed
    );
    let mut seq = 2u16;
    for (digit, ts) in [(1u8, 1000u32), (2, 2000), (11, 3000)] {
        for (flags, dur) in [
            (10u8, 160u16),
            (10, 320),
            (0x8a, 480),
            (0x8a, 480),
            (0x8a, 480),
        ] {
            let mut p = audio_packet(seq, ts, 5, 101, 0);
            p.truncate(16);
            p[12] = digit;
            p[13] = flags;
            p[14..16].copy_from_slice(&dur.to_be_bytes());
            seq += 1;
            let wire = protect(&mut a, p);
            assert_eq!(
                feed(&mut r, Side::Caller, a.addr, &wire, now).0,
                PacketOutcome::Consumed
            );
        }
    }
    let mut got = Vec::new();
    while let Some(e) = r.poll_event() {
        got.push(e);
    }
    assert_eq!(
        got,
        vec![
            MediaEvent::Digit('1'),
            MediaEvent::Digit('2'),
            MediaEvent::Digit('#')
        ]
    );
    // An unknown payload type is dropped.
    let odd = protect(&mut a, audio_packet(seq, 9000, 5, 13, 0));
    assert_eq!(
        feed(&mut r, Side::Caller, a.addr, &odd, now).0,
        PacketOutcome::Dropped(DropReason::UnknownPayloadType)
    );
}

#[derive(Clone)]
struct Bounded {
    frames: Arc<Mutex<Vec<TapFrame>>>,
    capacity: usize,
}

impl FrameSink for Bounded {
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame> {
        let mut f = self.frames.lock().unwrap();
        if f.len() >= self.capacity {
            return Err(frame);
        }
        f.push(frame);
        Ok(())
    }
}

#[test]
fn a_full_recorder_queue_drops_and_counts_frames_and_audio_keeps_flowing() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut a = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.1:4000");
    let mut b = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.2:5000");
    r.set_leg(Side::Caller, setup(&a, 0, None), t0).unwrap();
    let mut b_setup = setup(&b, 8, None);
    b_setup.law = Law::A;
    r.set_leg(Side::Callee, b_setup, t0).unwrap();
    r.set_bridged(true);
    let sink = Bounded {
        frames: Arc::new(Mutex::new(Vec::new())),
        capacity: 30,
    };
    r.start_tap(TapTracks::Both, Box::new(sink.clone()), t0);
    let mut forwarded = 0;
    for i in 0..50u16 {
        let now = t0 + Duration::from_millis(20 * u64::from(i));
        let pa = protect(&mut a, audio_packet(i, u32::from(i) * 160, 1, 0, 0x80));
        let pb = protect(&mut b, audio_packet(i, u32::from(i) * 160 + 99, 2, 8, 0x2a));
        for (side, from, p) in [(Side::Caller, a.addr, pa), (Side::Callee, b.addr, pb)] {
            if matches!(
                feed(&mut r, side, from, &p, now).0,
                PacketOutcome::Forward(_)
            ) {
                forwarded += 1;
            }
        }
    }
    assert_eq!(forwarded, 100, "a full tap never stops the audio");
    let c = r.take_counters();
    assert_eq!((c.tap_frames, c.tap_dropped), (30, 70));
    let frames = sink.frames.lock().unwrap();
    // Frames are placed on the timeline by RTP timestamp, decoded with each leg's law.
    let caller: Vec<&TapFrame> = frames.iter().filter(|f| f.track == Track::Caller).collect();
    assert_eq!(caller[1].position - caller[0].position, 160);
    assert_eq!(caller[0].samples[0], Law::Mu.decode(0x80));
    let callee = frames.iter().find(|f| f.track == Track::Callee).unwrap();
    assert_eq!(callee.samples[0], Law::A.decode(0x2a));
}

#[test]
fn prompts_play_to_the_caller_at_20_ms_and_report_the_end() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut a = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.1:4000");
    r.set_leg(Side::Caller, setup(&a, 0, Some(101)), t0)
        .unwrap();
    let pcm: Arc<[i16]> = mediaseal_call::prompt::tone(440.0, 200, 8000).into();
    r.play(
        vec![
            (PromptAudio::Pcm(pcm), Repeat::default()),
            (PromptAudio::Digits("7".into()), Repeat::default()),
        ],
        t0,
    );
    let mut buf = vec![0u8; 2048];
    let mut audio = 0;
    let mut events = 0;
    let mut seqs = Vec::new();
    let mut now = t0;
    let mut done = false;
    for _ in 0..100 {
        r.handle_timeout(now);
        while let Some(t) = r.poll_transmit(now, &mut buf) {
            if t.component == Component::Rtcp {
                continue;
            }
            let mut p = buf[..t.len].to_vec();
            a.rx.unprotect_rtp_vec(&mut p).unwrap();
            let h = RtpHeader::parse(&p).unwrap();
            seqs.push(h.sequence);
            match h.payload_type {
                0 => audio += 1,
                101 => events += 1,
                other => panic!("pt {other}"),
            }
        }
        if r.poll_event() == Some(MediaEvent::PlaybackDone) {
            done = true;
            break;
        }
        now += Duration::from_millis(20);
    }
    assert!(done);
    assert_eq!(audio, 10, "200 ms of audio");
    assert_eq!(events, 8, "one key: 5 event packets and 3 end packets");
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
}

#[test]
fn srtcp_with_32_bit_tags_is_accepted_on_32_legs_and_reports_use_80_bit_tags() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut a = peer(SrtpProfile::AesCm128HmacSha1_32, "127.0.0.1:4000");
    r.set_leg(Side::Caller, setup(&a, 0, None), t0).unwrap();
    // baresip's SRTCP on a _32 call: the 80-bit tag truncated to 32 bits.
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 1];
    rr.extend_from_slice(&[0u8; 24]);
    a.tx.protect_rtcp_vec(&mut rr).unwrap();
    let tag_at = rr.len() - 10;
    let mut short = rr[..tag_at].to_vec();
    short.extend_from_slice(&rr[tag_at..tag_at + 4]);
    let mut buf = vec![0u8; 2048];
    buf[..short.len()].copy_from_slice(&short);
    let o = r.handle_packet(
        Side::Caller,
        Component::Rtcp,
        a.addr,
        &mut buf,
        short.len(),
        t0,
    );
    assert_eq!(o, PacketOutcome::Consumed);
    // Our own reports after a packet was sent: 80-bit tags.
    r.play(
        vec![(PromptAudio::Pcm(vec![0i16; 160].into()), Repeat::default())],
        t0,
    );
    while r.poll_transmit(t0, &mut buf).is_some() {}
    let later = t0 + Duration::from_secs(6);
    r.handle_timeout(later);
    let mut report = None;
    while let Some(t) = r.poll_transmit(later, &mut buf) {
        if t.component == Component::Rtcp {
            report = Some(buf[..t.len].to_vec());
        }
    }
    let mut report = report.expect("a sender report");
    assert_eq!(report.len(), 28 + 4 + 10);
    a.rx.unprotect_rtcp_vec(&mut report).unwrap();
    assert_eq!(report[1], 200);
}

#[test]
fn silence_is_detected_for_record() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut a = peer(SrtpProfile::AesCm128HmacSha1_80, "127.0.0.1:4000");
    r.set_leg(Side::Caller, setup(&a, 0, None), t0).unwrap();
    r.arm_silence(Some(Duration::from_secs(2)), t0);
    // Loud audio for 1.5 s keeps resetting the clock…
    for i in 0..75u16 {
        let now = t0 + Duration::from_millis(20 * u64::from(i));
        let p = protect(&mut a, audio_packet(i, u32::from(i) * 160, 1, 0, 0x80));
        feed(&mut r, Side::Caller, a.addr, &p, now);
    }
    r.handle_timeout(t0 + Duration::from_millis(3000));
    assert_eq!(r.poll_event(), None);
    // …then 2 s of silence after the last speech ends the recording.
    r.handle_timeout(t0 + Duration::from_millis(3500));
    assert_eq!(r.poll_event(), Some(MediaEvent::SilenceElapsed));
}
