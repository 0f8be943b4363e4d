//! The recording ledger: the one lifecycle every stored product goes through.
//!
//! 1. **Reserve** a row that the API cannot see yet, naming the object key.
//! 2. **Seal** the product into a [`SealingSink`] on that key as it is produced.
//! 3. **Publish** the final row together with its callbacks and notifications in one
//!    transaction, or **abandon** it: the object is destroyed and the reservation dropped.
//!
//! A process that dies anywhere in between leaves an invisible row and, at worst, an object
//! nobody points at; the sweepers ([`crate::sweep`]) remove both once they are older than any
//! live upload could be. So a product is either fully published or gone: nothing half-written
//! survives.
//!
//! A product that customers may see while it is made (a room's track recording, `processing`
//! while the track is live) is **announced** between 1 and 2 ([`Pending::announce`]): the row,
//! in its in-flight state and without media, becomes visible with its "started" callbacks.
//! Its object is still only published in step 3; if it cannot be, the row is published as
//! failed without an object ([`Pending::destroy_object`], then
//! [`Services::publish_without_object`]), never with part of one.

use async_trait::async_trait;
use mediaseal_sink::{Seal, SealingSink, SinkError, Stored};
use mediaseal_store::model::{Callback, Notification, Recording, Sealing};
use mediaseal_store::video::TrackRecording;
use mediaseal_store::{MetadataStore, ObjectMeta, StoreError, StoreResult};

use crate::Services;

/// Why a ledger step failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealing sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// A kind of row that goes through the ledger.
#[async_trait]
pub trait Ledgered: Clone + Send + Sync + Sized + 'static {
    /// What it is called in logs.
    const KIND: &'static str;
    /// Its SID.
    fn sid(&self) -> &str;
    /// The key of its object.
    fn object_key(&self) -> Option<&str>;
    /// Stores the row, invisible to the API.
    async fn reserve(meta: &dyn MetadataStore, row: &Self) -> StoreResult<()>;
    /// Stores the final row (visible) with its callbacks and notifications, atomically.
    async fn publish(
        meta: &dyn MetadataStore,
        row: &Self,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> StoreResult<()>;
    /// Removes a reserved, never-published row.
    async fn drop_reservation(meta: &dyn MetadataStore, sid: &str) -> StoreResult<()>;
}

#[async_trait]
impl Ledgered for Recording {
    const KIND: &'static str = "recording";

    fn sid(&self) -> &str {
        &self.sid
    }

    fn object_key(&self) -> Option<&str> {
        self.object_key.as_deref()
    }

    async fn reserve(meta: &dyn MetadataStore, row: &Self) -> StoreResult<()> {
        meta.reserve_recording(row).await
    }

    async fn publish(
        meta: &dyn MetadataStore,
        row: &Self,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> StoreResult<()> {
        meta.publish_recording(row, callbacks, notifications).await
    }

    async fn drop_reservation(meta: &dyn MetadataStore, sid: &str) -> StoreResult<()> {
        meta.drop_reservation(sid).await
    }
}

#[async_trait]
impl Ledgered for TrackRecording {
    const KIND: &'static str = "track recording";

    fn sid(&self) -> &str {
        &self.sid
    }

    fn object_key(&self) -> Option<&str> {
        self.object_key.as_deref()
    }

    async fn reserve(meta: &dyn MetadataStore, row: &Self) -> StoreResult<()> {
        meta.reserve_track_recording(row).await
    }

    async fn publish(
        meta: &dyn MetadataStore,
        row: &Self,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> StoreResult<()> {
        if !notifications.is_empty() {
            // Video products raise no debugger notifications; a caller that made some has a bug.
            tracing::error!(recording = %row.sid, "notifications for a track recording were dropped");
        }
        meta.publish_track_recording(row, callbacks).await
    }

    async fn drop_reservation(meta: &dyn MetadataStore, sid: &str) -> StoreResult<()> {
        meta.drop_track_reservation(sid).await
    }
}

/// How a reservation's sink is opened: sealing here, or storing another process's ciphertext.
enum SinkOpening<'a> {
    Seal(&'a Seal),
    Elsewhere(Sealing),
}

/// A reserved row with its product being sealed.
///
/// Dropping it without [`publish`](Self::publish) or [`abandon`](Self::abandon) discards the
/// partial object at once and leaves the invisible row to the sweeper (or, inside a Tokio
/// runtime, drops it in the background).
pub struct Pending<R: Ledgered> {
    services: Services,
    row: R,
    sink: Option<SealingSink>,
    /// The object key once the sink stored it.
    stored_key: Option<String>,
    settled: bool,
    /// [`announce`](Self::announce)d: the row is visible, so it cannot just be dropped.
    announced: bool,
}

impl<R: Ledgered> core::fmt::Debug for Pending<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pending")
            .field("kind", &R::KIND)
            .field("sid", &self.row.sid())
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Step 1 and the start of step 2: reserves `row` and opens the sink on its object key.
    pub async fn reserve<R: Ledgered>(
        &self,
        row: R,
        seal: &Seal,
    ) -> Result<Pending<R>, LedgerError> {
        self.reserve_with(row, SinkOpening::Seal(seal)).await
    }

    /// Like [`reserve`](Self::reserve), for a product sealed by another process (a room
    /// worker): the sink takes its ciphertext ([`Pending::write_sealed`]).
    pub async fn reserve_sealed_elsewhere<R: Ledgered>(
        &self,
        row: R,
        sealing: Sealing,
    ) -> Result<Pending<R>, LedgerError> {
        self.reserve_with(row, SinkOpening::Elsewhere(sealing))
            .await
    }

    async fn reserve_with<R: Ledgered>(
        &self,
        row: R,
        opening: SinkOpening<'_>,
    ) -> Result<Pending<R>, LedgerError> {
        let key = row
            .object_key()
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{} {} has no object key", R::KIND, row.sid()))
            })?
            .to_owned();
        R::reserve(self.meta.as_ref(), &row).await?;
        let opened = match opening {
            SinkOpening::Seal(seal) => self.sinks.open(&key, seal).await,
            SinkOpening::Elsewhere(sealing) => {
                self.sinks.open_sealed_elsewhere(&key, sealing).await
            }
        };
        let sink = match opened {
            Ok(sink) => sink,
            Err(e) => {
                R::drop_reservation(self.meta.as_ref(), row.sid()).await?;
                return Err(e.into());
            }
        };
        Ok(Pending {
            services: self.clone(),
            row,
            sink: Some(sink),
            stored_key: None,
            settled: false,
            announced: false,
        })
    }

    /// Publishes a row that never had an object (refused before anything was stored), with
    /// its callbacks and notifications.
    pub async fn publish_without_object<R: Ledgered>(
        &self,
        row: &R,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> Result<(), LedgerError> {
        R::publish(self.meta.as_ref(), row, callbacks, notifications).await?;
        Ok(())
    }
}

impl<R: Ledgered> Pending<R> {
    /// The service layer this row is recorded in.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The row as it will be published.
    pub fn row(&self) -> &R {
        &self.row
    }

    /// The row, to fill in before publishing.
    pub fn row_mut(&mut self) -> &mut R {
        &mut self.row
    }

    /// The sink, until [`seal`](Self::seal) has run.
    pub fn sink(&mut self) -> Result<&mut SealingSink, SinkError> {
        self.sink.as_mut().ok_or(SinkError::Poisoned)
    }

    /// Writes plaintext into the sink.
    pub async fn write(&mut self, plain: &[u8]) -> Result<(), SinkError> {
        self.sink()?.write(plain).await
    }

    /// Finishes the sink: the object is durable (but nothing points at it until
    /// [`publish`](Self::publish)). On failure the partial object is already gone.
    pub async fn seal(&mut self) -> Result<Stored, SinkError> {
        let sink = self.sink.take().ok_or(SinkError::Poisoned)?;
        let stored = sink.finish().await?;
        self.stored_key = Some(stored.object_key.clone());
        Ok(stored)
    }

    /// Stores ciphertext sealed by another process (see
    /// [`Services::reserve_sealed_elsewhere`]).
    pub async fn write_sealed(&mut self, sealed: &[u8]) -> Result<(), SinkError> {
        self.sink()?.write_sealed(sealed).await
    }

    /// Finishes a product sealed elsewhere with its object headers: the object is durable
    /// (nothing points at it until [`publish`](Self::publish)). Returns the bytes stored.
    pub async fn seal_elsewhere(&mut self, meta: ObjectMeta) -> Result<u64, SinkError> {
        let sink = self.sink.take().ok_or(SinkError::Poisoned)?;
        let key = sink.object_key().to_owned();
        let sealed = sink.finish_sealed(meta).await?;
        self.stored_key = Some(key);
        Ok(sealed)
    }

    /// Makes the reserved row visible as it is now (the caller set its in-flight status and
    /// visibility) with `callbacks`, in one transaction, while its product is still being
    /// sealed. Nothing of the object is exposed: the row's status says it is not ready. From
    /// then on the row ends [`publish`](Self::publish)ed, or published as failed after
    /// [`destroy_object`](Self::destroy_object); [`abandon`](Self::abandon) would leave it
    /// visible in its in-flight state, so it refuses.
    pub async fn announce(&mut self, callbacks: &[Callback]) -> Result<(), LedgerError> {
        R::publish(self.services.meta.as_ref(), &self.row, callbacks, &[]).await?;
        self.announced = true;
        Ok(())
    }

    /// Whether [`announce`](Self::announce) made the row visible.
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// Step 3: publishes the row with `callbacks` and `notifications` in one transaction. If
    /// the store fails, the row stays invisible and the sweeper removes it and its object.
    pub async fn publish(
        mut self,
        callbacks: &[Callback],
        notifications: &[Notification],
    ) -> Result<R, LedgerError> {
        self.settled = true;
        if let Some(sink) = self.sink.take() {
            sink.abort().await;
        }
        R::publish(
            self.services.meta.as_ref(),
            &self.row,
            callbacks,
            notifications,
        )
        .await?;
        Ok(self.row.clone())
    }

    /// Destroys whatever was stored and the reservation: nothing of the product remains. An
    /// announced row is visible and is not dropped: its object is destroyed and the error says
    /// to publish it as failed instead.
    pub async fn abandon(mut self) -> Result<(), LedgerError> {
        if self.announced {
            let sid = self.row.sid().to_owned();
            self.destroy_object().await?;
            return Err(StoreError::Corrupt(format!(
                "{} {sid} was announced and cannot be dropped; publish it as failed",
                R::KIND
            ))
            .into());
        }
        self.settled = true;
        if let Some(sink) = self.sink.take() {
            sink.abort().await;
        }
        if let Some(key) = self.stored_key.take() {
            self.services.objects().delete(&key).await?;
        }
        R::drop_reservation(self.services.meta.as_ref(), self.row.sid()).await?;
        Ok(())
    }

    /// Destroys whatever was stored but keeps the reservation, so the row can be published in
    /// a state without an object (the seed-000 failure): returns the row for that.
    pub async fn destroy_object(mut self) -> Result<R, LedgerError> {
        self.settled = true;
        if let Some(sink) = self.sink.take() {
            sink.abort().await;
        }
        if let Some(key) = self.stored_key.take() {
            self.services.objects().delete(&key).await?;
        }
        Ok(self.row.clone())
    }
}

impl<R: Ledgered> Drop for Pending<R> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // The sink's own drop discards a partial object; a sealed one and the row are removed
        // in the background when a runtime is there, else by the sweeper later. (An announced
        // row stays visible in its in-flight state; the sweeper publishes it as failed.)
        drop(self.sink.take());
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let services = self.services.clone();
        let sid = self.row.sid().to_owned();
        let stored = self.stored_key.take();
        handle.spawn(async move {
            if let Some(key) = stored
                && let Err(e) = services.objects().delete(&key).await
            {
                tracing::warn!(object = %key, error = %e, "abandoned object left to the sweeper");
            }
            if let Err(e) = R::drop_reservation(services.meta.as_ref(), &sid).await {
                tracing::warn!(sid = %sid, error = %e, "abandoned reservation left to the sweeper");
            }
        });
    }
}
