//! Compositions: several track recordings of a room mixed and tiled into one file by ffmpeg,
//! with no plaintext on disk, sealed as it is produced.
//!
//! The concerns, one module each:
//! - [`spec`]: what a composition is made of (track name patterns, resolution, video layout);
//! - [`select`]: which of a room's recordings it uses (never a customer-encrypted one: seed 001);
//! - [`plan`]: the pure filter-graph plan;
//! - `ffmpeg`: running ffmpeg over FIFOs fed by in-memory decryption;
//! - [`request`] and the worker: admitting a request, and the queue worker that claims, makes,
//!   seals and publishes compositions.
//!
//! A [`Composer`] holds what making compositions needs (the service layer, the at-rest reader
//! and ffmpeg); the process starts [`Composer::run`] as one of its background jobs.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod ffmpeg;
pub mod plan;
pub mod request;
pub mod select;
pub mod spec;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use mediaseal_readback::AtRestReader;
use mediaseal_service::Services;

pub use ffmpeg::probe_duration_ms;
pub use request::Template;
pub use spec::{
    MAX_SOURCES, Region, Spec, parse_layout, parse_resolution, pattern_matches, spec_of,
};

/// Bounds on the compositions a node makes, so that no account's composition can hold the
/// node's workers for long or fill its disk (issue 10). `serve` sets them from its flags; the
/// defaults are in `docs/DEPLOYMENT.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest one ffmpeg run may take; then ffmpeg is killed and the composition fails.
    pub max_wall_time: Duration,
    /// Most bytes of media one composition may produce; past them ffmpeg is killed, the
    /// composition fails and nothing is stored.
    pub max_output_bytes: u64,
    /// Compositions this node makes at once.
    pub workers: usize,
    /// Compositions one account may have running at once, on all nodes together.
    pub max_per_account: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_wall_time: Duration::from_secs(2 * 3600),
            max_output_bytes: 8 << 30,
            workers: 2,
            max_per_account: 1,
        }
    }
}

/// Makes compositions on this node.
#[derive(Debug, Clone)]
pub struct Composer {
    services: Services,
    reader: AtRestReader,
    ffmpeg: Option<PathBuf>,
    scratch: PathBuf,
    limits: Limits,
}

impl Composer {
    /// A composer running `ffmpeg` (none: compositions are refused), making its private FIFO
    /// directories under `scratch`.
    pub fn new(
        services: Services,
        reader: AtRestReader,
        ffmpeg: Option<PathBuf>,
        scratch: PathBuf,
    ) -> Self {
        Self {
            services,
            reader,
            ffmpeg,
            scratch,
            limits: Limits::default(),
        }
    }

    /// The same composer under `limits`.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}
