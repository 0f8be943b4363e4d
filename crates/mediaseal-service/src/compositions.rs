//! Compositions (`CJ…`) as the service sees them: the queue (the `compositions` table, claimed
//! with leases by a worker on every node), its wake-up, and the status callbacks of every
//! composition event. The worker that makes them is `mediaseal-compose`.

use std::sync::Arc;
use std::time::Duration;

use mediaseal_store::model::Callback;
use mediaseal_store::video::Composition;
use tokio::sync::Notify;

use crate::Services;
use crate::clock::iso8601;
use crate::ledger::LedgerError;
use crate::outbox::new_callback;

/// How long a new composition stays reserved for the node that accepted it.
pub const RESERVATION: Duration = Duration::from_secs(30);

/// Wakes this node's composition worker when a composition was queued here. One per
/// [`Services`]: it replaces any process-wide registry, so two services in one process (tests)
/// never wake each other's workers.
#[derive(Debug, Clone, Default)]
pub struct CompositionQueue {
    wake: Arc<Notify>,
}

impl CompositionQueue {
    /// Tells the worker a composition is waiting.
    pub fn kick(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next kick (or at once if one is pending).
    pub async fn kicked(&self) {
        self.wake.notified().await;
    }
}

impl Services {
    /// Queues `composition` with its `composition-enqueued` callback, and wakes the worker.
    pub async fn enqueue_composition(&self, composition: &Composition) -> Result<(), LedgerError> {
        let callbacks: Vec<Callback> = self
            .composition_callback(composition, "composition-enqueued", &[])
            .into_iter()
            .collect();
        self.meta
            .insert_composition(composition, &callbacks)
            .await?;
        self.compositions.kick();
        tracing::info!(composition = %composition.sid, room = %composition.room_sid, account = %composition.account_sid, "composition queued");
        Ok(())
    }

    /// The status callback of composition event `event`, if the composition has a receiver.
    pub fn composition_callback(
        &self,
        c: &Composition,
        event: &str,
        extra: &[(&str, String)],
    ) -> Option<Callback> {
        let url = c.status_callback.as_deref()?;
        let mut params = vec![
            ("AccountSid".to_owned(), c.account_sid.clone()),
            ("RoomSid".to_owned(), c.room_sid.clone()),
            ("CompositionSid".to_owned(), c.sid.clone()),
            ("StatusCallbackEvent".to_owned(), event.to_owned()),
            ("Timestamp".to_owned(), iso8601(self.now_us())),
            (
                "CompositionUri".to_owned(),
                format!("/v1/Compositions/{}", c.sid),
            ),
        ];
        if let Some(hook) = &c.hook_sid {
            params.push(("HookSid".to_owned(), hook.clone()));
        }
        params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        Some(new_callback(
            self,
            &c.account_sid,
            &c.sid,
            url,
            &c.status_callback_method,
            &params,
        ))
    }
}
