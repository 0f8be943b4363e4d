//! Subscribe rules (Twilio's `SubscribeRules` resource of a group-room participant), sans-IO:
//! which of the other participants' tracks a participant receives.
//!
//! The rules are the grammar shared with recording rules ([`crate::track_rules`]), with `kind`
//! also taking `data`, and `publisher` / `track` matching a SID as well as an identity / name.
//! They decide as Twilio documents ("Subscribe Rules Semantics"): the set of subscribed tracks
//! starts empty, and the rules apply **in order**, an `include` adding the tracks it matches, an
//! `exclude` taking them away; so unlike recording rules, a later `include` can bring back what
//! an earlier `exclude` took out. A participant's own tracks are never considered. Every
//! participant starts with `[{"type":"include","all":true}]`; a `POST` replaces the whole list,
//! and the room applies it to the tracks published now and to every track published later.

use serde::{Deserialize, Serialize};

pub use crate::track_rules::InvalidRules;
use crate::track_rules::{self, Grammar, RuleTrack, RuleType, TrackRule};

/// Twilio's error code for rules that are not valid ("Invalid Subscribe Rule(s)").
pub const INVALID_RULES: u32 = 53215;

const GRAMMAR: Grammar = Grammar {
    holder: "a participant",
    nothing: "subscribe to nothing",
    data_tracks: true,
};

/// A participant's rules, in the order the client gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscribeRules {
    /// The rules.
    pub rules: Vec<TrackRule>,
}

impl Default for SubscribeRules {
    /// Twilio's default rule: subscribe to everything.
    fn default() -> Self {
        Self::include_all()
    }
}

impl SubscribeRules {
    /// `[{"type":"include","all":true}]`: what every participant starts with.
    pub fn include_all() -> Self {
        Self {
            rules: vec![TrackRule::all(RuleType::Include)],
        }
    }

    /// A client's `Rules` parameter (a JSON array), checked as Twilio checks it (53215).
    pub fn parse(json: &str) -> Result<Self, InvalidRules> {
        track_rules::parse(json, GRAMMAR).map(|rules| Self { rules })
    }

    /// Whether the participant subscribes to `track` (another participant's): Twilio's set
    /// algebra, so the last rule that matches the track decides, and no matching rule means no.
    pub fn subscribes(&self, track: &RuleTrack<'_>) -> bool {
        self.rules
            .iter()
            .rev()
            .find(|r| r.matches(track))
            .is_some_and(|r| r.rule_type == RuleType::Include)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::TrackKind;

    fn rules(json: &str) -> SubscribeRules {
        SubscribeRules::parse(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// The room of Twilio's "Subscribe Rules Semantics" section: Bob (PTB) and Carl (PTC), as
    /// Alice or Carl sees them (own tracks never reach the rules).
    const ROOM: &[(&str, &str, &str, &str, TrackKind)] = &[
        ("Alice", "PTA", "MTA_A", "alice-audio", TrackKind::Audio),
        ("Alice", "PTA", "MTA_C", "alice-cam", TrackKind::Video),
        ("Alice", "PTA", "MTA_S", "screen", TrackKind::Video),
        ("Bob", "PTB", "MTB_A", "bob-audio", TrackKind::Audio),
        ("Bob", "PTB", "MTB_C", "bob-cam", TrackKind::Video),
        ("Bob", "PTB", "MTB_S", "screen", TrackKind::Video),
        ("Carl", "PTC", "MTC_A", "carl-audio", TrackKind::Audio),
        ("Carl", "PTC", "MTC_C", "carl-cam", TrackKind::Video),
        ("Carl", "PTC", "MTC_D", "carl-data", TrackKind::Data),
    ];

    /// The tracks `subscriber` receives under `json`, in the table's order.
    fn set_of(subscriber: &str, json: &str) -> Vec<&'static str> {
        let r = rules(json);
        ROOM.iter()
            .filter(|t| t.0 != subscriber)
            .filter(|t| {
                r.subscribes(&RuleTrack {
                    publisher: t.0,
                    publisher_sid: Some(t.1),
                    name: t.3,
                    sid: Some(t.2),
                    kind: t.4,
                })
            })
            .map(|t| t.2)
            .collect()
    }

    #[test]
    fn rules_apply_in_order_as_twilios_set_algebra() {
        // The worked example: include all, exclude video, include Bob's screen.
        assert_eq!(
            set_of(
                "Alice",
                r#"[{"type":"include","all":true},{"type":"exclude","kind":"video"},
                    {"type":"include","publisher":"Bob","track":"screen"}]"#
            ),
            ["MTB_A", "MTB_S", "MTC_A", "MTC_D"]
        );
        assert_eq!(
            set_of("Alice", r#"[{"type":"include","all":true}]"#),
            ["MTB_A", "MTB_C", "MTB_S", "MTC_A", "MTC_C", "MTC_D"]
        );
        assert!(set_of("Alice", r#"[{"type":"exclude","all":true}]"#).is_empty());
        assert!(
            set_of("Alice", r#"[{"type":"exclude","kind":"video"}]"#).is_empty(),
            "an exclusion alone selects nothing"
        );
        assert_eq!(
            set_of("Alice", r#"[{"type":"include","track":"screen"}]"#),
            ["MTB_S"]
        );
        // Filters combine with AND; a publisher SID works like an identity.
        assert_eq!(
            set_of(
                "Carl",
                r#"[{"type":"include","all":true},{"type":"exclude","publisher":"PTB","kind":"audio"},
                    {"type":"exclude","kind":"video","track":"screen"}]"#
            ),
            ["MTA_A", "MTA_C", "MTB_C"]
        );
        // Order matters.
        assert!(
            set_of(
                "Alice",
                r#"[{"type":"include","kind":"data"},{"type":"exclude","publisher":"Carl"}]"#
            )
            .is_empty()
        );
        assert_eq!(
            set_of(
                "Alice",
                r#"[{"type":"exclude","publisher":"Carl"},{"type":"include","kind":"data"}]"#
            ),
            ["MTC_D"]
        );
        // A track SID in a `track` filter.
        assert_eq!(
            set_of(
                "Carl",
                r#"[{"type":"include","kind":"audio"},{"type":"include","track":"MTA_S"}]"#
            ),
            ["MTA_A", "MTA_S", "MTB_A"]
        );
        assert_eq!(
            set_of(
                "Carl",
                &serde_json::to_string(&SubscribeRules::default()).unwrap()
            )
            .len(),
            6
        );
    }

    #[test]
    fn malformed_rules_are_refused_as_twilio_lists_them() {
        for (json, says) in [
            ("[]", "subscribe to nothing"),
            (r#"[{"type":"include","all":false}]"#, "only be true"),
            (
                r#"[{"type":"include","all":true},{"type":"exclude","kind":"wideo"}]"#,
                "rule 2: 'kind' must be audio, video or data",
            ),
            (
                r#"[{"type":"include","kind":"audio","kind":"data"}]"#,
                "appears more than once",
            ),
            (
                r#"[{"type":"include","all":"true","kind":"data"}]"#,
                "only be true",
            ),
            (
                r#"[{"type":"include","all":true,"kind":"data"}]"#,
                "stand alone",
            ),
            (r#"[{"kind":"audio"}]"#, "has no 'type'"),
            (r#"[{"type":"include","priority":"high"}]"#, "'priority'"),
        ] {
            match SubscribeRules::parse(json) {
                Ok(r) => panic!("{json} was accepted as {r:?}"),
                Err(e) => assert!(e.to_string().contains(says), "{json}: {e}"),
            }
        }
        let many = format!(
            "[{}]",
            vec![r#"{"type":"include","all":true}"#; 21].join(",")
        );
        let e = SubscribeRules::parse(&many).unwrap_err().to_string();
        assert!(e.contains("a participant takes at most 20"), "{e}");
        // Data is a kind here (never for recording rules).
        assert_eq!(
            rules(r#"[{"type":"include","kind":"data"}]"#).rules[0].kind,
            Some(TrackKind::Data)
        );
    }

    #[test]
    fn rules_keep_twilios_json_shape() {
        let json = r#"[{"type":"include","all":true},{"type":"exclude","publisher":"Supervisor"}]"#;
        let r = rules(json);
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        assert_eq!(serde_json::from_str::<SubscribeRules>(json).unwrap(), r);
    }
}
