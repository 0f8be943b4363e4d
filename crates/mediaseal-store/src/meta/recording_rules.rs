//! Recording rules of group rooms in the metadata store. Every lookup is scoped to an account.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::recording_rules::RoomRecordingRules;

/// The RecordingRules resource of video rooms.
#[async_trait]
pub trait RecordingRuleStore: Send + Sync {
    /// The rules a client set on the room; `None` if none were set.
    async fn room_recording_rules(
        &self,
        account_sid: &str,
        room_sid: &str,
    ) -> StoreResult<Option<RoomRecordingRules>>;
    /// Stores the room's rules, replacing earlier ones (whose `date_created` is kept); returns
    /// the stored row.
    async fn put_room_recording_rules(
        &self,
        rules: &RoomRecordingRules,
    ) -> StoreResult<RoomRecordingRules>;
}
