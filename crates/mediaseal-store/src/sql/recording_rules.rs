//! Recording rules of group rooms on SQL (`room_recording_rules`).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use crate::meta::{RecordingRuleStore, StoreResult};
use crate::model::recording_rules::RoomRecordingRules;

const COLS: &str = "account_sid, room_sid, rules, date_created, date_updated";

fn rules_from(row: &AnyRow) -> StoreResult<RoomRecordingRules> {
    Ok(RoomRecordingRules {
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        rules: row.try_get("rules")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

#[async_trait]
impl RecordingRuleStore for SqlStore {
    async fn room_recording_rules(
        &self,
        account_sid: &str,
        room_sid: &str,
    ) -> StoreResult<Option<RoomRecordingRules>> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM room_recording_rules WHERE account_sid = $1 AND room_sid = $2"
        ))
        .bind(account_sid)
        .bind(room_sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(rules_from).transpose()
    }

    async fn put_room_recording_rules(
        &self,
        r: &RoomRecordingRules,
    ) -> StoreResult<RoomRecordingRules> {
        // The room SID is the key and belongs to one account: the update is scoped to it too.
        sqlx::query(&format!(
            "INSERT INTO room_recording_rules ({COLS}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (room_sid) DO UPDATE SET rules = excluded.rules, \
             date_updated = excluded.date_updated \
             WHERE room_recording_rules.account_sid = excluded.account_sid"
        ))
        .bind(&r.account_sid)
        .bind(&r.room_sid)
        .bind(&r.rules)
        .bind(r.date_created)
        .bind(r.date_updated)
        .execute(self.pool())
        .await?;
        Ok(self
            .room_recording_rules(&r.account_sid, &r.room_sid)
            .await?
            .unwrap_or_else(|| r.clone()))
    }
}
