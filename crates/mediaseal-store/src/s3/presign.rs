//! Presigning: a SigV4 query-signed GET URL, so the store itself can serve an object with its
//! `x-amz-meta-*` headers to the customer.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

use super::{Inner, sdk_error};
use crate::error::StoreError;
use crate::meta::StoreResult;

impl Inner {
    /// A URL serving `full` for `ttl`, signed for the presign endpoint.
    pub(super) async fn presign_get(
        &self,
        full: &str,
        key: &str,
        ttl: Duration,
    ) -> StoreResult<String> {
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| StoreError::Config(format!("presigned URL lifetime: {e}")))?;
        let request = self
            .presigner
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .presigned(config)
            .await
            .map_err(|e| sdk_error("presign", key, &e))?;
        Ok(request.uri().to_owned())
    }
}
