//! The service layer: everything mediaseal does that is not HTTP.
//!
//! - [`ledger`]: the one lifecycle of a stored product — reserve a row, seal into the
//!   [`SinkFactory`]'s sink, then publish (row, callbacks and notifications in one transaction)
//!   or abandon — for voice recordings ([`voice`]), track recordings ([`tracks`]) and
//!   compositions ([`compositions`]);
//! - [`outbox`]: signed status callbacks, delivered at least once by a worker on every node;
//! - [`egress`]: where those webhooks may go (public addresses, plus an allow-list);
//! - [`sweep`]: the clean-up after crashes;
//! - [`limits`]: how large an upload may be and how many an account may have in progress;
//! - [`runner`]: the process's background jobs, started explicitly and cancelled on shutdown;
//! - [`clock`] and [`sid`]: time and identifiers, injectable for tests.
//!
//! The HTTP layer (`mediaseal-server`) parses a request, calls into [`Services`], and renders
//! the result; the media producers (compositions, and next calls, rooms and transcripts) call
//! the same functions. Nothing here knows about axum, and nothing here touches SQL or S3
//! directly: the store's traits are the only way to storage.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod calls;
pub mod clock;
pub mod compositions;
pub mod egress;
pub mod ledger;
pub mod limits;
pub mod outbox;
pub mod runner;
pub mod sealed;
pub mod sid;
pub mod sip_passwords;
pub mod sweep;
pub mod tracks;
pub mod voice;

use std::sync::Arc;
use std::time::Duration;

pub use mediaseal_sink::SinkFactory;
use mediaseal_store::{MetadataStore, ObjectStore};

use crate::clock::Clock;
use crate::compositions::CompositionQueue;

/// Settings of the service layer that do not change while it runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Name of this node, for leases.
    pub node_id: String,
    /// First retry delay of a failed callback; doubles each time.
    pub callback_retry_base: Duration,
    /// Longest delay between retries.
    pub callback_retry_cap: Duration,
    /// Tries before a callback is given up.
    pub callback_max_attempts: i64,
    /// How often the outbox is polled.
    pub callback_poll: Duration,
    /// Timeout of one delivery.
    pub callback_timeout: Duration,
    /// Unpublished uploads and unreferenced objects older than this are treated as crashed and
    /// swept.
    pub orphan_age: Duration,
    /// Largest upload (plaintext bytes) a producer door accepts; larger ones are refused and
    /// leave nothing stored.
    pub max_upload_bytes: u64,
    /// Uploads one account may have in progress on this node at once.
    pub max_concurrent_uploads: usize,
    /// Where webhooks may go: public addresses plus the allow-listed networks.
    pub webhook_policy: egress::WebhookPolicy,
    /// Deliveries this node has in flight at once, across accounts.
    pub callback_max_in_flight: usize,
    /// Deliveries one account may have in flight on this node at once; the rest of its due
    /// callbacks wait in the outbox, unleased, so a slow receiver delays only its own account.
    pub callback_max_in_flight_per_account: usize,
    /// Timeout of connecting to a receiver (the whole delivery has `callback_timeout`).
    pub callback_connect_timeout: Duration,
}

/// Default of [`ServiceConfig::max_upload_bytes`]: 2 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 2 << 30;
/// Default of [`ServiceConfig::max_concurrent_uploads`].
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 32;

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            node_id: sid::new_sid("ND"),
            callback_retry_base: Duration::from_secs(2),
            callback_retry_cap: Duration::from_secs(600),
            callback_max_attempts: 12,
            callback_poll: Duration::from_millis(250),
            callback_timeout: Duration::from_secs(15),
            orphan_age: Duration::from_secs(3600),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_concurrent_uploads: DEFAULT_MAX_CONCURRENT_UPLOADS,
            webhook_policy: egress::WebhookPolicy::strict(),
            callback_max_in_flight: 256,
            callback_max_in_flight_per_account: 8,
            callback_connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The service layer's handles, cheap to clone: storage, the sealing sink, the clock, the
/// composition queue's wake-up, and the webhook client.
#[derive(Clone)]
pub struct Services {
    /// Metadata.
    pub meta: Arc<dyn MetadataStore>,
    /// Where sealed objects go (write side only).
    pub sinks: SinkFactory,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: Arc<ServiceConfig>,
    /// Wakes this node's composition worker.
    pub compositions: CompositionQueue,
    /// Client for webhooks.
    pub http: reqwest::Client,
    /// Uploads in progress per account on this node.
    pub uploads: limits::UploadSlots,
}

impl core::fmt::Debug for Services {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Services")
            .field("meta", &self.meta.backend())
            .field("sinks", &self.sinks)
            .field("node", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Assembles the service layer.
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        sinks: SinkFactory,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        let resolver = egress::GuardedResolver::new(config.webhook_policy.clone());
        let http = reqwest::Client::builder()
            .timeout(config.callback_timeout)
            .connect_timeout(config.callback_connect_timeout.min(config.callback_timeout))
            // Every name is resolved through the policy; IP literals are checked in `deliver`.
            .dns_resolver(Arc::new(resolver))
            .user_agent(concat!("mediaseal-callbacks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            meta,
            sinks,
            clock,
            config: Arc::new(config),
            compositions: CompositionQueue::default(),
            http,
            uploads: limits::UploadSlots::default(),
        }
    }

    /// The object store.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        self.sinks.objects()
    }

    /// Now, from the injected clock.
    pub fn now_us(&self) -> i64 {
        self.clock.now_us()
    }
}
