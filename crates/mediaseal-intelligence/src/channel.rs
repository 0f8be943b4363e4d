//! The `Channel` parameter of a transcript: where the audio comes from and who speaks on which
//! audio channel.

use serde::{Deserialize, Serialize};

/// Longest `Channel` JSON accepted.
pub const MAX_CHANNEL_JSON: usize = 16 * 1024;
/// Most participants one transcript may name.
pub const MAX_PARTICIPANTS: usize = 8;
/// Longest `media_url` accepted.
pub const MAX_MEDIA_URL: usize = 2048;

/// A parsed `Channel`, re-serialised (normalised) for storage and for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// Where the audio is.
    pub media_properties: MediaProperties,
    /// Who is on which audio channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
}

/// `media_properties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaProperties {
    /// An `RE…` voice recording of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sid: Option<String>,
    /// An `http(s)://` URL of a WAV file, fetched into memory by the transcript's job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
}

/// One entry of `participants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The audio channel, 1-based (1 = left).
    pub channel_participant: u32,
    /// `Agent`, `Customer`, … (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The application's own id of the participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// Another id the application uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_participant_id: Option<String>,
}

/// Why a `Channel` was refused. Each says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Longer than [`MAX_CHANNEL_JSON`].
    #[error("longer than {MAX_CHANNEL_JSON} bytes")]
    TooLong,
    /// Not JSON of the expected shape.
    #[error(
        "not a JSON object of the form {{\"media_properties\": {{\"source_sid\": \"RE…\"}}, \"participants\": [{{\"channel_participant\": 1, \"role\": \"Agent\"}}]}}: {0}"
    )]
    Shape(String),
    /// Neither `source_sid` nor `media_url`, or both.
    #[error("media_properties needs exactly one of source_sid (an RE… recording) or media_url")]
    NoSource,
    /// `source_sid` is not an `RE…` SID.
    #[error(
        "media_properties.source_sid '{0}' is not a recording SID (RE followed by 32 hex digits)"
    )]
    BadSourceSid(String),
    /// `media_url` is not an `http(s)://` URL this server could fetch.
    #[error(
        "media_properties.media_url must be an http:// or https:// URL of at most {MAX_MEDIA_URL} characters without \
         spaces or control characters"
    )]
    BadMediaUrl,
    /// A participant's channel is outside 1..=8, or named twice.
    #[error("participants: channel_participant {0} is outside 1..=8 or given twice")]
    BadParticipant(u32),
    /// Too many participants.
    #[error("more than {MAX_PARTICIPANTS} participants")]
    TooManyParticipants,
    /// A participant's text field is too long or has control characters.
    #[error("participants: {0} is longer than 256 characters or has control characters")]
    BadParticipantText(&'static str),
}

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

fn check_text(value: Option<&String>, what: &'static str) -> Result<(), ChannelError> {
    match value {
        Some(v) if v.chars().count() > 256 || v.chars().any(char::is_control) => {
            Err(ChannelError::BadParticipantText(what))
        }
        _ => Ok(()),
    }
}

impl ChannelSpec {
    /// Parses and checks the `Channel` JSON.
    pub fn parse(json: &str) -> Result<Self, ChannelError> {
        if json.len() > MAX_CHANNEL_JSON {
            return Err(ChannelError::TooLong);
        }
        let spec: Self =
            serde_json::from_str(json).map_err(|e| ChannelError::Shape(e.to_string()))?;
        match (
            &spec.media_properties.source_sid,
            &spec.media_properties.media_url,
        ) {
            (Some(sid), None) if is_sid(sid, "RE") => {}
            (Some(sid), None) => return Err(ChannelError::BadSourceSid(sid.clone())),
            (None, Some(url)) => {
                let scheme_ok = ["http://", "https://"].iter().any(|p| {
                    url.get(..p.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(p))
                });
                if !scheme_ok
                    || url.len() > MAX_MEDIA_URL
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(ChannelError::BadMediaUrl);
                }
            }
            _ => return Err(ChannelError::NoSource),
        }
        if spec.participants.len() > MAX_PARTICIPANTS {
            return Err(ChannelError::TooManyParticipants);
        }
        let mut seen = Vec::new();
        for p in &spec.participants {
            if !(1..=8).contains(&p.channel_participant) || seen.contains(&p.channel_participant) {
                return Err(ChannelError::BadParticipant(p.channel_participant));
            }
            seen.push(p.channel_participant);
            check_text(p.role.as_ref(), "role")?;
            check_text(p.user_id.as_ref(), "user_id")?;
            check_text(p.full_name.as_ref(), "full_name")?;
            check_text(p.media_participant_id.as_ref(), "media_participant_id")?;
        }
        Ok(spec)
    }

    /// The recording to transcribe.
    pub fn source_sid(&self) -> Option<&str> {
        self.media_properties.source_sid.as_deref()
    }

    /// The URL of the audio to transcribe, when it is not a recording.
    pub fn media_url(&self) -> Option<&str> {
        self.media_properties.media_url.as_deref()
    }

    /// The normalised JSON, as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RE: &str = "RE0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_a_recording_with_participants() {
        let json = format!(
            r#"{{"media_properties":{{"source_sid":"{RE}"}},"participants":[{{"channel_participant":1,"role":"Agent"}},{{"channel_participant":2,"role":"Customer","full_name":"Ann"}}]}}"#
        );
        let spec = ChannelSpec::parse(&json).unwrap();
        assert_eq!(spec.source_sid(), Some(RE));
        assert_eq!(spec.participants.len(), 2);
        assert_eq!(ChannelSpec::parse(&spec.to_json()).unwrap(), spec);

        let spec = ChannelSpec::parse(
            r#"{"media_properties":{"media_url":"HTTPS://media.example/a.wav"}}"#,
        )
        .unwrap();
        assert_eq!(spec.media_url(), Some("HTTPS://media.example/a.wav"));
        assert_eq!(spec.source_sid(), None);
        let long = format!("https://x/{}", "a".repeat(MAX_MEDIA_URL));
        let json = format!(r#"{{"media_properties":{{"media_url":"{long}"}}}}"#);
        assert_eq!(ChannelSpec::parse(&json), Err(ChannelError::BadMediaUrl));
        let json = r#"{"media_properties":{"media_url":"https://x/a b.wav"}}"#;
        assert_eq!(ChannelSpec::parse(json), Err(ChannelError::BadMediaUrl));
    }

    #[test]
    fn refuses_bad_channels() {
        let cases = [
            ("[]".to_owned(), "JSON object"),
            ("{".to_owned(), "JSON object"),
            (r#"{"media_properties":{}}"#.to_owned(), "exactly one"),
            (
                r#"{"media_properties":{"source_sid":"CA0123456789abcdef0123456789abcdef"}}"#
                    .to_owned(),
                "not a recording SID",
            ),
            (
                r#"{"media_properties":{"media_url":"ftp://x/a.wav"}}"#.to_owned(),
                "http:// or https://",
            ),
            (
                format!(
                    r#"{{"media_properties":{{"source_sid":"{RE}"}},"participants":[{{"channel_participant":9}}]}}"#
                ),
                "outside 1..=8",
            ),
            (
                format!(
                    r#"{{"media_properties":{{"source_sid":"{RE}"}},"participants":[{{"channel_participant":1}},{{"channel_participant":1}}]}}"#
                ),
                "given twice",
            ),
            (" ".repeat(MAX_CHANNEL_JSON + 1), "longer than"),
        ];
        for (json, want) in cases {
            let e = ChannelSpec::parse(&json).unwrap_err().to_string();
            assert!(e.contains(want), "{json:.60}: {e}");
        }
    }
}
