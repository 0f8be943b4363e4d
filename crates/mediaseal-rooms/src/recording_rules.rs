//! Recording rules (Twilio's `RecordingRules` resource of a group room), sans-IO: which published
//! tracks a room records, and which recordings start or stop when the rules or the tracks
//! change.
//!
//! A rule is `include` or `exclude` with one filter set: `all: true` alone, or any of
//! `publisher` (the publisher's identity), `track` (the track name) and `kind` (`audio`,
//! `video`), which must all match. A track is recorded when it matches an `include` rule and no
//! `exclude` rule, so an exclusion always wins. A room starts with "include all" when it
//! records participants on connect, else with no rule (nothing recorded). A client may not set
//! an empty list (Twilio's 53120); `[{"type":"exclude","all":true}]` stops every recording.
//!
//! [`RecordingRules::parse`] checks a client's JSON as Twilio does; [`RecordingPlan`] follows
//! the room's tracks and tells the recorder what to start and stop.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::signal::TrackKind;

/// Twilio's error code for rules that are not valid.
pub const INVALID_RULES: u32 = 53120;

/// Most rules a room takes (Twilio's limit).
pub const MAX_RULES: usize = 20;

/// Longest `publisher` or `track` filter, in bytes (identities and track names are shorter).
const MAX_FILTER_LEN: usize = 256;

/// Whether matching tracks are recorded or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleType {
    /// Record matching tracks (unless an exclusion matches too).
    Include,
    /// Never record matching tracks.
    Exclude,
}

/// One rule, in Twilio's JSON shape (absent filters are left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingRule {
    /// `include` or `exclude`.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// Matches every track (`true` only; alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Matches tracks of the participant with this identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Matches tracks with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    /// Matches tracks of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TrackKind>,
}

/// A published track as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct RuleTrack<'a> {
    /// The publisher's identity.
    pub publisher: &'a str,
    /// The track name.
    pub name: &'a str,
    /// Audio, video or data.
    pub kind: TrackKind,
}

impl RecordingRule {
    /// Whether this rule's filters all match `track`. A rule without a filter matches nothing.
    fn matches(&self, track: &RuleTrack<'_>) -> bool {
        if self.all == Some(true) {
            return true;
        }
        let filters = [
            self.publisher.as_deref().map(|p| p == track.publisher),
            self.track.as_deref().map(|n| n == track.name),
            self.kind.map(|k| k == track.kind),
        ];
        let mut any = false;
        for matched in filters.into_iter().flatten() {
            if !matched {
                return false;
            }
            any = true;
        }
        any
    }
}

/// A room's rules, in the order the client gave them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordingRules {
    /// The rules.
    pub rules: Vec<RecordingRule>,
}

/// Rules that are not valid (Twilio's 53120). Says which rule and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRules(String);

impl RecordingRules {
    /// `[{"type":"include","all":true}]`: what `RecordParticipantsOnConnect=true` starts with.
    pub fn include_all() -> Self {
        Self {
            rules: vec![RecordingRule {
                rule_type: RuleType::Include,
                all: Some(true),
                publisher: None,
                track: None,
                kind: None,
            }],
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
        let value: Value = serde_json::from_str(json)
            .map_err(|e| InvalidRules(format!("Rules is not valid JSON ({e})")))?;
        let Value::Array(items) = value else {
            return Err(InvalidRules(
                "Rules must be a JSON array of rules, such as [{\"type\":\"include\",\"all\":true}]"
                    .to_owned(),
            ));
        };
        if items.is_empty() {
            return Err(InvalidRules(
                "Rules must hold at least one rule; to record nothing send \
                 [{\"type\":\"exclude\",\"all\":true}]"
                    .to_owned(),
            ));
        }
        if items.len() > MAX_RULES {
            return Err(InvalidRules(format!(
                "Rules holds {} rules; a room takes at most {MAX_RULES}",
                items.len()
            )));
        }
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_rule(i + 1, item))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules })
    }
}

/// Rule number `n` (from 1) of a client's list.
fn parse_rule(n: usize, item: &Value) -> Result<RecordingRule, InvalidRules> {
    let bad = |what: String| InvalidRules(format!("rule {n}: {what}"));
    let Value::Object(fields) = item else {
        return Err(bad(format!("must be a JSON object, not {item}")));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "all" | "publisher" | "track" | "kind"))
    {
        return Err(bad(format!(
            "'{unknown}' is not a rule field (type, all, publisher, track, kind)"
        )));
    }
    let rule_type = match fields.get("type") {
        None => return Err(bad("has no 'type' (include or exclude)".to_owned())),
        Some(Value::String(t)) if t == "include" => RuleType::Include,
        Some(Value::String(t)) if t == "exclude" => RuleType::Exclude,
        Some(other) => {
            return Err(bad(format!(
                "'type' must be include or exclude, not {other}"
            )));
        }
    };
    let text = |name: &str| -> Result<Option<String>, InvalidRules> {
        match fields.get(name) {
            None => Ok(None),
            Some(Value::String(s))
                if !s.is_empty()
                    && s.len() <= MAX_FILTER_LEN
                    && !s.chars().any(char::is_control) =>
            {
                Ok(Some(s.clone()))
            }
            Some(other) => Err(bad(format!(
                "'{name}' must be a non-empty string of at most {MAX_FILTER_LEN} printable \
                 bytes, not {other}"
            ))),
        }
    };
    let publisher = text("publisher")?;
    let track = text("track")?;
    let kind = match fields.get("kind") {
        None => None,
        Some(Value::String(k)) if k == "audio" => Some(TrackKind::Audio),
        Some(Value::String(k)) if k == "video" => Some(TrackKind::Video),
        Some(other) => return Err(bad(format!("'kind' must be audio or video, not {other}"))),
    };
    let all = match fields.get("all") {
        None => None,
        Some(Value::Bool(true)) => {
            if publisher.is_some() || track.is_some() || kind.is_some() {
                return Err(bad(
                    "'all' must stand alone: a rule with all:true takes no other filter".to_owned(),
                ));
            }
            Some(true)
        }
        Some(other) => return Err(bad(format!("'all' can only be true, not {other}"))),
    };
    if all.is_none() && publisher.is_none() && track.is_none() && kind.is_none() {
        return Err(bad(
            "needs a filter: all:true, or any of publisher, track and kind".to_owned(),
        ));
    }
    Ok(RecordingRule {
        rule_type,
        all,
        publisher,
        track,
        kind,
    })
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
        RuleTrack {
            publisher: &self.publisher,
            name: &self.name,
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
            name,
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
