//! Per-upload and per-account limits on what a tenant may push into the node.
//!
//! Every producer door (the voice and track ingest doors, next the call recorder) takes an
//! [`UploadPermit`] before it reserves anything, and passes every chunk through
//! [`UploadPermit::admit`] before sealing it. A refused permit means nothing was reserved; a
//! refused chunk means the producer abandons its reservation through the ledger, so an upload
//! over the limit leaves no object and no visible row.
//!
//! The concurrency count is per node (each node of a scale-out deployment enforces its own).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefused {
    /// The body is (or has become) larger than the node accepts.
    #[error(
        "the upload is larger than this server accepts ({limit} bytes); nothing was stored. \
         Split the media, or ask the operator to raise --max-upload-bytes"
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The account already has as many uploads in progress on this node as it may.
    #[error(
        "account {account} already has {limit} uploads in progress on this server; retry when \
         one has finished, or ask the operator to raise --max-concurrent-uploads"
    )]
    TooManyConcurrent {
        /// The account.
        account: String,
        /// The limit.
        limit: usize,
    },
}

/// The uploads in progress per account on this node.
#[derive(Debug, Default, Clone)]
pub struct UploadSlots {
    in_progress: Arc<Mutex<HashMap<String, usize>>>,
}

impl UploadSlots {
    /// Uploads of `account` in progress now.
    pub fn in_progress(&self, account: &str) -> usize {
        self.lock().get(account).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and decrements), so a poisoned lock is still usable.
        self.in_progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One upload's admission: holds its account's slot until dropped, and counts its bytes.
#[derive(Debug)]
pub struct UploadPermit {
    slots: UploadSlots,
    account: String,
    max_bytes: u64,
    received: u64,
}

impl UploadPermit {
    /// Counts `n` more bytes; refuses once the upload would exceed the limit (the producer then
    /// abandons what it has reserved).
    pub fn admit(&mut self, n: usize) -> Result<(), UploadRefused> {
        self.received = self.received.saturating_add(n as u64);
        if self.received > self.max_bytes {
            return Err(UploadRefused::TooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Bytes admitted so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let mut map = self.slots.lock();
        if let Some(n) = map.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

impl crate::Services {
    /// Admits an upload of `account`, announced as `declared_len` bytes when the producer knows
    /// (HTTP `Content-Length`): refused at once when that is over the limit, or when the account
    /// already has `max_concurrent_uploads` uploads in progress on this node. Nothing is
    /// reserved either way; the slot is freed when the permit is dropped.
    pub fn begin_upload(
        &self,
        account: &str,
        declared_len: Option<u64>,
    ) -> Result<UploadPermit, UploadRefused> {
        let max_bytes = self.config.max_upload_bytes;
        if declared_len.is_some_and(|n| n > max_bytes) {
            return Err(UploadRefused::TooLarge { limit: max_bytes });
        }
        let limit = self.config.max_concurrent_uploads;
        let mut map = self.uploads.lock();
        let n = map.entry(account.to_owned()).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                map.remove(account);
            }
            return Err(UploadRefused::TooManyConcurrent {
                account: account.to_owned(),
                limit,
            });
        }
        *n += 1;
        drop(map);
        Ok(UploadPermit {
            slots: self.uploads.clone(),
            account: account.to_owned(),
            max_bytes,
            received: 0,
        })
    }
}
