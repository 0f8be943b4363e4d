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

use mediaseal_readback::AtRestReader;
use mediaseal_service::Services;

pub use ffmpeg::probe_duration_ms;
pub use request::Template;
pub use spec::{
    MAX_SOURCES, Region, Spec, parse_layout, parse_resolution, pattern_matches, spec_of,
};

/// Makes compositions on this node.
#[derive(Debug, Clone)]
pub struct Composer {
    services: Services,
    reader: AtRestReader,
    ffmpeg: Option<PathBuf>,
    scratch: PathBuf,
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
        }
    }
}
