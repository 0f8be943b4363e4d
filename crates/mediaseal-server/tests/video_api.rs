//! Video v1 through the router: settings, rooms, the track ingest door, `/Media` and its signed
//! URLs, compositions made by the real ffmpeg, hooks, callbacks in the outbox, isolation between
//! accounts, and the plaintext invariant. Backend-agnostic: every test makes its own accounts.

#[path = "video_shared.rs"]
mod shared;

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use mediaseal_crypto::{Envelope, S3Headers};
use mediaseal_store::model::{Callback, Sealing};
use mediaseal_store::video::Composition;
use serde_json::Value;
use shared::support::{Creds, Resp, TestApp, test_key};
use shared::*;

fn envelope_from(resp: &Resp) -> Envelope {
    let lines: String = resp
        .headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-amz-meta-"))
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap()))
        .collect();
    S3Headers::from_lines(&lines)
        .unwrap()
        .to_envelope()
        .unwrap()
}

fn open_s3(resp: &Resp, key: &mediaseal_crypto::PrivateKey) -> Vec<u8> {
    let env = envelope_from(resp);
    let cursor = std::io::Cursor::new(resp.body.to_vec());
    mediaseal_crypto::open_seekable_to_writer(cursor, Vec::new(), &env, key).unwrap()
}

fn events(callbacks: &[Callback]) -> Vec<String> {
    callbacks
        .iter()
        .map(|c| {
            let params: Vec<(String, String)> = serde_json::from_str(&c.params).unwrap();
            params
                .into_iter()
                .find(|(k, _)| k == "StatusCallbackEvent")
                .map(|(_, v)| v)
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn settings_are_per_account_independent_and_validated() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let key_a = app.add_public_key(&a, test_key(0)).await;
    let key_b = app.add_public_key(&b, test_key(1)).await;

    let fresh = app.get("/v1/RecordingSettings/Default", &ca).await;
    assert_eq!(fresh.status, StatusCode::OK);
    let v = fresh.json();
    assert_eq!(v["encryption_enabled"], false);
    assert_eq!(
        v["url"],
        "http://mediaseal.test/v1/RecordingSettings/Default"
    );
    assert_eq!(v["account_sid"], a.sid.as_str());

    for (form, why) in [
        (
            vec![
                ("EncryptionEnabled", "true"),
                ("EncryptionKeySid", key_a.as_str()),
            ],
            "FriendlyName",
        ),
        (
            vec![("FriendlyName", "x"), ("EncryptionEnabled", "true")],
            "EncryptionKeySid",
        ),
        (
            vec![("FriendlyName", "x"), ("EncryptionKeySid", key_b.as_str())],
            "EncryptionKeySid",
        ),
        (
            vec![("FriendlyName", "x"), ("EncryptionKeySid", "CRnothex")],
            "EncryptionKeySid",
        ),
        (
            vec![("FriendlyName", "x"), ("EncryptionEnabled", "maybe")],
            "EncryptionEnabled",
        ),
        (
            vec![("FriendlyName", "x"), ("AwsStorageEnabled", "true")],
            "AwsStorageEnabled",
        ),
        (
            vec![("FriendlyName", "x"), ("AwsS3Url", "ftp://bucket")],
            "AwsS3Url",
        ),
    ] {
        for which in ["RecordingSettings", "CompositionSettings"] {
            let r = app
                .post_form(&format!("/v1/{which}/Default"), &ca, &form)
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{which} {form:?}");
            assert!(
                r.json()["message"].as_str().unwrap().contains(why),
                "{which} {form:?}: {:?}",
                r.body
            );
        }
    }

    let r = app
        .post_form(
            "/v1/CompositionSettings/Default",
            &ca,
            &[
                ("FriendlyName", "comp"),
                ("EncryptionEnabled", "true"),
                ("EncryptionKeySid", &key_a),
                ("AwsStorageEnabled", "true"),
                ("AwsS3Url", "https://bucket.s3.amazonaws.com/path/"),
                ("AwsCredentialsSid", "CR0123456789abcdef0123456789abcdef"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!(
        (
            v["encryption_enabled"].clone(),
            v["encryption_key_sid"].clone()
        ),
        (Value::Bool(true), Value::from(key_a.as_str()))
    );
    assert_eq!(v["aws_s3_url"], "https://bucket.s3.amazonaws.com/path/");
    assert_eq!(
        v["url"],
        "http://mediaseal.test/v1/CompositionSettings/Default"
    );
    // The two are independent, and each account has its own.
    assert_eq!(
        app.get("/v1/RecordingSettings/Default", &ca).await.json()["encryption_enabled"],
        false
    );
    assert_eq!(
        app.get("/v1/CompositionSettings/Default", &cb).await.json()["encryption_enabled"],
        false
    );
    // A POST replaces: what is left out goes back to the default.
    let r = app
        .post_form(
            "/v1/CompositionSettings/Default",
            &ca,
            &[("FriendlyName", "plain")],
        )
        .await;
    assert_eq!(r.json()["encryption_enabled"], false);
    assert_eq!(r.json()["aws_s3_url"], Value::Null);
    assert_eq!(
        app.get("/v1/CompositionSettings/Default", &Creds::None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rooms_are_created_found_listed_completed_and_private() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let room = create_room(&app, &ca, "daily").await;
    let again = app
        .post_form("/v1/Rooms", &ca, &[("UniqueName", "daily")])
        .await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "a second in-progress room with the same name"
    );
    let v = app.get(&format!("/v1/Rooms/{room}"), &ca).await.json();
    assert_eq!(
        (
            v["status"].as_str(),
            v["type"].as_str(),
            v["unique_name"].as_str()
        ),
        (Some("in-progress"), Some("group"), Some("daily"))
    );
    assert_eq!(
        v["links"]["recordings"],
        format!("http://mediaseal.test/v1/Rooms/{room}/Recordings")
    );
    assert_eq!(
        app.get("/v1/Rooms/daily", &ca).await.json()["sid"],
        room.as_str()
    );
    for bad in [
        vec![("Type", "huge")],
        vec![("StatusCallback", "not a url")],
        vec![("MaxParticipants", "0")],
    ] {
        assert_eq!(
            app.post_form("/v1/Rooms", &ca, &bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad:?}"
        );
    }
    // Another account sees nothing of it.
    assert_eq!(
        app.get(&format!("/v1/Rooms/{room}"), &cb).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1/Rooms/daily", &cb).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        complete_room(&app, &cb, &room).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.get("/v1/Rooms", &cb).await.json()["rooms"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let r = app
        .post_form(
            &format!("/v1/Rooms/{room}"),
            &ca,
            &[("Status", "in-progress")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let done = complete_room(&app, &ca, &room).await;
    assert_eq!(done.status, StatusCode::ACCEPTED);
    let v = done.json();
    assert_eq!(v["status"], "completed");
    assert!(v["end_time"].as_str().unwrap().ends_with('Z') && v["duration"].is_i64());
    let list = app
        .get("/v1/Rooms?Status=completed&PageSize=1", &ca)
        .await
        .json();
    assert_eq!(list["rooms"][0]["sid"], room.as_str());
    assert_eq!(list["meta"]["key"], "rooms");
    assert!(
        app.get("/v1/Rooms?Status=in-progress", &ca).await.json()["rooms"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The name is free again once the room is over.
    create_room(&app, &ca, "daily").await;
}

#[tokio::test]
async fn ingest_seals_with_the_customer_key_or_at_rest_and_refuses_bad_input() {
    let app = TestApp::new().await;
    let media = media_dir();
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let key = app.add_public_key(&a, test_key(0)).await;
    let room = create_room(&app, &ca, "ingest").await;
    let track = make_track(media.path(), "alice", false, 3, 440);
    let plain = std::fs::read(&track).unwrap();

    // Unencrypted: sealed at rest, served decrypted.
    let r = upload(&app, &ca, &room, &track, "alice-mic", 250).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let clear = r.json();
    let clear_sid = clear["sid"].as_str().unwrap().to_owned();
    assert_eq!(clear["room_sid"], room.as_str());
    assert_eq!(
        (
            clear["type"].as_str(),
            clear["container_format"].as_str(),
            clear["codec"].as_str()
        ),
        (Some("audio"), Some("mka"), Some("opus"))
    );
    assert_eq!(
        clear["duration"], 3,
        "duration read from the Matroska header"
    );
    assert_eq!(clear["offset"], 250);
    assert_eq!(clear["size"], plain.len() as u64);
    assert_eq!(clear["status"], "completed");
    assert_eq!(
        clear["links"]["media"],
        format!("http://mediaseal.test/v1/Rooms/{room}/Recordings/{clear_sid}/Media")
    );

    // Encrypted: s3-cbc with the configured key.
    set_settings(&app, &ca, "RecordingSettings", Some(&key)).await;
    let r = upload(&app, &ca, &room, &track, "alice-mic-2", 0).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let sealed_sid = r.json()["sid"].as_str().unwrap().to_owned();
    let rec = app
        .state
        .meta
        .track_recording(&a.sid, &sealed_sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.sealing, Sealing::Customer);
    assert_eq!(rec.encryption_key_sid.as_deref(), Some(key.as_str()));
    assert_eq!(
        app.state
            .meta
            .track_recording(&a.sid, &clear_sid)
            .await
            .unwrap()
            .unwrap()
            .sealing,
        Sealing::AtRest
    );

    // /Media of the encrypted one: the stored bytes with the seed's headers, opened by the key.
    let url = media_url(&app, &ca, &format!("/v1/Recordings/{sealed_sid}/Media")).await;
    let got = fetch(&app, &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.headers["content-type"], "application/octet-stream");
    assert_eq!(got.headers["x-amz-meta-x-amz-matdesc"], "{}");
    assert_eq!(
        got.headers["x-amz-meta-x-amz-unencrypted-content-length"],
        plain.len().to_string().as_str()
    );
    assert_eq!(
        got.headers["x-amz-meta-mediaseal-public-key-sid"],
        key.as_str()
    );
    assert_ne!(&got.body[..], &plain[..]);
    assert_eq!(open_s3(&got, test_key(0)), plain);
    // Range requests on the sealed bytes.
    let part = fetch(&app, &url, &[("range", "bytes=16-47")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.body[..], &got.body[16..48]);
    assert!(part.headers["x-amz-meta-x-amz-key"].len() > 300);
    // Whoever signed it (this service, or S3 presigning), a 1-second URL stops working.
    let brief = media_url(
        &app,
        &ca,
        &format!("/v1/Recordings/{sealed_sid}/Media?Ttl=1"),
    )
    .await;
    assert_eq!(fetch(&app, &brief, &[]).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        fetch(&app, &brief, &[]).await.status,
        StatusCode::FORBIDDEN,
        "expired: {brief}"
    );

    // /Media of the clear one: decrypted on the fly, ranges too, room-scoped path as well.
    let url = media_url(
        &app,
        &ca,
        &format!("/v1/Rooms/{room}/Recordings/{clear_sid}/Media/"),
    )
    .await;
    let got = fetch(&app, &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.headers["content-type"], "audio/x-matroska");
    assert!(got.headers.get("x-amz-meta-x-amz-key").is_none());
    assert_eq!(&got.body[..], &plain[..]);
    let tail = fetch(&app, &url, &[("range", "bytes=-100")]).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&tail.body[..], &plain[plain.len() - 100..]);
    let bad = fetch(
        &app,
        &url,
        &[("range", format!("bytes={}-", plain.len()).as_str())],
    )
    .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);

    // Bad input: clear 4xx, nothing kept.
    // Counted under this account's prefix: on a shared bucket other tests write beside it.
    let prefix = format!("{}/", a.sid);
    let objects_before = app.state.objects.list(&prefix).await.unwrap().len();
    let base = format!("/v1/Rooms/{room}/Recordings");
    let pa = "ParticipantSid=PA0123456789abcdef0123456789abcdef";
    for (query, body, why) in [
        (format!("?{pa}&Type=audio"), plain.clone(), "TrackName"),
        (format!("?{pa}&TrackName=t"), plain.clone(), "Type"),
        (
            format!("?{pa}&TrackName=t&Type=smell"),
            plain.clone(),
            "Type",
        ),
        (
            "?TrackName=t&Type=audio".to_owned(),
            plain.clone(),
            "ParticipantSid",
        ),
        (
            format!("?{pa}&TrackName=t&Type=audio&ContainerFormat=mkv"),
            plain.clone(),
            "ContainerFormat",
        ),
        (
            format!("?{pa}&TrackName=t&Type=audio&Codec=mp3"),
            plain.clone(),
            "Codec",
        ),
        (
            format!("?{pa}&TrackName=t&Type=audio&Offset=-5"),
            plain.clone(),
            "Offset",
        ),
        (
            format!("?{pa}&TrackName=t&Type=audio"),
            b"RIFF....WAVEfmt not matroska".to_vec(),
            "Matroska",
        ),
        (format!("?{pa}&TrackName=t&Type=audio"), Vec::new(), "empty"),
    ] {
        let r = app
            .post_bytes(&format!("{base}{query}"), &ca, body, "audio/x-matroska")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        assert!(
            r.json()["message"].as_str().unwrap().contains(why),
            "{query}: {:?}",
            r.body
        );
    }
    assert_eq!(
        app.state.objects.list(&prefix).await.unwrap().len(),
        objects_before,
        "a refused upload left an object"
    );
    let listed = app
        .get(&format!("/v1/Recordings?GroupingSid={room}"), &ca)
        .await
        .json();
    assert_eq!(
        listed["recordings"].as_array().unwrap().len(),
        2,
        "a refused upload left a row"
    );

    // Isolation: account B cannot upload to, list, fetch, delete or download A's recordings.
    assert_eq!(
        upload(&app, &cb, &room, &track, "x", 0).await.status,
        StatusCode::NOT_FOUND
    );
    for path in [
        format!("/v1/Recordings/{clear_sid}"),
        format!("/v1/Recordings/{clear_sid}/Media"),
        format!("/v1/Rooms/{room}/Recordings"),
        format!("/v1/Rooms/{room}/Recordings/{clear_sid}"),
        format!("/v1/Rooms/{room}/Recordings/{clear_sid}/Media"),
    ] {
        assert_eq!(
            app.get(&path, &cb).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        app.delete(&format!("/v1/Recordings/{clear_sid}"), &cb)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.get("/v1/Recordings", &cb).await.json()["recordings"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Filters and paging: absolute next_page_url on this server.
    let page = app
        .get(
            &format!("/v1/Recordings?GroupingSid={room}&PageSize=1"),
            &ca,
        )
        .await
        .json();
    let next = page["meta"]["next_page_url"].as_str().unwrap().to_owned();
    assert!(
        next.starts_with("http://mediaseal.test/v1/Recordings?"),
        "{next}"
    );
    let second = app.get(local_path(&next), &ca).await.json();
    assert_eq!(second["recordings"].as_array().unwrap().len(), 1);
    assert_ne!(second["recordings"][0]["sid"], page["recordings"][0]["sid"]);
    assert_eq!(
        app.get("/v1/Recordings?MediaType=video", &ca).await.json()["recordings"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.get("/v1/Recordings?MediaType=bogus", &ca).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/v1/Recordings?GroupingSid=XX1", &ca).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/v1/Recordings?DateCreatedAfter=yesterday", &ca)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Delete: metadata stays (status deleted), media and object go.
    let object = app
        .state
        .meta
        .track_recording(&a.sid, &clear_sid)
        .await
        .unwrap()
        .unwrap()
        .object_key
        .unwrap();
    assert_eq!(
        app.delete(&format!("/v1/Recordings/{clear_sid}"), &ca)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/v1/Recordings/{clear_sid}"), &ca)
            .await
            .json()["status"],
        "deleted"
    );
    assert_eq!(
        app.get(&format!("/v1/Recordings/{clear_sid}/Media"), &ca)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.state.objects.head(&object).await.is_err(),
        "the object of a deleted recording remains"
    );
    assert_eq!(
        app.delete(&format!("/v1/Recordings/{clear_sid}"), &ca)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A signed URL issued before the deletion stops working too.
    assert_eq!(fetch(&app, &url, &[]).await.status, StatusCode::NOT_FOUND);

    // Once the room is over, it takes no more recordings.
    complete_room(&app, &ca, &room).await;
    let r = upload(&app, &ca, &room, &track, "late", 0).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("in progress")
    );
}

/// With `media_from_store`, customer-sealed media is handed out by the object store itself
/// (S3 presigning): the bytes and the seed's `x-amz-meta-*` headers come from the bucket. A
/// directory store cannot presign, so there the service's own URL answers the same way.
#[tokio::test]
async fn store_presigned_media_carries_the_seed_headers() {
    let app = TestApp::with_config(|c| c.media_from_store = true).await;
    let media = media_dir();
    let a = app.account().await;
    let ca = Creds::of(&a);
    let key = app.add_public_key(&a, test_key(0)).await;
    let room = create_room(&app, &ca, "presign").await;
    let track = make_track(media.path(), "presign", false, 1, 520);
    let plain = std::fs::read(&track).unwrap();
    set_settings(&app, &ca, "RecordingSettings", Some(&key)).await;
    let r = upload(&app, &ca, &room, &track, "mic", 0).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let sid = r.json()["sid"].as_str().unwrap().to_owned();
    let url = media_url(&app, &ca, &format!("/v1/Recordings/{sid}/Media")).await;
    let on_s3 = std::env::var("MEDIASEAL_TEST_OBJECTS").is_ok_and(|u| u.starts_with("s3://"));
    assert_eq!(is_store_url(&url), on_s3, "{url}");
    let got = fetch(&app, &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK, "{url}");
    assert_eq!(got.headers["x-amz-meta-x-amz-matdesc"], "{}");
    assert_eq!(
        got.headers["x-amz-meta-x-amz-unencrypted-content-length"],
        plain.len().to_string().as_str()
    );
    assert_ne!(&got.body[..], &plain[..]);
    assert_eq!(open_s3(&got, test_key(0)), plain);
    let part = fetch(&app, &url, &[("range", "bytes=16-47")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.body[..], &got.body[16..48]);
    // Expired: refused by whoever signed it (S3 stores differ on the status: AWS 403, Garage 400).
    let brief = media_url(&app, &ca, &format!("/v1/Recordings/{sid}/Media?Ttl=1")).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = fetch(&app, &brief, &[]).await;
    assert!(
        matches!(expired.status.as_u16(), 400 | 403),
        "an expired URL answered {}",
        expired.status
    );
    assert!(
        !expired
            .body
            .windows(48)
            .any(|w| got.body.windows(48).next() == Some(w))
    );
}

#[tokio::test]
async fn media_urls_expire_and_cannot_be_forged() {
    let app = TestApp::new().await;
    let media = media_dir();
    let a = app.account().await;
    let ca = Creds::of(&a);
    let room = create_room(&app, &ca, "ttl").await;
    let track = make_track(media.path(), "ttl", false, 1, 300);
    let sid = upload(&app, &ca, &room, &track, "mic", 0).await.json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    for ttl in ["0", "604801", "soon"] {
        let r = app
            .get(&format!("/v1/Recordings/{sid}/Media?Ttl={ttl}"), &ca)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "Ttl={ttl}");
    }
    assert_eq!(
        app.get(&format!("/v1/Recordings/{sid}/Media?Ttl=604800"), &ca)
            .await
            .status,
        StatusCode::FOUND
    );
    let short = media_url(&app, &ca, &format!("/v1/Recordings/{sid}/Media?Ttl=1")).await;
    let long = media_url(&app, &ca, &format!("/v1/Recordings/{sid}/Media")).await;
    assert_eq!(fetch(&app, &short, &[]).await.status, StatusCode::OK);
    // Tampering: one character of the token changed, or a token signed with another secret.
    let path = local_path(&long).to_owned();
    let flipped: String = {
        let (head, last) = path.split_at(path.len() - 1);
        format!("{head}{}", if last == "A" { "B" } else { "A" })
    };
    let r = app.get(&flipped, &Creds::None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["code"], 20403);
    let key = app
        .state
        .meta
        .track_recording(&a.sid, &sid)
        .await
        .unwrap()
        .unwrap()
        .object_key
        .unwrap();
    let foreign = mediaseal_server::signed_url::sign(
        &[1u8; 32],
        &key,
        mediaseal_server::signed_url::ServeMode::AtRest,
        "audio/x-matroska",
        u64::MAX,
    );
    assert_eq!(
        app.get(&format!("/v1/MediaDownload/{foreign}"), &Creds::None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/v1/MediaDownload/garbage", &Creds::None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = fetch(&app, &short, &[]).await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert!(
        expired.json()["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(
        app.get(&path, &Creds::None).await.status,
        StatusCode::OK,
        "the long-lived URL still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compositions_of_clear_tracks_play_back_and_leave_no_plaintext() {
    let started = SystemTime::now();
    let app = TestApp::new().await;
    let media = media_dir();
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let room = app
        .post_form(
            "/v1/Rooms",
            &ca,
            &[
                ("UniqueName", "mix"),
                ("StatusCallback", "https://example.invalid/room"),
            ],
        )
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = make_track(media.path(), "alice", false, 4, 440);
    let bob = make_track(media.path(), "bob", false, 5, 660);
    let cam = make_track(media.path(), "cam", true, 3, 0);
    for (file, name, offset) in [
        (&alice, "alice-mic", 1000),
        (&bob, "bob-mic", 2500),
        (&cam, "alice-cam", 1000),
    ] {
        let r = upload(&app, &ca, &room, file, name, offset).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }

    // Not yet: the room is in progress.
    let r = app
        .post_form(
            "/v1/Compositions",
            &ca,
            &[("RoomSid", &room), ("AudioSources", "*")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("in-progress")
    );
    complete_room(&app, &ca, &room).await;
    let room_events = events(&app.state.meta.callbacks_for(&room).await.unwrap());
    // Recording events are keyed to the recordings; the room has its own two.
    assert_eq!(room_events, ["room-created", "room-ended"]);

    // Bad requests.
    for (form, why) in [
        (vec![("AudioSources", "*")], "RoomSid"),
        (
            vec![("RoomSid", "RMnope"), ("AudioSources", "*")],
            "RoomSid",
        ),
        (
            vec![("RoomSid", room.as_str())],
            "VideoLayout or AudioSources",
        ),
        (
            vec![("RoomSid", room.as_str()), ("VideoLayout", "{not json")],
            "VideoLayout",
        ),
        (
            vec![
                ("RoomSid", room.as_str()),
                ("VideoLayout", r#"{"r":{"video_sources":[]}}"#),
            ],
            "VideoLayout",
        ),
        (
            vec![
                ("RoomSid", room.as_str()),
                ("AudioSources", "*"),
                ("Resolution", "4000x3000"),
            ],
            "Resolution",
        ),
        (
            vec![
                ("RoomSid", room.as_str()),
                ("AudioSources", "*"),
                ("Format", "avi"),
            ],
            "Format",
        ),
        (
            vec![("RoomSid", room.as_str()), ("AudioSources", "nobody*")],
            "no completed",
        ),
    ] {
        let r = app.post_form("/v1/Compositions", &ca, &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}: {:?}", r.body);
        assert!(
            r.json()["message"].as_str().unwrap().contains(why),
            "{form:?}: {:?}",
            r.body
        );
    }
    // Another account cannot compose this room.
    let r = app
        .post_form(
            "/v1/Compositions",
            &cb,
            &[("RoomSid", &room), ("AudioSources", "*")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Audio only, WebM.
    let r = app
        .post_form(
            "/v1/Compositions",
            &ca,
            &[
                ("RoomSid", &room),
                ("AudioSources", "*-mic"),
                ("StatusCallback", "https://example.invalid/cb"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let created = r.json();
    assert_eq!(created["status"], "enqueued");
    assert_eq!(created["audio_sources"], serde_json::json!(["*-mic"]));
    let cj = created["sid"].as_str().unwrap().to_owned();
    let done = wait_composition(&app, &ca, &cj).await;
    assert_eq!(done["status"], "completed", "{done}");
    // alice 1.0..5.0 s, bob 2.5..7.5 s on the room's clock; trimmed to start at 1.0 s.
    assert_eq!(done["duration"], 7);
    assert!(done["date_completed"].as_str().unwrap().ends_with('Z'));
    let url = media_url(&app, &ca, &format!("/v1/Compositions/{cj}/Media")).await;
    let got = fetch(&app, &url, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.headers["content-type"], "video/webm");
    assert_eq!(done["size"], got.body.len() as u64);
    let out = media.path().join("mix.webm");
    std::fs::write(&out, &got.body).unwrap();
    let header = probe_seconds(&out);
    assert!(
        (header - 6.5).abs() < 0.15,
        "ffprobe duration {header}, expected 6.5 s"
    );
    let decoded = decoded_seconds(&out);
    assert!(
        (decoded - 6.5).abs() < 0.15,
        "decoded duration {decoded}, expected 6.5 s"
    );
    let composed = got.body.to_vec();
    let cbs = app.state.meta.callbacks_for(&cj).await.unwrap();
    let evs = events(&cbs);
    assert_eq!(
        evs.first().map(String::as_str),
        Some("composition-enqueued"),
        "{evs:?}"
    );
    assert!(evs.contains(&"composition-started".to_owned()), "{evs:?}");
    assert_eq!(
        evs.last().map(String::as_str),
        Some("composition-available"),
        "{evs:?}"
    );
    let available: Vec<(String, String)> =
        serde_json::from_str(&cbs.last().unwrap().params).unwrap();
    assert!(
        available.contains(&(
            "MediaUri".to_owned(),
            format!("/v1/Compositions/{cj}/Media")
        )),
        "{available:?}"
    );

    // Audio and video, MP4, with a layout.
    let layout = r#"{"main":{"video_sources":["*-cam"],"z_pos":1},"pip":{"x_pos":480,"y_pos":360,"width":160,"height":120,"video_sources":["alice*"],"z_pos":2}}"#;
    let r = app
        .post_form(
            "/v1/Compositions",
            &ca,
            &[
                ("RoomSid", &room),
                ("AudioSources", "alice-mic"),
                ("VideoLayout", layout),
                ("Format", "mp4"),
                ("Resolution", "640x480"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["video_layout"]["pip"]["x_pos"], 480);
    let cj2 = r.json()["sid"].as_str().unwrap().to_owned();
    let done = wait_composition(&app, &ca, &cj2).await;
    assert_eq!(done["status"], "completed", "{done}");
    let url = media_url(&app, &ca, &format!("/v1/Compositions/{cj2}/Media")).await;
    let got = fetch(&app, &url, &[]).await;
    assert_eq!(got.headers["content-type"], "video/mp4");
    let out = media.path().join("mix.mp4");
    std::fs::write(&out, &got.body).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&probe.stdout);
    assert!(
        streams.contains("video,640,480") && streams.contains("audio"),
        "{streams}"
    );
    assert!(
        (decoded_seconds(&out) - 4.0).abs() < 0.2,
        "alice's tracks last 4 s"
    );

    // Isolation of compositions.
    for path in [
        format!("/v1/Compositions/{cj}"),
        format!("/v1/Compositions/{cj}/Media"),
    ] {
        assert_eq!(
            app.get(&path, &cb).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        app.delete(&format!("/v1/Compositions/{cj}"), &cb)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        app.get("/v1/Compositions", &cb).await.json()["compositions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let listed = app
        .get(
            &format!("/v1/Compositions?RoomSid={room}&Status=completed"),
            &ca,
        )
        .await
        .json();
    assert_eq!(listed["compositions"].as_array().unwrap().len(), 2);

    // No plaintext of the sources or of the composition anywhere on disk: not in the server's
    // data, not in the temp directory the pipeline used.
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for f in [&alice, &bob, &cam] {
        needles.extend(shared::needles(&std::fs::read(f).unwrap()));
        needles.push(marker(f.file_stem().unwrap().to_str().unwrap()).into_bytes());
    }
    needles.extend(shared::needles(&composed));
    let leaks = files_containing(app.dir.path(), &needles, started, &[]);
    assert!(
        leaks.is_empty(),
        "plaintext in the data directory: {leaks:?}"
    );
    let tmp = app.scratch.path();
    let leaks = files_containing(tmp, &needles, started, &[]);
    assert!(
        leaks.is_empty(),
        "plaintext in {}: {leaks:?}",
        tmp.display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("mediaseal-compose-")
        })
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= started)
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "composition FIFO directories left behind"
    );

    // Delete: the result goes, the metadata stays.
    let key = app
        .state
        .meta
        .composition(&a.sid, &cj)
        .await
        .unwrap()
        .unwrap()
        .object_key
        .unwrap();
    assert_eq!(
        app.delete(&format!("/v1/Compositions/{cj}"), &ca)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let v = app.get(&format!("/v1/Compositions/{cj}"), &ca).await.json();
    assert_eq!(v["status"], "deleted");
    assert!(v["date_deleted"].is_string());
    assert!(app.state.objects.head(&key).await.is_err());
    assert_eq!(
        app.get(&format!("/v1/Compositions/{cj}/Media"), &ca)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_recordings_are_refused_and_compositions_are_sealed_per_settings() {
    let app = TestApp::new().await;
    let media = media_dir();
    let a = app.account().await;
    let ca = Creds::of(&a);
    let key = app.add_public_key(&a, test_key(1)).await;
    let room = create_room(&app, &ca, "secret").await;
    let track = make_track(media.path(), "dave", false, 2, 500);
    let clear = upload(&app, &ca, &room, &track, "dave-mic", 0).await.json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    set_settings(&app, &ca, "RecordingSettings", Some(&key)).await;
    let sealed = upload(&app, &ca, &room, &track, "erin-mic", 0).await.json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    complete_room(&app, &ca, &room).await;

    let r = app
        .post_form(
            "/v1/Compositions",
            &ca,
            &[("RoomSid", &room), ("AudioSources", "*")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&sealed) && !message.contains(&clear),
        "{message}"
    );
    assert!(message.contains("encrypted"), "{message}");
    assert!(
        app.get("/v1/Compositions", &ca).await.json()["compositions"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Excluding the encrypted track works; with composition encryption on, the result is
    // sealed in s3-cbc to the key and opens with the private key.
    set_settings(&app, &ca, "CompositionSettings", Some(&key)).await;
    let r = app
        .post_form(
            "/v1/Compositions",
            &ca,
            &[
                ("RoomSid", &room),
                ("AudioSources", "*"),
                ("AudioSourcesExcluded", "erin*"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let cj = r.json()["sid"].as_str().unwrap().to_owned();
    let done = wait_composition(&app, &ca, &cj).await;
    assert_eq!(done["status"], "completed", "{done}");
    let stored = app
        .state
        .meta
        .composition(&a.sid, &cj)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sealing, Sealing::Customer);
    let url = media_url(&app, &ca, &format!("/v1/Compositions/{cj}/Media")).await;
    let got = fetch(&app, &url, &[]).await;
    assert_eq!(got.headers["content-type"], "application/octet-stream");
    assert_eq!(done["size"], got.body.len() as u64);
    let plain = open_s3(&got, test_key(1));
    let out = media.path().join("sealed.webm");
    std::fs::write(&out, &plain).unwrap();
    assert!((decoded_seconds(&out) - 2.0).abs() < 0.15);
    // The wrong key cannot open it.
    let env = envelope_from(&got);
    let wrong = mediaseal_crypto::open_seekable_to_writer(
        std::io::Cursor::new(got.body.to_vec()),
        Vec::new(),
        &env,
        test_key(0),
    );
    assert!(wrong.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_compose_completed_rooms_and_record_failures() {
    let app = TestApp::new().await;
    let media = media_dir();
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let r = app
        .post_form(
            "/v1/CompositionHooks",
            &ca,
            &[
                ("FriendlyName", "everyone"),
                ("AudioSources", "*"),
                ("StatusCallback", "https://example.invalid/hook"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let hook = r.json()["sid"].as_str().unwrap().to_owned();
    let dup = app
        .post_form(
            "/v1/CompositionHooks",
            &ca,
            &[("FriendlyName", "everyone"), ("AudioSources", "*")],
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(
        app.post_form("/v1/CompositionHooks", &ca, &[("AudioSources", "*")])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.post_form("/v1/CompositionHooks", &ca, &[("FriendlyName", "none")])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // B has the same name freely, and cannot see or touch A's hook.
    assert_eq!(
        app.post_form(
            "/v1/CompositionHooks",
            &cb,
            &[
                ("FriendlyName", "everyone"),
                ("AudioSources", "*"),
                ("Enabled", "false")
            ]
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.get(&format!("/v1/CompositionHooks/{hook}"), &cb)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_form(
            &format!("/v1/CompositionHooks/{hook}"),
            &cb,
            &[("FriendlyName", "x"), ("AudioSources", "*")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v1/CompositionHooks/{hook}"), &cb)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let room = create_room(&app, &ca, "hooked").await;
    let track = make_track(media.path(), "frank", false, 2, 350);
    upload(&app, &ca, &room, &track, "frank-mic", 0).await;
    assert_eq!(
        complete_room(&app, &ca, &room).await.status,
        StatusCode::ACCEPTED
    );
    let list = app
        .get(&format!("/v1/Compositions?RoomSid={room}"), &ca)
        .await
        .json();
    let comps = list["compositions"].as_array().unwrap().clone();
    assert_eq!(comps.len(), 1, "one enabled hook, one composition");
    let cj = comps[0]["sid"].as_str().unwrap().to_owned();
    let stored: Composition = app
        .state
        .meta
        .composition(&a.sid, &cj)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.hook_sid.as_deref(), Some(hook.as_str()));
    assert_eq!(
        wait_composition(&app, &ca, &cj).await["status"],
        "completed"
    );
    // Completing again does nothing more.
    complete_room(&app, &ca, &room).await;
    assert_eq!(
        app.get(&format!("/v1/Compositions?RoomSid={room}"), &ca)
            .await
            .json()["compositions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A hook over an encrypted recording leaves a failed composition that says why.
    let key = app.add_public_key(&a, test_key(0)).await;
    set_settings(&app, &ca, "RecordingSettings", Some(&key)).await;
    let room2 = create_room(&app, &ca, "hooked-secret").await;
    let sealed = upload(&app, &ca, &room2, &track, "gina-mic", 0)
        .await
        .json()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    complete_room(&app, &ca, &room2).await;
    let comps = app
        .get(&format!("/v1/Compositions?RoomSid={room2}"), &ca)
        .await
        .json()["compositions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(comps.len(), 1);
    assert_eq!(comps[0]["status"], "failed");
    let cj2 = comps[0]["sid"].as_str().unwrap();
    let cbs = app.state.meta.callbacks_for(cj2).await.unwrap();
    assert_eq!(events(&cbs), ["composition-failed"]);
    let params: Vec<(String, String)> = serde_json::from_str(&cbs[0].params).unwrap();
    assert!(
        params
            .iter()
            .any(|(k, v)| k == "ErrorMessage" && v.contains(&sealed)),
        "{params:?}"
    );

    // Update and delete.
    let r = app
        .post_form(
            &format!("/v1/CompositionHooks/{hook}"),
            &ca,
            &[
                ("FriendlyName", "renamed"),
                ("AudioSources", "x*"),
                ("Enabled", "false"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.json()["friendly_name"].as_str(),
            r.json()["enabled"].as_bool()
        ),
        (Some("renamed"), Some(false))
    );
    assert_eq!(
        app.get("/v1/CompositionHooks?Enabled=true", &ca)
            .await
            .json()["composition_hooks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.delete(&format!("/v1/CompositionHooks/{hook}"), &ca)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/v1/CompositionHooks/{hook}"), &ca)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composition_abandoned_by_a_dead_node_is_taken_over() {
    let app = TestApp::new().await;
    let media = media_dir();
    let a = app.account().await;
    let ca = Creds::of(&a);
    let room = create_room(&app, &ca, "takeover").await;
    let track = make_track(media.path(), "hank", false, 2, 520);
    upload(&app, &ca, &room, &track, "hank-mic", 0).await;
    complete_room(&app, &ca, &room).await;
    // A composition that another node claimed and then died on: processing, lease run out.
    let now = mediaseal_server::clock::now_us();
    let c = Composition {
        sid: mediaseal_server::sid::new_sid("CJ"),
        account_sid: a.sid.clone(),
        room_sid: room.clone(),
        hook_sid: None,
        status: "processing".to_owned(),
        audio_sources: r#"["*"]"#.to_owned(),
        audio_sources_excluded: "[]".to_owned(),
        video_layout: "{}".to_owned(),
        resolution: "640x480".to_owned(),
        format: "webm".to_owned(),
        trim: true,
        status_callback: None,
        status_callback_method: "POST".to_owned(),
        seal_key_sid: None,
        sealing: Sealing::None,
        object_key: None,
        sealed_size: 0,
        plain_size: 0,
        bitrate: 0,
        duration: 0,
        error_code: None,
        error_message: None,
        attempts: 1,
        lease_owner: Some("NDdeadbeefdeadbeefdeadbeefdeadbeef".to_owned()),
        lease_until: Some(now - 1),
        deleted: false,
        date_created: now,
        date_updated: now,
        date_completed: None,
        date_deleted: None,
    };
    app.state.meta.insert_composition(&c, &[]).await.unwrap();
    let done = wait_composition(&app, &ca, &c.sid).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        app.state
            .meta
            .composition(&a.sid, &c.sid)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        2
    );
}
