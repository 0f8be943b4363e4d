//! Recording rules (Twilio's `RecordingRules` resource of a group room), sans-IO: which published
//! tracks a room records, and which recordings start or stop when the rules or the tracks
//! change.
//!
//! A rule is `include` or `exclude` with one filter set: `all: true` alone, or any of
//! `publisher` (the publisher's identity), `track` (the track name) and `kind` (`audio`,
//! `video`), which must all match (the grammar shared with subscribe rules,
//! [`crate::track_rules`]). A track is recorded when it matches an `include` rule and no
//! `exclude` rule, so an exclusion always wins. A room starts with "include all" when it
//! records participants on connect, else with no rule (nothing recorded). A client may not set
//! an empty list (Twilio's 53120); `[{"type":"exclude","all":true}]` stops every recording.
//!
//! [`RecordingRules::parse`] checks a client's JSON as Twilio does; [`RecordingPlan`] follows
//! the room's tracks and tells the recorder what to start and stop.

use serde::{Deserialize, Serialize};

use crate::signal::TrackKind;
use crate::track_rules::{self, Grammar};
pub use crate::track_rules::{InvalidRules, MAX_RULES, RuleTrack, RuleType};

/// Twilio's error code for rules that are not valid.
pub const INVALID_RULES: u32 = 53120;

/// One recording rule: the grammar shared with subscribe rules ([`track_rules::TrackRule`]).
pub type RecordingRule = track_rules::TrackRule;

/// Recording rules name audio and video only: data tracks are never recorded.
const GRAMMAR: Grammar = Grammar {
    holder: "a room",
    nothing: "record nothing",
    data_tracks: false,
};

/// A room's rules, in the order the client gave them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordingRules {
    /// The rules.
    pub rules: Vec<RecordingRule>,
}

impl RecordingRules {
    /// `[{"type":"include","all":true}]`: what `RecordParticipantsOnConnect=true` starts with.
    pub fn include_all() -> Self {
        Self {
            rules: vec![RecordingRule::all(RuleType::Include)],
        }
    }

    /// No rule: nothing is recorded (a room created without `RecordParticipantsOnConnect`).
    pub fn none() -> Self {
        Self::default()
    }

    /// The rules a room starts with.
    pub fn initial(record_participants_on_connect: bool) -> Self {
        if record_participants_on_connect {
            Self::include_all()
        } else {
            Self::none()
        }
    }

    /// Whether `track` is recorded: it matches an `include` rule and no `exclude` rule. Data
    /// tracks never are.
    pub fn records(&self, track: &RuleTrack<'_>) -> bool {
        if track.kind == TrackKind::Data {
            return false;
        }
        let mut included = false;
        for rule in &self.rules {
            if rule.matches(track) {
                match rule.rule_type {
                    RuleType::Exclude => return false,
                    RuleType::Include => included = true,
                }
            }
        }
        included
    }

    /// Whether any rule could record a track (the room needs its recorder).
    pub fn can_record(&self) -> bool {
        self.rules.iter().any(|r| r.rule_type == RuleType::Include)
    }

    /// A client's `Rules` parameter (a JSON array), checked as Twilio checks it.
    pub fn parse(json: &str) -> Result<Self, InvalidRules> {
        track_rules::parse(json, GRAMMAR).map(|rules| Self { rules })
    }
}

/// A recording to start or stop because the rules changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingChange {
    /// The track matches now: record it from its next usable frame.
    Start(String),
    /// The track no longer matches: finish its recording.
    Stop(String),
}

#[derive(Debug, Clone)]
struct PlannedTrack {
    sid: String,
    publisher: String,
    name: String,
    kind: TrackKind,
    recorded: bool,
}

impl PlannedTrack {
    fn view(&self) -> RuleTrack<'_> {
        // The plan knows identities and names, not SIDs: filters match those.
        RuleTrack {
            publisher: &self.publisher,
            publisher_sid: None,
            name: &self.name,
            sid: None,
            kind: self.kind,
        }
    }
}

/// The room's published tracks and which of them the current rules record.
#[derive(Debug, Clone)]
pub struct RecordingPlan {
    rules: RecordingRules,
    tracks: Vec<PlannedTrack>,
}

impl RecordingPlan {
    /// A plan with no track yet.
    pub fn new(rules: RecordingRules) -> Self {
        Self {
            rules,
            tracks: Vec::new(),
        }
    }

    /// The current rules.
    pub fn rules(&self) -> &RecordingRules {
        &self.rules
    }

    /// A track was published (or was already when recording began): whether it is recorded.
    pub fn track_published(
        &mut self,
        track_sid: &str,
        publisher: &str,
        name: &str,
        kind: TrackKind,
    ) -> bool {
        self.tracks.retain(|t| t.sid != track_sid);
        let mut track = PlannedTrack {
            sid: track_sid.to_owned(),
            publisher: publisher.to_owned(),
            name: name.to_owned(),
            kind,
            recorded: false,
        };
        track.recorded = self.rules.records(&track.view());
        let recorded = track.recorded;
        self.tracks.push(track);
        recorded
    }

    /// A track ended: whether it was being recorded.
    pub fn track_ended(&mut self, track_sid: &str) -> bool {
        let Some(i) = self.tracks.iter().position(|t| t.sid == track_sid) else {
            return false;
        };
        self.tracks.remove(i).recorded
    }

    /// Whether the track is recorded under the current rules.
    pub fn is_recorded(&self, track_sid: &str) -> bool {
        self.tracks.iter().any(|t| t.sid == track_sid && t.recorded)
    }

    /// Replaces the rules: the recordings that start and stop, in publication order.
    pub fn set_rules(&mut self, rules: RecordingRules) -> Vec<RecordingChange> {
        self.rules = rules;
        let mut changes = Vec::new();
        for track in &mut self.tracks {
            let now = self.rules.records(&track.view());
            match (track.recorded, now) {
                (false, true) => changes.push(RecordingChange::Start(track.sid.clone())),
                (true, false) => changes.push(RecordingChange::Stop(track.sid.clone())),
                _ => {}
            }
            track.recorded = now;
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> RecordingRules {
        RecordingRules::parse(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn refusal(json: &str) -> String {
        match RecordingRules::parse(json) {
            Ok(r) => panic!("{json} was accepted as {r:?}"),
            Err(e) => e.0,
        }
    }

    fn track<'a>(publisher: &'a str, name: &'a str, kind: TrackKind) -> RuleTrack<'a> {
        RuleTrack {
            publisher,
            publisher_sid: None,
            name,
            sid: None,
            kind,
        }
    }

    #[test]
    fn an_exclusion_wins_over_an_inclusion_whatever_the_order() {
        let alice_mic = track("alice", "mic", TrackKind::Audio);
        let alice_cam = track("alice", "cam", TrackKind::Video);
        let bob_cam = track("bob", "cam", TrackKind::Video);
        for json in [
            r#"[{"type":"include","all":true},{"type":"exclude","kind":"video"}]"#,
            r#"[{"type":"exclude","kind":"video"},{"type":"include","all":true}]"#,
        ] {
            let r = rules(json);
            assert!(r.records(&alice_mic), "{json}");
            assert!(!r.records(&alice_cam), "{json}");
            assert!(!r.records(&bob_cam), "{json}");
        }
        let r = rules(r#"[{"type":"include","publisher":"alice"}]"#);
        assert!(r.records(&alice_mic) && r.records(&alice_cam));
        assert!(!r.records(&bob_cam), "only alice is included");
        let r = rules(r#"[{"type":"exclude","all":true}]"#);
        assert!(!r.records(&alice_mic), "exclude all records nothing");
        assert!(!RecordingRules::none().records(&alice_mic));
        assert!(!RecordingRules::include_all().records(&track("a", "d", TrackKind::Data)));
    }

    #[test]
    fn the_filters_of_one_rule_must_all_match() {
        let r = rules(r#"[{"type":"include","publisher":"alice","kind":"audio"}]"#);
        assert!(r.records(&track("alice", "mic", TrackKind::Audio)));
        assert!(!r.records(&track("alice", "cam", TrackKind::Video)));
        assert!(!r.records(&track("bob", "mic", TrackKind::Audio)));
        let r = rules(r#"[{"type":"include","track":"screen"}]"#);
        assert!(r.records(&track("bob", "screen", TrackKind::Video)));
        assert!(!r.records(&track("bob", "cam", TrackKind::Video)));
    }

    #[test]
    fn malformed_rules_are_refused_with_the_rule_and_the_reason() {
        assert!(refusal("[]").contains("at least one rule"));
        assert!(refusal("{\"type\":\"include\"}").contains("JSON array"));
        assert!(refusal("[{\"type\":\"include\",").contains("not valid JSON"));
        let many = format!(
            "[{}]",
            vec![r#"{"type":"include","all":true}"#; 21].join(",")
        );
        assert!(refusal(&many).contains("at most 20"));
        assert!(refusal(r#"[{"all":true}]"#).contains("rule 1: has no 'type'"));
        assert!(refusal(r#"[{"type":"record","all":true}]"#).contains("include or exclude"));
        let m = refusal(r#"[{"type":"include","all":true},{"type":"include","kind":"data"}]"#);
        assert!(
            m.starts_with("rule 2:") && m.contains("audio or video"),
            "{m}"
        );
        assert!(refusal(r#"[{"type":"include","all":false}]"#).contains("only be true"));
        assert!(
            refusal(r#"[{"type":"include","all":true,"kind":"audio"}]"#).contains("stand alone")
        );
        assert!(refusal(r#"[{"type":"include"}]"#).contains("needs a filter"));
        assert!(refusal(r#"[{"type":"include","publisher":""}]"#).contains("'publisher'"));
        assert!(refusal(r#"[{"type":"include","track":7}]"#).contains("'track'"));
        assert!(refusal(r#"[{"type":"include","who":"alice"}]"#).contains("'who'"));
        assert!(refusal(r#"["include"]"#).contains("JSON object"));
    }

    #[test]
    fn rules_keep_twilios_json_shape() {
        let json = r#"[{"type":"include","all":true},{"type":"exclude","publisher":"bob","kind":"video"}]"#;
        let r = rules(json);
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        let back: RecordingRules = serde_json::from_str(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_plan_starts_and_stops_recordings_as_the_rules_change() {
        let mut plan = RecordingPlan::new(RecordingRules::none());
        assert!(!plan.track_published("MTa", "alice", "mic", TrackKind::Audio));
        assert!(!plan.track_published("MTv", "alice", "cam", TrackKind::Video));
        let changes = plan.set_rules(RecordingRules::include_all());
        assert_eq!(
            changes,
            [
                RecordingChange::Start("MTa".into()),
                RecordingChange::Start("MTv".into())
            ]
        );
        assert!(plan.is_recorded("MTa") && plan.is_recorded("MTv"));
        let changes = plan.set_rules(rules(
            r#"[{"type":"include","all":true},{"type":"exclude","kind":"video"}]"#,
        ));
        assert_eq!(changes, [RecordingChange::Stop("MTv".into())]);
        // Tracks published later follow the current rules.
        assert!(!plan.track_published("MTw", "bob", "cam", TrackKind::Video));
        assert!(plan.track_published("MTb", "bob", "mic", TrackKind::Audio));
        // The same rules again change nothing.
        let same = plan.rules().clone();
        assert!(plan.set_rules(same).is_empty());
        assert!(plan.track_ended("MTb"));
        assert!(!plan.track_ended("MTw"));
        assert!(!plan.track_ended("MTb"), "a track ends once");
        let changes = plan.set_rules(rules(r#"[{"type":"exclude","all":true}]"#));
        assert_eq!(changes, [RecordingChange::Stop("MTa".into())]);
        let changes = plan.set_rules(rules(r#"[{"type":"include","kind":"video"}]"#));
        assert_eq!(changes, [RecordingChange::Start("MTv".into())]);
    }
}
