//! The media relay fed arbitrary datagrams on both legs (secure and plain, bridged, with a
//! recording tap and DTMF): nothing panics, nothing unauthenticated is forwarded from the
//! secure leg, and whatever is forwarded fits the buffer.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mediaseal_call::g711::Law;
use mediaseal_call::recording::{FrameSink, TapFrame, TapTracks};
use mediaseal_call::relay::{Component, PacketOutcome, RelayCall, RelayConfig, Side};
use mediaseal_call::LegSetup;
use mediaseal_srtp::negotiate::SrtpKeys;
use mediaseal_srtp::{MasterKey, SessionConfig, SrtpProfile};

struct Discard;

impl FrameSink for Discard {
    fn try_push(&mut self, frame: TapFrame) -> Result<(), TapFrame> {
        Err(frame)
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut r = RelayCall::new(RelayConfig {
        session: SessionConfig::default(),
        wallclock: Duration::from_secs(1),
        started: now,
        seeds: [1, 2, 3, 4],
    });
    let key = |b: u8| MasterKey::new(SrtpProfile::AesCm128HmacSha1_32, &[b; 16], &[b; 14]).expect("key");
    let secure = LegSetup {
        srtp: Some(SrtpKeys {
            profile: SrtpProfile::AesCm128HmacSha1_32,
            outbound: key(1),
            inbound: key(2),
        }),
        remote_rtp: Some("127.0.0.1:4000".parse().expect("addr")),
        remote_rtcp: None,
        rtcp_mux: false,
        law: Law::Mu,
        payload_type: 0,
        telephone_event: Some(101),
    };
    let plain = LegSetup {
        srtp: None,
        remote_rtp: Some("127.0.0.2:4000".parse().expect("addr")),
        law: Law::A,
        payload_type: 8,
        ..secure.clone()
    };
    r.set_leg(Side::Caller, secure, now).expect("leg");
    r.set_leg(Side::Callee, plain, now).expect("leg");
    r.set_bridged(true);
    r.start_tap(TapTracks::Both, Box::new(Discard), now);
    let from: SocketAddr = "127.0.0.9:9".parse().expect("addr");
    let mut buf = vec![0u8; 2048];
    for (i, chunk) in data.split(|&b| b == 0xff).enumerate().take(64) {
        let len = chunk.len().min(1500);
        buf[..len].copy_from_slice(&chunk[..len]);
        let side = if i % 2 == 0 { Side::Caller } else { Side::Callee };
        let component = if i % 3 == 0 { Component::Rtcp } else { Component::Rtp };
        let outcome = r.handle_packet(side, component, from, &mut buf, len, now);
        if let PacketOutcome::Forward(t) = outcome {
            assert!(t.len <= buf.len());
            // Random bytes never authenticate under a fixed key: only the plain leg forwards.
            assert_eq!(side, Side::Callee, "an unauthenticated packet crossed from the secure leg");
        }
        r.handle_timeout(now + Duration::from_millis(20 * i as u64));
        while r.poll_transmit(now, &mut buf).is_some() {}
        while r.poll_event().is_some() {}
    }
});
