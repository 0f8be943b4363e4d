//! The Participants resource of video rooms through the router, on rows written to the store
//! (no room process here; `room_signalling.rs` drives real participants and a real kick): list
//! with Twilio's filters and paging, fetch by SID and by identity, `Status=disconnected`, published
//! and subscribed tracks, and isolation between accounts.

mod support;

use axum::http::StatusCode;
use mediaseal_store::model::participants::{Participant, PublishedTrack, SubscribedTrack};
use serde_json::Value;
use support::{Creds, Resp, TestApp};

/// 2026-06-01T00:00:00Z in µs: rows made "earlier" than the request.
const T0: i64 = 1_780_272_000_000_000;

fn row(account: &str, room: &str, sid: &str, identity: &str, at: i64) -> Participant {
    Participant {
        sid: sid.to_owned(),
        account_sid: account.to_owned(),
        room_sid: room.to_owned(),
        identity: identity.to_owned(),
        status: "connected".to_owned(),
        start_time: at,
        end_time: None,
        duration: None,
        date_created: at,
        date_updated: at,
    }
}

fn pa(n: u8) -> String {
    format!("PA{:032x}", n)
}

async fn room(app: &TestApp, creds: &Creds, name: &str) -> String {
    let r = app
        .post_form("/v1/Rooms", creds, &[("UniqueName", name)])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()["sid"].as_str().unwrap().to_owned()
}

fn sids(r: &Resp) -> Vec<String> {
    r.json()["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sid"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_not_found(r: &Resp) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.json()["code"], 20404);
}

#[tokio::test]
async fn participants_list_filter_fetch_kick_and_stay_in_their_account() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let rm = room(&app, &ca, "lobby").await;
    let rm_b = room(&app, &cb, "lobby").await;
    let store = app.shared();
    store
        .insert_participant(&row(&a.sid, &rm, &pa(1), "alice", T0))
        .await
        .unwrap();
    store
        .insert_participant(&row(&a.sid, &rm, &pa(2), "bob", T0 + 1_000_000))
        .await
        .unwrap();
    store
        .disconnect_participant(&a.sid, &rm, &pa(2), T0 + 61_000_000)
        .await
        .unwrap();
    store
        .insert_participant(&row(&b.sid, &rm_b, &pa(3), "alice", T0))
        .await
        .unwrap();

    let base = format!("/v1/Rooms/{rm}/Participants");
    let all = app.get(&base, &ca).await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    assert_eq!(sids(&all), [pa(2), pa(1)], "newest first, this room only");
    let v = all.json();
    assert_eq!(v["meta"]["key"], "participants");
    let bob = &v["participants"][0];
    assert_eq!(bob["status"], "disconnected");
    assert_eq!(bob["duration"], 60);
    assert_eq!(bob["identity"], "bob");
    assert_eq!(bob["room_sid"], rm.as_str());
    assert_eq!(bob["account_sid"], a.sid.as_str());
    assert_eq!(bob["start_time"], "2026-06-01T00:00:01Z");
    assert_eq!(bob["end_time"], "2026-06-01T00:01:01Z");
    assert_eq!(
        bob["url"],
        format!("http://mediaseal.test/v1/Rooms/{rm}/Participants/{}", pa(2))
    );
    assert_eq!(
        bob["links"]["published_tracks"],
        format!(
            "http://mediaseal.test/v1/Rooms/{rm}/Participants/{}/PublishedTracks",
            pa(2)
        )
    );
    let alice = &v["participants"][1];
    assert_eq!(alice["status"], "connected");
    assert_eq!(alice["duration"], Value::Null);
    assert_eq!(alice["end_time"], Value::Null);

    // By UniqueName too, with each filter.
    let by_name = app.get("/v1/Rooms/lobby/Participants", &ca).await;
    assert_eq!(sids(&by_name), [pa(2), pa(1)]);
    let live = app.get(&format!("{base}?Status=connected"), &ca).await;
    assert_eq!(sids(&live), [pa(1)]);
    let named = app.get(&format!("{base}?Identity=bob"), &ca).await;
    assert_eq!(sids(&named), [pa(2)]);
    let later = app
        .get(
            &format!("{base}?DateCreatedAfter=2026-06-01T00:00:01Z"),
            &ca,
        )
        .await;
    assert_eq!(sids(&later), [pa(2)]);
    let earlier = app
        .get(
            &format!("{base}?DateCreatedBefore=2026-06-01T00:00:00Z"),
            &ca,
        )
        .await;
    assert_eq!(sids(&earlier), [pa(1)]);
    let bad = app.get(&format!("{base}?Status=ringing"), &ca).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["message"].as_str().unwrap().contains("Status"));

    // Paging: one per page, the next page carries the filter-free cursor.
    let first = app.get(&format!("{base}?PageSize=1"), &ca).await;
    assert_eq!(sids(&first), [pa(2)]);
    let next = first.json()["meta"]["next_page_url"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://mediaseal.test")
        .to_owned();
    let second = app.get(&next, &ca).await;
    assert_eq!(sids(&second), [pa(1)]);
    assert_eq!(second.json()["meta"]["next_page_url"], Value::Null);

    // Fetch by SID and by identity.
    let one = app.get(&format!("{base}/{}", pa(1)), &ca).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["identity"], "alice");
    let by_identity = app.get(&format!("{base}/bob"), &ca).await;
    assert_eq!(by_identity.json()["sid"], pa(2).as_str());
    assert_not_found(&app.get(&format!("{base}/{}", pa(9)), &ca).await);
    assert_not_found(&app.get(&format!("{base}/nobody"), &ca).await);
    assert_not_found(&app.get("/v1/Rooms/nowhere/Participants", &ca).await);

    // Another account: its own room of the same name, never A's rows.
    assert_not_found(&app.get(&base, &cb).await);
    assert_not_found(&app.get(&format!("{base}/{}", pa(1)), &cb).await);
    let theirs = app.get("/v1/Rooms/lobby/Participants", &cb).await;
    assert_eq!(sids(&theirs), [pa(3)]);
    assert_not_found(
        &app.get(&format!("/v1/Rooms/lobby/Participants/{}", pa(1)), &cb)
            .await,
    );
    assert_not_found(
        &app.post_form(
            &format!("{base}/{}", pa(1)),
            &cb,
            &[("Status", "disconnected")],
        )
        .await,
    );

    // Status=disconnected (no room process here: the row is closed).
    let wrong = app
        .post_form(
            &format!("{base}/{}", pa(1)),
            &ca,
            &[("Status", "connected")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let missing = app.post_form(&format!("{base}/{}", pa(1)), &ca, &[]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let kicked = app
        .post_form(&format!("{base}/alice"), &ca, &[("Status", "disconnected")])
        .await;
    assert_eq!(kicked.status, StatusCode::ACCEPTED, "{:?}", kicked.body);
    let v = kicked.json();
    assert_eq!(v["sid"], pa(1).as_str());
    assert_eq!(v["status"], "disconnected");
    assert!(v["duration"].as_i64().unwrap() > 0);
    assert!(v["end_time"].is_string());
    // Again: unchanged.
    let again = app
        .post_form(
            &format!("{base}/{}", pa(1)),
            &ca,
            &[("Status", "disconnected")],
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json()["end_time"], v["end_time"]);
    let b_row = store
        .participant(&b.sid, &rm_b, &pa(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b_row.status, "connected",
        "another account's row is untouched"
    );
}

#[tokio::test]
async fn published_tracks_list_and_fetch_per_participant() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let rm = room(&app, &ca, "stage").await;
    let store = app.shared();
    store
        .insert_participant(&row(&a.sid, &rm, &pa(1), "alice", T0))
        .await
        .unwrap();
    store
        .insert_participant(&row(&a.sid, &rm, &pa(2), "bob", T0))
        .await
        .unwrap();
    let mt = |n: u8| format!("MT{:032x}", n);
    for (n, participant, kind) in [
        (1, pa(1), "audio"),
        (2, pa(1), "video"),
        (3, pa(2), "audio"),
    ] {
        store
            .insert_published_track(&PublishedTrack {
                sid: mt(n),
                account_sid: a.sid.clone(),
                room_sid: rm.clone(),
                participant_sid: participant,
                kind: kind.to_owned(),
                name: format!("track-{n}"),
                enabled: true,
                date_created: T0 + i64::from(n),
                date_updated: T0 + i64::from(n),
            })
            .await
            .unwrap();
    }
    let base = format!("/v1/Rooms/{rm}/Participants/{}/PublishedTracks", pa(1));
    let r = app.get(&base, &ca).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["meta"]["key"], "published_tracks");
    let got: Vec<&str> = v["published_tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sid"].as_str().unwrap())
        .collect();
    assert_eq!(got, [mt(2), mt(1)], "alice's tracks only, newest first");
    let video = &v["published_tracks"][0];
    assert_eq!(video["kind"], "video");
    assert_eq!(video["name"], "track-2");
    assert_eq!(video["enabled"], true);
    assert_eq!(video["room_sid"], rm.as_str());
    assert_eq!(video["participant_sid"], pa(1).as_str());
    assert_eq!(
        video["url"],
        format!("http://mediaseal.test{base}/{}", mt(2))
    );

    // By identity too; one track; another participant's track is not alice's.
    let by_identity = app
        .get(
            &format!(
                "/v1/Rooms/stage/Participants/alice/PublishedTracks/{}",
                mt(1)
            ),
            &ca,
        )
        .await;
    assert_eq!(by_identity.status, StatusCode::OK, "{:?}", by_identity.body);
    assert_eq!(by_identity.json()["kind"], "audio");
    assert_not_found(&app.get(&format!("{base}/{}", mt(3)), &ca).await);
    assert_not_found(&app.get(&format!("{base}/not-a-track"), &ca).await);
    assert_not_found(
        &app.get(
            &format!("/v1/Rooms/{rm}/Participants/{}/PublishedTracks", pa(9)),
            &ca,
        )
        .await,
    );
    // Another account sees nothing.
    assert_not_found(&app.get(&base, &cb).await);
    assert_not_found(&app.get(&format!("{base}/{}", mt(1)), &cb).await);
}

#[tokio::test]
async fn subscribed_tracks_list_and_fetch_per_subscriber_and_stay_in_their_account() {
    let app = TestApp::new().await;
    let a = app.account().await;
    let b = app.account().await;
    let (ca, cb) = (Creds::of(&a), Creds::of(&b));
    let rm = room(&app, &ca, "studio").await;
    let store = app.shared();
    for (n, identity) in [(1, "alice"), (2, "bob")] {
        store
            .insert_participant(&row(&a.sid, &rm, &pa(n), identity, T0))
            .await
            .unwrap();
    }
    let mt = |n: u8| format!("MT{:032x}", n);
    // Bob receives Alice's two tracks; Alice receives Bob's one.
    for (n, subscriber, publisher, kind) in [
        (1, pa(2), pa(1), "audio"),
        (2, pa(2), pa(1), "video"),
        (3, pa(1), pa(2), "audio"),
    ] {
        store
            .insert_subscribed_track(&SubscribedTrack {
                sid: mt(n),
                account_sid: a.sid.clone(),
                room_sid: rm.clone(),
                participant_sid: subscriber,
                publisher_sid: publisher,
                kind: kind.to_owned(),
                name: format!("track-{n}"),
                enabled: true,
                date_created: T0 + i64::from(n),
                date_updated: T0 + i64::from(n),
            })
            .await
            .unwrap();
    }
    let base = format!("/v1/Rooms/{rm}/Participants/{}/SubscribedTracks", pa(2));
    let r = app.get(&format!("{base}?PageSize=1"), &ca).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["meta"]["key"], "subscribed_tracks");
    assert_eq!(v["subscribed_tracks"].as_array().unwrap().len(), 1);
    let video = &v["subscribed_tracks"][0];
    assert_eq!(video["sid"], mt(2).as_str(), "newest first");
    assert_eq!(video["kind"], "video");
    assert_eq!(video["name"], "track-2");
    assert_eq!(video["participant_sid"], pa(2).as_str());
    assert_eq!(video["subscriber_sid"], pa(2).as_str());
    assert_eq!(video["publisher_sid"], pa(1).as_str());
    assert_eq!(video["room_sid"], rm.as_str());
    assert_eq!(
        video["url"],
        format!("http://mediaseal.test{base}/{}", mt(2))
    );
    // The next page holds the other one.
    let next = v["meta"]["next_page_url"].as_str().unwrap();
    let next = next.strip_prefix("http://mediaseal.test").unwrap();
    let r = app.get(next, &ca).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["subscribed_tracks"][0]["sid"], mt(1).as_str());

    // By identity; a track Bob does not receive is not his.
    let by_identity = app
        .get(
            &format!(
                "/v1/Rooms/studio/Participants/bob/SubscribedTracks/{}",
                mt(1)
            ),
            &ca,
        )
        .await;
    assert_eq!(by_identity.status, StatusCode::OK, "{:?}", by_identity.body);
    assert_eq!(by_identity.json()["kind"], "audio");
    assert_not_found(&app.get(&format!("{base}/{}", mt(3)), &ca).await);
    assert_not_found(&app.get(&format!("{base}/not-a-track"), &ca).await);
    assert_not_found(
        &app.get(
            &format!("/v1/Rooms/{rm}/Participants/{}/SubscribedTracks", pa(9)),
            &ca,
        )
        .await,
    );
    // Another account sees nothing.
    assert_not_found(&app.get(&base, &cb).await);
    assert_not_found(&app.get(&format!("{base}/{}", mt(1)), &cb).await);
}
