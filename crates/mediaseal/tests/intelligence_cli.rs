//! Issue 13: `mediaseal intelligence data-logging GA… on|off`, the operator's switch that the
//! API refuses to flip on, works offline in the server's store.

mod common;

use std::path::Path;

use common::*;
use mediaseal_store::model::intelligence::IntelligenceService;
use serde_json::Value;

fn service(data: &Path, account: &str) -> IntelligenceService {
    let s = IntelligenceService {
        sid: mediaseal_server::sid::new_sid("GA"),
        account_sid: account.to_owned(),
        unique_name: "calls".to_owned(),
        friendly_name: None,
        language_code: "en-US".to_owned(),
        auto_transcribe: false,
        data_logging: false,
        auto_redaction: false,
        media_redaction: false,
        webhook_url: None,
        webhook_http_method: None,
        encryption_credential_sid: None,
        version: 1,
        date_created: 1,
        date_updated: 1,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let meta = mediaseal_server::serve::open_meta(data, None)
            .await
            .unwrap();
        assert!(meta.insert_intelligence_service(&s).await.unwrap());
    });
    s
}

fn stored(data: &Path, account: &str, sid: &str) -> IntelligenceService {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let meta = mediaseal_server::serve::open_meta(data, None)
            .await
            .unwrap();
        meta.intelligence_service(account, sid)
            .await
            .unwrap()
            .unwrap()
    })
}

#[test]
fn data_logging_is_switched_by_the_operator_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let made = run(["account", "create", "--data", p(&data)]);
    assert_ok(&made);
    let account: Value = serde_json::from_slice(&made.stdout).unwrap();
    let account = account["sid"].as_str().unwrap().to_owned();
    let s = service(&data, &account);

    let out = run([
        "intelligence",
        "data-logging",
        "--data",
        p(&data),
        &s.sid,
        "on",
    ]);
    assert_ok(&out);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["sid"], s.sid.as_str());
    assert_eq!(shown["data_logging"], true);
    assert_eq!(shown["version"], 2);
    assert!(stored(&data, &account, &s.sid).data_logging);

    let out = run([
        "intelligence",
        "data-logging",
        "--data",
        p(&data),
        &s.sid,
        "off",
    ]);
    assert_ok(&out);
    assert!(!stored(&data, &account, &s.sid).data_logging);

    // A SID that is not one, a service that does not exist, a state that is not on/off.
    let bad = assert_fails(&run([
        "intelligence",
        "data-logging",
        "--data",
        p(&data),
        "GA1",
        "on",
    ]));
    assert!(bad.contains("not an Intelligence Service SID"), "{bad}");
    let missing = assert_fails(&run([
        "intelligence",
        "data-logging",
        "--data",
        p(&data),
        "GA0123456789abcdef0123456789abcdef",
        "on",
    ]));
    assert!(missing.contains("no Intelligence Service"), "{missing}");
    // clap's own usage error (exit 2) for a state that is not on/off.
    let out = run([
        "intelligence",
        "data-logging",
        "--data",
        p(&data),
        &s.sid,
        "maybe",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stored(&data, &account, &s.sid).data_logging);
}
