//! Conversational Intelligence operators on SQL: custom operators, attachments and where
//! operator results are sealed.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{newest_first_page, opt_str, spelled};
use crate::meta::{OperatorStore, StoreResult};
use crate::model::operators::{CustomOperator, OperatorResultRecord, OperatorUpdate};
use crate::model::{Cursor, Sealing};

const OPERATOR_COLS: &str =
    "sid, account_sid, friendly_name, operator_type, config, version, date_created, date_updated";
const RESULT_COLS: &str = "account_sid, transcript_sid, operator_sid, operator_type, name, sealing, \
     object_key, log_object_key, date_created";

fn operator_from(row: &AnyRow) -> StoreResult<CustomOperator> {
    Ok(CustomOperator {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        operator_type: row.try_get("operator_type")?,
        config: row.try_get("config")?,
        version: row.try_get("version")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn result_from(row: &AnyRow) -> StoreResult<OperatorResultRecord> {
    Ok(OperatorResultRecord {
        account_sid: row.try_get("account_sid")?,
        transcript_sid: row.try_get("transcript_sid")?,
        operator_sid: row.try_get("operator_sid")?,
        operator_type: row.try_get("operator_type")?,
        name: row.try_get("name")?,
        sealing: spelled::<Sealing>(row, "operator_results", "sealing")?,
        object_key: row.try_get("object_key")?,
        log_object_key: opt_str(row, "log_object_key")?,
        date_created: row.try_get("date_created")?,
    })
}

#[async_trait]
impl OperatorStore for SqlStore {
    async fn insert_custom_operator(&self, o: &CustomOperator) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO custom_operators ({OPERATOR_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&o.sid)
        .bind(&o.account_sid)
        .bind(&o.friendly_name)
        .bind(&o.operator_type)
        .bind(&o.config)
        .bind(o.version)
        .bind(o.date_created)
        .bind(o.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn custom_operator(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<CustomOperator>> {
        let row = sqlx::query(&format!(
            "SELECT {OPERATOR_COLS} FROM custom_operators WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(operator_from).transpose()
    }

    async fn list_custom_operators(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<CustomOperator>> {
        let mut sql =
            format!("SELECT {OPERATOR_COLS} FROM custom_operators WHERE account_sid = $1");
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(account_sid).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(operator_from)
            .collect()
    }

    async fn update_custom_operator(
        &self,
        o: &CustomOperator,
        expected_version: i64,
    ) -> StoreResult<OperatorUpdate> {
        let done = sqlx::query(
            "UPDATE custom_operators SET friendly_name = $3, config = $4, version = $5, date_updated = $6 \
             WHERE account_sid = $1 AND sid = $2 AND version = $7",
        )
        .bind(&o.account_sid)
        .bind(&o.sid)
        .bind(&o.friendly_name)
        .bind(&o.config)
        .bind(o.version)
        .bind(o.date_updated)
        .bind(expected_version)
        .execute(self.pool())
        .await?;
        Ok(if done.rows_affected() > 0 {
            OperatorUpdate::Updated
        } else {
            OperatorUpdate::VersionMismatch
        })
    }

    async fn delete_custom_operator(&self, account_sid: &str, sid: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM custom_operators WHERE account_sid = $1 AND sid = $2")
            .bind(account_sid)
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM operator_attachments WHERE account_sid = $1 AND operator_sid = $2",
        )
        .bind(account_sid)
        .bind(sid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn attach_operator(
        &self,
        account_sid: &str,
        service_sid: &str,
        operator_sid: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO operator_attachments (account_sid, service_sid, operator_sid, date_created) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (service_sid, operator_sid) DO NOTHING",
        )
        .bind(account_sid)
        .bind(service_sid)
        .bind(operator_sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn detach_operator(
        &self,
        account_sid: &str,
        service_sid: &str,
        operator_sid: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM operator_attachments WHERE account_sid = $1 AND service_sid = $2 AND operator_sid = $3",
        )
        .bind(account_sid)
        .bind(service_sid)
        .bind(operator_sid)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn attached_operators(
        &self,
        account_sid: &str,
        service_sid: &str,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT operator_sid FROM operator_attachments WHERE account_sid = $1 AND service_sid = $2 \
             ORDER BY date_created, operator_sid",
        )
        .bind(account_sid)
        .bind(service_sid)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("operator_sid")?))
            .collect()
    }

    async fn detach_all_operators(&self, account_sid: &str, service_sid: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM operator_attachments WHERE account_sid = $1 AND service_sid = $2")
            .bind(account_sid)
            .bind(service_sid)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn insert_operator_result(&self, r: &OperatorResultRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO operator_results ({RESULT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&r.account_sid)
        .bind(&r.transcript_sid)
        .bind(&r.operator_sid)
        .bind(&r.operator_type)
        .bind(&r.name)
        .bind(r.sealing.as_str())
        .bind(&r.object_key)
        .bind(&r.log_object_key)
        .bind(r.date_created)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn operator_results(
        &self,
        account_sid: &str,
        transcript_sid: &str,
    ) -> StoreResult<Vec<OperatorResultRecord>> {
        sqlx::query(&format!(
            "SELECT {RESULT_COLS} FROM operator_results WHERE account_sid = $1 AND transcript_sid = $2 \
             ORDER BY date_created, operator_sid"
        ))
        .bind(account_sid)
        .bind(transcript_sid)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(result_from)
        .collect()
    }

    async fn delete_operator_results(
        &self,
        account_sid: &str,
        transcript_sid: &str,
    ) -> StoreResult<Vec<OperatorResultRecord>> {
        let before = self.operator_results(account_sid, transcript_sid).await?;
        sqlx::query("DELETE FROM operator_results WHERE account_sid = $1 AND transcript_sid = $2")
            .bind(account_sid)
            .bind(transcript_sid)
            .execute(self.pool())
            .await?;
        Ok(before)
    }
}
