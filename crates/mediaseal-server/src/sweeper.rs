//! Cleans up after crashes: uploads whose metadata was never published, and objects no metadata
//! points at. Runs on every node; every step is idempotent.

use std::time::{Duration, SystemTime};

use crate::clock::now_us;
use crate::state::AppState;

/// One pass. Returns how many objects were removed.
pub async fn sweep_once(state: &AppState) -> usize {
    let mut removed = 0;
    let cutoff = now_us() - state.config.orphan_age.as_micros() as i64;
    match state.meta.stale_reservations(cutoff, 500).await {
        Ok(stale) => {
            for rec in stale {
                if let Some(key) = &rec.object_key
                    && state.objects.delete(key).await.is_ok()
                {
                    removed += 1;
                }
                if let Err(e) = state.meta.drop_reservation(&rec.sid).await {
                    tracing::warn!(recording = %rec.sid, error = %e, "could not drop stale reservation");
                } else {
                    tracing::info!(recording = %rec.sid, "swept an upload that never completed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "sweeper: listing reservations failed"),
    }
    let old_enough = SystemTime::now()
        .checked_sub(state.config.orphan_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    match state.objects.list("").await {
        Ok(objects) => {
            for (key, modified) in objects {
                if modified > old_enough {
                    continue;
                }
                match state.meta.object_in_use(&key).await {
                    Ok(false) => {
                        if state.objects.delete(&key).await.is_ok() {
                            removed += 1;
                            tracing::info!(object = %key, "swept an orphaned object");
                        }
                    }
                    Ok(true) => {}
                    Err(e) => tracing::warn!(error = %e, "sweeper: metadata lookup failed"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "sweeper: listing objects failed"),
    }
    removed
}

/// Sweeps every `every`, forever.
pub async fn run(state: AppState, every: Duration) {
    loop {
        sweep_once(&state).await;
        tokio::time::sleep(every).await;
    }
}
