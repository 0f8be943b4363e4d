//! Sweeping: multipart uploads that a crashed node left open.

use std::time::{Duration, SystemTime};

use super::{S3ObjectStore, sdk_error};
use crate::meta::StoreResult;

impl S3ObjectStore {
    /// Multipart uploads open under this store's prefix: full key, upload id, start time.
    pub async fn open_uploads(&self) -> StoreResult<Vec<(String, String, SystemTime)>> {
        let inner = &self.inner;
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = inner
                .client
                .list_multipart_uploads()
                .bucket(&inner.bucket)
                .prefix(&inner.prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| sdk_error("listing uploads", &inner.prefix, &e))?;
            for up in page.uploads() {
                let started = up
                    .initiated()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                if let (Some(key), Some(id)) = (up.key(), up.upload_id()) {
                    out.push((key.to_owned(), id.to_owned(), started));
                }
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if page.is_truncated() != Some(true) || (key_marker.is_none() && id_marker.is_none()) {
                return Ok(out);
            }
        }
    }

    /// Aborts multipart uploads started more than `age` ago and never completed (a node died
    /// mid-upload); their parts are invisible but take space. Returns how many were aborted.
    pub async fn abort_stale_uploads(&self, age: Duration) -> StoreResult<usize> {
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut aborted = 0;
        for (key, id, started) in self.open_uploads().await? {
            if started <= cutoff {
                self.inner
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.inner.bucket)
                    .key(&key)
                    .upload_id(&id)
                    .send()
                    .await
                    .map_err(|e| sdk_error("aborting upload", &key, &e))?;
                aborted += 1;
            }
        }
        Ok(aborted)
    }
}
