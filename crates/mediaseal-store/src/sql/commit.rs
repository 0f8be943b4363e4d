//! Group commit for the ingest path's writes.
//!
//! Every upload writes its row twice: a reservation before the object is written, and the
//! publication that makes it visible once the object is durable. Committed one by one, each
//! publication waits for its own log flush (SQLite's WAL fsync, PostgreSQL's WAL flush), and on
//! SQLite the concurrent writers also fight over the single write lock, losing in sleeps of the
//! busy handler. Instead, callers queue their writes here and one writer task commits whatever
//! has queued up in a single transaction: under load many publications share one flush; alone, a
//! write commits at once (there is no timer that waits for company).
//!
//! Guarantees, each caller's as if it had committed alone:
//! - A publication is durable before its future resolves: the batch holding it commits with
//!   `synchronous=FULL` on SQLite (the WAL is fsynced at commit) and with PostgreSQL's default
//!   synchronous commit. The reply is sent only after `COMMIT` returned.
//! - Every caller gets its own result. If a batch fails (one write breaks a constraint, the
//!   connection drops), nothing of it is committed, and each write is then retried alone, in
//!   order, so an error reaches only the caller whose write caused it.
//! - Order: writes commit in the order they were queued, so a publication queued after its
//!   reservation never lands before it.
//!
//! Reservations promise nothing to a client (the recording is invisible until published), so a
//! batch of reservations only is committed without waiting for the flush (`synchronous=NORMAL`
//! on SQLite, `synchronous_commit=off` on PostgreSQL). If a crash loses one, its object has no
//! row pointing at it, which the sweeper removes after `orphan_age` like any unreferenced
//! object. Any later durable commit flushes the log up to and including it anyway.

use sqlx::{AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::Dialect;
use super::outbox::insert_callback;
use super::video::upsert_track;
use super::voice::{insert_notification, upsert_recording};
use crate::error::StoreError;
use crate::meta::StoreResult;
use crate::model::video::TrackRecording;
use crate::model::{Callback, Notification, Recording};

/// At most this many writes share a transaction, which bounds how long the write lock is held.
const MAX_BATCH: usize = 128;
/// Writes waiting beyond this many make callers wait to queue (back-pressure, not failure).
const QUEUE_DEPTH: usize = 4096;

/// One write of the ingest path.
#[derive(Debug)]
pub(super) enum Write {
    /// An invisible voice recording row, before its object is written.
    ReserveRecording(Recording),
    /// The final state of a voice recording, with its webhooks and notifications.
    PublishRecording {
        recording: Recording,
        callbacks: Vec<Callback>,
        notifications: Vec<Notification>,
    },
    /// An invisible track recording row, before its object is written.
    ReserveTrack(TrackRecording),
    /// The final state of a track recording, with its webhooks.
    PublishTrack {
        recording: TrackRecording,
        callbacks: Vec<Callback>,
    },
}

impl Write {
    /// Publications are what a client is told about; reservations promise nothing.
    fn must_be_durable(&self) -> bool {
        matches!(
            self,
            Self::PublishRecording { .. } | Self::PublishTrack { .. }
        )
    }

    async fn apply(&self, conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
        match self {
            Self::ReserveRecording(r) => upsert_recording(&mut *conn, r).await,
            Self::PublishRecording {
                recording,
                callbacks,
                notifications,
            } => {
                upsert_recording(&mut *conn, recording).await?;
                for c in callbacks {
                    insert_callback(&mut *conn, c).await?;
                }
                for n in notifications {
                    insert_notification(&mut *conn, n).await?;
                }
                Ok(())
            }
            Self::ReserveTrack(r) => upsert_track(&mut *conn, r).await,
            Self::PublishTrack {
                recording,
                callbacks,
            } => {
                upsert_track(&mut *conn, recording).await?;
                for c in callbacks {
                    insert_callback(&mut *conn, c).await?;
                }
                Ok(())
            }
        }
    }
}

pub(super) struct Queued {
    pub(super) write: Write,
    pub(super) reply: oneshot::Sender<StoreResult<()>>,
}

/// Where batches are committed: a pool (of one connection on SQLite) and its dialect.
#[derive(Debug, Clone)]
pub(super) struct Committer {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
}

impl Committer {
    /// Commits `writes` in one transaction; nothing of them if any fails.
    async fn commit(&self, writes: &[&Write], durable: bool) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        if self.dialect == Dialect::Sqlite {
            // The writer's own connection: its setting is not seen by anyone else. With
            // `FULL`, SQLite fsyncs the WAL before COMMIT returns; that one fsync also covers
            // every earlier commit in the log.
            let sync = if durable {
                "PRAGMA synchronous=FULL"
            } else {
                "PRAGMA synchronous=NORMAL"
            };
            sqlx::query(sync).execute(&mut *conn).await?;
        }
        let mut tx = conn.begin().await?;
        if self.dialect == Dialect::Postgres && !durable {
            sqlx::query("SET LOCAL synchronous_commit TO OFF")
                .execute(&mut *tx)
                .await?;
        }
        for write in writes {
            write.apply(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Commits one batch and answers each caller.
    pub(super) async fn commit_batch(&self, batch: &mut Vec<Queued>) {
        let durable = batch.iter().any(|q| q.write.must_be_durable());
        let writes: Vec<&Write> = batch.iter().map(|q| &q.write).collect();
        let result = self.commit(&writes, durable).await;
        drop(writes);
        match result {
            Ok(()) => {
                for q in batch.drain(..) {
                    // A caller that went away still had its write committed; nobody to tell.
                    let _ = q.reply.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(q) = batch.pop() {
                    let _ = q.reply.send(Err(e));
                }
            }
            Err(e) => {
                // The whole transaction was rolled back: retry each write alone, in queue order,
                // so the error lands with the caller whose write caused it.
                tracing::debug!(writes = batch.len(), error = %e, "group commit failed; committing its writes one by one");
                for q in batch.drain(..) {
                    let durable = q.write.must_be_durable();
                    let one = self.commit(&[&q.write], durable).await;
                    let _ = q.reply.send(one);
                }
            }
        }
    }

    async fn run(self, mut queue: mpsc::Receiver<Queued>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Waits for the first write, then takes everything that queued up meanwhile (while the
        // previous batch was committing): the batch grows with the load, with no added delay.
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.commit_batch(&mut batch).await;
        }
    }
}

/// The handle callers queue writes through. Cloning shares the one writer task, which ends when
/// the last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct CommitQueue {
    sender: mpsc::Sender<Queued>,
    /// Used directly when the writer task is gone (its runtime shut down).
    fallback: Committer,
}

impl CommitQueue {
    /// Starts the writer task on the current Tokio runtime.
    pub(super) fn start(pool: AnyPool, dialect: Dialect) -> Self {
        let committer = Committer { pool, dialect };
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(committer.clone().run(receiver));
        Self {
            sender,
            fallback: committer,
        }
    }

    /// Queues `write` and waits until it is committed (durably, for a publication) or failed.
    pub(super) async fn submit(&self, write: Write) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        match self.sender.send(Queued { write, reply }).await {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                // The writer task stopped with the write in hand (its runtime is shutting down):
                // whether it committed is unknown, so say so rather than retry and duplicate.
                Err(StoreError::Database(sqlx::Error::WorkerCrashed))
            }),
            Err(mpsc::error::SendError(queued)) => {
                // Nothing was queued (the runtime that ran the writer is gone): commit here.
                let durable = queued.write.must_be_durable();
                self.fallback.commit(&[&queued.write], durable).await
            }
        }
    }
}
