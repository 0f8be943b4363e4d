//! Room participants on SQL (`room_participants`). Written on the shared pool: a participant
//! row changes twice in its life, so the ingest path's group commit is not needed.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{b, checked, flag, newest_first_page};
use crate::meta::{ParticipantStore, StoreResult};
use crate::model::Cursor;
use crate::model::participants::{
    Participant, ParticipantFilter, ParticipantStatus, PublishedTrack, PublishedTrackKind,
    SubscribedTrack,
};

const PARTICIPANT_COLS: &str = "sid, account_sid, room_sid, identity, status, start_time, end_time, \
     duration, date_created, date_updated";

const TRACK_COLS: &str =
    "sid, account_sid, room_sid, participant_sid, kind, name, enabled, date_created, date_updated";

fn track_from(row: &AnyRow) -> StoreResult<PublishedTrack> {
    Ok(PublishedTrack {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        participant_sid: row.try_get("participant_sid")?,
        kind: checked::<PublishedTrackKind>(row, "room_published_tracks", "kind")?,
        name: row.try_get("name")?,
        enabled: flag(row, "enabled")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

const SUBSCRIBED_COLS: &str = "sid, account_sid, room_sid, participant_sid, publisher_sid, kind, \
     name, enabled, date_created, date_updated";

fn subscribed_from(row: &AnyRow) -> StoreResult<SubscribedTrack> {
    Ok(SubscribedTrack {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        participant_sid: row.try_get("participant_sid")?,
        publisher_sid: row.try_get("publisher_sid")?,
        kind: checked::<PublishedTrackKind>(row, "room_subscribed_tracks", "kind")?,
        name: row.try_get("name")?,
        enabled: flag(row, "enabled")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

fn participant_from(row: &AnyRow) -> StoreResult<Participant> {
    Ok(Participant {
        sid: row.try_get("sid")?,
        account_sid: row.try_get("account_sid")?,
        room_sid: row.try_get("room_sid")?,
        identity: row.try_get("identity")?,
        status: checked::<ParticipantStatus>(row, "room_participants", "status")?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        duration: row.try_get("duration")?,
        date_created: row.try_get("date_created")?,
        date_updated: row.try_get("date_updated")?,
    })
}

#[async_trait]
impl ParticipantStore for SqlStore {
    async fn insert_participant(&self, p: &Participant) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO room_participants ({PARTICIPANT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (sid) DO NOTHING"
        ))
        .bind(&p.sid)
        .bind(&p.account_sid)
        .bind(&p.room_sid)
        .bind(&p.identity)
        .bind(&p.status)
        .bind(p.start_time)
        .bind(p.end_time)
        .bind(p.duration)
        .bind(p.date_created)
        .bind(p.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn disconnect_participant(
        &self,
        account_sid: &str,
        room_sid: &str,
        sid: &str,
        now: i64,
    ) -> StoreResult<Option<Participant>> {
        // Only a connected row changes, so the first report of a departure sets its time and
        // later ones (the REST kick, then the worker's event) leave it alone.
        sqlx::query(
            "UPDATE room_participants SET status = 'disconnected', end_time = $4, \
             duration = ($4 - start_time) / 1000000, date_updated = $4 \
             WHERE account_sid = $1 AND room_sid = $2 AND sid = $3 AND status = 'connected'",
        )
        .bind(account_sid)
        .bind(room_sid)
        .bind(sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.participant(account_sid, room_sid, sid).await
    }

    async fn disconnect_room_participants(
        &self,
        account_sid: &str,
        room_sid: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE room_participants SET status = 'disconnected', end_time = $3, \
             duration = ($3 - start_time) / 1000000, date_updated = $3 \
             WHERE account_sid = $1 AND room_sid = $2 AND status = 'connected'",
        )
        .bind(account_sid)
        .bind(room_sid)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn participant(
        &self,
        account_sid: &str,
        room_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<Participant>> {
        let row = sqlx::query(&format!(
            "SELECT {PARTICIPANT_COLS} FROM room_participants \
             WHERE account_sid = $1 AND room_sid = $2 AND sid = $3"
        ))
        .bind(account_sid)
        .bind(room_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(participant_from).transpose()
    }

    async fn participant_by_identity(
        &self,
        account_sid: &str,
        room_sid: &str,
        identity: &str,
    ) -> StoreResult<Option<Participant>> {
        let row = sqlx::query(&format!(
            "SELECT {PARTICIPANT_COLS} FROM room_participants \
             WHERE account_sid = $1 AND room_sid = $2 AND identity = $3 \
             ORDER BY CASE WHEN status = 'connected' THEN 0 ELSE 1 END, date_created DESC, sid DESC \
             LIMIT 1"
        ))
        .bind(account_sid)
        .bind(room_sid)
        .bind(identity)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(participant_from).transpose()
    }

    async fn list_participants(
        &self,
        account_sid: &str,
        room_sid: &str,
        filter: &ParticipantFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<Participant>> {
        let mut sql = format!(
            "SELECT {PARTICIPANT_COLS} FROM room_participants WHERE account_sid = $1 \
             AND room_sid = $3 AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR identity = $5) \
             AND ($6 IS NULL OR date_created >= $6) AND ($7 IS NULL OR date_created <= $7)"
        );
        newest_first_page(&mut sql, after, 8);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(room_sid)
            .bind(&filter.status)
            .bind(&filter.identity)
            .bind(filter.created_after)
            .bind(filter.created_before);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(participant_from)
            .collect()
    }

    async fn insert_published_track(&self, t: &PublishedTrack) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO room_published_tracks ({TRACK_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sid) DO NOTHING"
        ))
        .bind(&t.sid)
        .bind(&t.account_sid)
        .bind(&t.room_sid)
        .bind(&t.participant_sid)
        .bind(&t.kind)
        .bind(&t.name)
        .bind(b(t.enabled))
        .bind(t.date_created)
        .bind(t.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn remove_published_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        participant_sid: Option<&str>,
        track_sid: Option<&str>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM room_published_tracks WHERE account_sid = $1 AND room_sid = $2 \
             AND ($3 IS NULL OR participant_sid = $3) AND ($4 IS NULL OR sid = $4)",
        )
        .bind(account_sid)
        .bind(room_sid)
        .bind(participant_sid)
        .bind(track_sid)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn published_track(
        &self,
        account_sid: &str,
        room_sid: &str,
        participant_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<PublishedTrack>> {
        let row = sqlx::query(&format!(
            "SELECT {TRACK_COLS} FROM room_published_tracks \
             WHERE account_sid = $1 AND room_sid = $2 AND participant_sid = $3 AND sid = $4"
        ))
        .bind(account_sid)
        .bind(room_sid)
        .bind(participant_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(track_from).transpose()
    }

    async fn list_published_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        participant_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<PublishedTrack>> {
        let mut sql = format!(
            "SELECT {TRACK_COLS} FROM room_published_tracks WHERE account_sid = $1 \
             AND room_sid = $3 AND participant_sid = $4"
        );
        newest_first_page(&mut sql, after, 5);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(room_sid)
            .bind(participant_sid);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(track_from)
            .collect()
    }

    async fn insert_subscribed_track(&self, t: &SubscribedTrack) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO room_subscribed_tracks ({SUBSCRIBED_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (participant_sid, sid) DO NOTHING"
        ))
        .bind(&t.sid)
        .bind(&t.account_sid)
        .bind(&t.room_sid)
        .bind(&t.participant_sid)
        .bind(&t.publisher_sid)
        .bind(&t.kind)
        .bind(&t.name)
        .bind(b(t.enabled))
        .bind(t.date_created)
        .bind(t.date_updated)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn remove_subscribed_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        subscriber_sid: Option<&str>,
        publisher_sid: Option<&str>,
        track_sid: Option<&str>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM room_subscribed_tracks WHERE account_sid = $1 AND room_sid = $2 \
             AND ($3 IS NULL OR participant_sid = $3) AND ($4 IS NULL OR publisher_sid = $4) \
             AND ($5 IS NULL OR sid = $5)",
        )
        .bind(account_sid)
        .bind(room_sid)
        .bind(subscriber_sid)
        .bind(publisher_sid)
        .bind(track_sid)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn subscribed_track(
        &self,
        account_sid: &str,
        room_sid: &str,
        subscriber_sid: &str,
        sid: &str,
    ) -> StoreResult<Option<SubscribedTrack>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBED_COLS} FROM room_subscribed_tracks \
             WHERE account_sid = $1 AND room_sid = $2 AND participant_sid = $3 AND sid = $4"
        ))
        .bind(account_sid)
        .bind(room_sid)
        .bind(subscriber_sid)
        .bind(sid)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(subscribed_from).transpose()
    }

    async fn list_subscribed_tracks(
        &self,
        account_sid: &str,
        room_sid: &str,
        subscriber_sid: &str,
        after: Option<&Cursor>,
        limit: i64,
    ) -> StoreResult<Vec<SubscribedTrack>> {
        let mut sql = format!(
            "SELECT {SUBSCRIBED_COLS} FROM room_subscribed_tracks WHERE account_sid = $1 \
             AND room_sid = $3 AND participant_sid = $4"
        );
        newest_first_page(&mut sql, after, 5);
        let mut q = sqlx::query(&sql)
            .bind(account_sid)
            .bind(limit)
            .bind(room_sid)
            .bind(subscriber_sid);
        if let Some(c) = after {
            q = q.bind(c.date_created).bind(&c.sid);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(subscribed_from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(account: &str, room: &str, sid: &str, identity: &str, at: i64) -> Participant {
        Participant {
            sid: sid.to_owned(),
            account_sid: account.to_owned(),
            room_sid: room.to_owned(),
            identity: identity.to_owned(),
            status: "connected".to_owned(),
            start_time: at,
            end_time: None,
            duration: None,
            date_created: at,
            date_updated: at,
        }
    }

    /// SQLite in a fresh directory, and a fresh PostgreSQL database too when
    /// `MEDIASEAL_SCALE_DATABASE` names a server (as `sql::tests` does).
    async fn stores() -> (Vec<SqlStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut out = vec![
            SqlStore::open_sqlite(&dir.path().join("meta.db"))
                .await
                .unwrap(),
        ];
        if let Ok(url) = std::env::var("MEDIASEAL_SCALE_DATABASE")
            && !url.is_empty()
        {
            let admin = SqlStore::connect(&url).await.unwrap();
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let db = format!("participants_test_{nanos:x}");
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(admin.pool())
                .await
                .unwrap();
            let (base, _) = url.rsplit_once('/').unwrap();
            out.push(SqlStore::connect(&format!("{base}/{db}")).await.unwrap());
        }
        (out, dir)
    }

    #[tokio::test]
    async fn participants_connect_disconnect_and_stay_in_their_room_and_account() {
        let (stores, _dir) = stores().await;
        for s in &stores {
            let a = connected("ACa", "RMa", "PA1", "alice", 1_000_000);
            s.insert_participant(&a).await.unwrap();
            // A repeat (snapshot, then event) changes nothing.
            s.insert_participant(&a).await.unwrap();
            s.insert_participant(&connected("ACa", "RMa", "PA2", "bob", 2_000_000))
                .await
                .unwrap();
            s.insert_participant(&connected("ACb", "RMb", "PA3", "alice", 3_000_000))
                .await
                .unwrap();

            assert_eq!(s.participant("ACa", "RMa", "PA1").await.unwrap(), Some(a));
            assert_eq!(s.participant("ACb", "RMa", "PA1").await.unwrap(), None);
            assert_eq!(s.participant("ACa", "RMb", "PA1").await.unwrap(), None);

            let gone = s
                .disconnect_participant("ACa", "RMa", "PA1", 8_500_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(gone.status, "disconnected");
            assert_eq!(gone.end_time, Some(8_500_000));
            assert_eq!(gone.duration, Some(7));
            // A later report keeps the first departure.
            let again = s
                .disconnect_participant("ACa", "RMa", "PA1", 20_000_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again, gone);
            assert!(
                s.disconnect_participant("ACb", "RMa", "PA2", 9_000_000)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                s.participant("ACa", "RMa", "PA2")
                    .await
                    .unwrap()
                    .unwrap()
                    .status,
                "connected",
                "another account cannot disconnect a participant"
            );

            let all = s
                .list_participants("ACa", "RMa", &ParticipantFilter::default(), None, 10)
                .await
                .unwrap();
            let sids: Vec<&str> = all.iter().map(|p| p.sid.as_str()).collect();
            assert_eq!(sids, ["PA2", "PA1"], "newest first, own room only");
            let filter = ParticipantFilter {
                status: Some("connected".to_owned()),
                ..ParticipantFilter::default()
            };
            let live = s
                .list_participants("ACa", "RMa", &filter, None, 10)
                .await
                .unwrap();
            assert_eq!(live.len(), 1);
            assert_eq!(live[0].sid, "PA2");
            let filter = ParticipantFilter {
                identity: Some("alice".to_owned()),
                created_before: Some(1_500_000),
                ..ParticipantFilter::default()
            };
            let alice = s
                .list_participants("ACa", "RMa", &filter, None, 10)
                .await
                .unwrap();
            assert_eq!(alice.len(), 1);
            assert_eq!(alice[0].sid, "PA1");
            let page2 = s
                .list_participants(
                    "ACa",
                    "RMa",
                    &ParticipantFilter::default(),
                    Some(&Cursor {
                        date_created: 2_000_000,
                        sid: "PA2".to_owned(),
                    }),
                    10,
                )
                .await
                .unwrap();
            assert_eq!(page2.len(), 1);
            assert_eq!(page2[0].sid, "PA1");
        }
    }

    #[tokio::test]
    async fn identity_finds_the_connected_participant_and_room_end_closes_everyone() {
        let (stores, _dir) = stores().await;
        for s in &stores {
            s.insert_participant(&connected("ACa", "RMa", "PA1", "alice", 1_000_000))
                .await
                .unwrap();
            s.disconnect_participant("ACa", "RMa", "PA1", 2_000_000)
                .await
                .unwrap();
            s.insert_participant(&connected("ACa", "RMa", "PA0", "alice", 3_000_000))
                .await
                .unwrap();
            s.insert_participant(&connected("ACa", "RMa", "PA5", "bob", 3_000_000))
                .await
                .unwrap();
            s.insert_participant(&connected("ACa", "RMz", "PA9", "carol", 3_000_000))
                .await
                .unwrap();
            let alice = s
                .participant_by_identity("ACa", "RMa", "alice")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(alice.sid, "PA0", "the connected one, not the older row");
            assert!(
                s.participant_by_identity("ACb", "RMa", "alice")
                    .await
                    .unwrap()
                    .is_none()
            );

            assert_eq!(
                s.disconnect_room_participants("ACa", "RMa", 13_000_000)
                    .await
                    .unwrap(),
                2
            );
            let bob = s.participant("ACa", "RMa", "PA5").await.unwrap().unwrap();
            assert_eq!(bob.status, "disconnected");
            assert_eq!(bob.duration, Some(10));
            let carol = s.participant("ACa", "RMz", "PA9").await.unwrap().unwrap();
            assert_eq!(carol.status, "connected", "another room is untouched");
            let first = s.participant("ACa", "RMa", "PA1").await.unwrap().unwrap();
            assert_eq!(
                first.end_time,
                Some(2_000_000),
                "a closed row keeps its end"
            );
        }
    }

    fn track(account: &str, room: &str, participant: &str, sid: &str, at: i64) -> PublishedTrack {
        PublishedTrack {
            sid: sid.to_owned(),
            account_sid: account.to_owned(),
            room_sid: room.to_owned(),
            participant_sid: participant.to_owned(),
            kind: "audio".to_owned(),
            name: format!("mic-{sid}"),
            enabled: true,
            date_created: at,
            date_updated: at,
        }
    }

    #[tokio::test]
    async fn published_tracks_list_per_participant_and_go_when_unpublished() {
        let (stores, _dir) = stores().await;
        for s in &stores {
            let t1 = track("ACa", "RMa", "PA1", "MT1", 1);
            s.insert_published_track(&t1).await.unwrap();
            s.insert_published_track(&t1).await.unwrap();
            s.insert_published_track(&track("ACa", "RMa", "PA1", "MT2", 2))
                .await
                .unwrap();
            s.insert_published_track(&track("ACa", "RMa", "PA2", "MT3", 3))
                .await
                .unwrap();
            s.insert_published_track(&track("ACb", "RMb", "PA9", "MT9", 3))
                .await
                .unwrap();
            let list = |p: &'static str| {
                let s = s.clone();
                async move {
                    s.list_published_tracks("ACa", "RMa", p, None, 10)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|t| t.sid)
                        .collect::<Vec<_>>()
                }
            };
            assert_eq!(list("PA1").await, ["MT2", "MT1"]);
            assert_eq!(
                s.published_track("ACa", "RMa", "PA1", "MT1").await.unwrap(),
                Some(t1)
            );
            assert!(
                s.published_track("ACb", "RMa", "PA1", "MT1")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                s.published_track("ACa", "RMa", "PA2", "MT1")
                    .await
                    .unwrap()
                    .is_none()
            );
            let n = s
                .remove_published_tracks("ACa", "RMa", None, Some("MT2"))
                .await
                .unwrap();
            assert_eq!(n, 1);
            assert_eq!(list("PA1").await, ["MT1"]);
            let n = s
                .remove_published_tracks("ACa", "RMa", Some("PA1"), None)
                .await
                .unwrap();
            assert_eq!(n, 1);
            assert!(list("PA1").await.is_empty());
            assert_eq!(list("PA2").await, ["MT3"]);
            s.remove_published_tracks("ACa", "RMa", None, None)
                .await
                .unwrap();
            assert!(list("PA2").await.is_empty());
            assert_eq!(
                s.list_published_tracks("ACb", "RMb", "PA9", None, 10)
                    .await
                    .unwrap()
                    .len(),
                1,
                "another account's room is untouched"
            );
        }
    }
    fn subscribed(
        room: &str,
        subscriber: &str,
        publisher: &str,
        sid: &str,
        at: i64,
    ) -> SubscribedTrack {
        SubscribedTrack {
            sid: sid.to_owned(),
            account_sid: "ACa".to_owned(),
            room_sid: room.to_owned(),
            participant_sid: subscriber.to_owned(),
            publisher_sid: publisher.to_owned(),
            kind: "video".to_owned(),
            name: format!("cam-{sid}"),
            enabled: true,
            date_created: at,
            date_updated: at,
        }
    }

    #[tokio::test]
    async fn subscribed_tracks_list_per_subscriber_and_go_with_either_participant() {
        let (stores, _dir) = stores().await;
        for s in &stores {
            // PA1 and PA2 receive each other's tracks; PA3 receives both.
            let one = subscribed("RMa", "PA2", "PA1", "MT1", 1);
            for t in [
                one.clone(),
                one.clone(),
                subscribed("RMa", "PA3", "PA1", "MT1", 2),
                subscribed("RMa", "PA1", "PA2", "MT2", 3),
                subscribed("RMa", "PA3", "PA2", "MT2", 4),
                subscribed("RMa", "PA3", "PA2", "MT3", 5),
                subscribed("RMb", "PA8", "PA9", "MT9", 5),
            ] {
                s.insert_subscribed_track(&t).await.unwrap();
            }
            let list = |p: &'static str| {
                let s = s.clone();
                async move {
                    s.list_subscribed_tracks("ACa", "RMa", p, None, 10)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|t| t.sid)
                        .collect::<Vec<_>>()
                }
            };
            assert_eq!(list("PA3").await, ["MT3", "MT2", "MT1"]);
            let page2 = s
                .list_subscribed_tracks(
                    "ACa",
                    "RMa",
                    "PA3",
                    Some(&Cursor {
                        date_created: 4,
                        sid: "MT2".to_owned(),
                    }),
                    10,
                )
                .await
                .unwrap();
            assert_eq!(page2.len(), 1);
            assert_eq!(page2[0].sid, "MT1");
            assert_eq!(
                s.subscribed_track("ACa", "RMa", "PA2", "MT1")
                    .await
                    .unwrap(),
                Some(one)
            );
            assert!(
                s.subscribed_track("ACb", "RMa", "PA2", "MT1")
                    .await
                    .unwrap()
                    .is_none(),
                "another account sees nothing"
            );
            assert!(
                s.subscribed_track("ACa", "RMa", "PA1", "MT1")
                    .await
                    .unwrap()
                    .is_none(),
                "the publisher does not receive its own track"
            );

            // One unsubscription takes one subscriber's row only.
            let n = s
                .remove_subscribed_tracks("ACa", "RMa", Some("PA3"), None, Some("MT3"))
                .await
                .unwrap();
            assert_eq!(n, 1);
            assert_eq!(list("PA3").await, ["MT2", "MT1"]);
            // The publisher PA1 leaves: nobody receives its track any more.
            let n = s
                .remove_subscribed_tracks("ACa", "RMa", None, Some("PA1"), None)
                .await
                .unwrap();
            assert_eq!(n, 2);
            assert_eq!(list("PA3").await, ["MT2"]);
            assert!(list("PA2").await.is_empty());
            assert_eq!(list("PA1").await, ["MT2"], "PA1's own subscription stays");
            // The room ends.
            s.remove_subscribed_tracks("ACa", "RMa", None, None, None)
                .await
                .unwrap();
            assert!(list("PA1").await.is_empty());
            assert!(list("PA3").await.is_empty());
            assert_eq!(
                s.list_subscribed_tracks("ACa", "RMb", "PA8", None, 10)
                    .await
                    .unwrap()
                    .len(),
                1,
                "another room is untouched"
            );
        }
    }
}
