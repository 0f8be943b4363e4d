//! Room signalling and the worker control pipe: arbitrary bytes never panic the WebSocket
//! message parsers, the peer-to-peer relay, the recording and subscribe rules parsers or the length-prefixed
//! frame decoder; what parses serializes back to the same message.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use mediaseal_rooms::control::{FrameDecoder, Request, WorkerEvent};
use mediaseal_rooms::mesh::{MeshRoom, RoomTimeouts};
use mediaseal_rooms::recording_rules::{RecordingRules, RuleTrack, RuleType};
use mediaseal_rooms::signal::{ClientMessage, ParticipantInfo, ServerMessage, TrackKind};
use mediaseal_rooms::subscribe_rules::SubscribeRules;
use mediaseal_rooms::track_rules::TrackRule;

/// Rules that parse serialize (as their list: both resources' JSON is the bare array) to rules
/// that parse the same.
fn round_trip<R, E>(
    text: &str,
    parse: impl Fn(&str) -> Result<R, E>,
    list: impl Fn(&R) -> &[TrackRule],
) -> Option<R>
where
    R: PartialEq + std::fmt::Debug,
    E: std::fmt::Debug,
{
    let rules = parse(text).ok()?;
    let json = serde_json::to_string(list(&rules)).expect("rules serialize");
    assert_eq!(parse(&json).expect("serialized rules parse"), rules);
    Some(rules)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = ClientMessage::from_json(data) {
        let again = ClientMessage::from_json(message.to_json().as_bytes())
            .expect("a parsed message serializes to a parsable one");
        assert_eq!(again, message);
        // A peer-to-peer room relays it to a member or refuses it; it never reaches anyone
        // else.
        let mut room = MeshRoom::new(10, RoomTimeouts::default(), Instant::now());
        for (sid, identity) in [("PA1", "a"), ("PA2", "b")] {
            let who = ParticipantInfo {
                sid: sid.to_owned(),
                identity: identity.to_owned(),
            };
            room.join(who).expect("an empty room takes two");
        }
        if let Ok(out) = room.relay("PA1", message) {
            assert_eq!(out.to, "PA2");
        }
    }
    // The RecordingRules and SubscribeRules resources' `Rules` (one grammar): valid rules
    // serialize to rules that parse the same, and deciding a track never panics.
    if let Ok(text) = std::str::from_utf8(data) {
        let tracks = [TrackKind::Audio, TrackKind::Video, TrackKind::Data].map(|kind| RuleTrack {
            publisher: "alice",
            publisher_sid: Some("PA1"),
            name: "camera",
            sid: Some("MT1"),
            kind,
        });
        if let Some(rules) = round_trip(text, RecordingRules::parse, |r| &r.rules) {
            for track in &tracks {
                let recorded = rules.records(track);
                assert!(
                    !(recorded && track.kind == TrackKind::Data),
                    "data tracks are never recorded"
                );
            }
        }
        if let Some(rules) = round_trip(text, SubscribeRules::parse, |r| &r.rules) {
            for track in &tracks {
                // Twilio's set algebra, applied forwards: includes add, excludes take away.
                let mut inside = false;
                for rule in rules.rules.iter().filter(|r| r.matches(track)) {
                    inside = rule.rule_type == RuleType::Include;
                }
                assert_eq!(rules.subscribes(track), inside);
            }
        }
    }
    if let Ok(message) = ServerMessage::from_json(data) {
        let again = ServerMessage::from_json(message.to_json().as_bytes())
            .expect("a parsed message serializes to a parsable one");
        assert_eq!(again, message);
    }

    // The same bytes as a control stream, fed in two pieces.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for as_events in [false, true] {
        let mut decoder = FrameDecoder::new();
        decoder.push(&data[..split]);
        decoder.push(&data[split..]);
        loop {
            let next = if as_events {
                decoder.next_message::<WorkerEvent>().map(|m| m.is_some())
            } else {
                decoder
                    .next_message::<Request>()
                    .map(|m| m.map(Request::into_command).is_some())
            };
            match next {
                Ok(true) => continue,
                Ok(false) | Err(_) => break,
            }
        }
    }
});
