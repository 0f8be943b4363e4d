//! The Calls resource (`/2010-04-01/Accounts/{AC}/Calls…`) in Twilio's shapes: list with
//! filters and paging, fetch, the call's recordings, owner/parent access only, and clear
//! refusals for what is not supported (changing or placing a call without a SIP edge), placing
//! a call through the live-call seam (its parameters checked first, `Record=true` and
//! `SendDigits` among them), and hanging up or redirecting a live call through the live-call
//! seam (a fake edge here; `mediaseal/tests/sip_edge.rs` hangs up a real call and
//! `mediaseal-voice/tests/originate.rs` records, sends digits to and redirects real ones).

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use mediaseal_server::sid::new_sid;
use mediaseal_service::calls::{
    CallRedirect, HangUp, LiveCallError, LiveCalls, LiveRecordingOptions, OutboundCall,
    RecordingChange, SipAuth,
};
use mediaseal_store::model::{
    Account, Call, CallChange, CallDirection, CallStatus, Recording, Sealing,
};
use support::{Creds, TestApp, wav_with_marker};

const S: i64 = 1_000_000;
/// 2026-01-02T00:00:00Z.
const JAN_2: i64 = 1_767_312_000 * S;

fn base(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}")
}

/// Records `statuses` of a new call of `account` (each one second after the last, from `at`),
/// the final one with `duration` seconds.
async fn call(
    app: &TestApp,
    account: &Account,
    to: &str,
    parent: Option<&str>,
    statuses: &[CallStatus],
    at: i64,
    duration: Option<i64>,
) -> Call {
    let sid = new_sid("CA");
    let mut last = None;
    for (i, status) in statuses.iter().enumerate() {
        let change = CallChange {
            sid: sid.clone(),
            account_sid: account.sid.clone(),
            parent_call_sid: parent.map(str::to_owned),
            direction: if parent.is_some() {
                CallDirection::OutboundDial
            } else {
                CallDirection::Inbound
            },
            from: "sip:alice@example.com".to_owned(),
            to: to.to_owned(),
            status: *status,
            duration_secs: status.is_final().then_some(duration).flatten(),
            sip_call_id: Some(format!("{sid}@test")),
            at: at + i64::try_from(i).unwrap() * S,
        };
        last = app
            .state
            .services
            .record_call_change(&change, None)
            .await
            .unwrap();
    }
    last.unwrap()
}

#[tokio::test]
async fn calls_are_listed_and_fetched_in_twilios_shape() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    use CallStatus::*;
    let done = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, InProgress, Completed],
        JAN_2,
        Some(1),
    )
    .await;
    let live = call(
        &app,
        &a,
        "sip:carol@d.sip.test",
        None,
        &[Ringing, InProgress],
        JAN_2 + DAY,
        None,
    )
    .await;
    let leg = call(
        &app,
        &a,
        "sip:dave@d.sip.test",
        Some(&done.sid),
        &[Ringing, Busy],
        JAN_2 + 2 * DAY,
        None,
    )
    .await;

    let r = app.get(&format!("{b}/Calls.json"), &c).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let page = r.json();
    let sids: Vec<&str> = page["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, [&leg.sid, &live.sid, &done.sid], "newest first");
    assert_eq!(page["page"], 0);
    assert_eq!(page["page_size"], 50);
    assert!(page["next_page_uri"].is_null());

    let r = app.get(&format!("{b}/Calls/{}.json", done.sid), &c).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let d = r.json();
    assert_eq!(d["sid"], done.sid.as_str());
    assert_eq!(d["account_sid"], a.sid.as_str());
    assert_eq!(d["status"], "completed");
    assert_eq!(d["direction"], "inbound");
    assert_eq!(d["from"], "sip:alice@example.com");
    assert_eq!(d["to"], "sip:bob@d.sip.test");
    assert_eq!(d["duration"], "1");
    assert_eq!(d["api_version"], "2010-04-01");
    assert_eq!(d["start_time"], "Fri, 02 Jan 2026 00:00:01 +0000");
    assert_eq!(d["end_time"], "Fri, 02 Jan 2026 00:00:02 +0000");
    assert_eq!(d["date_created"], "Fri, 02 Jan 2026 00:00:00 +0000");
    assert!(d["parent_call_sid"].is_null());
    assert_eq!(d["uri"], format!("{b}/Calls/{}.json", done.sid));
    assert_eq!(
        d["subresource_uris"]["recordings"],
        format!("{b}/Calls/{}/Recordings.json", done.sid)
    );

    let r = app.get(&format!("{b}/Calls/{}.json", live.sid), &c).await;
    let l = r.json();
    assert_eq!(l["status"], "in-progress");
    assert!(l["duration"].is_null() && l["end_time"].is_null());
    assert!(l["start_time"].is_string());

    let r = app.get(&format!("{b}/Calls/{}.json", leg.sid), &c).await;
    let g = r.json();
    assert_eq!(g["direction"], "outbound-dial");
    assert_eq!(g["parent_call_sid"], done.sid.as_str());
    assert_eq!(g["duration"], "0", "a call never answered lasted 0 s");
    assert!(g["start_time"].is_null());
}

const DAY: i64 = 86_400 * S;

#[tokio::test]
async fn the_list_filters_like_twilio() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    use CallStatus::*;
    let first = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, InProgress, Completed],
        JAN_2,
        Some(1),
    )
    .await;
    let second = call(
        &app,
        &a,
        "sip:carol@d.sip.test",
        None,
        &[Ringing, InProgress, Completed],
        JAN_2 + DAY,
        Some(1),
    )
    .await;
    let leg = call(
        &app,
        &a,
        "sip:carol@d.sip.test",
        Some(&second.sid),
        &[Ringing, NoAnswer],
        JAN_2 + DAY,
        None,
    )
    .await;
    let listed = |query: String| {
        let app = &app;
        let c = &c;
        let uri = format!("{b}/Calls.json?{query}");
        async move {
            let r = app.get(&uri, c).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {:?}", r.body);
            let mut sids: Vec<String> = r.json()["calls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["sid"].as_str().unwrap().to_owned())
                .collect();
            sids.sort();
            sids
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort_unstable();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(
        listed("To=sip%3Acarol%40d.sip.test".into()).await,
        sorted(vec![&second.sid, &leg.sid])
    );
    assert_eq!(
        listed("From=sip%3Aalice%40example.com&Status=completed".into()).await,
        sorted(vec![&first.sid, &second.sid])
    );
    assert_eq!(
        listed("Status=no-answer".into()).await,
        sorted(vec![&leg.sid])
    );
    assert_eq!(
        listed(format!("ParentCallSid={}", second.sid)).await,
        sorted(vec![&leg.sid])
    );
    assert_eq!(
        listed("StartTime=2026-01-02".into()).await,
        sorted(vec![&first.sid])
    );
    assert_eq!(
        listed("StartTime%3E=2026-01-03".into()).await,
        sorted(vec![&second.sid])
    );
    assert_eq!(
        listed("EndTime%3C=2026-01-02".into()).await,
        sorted(vec![&first.sid])
    );
    assert_eq!(
        listed("EndTime%3E=2026-01-03".into()).await,
        sorted(vec![&second.sid, &leg.sid])
    );

    // Paging: one a page, the token carries on with the filter.
    let r = app
        .get(&format!("{b}/Calls.json?Status=completed&PageSize=1"), &c)
        .await;
    let p = r.json();
    assert_eq!(p["calls"].as_array().unwrap().len(), 1);
    assert_eq!(p["calls"][0]["sid"], second.sid.as_str());
    let next = p["next_page_uri"].as_str().unwrap().to_owned();
    assert!(next.contains("Status=completed"), "{next}");
    let r = app.get(&next, &c).await;
    let p = r.json();
    assert_eq!(p["calls"][0]["sid"], first.sid.as_str());
    assert!(p["next_page_uri"].is_null());

    // Bad filters are named.
    for (query, name) in [
        ("Status=ended", "Status"),
        ("StartTime=yesterday", "StartTime"),
        ("EndTime%3E=2026-13-01", "EndTime>"),
        ("ParentCallSid=RE123", "ParentCallSid"),
    ] {
        let r = app.get(&format!("{b}/Calls.json?{query}"), &c).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        let e = r.json();
        assert_eq!(e["code"], 20001);
        assert!(e["message"].as_str().unwrap().contains(name), "{e}");
    }
}

#[tokio::test]
async fn accounts_see_only_their_own_calls_and_their_subaccounts() {
    let app = TestApp::new().await;
    let parent = app.account().await;
    let sub = app.subaccount(&parent).await;
    let stranger = app.account().await;
    let own = call(
        &app,
        &sub,
        "sip:bob@d.sip.test",
        None,
        &[CallStatus::Ringing],
        JAN_2,
        None,
    )
    .await;
    let uri = format!("{}/Calls/{}.json", base(&sub.sid), own.sid);
    assert_eq!(app.get(&uri, &Creds::of(&sub)).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&uri, &Creds::of(&parent)).await.status,
        StatusCode::OK,
        "a parent sees its subaccount's calls"
    );
    // A stranger: through the owner's path and through its own, the call does not exist.
    for uri in [
        uri.clone(),
        format!("{}/Calls/{}.json", base(&stranger.sid), own.sid),
    ] {
        let r = app.get(&uri, &Creds::of(&stranger)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {:?}", r.body);
        assert_eq!(r.json()["code"], 20404);
    }
    let r = app
        .get(
            &format!("{}/Calls.json", base(&stranger.sid)),
            &Creds::of(&stranger),
        )
        .await;
    assert_eq!(r.json()["calls"].as_array().unwrap().len(), 0);
    let r = app
        .get(
            &format!("{}/Calls.json", base(&sub.sid)),
            &Creds::of(&stranger),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_sids_and_unsupported_changes_get_clear_errors() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    for file in [
        "CA123.json",
        "RE0123456789abcdef0123456789abcdef.json",
        "CA0123456789abcdef0123456789abcdef.xml",
        &format!("{}.json", new_sid("CA")),
    ] {
        let r = app.get(&format!("{b}/Calls/{file}"), &c).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{file}: {:?}", r.body);
        let e = r.json();
        assert_eq!(e["code"], 20404);
        assert!(e["message"].as_str().unwrap().contains("was not found"));
    }
    let done = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[CallStatus::Ringing, CallStatus::Completed],
        JAN_2,
        Some(0),
    )
    .await;
    let live = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[CallStatus::Ringing, CallStatus::InProgress],
        JAN_2,
        None,
    )
    .await;
    let r = app
        .post_form(
            &format!("{b}/Calls/{}.json", done.sid),
            &c,
            &[("Status", "completed")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);
    let r = app
        .post_form(
            &format!("{b}/Calls/{}.json", live.sid),
            &c,
            &[("Status", "completed")],
        )
        .await;
    // No SIP edge in this process: the call is not in progress here.
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);
    assert!(
        r.json()["message"].as_str().unwrap().contains("SIP edge"),
        "{:?}",
        r.body
    );
    let r = app
        .post_form(
            &format!("{b}/Calls/{}.json", live.sid),
            &c,
            &[("Url", "https://example.com/next")],
        )
        .await;
    // A redirect too: no SIP edge here carries the call.
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);
    assert!(
        r.json()["message"].as_str().unwrap().contains("SIP edge"),
        "{:?}",
        r.body
    );
    let r = app
        .post_form(
            &format!("{b}/Calls/{}.json", live.sid),
            &c,
            &[("Status", "ringing")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("Status"));
    let r = app
        .post_form(
            &format!("{b}/Calls.json"),
            &c,
            &[
                ("To", "sip:bob@example.com"),
                ("From", "x"),
                ("Url", "https://example.com/"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );
}

#[tokio::test]
async fn a_calls_recordings_are_listed_under_it() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let done = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[
            CallStatus::Ringing,
            CallStatus::InProgress,
            CallStatus::Completed,
        ],
        JAN_2,
        Some(1),
    )
    .await;
    let r = app
        .ingest(
            &a,
            &format!("?CallSid={}", done.sid),
            wav_with_marker(1, b"call"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let rec = r.json()["sid"].as_str().unwrap().to_owned();
    app.ingest(&a, "", wav_with_marker(1, b"other")).await;
    let r = app
        .get(
            &format!("{}/Calls/{}/Recordings.json", base(&a.sid), done.sid),
            &c,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let list = r.json();
    let recs = list["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["sid"], rec.as_str());
    assert_eq!(recs[0]["call_sid"], done.sid.as_str());
}

/// An edge that knows one live call and ends it as the real one does: through the ledger.
struct FakeEdge {
    services: mediaseal_service::Services,
    live: Call,
    answered: bool,
    asked: std::sync::Mutex<Vec<(String, String, HangUp)>>,
    /// Recording requests: the options of starts, the changes of the one recording.
    started: std::sync::Mutex<Vec<LiveRecordingOptions>>,
    changed: std::sync::Mutex<Vec<RecordingChange>>,
    redirected: std::sync::Mutex<Vec<CallRedirect>>,
}

const RE: &str = "RE0123456789abcdef0123456789abcdef";

impl FakeEdge {
    fn recording(&self, dual: bool) -> Recording {
        Recording {
            sid: RE.to_owned(),
            account_sid: self.live.account_sid.clone(),
            call_sid: Some(self.live.sid.clone()),
            conference_sid: None,
            channels: if dual { 2 } else { 1 },
            source: "StartCallRecordingAPI".to_owned(),
            track: Some("both".to_owned()),
            duration: None,
            status: "in-progress".to_owned(),
            error_code: None,
            start_time: JAN_2,
            date_created: JAN_2,
            date_updated: JAN_2,
            encryption_details: None,
            sealing: Sealing::AtRest,
            object_key: None,
            sealed_size: 0,
            plain_size: 0,
            content_type: "audio/x-wav".to_owned(),
            visible: false,
            deleted: false,
            date_deleted: None,
            interruption: None,
        }
    }

    fn check(&self, account_sid: &str, call_sid: &str) -> Result<(), LiveCallError> {
        if call_sid != self.live.sid || account_sid != self.live.account_sid {
            return Err(LiveCallError::NotLive {
                call_sid: call_sid.to_owned(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl LiveCalls for FakeEdge {
    async fn hang_up(
        &self,
        account_sid: &str,
        call_sid: &str,
        how: HangUp,
    ) -> Result<(), LiveCallError> {
        self.asked
            .lock()
            .unwrap()
            .push((account_sid.to_owned(), call_sid.to_owned(), how));
        self.check(account_sid, call_sid)?;
        if self.answered && how == HangUp::Canceled {
            return Err(LiveCallError::Answered {
                call_sid: call_sid.to_owned(),
            });
        }
        let change = CallChange {
            sid: self.live.sid.clone(),
            account_sid: self.live.account_sid.clone(),
            parent_call_sid: None,
            direction: CallDirection::Inbound,
            from: self.live.from.clone(),
            to: self.live.to.clone(),
            status: CallStatus::Completed,
            duration_secs: Some(3),
            sip_call_id: None,
            at: self.live.date_updated + 3 * S,
        };
        self.services
            .record_call_change(&change, None)
            .await
            .unwrap();
        Ok(())
    }

    async fn start_recording(
        &self,
        account_sid: &str,
        call_sid: &str,
        options: &LiveRecordingOptions,
    ) -> Result<Recording, LiveCallError> {
        self.check(account_sid, call_sid)?;
        self.started.lock().unwrap().push(options.clone());
        Ok(self.recording(options.dual))
    }

    async fn change_recording(
        &self,
        account_sid: &str,
        call_sid: &str,
        recording_sid: &str,
        change: RecordingChange,
    ) -> Result<Recording, LiveCallError> {
        self.check(account_sid, call_sid)?;
        if recording_sid != RE {
            return Err(LiveCallError::NotRecording {
                call_sid: call_sid.to_owned(),
                recording_sid: recording_sid.to_owned(),
            });
        }
        self.changed.lock().unwrap().push(change);
        Ok(self.recording(true))
    }

    async fn redirect(
        &self,
        account_sid: &str,
        call_sid: &str,
        to: &CallRedirect,
    ) -> Result<(), LiveCallError> {
        self.check(account_sid, call_sid)?;
        self.redirected.lock().unwrap().push(to.clone());
        Ok(())
    }
}

#[tokio::test]
async fn url_or_twiml_redirects_a_live_call_through_the_edge() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    use CallStatus::*;
    let live = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, InProgress],
        JAN_2,
        None,
    )
    .await;
    let elsewhere = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, InProgress],
        JAN_2,
        None,
    )
    .await;
    let edge = Arc::new(FakeEdge {
        services: app.state.services.clone(),
        live: live.clone(),
        answered: true,
        asked: Default::default(),
        started: Default::default(),
        changed: Default::default(),
        redirected: Default::default(),
    });
    assert!(app.state.set_live_calls(edge.clone()));
    let update = |sid: &str| format!("{b}/Calls/{sid}.json");
    let twiml = "<Response><Say>Moved.</Say><Hangup/></Response>";

    // Refusals name the parameter; the edge is not asked.
    for form in [
        &[("Url", "ftp://example.com/next")][..],
        &[("Url", "https://example.com/next"), ("Twiml", twiml)][..],
        &[("Url", "https://example.com/next"), ("Method", "PUT")][..],
    ] {
        let r = app.post_form(&update(&live.sid), &c, form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}: {:?}", r.body);
        assert_eq!(r.json()["code"], 20001, "{form:?}: {:?}", r.body);
    }
    assert!(edge.redirected.lock().unwrap().is_empty());

    let r = app
        .post_form(
            &update(&live.sid),
            &c,
            &[("Url", "https://example.com/next"), ("Method", "GET")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["sid"], live.sid.as_str());
    assert_eq!(r.json()["status"], "in-progress", "the call goes on");
    let r = app
        .post_form(&update(&live.sid), &c, &[("Twiml", twiml)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        *edge.redirected.lock().unwrap(),
        vec![
            CallRedirect {
                url: Some("https://example.com/next".into()),
                method: "GET".into(),
                twiml: None,
                fallback_url: None,
                fallback_method: "POST".into(),
            },
            CallRedirect {
                url: None,
                method: "POST".into(),
                twiml: Some(twiml.into()),
                fallback_url: None,
                fallback_method: "POST".into(),
            },
        ]
    );
    // A call no edge here carries: Twilio's 21220, as for a hang-up.
    let r = app
        .post_form(&update(&elsewhere.sid), &c, &[("Twiml", twiml)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);
    // `Status` wins over a redirect given with it.
    let r = app
        .post_form(
            &update(&live.sid),
            &c,
            &[("Status", "completed"), ("Twiml", twiml)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["status"], "completed");
    assert_eq!(edge.redirected.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn status_completed_hangs_up_a_live_call_through_the_edge() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let other = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    use CallStatus::*;
    let live = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, InProgress],
        JAN_2,
        None,
    )
    .await;
    // A call the edge does not carry (another node's, or one a crash cut off).
    let elsewhere = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, InProgress],
        JAN_2,
        None,
    )
    .await;
    let edge = Arc::new(FakeEdge {
        services: app.state.services.clone(),
        live: live.clone(),
        answered: true,
        asked: Default::default(),
        started: Default::default(),
        changed: Default::default(),
        redirected: Default::default(),
    });
    assert!(app.state.set_live_calls(edge.clone()));
    let update = |sid: &str| format!("{b}/Calls/{sid}.json");

    // `canceled` leaves an answered call alone and answers with it.
    let r = app
        .post_form(&update(&live.sid), &c, &[("Status", "canceled")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["status"], "in-progress");

    let r = app
        .post_form(&update(&elsewhere.sid), &c, &[("Status", "completed")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);

    // Another account cannot reach the call at all (404, the edge is never asked).
    let r = app
        .post_form(
            &format!("{}/Calls/{}.json", base(&other.sid), live.sid),
            &Creds::of(&other),
            &[("Status", "completed")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    let r = app
        .post_form(&update(&live.sid), &c, &[("Status", "completed")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["sid"], live.sid.as_str());
    assert_eq!(body["status"], "completed");
    assert_eq!(body["duration"], "3");
    assert_eq!(
        *edge.asked.lock().unwrap(),
        vec![
            (a.sid.clone(), live.sid.clone(), HangUp::Canceled),
            (a.sid.clone(), elsewhere.sid.clone(), HangUp::Completed),
            (a.sid.clone(), live.sid.clone(), HangUp::Completed),
        ]
    );
    // Ended: a second hang-up is Twilio's "not in progress".
    let r = app
        .post_form(&update(&live.sid), &c, &[("Status", "completed")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);
    assert_eq!(edge.asked.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn the_recordings_api_starts_and_controls_a_live_calls_recording() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    use CallStatus::*;
    let live = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, InProgress],
        JAN_2,
        None,
    )
    .await;
    let done = call(
        &app,
        &a,
        "sip:bob@d.sip.test",
        None,
        &[Ringing, Completed],
        JAN_2,
        Some(1),
    )
    .await;
    let start = |sid: &str| format!("{b}/Calls/{sid}/Recordings.json");
    let control = |sid: &str, re: &str| format!("{b}/Calls/{sid}/Recordings/{re}.json");

    // Without a SIP edge in the process: not in progress here.
    let r = app.post_form(&start(&live.sid), &c, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);

    let edge = Arc::new(FakeEdge {
        services: app.state.services.clone(),
        live: live.clone(),
        answered: true,
        asked: Default::default(),
        started: Default::default(),
        changed: Default::default(),
        redirected: Default::default(),
    });
    assert!(app.state.set_live_calls(edge.clone()));

    // Bad parameters are refused before the edge is asked.
    for (k, v) in [
        ("RecordingChannels", "stereo"),
        ("RecordingTrack", "sideways"),
        ("Trim", "some"),
        ("RecordingStatusCallbackEvent", "ringing"),
        ("RecordingStatusCallback", "not a url"),
        ("RecordingStatusCallbackMethod", "PUT"),
    ] {
        let r = app.post_form(&start(&live.sid), &c, &[(k, v)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{k}={v}: {:?}", r.body);
        assert!(
            r.json()["message"].as_str().unwrap().contains(k),
            "{k}: {:?}",
            r.body
        );
    }
    assert!(edge.started.lock().unwrap().is_empty());
    // An ended call: 21220; an unknown or malformed call: 404.
    let r = app.post_form(&start(&done.sid), &c, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.json()["code"], 21220);
    let r = app.post_form(&start(&new_sid("CA")), &c, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app.post_form(&start("CA123"), &c, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    let r = app
        .post_form(
            &start(&live.sid),
            &c,
            &[
                ("RecordingChannels", "dual"),
                ("RecordingStatusCallback", "https://example.com/rec"),
                ("RecordingStatusCallbackMethod", "GET"),
                ("RecordingStatusCallbackEvent", "in-progress completed"),
                ("Trim", "do-not-trim"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let rec = r.json();
    assert_eq!(rec["sid"], RE);
    assert_eq!(rec["call_sid"], live.sid.as_str());
    assert_eq!(rec["source"], "StartCallRecordingAPI");
    assert_eq!(rec["status"], "in-progress");
    assert_eq!(rec["channels"], 2);
    assert_eq!(rec["duration"], "-1");
    assert_eq!(
        rec["uri"],
        format!("{b}/Calls/{}/Recordings/{RE}.json", live.sid)
    );
    assert_eq!(
        *edge.started.lock().unwrap(),
        vec![LiveRecordingOptions {
            dual: true,
            inbound_only: false,
            trim_silence: false,
            status_callback: Some("https://example.com/rec".to_owned()),
            status_callback_method: "GET".to_owned(),
            status_callback_events: vec!["in-progress".to_owned(), "completed".to_owned()],
        }]
    );

    for (status, change) in [
        ("paused", RecordingChange::Paused),
        ("in-progress", RecordingChange::InProgress),
        ("stopped", RecordingChange::Stopped),
    ] {
        let r = app
            .post_form(&control(&live.sid, RE), &c, &[("Status", status)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{status}: {:?}", r.body);
        assert_eq!(r.json()["status"], status);
        assert_eq!(edge.changed.lock().unwrap().last(), Some(&change));
    }
    for form in [
        &[("Status", "resumed")][..],
        &[][..],
        &[("Status", "paused"), ("PauseBehavior", "silence")][..],
    ] {
        let r = app.post_form(&control(&live.sid, RE), &c, form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}: {:?}", r.body);
    }
    // Another recording of the call: the 404 of a recording that is not running.
    let other = new_sid("RE");
    let r = app
        .post_form(&control(&live.sid, &other), &c, &[("Status", "stopped")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(edge.changed.lock().unwrap().len(), 3);
}

/// An edge that places calls as the real one reports them: a `queued` row through the ledger.
struct Placer {
    services: mediaseal_service::Services,
    placed: std::sync::Mutex<Vec<(String, OutboundCall)>>,
}

#[async_trait::async_trait]
impl LiveCalls for Placer {
    async fn hang_up(&self, _: &str, call_sid: &str, _: HangUp) -> Result<(), LiveCallError> {
        Err(LiveCallError::NotLive {
            call_sid: call_sid.to_owned(),
        })
    }

    async fn start_recording(
        &self,
        _: &str,
        call_sid: &str,
        _: &LiveRecordingOptions,
    ) -> Result<Recording, LiveCallError> {
        Err(LiveCallError::NotLive {
            call_sid: call_sid.to_owned(),
        })
    }

    async fn change_recording(
        &self,
        _: &str,
        call_sid: &str,
        _: &str,
        _: RecordingChange,
    ) -> Result<Recording, LiveCallError> {
        Err(LiveCallError::NotLive {
            call_sid: call_sid.to_owned(),
        })
    }

    async fn originate(
        &self,
        account_sid: &str,
        call: &OutboundCall,
    ) -> Result<String, LiveCallError> {
        if call.twiml.as_deref() == Some("<Response><Nope/></Response>") {
            return Err(LiveCallError::Invalid {
                param: "Twiml".to_owned(),
                reason: "the TwiML does not parse: unknown verb Nope".to_owned(),
            });
        }
        self.placed
            .lock()
            .unwrap()
            .push((account_sid.to_owned(), call.clone()));
        let sid = new_sid("CA");
        let change = CallChange {
            sid: sid.clone(),
            account_sid: account_sid.to_owned(),
            parent_call_sid: None,
            direction: CallDirection::OutboundApi,
            from: call.from.clone(),
            to: call.to.clone(),
            status: CallStatus::Queued,
            duration_secs: None,
            sip_call_id: None,
            at: JAN_2,
        };
        self.services
            .record_call_change(&change, None)
            .await
            .unwrap();
        Ok(sid)
    }
}

#[tokio::test]
async fn placing_a_call_checks_its_parameters_then_answers_201_queued() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let b = base(&a.sid);
    let url = format!("{b}/Calls.json");
    let placer = Arc::new(Placer {
        services: app.state.services.clone(),
        placed: Default::default(),
    });
    assert!(app.state.set_live_calls(placer.clone()));

    // Refusals name the parameter, with Twilio's codes where it has one; nothing is placed.
    for (form, code, names) in [
        (
            vec![("From", "+15550001111"), ("Url", "https://example.com/a")],
            21201,
            "To",
        ),
        (
            vec![
                ("To", "+15550002222"),
                ("From", "+15550001111"),
                ("Url", "https://example.com/a"),
            ],
            21211,
            "To",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("Url", "https://example.com/a"),
            ],
            21213,
            "From",
        ),
        (
            vec![("To", "sip:jack@example.com"), ("From", "+15550001111")],
            21205,
            "Url or Twiml",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Url", "ftp://example.com/a"),
            ],
            20001,
            "Url",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("StatusCallbackEvent", "dialing"),
            ],
            20001,
            "StatusCallbackEvent",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("Timeout", "0"),
            ],
            20001,
            "Timeout",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("TimeLimit", "14401"),
            ],
            20001,
            "TimeLimit",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("TimeLimit", "0"),
            ],
            20001,
            "TimeLimit",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response><Nope/></Response>"),
            ],
            20001,
            "Twiml",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("SendDigits", "12x"),
            ],
            20001,
            "SendDigits",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("SendDigits", "123456789012345678901234567890123"),
            ],
            20001,
            "SendDigits",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("Record", "true"),
                ("RecordingChannels", "stereo"),
            ],
            20001,
            "RecordingChannels",
        ),
        (
            vec![
                ("To", "sip:jack@example.com"),
                ("From", "+15550001111"),
                ("Twiml", "<Response/>"),
                ("Record", "true"),
                ("RecordingTrack", "outbound"),
            ],
            20001,
            "RecordingTrack",
        ),
    ] {
        let r = app.post_form(&url, &c, &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}: {:?}", r.body);
        let body = r.json();
        assert_eq!(body["code"], code, "{form:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(names),
            "{form:?}: {body}"
        );
    }
    assert!(placer.placed.lock().unwrap().is_empty());

    let r = app
        .post_form(
            &url,
            &c,
            &[
                ("To", "sip:jack@callee.example.com;secure=true"),
                ("From", "+15550001111"),
                ("Url", "https://app.example.com/outbound"),
                ("Method", "GET"),
                ("StatusCallback", "https://app.example.com/status"),
                ("StatusCallbackEvent", "initiated ringing"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
                ("Timeout", "20"),
                ("TimeLimit", "90"),
                ("Record", "true"),
                ("RecordingChannels", "dual"),
                (
                    "RecordingStatusCallback",
                    "https://app.example.com/recorded",
                ),
                ("RecordingStatusCallbackMethod", "GET"),
                ("RecordingStatusCallbackEvent", "in-progress completed"),
                ("SendDigits", "1234w#W9"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["direction"], "outbound-api");
    assert_eq!(body["to"], "sip:jack@callee.example.com;secure=true");
    assert_eq!(body["from"], "+15550001111");
    let sid = body["sid"].as_str().unwrap().to_owned();
    let placed = placer.placed.lock().unwrap().clone();
    assert_eq!(placed.len(), 1);
    let (owner, call) = &placed[0];
    assert_eq!(owner, &a.sid);
    assert_eq!(
        call.url.as_deref(),
        Some("https://app.example.com/outbound")
    );
    assert_eq!(call.method, "GET");
    assert_eq!(call.timeout_secs, 20);
    assert_eq!(call.time_limit_secs, 90);
    assert_eq!(
        call.status_callback_events,
        vec!["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(
        call.record,
        Some(LiveRecordingOptions {
            dual: true,
            inbound_only: false,
            trim_silence: true,
            status_callback: Some("https://app.example.com/recorded".to_owned()),
            status_callback_method: "GET".to_owned(),
            status_callback_events: vec!["in-progress".to_owned(), "completed".to_owned()],
        })
    );
    assert_eq!(call.send_digits.as_deref(), Some("1234w#W9"));
    // The row is there for the list and fetch at once.
    let r = app.get(&format!("{b}/Calls/{sid}.json"), &c).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "queued");
}

#[tokio::test]
async fn create_refuses_what_it_does_not_implement_and_passes_sip_auth_on() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let url = format!("{}/Calls.json", base(&a.sid));
    let placer = Arc::new(Placer {
        services: app.state.services.clone(),
        placed: Default::default(),
    });
    assert!(app.state.set_live_calls(placer.clone()));
    let call = [
        ("To", "sip:jack@example.com"),
        ("From", "+15550001111"),
        ("Twiml", "<Response/>"),
    ];

    // Each parameter that would change the call is refused by name, not dropped.
    for (name, value) in [
        ("MachineDetection", "Enable"),
        ("MachineDetection", "DetectMessageEnd"),
        ("MachineDetectionTimeout", "30"),
        ("MachineDetectionSpeechThreshold", "2400"),
        ("MachineDetectionSpeechEndThreshold", "1200"),
        ("MachineDetectionSilenceTimeout", "5000"),
        ("AsyncAmd", "true"),
        ("AsyncAmdStatusCallback", "https://app.example.com/amd"),
        ("AsyncAmdStatusCallbackMethod", "GET"),
        ("Byoc", "BYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("Trunk", "TKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("CallReason", "Your appointment"),
        ("CallToken", "token"),
        ("ClientNotificationUrl", "https://app.example.com/push"),
    ] {
        let mut form = call.to_vec();
        form.push((name, value));
        let r = app.post_form(&url, &c, &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {:?}", r.body);
        let body = r.json();
        assert_eq!(body["code"], 20001, "{name}: {body}");
        assert_eq!(body["status"], 400, "{name}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Unsupported parameter {name}: "))
                && message.contains("not supported by mediaseal"),
            "{name}: {message}"
        );
    }
    // Credentials come in pairs, within bounds.
    for (form, named) in [
        (vec![("SipAuthUsername", "jack")], "SipAuthPassword"),
        (vec![("SipAuthPassword", "s3cret")], "SipAuthUsername"),
        (
            vec![("SipAuthUsername", "ja\nck"), ("SipAuthPassword", "s3cret")],
            "SipAuthUsername",
        ),
    ] {
        let mut f = call.to_vec();
        f.extend(form.iter().copied());
        let r = app.post_form(&url, &c, &f).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}: {:?}", r.body);
        let body = r.json();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Invalid parameter {named}:")),
            "{form:?}: {body}"
        );
    }
    assert!(placer.placed.lock().unwrap().is_empty(), "nothing placed");

    // Empty values ask for nothing, and `AsyncAmd=false` is the default; `Recording*` options
    // without `Record=true` describe no recording. The credentials reach the edge, which answers
    // the callee's digest challenge with them.
    let mut form = call.to_vec();
    form.extend([
        ("MachineDetection", ""),
        ("AsyncAmd", "false"),
        ("RecordingChannels", "dual"),
        ("SipAuthUsername", "jack"),
        ("SipAuthPassword", "s3cret"),
    ]);
    let r = app.post_form(&url, &c, &form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let placed = placer.placed.lock().unwrap().clone();
    assert_eq!(placed.len(), 1);
    let call = &placed[0].1;
    assert_eq!(call.record, None);
    // Twilio's default `TimeLimit`: 4 hours.
    assert_eq!(call.time_limit_secs, 14_400);
    assert_eq!(
        call.sip_auth,
        Some(SipAuth {
            username: "jack".into(),
            password: "s3cret".into(),
        })
    );
    assert!(
        !format!("{call:?}").contains("s3cret"),
        "the password stays out of Debug"
    );
}

#[tokio::test]
async fn create_passes_caller_id_on_and_refuses_a_malformed_one() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let url = format!("{}/Calls.json", base(&a.sid));
    let placer = Arc::new(Placer {
        services: app.state.services.clone(),
        placed: Default::default(),
    });
    assert!(app.state.set_live_calls(placer.clone()));
    let call = [
        ("To", "sip:jack@example.com"),
        ("From", "+15550001111"),
        ("Twiml", "<Response/>"),
    ];
    for bad in [
        "sip:@example.com",
        "alice@",
        "alice@exa mple.com",
        "alice@example..com",
        "alice@example.com:99999",
        "sip:alice@example.com;transport=tcp",
        "alice<sip:x@y>",
        "+1 555 000",
    ] {
        let mut form = call.to_vec();
        form.push(("CallerId", bad));
        let r = app.post_form(&url, &c, &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        let body = r.json();
        assert_eq!(body["code"], 21212, "{bad}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("Invalid CallerId"), "{bad}: {message}");
    }
    assert!(placer.placed.lock().unwrap().is_empty(), "nothing placed");

    for good in [
        "+15550003333",
        "alice",
        "sip:alice@example.com",
        "bob@[2001:db8::1]:5070",
    ] {
        let mut form = call.to_vec();
        form.push(("CallerId", good));
        let r = app.post_form(&url, &c, &form).await;
        assert_eq!(r.status, StatusCode::CREATED, "{good}: {:?}", r.body);
    }
    let placed = placer.placed.lock().unwrap().clone();
    let ids: Vec<_> = placed.iter().map(|(_, c)| c.caller_id.as_deref()).collect();
    assert_eq!(
        ids,
        [
            Some("+15550003333"),
            Some("alice"),
            Some("sip:alice@example.com"),
            Some("bob@[2001:db8::1]:5070"),
        ]
    );
    // `From` stays what was given: the row's caller.
    assert!(placed.iter().all(|(_, c)| c.from == "+15550001111"));
}
