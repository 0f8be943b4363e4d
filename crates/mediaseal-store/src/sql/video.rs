//! Video metadata on SQL: settings, rooms, track recordings, compositions (the job queue, leased
//! with `FOR UPDATE SKIP LOCKED` on PostgreSQL) and composition hooks.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::commit::Write;
use super::outbox::insert_callback;
use super::rows::{b, checked, flag, is_unique_violation, newest_first_page, opt_str, spelled};
use crate::meta::{StoreResult, VideoStore};
use crate::model::video::{
    Composition, CompositionFilter, CompositionFormat, CompositionHook, CompositionStatus,
    ContainerFormat, HookFilter, MediaType, Room, RoomCompletion, RoomFilter, RoomStatus, RoomType,
    SettingsKind, TrackRecording, TrackRecordingFilter, TrackRecordingStatus, VideoSettings,
};
use crate::model::{Callback, Cursor, HttpMethod, Sealing};

const SETTINGS_COLS: &str = "account_sid, kind, friendly_name, encryption_enabled, encryption_key_sid, \
     aws_storage_enabled, aws_s3_url, aws_credentials_sid, date_created, date_updated";
const ROOM_COLS: &str = "sid, account_sid, unique_name, room_type, status, status_callback, status_callback_method, \
     max_participants, record_participants_on_connect, audio_only, media_region, date_created, date_updated, end_time, \
     empty_room_timeout, unused_room_timeout, node";
const TRACK_COLS: &str = "sid, account_sid, room_sid, participant_sid, source_sid, track_name, media_type, codec, \
     container_format, offset_ms, duration_ms, status, sealing, encryption_key_sid, object_key, sealed_size, plain_size, \
     status_callback, status_callback_method, visible, deleted, date_created, date_updated, date_deleted";
const COMPOSITION_COLS: &str = "sid, account_sid, room_sid, hook_sid, status, audio_sources, audio_sources_excluded, \
     video_layout, resolution, format, trim_media, status_callback, status_callback_method, seal_key_sid, sealing, \
     object_key, sealed_size, plain_size, bitrate, duration, error_code, error_message, attempts, lease_owner, \
     lease_until, deleted, date_created, date_updated, date_completed, date_deleted";
const HOOK_COLS: &str = "sid, account_sid, friendly_name, enabled, audio_sources, audio_sources_excluded, video_layout, \
     resolution, format, trim_media, status_callback, status_callback_method, date_created, date_updated";

fn settings_from(row: &AnyRow) -> StoreResult<VideoSettings> {
    Ok(VideoSettings {
        account_sid: row.try_get("account_sid")?,
        kind: spelled::<SettingsKind>(row, "video_settings", "kind")?,
        friendly_name: opt_str(row, "friendly_name")?,
        encryption_enabled: flag(row, "encryption_enabled")?,
        encryption_key_sid: opt_str(row, "encryption_key_sid")?,
        aws_storage_enabled: flag(row, "aws_storage_enabled")?,
        aws_s3_url: opt_str(row, "aws_s3_url")?,
        aws_credentials_sid: opt_str(row, "aws_credentials_sid")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn room_from(row: &AnyRow) -> StoreResult<Room> {
    Ok(Room {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        unique_name: row.try_get("unique_name")?,
        room_type: checked::<RoomType>(row, "rooms", "room_type")?,
        status: checked::<RoomStatus>(row, "rooms", "status")?,
        status_callback: opt_str(row, "status_callback")?,
        status_callback_method: checked::<HttpMethod>(row, "rooms", "status_callback_method")?,
        max_participants: row.try_get("max_participants")?,
        record_participants_on_connect: flag(row, "record_participants_on_connect")?,
        audio_only: flag(row, "audio_only")?,
        media_region: opt_str(row, "media_region")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        end_time: row.try_get("end_time")?,
        empty_room_timeout: row.try_get("empty_room_timeout")?,
        unused_room_timeout: row.try_get("unused_room_timeout")?,
        node: opt_str(row, "node")?,
    })
}

fn track_from(row: &AnyRow) -> StoreResult<TrackRecording> {
    Ok(TrackRecording {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        participant_sid: row.try_get("participant_sid")?,
        source_sid: row.try_get("source_sid")?,
        track_name: row.try_get("track_name")?,
        media_type: checked::<MediaType>(row, "track_recordings", "media_type")?,
        codec: row.try_get("codec")?,
        container_format: checked::<ContainerFormat>(row, "track_recordings", "container_format")?,
        offset_ms: row.try_get("offset_ms")?,
        duration_ms: row.try_get("duration_ms")?,
        status: checked::<TrackRecordingStatus>(row, "track_recordings", "status")?,
        sealing: spelled::<Sealing>(row, "track_recordings", "sealing")?,
        encryption_key_sid: opt_str(row, "encryption_key_sid")?,
        object_key: opt_str(row, "object_key")?,
        sealed_size: row.try_get("sealed_size")?,
        plain_size: row.try_get("plain_size")?,
        status_callback: opt_str(row, "status_callback")?,
        status_callback_method: checked::<HttpMethod>(
            row,
            "track_recordings",
            "status_callback_method",
        )?,
        visible: flag(row, "visible")?,
        deleted: flag(row, "deleted")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        date_deleted: row.try_get("date_deleted")?,
    })
}

fn composition_from(row: &AnyRow) -> StoreResult<Composition> {
    Ok(Composition {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        hook_sid: opt_str(row, "hook_sid")?,
        status: checked::<CompositionStatus>(row, "compositions", "status")?,
        audio_sources: row.try_get("audio_sources")?,
        audio_sources_excluded: row.try_get("audio_sources_excluded")?,
        video_layout: row.try_get("video_layout")?,
        resolution: row.try_get("resolution")?,
        format: checked::<CompositionFormat>(row, "compositions", "format")?,
        trim: flag(row, "trim_media")?,
        status_callback: opt_str(row, "status_callback")?,
        status_callback_method: checked::<HttpMethod>(
            row,
            "compositions",
            "status_callback_method",
        )?,
        seal_key_sid: opt_str(row, "seal_key_sid")?,
        sealing: spelled::<Sealing>(row, "compositions", "sealing")?,
        object_key: opt_str(row, "object_key")?,
        sealed_size: row.try_get("sealed_size")?,
        plain_size: row.try_get("plain_size")?,
        bitrate: row.try_get("bitrate")?,
        duration: row.try_get("duration")?,
        error_code: row.try_get("error_code")?,
        error_message: opt_str(row, "error_message")?,
        attempts: row.try_get("attempts")?,
        lease_owner: opt_str(row, "lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        deleted: flag(row, "deleted")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
        date_completed: row.try_get("date_completed")?,
        date_deleted: row.try_get("date_deleted")?,
    })
}

fn hook_from(row: &AnyRow) -> StoreResult<CompositionHook> {
    Ok(CompositionHook {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        friendly_name: row.try_get("friendly_name")?,
        enabled: flag(row, "enabled")?,
        audio_sources: row.try_get("audio_sources")?,
        audio_sources_excluded: row.try_get("audio_sources_excluded")?,
        video_layout: row.try_get("video_layout")?,
        resolution: row.try_get("resolution")?,
        format: checked::<CompositionFormat>(row, "composition_hooks", "format")?,
        trim: flag(row, "trim_media")?,
        status_callback: opt_str(row, "status_callback")?,
        status_callback_method: checked::<HttpMethod>(
            row,
            "composition_hooks",
            "status_callback_method",
        )?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

pub(super) async fn upsert_track<'e, E>(executor: E, r: &TrackRecording) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO track_recordings ({TRACK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
         ON CONFLICT (sid) DO UPDATE SET duration_ms = excluded.duration_ms, status = excluded.status, \
         sealing = excluded.sealing, encryption_key_sid = excluded.encryption_key_sid, object_key = excluded.object_key, \
         sealed_size = excluded.sealed_size, plain_size = excluded.plain_size, visible = excluded.visible, \
         deleted = excluded.deleted, date_updated = excluded.date_updated, date_deleted = excluded.date_deleted"
    ))
    .bind(&r.sid)
    .bind(&r.account_sid)
    .bind(&r.room_sid)
    .bind(&r.participant_sid)
    .bind(&r.source_sid)
    .bind(&r.track_name)
    .bind(&r.media_type)
    .bind(&r.codec)
    .bind(&r.container_format)
    .bind(r.offset_ms)
    .bind(r.duration_ms)
    .bind(&r.status)
    .bind(r.sealing.as_str())
    .bind(&r.encryption_key_sid)
    .bind(&r.object_key)
    .bind(r.sealed_size)
    .bind(r.plain_size)
    .bind(&r.status_callback)
    .bind(&r.status_callback_method)
    .bind(b(r.visible))
    .bind(b(r.deleted))
    .bind(r.date_created)
    .bind(r.date_updated)
    .bind(r.date_deleted)
    .execute(executor)
    .await?;
    Ok(())
}

async fn insert_composition_row<'e, E>(executor: E, c: &Composition) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO compositions ({COMPOSITION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)"
    ))
    .bind(&c.sid)
    .bind(&c.account_sid)
    .bind(&c.room_sid)
    .bind(&c.hook_sid)
    .bind(&c.status)
    .bind(&c.audio_sources)
    .bind(&c.audio_sources_excluded)
    .bind(&c.video_layout)
    .bind(&c.resolution)
    .bind(&c.format)
    .bind(b(c.trim))
    .bind(&c.status_callback)
    .bind(&c.status_callback_method)
    .bind(&c.seal_key_sid)
    .bind(c.sealing.as_str())
    .bind(&c.object_key)
    .bind(c.sealed_size)
    .bind(c.plain_size)
    .bind(c.bitrate)
    .bind(c.duration)
    .bind(c.error_code)
    .bind(&c.error_message)
    .bind(c.attempts)
    .bind(&c.lease_owner)
    .bind(c.lease_until)
    .bind(b(c.deleted))
    .bind(c.date_created)
    .bind(c.date_updated)
    .bind(c.date_completed)
    .bind(c.date_deleted)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl VideoStore for SqlStore {
    async fn video_settings(
        &self,
        account_sid: &str,
        kind: SettingsKind,
    ) -> StoreResult<Option<VideoSettings>> {
        let row = sqlx::query(&format!(
            "SELECT {SETTINGS_COLS} FROM video_settings WHERE account_sid = $1 AND kind = $2"
        ))
        .bind(account_sid)
        .bind(kind.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(settings_from).transpose()
    }

    async fn put_video_settings(&self, s: &VideoSettings) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO video_settings ({SETTINGS_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (account_sid, kind) DO UPDATE SET friendly_name = excluded.friendly_name, \
             encryption_enabled = excluded.encryption_enabled, encryption_key_sid = excluded.encryption_key_sid, \
             aws_storage_enabled = excluded.aws_storage_enabled, aws_s3_url = excluded.aws_s3_url, \
             aws_credentials_sid = excluded.aws_credentials_sid, date_updated = excluded.date_updated"
        ))
        .bind(&s.account_sid)
        .bind(s.kind.as_str())
        .bind(&s.friendly_name)
        .bind(b(s.encryption_enabled))
        .bind(&s.encryption_key_sid)
        .bind(b(s.aws_storage_enabled))
        .bind(&s.aws_s3_url)
        .bind(&s.aws_credentials_sid)
        .bind(s.date_created)
        .bind(s.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn insert_room(&self, r: &Room, callbacks: &[Callback]) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO rooms ({ROOM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&r.sid)
        .bind(&r.account_sid)
        .bind(&r.unique_name)
        .bind(&r.room_type)
        .bind(&r.status)
        .bind(&r.status_callback)
        .bind(&r.status_callback_method)
        .bind(r.max_participants)
        .bind(b(r.record_participants_on_connect))
        .bind(b(r.audio_only))
        .bind(&r.media_region)
        .bind(r.date_created)
        .bind(r.date_updated)
        .bind(r.end_time)
        .bind(r.empty_room_timeout)
        .bind(r.unused_room_timeout)
        .bind(&r.node)
        .execute(&mut *tx)
        .await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rooms_in_progress_on(&self, node: &str) -> StoreResult<Vec<Room>> {
        sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE node = $1 AND status = 'in-progress' \
             ORDER BY date_created, sid"
        ))
        .bind(node)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(room_from)
        .collect()
    }

    async fn room(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Room>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn room_by_name(
        &self,
        account_sid: &str,
        unique_name: &str,
    ) -> StoreResult<Option<Room>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND unique_name = $2 \
             ORDER BY CASE WHEN status = 'in-progress' THEN 0 ELSE 1 END, date_created DESC, sid DESC LIMIT 1"
        ))
        .bind(account_sid)
        .bind(unique_name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn list_rooms(
        &self,
        account_sid: &str,
        filter: &RoomFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Room>> {
        let mut sql = format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR unique_name = $4) AND ($5 IS NULL OR date_created >= $5) \
             AND ($6 IS NULL OR date_created <= $6)"
        );
        newest_first_page(&mut sql, after, 7);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.status)
            .bind(&filter.unique_name)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(room_from)
            .collect()
    }

    async fn complete_room(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
        callbacks: &[Callback],
        compositions: &[(Composition, Vec<Callback>)],
    ) -> StoreResult<Option<RoomCompletion>> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE rooms SET status = 'completed', end_time = $3, date_updated = $3 \
             WHERE account_sid = $1 AND sid = $2 AND status = 'in-progress'",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let transitioned = done.rows_affected() > 0;
        if transitioned {
            for c in callbacks {
                insert_callback(&mut *tx, c).await?;
            }
            for (composition, composition_callbacks) in compositions {
                insert_composition_row(&mut *tx, composition).await?;
                for c in composition_callbacks {
                    insert_callback(&mut *tx, c).await?;
                }
            }
        }
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row
            .as_ref()
            .map(room_from)
            .transpose()?
            .map(|room| RoomCompletion { room, transitioned }))
    }

    async fn fail_room(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
        callbacks: &[Callback],
    ) -> StoreResult<Option<RoomCompletion>> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE rooms SET status = 'failed', end_time = $3, date_updated = $3 \
             WHERE account_sid = $1 AND sid = $2 AND status = 'in-progress'",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let transitioned = done.rows_affected() > 0;
        if transitioned {
            for c in callbacks {
                insert_callback(&mut *tx, c).await?;
            }
        }
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row
            .as_ref()
            .map(room_from)
            .transpose()?
            .map(|room| RoomCompletion { room, transitioned }))
    }

    async fn reserve_track_recording(&self, recording: &TrackRecording) -> StoreResult<()> {
        self.commits
            .submit(Write::ReserveTrack(recording.clone()))
            .await
    }

    async fn publish_track_recording(
        &self,
        recording: &TrackRecording,
        callbacks: &[Callback],
    ) -> StoreResult<()> {
        self.commits
            .submit(Write::PublishTrack {
                recording: recording.clone(),
                callbacks: callbacks.to_vec(),
            })
            .await
    }

    async fn drop_track_reservation(&self, sid: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM track_recordings WHERE sid = $1 AND visible = 0")
            .bind(sid)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn stale_track_reservations(
        &self,
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<TrackRecording>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE visible = 0 AND date_created < $1 \
             ORDER BY date_created LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(track_from).collect()
    }

    async fn orphaned_track_recordings(
        &self,
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<TrackRecording>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE visible = 1 AND status = 'processing' \
             AND room_sid IN (SELECT sid FROM rooms WHERE status <> 'in-progress' AND end_time < $1) \
             ORDER BY date_created LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(track_from).collect()
    }

    async fn track_recording(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<TrackRecording>> {
        let row = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE account_sid = $1 AND sid = $2 AND visible = 1"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(track_from).transpose()
    }

    async fn list_track_recordings(
        &self,
        account_sid: &str,
        filter: &TrackRecordingFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<TrackRecording>> {
        let mut sql = format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE account_sid = $1 AND visible = 1 \
             AND ($3 IS NULL OR room_sid = $3) AND ($4 IS NULL OR status = $4) \
             AND ($5 IS NULL OR source_sid = $5) AND ($6 IS NULL OR media_type = $6) \
             AND ($7 IS NULL OR date_created >= $7) AND ($8 IS NULL OR date_created <= $8)"
        );
        let mut next = 9;
        if !filter.grouping_sids.is_empty() {
            let list: Vec<String> = (0..filter.grouping_sids.len())
                .map(|i| format!("${}", next + i))
                .collect();
            let list = list.join(", ");
            sql.push_str(&format!(
                " AND (room_sid IN ({list}) OR participant_sid IN ({list}))"
            ));
            next += filter.grouping_sids.len();
        }
        newest_first_page(&mut sql, after, next);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.room_sid)
            .bind(&filter.status)
            .bind(&filter.source_sid)
            .bind(&filter.media_type)
            .bind(filter.created_after)
            .bind(filter.created_before);
        for g in &filter.grouping_sids {
            q = q.bind(g);
        }
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(track_from)
            .collect()
    }

    async fn room_track_recordings(
        &self,
        account_sid: &str,
        room_sid: &str,
    ) -> StoreResult<Vec<TrackRecording>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM track_recordings WHERE account_sid = $1 AND room_sid = $2 AND visible = 1 \
             AND deleted = 0 ORDER BY date_created, sid"
        ))
        .bind(account_sid)
        .bind(room_sid)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(track_from).collect()
    }

    async fn delete_track_recording(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<TrackRecording>> {
        let Some(before) = self.track_recording(account_sid, sid).await? else {
            return Ok(None);
        };
        if before.deleted {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE track_recordings SET deleted = 1, status = 'deleted', date_deleted = $3, date_updated = $3, \
             object_key = NULL, sealing = 'none' WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(Some(before))
    }

    async fn insert_composition(
        &self,
        composition: &Composition,
        callbacks: &[Callback],
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        insert_composition_row(&mut *tx, composition).await?;
        for c in callbacks {
            insert_callback(&mut *tx, c).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn composition(&self, account_sid: &str, sid: &str) -> StoreResult<Option<Composition>> {
        let row = sqlx::query(&format!(
            "SELECT {COMPOSITION_COLS} FROM compositions WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(composition_from).transpose()
    }

    async fn list_compositions(
        &self,
        account_sid: &str,
        filter: &CompositionFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Composition>> {
        let mut sql = format!(
            "SELECT {COMPOSITION_COLS} FROM compositions WHERE account_sid = $1 AND ($3 IS NULL OR room_sid = $3) \
             AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR date_created >= $5) \
             AND ($6 IS NULL OR date_created <= $6)"
        );
        newest_first_page(&mut sql, after, 7);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(&filter.room_sid)
            .bind(&filter.status)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(composition_from)
            .collect()
    }

    async fn delete_composition(
        &self,
        account_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Composition>> {
        let Some(before) = self.composition(account_sid, sid).await? else {
            return Ok(None);
        };
        if before.deleted {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE compositions SET deleted = 1, status = 'deleted', date_deleted = $3, date_updated = $3, \
             object_key = NULL, sealing = 'none', lease_owner = NULL, lease_until = NULL \
             WHERE account_sid = $1 AND sid = $2 AND deleted = 0",
        )
        .bind(account_sid)
        .bind(sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(Some(before))
    }

    async fn claim_composition(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        max_per_account: i64,
    ) -> StoreResult<Option<Composition>> {
        // Fair across accounts rather than FIFO: the account with the fewest compositions
        // running (live leases, on any node), then the one served longest ago (its latest
        // claimed row's `date_updated`), then this node's reservations, then the oldest.
        let running = "(SELECT COUNT(*) FROM compositions r WHERE r.account_sid = c.account_sid \
             AND r.deleted = 0 AND r.status = 'processing' AND r.lease_until >= $3)";
        let sql = format!(
            "UPDATE compositions SET status = 'processing', lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1, date_updated = $3 WHERE sid IN (\
               SELECT c.sid FROM compositions c WHERE c.deleted = 0 AND (\
                 (c.status = 'enqueued' AND (c.lease_owner = $1 OR c.lease_until IS NULL OR c.lease_until < $3)) \
                 OR (c.status = 'processing' AND c.lease_until < $3)) \
               AND {running} < $4 \
               ORDER BY {running}, \
                 (SELECT COALESCE(MAX(s.date_updated), 0) FROM compositions s \
                  WHERE s.account_sid = c.account_sid AND s.attempts > 0), \
                 CASE WHEN c.lease_owner = $1 THEN 0 ELSE 1 END, c.date_created, c.sid LIMIT 1{}) \
             RETURNING {COMPOSITION_COLS}",
            self.skip_locked()
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(max_per_account)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(composition_from).transpose()
    }

    async fn renew_composition_lease(
        &self,
        sid: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE compositions SET lease_until = $3 WHERE sid = $1 AND lease_owner = $2 \
             AND status = 'processing' AND deleted = 0",
        )
        .bind(sid)
        .bind(owner)
        .bind(lease_until)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_composition(
        &self,
        c: &Composition,
        owner: &str,
        callbacks: &[Callback],
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE compositions SET status = $3, sealing = $4, object_key = $5, sealed_size = $6, plain_size = $7, \
             bitrate = $8, duration = $9, error_code = $10, error_message = $11, date_updated = $12, \
             date_completed = $13, lease_owner = NULL, lease_until = NULL \
             WHERE sid = $1 AND lease_owner = $2 AND status = 'processing' AND deleted = 0",
        )
        .bind(&c.sid)
        .bind(owner)
        .bind(&c.status)
        .bind(c.sealing.as_str())
        .bind(&c.object_key)
        .bind(c.sealed_size)
        .bind(c.plain_size)
        .bind(c.bitrate)
        .bind(c.duration)
        .bind(c.error_code)
        .bind(&c.error_message)
        .bind(c.date_updated)
        .bind(c.date_completed)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for cb in callbacks {
            insert_callback(&mut *tx, cb).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_hook(&self, h: &CompositionHook) -> StoreResult<bool> {
        let result = sqlx::query(&format!(
            "INSERT INTO composition_hooks ({HOOK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14)"
        ))
        .bind(&h.sid)
        .bind(&h.account_sid)
        .bind(&h.friendly_name)
        .bind(b(h.enabled))
        .bind(&h.audio_sources)
        .bind(&h.audio_sources_excluded)
        .bind(&h.video_layout)
        .bind(&h.resolution)
        .bind(&h.format)
        .bind(b(h.trim))
        .bind(&h.status_callback)
        .bind(&h.status_callback_method)
        .bind(h.date_created)
        .bind(h.date_updated)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn hook(&self, account_sid: &str, sid: &str) -> StoreResult<Option<CompositionHook>> {
        let row = sqlx::query(&format!(
            "SELECT {HOOK_COLS} FROM composition_hooks WHERE account_sid = $1 AND sid = $2"
        ))
        .bind(account_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(hook_from).transpose()
    }

    async fn list_hooks(
        &self,
        account_sid: &str,
        filter: &HookFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<CompositionHook>> {
        let mut sql = format!(
            "SELECT {HOOK_COLS} FROM composition_hooks WHERE account_sid = $1 AND ($3 IS NULL OR enabled = $3) \
             AND ($4 IS NULL OR friendly_name = $4) AND ($5 IS NULL OR date_created >= $5) \
             AND ($6 IS NULL OR date_created <= $6)"
        );
        newest_first_page(&mut sql, after, 7);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(filter.enabled.map(b))
            .bind(&filter.friendly_name)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(hook_from)
            .collect()
    }

    async fn update_hook(&self, h: &CompositionHook) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE composition_hooks SET friendly_name = $3, enabled = $4, audio_sources = $5, \
             audio_sources_excluded = $6, video_layout = $7, resolution = $8, format = $9, trim_media = $10, \
             status_callback = $11, status_callback_method = $12, date_updated = $13 \
             WHERE account_sid = $1 AND sid = $2",
        )
        .bind(&h.account_sid)
        .bind(&h.sid)
        .bind(&h.friendly_name)
        .bind(b(h.enabled))
        .bind(&h.audio_sources)
        .bind(&h.audio_sources_excluded)
        .bind(&h.video_layout)
        .bind(&h.resolution)
        .bind(&h.format)
        .bind(b(h.trim))
        .bind(&h.status_callback)
        .bind(&h.status_callback_method)
        .bind(h.date_updated)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_hook(&self, account_sid: &str, sid: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM composition_hooks WHERE account_sid = $1 AND sid = $2")
            .bind(account_sid)
            .bind(sid)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
