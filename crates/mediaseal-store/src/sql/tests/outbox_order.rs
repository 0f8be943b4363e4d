//! A call's status callbacks are leased one after another, in the order they were queued, on
//! every backend; other resources' callbacks are leased together.

use super::{Backend, backends, callback, unique};
use crate::meta::OutboxStore;
use crate::model::Callback;

#[tokio::test]
async fn a_calls_callbacks_are_leased_in_turn() {
    for Backend { store, name, .. } in backends().await {
        let u = unique();
        let account = format!("AC{u}");
        let due = |id: &str, resource: &str, created_at: i64| Callback {
            next_attempt_at: 10,
            created_at,
            ..callback(&format!("CB{u}{id}"), &account, resource)
        };
        let call = format!("CA{u}");
        let recording = format!("RE{u}");
        store
            .enqueue_callbacks(&[
                due("3", &call, 3),
                due("1", &call, 1),
                due("2", &call, 2),
                due("r1", &recording, 1),
                due("r2", &recording, 2),
            ])
            .await
            .unwrap();
        let lease = async |now: i64| {
            let mut ids: Vec<String> = store
                .lease_due_callbacks_of("node", &account, now, now + 5, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id.trim_start_matches(&format!("CB{u}")).to_owned())
                .collect();
            ids.sort_unstable();
            ids
        };
        assert_eq!(lease(100).await, ["1", "r1", "r2"], "{name}");
        for id in ["r1", "r2"] {
            store
                .mark_delivered(&format!("CB{u}{id}"), 101)
                .await
                .unwrap();
        }
        // The first attempt failed and waits for its retry: the call's next one waits too.
        store
            .mark_attempt_failed(&format!("CB{u}1"), 1, 200, "receiver answered 503", false)
            .await
            .unwrap();
        assert!(lease(150).await.is_empty(), "{name}");
        assert_eq!(lease(200).await, ["1"], "{name}");
        store.mark_delivered(&format!("CB{u}1"), 201).await.unwrap();
        assert_eq!(lease(300).await, ["2"], "{name}");
        // Given up on counts as done.
        store
            .mark_attempt_failed(&format!("CB{u}2"), 9, 400, "gave up", true)
            .await
            .unwrap();
        assert_eq!(lease(400).await, ["3"], "{name}");
    }
}
