//! Language operators (issue 13): the built-in operator types, the account's custom operators'
//! configuration, and running the operators attached to a service over a transcript's
//! sentences.
//!
//! Two types exist: PII extraction (a built-in operator with a fixed SID, not configurable) and
//! phrase matching (custom operators, each with its own phrases). Each operator's result is one
//! object sealed through the sink ([`Product::OperatorResult`]) the moment it is serialised,
//! exactly as the sentences are: with the service's `EncryptionCredentialSid`, else at rest, plus
//! data logging's at-rest copy. Only where the objects are is stored; no result text is.

use std::collections::BTreeMap;
use std::fmt;

use mediaseal_sink::policy::{self, Setting};
use mediaseal_sink::{Product, Seal, SinkError};
use mediaseal_store::StoreError;
use mediaseal_store::model::Sealing;
use mediaseal_store::model::intelligence::Transcript;
use mediaseal_store::model::operators::OperatorResultRecord;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Intelligence;
use crate::pii;
use crate::sentences::Sentence;

/// What an operator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKind {
    /// Card numbers, phone numbers, e-mail addresses and other identifying numbers.
    PiiExtraction,
    /// The operator's own phrases.
    PhraseMatching,
}

/// A built-in operator type (`EY…`), as `/v2/OperatorTypes` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorType {
    /// Fixed `EY…` SID.
    pub sid: &'static str,
    /// `OperatorType` of a custom operator names the type by this (or by its SID).
    pub name: &'static str,
    /// Display name.
    pub friendly_name: &'static str,
    /// What it finds.
    pub description: &'static str,
    /// Twilio's `output_type`.
    pub output_type: &'static str,
    /// The `operator_type` its results carry.
    pub result_type: &'static str,
    /// Whether custom operators of this type can be created.
    pub configurable: bool,
    /// What it does.
    pub kind: OperatorKind,
}

/// PII extraction.
pub const PII_TYPE: OperatorType = OperatorType {
    sid: "EY00000000000000000000000000000001",
    name: "pii-extraction",
    friendly_name: "PII Extraction",
    description: "Finds card numbers, phone numbers, e-mail addresses and other identifying numbers \
                  (national IDs, accounts), with their positions, however the recogniser groups the digits",
    output_type: "text-extraction",
    result_type: "pii-extract",
    configurable: false,
    kind: OperatorKind::PiiExtraction,
};

/// Phrase matching.
pub const PHRASE_TYPE: OperatorType = OperatorType {
    sid: "EY00000000000000000000000000000002",
    name: "phrase-matching",
    friendly_name: "Phrase Matching",
    description: "Finds the utterances that contain one of the operator's phrases \
                  (whole words, ignoring case and punctuation)",
    output_type: "text-extraction",
    result_type: "extract",
    configurable: true,
    kind: OperatorKind::PhraseMatching,
};

/// The built-in operator types, in SID order.
pub const OPERATOR_TYPES: [OperatorType; 2] = [PII_TYPE, PHRASE_TYPE];

/// The built-in PII operator every account can attach.
pub const PII_OPERATOR_SID: &str = "LY00000000000000000000000000000001";
/// Its name.
pub const PII_OPERATOR_NAME: &str = "PII Extraction";

/// The JSON schema of a phrase-matching `Config` (the type's `config_schema`).
pub const PHRASE_CONFIG_SCHEMA: &str = r#"{"type":"object","required":["configuration"],"additionalProperties":false,"properties":{"configuration":{"type":"object","required":["phrases"],"additionalProperties":false,"properties":{"phrases":{"type":"array","minItems":1,"maxItems":100,"items":{"type":"string","minLength":1,"maxLength":200}}}}}}"#;

impl OperatorType {
    /// The type named `name_or_sid` (a name ignoring case, or an `EY…` SID).
    pub fn find(name_or_sid: &str) -> Option<Self> {
        OPERATOR_TYPES
            .into_iter()
            .find(|t| t.sid == name_or_sid || t.name.eq_ignore_ascii_case(name_or_sid))
    }
}

/// Most phrases of one operator.
pub const MAX_PHRASES: usize = 100;
/// Longest phrase, in characters.
pub const MAX_PHRASE_CHARS: usize = 200;
/// Longest `Config`, in bytes.
pub const MAX_CONFIG_BYTES: usize = 64 << 10;

/// A phrase-matching operator's configuration: `{"configuration":{"phrases":[…]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhraseConfig {
    /// The settings.
    pub configuration: Phrases,
}

/// The phrases to look for, trimmed, in the order given, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phrases {
    /// Each 1 to [`MAX_PHRASE_CHARS`] characters with at least one letter or digit.
    pub phrases: Vec<String>,
}

/// Why a `Config` cannot be used. Each says which field, and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Larger than [`MAX_CONFIG_BYTES`].
    #[error("Config is longer than {MAX_CONFIG_BYTES} bytes")]
    TooLong,
    /// Not JSON at all.
    #[error("Config is not JSON ({what} at line {line}, column {column})")]
    NotJson {
        /// What the parser stumbled on.
        what: &'static str,
        /// 1-based.
        line: usize,
        /// 1-based.
        column: usize,
    },
    /// A field holds the wrong kind of value.
    #[error("Config field {field} must be {expected}")]
    WrongType {
        /// `configuration.phrases`, …
        field: String,
        /// `an object`, `an array of strings`, …
        expected: &'static str,
    },
    /// A field that must be there is not.
    #[error("Config field {0} is missing; expected {{\"configuration\":{{\"phrases\":[\"…\"]}}}}")]
    Missing(&'static str),
    /// A field this operator type does not have (a typo, most likely).
    #[error(
        "Config field {0} is unknown; a phrase-matching configuration has only configuration.phrases"
    )]
    Unknown(String),
    /// `configuration.phrases` is empty.
    #[error("Config field configuration.phrases must hold at least one phrase")]
    NoPhrases,
    /// More than [`MAX_PHRASES`] phrases.
    #[error(
        "Config field configuration.phrases holds {0} phrases; at most {MAX_PHRASES} are allowed"
    )]
    TooManyPhrases(usize),
    /// A phrase is empty, too long or has control characters.
    #[error(
        "Config field configuration.phrases[{0}] must be 1 to {MAX_PHRASE_CHARS} characters with a letter or digit and no control characters"
    )]
    BadPhrase(usize),
    /// The operator type takes no configuration.
    #[error(
        "operator type {0} cannot be configured; only phrase-matching operators can be created"
    )]
    NotConfigurable(&'static str),
}

fn json_error(e: &serde_json::Error) -> ConfigError {
    ConfigError::NotJson {
        what: match e.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        },
        line: e.line(),
        column: e.column(),
    }
}

/// Parses the `Config` of a custom operator of type `kind`. Pure: no I/O, never panics.
pub fn parse_config(kind: OperatorType, text: &str) -> Result<PhraseConfig, ConfigError> {
    if !kind.configurable {
        return Err(ConfigError::NotConfigurable(kind.name));
    }
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLong);
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    let serde_json::Value::Object(top) = value else {
        return Err(ConfigError::WrongType {
            field: "(top level)".to_owned(),
            expected: "an object",
        });
    };
    if let Some(unknown) = top.keys().find(|k| k.as_str() != "configuration") {
        return Err(ConfigError::Unknown(unknown.clone()));
    }
    let inner = match top.get("configuration") {
        None => return Err(ConfigError::Missing("configuration")),
        Some(serde_json::Value::Object(o)) => o,
        Some(_) => {
            return Err(ConfigError::WrongType {
                field: "configuration".to_owned(),
                expected: "an object",
            });
        }
    };
    if let Some(unknown) = inner.keys().find(|k| k.as_str() != "phrases") {
        return Err(ConfigError::Unknown(format!("configuration.{unknown}")));
    }
    let list = match inner.get("phrases") {
        None => return Err(ConfigError::Missing("configuration.phrases")),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => {
            return Err(ConfigError::WrongType {
                field: "configuration.phrases".to_owned(),
                expected: "an array of strings",
            });
        }
    };
    if list.is_empty() {
        return Err(ConfigError::NoPhrases);
    }
    if list.len() > MAX_PHRASES {
        return Err(ConfigError::TooManyPhrases(list.len()));
    }
    let mut phrases: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let serde_json::Value::String(s) = item else {
            return Err(ConfigError::WrongType {
                field: format!("configuration.phrases[{i}]"),
                expected: "a string",
            });
        };
        let phrase = s.trim();
        let ok = !phrase.is_empty()
            && phrase.chars().count() <= MAX_PHRASE_CHARS
            && !phrase.chars().any(char::is_control)
            && !tokens(phrase).is_empty();
        if !ok {
            return Err(ConfigError::BadPhrase(i));
        }
        if !phrases.iter().any(|p| p == phrase) {
            phrases.push(phrase.to_owned());
        }
    }
    Ok(PhraseConfig {
        configuration: Phrases { phrases },
    })
}

impl PhraseConfig {
    /// The normalised JSON, as stored and shown.
    pub fn to_json(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An operator ready to run.
#[derive(Debug, Clone)]
pub struct Operator {
    /// `LY…`.
    pub sid: String,
    /// Its friendly name.
    pub name: String,
    /// What it does, with its phrases.
    pub config: OperatorConfig,
}

/// What an operator looks for.
#[derive(Debug, Clone)]
pub enum OperatorConfig {
    /// PII extraction.
    Pii,
    /// These phrases.
    Phrases(PhraseConfig),
}

impl Operator {
    /// The built-in PII operator.
    pub fn pii() -> Self {
        Self {
            sid: PII_OPERATOR_SID.to_owned(),
            name: PII_OPERATOR_NAME.to_owned(),
            config: OperatorConfig::Pii,
        }
    }

    /// The type of its results (`pii-extract`, `extract`).
    pub fn result_type(&self) -> &'static str {
        match self.config {
            OperatorConfig::Pii => PII_TYPE.result_type,
            OperatorConfig::Phrases(_) => PHRASE_TYPE.result_type,
        }
    }
}

/// One found stretch of an utterance.
#[derive(Clone, PartialEq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct UtterancePart {
    /// Seconds from the start of the audio, when the engine gave word times.
    pub end_time: Option<String>,
    /// Index of its last word in the utterance, from 0.
    pub end_word: usize,
    /// The entity type (`CREDIT_CARD`, `PHONE_NUMBER`, `NUMBER`, `EMAIL_ADDRESS`) or the phrase.
    pub label: String,
    /// Seconds from the start of the audio, when the engine gave word times.
    pub start_time: Option<String>,
    /// Index of its first word in the utterance, from 0.
    pub start_word: usize,
    /// The words as recognised.
    pub text: String,
}

/// An utterance (sentence) with something found in it.
#[derive(Clone, PartialEq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct UtteranceResult {
    /// The audio channel, 1-based.
    pub media_channel: u32,
    /// The sentence's `GX…`.
    pub sentence_sid: String,
    /// The sentence's index in the transcript.
    pub utterance_index: u64,
    /// What was found, in order.
    pub utterance_parts: Vec<UtterancePart>,
}

/// One operator's result for a transcript: the plaintext of its sealed object, in Twilio's
/// `OperatorResult` shape (fields in alphabetical order; `url` is added when served).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorResult {
    /// Something was found.
    pub extract_match: bool,
    /// Label → the values found (PII normalised to its digits; phrases as recognised).
    pub extract_results: BTreeMap<String, Vec<String>>,
    /// The operator's name.
    pub name: String,
    /// `LY…`.
    pub operator_sid: String,
    /// `pii-extract` or `extract`.
    pub operator_type: String,
    /// `GT…`.
    pub transcript_sid: String,
    /// Some utterance matched.
    pub utterance_match: bool,
    /// The utterances with something found, in transcript order.
    pub utterance_results: Vec<UtteranceResult>,
}

impl OperatorResult {
    /// The redacted view (`AutoRedaction`): what a PII operator found is shown by its type
    /// only, in the extracted values and in the utterances; the plaintext it replaces is wiped.
    /// Other operators' results are left as they are.
    pub fn redact(&mut self) {
        if self.operator_type != PII_TYPE.result_type {
            return;
        }
        for (label, values) in &mut self.extract_results {
            values.zeroize();
            *values = vec![format!("[{label}]")];
        }
        for u in &mut self.utterance_results {
            for p in &mut u.utterance_parts {
                p.text.zeroize();
                p.text = format!("[{}]", p.label);
            }
        }
    }

    /// Whether a result of `operator_type` has a redacted view distinct from the full one.
    pub fn has_redacted_view(operator_type: &str) -> bool {
        operator_type == PII_TYPE.result_type
    }
}

/// Object key of the redacted view of the result stored under `object_key` (sealed beside it
/// with the same key, for PII results of redacting services sealed with the customer's key).
pub fn redacted_key(object_key: &str) -> String {
    format!("{object_key}-redacted")
}

impl fmt::Debug for OperatorResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorResult")
            .field("operator_sid", &self.operator_sid)
            .field("transcript_sid", &self.transcript_sid)
            .field("extract_match", &self.extract_match)
            .field("utterances", &self.utterance_results.len())
            .finish()
    }
}

impl fmt::Debug for UtteranceResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtteranceResult({} parts)", self.utterance_parts.len())
    }
}

impl fmt::Debug for UtterancePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtterancePart(<{} bytes>)", self.text.len())
    }
}

impl Drop for OperatorResult {
    fn drop(&mut self) {
        // Map keys cannot be wiped in place: take them out and wipe the owned strings.
        for (mut label, mut values) in std::mem::take(&mut self.extract_results) {
            label.zeroize();
            values.zeroize();
        }
    }
}

/// The opened result object is not a result (damaged or from a newer version).
#[derive(Debug, thiserror::Error)]
#[error("the stored operator result could not be read: {0}")]
pub struct ResultDocError(String);

impl OperatorResult {
    /// The JSON of the sealed object, in a buffer wiped on drop.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(1024));
        // Writing a struct of strings, numbers and maps into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out
    }

    /// Parses an opened result object. The error names a position, never the content.
    pub fn parse(plain: &[u8]) -> Result<Self, ResultDocError> {
        serde_json::from_slice(plain).map_err(|e| {
            let ConfigError::NotJson { what, line, column } = json_error(&e) else {
                return ResultDocError("unreadable".to_owned());
            };
            ResultDocError(format!("{what} at line {line}, column {column}"))
        })
    }
}

/// Lowercase words of letters and digits: what phrases are matched on.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The words of a sentence with their times: the engine's words when it gave them, else the
/// text split on whitespace.
fn words_of(s: &Sentence) -> Vec<(&str, Option<&str>, Option<&str>)> {
    if s.words.is_empty() {
        s.transcript
            .split_whitespace()
            .map(|w| (w, None, None))
            .collect()
    } else {
        s.words
            .iter()
            .map(|w| {
                (
                    w.word.as_str(),
                    w.start_time.as_deref(),
                    w.end_time.as_deref(),
                )
            })
            .collect()
    }
}

/// Runs `operator` over `sentences` of transcript `transcript_sid`. Pure.
pub fn run(operator: &Operator, transcript_sid: &str, sentences: &[Sentence]) -> OperatorResult {
    let mut extract: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut utterances = Vec::new();
    // PII is looked for over all sentences at once: a number can run on into the channel's
    // next sentence.
    let pii_found = match operator.config {
        OperatorConfig::Pii => pii::find_in_sentences(
            &sentences
                .iter()
                .map(|s| (s.media_channel, words_of(s).iter().map(|w| w.0).collect()))
                .collect::<Vec<_>>(),
        ),
        OperatorConfig::Phrases(_) => Vec::new(),
    };
    for (index, s) in sentences.iter().enumerate() {
        let words = words_of(s);
        let mut parts = Vec::new();
        let mut part = |first: usize, last: usize, label: String, value: String| {
            let text: Vec<&str> = words[first..=last].iter().map(|w| w.0).collect();
            parts.push(UtterancePart {
                end_time: words[last].2.map(str::to_owned),
                end_word: last,
                label: label.clone(),
                start_time: words[first].1.map(str::to_owned),
                start_word: first,
                text: text.join(" "),
            });
            let values = extract.entry(label).or_default();
            if !values.contains(&value) {
                values.push(value);
            }
        };
        match &operator.config {
            OperatorConfig::Pii => {
                for found in pii_found.get(index).into_iter().flatten() {
                    let label = found.entity.label().trim_matches(['[', ']']).to_owned();
                    part(found.first, found.last, label, found.value.clone());
                }
            }
            OperatorConfig::Phrases(config) => {
                // Each word's tokens, so a phrase matches across the engine's word split.
                let word_tokens: Vec<Vec<String>> = words.iter().map(|w| tokens(w.0)).collect();
                let flat: Vec<(usize, &str)> = word_tokens
                    .iter()
                    .enumerate()
                    .flat_map(|(i, ts)| ts.iter().map(move |t| (i, t.as_str())))
                    .collect();
                for phrase in &config.configuration.phrases {
                    let want = tokens(phrase);
                    if want.is_empty() || want.len() > flat.len() {
                        continue;
                    }
                    for start in 0..=(flat.len() - want.len()) {
                        let window = &flat[start..start + want.len()];
                        if window.iter().zip(&want).all(|((_, t), w)| *t == w.as_str()) {
                            let (first, last) = (window[0].0, window[window.len() - 1].0);
                            let text: Vec<&str> = words[first..=last].iter().map(|w| w.0).collect();
                            part(first, last, phrase.clone(), text.join(" "));
                        }
                    }
                }
            }
        }
        parts.sort_by_key(|p| (p.start_word, p.end_word));
        if !parts.is_empty() {
            utterances.push(UtteranceResult {
                media_channel: s.media_channel,
                sentence_sid: s.sid.clone(),
                utterance_index: s.sentence_index,
                utterance_parts: parts,
            });
        }
    }
    OperatorResult {
        extract_match: !extract.is_empty(),
        extract_results: extract,
        name: operator.name.clone(),
        operator_sid: operator.sid.clone(),
        operator_type: operator.result_type().to_owned(),
        transcript_sid: transcript_sid.to_owned(),
        utterance_match: !utterances.is_empty(),
        utterance_results: utterances,
    }
}

/// Why the operator results of a transcript could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OperatorsError {
    /// The service's key cannot be used any more.
    #[error("{0}")]
    Refused(String),
    /// Sealing failed.
    #[error("{0}")]
    Sink(#[from] SinkError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Intelligence {
    /// The operators attached to service `service_sid` of `account_sid`, ready to run. A
    /// custom operator deleted meanwhile is skipped; one whose stored configuration no longer
    /// parses is skipped with a warning.
    pub async fn attached_operators(
        &self,
        account_sid: &str,
        service_sid: &str,
    ) -> Result<Vec<Operator>, StoreError> {
        let mut out = Vec::new();
        for sid in self
            .services
            .meta
            .attached_operators(account_sid, service_sid)
            .await?
        {
            if sid == PII_OPERATOR_SID {
                out.push(Operator::pii());
                continue;
            }
            let Some(custom) = self
                .services
                .meta
                .custom_operator(account_sid, &sid)
                .await?
            else {
                continue;
            };
            let Some(kind) = OperatorType::find(&custom.operator_type) else {
                tracing::warn!(operator = %sid, "operator of an unknown type skipped");
                continue;
            };
            match parse_config(kind, &custom.config) {
                Ok(config) => out.push(Operator {
                    sid,
                    name: custom.friendly_name,
                    config: OperatorConfig::Phrases(config),
                }),
                Err(e) => {
                    tracing::warn!(operator = %sid, error = %e, "operator with an unusable configuration skipped")
                }
            }
        }
        Ok(out)
    }

    /// Runs the operators attached to the transcript's service over its `sentences`, and
    /// seals each result as its own object under `{key}-op-{LY}`, as the sentences are sealed
    /// (policy for [`Product::OperatorResult`] with the transcript's key), plus data logging's
    /// at-rest copy of a customer-sealed result. Records where each is; on error, what was
    /// already stored is destroyed.
    pub(crate) async fn run_operators(
        &self,
        row: &Transcript,
        key: &str,
        sentences: &[Sentence],
    ) -> Result<usize, OperatorsError> {
        let operators = self
            .attached_operators(&row.account_sid, &row.service_sid)
            .await?;
        if operators.is_empty() {
            return Ok(0);
        }
        let setting = Setting {
            enabled: row.encryption_credential_sid.is_some(),
            key_sid: row.encryption_credential_sid.as_deref(),
        };
        let seal = policy::resolve(
            self.services.meta.as_ref(),
            Product::OperatorResult,
            &row.account_sid,
            setting,
        )
        .await?
        .map_err(|r| OperatorsError::Refused(r.to_string()))?
        .seal;
        let mut done = 0;
        for operator in &operators {
            let stored = self.seal_result(row, key, &seal, operator, sentences).await;
            if let Err(e) = stored {
                self.purge_operator_results(&row.account_sid, &row.sid)
                    .await;
                return Err(e);
            }
            done += 1;
        }
        Ok(done)
    }

    async fn seal_result(
        &self,
        row: &Transcript,
        key: &str,
        seal: &Seal,
        operator: &Operator,
        sentences: &[Sentence],
    ) -> Result<(), OperatorsError> {
        let mut result = run(operator, &row.sid, sentences);
        let json = result.to_json();
        // A redacting service's customer-sealed PII result also gets its redacted view, sealed
        // beside it now: the server cannot redact what it cannot open (`/Encrypted` serves it
        // by default, as `/Sentences/Encrypted` does).
        let redacted_json = (row.redaction
            && OperatorResult::has_redacted_view(operator.result_type())
            && matches!(seal, Seal::Customer { .. }))
        .then(|| {
            result.redact();
            result.to_json()
        });
        drop(result);
        let object_key = format!("{key}-op-{}", operator.sid);
        let stored = self.seal_bytes(&object_key, seal, &json).await?;
        let mut record = OperatorResultRecord {
            account_sid: row.account_sid.clone(),
            transcript_sid: row.sid.clone(),
            operator_sid: operator.sid.clone(),
            operator_type: operator.result_type().to_owned(),
            name: operator.name.clone(),
            sealing: stored.sealing,
            object_key: stored.object_key,
            log_object_key: None,
            date_created: self.services.now_us(),
        };
        let redacted = redacted_key(&record.object_key);
        if let Some(view) = &redacted_json
            && let Err(e) = self.seal_bytes(&redacted, seal, view).await
        {
            self.delete_objects([Some(record.object_key.as_str())])
                .await;
            return Err(e.into());
        }
        if row.data_logging && record.sealing == Sealing::Customer {
            match self
                .seal_bytes(&format!("{object_key}-log"), &Seal::AtRest, &json)
                .await
            {
                Ok(log) => record.log_object_key = Some(log.object_key),
                Err(e) => {
                    self.delete_objects([
                        Some(record.object_key.as_str()),
                        redacted_json.as_ref().map(|_| redacted.as_str()),
                    ])
                    .await;
                    return Err(e.into());
                }
            }
        }
        if let Err(e) = self.services.meta.insert_operator_result(&record).await {
            self.delete_objects([
                Some(record.object_key.as_str()),
                record.log_object_key.as_deref(),
                redacted_json.as_ref().map(|_| redacted.as_str()),
            ])
            .await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn seal_bytes(
        &self,
        key: &str,
        seal: &Seal,
        plain: &[u8],
    ) -> Result<mediaseal_sink::Stored, SinkError> {
        let mut sink = self.services.sinks.open(key, seal).await?;
        sink.write(plain).await?;
        sink.finish().await
    }

    async fn delete_objects<'a>(&self, keys: impl IntoIterator<Item = Option<&'a str>>) {
        for key in keys.into_iter().flatten() {
            if let Err(e) = self.services.objects().delete(key).await {
                tracing::warn!(error = %e, "operator result left to the sweeper");
            }
        }
    }

    /// Forgets the operator results of a transcript and destroys their objects (what fails is
    /// left to the orphan sweeper).
    pub async fn purge_operator_results(&self, account_sid: &str, transcript_sid: &str) {
        match self
            .services
            .meta
            .delete_operator_results(account_sid, transcript_sid)
            .await
        {
            Ok(results) => {
                for r in &results {
                    // The redacted view may not exist (not PII, not redacting): deleting a
                    // missing object is not an error.
                    let redacted = redacted_key(&r.object_key);
                    self.delete_objects([
                        Some(r.object_key.as_str()),
                        r.log_object_key.as_deref(),
                        Some(redacted.as_str()),
                    ])
                    .await;
                }
            }
            Err(e) => {
                tracing::warn!(transcript = %transcript_sid, error = %e, "operator results left to the sweeper")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentences::Word;

    fn sentence(index: u64, text: &str) -> Sentence {
        Sentence {
            confidence: None,
            end_time: None,
            media_channel: 1 + (index % 2) as u32,
            sentence_index: index,
            sid: format!("GX{index:032}"),
            start_time: None,
            transcript: text.to_owned(),
            words: text
                .split_whitespace()
                .enumerate()
                .map(|(i, w)| Word {
                    end_time: Some(format!("{}.500", i)),
                    start_time: Some(format!("{i}.000")),
                    word: w.to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn configs_parse_or_name_the_field() {
        let c = parse_config(
            PHRASE_TYPE,
            r#"{"configuration":{"phrases":[" lost card ","cancel","cancel"]}}"#,
        )
        .unwrap();
        assert_eq!(c.configuration.phrases, ["lost card", "cancel"]);
        assert_eq!(
            parse_config(PHRASE_TYPE, &c.to_json()).unwrap(),
            c,
            "the stored form parses again"
        );
        let err = |text: &str| parse_config(PHRASE_TYPE, text).unwrap_err();
        assert!(matches!(err("{"), ConfigError::NotJson { .. }));
        assert!(err("[]").to_string().contains("(top level)"));
        assert_eq!(err("{}"), ConfigError::Missing("configuration"));
        assert_eq!(
            err(r#"{"configuration":{}}"#),
            ConfigError::Missing("configuration.phrases")
        );
        assert_eq!(
            err(r#"{"configuration":{"phrase":["x"]}}"#),
            ConfigError::Unknown("configuration.phrase".to_owned())
        );
        assert_eq!(
            err(r#"{"configuration":{"phrases":[]}}"#),
            ConfigError::NoPhrases
        );
        assert!(
            err(r#"{"configuration":{"phrases":"x"}}"#)
                .to_string()
                .contains("configuration.phrases must be an array")
        );
        assert!(
            err(r#"{"configuration":{"phrases":["ok",3]}}"#)
                .to_string()
                .contains("configuration.phrases[1]")
        );
        assert_eq!(
            err(r#"{"configuration":{"phrases":["ok","  "]}}"#),
            ConfigError::BadPhrase(1)
        );
        assert_eq!(
            err(r#"{"configuration":{"phrases":["!!"]}}"#),
            ConfigError::BadPhrase(0)
        );
        let many: Vec<String> = (0..=MAX_PHRASES).map(|i| format!("\"p{i}\"")).collect();
        assert_eq!(
            err(&format!(
                r#"{{"configuration":{{"phrases":[{}]}}}}"#,
                many.join(",")
            )),
            ConfigError::TooManyPhrases(MAX_PHRASES + 1)
        );
        assert_eq!(
            parse_config(PII_TYPE, "{}").unwrap_err(),
            ConfigError::NotConfigurable("pii-extraction")
        );
        // The message never echoes the input.
        assert!(!err("{\"secret words").to_string().contains("secret"));
    }

    #[test]
    fn pii_operator_finds_entities_with_positions() {
        let sentences = [
            sentence(0, "hello there"),
            sentence(
                1,
                "my card is 4539 1488 0343 6467 and mail ann@example.com please",
            ),
            sentence(2, "call four one five five five five zero one three two"),
        ];
        let r = run(&Operator::pii(), "GT1", &sentences);
        assert!(r.extract_match && r.utterance_match);
        assert_eq!(r.operator_type, "pii-extract");
        assert_eq!(r.extract_results["CREDIT_CARD"], ["4539148803436467"]);
        assert_eq!(r.extract_results["EMAIL_ADDRESS"], ["ann@example.com"]);
        assert_eq!(r.extract_results["PHONE_NUMBER"], ["4155550132"]);
        assert_eq!(r.utterance_results.len(), 2);
        let card = &r.utterance_results[0].utterance_parts[0];
        assert_eq!((card.start_word, card.end_word), (3, 6));
        assert_eq!(card.text, "4539 1488 0343 6467");
        assert_eq!(card.start_time.as_deref(), Some("3.000"));
        assert_eq!(card.end_time.as_deref(), Some("6.500"));
        assert_eq!(r.utterance_results[1].utterance_index, 2);
        assert_eq!(r.utterance_results[1].media_channel, 1);

        // An expiry date, however it was spoken, with its position.
        let r = run(
            &Operator::pii(),
            "GT2",
            &[sentence(0, "it expires zero nine twenty seven thanks")],
        );
        assert_eq!(r.extract_results["EXPIRY_DATE"], ["09/27"]);
        let date = &r.utterance_results[0].utterance_parts[0];
        assert_eq!((date.start_word, date.end_word), (2, 5));
        assert_eq!(date.label, "EXPIRY_DATE");
        assert_eq!(
            (date.start_time.as_deref(), date.end_time.as_deref()),
            (Some("2.000"), Some("5.500"))
        );
        let r = run(&Operator::pii(), "GT1", &sentences);

        // A card the recogniser split over two sentences of one channel (the other channel's
        // sentence in between): one value, a part in each utterance.
        let split = [
            sentence(1, "it is 4539 1488,"),
            sentence(2, "okay"),
            sentence(3, "0343 6467 thanks"),
        ];
        let s = run(&Operator::pii(), "GT3", &split);
        assert_eq!(s.extract_results["CREDIT_CARD"], ["4539148803436467"]);
        let parts: Vec<(u64, usize, usize)> = s
            .utterance_results
            .iter()
            .flat_map(|u| {
                u.utterance_parts
                    .iter()
                    .map(move |p| (u.utterance_index, p.start_word, p.end_word))
            })
            .collect();
        assert_eq!(parts, [(1, 2, 3), (3, 0, 1)]);

        let json = r.to_json();
        assert_eq!(OperatorResult::parse(&json).unwrap(), r);
        assert!(!format!("{r:?}").contains("4539"));
        assert!(OperatorResult::parse(b"{\"secret").is_err());
    }

    #[test]
    fn phrase_operator_matches_whole_words_ignoring_case() {
        let config = parse_config(
            PHRASE_TYPE,
            r#"{"configuration":{"phrases":["Lost card","refund"]}}"#,
        )
        .unwrap();
        let op = Operator {
            sid: "LY1".to_owned(),
            name: "Complaints".to_owned(),
            config: OperatorConfig::Phrases(config),
        };
        let sentences = [
            sentence(0, "I want to report a LOST, card today"),
            sentence(1, "no refunds here"),
            sentence(2, "a refund please"),
        ];
        let r = run(&op, "GT1", &sentences);
        assert_eq!(r.operator_type, "extract");
        assert_eq!(r.extract_results["Lost card"], ["LOST, card"]);
        assert_eq!(r.extract_results["refund"], ["refund"]);
        let indexes: Vec<u64> = r
            .utterance_results
            .iter()
            .map(|u| u.utterance_index)
            .collect();
        assert_eq!(indexes, [0, 2]);
        let part = &r.utterance_results[0].utterance_parts[0];
        assert_eq!((part.start_word, part.end_word), (5, 6));

        let none = run(&op, "GT1", &[sentence(0, "nothing to see")]);
        assert!(!none.extract_match && !none.utterance_match);
    }
}
