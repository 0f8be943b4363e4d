//! The track-rule grammar Twilio shares between a room's `RecordingRules` and a participant's
//! `SubscribeRules`: one parser and one matcher, used by [`crate::recording_rules`] and
//! [`crate::subscribe_rules`], which differ only in how a list of rules decides.
//!
//! A rule is `{"type": "include"|"exclude", …filters}` with either `"all": true` alone, or any of
//! `publisher` (the publisher's identity, or its `PA…` SID where the caller knows it), `track`
//! (the track's name, or its `MT…` SID where known) and `kind`, which must all match. A client's
//! list holds 1 to [`MAX_RULES`] rules; each filter appears once in a rule.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::signal::TrackKind;

/// Most rules a list takes (Twilio's limit for both resources).
pub const MAX_RULES: usize = 20;

/// Longest `publisher` or `track` filter, in bytes (identities and track names are shorter).
const MAX_FILTER_LEN: usize = 256;

/// Whether matching tracks are selected or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleType {
    /// Select matching tracks.
    Include,
    /// Leave matching tracks out.
    Exclude,
}

/// One rule, in Twilio's JSON shape (absent filters are left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRule {
    /// `include` or `exclude`.
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    /// Matches every track (`true` only; alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Matches tracks of the participant with this identity (or SID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Matches tracks with this name (or SID).
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
    /// The publisher's `PA…` SID, when the caller knows it (a `publisher` filter matches it too).
    pub publisher_sid: Option<&'a str>,
    /// The track name.
    pub name: &'a str,
    /// The track's `MT…` SID, when the caller knows it (a `track` filter matches it too).
    pub sid: Option<&'a str>,
    /// Audio, video or data.
    pub kind: TrackKind,
}

impl TrackRule {
    /// `{"type": rule_type, "all": true}`.
    pub fn all(rule_type: RuleType) -> Self {
        Self {
            rule_type,
            all: Some(true),
            publisher: None,
            track: None,
            kind: None,
        }
    }

    /// Whether this rule's filters all match `track`. A rule without a filter matches nothing.
    pub fn matches(&self, track: &RuleTrack<'_>) -> bool {
        if self.all == Some(true) {
            return true;
        }
        let filters = [
            self.publisher
                .as_deref()
                .map(|p| p == track.publisher || track.publisher_sid == Some(p)),
            self.track
                .as_deref()
                .map(|n| n == track.name || track.sid == Some(n)),
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

/// Rules that are not valid. Says which rule and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRules(pub(crate) String);

/// What differs between the resources that take rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grammar {
    /// Who holds the list, for the length message ("a room", "a participant").
    pub(crate) holder: &'static str,
    /// What "exclude all" achieves, for the empty-list message ("record nothing").
    pub(crate) nothing: &'static str,
    /// Whether `kind` may be `data`.
    pub(crate) data_tracks: bool,
}

/// One element of a client's list: an object with its fields in order and repeats kept
/// (serde_json's map would silently keep the last of a repeated filter), or anything else.
enum Item {
    Object(Vec<(String, Value)>),
    Other(Value),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rule")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    fields.push(entry);
                }
                Ok(Item::Object(fields))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Item, E> {
                Ok(Item::Other(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Item, E> {
                Ok(Item::Other(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Item, E> {
                Ok(Item::Other(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Item, E> {
                Ok(Item::Other(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Item, E> {
                Ok(Item::Other(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Item, E> {
                Ok(Item::Other(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(Item::Other(Value::Array(items)))
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// A client's `Rules` parameter (a JSON array), checked as Twilio checks it.
pub(crate) fn parse(json: &str, grammar: Grammar) -> Result<Vec<TrackRule>, InvalidRules> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| InvalidRules(format!("Rules is not valid JSON ({e})")))?;
    let Value::Array(items) = value else {
        return Err(InvalidRules(
            "Rules must be a JSON array of rules, such as [{\"type\":\"include\",\"all\":true}]"
                .to_owned(),
        ));
    };
    if items.is_empty() {
        return Err(InvalidRules(format!(
            "Rules must hold at least one rule; to {} send [{{\"type\":\"exclude\",\"all\":true}}]",
            grammar.nothing
        )));
    }
    if items.len() > MAX_RULES {
        return Err(InvalidRules(format!(
            "Rules holds {} rules; {} takes at most {MAX_RULES}",
            items.len(),
            grammar.holder
        )));
    }
    // Valid JSON and an array: read again keeping each object's repeated fields.
    let items: Vec<Item> = serde_json::from_str(json)
        .map_err(|e| InvalidRules(format!("Rules is not valid JSON ({e})")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_rule(i + 1, item, grammar))
        .collect()
}

/// Rule number `n` (from 1) of a client's list.
fn parse_rule(n: usize, item: &Item, grammar: Grammar) -> Result<TrackRule, InvalidRules> {
    let bad = |what: String| InvalidRules(format!("rule {n}: {what}"));
    let fields = match item {
        Item::Object(fields) => fields,
        Item::Other(other) => return Err(bad(format!("must be a JSON object, not {other}"))),
    };
    for (i, (key, _)) in fields.iter().enumerate() {
        if !matches!(
            key.as_str(),
            "type" | "all" | "publisher" | "track" | "kind"
        ) {
            return Err(bad(format!(
                "'{key}' is not a rule field (type, all, publisher, track, kind)"
            )));
        }
        if fields[..i].iter().any(|(k, _)| k == key) {
            return Err(bad(format!(
                "'{key}' appears more than once; a rule takes each field once"
            )));
        }
    }
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let rule_type = match get("type") {
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
        match get(name) {
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
    let kind = match get("kind") {
        None => None,
        Some(Value::String(k)) if k == "audio" => Some(TrackKind::Audio),
        Some(Value::String(k)) if k == "video" => Some(TrackKind::Video),
        Some(Value::String(k)) if k == "data" && grammar.data_tracks => Some(TrackKind::Data),
        Some(other) if grammar.data_tracks => {
            return Err(bad(format!(
                "'kind' must be audio, video or data, not {other}"
            )));
        }
        Some(other) => return Err(bad(format!("'kind' must be audio or video, not {other}"))),
    };
    let all = match get("all") {
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
    Ok(TrackRule {
        rule_type,
        all,
        publisher,
        track,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Grammar = Grammar {
        holder: "a list",
        nothing: "select nothing",
        data_tracks: true,
    };

    fn refusal(json: &str) -> String {
        match parse(json, G) {
            Ok(r) => panic!("{json} was accepted as {r:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn a_repeated_field_is_refused_rather_than_the_last_one_kept() {
        let m = refusal(r#"[{"type":"include","kind":"audio","kind":"data"}]"#);
        assert!(
            m.starts_with("rule 1:") && m.contains("'kind' appears more than once"),
            "{m}"
        );
        let m = refusal(
            r#"[{"type":"include","all":true},{"type":"exclude","type":"include","all":true}]"#,
        );
        assert!(m.starts_with("rule 2:") && m.contains("'type'"), "{m}");
        // Non-objects still say what they are.
        assert!(refusal(r#"[["include"]]"#).contains("JSON object, not [\"include\"]"));
        assert!(refusal("[null]").contains("JSON object, not null"));
    }

    #[test]
    fn publisher_and_track_filters_match_a_sid_where_one_is_known() {
        let rule = |json: &str| parse(json, G).unwrap().remove(0);
        let track = RuleTrack {
            publisher: "bob",
            publisher_sid: Some("PA1"),
            name: "screen",
            sid: Some("MT1"),
            kind: TrackKind::Video,
        };
        assert!(rule(r#"[{"type":"include","publisher":"bob"}]"#).matches(&track));
        assert!(rule(r#"[{"type":"include","publisher":"PA1"}]"#).matches(&track));
        assert!(rule(r#"[{"type":"include","track":"MT1","kind":"video"}]"#).matches(&track));
        assert!(!rule(r#"[{"type":"include","track":"MT1","kind":"audio"}]"#).matches(&track));
        assert!(
            !rule(r#"[{"type":"include","publisher":"Bob"}]"#).matches(&track),
            "case counts"
        );
        let unknown = RuleTrack {
            publisher_sid: None,
            sid: None,
            ..track
        };
        assert!(!rule(r#"[{"type":"include","publisher":"PA1"}]"#).matches(&unknown));
    }
}
