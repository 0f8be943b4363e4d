//! Voice recordings, their settings and notifications on SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::commit::Write;
use super::rows::{b, checked, flag, newest_first_page, opt_str, spelled};
use crate::meta::{StoreResult, VoiceStore};
use crate::model::{
    Callback, Cursor, Notification, Recording, RecordingFilter, RecordingSettings, RecordingStatus,
    Sealing,
};

const RECORDING_COLS: &str = "sid, account_sid, call_sid, conference_sid, channels, source, track, duration, status, \
     error_code, start_time, date_created, date_updated, encryption_details, sealing, object_key, sealed_size, \
     plain_size, content_type, visible, deleted, date_deleted, interruption";
const NOTIFICATION_COLS: &str = "sid, account_sid, call_sid, resource_sid, error_code, log_level, message_text, \
     more_info, request_method, request_url, date_created";

fn settings_from(row: &AnyRow) -> StoreResult<RecordingSettings> {
    Ok(RecordingSettings {
        account_sid: row.try_get("account_sid")?,
        encryption_enabled: flag(row, "encryption_enabled")?,
        encryption_public_key_sid: opt_str(row, "encryption_public_key_sid")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn recording_from(row: &AnyRow) -> StoreResult<Recording> {
    Ok(Recording {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        call_sid: opt_str(row, "call_sid")?,
        conference_sid: opt_str(row, "conference_sid")?,
        channels: row.try_get("channels")?,
        source: row.try_get("source")?,
        track: opt_str(row, "track")?,
        duration: row.try_get("duration")?,
        status: checked::<RecordingStatus>(row, "recordings", "status")?,
        error_code: row.try_get("error_code")?,
        start_time: row.try_get("start_time")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        encryption_details: opt_str(row, "encryption_details")?,
        sealing: spelled::<Sealing>(row, "recordings", "sealing")?,
        object_key: opt_str(row, "object_key")?,
        sealed_size: row.try_get("sealed_size")?,
        plain_size: row.try_get("plain_size")?,
        content_type: row.try_get("content_type")?,
        visible: flag(row, "visible")?,
        deleted: flag(row, "deleted")?,
        date_deleted: row.try_get("date_deleted")?,
        interruption: opt_str(row, "interruption")?,
    })
}

fn notification_from(row: &AnyRow) -> StoreResult<Notification> {
    Ok(Notification {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        call_sid: opt_str(row, "call_sid")?,
        resource_sid: opt_str(row, "resource_sid")?,
        error_code: row.try_get("error_code")?,
        log_level: row.try_get("log_level")?,
        message_text: row.try_get("message_text")?,
        more_info: row.try_get("more_info")?,
        request_method: opt_str(row, "request_method")?,
        request_url: opt_str(row, "request_url")?,
        date_created: row.try_get("date_created")?,
    })
}

/// Writes a recording row in full, inserting or replacing.
pub(super) async fn upsert_recording<'e, E>(executor: E, r: &Recording) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO recordings ({RECORDING_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) \
         ON CONFLICT (sid) DO UPDATE SET call_sid = excluded.call_sid, conference_sid = excluded.conference_sid, \
         channels = excluded.channels, source = excluded.source, track = excluded.track, duration = excluded.duration, \
         status = excluded.status, error_code = excluded.error_code, start_time = excluded.start_time, \
         date_updated = excluded.date_updated, encryption_details = excluded.encryption_details, \
         sealing = excluded.sealing, object_key = excluded.object_key, sealed_size = excluded.sealed_size, \
         plain_size = excluded.plain_size, content_type = excluded.content_type, visible = excluded.visible, \
         deleted = excluded.deleted, date_deleted = excluded.date_deleted, interruption = excluded.interruption"
    ))
    .bind(&r.sid)
    .bind(&r.account_sid)
    .bind(&r.call_sid)
    .bind(&r.conference_sid)
    .bind(r.channels)
    .bind(&r.source)
    .bind(&r.track)
    .bind(r.duration)
    .bind(&r.status)
    .bind(r.error_code)
    .bind(r.start_time)
    .bind(r.date_created)
    .bind(r.date_updated)
    .bind(&r.encryption_details)
    .bind(r.sealing.as_str())
    .bind(&r.object_key)
    .bind(r.sealed_size)
    .bind(r.plain_size)
    .bind(&r.content_type)
    .bind(b(r.visible))
    .bind(b(r.deleted))
    .bind(r.date_deleted)
    .bind(&r.interruption)
    .execute(executor)
    .await?;
    Ok(())
}

pub(super) async fn insert_notification<'e, E>(executor: E, n: &Notification) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO notifications ({NOTIFICATION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&n.sid)
    .bind(&n.account_sid)
    .bind(&n.call_sid)
    .bind(&n.resource_sid)
    .bind(n.error_code)
    .bind(n.log_level)
    .bind(&n.message_text)
    .bind(&n.more_info)
    .bind(&n.request_method)
    .bind(&n.request_url)
    .bind(n.date_created)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl VoiceStore for SqlStore {
    async fn recording_settings(
        &self,
        account_sid: &str,
    ) -> StoreResult<Option<RecordingSettings>> {
        let row = sqlx::query(
            "SELECT account_sid, encryption_enabled, encryption_public_key_sid, date_created, date_updated \
             FROM recording_settings WHERE account_sid = $1",
        )
        .bind(account_sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(settings_from).transpose()
    }

    async fn put_recording_settings(&self, s: &RecordingSettings) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO recording_settings (account_sid, encryption_enabled, encryption_public_key_sid, \
             date_created, date_updated) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_sid) DO UPDATE SET encryption_enabled = excluded.encryption_enabled, \
             encryption_public_key_sid = excluded.encryption_public_key_sid, date_updated = excluded.date_updated",
        )
        .bind(&s.account_sid)
        .bind(b(s.encryption_enabled))
        .bind(&s.encryption_public_key_sid)
        .bind(s.date_created)
        .bind(s.date_updated)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reserve_recording(&self, recording: &Recording) -> StoreResult<()> {
        self.commits
            .submit(Write::ReserveRecording(recording.clone()))
            .await
    }

    async fn publish_recording(
        &self,
        recording: &Recording,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> StoreResult<()> {
        self.commits
            .submit(Write::PublishRecording {
                recording: recording.clone(),
                callbacks: callbacks.to_vec(),
                notifications: notifications.to_vec(),
            })
            .await
    }

    async fn recording(
        &self,
        account_sid: &str,
        sid: &str,
        include_deleted: bool,
    ) -> StoreResult<Option<Recording>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORDING_COLS} FROM recordings WHERE account_sid = $1 AND sid = $2 AND visible = 1 \
             AND (deleted = 0 OR $3 = 1)"
        ))
        .bind(account_sid)
        .bind(sid)
        .bind(b(include_deleted))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recording_from).transpose()
    }

    async fn list_recordings(
        &self,
        account_sid: &str,
        filter: &RecordingFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Recording>> {
        let mut sql = format!(
            "SELECT {RECORDING_COLS} FROM recordings WHERE account_sid = $1 AND visible = 1 AND (deleted = 0 OR $3 = 1) \
             AND ($4 IS NULL OR call_sid = $4) AND ($5 IS NULL OR conference_sid = $5) \
             AND ($6 IS NULL OR date_created >= $6) AND ($7 IS NULL OR date_created < $7)"
        );
        newest_first_page(&mut sql, after, 8);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(b(filter.include_deleted))
            .bind(&filter.call_sid)
            .bind(&filter.conference_sid)
            .bind(filter.created_from)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(recording_from)
            .collect()
    }

    async fn delete_recording(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Recording>> {
        let Some(before) = self.recording(account_sid, sid, false).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE recordings SET deleted = 1, status = 'deleted', date_deleted = $3, date_updated = $3, \
             object_key = NULL, sealing = 'none' WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Some(before))
    }

    async fn stale_reservations(&self, before: i64, limit: i64) -> StoreResult<Vec<Recording>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORDING_COLS} FROM recordings WHERE visible = 0 AND date_created < $1 \
             ORDER BY date_created LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recording_from).collect()
    }

    async fn drop_reservation(&self, sid: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM recordings WHERE sid = $1 AND visible = 0")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn object_in_use(&self, object_key: &str) -> StoreResult<bool> {
        // Voice recordings, video track recordings, compositions, transcripts and operator results
        // own objects (a PII result's redacted view sits beside it under `{object_key}-redacted`).
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM recordings WHERE object_key = $1) \
             + (SELECT COUNT(*) FROM track_recordings WHERE object_key = $1) \
             + (SELECT COUNT(*) FROM compositions WHERE object_key = $1) \
             + (SELECT COUNT(*) FROM transcripts WHERE object_key = $1 OR log_object_key = $1 \
                OR redacted_object_key = $1 OR redacted_media_key = $1) \
             + (SELECT COUNT(*) FROM operator_results WHERE object_key = $1 OR log_object_key = $1 \
                OR object_key || '-redacted' = $1) AS n",
        )
        .bind(object_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    async fn insert_notification(&self, n: &Notification) -> StoreResult<()> {
        insert_notification(&self.pool, n).await
    }

    async fn notification(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<Notification>> {
        let row = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(notification_from).transpose()
    }

    async fn list_notifications(
        &self,
        account_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Notification>> {
        let mut sql =
            format!("SELECT {NOTIFICATION_COLS} FROM notifications WHERE account_sid = $1");
        newest_first_page(&mut sql, after, 3);
        let mut q = sqlx::query(&sql).bind(account_sid).bind(limit);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(notification_from)
            .collect()
    }
}
