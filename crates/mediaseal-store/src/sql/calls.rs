//! Calls on SQL: one row per call, upserted at each status change.
//!
//! The upsert is one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE`), so concurrent
//! updates of one call need no read-modify-write: the row moves only to a status of higher
//! rank (ringing < in-progress < final), and the times already set are kept.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::outbox::insert_callback;
use super::rows::{newest_first_page, opt_str, spelled};
use crate::meta::{CallStore, StoreResult};
use crate::model::{Call, CallChange, CallDirection, CallFilter, CallStatus, Callback, Cursor};

const CALL_COLS: &str = "sid, account_sid, parent_call_sid, direction, from_address, to_address, status, \
     status_rank, start_time, end_time, duration, sip_call_id, date_created, date_updated";

const US_PER_SEC: i64 = 1_000_000;

fn call_from(row: &AnyRow) -> StoreResult<Call> {
    Ok(Call {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        parent_call_sid: opt_str(row, "parent_call_sid")?,
        direction: spelled::<CallDirection>(row, "calls", "direction")?,
        from: row.try_get("from_address")?,
        to: row.try_get("to_address")?,
        status: spelled::<CallStatus>(row, "calls", "status")?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        duration: row.try_get("duration")?,
        sip_call_id: opt_str(row, "sip_call_id")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

/// The times a change sets: the answer (`start_time`) when the call goes in progress, or when
/// it ends after an answer (back-dated by its duration); the end and the duration at a final
/// status (0 for a call never answered).
fn times(c: &CallChange) -> (Option<i64>, Option<i64>, Option<i64>) {
    match c.status {
        CallStatus::InProgress => (Some(c.at), None, None),
        s if s.is_final() => {
            let start = c
                .duration_secs
                .map(|d| c.at.saturating_sub(d.saturating_mul(US_PER_SEC)));
            (start, Some(c.at), Some(c.duration_secs.unwrap_or(0)))
        }
        _ => (None, None, None),
    }
}

#[async_trait]
impl CallStore for SqlStore {
    async fn apply_call_change(
        &self,
        c: &CallChange,
        callbacks: &[Callback],
    ) -> StoreResult<Option<Call>> {
        let (start, end, duration) = times(c);
        let mut tx = self.pool().begin().await?;
        // The write comes first, so SQLite takes its write lock at once (no read-to-write
        // upgrade that could fail under a concurrent writer).
        let applied = sqlx::query(&format!(
            "INSERT INTO calls ({CALL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
             ON CONFLICT (sid) DO UPDATE SET status = excluded.status, status_rank = excluded.status_rank, \
             start_time = COALESCE(calls.start_time, excluded.start_time), \
             end_time = COALESCE(calls.end_time, excluded.end_time), \
             duration = COALESCE(calls.duration, excluded.duration), \
             sip_call_id = COALESCE(calls.sip_call_id, excluded.sip_call_id), \
             date_updated = excluded.date_updated \
             WHERE calls.status_rank < excluded.status_rank AND calls.account_sid = excluded.account_sid"
        ))
        .bind(&c.sid)
        .bind(&c.account_sid)
        .bind(&c.parent_call_sid)
        .bind(c.direction.as_str())
        .bind(&c.from)
        .bind(&c.to)
        .bind(c.status.as_str())
        .bind(c.status.rank())
        .bind(start)
        .bind(end)
        .bind(duration)
        .bind(&c.sip_call_id)
        .bind(c.at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if !applied {
            tx.rollback().await?;
            return Ok(None);
        }
        for cb in callbacks {
            insert_callback(&mut *tx, cb).await?;
        }
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLS} FROM calls WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(&c.account_sid)
        .bind(&c.sid)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(call_from).transpose()
    }

    async fn call(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Call>> {
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLS} FROM calls WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(call_from).transpose()
    }

    async fn list_calls(
        &self,
        account_sid: &str,
        filter: &CallFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Call>> {
        let mut sql = format!(
            "SELECT {CALL_COLS} FROM calls WHERE account_sid = $1 \
             AND ($3 IS NULL OR to_address = $3) AND ($4 IS NULL OR from_address = $4) \
             AND ($5 IS NULL OR status = $5) AND ($6 IS NULL OR parent_call_sid = $6) \
             AND ($7 IS NULL OR start_time >= $7) AND ($8 IS NULL OR start_time < $8) \
             AND ($9 IS NULL OR end_time >= $9) AND ($10 IS NULL OR end_time < $10)"
        );
        newest_first_page(&mut sql, after, 11);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.to)
            .bind(&filter.from)
            .bind(filter.status.map(CallStatus::as_str))
            .bind(&filter.parent_call_sid)
            .bind(filter.started_from)
            .bind(filter.started_before)
            .bind(filter.ended_from)
            .bind(filter.ended_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(call_from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! On SQLite, and on the PostgreSQL of `scripts/services.sh` when `MEDIASEAL_SCALE_DATABASE`
    //! names it (a database of its own per run, as in `sql/tests.rs`).

    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::meta::OutboxStore;

    async fn backends() -> Vec<(SqlStore, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqlStore::open_sqlite(&dir.path().join("meta.db"))
            .await
            .unwrap();
        let mut out = vec![(sqlite, Some(dir))];
        if let Ok(url) = std::env::var("MEDIASEAL_SCALE_DATABASE")
            && !url.is_empty()
        {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let admin = SqlStore::connect(&url).await.unwrap();
            let db = format!("calls_test_{nanos:x}");
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(admin.pool())
                .await
                .unwrap();
            let (base, _) = url.rsplit_once('/').unwrap();
            out.push((
                SqlStore::connect(&format!("{base}/{db}")).await.unwrap(),
                None,
            ));
        }
        out
    }

    fn change(sid: &str, status: CallStatus, at: i64, duration: Option<i64>) -> CallChange {
        CallChange {
            sid: sid.to_owned(),
            account_sid: "AC00000000000000000000000000000001".to_owned(),
            parent_call_sid: None,
            direction: CallDirection::Inbound,
            from: "sip:alice@example.com".to_owned(),
            to: "sip:bob@example.sip.test".to_owned(),
            status,
            duration_secs: duration,
            sip_call_id: Some("abc@host".to_owned()),
            at,
        }
    }

    fn callback(id: &str, resource: &str) -> Callback {
        Callback {
            id: id.to_owned(),
            account_sid: "AC00000000000000000000000000000001".to_owned(),
            resource_sid: resource.to_owned(),
            url: "https://example.com/status".to_owned(),
            method: "POST".to_owned(),
            params: "[]".to_owned(),
            attempts: 0,
            next_attempt_at: 0,
            state: "pending".to_owned(),
            last_error: None,
            created_at: 0,
            delivered_at: None,
        }
    }

    const CA: &str = "CA00000000000000000000000000000001";
    const S: i64 = US_PER_SEC;

    #[tokio::test]
    async fn a_call_moves_forward_only_and_keeps_its_times() {
        for (store, _dir) in backends().await {
            let ringing = store
                .apply_call_change(&change(CA, CallStatus::Ringing, 10 * S, None), &[])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ringing.status, CallStatus::Ringing);
            assert_eq!((ringing.start_time, ringing.end_time), (None, None));
            let answered = store
                .apply_call_change(&change(CA, CallStatus::InProgress, 12 * S, None), &[])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(answered.start_time, Some(12 * S));
            let done = store
                .apply_call_change(
                    &change(CA, CallStatus::Completed, 20 * S, Some(8)),
                    &[callback("CB00000000000000000000000000000001", CA)],
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(done.status, CallStatus::Completed);
            assert_eq!(done.start_time, Some(12 * S), "the answer time is kept");
            assert_eq!((done.end_time, done.duration), (Some(20 * S), Some(8)));
            assert_eq!((done.date_created, done.date_updated), (10 * S, 20 * S));
            assert_eq!(store.callbacks_for(CA).await.unwrap().len(), 1);

            // A late in-progress, a repeated final or another final change nothing and queue
            // nothing.
            for late in [
                change(CA, CallStatus::InProgress, 21 * S, None),
                change(CA, CallStatus::Completed, 22 * S, Some(9)),
                change(CA, CallStatus::Failed, 23 * S, None),
            ] {
                let cb = callback("CB00000000000000000000000000000002", CA);
                assert!(
                    store
                        .apply_call_change(&late, &[cb])
                        .await
                        .unwrap()
                        .is_none()
                );
            }
            assert_eq!(store.callbacks_for(CA).await.unwrap().len(), 1);
            let now = store.call(&done.account_sid, CA).await.unwrap().unwrap();
            assert_eq!(now, done);
            assert!(
                store
                    .call("AC00000000000000000000000000000002", CA)
                    .await
                    .unwrap()
                    .is_none(),
                "another account does not see it"
            );
        }
    }

    #[tokio::test]
    async fn a_final_status_first_back_dates_the_answer() {
        for (store, _dir) in backends().await {
            let done = store
                .apply_call_change(&change(CA, CallStatus::Completed, 30 * S, Some(5)), &[])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(done.start_time, Some(25 * S));
            let unanswered = store
                .apply_call_change(
                    &change(
                        "CA00000000000000000000000000000002",
                        CallStatus::NoAnswer,
                        30 * S,
                        None,
                    ),
                    &[],
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(unanswered.start_time, None);
            assert_eq!(unanswered.duration, Some(0));
        }
    }

    #[tokio::test]
    async fn the_list_filters_and_pages() {
        for (store, _dir) in backends().await {
            let account = "AC00000000000000000000000000000001";
            for i in 0..3_i64 {
                let sid = format!("CA0000000000000000000000000000001{i}");
                let mut c = change(&sid, CallStatus::Completed, (100 + i) * S, Some(1));
                if i == 2 {
                    c.to = "sip:carol@example.sip.test".to_owned();
                    c.parent_call_sid = Some("CA00000000000000000000000000000010".to_owned());
                    c.direction = CallDirection::OutboundDial;
                    c.status = CallStatus::Busy;
                    c.duration_secs = None;
                }
                store.apply_call_change(&c, &[]).await.unwrap();
            }
            let all = store
                .list_calls(account, &CallFilter::default(), None, 10)
                .await
                .unwrap();
            let sids: Vec<&str> = all.iter().map(|c| &c.sid[32..]).collect();
            assert_eq!(sids, ["12", "11", "10"], "newest first");
            let list = |f: CallFilter| {
                let store = store.clone();
                async move {
                    store
                        .list_calls(account, &f, None, 10)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|c| c.sid[32..].to_owned())
                        .collect::<Vec<_>>()
                }
            };
            let to = CallFilter {
                to: Some("sip:carol@example.sip.test".to_owned()),
                ..Default::default()
            };
            assert_eq!(list(to).await, ["12"]);
            let status = CallFilter {
                status: Some(CallStatus::Completed),
                ..Default::default()
            };
            assert_eq!(list(status).await, ["11", "10"]);
            let parent = CallFilter {
                parent_call_sid: Some("CA00000000000000000000000000000010".to_owned()),
                ..Default::default()
            };
            assert_eq!(list(parent).await, ["12"]);
            let started = CallFilter {
                started_from: Some(100 * S),
                started_before: Some(100 * S),
                ..Default::default()
            };
            assert_eq!(list(started).await, Vec::<String>::new());
            let ended = CallFilter {
                ended_from: Some(101 * S),
                ended_before: Some(102 * S),
                ..Default::default()
            };
            assert_eq!(list(ended).await, ["11"]);
            let first = store
                .list_calls(account, &CallFilter::default(), None, 1)
                .await
                .unwrap();
            let cursor = Cursor {
                date_created: first[0].date_created,
                sid: first[0].sid.clone(),
            };
            let next = store
                .list_calls(account, &CallFilter::default(), Some(&cursor), 5)
                .await
                .unwrap();
            assert_eq!(next.len(), 2);
            assert!(
                store
                    .list_calls(
                        "AC00000000000000000000000000000002",
                        &CallFilter::default(),
                        None,
                        10
                    )
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
}
