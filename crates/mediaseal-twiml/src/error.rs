//! Why a TwiML document was refused, with the Twilio error code a customer would look up.

use core::fmt;

/// A Twilio error or warning code (`https://www.twilio.com/docs/api/errors/<code>`).
///
/// The parser reports the code Twilio's debugger shows for the same mistake, so a customer who
/// moves a webhook from Twilio to mediaseal reads the same number in both places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TwilioCode(pub u16);

impl TwilioCode {
    /// 11100: the format of a URL is invalid.
    pub const INVALID_URL: Self = Self(11100);
    /// 11750: the TwiML response body is larger than the limit (Twilio: 64 kB).
    pub const BODY_TOO_LARGE: Self = Self(11750);
    /// 12100: the document is not well-formed XML.
    pub const DOCUMENT_PARSE_FAILURE: Self = Self(12100);
    /// 12102: the root element is not `<Response>`.
    pub const ROOT_NOT_RESPONSE: Self = Self(12102);
    /// 12200: the document does not match the TwiML schema (unknown element or attribute,
    /// misplaced element, unsupported value).
    pub const SCHEMA_VALIDATION: Self = Self(12200);
    /// 13210: `<Dial method>` is not GET or POST.
    pub const DIAL_METHOD: Self = Self(13210);
    /// 13212: `<Dial timeout>` is not a positive integer in range.
    pub const DIAL_TIMEOUT: Self = Self(13212);
    /// 13213: `<Dial hangupOnStar>` is not true or false.
    pub const DIAL_HANGUP_ON_STAR: Self = Self(13213);
    /// 13214: `<Dial callerId>` is invalid.
    pub const DIAL_CALLER_ID: Self = Self(13214);
    /// 13215: `<Dial>` has an invalid nested element.
    pub const DIAL_NESTED_ELEMENT: Self = Self(13215);
    /// 13216: `<Dial timeLimit>` is not a positive integer in range.
    pub const DIAL_TIME_LIMIT: Self = Self(13216);
    /// 13217: `<Dial record>` is not one of the recording modes.
    pub const DIAL_RECORD: Self = Self(13217);
    /// 13221: `<Number method>` is not GET or POST.
    pub const NUMBER_METHOD: Self = Self(13221);
    /// 13222: `<Number sendDigits>` has characters other than `0-9 # * w`.
    pub const NUMBER_SEND_DIGITS: Self = Self(13222);
    /// 13223: the phone number is not in a dialable format.
    pub const PHONE_NUMBER_FORMAT: Self = Self(13223);
    /// 13241: `<Sip method>` is not GET or POST.
    pub const SIP_METHOD: Self = Self(13241);
    /// 13243: the SIP URI is invalid.
    pub const SIP_URI: Self = Self(13243);
    /// 13247: `callerId` for a SIP dial has characters outside `A-Z a-z 0-9 + - _ . ,`.
    pub const SIP_CALLER_ID_CHARACTERS: Self = Self(13247);
    /// 13248: `callerId` for a SIP dial is too long.
    pub const SIP_CALLER_ID_LENGTH: Self = Self(13248);
    /// 13249: `<Sip username>` or `password` is invalid.
    pub const SIP_CREDENTIALS: Self = Self(13249);
    /// 13250: more `<Sip>` URIs than one `<Dial>` may carry.
    pub const SIP_TOO_MANY_URIS: Self = Self(13250);
    /// 13252: a SIP URI header is not an `X-` header (or `User-to-User`).
    pub const SIP_HEADER_NAME: Self = Self(13252);
    /// 13253: the SIP URI headers are too long.
    pub const SIP_HEADER_TOO_LONG: Self = Self(13253);
    /// 13310: `<Gather finishOnKey>` is not one of `0-9 # *` or empty.
    pub const GATHER_FINISH_ON_KEY: Self = Self(13310);
    /// 13312: `<Gather method>` is not GET or POST.
    pub const GATHER_METHOD: Self = Self(13312);
    /// 13313: `<Gather timeout>` is not a non-negative integer in range.
    pub const GATHER_TIMEOUT: Self = Self(13313);
    /// 13314: `<Gather numDigits>` is not a positive integer.
    pub const GATHER_NUM_DIGITS: Self = Self(13314);
    /// 13320: `<Gather>` nests something other than `<Say>`, `<Play>` or `<Pause>`.
    pub const GATHER_NESTED_VERB: Self = Self(13320);
    /// 13321: a `<Say voice>` nested in `<Gather>` is invalid.
    pub const GATHER_SAY_VOICE: Self = Self(13321);
    /// 13322: a `<Say loop>` nested in `<Gather>` is invalid.
    pub const GATHER_SAY_LOOP: Self = Self(13322);
    /// 13410: `<Play loop>` is invalid.
    pub const PLAY_LOOP: Self = Self(13410);
    /// 13510: `<Say loop>` is invalid.
    pub const SAY_LOOP: Self = Self(13510);
    /// 13511: `<Say voice>` is invalid.
    pub const SAY_VOICE: Self = Self(13511);
    /// 13520: `<Say>` text is empty or too long.
    pub const SAY_TEXT: Self = Self(13520);
    /// 13610: `<Record method>` is not GET or POST.
    pub const RECORD_METHOD: Self = Self(13610);
    /// 13611: `<Record timeout>` is invalid.
    pub const RECORD_TIMEOUT: Self = Self(13611);
    /// 13612: `<Record maxLength>` is invalid.
    pub const RECORD_MAX_LENGTH: Self = Self(13612);
    /// 13613: `<Record finishOnKey>` has characters other than `0-9 # *`.
    pub const RECORD_FINISH_ON_KEY: Self = Self(13613);
    /// 13614: `<Record transcribe>` is not true or false.
    pub const RECORD_TRANSCRIBE: Self = Self(13614);
    /// 13616: `<Record playBeep>` is not true or false.
    pub const RECORD_PLAY_BEEP: Self = Self(13616);
    /// 13710: `<Redirect method>` is not GET or POST.
    pub const REDIRECT_METHOD: Self = Self(13710);
    /// 13910: `<Pause length>` is not a positive integer in range.
    pub const PAUSE_LENGTH: Self = Self(13910);
}

impl fmt::Display for TwilioCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A TwiML document was refused.
///
/// Every variant names the element (and attribute) at fault and maps to the Twilio code of the
/// same mistake through [`ParseError::code`]. Attribute values are quoted only up to
/// [`MAX_QUOTED_VALUE`] characters, and never for `password`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The document is larger than [`Limits::max_document_bytes`](crate::Limits).
    #[error(
        "the TwiML document is {size} bytes, over the {limit}-byte limit: split it with <Redirect> (Twilio error 11750)"
    )]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The document is not well-formed XML (or not UTF-8).
    #[error(
        "the TwiML document is not well-formed XML at byte {position}: {reason} (Twilio error 12100)"
    )]
    Malformed {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What the XML reader objected to.
        reason: String,
    },
    /// The document has a `<!DOCTYPE>`: DTDs and entity declarations are never processed, so
    /// external entities (XXE) cannot be loaded.
    #[error(
        "the TwiML document has a <!DOCTYPE> declaration; DTDs and custom entities are not accepted (Twilio error 12100)"
    )]
    Doctype,
    /// Elements are nested deeper than [`Limits::max_depth`](crate::Limits).
    #[error(
        "<{element}> is nested {depth} elements deep, over the limit of {limit} (Twilio error 12100)"
    )]
    TooDeep {
        /// The element that went too deep.
        element: String,
        /// Its depth (the root is 1).
        depth: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The document has more elements or verbs than [`Limits`](crate::Limits) allow.
    #[error("the TwiML document has more than {limit} {what} (Twilio error 12200)")]
    TooMany {
        /// What was counted: "elements" or "verbs".
        what: &'static str,
        /// The limit in force.
        limit: usize,
    },
    /// The root element is not `<Response>`.
    #[error(
        "the root element is <{found}>; a TwiML voice document starts with <Response> (Twilio error 12102)"
    )]
    RootNotResponse {
        /// The root element found.
        found: String,
    },
    /// An element that TwiML does not define, or one not allowed where it is.
    #[error("<{element}> is not allowed inside <{parent}> (Twilio error {code})")]
    UnexpectedElement {
        /// 12200, or the verb's own code (13215 for `<Dial>`, 13320 for `<Gather>`).
        code: TwilioCode,
        /// The element found.
        element: String,
        /// Its parent.
        parent: String,
    },
    /// An attribute the element does not have.
    #[error("<{element}> has no attribute `{attribute}` (Twilio error 12200)")]
    UnknownAttribute {
        /// The element.
        element: String,
        /// The attribute.
        attribute: String,
    },
    /// Valid TwiML that mediaseal does not implement (for example `<Conference>` or
    /// `<Gather input="speech">`).
    #[error("{what} is valid TwiML but mediaseal does not support it (Twilio error 12200)")]
    Unsupported {
        /// What, in words (`<Dial sequential>`, `<Gather input="speech">`).
        what: String,
    },
    /// An attribute value outside what the attribute accepts.
    #[error("<{element} {attribute}=\"{value}\">: expected {expected} (Twilio error {code})")]
    InvalidValue {
        /// The code Twilio reports for this attribute.
        code: TwilioCode,
        /// The element.
        element: String,
        /// The attribute, or `#text` for the element's body.
        attribute: String,
        /// The value, cut to [`MAX_QUOTED_VALUE`] characters (`<redacted>` for passwords).
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The element lacks content it needs, or has text where none belongs.
    #[error("<{element}>: {problem} (Twilio error {code})")]
    InvalidContent {
        /// The code Twilio reports.
        code: TwilioCode,
        /// The element.
        element: String,
        /// What is wrong, in words.
        problem: &'static str,
    },
}

/// How many characters of an offending value an error quotes.
pub const MAX_QUOTED_VALUE: usize = 64;

impl ParseError {
    /// The Twilio error or warning code for this refusal.
    pub fn code(&self) -> TwilioCode {
        match self {
            Self::TooLarge { .. } => TwilioCode::BODY_TOO_LARGE,
            Self::Malformed { .. } | Self::Doctype | Self::TooDeep { .. } => {
                TwilioCode::DOCUMENT_PARSE_FAILURE
            }
            Self::RootNotResponse { .. } => TwilioCode::ROOT_NOT_RESPONSE,
            Self::TooMany { .. } | Self::UnknownAttribute { .. } | Self::Unsupported { .. } => {
                TwilioCode::SCHEMA_VALIDATION
            }
            Self::UnexpectedElement { code, .. }
            | Self::InvalidValue { code, .. }
            | Self::InvalidContent { code, .. } => *code,
        }
    }

    /// The element the error is about, when there is one.
    pub fn element(&self) -> Option<&str> {
        match self {
            Self::TooDeep { element, .. }
            | Self::UnexpectedElement { element, .. }
            | Self::UnknownAttribute { element, .. }
            | Self::InvalidValue { element, .. }
            | Self::InvalidContent { element, .. } => Some(element),
            Self::RootNotResponse { found } => Some(found),
            _ => None,
        }
    }

    /// The attribute the error is about, when there is one (`#text` for element bodies).
    pub fn attribute(&self) -> Option<&str> {
        match self {
            Self::UnknownAttribute { attribute, .. } | Self::InvalidValue { attribute, .. } => {
                Some(attribute)
            }
            _ => None,
        }
    }
}

/// Cuts a value for quoting in an error message, on a character boundary.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_VALUE) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}
