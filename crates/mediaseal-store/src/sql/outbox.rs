//! The webhook outbox on SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{checked, opt_str};
use crate::meta::{OutboxStore, StoreResult};
use crate::model::{Callback, CallbackState, HttpMethod};

const CALLBACK_COLS: &str = "id, account_sid, resource_sid, url, method, params, attempts, next_attempt_at, state, \
     last_error, created_at, delivered_at";

fn callback_from(row: &AnyRow) -> StoreResult<Callback> {
    Ok(Callback {
        id: row.try_get("id")?,
        account_sid: row.try_get("account_sid")?,
        resource_sid: row.try_get("resource_sid")?,
        url: row.try_get("url")?,
        method: checked::<HttpMethod>(row, "callbacks", "method")?,
        params: row.try_get("params")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        state: checked::<CallbackState>(row, "callbacks", "state")?,
        last_error: opt_str(row, "last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

pub(super) async fn insert_callback<'e, E>(executor: E, c: &Callback) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO callbacks ({CALLBACK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&c.id)
    .bind(&c.account_sid)
    .bind(&c.resource_sid)
    .bind(&c.url)
    .bind(&c.method)
    .bind(&c.params)
    .bind(c.attempts)
    .bind(c.next_attempt_at)
    .bind(&c.state)
    .bind(&c.last_error)
    .bind(c.created_at)
    .bind(c.delivered_at)
    .execute(executor)
    .await?;
    Ok(())
}

impl SqlStore {
    /// Leases up to `limit` due callbacks, of `account_sid` only when given.
    async fn lease_due(
        &self,
        owner: &str,
        account_sid: Option<&str>,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Callback>> {
        let sql = format!(
            "UPDATE callbacks SET lease_owner = $1, lease_until = $2 WHERE id IN (\
               SELECT c.id FROM callbacks c WHERE c.state = 'pending' AND c.next_attempt_at <= $3 \
               AND (c.lease_until IS NULL OR c.lease_until < $3) {} AND {IN_TURN} \
               ORDER BY c.next_attempt_at LIMIT $4{}) \
             RETURNING {CALLBACK_COLS}",
            if account_sid.is_some() {
                "AND c.account_sid = $5"
            } else {
                ""
            },
            self.skip_locked()
        );
        let mut query = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit);
        if let Some(account) = account_sid {
            query = query.bind(account);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(callback_from).collect()
    }
}

/// A call's (`CA…`) pending status callback `c` is sent only once every earlier callback of that
/// call was delivered or given up on, so a receiver sees its progress events in the order they
/// were queued even when an attempt fails and waits for its retry. Other resources' callbacks are
/// independent.
const IN_TURN: &str = "(c.resource_sid NOT LIKE 'CA%' OR NOT EXISTS (SELECT 1 FROM callbacks e \
     WHERE e.resource_sid = c.resource_sid AND e.state = 'pending' \
     AND (e.created_at < c.created_at OR (e.created_at = c.created_at AND e.id < c.id))))";

#[async_trait]
impl OutboxStore for SqlStore {
    async fn enqueue_callbacks(&self, callbacks: &[Callback]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn lease_due_callbacks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Callback>> {
        self.lease_due(owner, None, now, lease_until, limit).await
    }

    async fn accounts_with_due_callbacks(&self, now: i64, limit: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(&format!(
            "SELECT c.account_sid FROM callbacks c WHERE c.state = 'pending' \
                 AND c.next_attempt_at <= $1 AND (c.lease_until IS NULL OR c.lease_until < $1) \
                 AND {IN_TURN} \
                 GROUP BY c.account_sid ORDER BY MIN(c.next_attempt_at), c.account_sid LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("account_sid").map_err(Into::into))
            .collect()
    }

    async fn lease_due_callbacks_of(
        &self,
        owner: &str,
        account_sid: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Callback>> {
        self.lease_due(owner, Some(account_sid), now, lease_until, limit)
            .await
    }

    async fn mark_delivered(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE callbacks SET state = 'delivered', delivered_at = $2, attempts = attempts + 1, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_attempt_failed(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
        give_up: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE callbacks SET attempts = $2, next_attempt_at = $3, last_error = $4, state = $5, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(if give_up { "failed" } else { "pending" })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn callbacks_for(&self, resource_sid: &str) -> StoreResult<Vec<Callback>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALLBACK_COLS} FROM callbacks WHERE resource_sid = $1 ORDER BY created_at, id"
        ))
        .bind(resource_sid)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(callback_from).collect()
    }
}
