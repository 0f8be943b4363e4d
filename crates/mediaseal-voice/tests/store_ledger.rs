//! [`StoreLedger`] driven directly (no phones) against a real service layer over the embedded
//! store: status changes become the call's row, only forward; the domain's status callback that
//! travels with the final status is queued in the outbox once; an update the ledger cannot
//! spell is dropped, not stored.

mod support;

use mediaseal_call::{CallStatusCallback, CallUpdate};
use mediaseal_store::model::CallStatus;
use mediaseal_twiml::HttpMethod;
use mediaseal_voice::{CallLedger, StoreLedger};
use support::*;

const CA: &str = "CA0123456789abcdef0123456789abcdef";
const AC: &str = "AC0123456789abcdef0123456789abcdef";

fn update(status: &'static str, duration: Option<u32>) -> CallUpdate {
    CallUpdate {
        call_sid: CA.to_owned(),
        account_sid: AC.to_owned(),
        parent_call_sid: None,
        direction: "inbound",
        from: "sip:alice@example.com".to_owned(),
        to: "sip:bob@d.sip.test".to_owned(),
        status,
        sip_call_id: "abc@host".to_owned(),
        duration_secs: duration,
        status_callback: None,
    }
}

#[tokio::test]
async fn status_changes_become_the_calls_row_and_one_queued_callback() {
    let svc = sealed_service().await;
    let ledger = StoreLedger::new(svc.services.clone());
    ledger.call_updated(update("ringing", None)).await;
    ledger.call_updated(update("in-progress", None)).await;
    let mut done = update("completed", Some(3));
    done.status_callback = Some(Box::new(CallStatusCallback {
        url: "https://app.example.com/status".parse().unwrap(),
        method: HttpMethod::Post,
        params: vec![
            ("CallSid".to_owned(), CA.to_owned()),
            ("CallStatus".to_owned(), "completed".to_owned()),
            ("CallDuration".to_owned(), "3".to_owned()),
        ],
    }));
    ledger.call_updated(done.clone()).await;
    // Late and repeated updates, and one with a status no client knows, change nothing.
    ledger.call_updated(update("in-progress", None)).await;
    ledger.call_updated(done).await;
    ledger.call_updated(update("exploded", None)).await;

    let call = svc.meta.call(AC, CA).await.unwrap().expect("the call row");
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.duration, Some(3));
    assert_eq!(call.sip_call_id.as_deref(), Some("abc@host"));
    assert!(call.start_time.is_some() && call.end_time.is_some());
    let queued = svc.meta.callbacks_for(CA).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!(queued[0].url, "https://app.example.com/status");
    assert_eq!(queued[0].method, "POST");
    assert_eq!(queued[0].account_sid, AC);
    let params: Vec<(String, String)> = serde_json::from_str(&queued[0].params).unwrap();
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "CallSid",
            "CallStatus",
            "CallDuration",
            "Timestamp",
            "SequenceNumber"
        ]
    );
}
