//! Issue 12, WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep-03) into group rooms
//! (docs/ROOMS.md §3, "WHIP and WHEP"), on a real listener with a real
//! `mediaseal-room-worker` and Access Tokens minted by twilio-python:
//!
//! - HTTP refusals: no token / bad signature / expired → 401 with a Bearer challenge, another
//!   room's token → 403, an unknown room → 404 (403 for a token limited to another room),
//!   wrong content type → 415, an oversized offer → 413, an unusable offer → the worker's
//!   53403, a room without media → 503, a completed room → 409; `OPTIONS` → 204 with
//!   `Accept-Post`, `PATCH` → 405 with `Allow`;
//! - interop: an aiortc publisher (`tests/interop/whip_publish.py`; the packaged WHIP client,
//!   Eyevinn's, publishes from Chromium in `room_browser.rs`) publishes Opus and VP8 through WHIP; an aiortc
//!   viewer (`tests/interop/whep_watch.py`) watches through WHEP and decodes both; `DELETE` on
//!   the WHIP resource (checked against the token's identity) unpublishes: REST shows the
//!   publisher disconnected and its tracks gone; a publisher killed without `DELETE` is
//!   dropped by the worker when its connection is lost.
//!
//! Needs `.venv` with twilio-python and aiortc (interop/requirements.txt,
//! interop/rooms/requirements.txt).

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use mediaseal_server::room_processes::HostConfig;
use serde_json::Value;
use support::rooms::Rig;
use support::whip::{Publisher, whep_watch};

async fn rig() -> Rig {
    Rig::start(HostConfig::new(mediaseal_test_support::room_worker())).await
}

/// One HTTP request to the rig's listener.
async fn request(
    rig: &Rig,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, format!("http://{}{path}", rig.addr));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some((content_type, bytes)) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
    }
    req.send().await.expect("the server answers")
}

/// The status and JSON error body of a refused request, after checking it names neither the
/// room in the path nor any room SID.
async fn refused(response: reqwest::Response, path: &str) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json",
        "{path}"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    let message = body["message"].as_str().unwrap_or_default();
    let room = path.split('/').nth(3).unwrap_or_default();
    assert!(!message.contains(room), "{message}");
    assert!(!message.contains("RM"), "{message}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    (status, body)
}

const OFFER_TYPE: &str = "application/sdp";

fn token<'a>(tokens: &'a Value, case: &str) -> &'a str {
    tokens[case].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_http_errors_in_the_usual_shape() {
    let rig = rig().await;
    let sid = rig.create_room(&[("UniqueName", "stage")]).await;
    let tokens = rig.tokens("stage");
    let offer = || Some((OFFER_TYPE, b"v=0\r\n".to_vec()));
    let post = reqwest::Method::POST;

    // OPTIONS needs no token (it is also a CORS preflight).
    for kind in ["Whip", "Whep"] {
        let r = request(
            &rig,
            reqwest::Method::OPTIONS,
            &format!("/v1/Rooms/stage/{kind}"),
            None,
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()["accept-post"], "application/sdp");
    }

    // Tokens: missing, wrong scheme, bad signature, expired → 401 with a Bearer challenge.
    let path = "/v1/Rooms/stage/Whip";
    for (case, code) in [
        (None, 20101),
        (Some(token(&tokens, "bad_signature")), 20107),
        (Some(token(&tokens, "unknown_key")), 20107),
        (Some(token(&tokens, "expired")), 20104),
        (Some("not.a.jwt"), 20101),
    ] {
        let r = request(&rig, post.clone(), path, case, offer()).await;
        let challenge = r.headers()[reqwest::header::WWW_AUTHENTICATE].clone();
        assert!(
            challenge.to_str().unwrap().starts_with("Bearer"),
            "{challenge:?}"
        );
        let (status, body) = refused(r, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case:?} {body}");
        assert_eq!(body["code"], code, "{case:?} {body}");
    }
    // Basic credentials are not a bearer token.
    let r = reqwest::Client::new()
        .post(format!("http://{}{path}", rig.addr))
        .basic_auth(&rig.account_sid, Some("secret"))
        .header(reqwest::header::CONTENT_TYPE, OFFER_TYPE)
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused(r, path).await.0, StatusCode::UNAUTHORIZED);

    // Another room's token → 403; an unknown room → 404, but 403 for a room-limited token,
    // which must not learn whether the room exists.
    for (path, case, status, code) in [
        (
            "/v1/Rooms/stage/Whip",
            "other_room",
            StatusCode::FORBIDDEN,
            20106,
        ),
        (
            "/v1/Rooms/stage/Whep",
            "other_room",
            StatusCode::FORBIDDEN,
            20106,
        ),
        (
            "/v1/Rooms/no-such-room/Whip",
            "any_room",
            StatusCode::NOT_FOUND,
            53106,
        ),
        (
            "/v1/Rooms/RM00000000000000000000000000000000/Whep",
            "any_room",
            StatusCode::NOT_FOUND,
            53106,
        ),
        (
            "/v1/Rooms/no-such-room/Whip",
            "other_room",
            StatusCode::FORBIDDEN,
            20106,
        ),
    ] {
        let r = request(
            &rig,
            post.clone(),
            path,
            Some(token(&tokens, case)),
            offer(),
        )
        .await;
        let (got, body) = refused(r, path).await;
        assert_eq!(
            (got, body["code"].as_u64()),
            (status, Some(code)),
            "{path} {case}"
        );
    }

    // The body: JSON is not an offer (415), nor is an offer over 64 KiB (413).
    let alice = Some(token(&tokens, "alice"));
    let r = request(
        &rig,
        post.clone(),
        path,
        alice,
        Some(("application/json", b"{}".to_vec())),
    )
    .await;
    assert_eq!(refused(r, path).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = request(&rig, post.clone(), path, alice, None).await;
    assert_eq!(refused(r, path).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut huge = b"v=0\r\n".to_vec();
    huge.resize(65 * 1024, b'a');
    let r = request(&rig, post.clone(), path, alice, Some((OFFER_TYPE, huge))).await;
    assert_eq!(refused(r, path).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // An offer the worker cannot use: its code and message, and no session.
    for path in [path, "/v1/Rooms/stage/Whep"] {
        let r = request(
            &rig,
            post.clone(),
            path,
            alice,
            Some((OFFER_TYPE, b"v=0\r\nnot sdp".to_vec())),
        )
        .await;
        assert!(r.headers().get(reqwest::header::LOCATION).is_none());
        let (status, body) = refused(r, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], 53403, "{body}");
    }

    // A resource that does not exist, by the right token: 404; PATCH is not supported.
    let resource = format!("/v1/Rooms/{sid}/Whip/PA00000000000000000000000000000000");
    let r = request(&rig, reqwest::Method::DELETE, &resource, alice, None).await;
    assert_eq!(refused(r, &resource).await.0, StatusCode::NOT_FOUND);
    let r = request(&rig, reqwest::Method::DELETE, &resource, None, None).await;
    assert_eq!(refused(r, &resource).await.0, StatusCode::UNAUTHORIZED);
    let r = request(
        &rig,
        reqwest::Method::PATCH,
        &resource,
        alice,
        Some((
            "application/trickle-ice-sdpfrag",
            b"a=end-of-candidates\r\n".to_vec(),
        )),
    )
    .await;
    assert_eq!(r.headers()[reqwest::header::ALLOW], "DELETE");
    assert_eq!(
        refused(r, &resource).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // A room without a media process (peer-to-peer) → 503; a completed room → 409.
    rig.create_room(&[("UniqueName", "p2p"), ("Type", "peer-to-peer")])
        .await;
    let any = Some(token(&tokens, "any_room"));
    let r = request(&rig, post.clone(), "/v1/Rooms/p2p/Whep", any, offer()).await;
    let (status, body) = refused(r, "/v1/Rooms/p2p/Whep").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], 53000);
    rig.complete_room(&sid).await;
    let completed = format!("/v1/Rooms/{sid}/Whip");
    let r = request(&rig, post, &completed, any, offer()).await;
    let (status, body) = refused(r, &completed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], 53118);
}

/// aiortc at both doors. (Debian bookworm's packaged WHIP client, simple-whip-client
/// 0.0~git20230131-1, aborts before it sends anything: it links libsoup 2.4, while the GStreamer
/// webrtc plugin it loads pulls in libnice 0.1.21 → gupnp-igd → libsoup 3, whose start-up
/// refuses to share a process with libsoup 2. The packaged client tested instead is Eyevinn's
/// `@eyevinn/whip-web-client` from npm, in Chromium: `room_browser.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aiortc_publisher_and_viewer_meet_through_whip_and_whep() {
    let rig = rig().await;
    let sid = rig.create_room(&[("UniqueName", "broadcast")]).await;
    let tokens = rig.tokens("broadcast");

    // Alice publishes Opus and VP8 through WHIP (by the room's UniqueName).
    let whip = format!("http://{}/v1/Rooms/broadcast/Whip", rig.addr);
    let publisher = Publisher::start(&whip, token(&tokens, "alice")).await;
    let posted = &publisher.posted;
    assert_eq!(posted["status"], 201, "{posted}");
    assert_eq!(posted["content_type"], "application/sdp", "{posted}");
    assert!(
        posted["etag"].as_str().is_some_and(|e| e.starts_with('"')),
        "{posted}"
    );
    assert_eq!(posted["answer_codecs"]["audio"], "opus", "{posted}");
    assert_eq!(posted["answer_codecs"]["video"], "VP8", "{posted}");
    let location = posted["location"].as_str().unwrap_or_default().to_owned();
    let alice = location
        .strip_prefix(&format!("/v1/Rooms/{sid}/Whip/"))
        .unwrap_or_else(|| panic!("Location {location} is not under the room's SID"))
        .to_owned();
    assert!(alice.starts_with("PA"), "{location}");

    // REST: alice is connected, with an audio and a video track.
    let participants = format!("/v1/Rooms/{sid}/Participants");
    let rows = rig
        .list_within(
            &format!("{participants}?Status=connected"),
            "participants",
            Duration::from_secs(20),
            |rows| rows.iter().any(|p| p["identity"] == "alice"),
        )
        .await;
    assert_eq!(rows[0]["sid"], alice.as_str(), "{rows:?}");
    let published = format!("{participants}/{alice}/PublishedTracks");
    let tracks = rig
        .list_within(
            &published,
            "published_tracks",
            Duration::from_secs(15),
            |t| t.len() == 2,
        )
        .await;
    let mut kinds: Vec<&str> = tracks.iter().filter_map(|t| t["kind"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["audio", "video"], "{tracks:?}");

    // Bob watches through WHEP (by SID), decodes both, then DELETEs his session.
    let url = format!("http://{}/v1/Rooms/{sid}/Whep", rig.addr);
    let report = whep_watch(&url, token(&tokens, "bob")).await;
    assert_eq!(report["status"], 201, "{report}");
    assert_eq!(report["content_type"], "application/sdp", "{report}");
    let watch_location = report["location"].as_str().unwrap_or_default();
    assert!(
        watch_location.starts_with(&format!("/v1/Rooms/{sid}/Whep/PA")),
        "{report}"
    );
    assert!(
        report["etag"].as_str().is_some_and(|e| e.starts_with('"')),
        "{report}"
    );
    assert_eq!(report["answer_codecs"]["audio"], "opus", "{report}");
    assert_eq!(report["answer_codecs"]["video"], "VP8", "{report}");
    assert!(report["audio_frames"].as_u64().unwrap() >= 50, "{report}");
    assert!(report["video_frames"].as_u64().unwrap() >= 20, "{report}");
    assert_eq!(
        report["video_size"],
        serde_json::json!(["320x240"]),
        "{report}"
    );
    assert_eq!(report["delete_status"], 200, "{report}");
    let bob = watch_location.rsplit('/').next().unwrap().to_owned();
    let bob_row = rig
        .list_within(
            &format!("{participants}?Identity=bob"),
            "participants",
            Duration::from_secs(10),
            |rows| rows.first().is_some_and(|p| p["status"] == "disconnected"),
        )
        .await;
    assert_eq!(bob_row[0]["sid"], bob.as_str());

    // DELETE on alice's WHIP resource: bob's token may not end it, the WHEP path is not it,
    // alice's token ends it.
    let resource = format!("/v1/Rooms/{sid}/Whip/{alice}");
    let delete = async |path: &str, case: &str| {
        request(
            &rig,
            reqwest::Method::DELETE,
            path,
            Some(token(&tokens, case)),
            None,
        )
        .await
        .status()
    };
    assert_eq!(delete(&resource, "bob").await, StatusCode::FORBIDDEN);
    let wrong_kind = format!("/v1/Rooms/{sid}/Whep/{alice}");
    assert_eq!(delete(&wrong_kind, "alice").await, StatusCode::NOT_FOUND);
    assert_eq!(delete(&resource, "alice").await, StatusCode::OK);
    // Unpublished: alice is disconnected (her row closed) and publishes nothing.
    let row = rig
        .list_within(
            &format!("{participants}?Identity=alice"),
            "participants",
            Duration::from_secs(5),
            |rows| rows.first().is_some_and(|p| p["status"] == "disconnected"),
        )
        .await;
    assert_eq!(row[0]["sid"], alice.as_str());
    assert!(row[0]["duration"].as_i64().is_some(), "{row:?}");
    let r = rig.app.get(&published, &rig.creds).await;
    assert_eq!(
        r.json()["published_tracks"],
        serde_json::json!([]),
        "{:?}",
        r.body
    );
    // The session is gone.
    assert_eq!(delete(&resource, "alice").await, StatusCode::NOT_FOUND);
    drop(publisher);

    // A publisher that goes away without DELETE (killed) is dropped by the worker once its
    // connection is lost (ICE, then the 10 s reconnect grace): carol's row closes by itself.
    let mut carol = Publisher::start(&whip, token(&tokens, "any_room")).await;
    assert_eq!(carol.posted["status"], 201, "{}", carol.posted);
    rig.list_within(
        &format!("{participants}?Identity=carol&Status=connected"),
        "participants",
        Duration::from_secs(20),
        |rows| rows.len() == 1,
    )
    .await;
    carol.child.start_kill().unwrap();
    carol.child.wait().await.unwrap();
    rig.list_within(
        &format!("{participants}?Identity=carol"),
        "participants",
        Duration::from_secs(60),
        |rows| rows.first().is_some_and(|p| p["status"] == "disconnected"),
    )
    .await;
    rig.complete_room(&sid).await;
}
