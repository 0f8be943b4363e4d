//! Conversational Intelligence metadata on SQL: services and transcripts.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::outbox::insert_callback;
use super::rows::{b, checked, flag, is_unique_violation, newest_first_page, opt_str, spelled};
use crate::meta::{IntelligenceStore, StoreResult};
use crate::model::intelligence::{
    AbandonedTranscript, IntelligenceService, ServiceUpdate, Transcript, TranscriptFilter,
    TranscriptStatus,
};
use crate::model::{Callback, Cursor, Sealing};

const SERVICE_COLS: &str = "sid, account_sid, unique_name, friendly_name, language_code, auto_transcribe, \
     data_logging, auto_redaction, media_redaction, webhook_url, webhook_http_method, encryption_credential_sid, \
     version, date_created, date_updated";
const TRANSCRIPT_COLS: &str = "sid, account_sid, service_sid, status, channel, source_sid, language_code, \
     customer_key, media_start_time, duration, data_logging, redaction, encryption_credential_sid, sealing, \
     object_key, log_object_key, redacted_object_key, sentence_count, error_message, deleted, date_created, date_updated, \
     lease_owner, lease_until, media_redaction, redacted_media_key";

fn service_from(row: &AnyRow) -> StoreResult<IntelligenceService> {
    Ok(IntelligenceService {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        unique_name: row.try_get("unique_name")?,
        friendly_name: opt_str(row, "friendly_name")?,
        language_code: row.try_get("language_code")?,
        auto_transcribe: flag(row, "auto_transcribe")?,
        data_logging: flag(row, "data_logging")?,
        auto_redaction: flag(row, "auto_redaction")?,
        media_redaction: flag(row, "media_redaction")?,
        webhook_url: opt_str(row, "webhook_url")?,
        webhook_http_method: opt_str(row, "webhook_http_method")?,
        encryption_credential_sid: opt_str(row, "encryption_credential_sid")?,
        version: row.try_get("version")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn transcript_from(row: &AnyRow) -> StoreResult<Transcript> {
    Ok(Transcript {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        service_sid: row.try_get("service_sid")?,
        status: checked::<TranscriptStatus>(row, "transcripts", "status")?,
        channel: row.try_get("channel")?,
        source_sid: opt_str(row, "source_sid")?,
        language_code: row.try_get("language_code")?,
        customer_key: opt_str(row, "customer_key")?,
        media_start_time: row.try_get("media_start_time")?,
        duration: row.try_get("duration")?,
        data_logging: flag(row, "data_logging")?,
        redaction: flag(row, "redaction")?,
        encryption_credential_sid: opt_str(row, "encryption_credential_sid")?,
        sealing: spelled::<Sealing>(row, "transcripts", "sealing")?,
        object_key: opt_str(row, "object_key")?,
        log_object_key: opt_str(row, "log_object_key")?,
        redacted_object_key: opt_str(row, "redacted_object_key")?,
        sentence_count: row.try_get("sentence_count")?,
        error_message: opt_str(row, "error_message")?,
        deleted: flag(row, "deleted")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        lease_owner: opt_str(row, "lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        media_redaction: flag(row, "media_redaction")?,
        redacted_media_key: opt_str(row, "redacted_media_key")?,
    })
}

#[async_trait]
impl IntelligenceStore for SqlStore {
    async fn insert_intelligence_service(&self, s: &IntelligenceService) -> StoreResult<bool> {
        let result = sqlx::query(&format!(
            "INSERT INTO intelligence_services ({SERVICE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&s.sid)
        .bind(&s.account_sid)
        .bind(&s.unique_name)
        .bind(&s.friendly_name)
        .bind(&s.language_code)
        .bind(b(s.auto_transcribe))
        .bind(b(s.data_logging))
        .bind(b(s.auto_redaction))
        .bind(b(s.media_redaction))
        .bind(&s.webhook_url)
        .bind(&s.webhook_http_method)
        .bind(&s.encryption_credential_sid)
        .bind(s.version)
        .bind(s.date_created)
        .bind(s.date_updated)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn intelligence_service(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<IntelligenceService>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVICE_COLS} FROM intelligence_services WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(service_from).transpose()
    }

    async fn list_intelligence_services(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<IntelligenceService>> {
        let mut sql =
            format!("SELECT {SERVICE_COLS} FROM intelligence_services WHERE account_sid = $1");
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(account_sid).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(service_from)
            .collect()
    }

    async fn update_intelligence_service(
        &self,
        s: &IntelligenceService,
        expected_version: i64,
    ) -> StoreResult<ServiceUpdate> {
        let result = sqlx::query(
            "UPDATE intelligence_services SET unique_name = $3, friendly_name = $4, language_code = $5, \
             auto_transcribe = $6, data_logging = $7, auto_redaction = $8, media_redaction = $9, webhook_url = $10, \
             webhook_http_method = $11, encryption_credential_sid = $12, version = $13, date_updated = $14 \
             WHERE account_sid = $1 AND sid = $2 AND version = $15",
        )
        .bind(&s.account_sid)
        .bind(&s.sid)
        .bind(&s.unique_name)
        .bind(&s.friendly_name)
        .bind(&s.language_code)
        .bind(b(s.auto_transcribe))
        .bind(b(s.data_logging))
        .bind(b(s.auto_redaction))
        .bind(b(s.media_redaction))
        .bind(&s.webhook_url)
        .bind(&s.webhook_http_method)
        .bind(&s.encryption_credential_sid)
        .bind(s.version)
        .bind(s.date_updated)
        .bind(expected_version)
        .execute(self.pool())
        .await;
        match result {
            Ok(done) if done.rows_affected() > 0 => Ok(ServiceUpdate::Updated),
            Ok(_) => Ok(ServiceUpdate::VersionMismatch),
            Err(e) if is_unique_violation(&e) => Ok(ServiceUpdate::DuplicateName),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_intelligence_service(&self, account_sid: &str, sid: &str) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM intelligence_services WHERE account_sid = $1 AND sid = $2")
                .bind(account_sid)
                .bind(sid)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_intelligence_data_logging(
        &self,
        sid: &str,
        on: bool,
        now: i64,
    ) -> StoreResult<Option<IntelligenceService>> {
        sqlx::query(
            "UPDATE intelligence_services SET data_logging = $2, version = version + 1, date_updated = $3 \
             WHERE sid = $1",
        )
        .bind(sid)
        .bind(b(on))
        .bind(now)
        .execute(self.pool())
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {SERVICE_COLS} FROM intelligence_services WHERE sid = $1"
        ))
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(service_from).transpose()
    }

    async fn insert_transcript(&self, t: &Transcript) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO transcripts ({TRANSCRIPT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
        ))
        .bind(&t.sid)
        .bind(&t.account_sid)
        .bind(&t.service_sid)
        .bind(&t.status)
        .bind(&t.channel)
        .bind(&t.source_sid)
        .bind(&t.language_code)
        .bind(&t.customer_key)
        .bind(t.media_start_time)
        .bind(t.duration)
        .bind(b(t.data_logging))
        .bind(b(t.redaction))
        .bind(&t.encryption_credential_sid)
        .bind(t.sealing.as_str())
        .bind(&t.object_key)
        .bind(&t.log_object_key)
        .bind(&t.redacted_object_key)
        .bind(t.sentence_count)
        .bind(&t.error_message)
        .bind(b(t.deleted))
        .bind(t.date_created)
        .bind(t.date_updated)
        .bind(&t.lease_owner)
        .bind(t.lease_until)
        .bind(b(t.media_redaction))
        .bind(&t.redacted_media_key)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn transcript(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Transcript>> {
        let row = sqlx::query(&format!(
            "SELECT {TRANSCRIPT_COLS} FROM transcripts WHERE account_sid = $1 AND sid = $2 AND deleted = 0"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(transcript_from).transpose()
    }

    async fn list_transcripts(
        &self,
        account_sid: &str,
        filter: &TranscriptFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Transcript>> {
        let mut sql = format!(
            "SELECT {TRANSCRIPT_COLS} FROM transcripts WHERE account_sid = $1 AND deleted = 0 \
             AND ($3 IS NULL OR service_sid = $3) AND ($4 IS NULL OR status = $4) \
             AND ($5 IS NULL OR source_sid = $5) AND ($6 IS NULL OR date_created >= $6) \
             AND ($7 IS NULL OR date_created <= $7)"
        );
        newest_first_page(&mut sql, after, 8);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.service_sid)
            .bind(&filter.status)
            .bind(&filter.source_sid)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(transcript_from)
            .collect()
    }

    async fn update_transcript(&self, t: &Transcript, callbacks: &[Callback]) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE transcripts SET status = $3, duration = $4, sealing = $5, object_key = $6, \
             sentence_count = $7, error_message = $8, encryption_credential_sid = $9, date_updated = $10, \
             log_object_key = $11, redacted_object_key = $12, redacted_media_key = $13, \
             lease_owner = CASE WHEN $3 IN ('completed', 'failed') THEN NULL ELSE lease_owner END, \
             lease_until = CASE WHEN $3 IN ('completed', 'failed') THEN NULL ELSE lease_until END \
             WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(&t.account_sid)
        .bind(&t.sid)
        .bind(&t.status)
        .bind(t.duration)
        .bind(t.sealing.as_str())
        .bind(&t.object_key)
        .bind(t.sentence_count)
        .bind(&t.error_message)
        .bind(&t.encryption_credential_sid)
        .bind(t.date_updated)
        .bind(&t.log_object_key)
        .bind(&t.redacted_object_key)
        .bind(&t.redacted_media_key)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_transcript(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Transcript>> {
        let Some(before) = self.transcript(account_sid, sid).await? else {
            return Ok(None);
        };
        let done = sqlx::query(
            "UPDATE transcripts SET deleted = 1, object_key = NULL, log_object_key = NULL, redacted_object_key = NULL, \
             redacted_media_key = NULL, sealing = 'none', lease_owner = NULL, lease_until = NULL, \
             date_updated = $3 \
             WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok((done.rows_affected() > 0).then_some(before))
    }
    async fn renew_transcript_lease(
        &self,
        sid: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE transcripts SET lease_until = $3 WHERE sid = $1 AND lease_owner = $2 \
             AND deleted = 0 AND status IN ('queued', 'in-progress')",
        )
        .bind(sid)
        .bind(owner)
        .bind(lease_until)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_abandoned_transcripts(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<AbandonedTranscript>> {
        const LAPSED: &str = "deleted = 0 AND status IN ('queued', 'in-progress') \
             AND (lease_until IS NULL OR lease_until < $2)";
        let candidates = sqlx::query(&format!(
            "SELECT sid FROM transcripts WHERE {LAPSED} ORDER BY date_created, sid LIMIT $1"
        ))
        .bind(limit)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for row in &candidates {
            let sid: String = row.try_get("sid")?;
            // Claimed only if the lease is still lapsed: another node may have been faster.
            let done = sqlx::query(&format!(
                "UPDATE transcripts SET lease_owner = $3, lease_until = $4, recoveries = recoveries + 1 \
                 WHERE sid = $1 AND {LAPSED}"
            ))
            .bind(&sid)
            .bind(now)
            .bind(owner)
            .bind(lease_until)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 0 {
                continue;
            }
            let row = sqlx::query(&format!(
                "SELECT {TRANSCRIPT_COLS}, recoveries FROM transcripts WHERE sid = $1"
            ))
            .bind(&sid)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                claimed.push(AbandonedTranscript {
                    transcript: transcript_from(&row)?,
                    recoveries: row.try_get("recoveries")?,
                });
            }
        }
        Ok(claimed)
    }
}
