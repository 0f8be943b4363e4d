//! Cleans up after crashes: uploads whose rows were never published, and objects no row points
//! at. Runs on every node; every step is idempotent.

use std::time::SystemTime;

use crate::Services;

fn cutoff(services: &Services) -> i64 {
    services.now_us()
        - i64::try_from(services.config.orphan_age.as_micros()).unwrap_or(i64::MAX / 2)
}

/// Removes the object store's temporary files that writers interrupted by a crash left behind,
/// untouched for `orphan_age`. Runs at start (`serve`) and in every sweeper pass. Returns how
/// many were removed.
pub async fn sweep_partial_objects(services: &Services) -> usize {
    match services
        .objects()
        .sweep_partials(services.config.orphan_age)
        .await
    {
        Ok(0) => 0,
        Ok(n) => {
            tracing::info!(files = n, "swept temporary object files left by a crash");
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "sweeper: removing temporary object files failed");
            0
        }
    }
}

/// One pass over voice recording reservations, unreferenced objects and temporary object files
/// left by a crash. Returns how many objects and temporary files were removed.
pub async fn sweep_once(services: &Services) -> usize {
    let mut removed = sweep_partial_objects(services).await;
    match services
        .meta
        .stale_reservations(cutoff(services), 500)
        .await
    {
        Ok(stale) => {
            for rec in stale {
                if let Some(key) = &rec.object_key
                    && services.objects().delete(key).await.is_ok()
                {
                    removed += 1;
                }
                let sid = rec.sid.clone();
                match services.report_interrupted_recording(rec).await {
                    Ok(Some(_)) => {
                        tracing::warn!(recording = %sid, "an upload cut off by a crash was reported failed (16104)");
                    }
                    Ok(None) => {
                        if let Err(e) = services.meta.drop_reservation(&sid).await {
                            tracing::warn!(recording = %sid, error = %e, "could not drop stale reservation");
                        } else {
                            tracing::info!(recording = %sid, "swept an upload that never completed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(recording = %sid, error = %e, "could not report an upload cut off by a crash");
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "sweeper: listing reservations failed"),
    }
    let old_enough = SystemTime::now()
        .checked_sub(services.config.orphan_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    match services.objects().list("").await {
        Ok(objects) => {
            for (key, modified) in objects {
                if modified > old_enough {
                    continue;
                }
                match services.meta.object_in_use(&key).await {
                    Ok(false) => {
                        if services.objects().delete(&key).await.is_ok() {
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

/// Removes track recording uploads a crash left unfinished, with their objects, and publishes
/// as `failed` the room track recordings left `processing` by a producer that is gone.
pub async fn sweep_track_reservations(services: &Services) {
    sweep_orphaned_track_recordings(services).await;
    match services
        .meta
        .stale_track_reservations(cutoff(services), 200)
        .await
    {
        Ok(stale) => {
            for r in stale {
                if let Some(key) = &r.object_key
                    && let Err(e) = services.objects().delete(key).await
                {
                    tracing::warn!(recording = %r.sid, error = %e, "could not delete an unfinished track upload");
                    continue;
                }
                if services.meta.drop_track_reservation(&r.sid).await.is_ok() {
                    tracing::info!(recording = %r.sid, "swept a track upload that never completed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing unfinished track uploads failed"),
    }
}

/// Room track recordings still `processing` although their room ended over `orphan_age` ago:
/// the server that stored them stopped mid-track (a live room's recordings finish when it
/// ends). Each is published `failed` with `recording-failed`; its partial object, no longer
/// pointed at, goes with the unreferenced objects.
async fn sweep_orphaned_track_recordings(services: &Services) {
    let orphans = match services
        .meta
        .orphaned_track_recordings(cutoff(services), 200)
        .await
    {
        Ok(orphans) => orphans,
        Err(e) => {
            tracing::warn!(error = %e, "listing unfinished room track recordings failed");
            return;
        }
    };
    for r in orphans {
        let sid = r.sid.clone();
        let room = match services.meta.room(&r.account_sid, &r.room_sid).await {
            Ok(Some(room)) => room,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(recording = %sid, error = %e, "could not read the room of an unfinished track recording");
                continue;
            }
        };
        if let Err(e) = services.fail_track_recording(&room, r).await {
            tracing::warn!(recording = %sid, error = %e, "could not mark an unfinished track recording failed");
        }
    }
}
