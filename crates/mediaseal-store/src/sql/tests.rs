//! The SQL store on SQLite, and on the PostgreSQL of `scripts/services.sh` when the environment
//! names it (`MEDIASEAL_SCALE_DATABASE`; `MEDIASEAL_REQUIRE_SERVICES=1` makes its absence an
//! error). Each PostgreSQL run gets a database of its own, because these tests write rows that
//! other suites sharing the server must never read.

mod outbox_order;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use super::SqlStore;
use super::commit::{Committer, Queued, Write};
use crate::error::StoreError;
use crate::meta::{AccountStore, OutboxStore, StoreResult, VideoStore, VoiceStore};
use crate::model::video::{
    Composition, CompositionHook, HookFilter, Room, RoomFilter, TrackRecording,
    TrackRecordingFilter,
};
use crate::model::{
    Account, Callback, Notification, Recording, RecordingFilter, Sealing, SecondaryAuthToken,
};

struct Backend {
    store: SqlStore,
    name: &'static str,
    _dir: Option<tempfile::TempDir>,
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}")
}

/// SQLite in a fresh directory, and PostgreSQL in a fresh database if one is configured.
async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqlStore::open_sqlite(&dir.path().join("meta.db"))
        .await
        .unwrap();
    let mut out = vec![Backend {
        store: sqlite,
        name: "sqlite",
        _dir: Some(dir),
    }];
    match std::env::var("MEDIASEAL_SCALE_DATABASE") {
        Ok(url) if !url.is_empty() => {
            let admin = SqlStore::connect(&url).await.unwrap();
            let db = format!("store_test_{}", unique());
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(admin.pool())
                .await
                .unwrap();
            let (base, _) = url.rsplit_once('/').unwrap();
            out.push(Backend {
                store: SqlStore::connect(&format!("{base}/{db}")).await.unwrap(),
                name: "postgres",
                _dir: None,
            });
        }
        _ => assert!(
            std::env::var("MEDIASEAL_REQUIRE_SERVICES").is_err(),
            "MEDIASEAL_REQUIRE_SERVICES is set but MEDIASEAL_SCALE_DATABASE is not: source the env of scripts/services.sh"
        ),
    }
    out
}

fn recording(account: &str, sid: &str) -> Recording {
    Recording {
        sid: sid.to_owned(),
        account_sid: account.to_owned(),
        call_sid: None,
        conference_sid: None,
        channels: 1,
        source: "OutboundAPI".to_owned(),
        track: None,
        duration: None,
        status: "processing".to_owned(),
        error_code: None,
        start_time: 1,
        date_created: 1,
        date_updated: 1,
        encryption_details: None,
        sealing: Sealing::None,
        object_key: Some(format!("{account}/{sid}")),
        sealed_size: 0,
        plain_size: 0,
        content_type: "audio/x-wav".to_owned(),
        visible: false,
        deleted: false,
        date_deleted: None,
        interruption: None,
    }
}

fn published(mut r: Recording) -> Recording {
    r.status = "completed".to_owned();
    r.sealing = Sealing::AtRest;
    r.visible = true;
    r.sealed_size = 10;
    r.plain_size = 8;
    r
}

fn callback(id: &str, account: &str, resource: &str) -> Callback {
    Callback {
        id: id.to_owned(),
        account_sid: account.to_owned(),
        resource_sid: resource.to_owned(),
        url: "http://127.0.0.1:9/hook".to_owned(),
        method: "POST".to_owned(),
        params: "[]".to_owned(),
        attempts: 0,
        // Never due: an outbox worker of another suite sharing the database must not take it.
        next_attempt_at: i64::MAX,
        state: "pending".to_owned(),
        last_error: None,
        created_at: 1,
        delivered_at: None,
    }
}

fn room(account: &str, sid: &str) -> Room {
    Room {
        sid: sid.to_owned(),
        account_sid: account.to_owned(),
        unique_name: sid.to_owned(),
        room_type: "group".to_owned(),
        status: "in-progress".to_owned(),
        status_callback: None,
        status_callback_method: "POST".to_owned(),
        max_participants: 50,
        record_participants_on_connect: false,
        audio_only: false,
        media_region: None,
        date_created: 1,
        date_updated: 1,
        end_time: None,
        empty_room_timeout: 5,
        unused_room_timeout: 5,
        node: None,
    }
}

fn track(account: &str, room: &str, sid: &str) -> TrackRecording {
    TrackRecording {
        sid: sid.to_owned(),
        account_sid: account.to_owned(),
        room_sid: room.to_owned(),
        participant_sid: "PA1".to_owned(),
        source_sid: "MT1".to_owned(),
        track_name: "mic".to_owned(),
        media_type: "audio".to_owned(),
        codec: "OPUS".to_owned(),
        container_format: "mka".to_owned(),
        offset_ms: 0,
        duration_ms: None,
        status: "completed".to_owned(),
        sealing: Sealing::AtRest,
        encryption_key_sid: None,
        object_key: Some(format!("{account}/{sid}")),
        sealed_size: 1,
        plain_size: 1,
        status_callback: None,
        status_callback_method: "POST".to_owned(),
        visible: true,
        deleted: false,
        date_created: 1,
        date_updated: 1,
        date_deleted: None,
    }
}

fn composition(account: &str, room: &str, sid: &str) -> Composition {
    Composition {
        sid: sid.to_owned(),
        account_sid: account.to_owned(),
        room_sid: room.to_owned(),
        hook_sid: None,
        status: "completed".to_owned(),
        audio_sources: "[]".to_owned(),
        audio_sources_excluded: "[]".to_owned(),
        video_layout: "{}".to_owned(),
        resolution: "640x480".to_owned(),
        format: "webm".to_owned(),
        trim: true,
        status_callback: None,
        status_callback_method: "POST".to_owned(),
        seal_key_sid: None,
        sealing: Sealing::AtRest,
        object_key: None,
        sealed_size: 0,
        plain_size: 0,
        bitrate: 0,
        duration: 0,
        error_code: None,
        error_message: None,
        attempts: 0,
        lease_owner: None,
        lease_until: None,
        deleted: false,
        date_created: 1,
        date_updated: 1,
        date_completed: None,
        date_deleted: None,
    }
}

fn hook(account: &str, sid: &str) -> CompositionHook {
    CompositionHook {
        sid: sid.to_owned(),
        account_sid: account.to_owned(),
        friendly_name: sid.to_owned(),
        enabled: true,
        audio_sources: "[]".to_owned(),
        audio_sources_excluded: "[]".to_owned(),
        video_layout: "{}".to_owned(),
        resolution: "640x480".to_owned(),
        format: "mp4".to_owned(),
        trim: true,
        status_callback: None,
        status_callback_method: "GET".to_owned(),
        date_created: 1,
        date_updated: 1,
    }
}

/// Overwrites one column of one row with raw SQL, as a newer version or a hand edit would.
async fn poke(store: &SqlStore, table: &str, col: &str, key_col: &str, key: &str, value: &str) {
    let done = sqlx::query(&format!(
        "UPDATE {table} SET {col} = $1 WHERE {key_col} = $2"
    ))
    .bind(value)
    .bind(key)
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1, "{table}.{col}");
}

#[track_caller]
fn assert_corrupt<T: std::fmt::Debug>(result: StoreResult<T>, table: &str, col: &str) {
    match result {
        Err(StoreError::Corrupt(message)) => {
            assert!(
                message.contains(&format!("{table}.{col}")),
                "{table}.{col}: {message}"
            );
            assert!(
                !message.contains("bogus"),
                "the stored value leaked into the message: {message}"
            );
        }
        other => panic!("{table}.{col}: expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_words_in_voice_and_outbox_rows_are_corrupt() {
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let acct = format!("AC{u}");
        store
            .insert_account(&Account {
                sid: acct.clone(),
                parent_sid: None,
                friendly_name: "t".to_owned(),
                status: "active".to_owned(),
                auth_token: "x".to_owned(),
                secondary_auth_token: None,
                date_created: 1,
                date_updated: 1,
            })
            .await
            .unwrap();
        assert!(store.account(&acct).await.unwrap().is_some(), "{name}");
        poke(&store, "accounts", "status", "sid", &acct, "bogus").await;
        assert_corrupt(store.account(&acct).await, "accounts", "status");
        assert_corrupt(
            store.list_accounts(&acct, None, 10).await,
            "accounts",
            "status",
        );

        let (re1, re2) = (format!("RE{u}a"), format!("RE{u}b"));
        for sid in [&re1, &re2] {
            store
                .publish_recording(&published(recording(&acct, sid)), &[], &[])
                .await
                .unwrap();
        }
        poke(&store, "recordings", "status", "sid", &re1, "bogus").await;
        assert_corrupt(
            store.recording(&acct, &re1, false).await,
            "recordings",
            "status",
        );
        let filter = RecordingFilter::default();
        assert_corrupt(
            store.list_recordings(&acct, &filter, None, 10).await,
            "recordings",
            "status",
        );
        // A row that was never readable before is not silently `Sealing::None` now.
        poke(&store, "recordings", "sealing", "sid", &re2, "bogus").await;
        assert_corrupt(
            store.recording(&acct, &re2, false).await,
            "recordings",
            "sealing",
        );

        let (cb1, cb2) = (format!("CB{u}a"), format!("CB{u}b"));
        let resource = format!("RE{u}c");
        store
            .enqueue_callbacks(&[
                callback(&cb1, &acct, &resource),
                callback(&cb2, &acct, &resource),
            ])
            .await
            .unwrap();
        assert_eq!(store.callbacks_for(&resource).await.unwrap().len(), 2);
        poke(&store, "callbacks", "state", "id", &cb1, "bogus").await;
        assert_corrupt(store.callbacks_for(&resource).await, "callbacks", "state");
        poke(&store, "callbacks", "state", "id", &cb1, "failed").await;
        poke(&store, "callbacks", "method", "id", &cb2, "bogus").await;
        assert_corrupt(store.callbacks_for(&resource).await, "callbacks", "method");
    }
}

#[tokio::test]
async fn unknown_words_in_video_rows_are_corrupt() {
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let acct = format!("AC{u}");
        let rm = format!("RM{u}");
        store.insert_room(&room(&acct, &rm), &[]).await.unwrap();
        assert!(store.room(&acct, &rm).await.unwrap().is_some(), "{name}");
        for col in ["status", "room_type", "status_callback_method"] {
            poke(&store, "rooms", col, "sid", &rm, "bogus").await;
            assert_corrupt(store.room(&acct, &rm).await, "rooms", col);
            assert_corrupt(
                store
                    .list_rooms(&acct, &RoomFilter::default(), None, 10)
                    .await,
                "rooms",
                col,
            );
            let good = match col {
                "status" => "in-progress",
                "room_type" => "group",
                _ => "POST",
            };
            poke(&store, "rooms", col, "sid", &rm, good).await;
        }
        assert!(store.room(&acct, &rm).await.unwrap().is_some());

        let rt = format!("RT{u}");
        store
            .publish_track_recording(&track(&acct, &rm, &rt), &[])
            .await
            .unwrap();
        for (col, good) in [
            ("status", "completed"),
            ("media_type", "audio"),
            ("container_format", "mka"),
            ("sealing", "at_rest"),
            ("status_callback_method", "POST"),
        ] {
            poke(&store, "track_recordings", col, "sid", &rt, "bogus").await;
            assert_corrupt(
                store.track_recording(&acct, &rt).await,
                "track_recordings",
                col,
            );
            assert_corrupt(
                store
                    .list_track_recordings(&acct, &TrackRecordingFilter::default(), None, 10)
                    .await,
                "track_recordings",
                col,
            );
            assert_corrupt(
                store.room_track_recordings(&acct, &rm).await,
                "track_recordings",
                col,
            );
            poke(&store, "track_recordings", col, "sid", &rt, good).await;
        }
        assert!(store.track_recording(&acct, &rt).await.unwrap().is_some());

        let cj = format!("CJ{u}");
        store
            .insert_composition(&composition(&acct, &rm, &cj), &[])
            .await
            .unwrap();
        for (col, good) in [
            ("status", "completed"),
            ("format", "webm"),
            ("sealing", "at_rest"),
            ("status_callback_method", "POST"),
        ] {
            poke(&store, "compositions", col, "sid", &cj, "bogus").await;
            assert_corrupt(store.composition(&acct, &cj).await, "compositions", col);
            poke(&store, "compositions", col, "sid", &cj, good).await;
        }
        // A queued job whose status was mangled is not silently skipped by the claimer either:
        // it is not `enqueued`, so it is never claimed, and reading it says why.
        poke(&store, "compositions", "status", "sid", &cj, "bogus").await;
        assert_corrupt(
            store.composition(&acct, &cj).await,
            "compositions",
            "status",
        );

        let hk = format!("HK{u}");
        assert!(store.insert_hook(&hook(&acct, &hk)).await.unwrap());
        for (col, good) in [("format", "mp4"), ("status_callback_method", "GET")] {
            poke(&store, "composition_hooks", col, "sid", &hk, "bogus").await;
            assert_corrupt(store.hook(&acct, &hk).await, "composition_hooks", col);
            assert_corrupt(
                store
                    .list_hooks(&acct, &HookFilter::default(), None, 10)
                    .await,
                "composition_hooks",
                col,
            );
            poke(&store, "composition_hooks", col, "sid", &hk, good).await;
        }
        assert!(store.hook(&acct, &hk).await.unwrap().is_some());
    }
}

/// Many uploads at once: every reservation and publication is answered, in order, and every
/// published recording is visible with its callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publications_all_commit() {
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let acct = format!("AC{u}");
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (store, acct) = (store.clone(), acct.clone());
                let sid = format!("RE{u}n{i:03}");
                tokio::spawn(async move {
                    let reserved = recording(&acct, &sid);
                    store.reserve_recording(&reserved).await?;
                    let cb = callback(&format!("CB{sid}"), &acct, &sid);
                    let note = Notification {
                        sid: format!("NO{sid}"),
                        account_sid: acct.clone(),
                        call_sid: None,
                        resource_sid: Some(sid.clone()),
                        error_code: 16104,
                        log_level: 1,
                        message_text: "m".to_owned(),
                        more_info: "i".to_owned(),
                        request_method: None,
                        request_url: None,
                        date_created: 1,
                    };
                    store
                        .publish_recording(&published(reserved), &[cb], &[note])
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let all = store
            .list_recordings(&acct, &RecordingFilter::default(), None, 100)
            .await
            .unwrap();
        assert_eq!(all.len(), 64, "{name}");
        assert!(all.iter().all(|r| r.visible && r.status == "completed"));
        assert!(
            store
                .stale_reservations(i64::MAX, 100)
                .await
                .unwrap()
                .iter()
                .all(|r| r.account_sid != acct),
            "{name}: a publication left its reservation behind"
        );
        assert_eq!(
            store
                .callbacks_for(&format!("RE{u}n017"))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .notification(&acct, &format!("NORE{u}n042"))
                .await
                .unwrap()
                .is_some()
        );
    }
}

/// One bad write in a batch (a callback id already taken) fails only its own caller: the batch
/// is rolled back and its writes retried one by one.
#[tokio::test]
async fn a_failing_write_fails_only_its_caller() {
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let acct = format!("AC{u}");
        let taken = format!("CB{u}taken");
        store
            .enqueue_callbacks(&[callback(&taken, &acct, "RE0")])
            .await
            .unwrap();
        let committer = Committer {
            pool: store.pool().clone(),
            dialect: store.dialect(),
        };
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for i in 0..5 {
            let sid = format!("RE{u}b{i}");
            let id = if i == 2 {
                taken.clone()
            } else {
                format!("CB{sid}")
            };
            let (reply, answer) = oneshot::channel();
            batch.push(Queued {
                write: Write::PublishRecording {
                    recording: published(recording(&acct, &sid)),
                    callbacks: vec![callback(&id, &acct, &sid)],
                    notifications: Vec::new(),
                },
                reply,
            });
            answers.push(answer);
        }
        committer.commit_batch(&mut batch).await;
        assert!(batch.is_empty());
        for (i, answer) in answers.into_iter().enumerate() {
            let result = answer.await.unwrap();
            assert_eq!(result.is_err(), i == 2, "{name}: write {i}: {result:?}");
            let row = store
                .recording(&acct, &format!("RE{u}b{i}"), false)
                .await
                .unwrap();
            assert_eq!(row.is_some(), i != 2, "{name}: write {i} visible");
        }
    }
}

/// Issue 10: a secondary auth token is set, replaced, cleared and promoted in place; promotion
/// discards the old primary and swaps only the token it read.
#[tokio::test]
async fn secondary_auth_tokens_are_set_cleared_and_promoted() {
    for Backend { store, name, .. } in backends().await {
        let acct = format!("AC{}", unique());
        store
            .insert_account(&Account {
                sid: acct.clone(),
                parent_sid: None,
                friendly_name: "t".to_owned(),
                status: "active".to_owned(),
                auth_token: "primary".to_owned(),
                secondary_auth_token: None,
                date_created: 1,
                date_updated: 1,
            })
            .await
            .unwrap();
        assert!(
            !store.clear_secondary_auth_token(&acct, 2).await.unwrap(),
            "{name}"
        );
        assert_eq!(
            store.promote_secondary_auth_token(&acct, 2).await.unwrap(),
            None,
            "{name}"
        );
        let a = store
            .set_secondary_auth_token(&acct, "first", 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.auth_token, "primary", "{name}");
        assert_eq!(
            a.secondary_auth_token,
            Some(SecondaryAuthToken {
                token: "first".to_owned(),
                date_created: 3
            }),
            "{name}"
        );
        assert!(store.clear_secondary_auth_token(&acct, 4).await.unwrap());
        let a = store.account(&acct).await.unwrap().unwrap();
        assert_eq!(
            (a.auth_token.as_str(), a.secondary_auth_token),
            ("primary", None)
        );
        store
            .set_secondary_auth_token(&acct, "first", 5)
            .await
            .unwrap();
        let a = store
            .set_secondary_auth_token(&acct, "second", 6)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.secondary_auth_token.unwrap().token, "second", "{name}");
        let promoted = store
            .promote_secondary_auth_token(&acct, 7)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (promoted.token.as_str(), promoted.date_created),
            ("second", 6)
        );
        let a = store.account(&acct).await.unwrap().unwrap();
        assert_eq!(a.auth_token, "second", "{name}");
        assert_eq!(a.secondary_auth_token, None, "{name}");
        assert_eq!(a.date_updated, 7, "{name}");
        assert_eq!(
            store.promote_secondary_auth_token(&acct, 8).await.unwrap(),
            None,
            "{name}: nothing left to promote"
        );
        assert!(
            store
                .set_secondary_auth_token("AC-none", "x", 9)
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// Issue 10, item 6: the queue serves accounts fairly, not strictly first-come: a later
/// composition of an account with nothing running goes before the backlog of an account that
/// is being served, and an account at its cap of running compositions waits.
#[tokio::test]
async fn compositions_are_claimed_fairly_across_accounts() {
    for Backend { store, name, .. } in backends().await {
        let (a, b, c) = (
            format!("ACfairA{}", unique()),
            format!("ACfairB{}", unique()),
            format!("ACfairC{}", unique()),
        );
        let queued = |account: &str, sid: &str, created: i64| {
            let mut q = composition(account, "RM1", sid);
            q.status = "enqueued".to_owned();
            q.date_created = created;
            q.date_updated = created;
            q
        };
        let sid = |p: &str, i: i64| format!("CJ{p}{i}{}", unique());
        let a_jobs: Vec<String> = (0..3).map(|i| sid("a", i)).collect();
        for (i, s) in a_jobs.iter().enumerate() {
            let q = queued(&a, s, 100 + i as i64);
            store.insert_composition(&q, &[]).await.unwrap();
        }
        let b_job = sid("b", 0);
        store
            .insert_composition(&queued(&b, &b_job, 200), &[])
            .await
            .unwrap();
        let lease = |now: i64| now + 1_000_000;

        // A's first job: nobody is running anything and A's is the oldest.
        let first = store
            .claim_composition("n1", 1000, lease(1000), i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.sid, a_jobs[0], "{name}");
        // A has one running: B's later job goes before A's backlog.
        let second = store
            .claim_composition("n2", 1001, lease(1001), i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.sid, b_job, "{name}: B before A's remaining jobs");

        // Once both finished, the account served longest ago goes first: C (never served)
        // before A, though A's jobs are older.
        for (done, owner) in [(&first, "n1"), (&second, "n2")] {
            let mut f = done.clone();
            f.status = "completed".to_owned();
            f.date_updated = 1002;
            assert!(store.finish_composition(&f, owner, &[]).await.unwrap());
        }
        let c_job = sid("c", 0);
        store
            .insert_composition(&queued(&c, &c_job, 300), &[])
            .await
            .unwrap();
        let third = store
            .claim_composition("n1", 1003, lease(1003), i64::MAX)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.sid, c_job, "{name}: never-served C before A");
        let mut f = third.clone();
        f.status = "completed".to_owned();
        f.date_updated = 1003;
        assert!(store.finish_composition(&f, "n1", &[]).await.unwrap());

        // A per-account cap of one: A gets one slot; its next job waits while that one runs.
        let fourth = store
            .claim_composition("n1", 1004, lease(1004), 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fourth.sid, a_jobs[1], "{name}");
        assert!(
            store
                .claim_composition("n2", 1005, lease(1005), 1)
                .await
                .unwrap()
                .is_none(),
            "{name}: A is at its cap"
        );
        // A node that died: its lease runs out, and the job counts as running no more.
        let later = lease(1004) + 1;
        let taken_over = store
            .claim_composition("n2", later, lease(later), 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken_over.sid, a_jobs[1], "{name}: the abandoned one first");
        assert_eq!(taken_over.attempts, 2, "{name}");
    }
}

/// The outbox leases per account (issue 10, item 7): which accounts have callbacks due, the
/// longest-waiting first, and one account's due callbacks without touching another's.
#[tokio::test]
async fn due_callbacks_are_found_and_leased_per_account() {
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let (a, b, c) = (format!("AC{u}a"), format!("AC{u}b"), format!("AC{u}c"));
        let due = |id: &str, account: &str, at: i64| Callback {
            next_attempt_at: at,
            ..callback(&format!("CB{u}{id}"), account, &format!("RE{u}"))
        };
        store
            .enqueue_callbacks(&[
                due("a1", &a, 10),
                due("a2", &a, 11),
                due("a3", &a, 30),
                due("b1", &b, 20),
                due("c1", &c, 1_000),
            ])
            .await
            .unwrap();
        let now = 100;
        assert_eq!(
            store.accounts_with_due_callbacks(now, 10).await.unwrap(),
            [a.clone(), b.clone()],
            "{name}: C's is not due yet"
        );
        assert_eq!(
            store.accounts_with_due_callbacks(now, 1).await.unwrap(),
            std::slice::from_ref(&a),
            "{name}"
        );
        let leased = store
            .lease_due_callbacks_of("node", &a, now, now + 50, 2)
            .await
            .unwrap();
        let mut ids: Vec<&str> = leased.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, [format!("CB{u}a1"), format!("CB{u}a2")], "{name}");
        // Leased ones are not due for anyone else; A's third now waits behind B's.
        assert_eq!(
            store.accounts_with_due_callbacks(now, 10).await.unwrap(),
            [b.clone(), a.clone()],
            "{name}"
        );
        assert!(
            store
                .lease_due_callbacks_of("node", &c, now, now + 50, 5)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        let rest = store
            .lease_due_callbacks_of("other", &a, now, now + 50, 5)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1, "{name}");
        assert_eq!(rest[0].id, format!("CB{u}a3"), "{name}");
    }
}

#[tokio::test]
async fn api_keys_keep_their_sealed_secret_or_none() {
    use crate::model::ApiKey;
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let key = |sid: &str, sealed: Option<&str>| ApiKey {
            sid: sid.to_owned(),
            account_sid: format!("AC{u}"),
            friendly_name: "k".to_owned(),
            secret_hash: "ab".repeat(32),
            secret_sealed: sealed.map(str::to_owned),
            date_created: 1,
            date_updated: 1,
        };
        let sealed = key(&format!("SK{u}1"), Some("v1:c2VhbGVk"));
        let legacy = key(&format!("SK{u}2"), None);
        store.insert_api_key(&sealed).await.unwrap();
        store.insert_api_key(&legacy).await.unwrap();
        assert_eq!(
            store.api_key(&sealed.sid).await.unwrap(),
            Some(sealed.clone()),
            "{name}"
        );
        assert_eq!(
            store.api_key(&legacy.sid).await.unwrap(),
            Some(legacy.clone()),
            "{name}"
        );
        let listed = store
            .list_api_keys(&sealed.account_sid, None, 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 2, "{name}");
        assert!(
            listed.contains(&sealed) && listed.contains(&legacy),
            "{name}"
        );
        // Renaming keeps the sealed secret; deleting takes it with the row.
        let renamed = store
            .update_api_key(&sealed.sid, "renamed", 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(renamed.secret_sealed, sealed.secret_sealed, "{name}");
        assert!(store.delete_api_key(&sealed.sid).await.unwrap(), "{name}");
        assert_eq!(store.api_key(&sealed.sid).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn rooms_in_progress_are_found_by_the_node_that_runs_them() {
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let acct = format!("AC{u}");
        let mut mine = room(&acct, &format!("RM{u}mine"));
        mine.node = Some(format!("node-{u}-a"));
        mine.empty_room_timeout = 1;
        mine.unused_room_timeout = 60;
        let mut done = room(&acct, &format!("RM{u}done"));
        done.node = mine.node.clone();
        let mut theirs = room(&acct, &format!("RM{u}theirs"));
        theirs.node = Some(format!("node-{u}-b"));
        let rowless = room(&acct, &format!("RM{u}p2p"));
        for r in [&mine, &done, &theirs, &rowless] {
            store.insert_room(r, &[]).await.unwrap();
        }
        store
            .complete_room(&acct, &done.sid, 2, &[], &[])
            .await
            .unwrap();
        let found = store
            .rooms_in_progress_on(mine.node.as_deref().unwrap())
            .await
            .unwrap();
        let sids: Vec<&str> = found.iter().map(|r| r.sid.as_str()).collect();
        assert_eq!(sids, [mine.sid.as_str()], "{name}");
        assert_eq!(
            (found[0].empty_room_timeout, found[0].unused_room_timeout),
            (1, 60),
            "{name}: the timeouts round-trip"
        );
    }
}
