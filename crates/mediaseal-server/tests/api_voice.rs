//! HTTP tests of the voice surface through `app()` (no sockets): accounts, keys, public keys,
//! recording settings, sealing ingest, media, the seed-000 fallback and failure rules, paging,
//! errors. Runs on whatever backend the environment selects (see `support`).

mod support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use mediaseal_crypto::{PrivateKey, parse_details};
use serde_json::Value;
use support::{Creds, Resp, TestApp, test_key, wav_with_marker};
use tower::ServiceExt as _;

fn rec_uri(ac: &str, re: &str, ext: &str) -> String {
    format!("/2010-04-01/Accounts/{ac}/Recordings/{re}{ext}")
}

fn open_sealed(details: &Value, sealed: &[u8], key: &PrivateKey) -> Vec<u8> {
    let env = parse_details(&details.to_string()).unwrap();
    mediaseal_crypto::open_seekable_to_writer(std::io::Cursor::new(sealed), Vec::new(), &env, key)
        .unwrap()
}

#[tokio::test]
async fn unauthenticated_and_bad_credentials_get_20003() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let uri = format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid);
    for creds in [
        Creds::None,
        Creds::Basic(a.sid.clone(), "wrong".into()),
        Creds::Basic(a.sid.clone(), String::new()),
        Creds::Basic(
            "ACffffffffffffffffffffffffffffffff".into(),
            a.auth_token.clone(),
        ),
        Creds::Basic("not-a-sid".into(), "x".into()),
        Creds::Basic("SKffffffffffffffffffffffffffffffff".into(), "x".into()),
    ] {
        let r = app.get(&uri, &creds).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{creds:?}");
        let body = r.json();
        assert_eq!(body["code"], 20003);
        assert_eq!(body["status"], 401);
        assert!(body["more_info"].as_str().unwrap().ends_with("/20003"));
        assert!(body.get("type").is_none() || body.get("title").is_none());
    }
}

#[tokio::test]
async fn api_keys_authenticate_and_their_secret_is_shown_once() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let r = app
        .post_form(
            &format!("/2010-04-01/Accounts/{}/Keys.json", a.sid),
            &Creds::of(&a),
            &[("FriendlyName", "ci")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let key = r.json();
    let sk = key["sid"].as_str().unwrap().to_owned();
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(sk.starts_with("SK"));
    let fetched = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Keys/{sk}.json", a.sid),
            &Creds::of(&a),
        )
        .await
        .json();
    assert!(
        fetched.get("secret").is_none(),
        "secret shown again: {fetched}"
    );
    let via_key = Creds::Basic(sk.clone(), secret.clone());
    let r = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid),
            &via_key,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Standard API keys cannot manage keys or accounts.
    let r = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Keys.json", a.sid),
            &via_key,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .delete(
            &format!("/2010-04-01/Accounts/{}/Keys/{sk}.json", a.sid),
            &Creds::of(&a),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid),
            &via_key,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Nothing in the store holds the secret itself.
    let stored = app.state.meta.api_key(&sk).await.unwrap();
    assert!(stored.is_none());
}

#[tokio::test]
async fn public_keys_validate_and_are_never_returned() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let pem = test_key(0).public_key().to_pem();
    // Newlines URL-encoded (as twilio-python sends them) and a one-line paste both work.
    for variant in [pem.clone(), pem.lines().collect::<String>()] {
        let r = app
            .post_form(
                "/v1/Credentials/PublicKeys",
                &c,
                &[("PublicKey", &variant), ("FriendlyName", "k")],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let body = r.json();
        assert!(body["sid"].as_str().unwrap().starts_with("CR"));
        assert_eq!(body["account_sid"], a.sid.as_str());
        assert!(body["date_created"].as_str().unwrap().ends_with('Z'));
        assert!(
            body["url"]
                .as_str()
                .unwrap()
                .starts_with("http://mediaseal.test/v1/Credentials/PublicKeys/CR")
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("MII"),
            "key material returned"
        );
    }
    let private = test_key(0).to_pkcs8_pem().unwrap();
    let r = app
        .post_form("/v1/Credentials/PublicKeys", &c, &[("PublicKey", &private)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("private key"),
        "{:?}",
        r.body
    );
    for bad in [
        "",
        "hello",
        "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----",
    ] {
        let r = app
            .post_form("/v1/Credentials/PublicKeys", &c, &[("PublicKey", bad)])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json()["message"].as_str().unwrap().contains("PublicKey"));
    }
    let list = app
        .get("/v1/Credentials/PublicKeys?PageSize=1", &c)
        .await
        .json();
    assert_eq!(list["meta"]["key"], "credentials");
    assert_eq!(list["credentials"].as_array().unwrap().len(), 1);
    let next = list["meta"]["next_page_url"].as_str().unwrap();
    let next_path = next.strip_prefix("http://mediaseal.test").unwrap();
    let page2 = app.get(next_path, &c).await.json();
    assert_eq!(page2["credentials"].as_array().unwrap().len(), 1);
    assert!(page2["meta"]["next_page_url"].is_null());
    let sid = page2["credentials"][0]["sid"].as_str().unwrap().to_owned();
    let r = app
        .post_form(
            &format!("/v1/Credentials/PublicKeys/{sid}"),
            &c,
            &[("FriendlyName", "renamed")],
        )
        .await;
    assert_eq!(r.json()["friendly_name"], "renamed");
    assert_eq!(
        app.delete(&format!("/v1/Credentials/PublicKeys/{sid}"), &c)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/v1/Credentials/PublicKeys/{sid}"), &c)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn at_rest_ingest_serves_plaintext_with_ranges_and_deletes_irrevocably() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let audio = wav_with_marker(3, b"AT-REST-MARKER-1234");
    let r = app
        .ingest(
            &a,
            "?CallSid=CA0123456789abcdef0123456789abcdef&Channels=1&Source=OutboundAPI",
            audio.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let rec = r.json();
    let re = rec["sid"].as_str().unwrap().to_owned();
    assert_eq!(rec["status"], "completed");
    assert!(rec["encryption_details"].is_null());
    assert_eq!(rec["duration"], "3");
    assert_eq!(rec["source"], "OutboundAPI");
    assert!(rec["date_created"].as_str().unwrap().ends_with("+0000"));

    let media = app.get(&rec_uri(&a.sid, &re, ".wav"), &c).await;
    assert_eq!(media.status, StatusCode::OK);
    assert_eq!(media.headers["content-type"], "audio/x-wav");
    assert_eq!(media.body.as_ref(), audio.as_slice());
    let no_ext = app.get(&rec_uri(&a.sid, &re, ""), &c).await;
    assert_eq!(no_ext.body.as_ref(), audio.as_slice());
    let stored_info = app
        .state
        .objects
        .head(&format!("{}/{re}", a.sid))
        .await
        .unwrap();
    assert!(
        stored_info.size as usize > audio.len(),
        "stored object is sealed, hence larger"
    );

    // No plaintext in the stored object.
    let stored = std::fs::read(app.dir.path().join("objects").join(&a.sid).join(&re)).ok();
    if let Some(bytes) = stored {
        assert!(!bytes.windows(19).any(|w| w == b"AT-REST-MARKER-1234"));
    }

    let r = app.delete(&rec_uri(&a.sid, &re, ".json"), &c).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&rec_uri(&a.sid, &re, ".json"), &c).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&rec_uri(&a.sid, &re, ".wav"), &c).await.status,
        StatusCode::NOT_FOUND
    );
    let soft = app
        .get(
            &format!("{}?IncludeSoftDeleted=true", rec_uri(&a.sid, &re, ".json")),
            &c,
        )
        .await;
    assert_eq!(soft.status, StatusCode::OK);
    assert_eq!(soft.json()["status"], "deleted");
    assert!(
        app.state
            .objects
            .head(&format!("{}/{re}", a.sid))
            .await
            .is_err(),
        "object not destroyed"
    );
}

#[tokio::test]
async fn range_requests_on_plain_and_sealed_media() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let audio = wav_with_marker(10, b"RANGE");
    let re = app.ingest(&a, "", audio.clone()).await.json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let get_range = |range: &'static str| {
        let uri = rec_uri(&a.sid, &re, ".wav");
        let app = &app;
        let c = c.clone();
        async move {
            let req = axum::http::Request::builder()
                .uri(uri)
                .header("authorization", {
                    use base64::Engine as _;
                    let Creds::Basic(u, p) = &c else {
                        unreachable!()
                    };
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                    )
                })
                .header("range", range)
                .body(Body::empty())
                .unwrap();
            use tower::ServiceExt;
            let resp = app.router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let cr = resp
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, cr, body)
        }
    };
    let (s, cr, body) = get_range("bytes=70000-70099").await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(cr.unwrap(), format!("bytes 70000-70099/{}", audio.len()));
    assert_eq!(body.as_ref(), &audio[70000..70100]);
    let (s, _, body) = get_range("bytes=-10").await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.as_ref(), &audio[audio.len() - 10..]);
    let (s, cr, _) = get_range("bytes=999999999-").await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(cr.unwrap(), format!("bytes */{}", audio.len()));
}

#[tokio::test]
async fn customer_key_ingest_is_opened_only_with_the_private_key() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let key_sid = app.add_public_key(&a, test_key(0)).await;
    app.enable_encryption(&a, Some(&key_sid)).await;
    let audio = wav_with_marker(2, b"CUSTOMER-MARKER-5678");
    let r = app.ingest(&a, "", audio.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let rec = r.json();
    let re = rec["sid"].as_str().unwrap();
    let details = &rec["encryption_details"];
    assert_eq!(details["type"], "rsa-aes");
    assert_eq!(details["public_key_sid"], key_sid.as_str());
    assert_eq!(details["encrypted_cek"].as_str().unwrap().len(), 344);
    assert_eq!(details["iv"].as_str().unwrap().len(), 16);

    let media = app.get(&rec_uri(&a.sid, re, ""), &c).await;
    assert_eq!(media.status, StatusCode::OK);
    assert_eq!(media.body.len(), audio.len() + 16, "ciphertext plus tag");
    assert!(!media.body.windows(20).any(|w| w == b"CUSTOMER-MARKER-5678"));
    assert_eq!(open_sealed(details, &media.body, test_key(0)), audio);
    // Another key cannot open it, and the error names the key it was sealed for.
    let env = parse_details(&details.to_string()).unwrap();
    let err = mediaseal_crypto::open_seekable_to_writer(
        std::io::Cursor::new(&media.body),
        Vec::new(),
        &env,
        test_key(1),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&key_sid), "{err}");
    // The server cannot transcode what it cannot read.
    assert_eq!(
        app.get(&rec_uri(&a.sid, re, ".mp3"), &c).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn configured_key_gone_falls_back_to_the_most_recent_key_with_a_notification() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let older = app.add_public_key(&a, test_key(1)).await;
    let configured = app.add_public_key(&a, test_key(0)).await;
    let newest = app.add_public_key(&a, test_key(2)).await;
    app.enable_encryption(&a, Some(&configured)).await;
    assert_eq!(
        app.delete(&format!("/v1/Credentials/PublicKeys/{configured}"), &c)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let audio = wav_with_marker(1, b"FALLBACK");
    let rec = app.ingest(&a, "", audio.clone()).await.json();
    assert_eq!(rec["status"], "completed");
    assert_eq!(
        rec["encryption_details"]["public_key_sid"],
        newest.as_str(),
        "older was {older}"
    );
    let media = app
        .get(&rec_uri(&a.sid, rec["sid"].as_str().unwrap(), ".wav"), &c)
        .await;
    assert_eq!(
        open_sealed(&rec["encryption_details"], &media.body, test_key(2)),
        audio
    );
    let notes = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Notifications.json", a.sid),
            &c,
        )
        .await
        .json();
    let list = notes["notifications"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let text = list[0]["message_text"].as_str().unwrap();
    assert!(
        text.contains(&configured) && text.contains(&newest),
        "{text}"
    );
    assert_eq!(list[0]["log"], "1");
}

#[tokio::test]
async fn no_public_key_destroys_the_bytes_and_fails_with_16104() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    app.enable_encryption(&a, None).await;
    let q = "?RecordingStatusCallback=http%3A%2F%2F127.0.0.1%3A9%2Fcb&RecordingStatusCallbackEvent=completed\
             &RecordingStatusCallbackEvent=failed&CallSid=CA0123456789abcdef0123456789abcdef";
    let r = app
        .ingest(&a, q, wav_with_marker(1, b"DESTROY-ME-PLEASE"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let rec = r.json();
    let re = rec["sid"].as_str().unwrap().to_owned();
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error_code"], 16104);
    assert!(rec["encryption_details"].is_null());
    // No media, and nothing stored for it.
    assert_eq!(
        app.get(&rec_uri(&a.sid, &re, ".wav"), &c).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.state
            .objects
            .head(&format!("{}/{re}", a.sid))
            .await
            .is_err()
    );
    // A failed callback, without EncryptionDetails.
    let cbs = app.state.meta.callbacks_for(&re).await.unwrap();
    assert_eq!(cbs.len(), 1);
    let params: Vec<(String, String)> = serde_json::from_str(&cbs[0].params).unwrap();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("RecordingStatus").as_deref(), Some("failed"));
    assert_eq!(get("ErrorCode").as_deref(), Some("16104"));
    assert!(get("EncryptionDetails").is_none());
    // And a notification saying why.
    let notes = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Notifications.json", a.sid),
            &c,
        )
        .await
        .json();
    let n = &notes["notifications"][0];
    assert_eq!(n["error_code"], "16104");
    assert!(
        n["message_text"]
            .as_str()
            .unwrap()
            .contains("no public key")
    );
    let nsid = n["sid"].as_str().unwrap();
    let one = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Notifications/{nsid}.json", a.sid),
            &c,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
}

#[tokio::test]
async fn failed_event_not_subscribed_sends_no_callback() {
    let app = TestApp::new().await;
    let a = app.account().await;
    app.enable_encryption(&a, None).await;
    let rec = app
        .ingest(
            &a,
            "?RecordingStatusCallback=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
            wav_with_marker(1, b"x"),
        )
        .await
        .json();
    assert_eq!(rec["status"], "failed");
    assert!(
        app.state
            .meta
            .callbacks_for(rec["sid"].as_str().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn completed_callback_carries_encryption_details_as_a_json_string() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let key_sid = app.add_public_key(&a, test_key(0)).await;
    app.enable_encryption(&a, Some(&key_sid)).await;
    let q = "?RecordingStatusCallback=https%3A%2F%2Fexample.test%2Fcb&CallSid=CA0123456789abcdef0123456789abcdef&Duration=7";
    let rec = app.ingest(&a, q, wav_with_marker(1, b"x")).await.json();
    let cbs = app
        .state
        .meta
        .callbacks_for(rec["sid"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(cbs.len(), 1);
    assert_eq!(cbs[0].method, "POST");
    let params: Vec<(String, String)> = serde_json::from_str(&cbs[0].params).unwrap();
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("RecordingStatus"), "completed");
    assert_eq!(get("RecordingDuration"), "7");
    assert_eq!(get("ErrorCode"), "0");
    assert_eq!(get("AccountSid"), a.sid);
    assert!(get("RecordingUrl").starts_with("http://mediaseal.test/2010-04-01/Accounts/"));
    let details: Value = serde_json::from_str(&get("EncryptionDetails")).unwrap();
    assert_eq!(details, rec["encryption_details"]);
}

#[tokio::test]
async fn empty_upload_is_absent() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let rec = app.ingest(&a, "", Vec::new()).await.json();
    assert_eq!(rec["status"], "absent");
    assert_eq!(rec["error_code"], 16101);
}

#[tokio::test]
async fn listing_pages_and_filters() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let call = "CA0123456789abcdef0123456789abcdef";
    let mut sids = Vec::new();
    for i in 0..5 {
        let q = if i % 2 == 0 {
            format!("?CallSid={call}")
        } else {
            String::new()
        };
        sids.push(
            app.ingest(&a, &q, wav_with_marker(1, b"p")).await.json()["sid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut uri = format!("/2010-04-01/Accounts/{}/Recordings.json?PageSize=2", a.sid);
    loop {
        let page = app.get(&uri, &c).await.json();
        for r in page["recordings"].as_array().unwrap() {
            seen.push(r["sid"].as_str().unwrap().to_owned());
        }
        assert_eq!(page["page_size"], 2);
        match page["next_page_uri"].as_str() {
            Some(next) => uri = next.to_owned(),
            None => break,
        }
    }
    sids.reverse();
    assert_eq!(seen, sids, "newest first, each exactly once");
    let by_call = app
        .get(
            &format!(
                "/2010-04-01/Accounts/{}/Recordings.json?CallSid={call}",
                a.sid
            ),
            &c,
        )
        .await
        .json();
    assert_eq!(by_call["recordings"].as_array().unwrap().len(), 3);
    let by_call_path = app
        .get(
            &format!(
                "/2010-04-01/Accounts/{}/Calls/{call}/Recordings.json",
                a.sid
            ),
            &c,
        )
        .await
        .json();
    assert_eq!(by_call_path["recordings"].as_array().unwrap().len(), 3);
    let today = time::OffsetDateTime::now_utc().date();
    let day = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let by_day = app
        .get(
            &format!(
                "/2010-04-01/Accounts/{}/Recordings.json?DateCreated={day}",
                a.sid
            ),
            &c,
        )
        .await
        .json();
    assert_eq!(by_day["recordings"].as_array().unwrap().len(), 5);
    let before = app
        .get(
            &format!(
                "/2010-04-01/Accounts/{}/Recordings.json?DateCreated%3C=2000-01-01",
                a.sid
            ),
            &c,
        )
        .await
        .json();
    assert_eq!(before["recordings"].as_array().unwrap().len(), 0);
    for bad in [
        "PageSize=0",
        "PageSize=1001",
        "PageToken=garbage",
        "DateCreated=yesterday",
        "CallSid=CA1",
    ] {
        let r = app
            .get(
                &format!("/2010-04-01/Accounts/{}/Recordings.json?{bad}", a.sid),
                &c,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        let name = bad.split('=').next().unwrap();
        assert!(
            r.json()["message"].as_str().unwrap().contains(name),
            "{bad}: {:?}",
            r.body
        );
    }
}

#[tokio::test]
async fn accounts_see_only_their_own_and_parents_their_subaccounts() {
    let app = TestApp::new().await;
    let parent = app.account().await;
    let other = app.account().await;
    let r = app
        .post_form(
            "/2010-04-01/Accounts.json",
            &Creds::of(&parent),
            &[("FriendlyName", "child")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let child_sid = r.json()["sid"].as_str().unwrap().to_owned();
    let child = app.state.meta.account(&child_sid).await.unwrap().unwrap();
    assert_eq!(child.parent_sid.as_deref(), Some(parent.sid.as_str()));

    let rec_child = app
        .ingest(&child, "", wav_with_marker(1, b"c"))
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec_parent = app
        .ingest(&parent, "", wav_with_marker(1, b"p"))
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_child = app.add_public_key(&child, test_key(0)).await;

    // (resource owner, resource, who asks) → expected status
    let cases = [
        (&child.sid, &rec_child, Creds::of(&parent), StatusCode::OK),
        (&child.sid, &rec_child, Creds::of(&child), StatusCode::OK),
        (
            &child.sid,
            &rec_child,
            Creds::of(&other),
            StatusCode::NOT_FOUND,
        ),
        (
            &parent.sid,
            &rec_parent,
            Creds::of(&child),
            StatusCode::NOT_FOUND,
        ),
        (
            &parent.sid,
            &rec_parent,
            Creds::of(&other),
            StatusCode::NOT_FOUND,
        ),
        (&parent.sid, &rec_parent, Creds::of(&parent), StatusCode::OK),
        (
            &parent.sid,
            &rec_parent,
            Creds::Basic(parent.sid.clone(), "bad".into()),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (owner, re, who, expected) in cases {
        for ext in [".json", ".wav"] {
            let r = app.get(&rec_uri(owner, re, ext), &who).await;
            assert_eq!(r.status, expected, "{owner} {re}{ext} as {who:?}");
        }
        let list = app
            .get(
                &format!("/2010-04-01/Accounts/{owner}/Recordings.json"),
                &who,
            )
            .await;
        assert_eq!(list.status, expected, "list {owner} as {who:?}");
        let settings = app
            .get(
                &format!("/2010-04-01/Accounts/{owner}/RecordingSettings.json"),
                &who,
            )
            .await;
        assert_eq!(settings.status, expected, "settings {owner} as {who:?}");
        let notes = app
            .get(
                &format!("/2010-04-01/Accounts/{owner}/Notifications.json"),
                &who,
            )
            .await;
        assert_eq!(notes.status, expected, "notifications {owner} as {who:?}");
    }
    // A foreign account cannot delete, ingest into, or learn of another's resources.
    assert_eq!(
        app.delete(
            &rec_uri(&parent.sid, &rec_parent, ".json"),
            &Creds::of(&other)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .post_bytes(
            &format!("/2010-04-01/Accounts/{}/Recordings.json", parent.sid),
            &Creds::of(&other),
            vec![1, 2, 3],
            "audio/x-wav",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(
            &format!("/v1/Credentials/PublicKeys/{key_child}"),
            &Creds::of(&other)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &format!("/v1/Credentials/PublicKeys/{key_child}"),
            &Creds::of(&parent)
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.delete(
            &format!("/v1/Credentials/PublicKeys/{key_child}"),
            &Creds::of(&other)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // The parent lists itself and its subaccount; the child only itself; the other only itself.
    let listed = |creds: Creds| {
        let app = &app;
        async move {
            let v = app.get("/2010-04-01/Accounts.json", &creds).await.json();
            let mut sids: Vec<String> = v["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["sid"].as_str().unwrap().to_owned())
                .collect();
            sids.sort();
            sids
        }
    };
    let mut expect = vec![parent.sid.clone(), child.sid.clone()];
    expect.sort();
    assert_eq!(listed(Creds::of(&parent)).await, expect);
    assert_eq!(listed(Creds::of(&child)).await, vec![child.sid.clone()]);
    assert_eq!(
        app.get(
            &format!("/2010-04-01/Accounts/{}.json", other.sid),
            &Creds::of(&parent)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // A subaccount cannot create subaccounts.
    assert_eq!(
        app.post_form("/2010-04-01/Accounts.json", &Creds::of(&child), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_closed_subaccount_stays_closed() {
    let app = TestApp::new().await;
    let parent = app.account().await;
    let child = app.subaccount(&parent).await;
    let uri = format!("/2010-04-01/Accounts/{}.json", child.sid);
    let as_parent = Creds::of(&parent);
    // Suspended is reversible.
    let r = app
        .post_form(&uri, &as_parent, &[("Status", "suspended")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["status"], "suspended");
    let r = app
        .post_form(&uri, &as_parent, &[("Status", "active")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["status"], "active");
    // Closed is not.
    let r = app
        .post_form(&uri, &as_parent, &[("Status", "closed")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["status"], "closed");
    for status in ["active", "suspended"] {
        let r = app.post_form(&uri, &as_parent, &[("Status", status)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "Status={status}");
        let body = r.json();
        assert_eq!(body["code"], 20001);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("closed") && message.contains("new subaccount"),
            "{message}"
        );
    }
    let stored = app.state.meta.account(&child.sid).await.unwrap().unwrap();
    assert_eq!(stored.status, "closed");
    // The store keeps it closed even when asked directly (a racing update).
    let again = app
        .state
        .meta
        .update_account(&child.sid, None, Some("active"), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, "closed");
    // Its old credentials stay refused.
    let r = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Recordings.json", child.sid),
            &Creds::of(&child),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_leaves_nothing_behind() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let c = Creds::of(&a);
    for path in [
        format!("/2010-04-01/Accounts/{}/Recordings/RE123.json", a.sid),
        format!(
            "/2010-04-01/Accounts/{}/Recordings/XX0123456789abcdef0123456789abcdef.json",
            a.sid
        ),
        format!(
            "/2010-04-01/Accounts/{}/Recordings/RE0123456789abcdef0123456789abcdef.txt",
            a.sid
        ),
        "/2010-04-01/Accounts/AC123/Recordings.json".to_owned(),
        "/v1/Credentials/PublicKeys/CRnothex".to_owned(),
        "/nope".to_owned(),
    ] {
        let r = app.get(&path, &c).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.json()["code"], 20404);
    }
    for (q, name) in [
        ("?Channels=3", "Channels"),
        ("?CallSid=nope", "CallSid"),
        (
            "?RecordingStatusCallback=ftp%3A%2F%2Fx",
            "RecordingStatusCallback",
        ),
        (
            "?RecordingStatusCallbackMethod=PUT&RecordingStatusCallback=http%3A%2F%2Fx",
            "RecordingStatusCallbackMethod",
        ),
        (
            "?RecordingStatusCallbackEvent=exploded&RecordingStatusCallback=http%3A%2F%2Fx",
            "RecordingStatusCallbackEvent",
        ),
        ("?Duration=-1", "Duration"),
        ("?Source=%3Cscript%3E", "Source"),
    ] {
        let r = app.ingest(&a, q, wav_with_marker(1, b"x")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(
            r.json()["message"].as_str().unwrap().contains(name),
            "{q}: {:?}",
            r.body
        );
    }
    let list = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid),
            &c,
        )
        .await
        .json();
    assert!(
        list["recordings"].as_array().unwrap().is_empty(),
        "a rejected upload left a recording"
    );
    // The account's own prefix: on a shared bucket other tests' objects sit beside it.
    let objects = app
        .state
        .objects
        .list(&format!("{}/", a.sid))
        .await
        .unwrap();
    assert!(
        objects.is_empty(),
        "a rejected upload left an object: {objects:?}"
    );
    let r = app
        .post_form(
            &format!("/2010-04-01/Accounts/{}/RecordingSettings.json", a.sid),
            &c,
            &[("EncryptionEnabled", "maybe")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post_form(
            &format!("/2010-04-01/Accounts/{}/RecordingSettings.json", a.sid),
            &c,
            &[(
                "EncryptionPublicKeySid",
                "CR0123456789abcdef0123456789abcdef",
            )],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("EncryptionPublicKeySid")
    );
    let r = app
        .call(
            Method::PUT,
            &format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid),
            &c,
            Body::empty(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_interrupted_upload_leaves_no_recording_and_no_object() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
        Ok(axum::body::Bytes::from_static(b"RIFF partial upload")),
        Err(std::io::Error::other("client went away")),
    ];
    let body = Body::from_stream(futures::stream::iter(chunks));
    let r = app
        .call(
            Method::POST,
            &format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid),
            &Creds::of(&a),
            body,
            Some("audio/x-wav"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let list = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid),
            &Creds::of(&a),
        )
        .await
        .json();
    assert!(list["recordings"].as_array().unwrap().is_empty());
    assert!(
        app.state
            .objects
            .list(&format!("{}/", a.sid))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let app = TestApp::new().await;
    assert_eq!(
        app.get("/healthz", &Creds::None).await.status,
        StatusCode::OK
    );
    let a = app.account().await;
    app.ingest(&a, "", wav_with_marker(1, b"m")).await;
    // Not on the API listener: the metrics are the operator's, on their own address.
    let m = app.get("/metrics", &Creds::None).await;
    assert_eq!(m.status, StatusCode::NOT_FOUND);
    let response = mediaseal_server::metrics_app()
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("mediaseal_recordings_ingested_total"));
}

/// Every voice endpoint × {the owner, its parent, its subaccount, an unrelated account, bad
/// credentials}: the owner and a parent succeed, everyone else gets exactly what a missing
/// resource gets (404), bad credentials get 401.
/// One request of the access matrix: method, path, form, and the status the owner gets.
type Probe<'a> = (Method, String, Vec<(&'a str, String)>, StatusCode);

#[tokio::test]
async fn access_matrix_for_every_endpoint() {
    let app = TestApp::new().await;
    let parent = app.account().await;
    let child = app.subaccount(&parent).await;
    let other = app.account().await;
    let call = "CA0123456789abcdef0123456789abcdef";

    // Resources owned by `owner`, made by the owner itself.
    struct Owned {
        re: String,
        sk: String,
        cr: String,
        no: String,
    }
    async fn make(app: &TestApp, owner: &mediaseal_store::model::Account) -> Owned {
        let c = Creds::of(owner);
        let re = app
            .ingest(
                owner,
                "?CallSid=CA0123456789abcdef0123456789abcdef",
                wav_with_marker(1, b"m"),
            )
            .await
            .json()["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let sk = app
            .post_form(
                &format!("/2010-04-01/Accounts/{}/Keys.json", owner.sid),
                &c,
                &[],
            )
            .await
            .json()["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let cr = app.add_public_key(owner, test_key(0)).await;
        // A notification: encryption on, key configured, key deleted, no other key → failure.
        app.enable_encryption(owner, Some(&cr)).await;
        app.delete(&format!("/v1/Credentials/PublicKeys/{cr}"), &c)
            .await;
        app.ingest(owner, "", wav_with_marker(1, b"n")).await;
        let notes = app
            .get(
                &format!("/2010-04-01/Accounts/{}/Notifications.json", owner.sid),
                &c,
            )
            .await
            .json();
        let no = notes["notifications"][0]["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let settings = format!("/2010-04-01/Accounts/{}/RecordingSettings.json", owner.sid);
        app.post_form(
            &settings,
            &c,
            &[
                ("EncryptionEnabled", "false"),
                ("EncryptionPublicKeySid", ""),
            ],
        )
        .await;
        let cr = app.add_public_key(owner, test_key(1)).await;
        Owned { re, sk, cr, no }
    }

    // The API-key column: a standard key of each account. Keys act for their account on every
    // resource except the Accounts and Keys resources, where they get 403 whoever owns the SID
    // (on Twilio too); no answer to a key ever carries an auth token.
    async fn api_key(app: &TestApp, of: &mediaseal_store::model::Account) -> Creds {
        let r = app
            .post_form(
                &format!("/2010-04-01/Accounts/{}/Keys.json", of.sid),
                &Creds::of(of),
                &[("FriendlyName", "matrix")],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let v = r.json();
        Creds::Basic(
            v["sid"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        )
    }
    let mut key_of = std::collections::HashMap::new();
    for a in [&parent, &child, &other] {
        key_of.insert(a.sid.clone(), api_key(&app, a).await);
    }
    let tokens = [
        parent.auth_token.clone(),
        child.auth_token.clone(),
        other.auth_token.clone(),
    ];
    let assert_no_token = |r: &Resp, what: &str| {
        let body = String::from_utf8_lossy(&r.body);
        for t in &tokens {
            assert!(
                !body.contains(t.as_str()),
                "{what}: an auth token in {body}"
            );
        }
    };
    let is_account_route = |uri: &str| {
        let path = uri.split('?').next().unwrap_or(uri);
        path.starts_with("/2010-04-01/Accounts")
            && (path.ends_with("Accounts.json")
                || path.contains("/Keys")
                || path.matches('/').count() == 3)
    };
    // The Accounts list and create: 403 for every key, whoever's it is.
    for (who, creds) in &key_of {
        let r = app.get("/2010-04-01/Accounts.json", creds).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "list accounts as key of {who}"
        );
        assert_eq!(r.json()["code"], 20403);
        assert_no_token(&r, "list accounts as a key");
        let r = app
            .post_form(
                "/2010-04-01/Accounts.json",
                creds,
                &[("FriendlyName", "by key")],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "create account as key of {who}"
        );
        assert_eq!(r.json()["code"], 20403);
        assert_no_token(&r, "create account as a key");
    }
    assert_eq!(
        app.get("/2010-04-01/Accounts.json", &Creds::of(&parent))
            .await
            .status,
        StatusCode::OK
    );

    for (owner, allowed, denied) in [
        (&child, vec![&child, &parent], vec![&other]),
        (&parent, vec![&parent], vec![&child, &other]),
    ] {
        let o = make(&app, owner).await;
        let ac = owner.sid.as_str();
        let reads: Vec<Probe<'_>> = vec![
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}.json"),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Keys.json"),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Keys/{}.json", o.sk),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::POST,
                format!("/2010-04-01/Accounts/{ac}/Keys/{}.json", o.sk),
                vec![("FriendlyName", "x".into())],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/RecordingSettings.json"),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::POST,
                format!("/2010-04-01/Accounts/{ac}/RecordingSettings.json"),
                vec![("EncryptionEnabled", "false".into())],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Recordings.json"),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Recordings/{}.json", o.re),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Recordings/{}.wav", o.re),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Calls/{call}/Recordings.json"),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Notifications.json"),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/2010-04-01/Accounts/{ac}/Notifications/{}.json", o.no),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/v1/Credentials/PublicKeys/{}", o.cr),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::POST,
                format!("/v1/Credentials/PublicKeys/{}", o.cr),
                vec![("FriendlyName", "y".into())],
                StatusCode::OK,
            ),
            (
                Method::GET,
                format!("/v1/Credentials/PublicKeys?AccountSid={ac}"),
                vec![],
                StatusCode::OK,
            ),
            (
                Method::POST,
                "/v1/Credentials/PublicKeys".to_owned(),
                vec![
                    ("PublicKey", test_key(2).public_key().to_pem()),
                    ("AccountSid", ac.to_owned()),
                ],
                StatusCode::CREATED,
            ),
            (
                Method::POST,
                format!("/2010-04-01/Accounts/{ac}/Keys.json"),
                vec![],
                StatusCode::CREATED,
            ),
        ];
        for (method, uri, form, ok) in &reads {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let send = |creds: Creds| {
                let (method, uri, pairs) = (method.clone(), uri.clone(), pairs.clone());
                let app = &app;
                async move {
                    if method == Method::POST {
                        app.post_form(&uri, &creds, &pairs).await
                    } else {
                        app.call(method, &uri, &creds, Body::empty(), None).await
                    }
                }
            };
            for who in &allowed {
                let r = send(Creds::of(who)).await;
                assert_eq!(
                    r.status,
                    *ok,
                    "{method} {uri} as {} (allowed): {:?}",
                    who.sid,
                    String::from_utf8_lossy(&r.body)
                );
            }
            for who in &denied {
                let r = send(Creds::of(who)).await;
                assert_eq!(
                    r.status,
                    StatusCode::NOT_FOUND,
                    "{method} {uri} as {} (denied)",
                    who.sid
                );
                assert_eq!(r.json()["code"], 20404);
            }
            let r = send(Creds::Basic(owner.sid.clone(), "not-the-token".into())).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with bad credentials"
            );
            for (who, is_allowed) in allowed
                .iter()
                .map(|a| (a, true))
                .chain(denied.iter().map(|d| (d, false)))
            {
                let r = send(key_of[&who.sid].clone()).await;
                let (expect, code) = if is_account_route(uri) {
                    (StatusCode::FORBIDDEN, Some(20403))
                } else if is_allowed {
                    (*ok, None)
                } else {
                    (StatusCode::NOT_FOUND, Some(20404))
                };
                assert_eq!(
                    r.status,
                    expect,
                    "{method} {uri} as an API key of {}: {:?}",
                    who.sid,
                    String::from_utf8_lossy(&r.body)
                );
                if let Some(code) = code {
                    assert_eq!(r.json()["code"], code, "{method} {uri} as a key");
                }
                assert_no_token(&r, &format!("{method} {uri} as an API key of {}", who.sid));
            }
        }
        // Ingest and the deletes, with a fresh resource for each caller.
        for who in allowed.iter().chain(denied.iter()) {
            let expect_ok = allowed.iter().any(|a| a.sid == who.sid);
            let r = app
                .post_bytes(
                    &format!("/2010-04-01/Accounts/{ac}/Recordings.json"),
                    &Creds::of(who),
                    wav_with_marker(1, b"i"),
                    "audio/x-wav",
                )
                .await;
            assert_eq!(
                r.status,
                if expect_ok {
                    StatusCode::CREATED
                } else {
                    StatusCode::NOT_FOUND
                },
                "ingest as {}",
                who.sid
            );
            let fresh = make(&app, owner).await;
            let expect = if expect_ok {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_FOUND
            };
            let key_uri = format!("/2010-04-01/Accounts/{ac}/Keys/{}.json", fresh.sk);
            let r = app.delete(&key_uri, &key_of[&who.sid]).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "DELETE {key_uri} as a key");
            for uri in [
                format!("/2010-04-01/Accounts/{ac}/Recordings/{}.json", fresh.re),
                key_uri.clone(),
                format!("/v1/Credentials/PublicKeys/{}", fresh.cr),
            ] {
                assert_eq!(
                    app.delete(&uri, &Creds::of(who)).await.status,
                    expect,
                    "DELETE {uri} as {}",
                    who.sid
                );
            }
        }
    }
}

#[tokio::test]
async fn mp3_is_transcoded_through_ffmpeg_or_refused_without_it() {
    let app = TestApp::new().await;
    assert!(
        app.state.config.ffmpeg.is_some(),
        "ffmpeg is needed for this test; run scripts/setup.sh"
    );
    let a = app.account().await;
    let c = Creds::of(&a);
    let re = app.ingest(&a, "", wav_with_marker(2, b"mp3")).await.json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.get(&rec_uri(&a.sid, &re, ".mp3"), &c).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "audio/mpeg");
    let b = &r.body;
    let is_mp3 = b.starts_with(b"ID3") || (b.len() > 2 && b[0] == 0xff && b[1] & 0xe0 == 0xe0);
    assert!(is_mp3 && b.len() > 1000, "not an MP3 ({} bytes)", b.len());

    // Bytes that are no audio at all: an error that says so, not a 200 with an empty body.
    let garbage = app
        .ingest(&a, "", b"this is not audio, just text ".repeat(200))
        .await;
    assert_eq!(garbage.status, StatusCode::CREATED, "{:?}", garbage.body);
    let re = garbage.json()["sid"].as_str().unwrap().to_owned();
    let r = app.get(&rec_uri(&a.sid, &re, ".mp3"), &c).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains(".wav"));

    let without = TestApp::with_config(|c| c.ffmpeg = None).await;
    let a = without.account().await;
    let re = without
        .ingest(&a, "", wav_with_marker(1, b"mp3"))
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = without
        .get(&rec_uri(&a.sid, &re, ".mp3"), &Creds::of(&a))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json()["message"].as_str().unwrap().contains("ffmpeg"));
}

/// A body of `total` bytes in 16 KiB chunks, without a `Content-Length` (as a chunked upload).
fn streamed(total: usize) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..total)
        .step_by(16 * 1024)
        .map(|start| Ok(vec![b'x'; (total - start).min(16 * 1024)]))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}

/// Nothing of `account` is in the object store.
async fn no_objects(app: &TestApp, account: &str) {
    let left = app
        .state
        .objects
        .list(&format!("{account}/"))
        .await
        .unwrap();
    assert!(left.is_empty(), "objects left behind: {left:?}");
}

#[tokio::test]
async fn uploads_over_the_size_limit_get_413_and_leave_nothing() {
    const LIMIT: usize = 64 * 1024;
    let app = TestApp::with_config(|c| c.service.max_upload_bytes = LIMIT as u64).await;
    let a = app.account().await;
    let c = Creds::of(&a);
    let recordings = format!("/2010-04-01/Accounts/{}/Recordings.json", a.sid);
    let room = {
        let r = app
            .post_form("/v1/Rooms", &c, &[("UniqueName", "limits")])
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.json()["sid"].as_str().unwrap().to_owned()
    };
    let tracks = format!("/v1/Rooms/{room}/Recordings");
    let track_door = format!(
        "{tracks}?ParticipantSid=PA0123456789abcdef0123456789abcdef&TrackName=mic&Type=audio"
    );

    let check_413 = |r: Resp, what: &str| {
        assert_eq!(
            r.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{what}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let body = r.json();
        assert_eq!(body["code"], 20413, "{what}");
        assert_eq!(body["status"], 413, "{what}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&LIMIT.to_string())
                && message.contains("nothing was stored")
                && message.contains("--max-upload-bytes"),
            "{what}: {message}"
        );
    };
    for (door, content_type) in [
        (recordings.as_str(), "audio/x-wav"),
        (track_door.as_str(), "audio/x-matroska"),
    ] {
        // Announced too large: refused before a byte is read.
        let mut req = axum::http::Request::builder()
            .method(Method::POST)
            .uri(door)
            .header(axum::http::header::CONTENT_TYPE, content_type)
            .header(axum::http::header::CONTENT_LENGTH, (LIMIT + 1).to_string());
        if let Creds::Basic(u, p) = &c {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header(axum::http::header::AUTHORIZATION, format!("Basic {token}"));
        }
        let r = {
            use http_body_util::BodyExt as _;
            use tower::ServiceExt as _;
            let response = app
                .router
                .clone()
                .oneshot(req.body(Body::from(vec![b'x'; LIMIT + 1])).unwrap())
                .await
                .unwrap();
            Resp {
                status: response.status(),
                headers: response.headers().clone(),
                body: response.into_body().collect().await.unwrap().to_bytes(),
            }
        };
        check_413(r, &format!("{door} with Content-Length"));
        // Not announced, found out while streaming: the reservation is abandoned.
        let r = app
            .call(
                Method::POST,
                door,
                &c,
                streamed(LIMIT + 16 * 1024),
                Some(content_type),
            )
            .await;
        check_413(r, &format!("{door} streamed"));
        no_objects(&app, &a.sid).await;
    }
    // No row became visible.
    let listed = app.get(&recordings, &c).await.json();
    assert_eq!(listed["recordings"].as_array().unwrap().len(), 0);
    let listed = app.get(&tracks, &c).await.json();
    assert_eq!(
        listed["recordings"].as_array().unwrap().len(),
        0,
        "{listed}"
    );

    // At the limit exactly: accepted.
    let r = app
        .call(
            Method::POST,
            &recordings,
            &c,
            streamed(LIMIT),
            Some("audio/x-wav"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(app.state.services.uploads.in_progress(&a.sid), 0);
}

#[tokio::test]
async fn concurrent_uploads_per_account_are_capped_with_429() {
    use futures::SinkExt as _;
    let app = TestApp::with_config(|c| c.service.max_concurrent_uploads = 1).await;
    let a = app.account().await;
    let b = app.account().await;
    let recordings = |acct: &mediaseal_store::model::Account| {
        format!("/2010-04-01/Accounts/{}/Recordings.json", acct.sid)
    };
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let (first_uri, first_creds) = (recordings(&a), Creds::of(&a));
    let first = app.call(
        Method::POST,
        &first_uri,
        &first_creds,
        Body::from_stream(rx),
        Some("audio/x-wav"),
    );
    let others = async {
        tx.send(Ok(b"RIFF".to_vec())).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while app.state.services.uploads.in_progress(&a.sid) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first upload never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // A second upload of the same account while the first is in progress: 429.
        let r = app.ingest(&a, "", wav_with_marker(1, b"second")).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{:?}",
            String::from_utf8_lossy(&r.body)
        );
        let body = r.json();
        assert_eq!(body["code"], 20429);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&a.sid) && message.contains("--max-concurrent-uploads"),
            "{message}"
        );
        // Another account is not held up.
        let r = app.ingest(&b, "", wav_with_marker(1, b"other")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        tx.send(Ok(vec![b'x'; 1024])).await.unwrap();
        drop(tx);
    };
    let (r, ()) = tokio::join!(first, others);
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // The slot is free again.
    assert_eq!(app.state.services.uploads.in_progress(&a.sid), 0);
    let r = app.ingest(&a, "", wav_with_marker(1, b"third")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Only the accepted recordings exist.
    let listed = app.get(&recordings(&a), &Creds::of(&a)).await.json();
    assert_eq!(listed["recordings"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn temporary_object_files_left_by_a_crash_are_swept() {
    let app = TestApp::new().await;
    if app.state.objects.backend() != "fs" {
        // S3 has no temporary files; its unfinished multipart uploads have their own sweeper.
        return;
    }
    let partial = app.dir.path().join("objects/.partial");
    let age = app.state.services.config.orphan_age;
    // What a crash leaves: a writer's temporary file (and its headers' temporary file), last
    // touched longer ago than the orphan age.
    let crashed = partial.join("AC0_RE0.0000000000000001");
    let crashed_meta = partial.join("AC0_RE0.0000000000000001.meta");
    for p in [&crashed, &crashed_meta] {
        std::fs::write(p, b"sealed bytes of an upload cut off by a crash").unwrap();
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - age - std::time::Duration::from_secs(60))
            .unwrap();
    }
    // A live writer's temporary file is recent and must stay.
    let a = app.account().await;
    let mut live = app
        .state
        .objects
        .create(&format!("{}/RE0123456789abcdef0123456789abcdef", a.sid))
        .await
        .unwrap();
    live.write(bytes::Bytes::from_static(b"in flight"))
        .await
        .unwrap();

    // The sweeper job's pass (the runner calls this every --sweep-secs; `serve` also at start).
    let removed = mediaseal_service::sweep::sweep_once(&app.state.services).await;
    assert_eq!(removed, 2);
    assert!(!crashed.exists() && !crashed_meta.exists());
    let left: Vec<_> = std::fs::read_dir(&partial).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "the live writer's file stays: {left:?}");
    live.finish(mediaseal_store::ObjectMeta::new())
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(&partial).unwrap().count(), 0);
}

#[tokio::test]
async fn an_upload_cut_off_by_a_crash_is_reported_failed_with_16104() {
    use mediaseal_service::voice::{RecordingSubscription, VoiceRequest, VoiceStart};
    // Everything unpublished counts as crashed at once.
    let app = TestApp::with_config(|c| c.service.orphan_age = std::time::Duration::ZERO).await;
    let a = app.account().await;
    let subscription = RecordingSubscription::new(
        "https://receiver.example/recordings",
        "POST",
        &["completed", "failed"],
    )
    .unwrap();
    let start = app
        .state
        .services
        .start_voice_recording(VoiceRequest {
            account_sid: a.sid.clone(),
            call_sid: Some("CA0123456789abcdef0123456789abcdef".to_owned()),
            conference_sid: None,
            channels: 1,
            source: "RecordVerb".to_owned(),
            track: None,
            duration: None,
            start_time: None,
            content_type: "audio/x-wav".to_owned(),
            subscription: Some(subscription),
            base_url: "https://mediaseal.example".to_owned(),
            request_url: "https://mediaseal.example/upload".to_owned(),
        })
        .await
        .unwrap();
    let VoiceStart::Recording(mut recorder) = start else {
        panic!("the account records without encryption, so recording starts");
    };
    recorder
        .write(&wav_with_marker(1, b"cut off"))
        .await
        .unwrap();
    let sid = recorder.sid().to_owned();
    // A crash runs no destructor: the reservation and whatever was written stay behind.
    std::mem::forget(recorder);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    mediaseal_service::sweep::sweep_once(&app.state.services).await;

    let c = Creds::of(&a);
    let r = app.get(&rec_uri(&a.sid, &sid, ".json"), &c).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let rec = r.json();
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error_code"], 16104);
    assert!(rec["encryption_details"].is_null());
    // Nothing of it is served.
    let media = app.get(&rec_uri(&a.sid, &sid, ".wav"), &c).await;
    assert_ne!(media.status, StatusCode::OK);
    // The failed callback the upload subscribed to, and a notification.
    let callbacks = app.state.meta.callbacks_for(&sid).await.unwrap();
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].url, "https://receiver.example/recordings");
    assert!(
        callbacks[0].params.contains("\"failed\""),
        "{}",
        callbacks[0].params
    );
    assert!(
        callbacks[0].params.contains("16104"),
        "{}",
        callbacks[0].params
    );
    let notes = app
        .get(
            &format!("/2010-04-01/Accounts/{}/Notifications.json", a.sid),
            &c,
        )
        .await
        .json();
    let list = notes["notifications"].as_array().unwrap();
    assert!(
        list.iter()
            .any(|n| n["error_code"] == "16104" && n["resource_sid"] == sid.as_str()),
        "{notes}"
    );
    // A second pass finds nothing more to do.
    mediaseal_service::sweep::sweep_once(&app.state.services).await;
    assert_eq!(app.state.meta.callbacks_for(&sid).await.unwrap().len(), 1);
}
