//! The typed document back to TwiML text.
//!
//! Every attribute is written explicitly (defaults included) so that parsing the output gives
//! back an equal [`Response`]; the fuzz target and the round-trip tests rely on that.

use core::fmt::Write as _;

use crate::model::*;

impl Response {
    /// Serialises the document as TwiML, with an XML declaration.
    pub fn to_xml(&self) -> String {
        let mut w = Writer::default();
        w.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        w.open("Response", &[]);
        for verb in &self.verbs {
            w.verb(verb);
        }
        w.close("Response");
        w.out
    }
}

/// Escapes markup characters, and the whitespace characters that XML would otherwise normalise
/// away on reading (CR everywhere; tab and LF inside attribute values).
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

#[derive(Default)]
struct Writer {
    out: String,
}

type Attrs = Vec<(&'static str, String)>;

fn method(attrs: &mut Attrs, name: &'static str, m: HttpMethod) {
    attrs.push((name, m.as_str().to_owned()));
}

fn opt(attrs: &mut Attrs, name: &'static str, value: Option<&str>) {
    if let Some(v) = value {
        attrs.push((name, v.to_owned()));
    }
}

fn boolean(attrs: &mut Attrs, name: &'static str, value: bool) {
    attrs.push((name, if value { "true" } else { "false" }.to_owned()));
}

impl Writer {
    fn open(&mut self, name: &str, attrs: &[(&'static str, String)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"");
            escape_into(&mut self.out, v, true);
            self.out.push('"');
        }
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        let _ = write!(self.out, "</{name}>");
    }

    fn leaf(&mut self, name: &str, attrs: &[(&'static str, String)], text: &str) {
        self.open(name, attrs);
        escape_into(&mut self.out, text, false);
        self.close(name);
    }

    fn verb(&mut self, verb: &Verb) {
        match verb {
            Verb::Dial(d) => self.dial(d),
            Verb::Record(r) => self.record(r),
            Verb::Play(p) => self.play(p),
            Verb::Say(s) => self.say(s),
            Verb::Gather(g) => self.gather(g),
            Verb::Pause(p) => self.pause(*p),
            Verb::Redirect(r) => {
                let mut a = Attrs::new();
                method(&mut a, "method", r.method);
                self.leaf("Redirect", &a, r.url.as_str());
            }
            Verb::Reject(r) => self.leaf("Reject", &[("reason", r.reason.as_str().to_owned())], ""),
            Verb::Hangup => self.leaf("Hangup", &[], ""),
        }
    }

    fn dial(&mut self, d: &Dial) {
        let mut a = Attrs::new();
        opt(&mut a, "action", d.action.as_ref().map(UrlRef::as_str));
        method(&mut a, "method", d.method);
        a.push(("timeout", d.timeout_secs.to_string()));
        a.push(("timeLimit", d.time_limit_secs.to_string()));
        opt(&mut a, "callerId", d.caller_id.as_deref());
        a.push(("record", d.record.as_str().to_owned()));
        a.push(("trim", d.trim.as_str().to_owned()));
        opt(
            &mut a,
            "recordingStatusCallback",
            d.recording_status_callback.as_ref().map(UrlRef::as_str),
        );
        method(
            &mut a,
            "recordingStatusCallbackMethod",
            d.recording_status_callback_method,
        );
        a.push((
            "recordingStatusCallbackEvent",
            d.recording_status_callback_event.to_attribute(),
        ));
        boolean(&mut a, "answerOnBridge", d.answer_on_bridge);
        boolean(&mut a, "hangupOnStar", d.hangup_on_star);
        opt(&mut a, "ringTone", d.ring_tone.as_deref());
        self.open("Dial", &a);
        match &d.target {
            DialTarget::Sip(s) => {
                let mut a = Attrs::new();
                opt(&mut a, "username", s.username.as_deref());
                opt(
                    &mut a,
                    "password",
                    s.password.as_ref().map(SipPassword::expose),
                );
                opt(&mut a, "url", s.url.as_ref().map(UrlRef::as_str));
                method(&mut a, "method", s.method);
                a.push((
                    "statusCallbackEvent",
                    s.status_callback_event.to_attribute(),
                ));
                opt(
                    &mut a,
                    "statusCallback",
                    s.status_callback.as_ref().map(UrlRef::as_str),
                );
                method(&mut a, "statusCallbackMethod", s.status_callback_method);
                self.leaf("Sip", &a, s.uri.as_str());
            }
            DialTarget::Numbers(numbers) => {
                for n in numbers {
                    let mut a = Attrs::new();
                    opt(&mut a, "sendDigits", n.send_digits.as_deref());
                    opt(&mut a, "url", n.url.as_ref().map(UrlRef::as_str));
                    method(&mut a, "method", n.method);
                    a.push((
                        "statusCallbackEvent",
                        n.status_callback_event.to_attribute(),
                    ));
                    opt(
                        &mut a,
                        "statusCallback",
                        n.status_callback.as_ref().map(UrlRef::as_str),
                    );
                    method(&mut a, "statusCallbackMethod", n.status_callback_method);
                    self.leaf("Number", &a, &n.number);
                }
            }
        }
        self.close("Dial");
    }

    fn record(&mut self, r: &Record) {
        let mut a = Attrs::new();
        opt(&mut a, "action", r.action.as_ref().map(UrlRef::as_str));
        method(&mut a, "method", r.method);
        a.push(("timeout", r.timeout_secs.to_string()));
        a.push(("finishOnKey", r.finish_on_key.clone()));
        a.push(("maxLength", r.max_length_secs.to_string()));
        boolean(&mut a, "playBeep", r.play_beep);
        a.push(("trim", r.trim.as_str().to_owned()));
        opt(
            &mut a,
            "recordingStatusCallback",
            r.recording_status_callback.as_ref().map(UrlRef::as_str),
        );
        method(
            &mut a,
            "recordingStatusCallbackMethod",
            r.recording_status_callback_method,
        );
        a.push((
            "recordingStatusCallbackEvent",
            r.recording_status_callback_event.to_attribute(),
        ));
        boolean(&mut a, "transcribe", r.transcribe);
        opt(
            &mut a,
            "transcribeCallback",
            r.transcribe_callback.as_ref().map(UrlRef::as_str),
        );
        self.leaf("Record", &a, "");
    }

    fn play(&mut self, p: &Play) {
        let mut a = vec![("loop", p.repeat.as_loop_attribute().to_string())];
        match &p.source {
            PlaySource::Url(u) => self.leaf("Play", &a, u.as_str()),
            PlaySource::Digits(d) => {
                a.push(("digits", d.clone()));
                self.leaf("Play", &a, "");
            }
        }
    }

    fn say(&mut self, s: &Say) {
        let mut a = Attrs::new();
        opt(&mut a, "voice", s.voice.as_deref());
        opt(&mut a, "language", s.language.as_deref());
        a.push(("loop", s.repeat.as_loop_attribute().to_string()));
        self.leaf("Say", &a, &s.text);
    }

    fn pause(&mut self, p: Pause) {
        self.leaf("Pause", &[("length", p.length_secs.to_string())], "");
    }

    fn gather(&mut self, g: &Gather) {
        let mut a = vec![("input", "dtmf".to_owned())];
        opt(&mut a, "action", g.action.as_ref().map(UrlRef::as_str));
        method(&mut a, "method", g.method);
        a.push(("timeout", g.timeout_secs.to_string()));
        a.push((
            "finishOnKey",
            g.finish_on_key.map(String::from).unwrap_or_default(),
        ));
        if let Some(n) = g.num_digits {
            a.push(("numDigits", n.to_string()));
        }
        boolean(&mut a, "actionOnEmptyResult", g.action_on_empty_result);
        self.open("Gather", &a);
        for prompt in &g.prompts {
            match prompt {
                Prompt::Say(s) => self.say(s),
                Prompt::Play(p) => self.play(p),
                Prompt::Pause(p) => self.pause(*p),
            }
        }
        self.close("Gather");
    }
}
