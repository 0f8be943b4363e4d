//! What a composition is made of. The request formats (`VideoLayout`, `Resolution`, track
//! name patterns) are parsed by `mediaseal-wire`; this adds reading a queued composition back.

use mediaseal_store::video::Composition;
pub use mediaseal_wire::composition::{
    MAX_SOURCES, Region, Spec, included, parse_layout, parse_resolution, pattern_matches,
};

/// The spec a queued composition stored.
pub fn spec_of(c: &Composition) -> Result<Spec, String> {
    Spec::from_stored(
        &c.audio_sources,
        &c.audio_sources_excluded,
        &c.video_layout,
        &c.resolution,
        &c.format,
        c.trim,
    )
}
