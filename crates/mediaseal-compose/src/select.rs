//! Choosing the recordings of a room a composition uses.

use std::collections::HashSet;

use mediaseal_store::model::Sealing;
use mediaseal_store::video::TrackRecording;

use crate::spec::{Spec, included};

/// The recordings a composition uses.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Audio tracks, mixed.
    pub audio: Vec<TrackRecording>,
    /// `(region index, recording)`.
    pub video: Vec<(usize, TrackRecording)>,
}

impl Selection {
    /// True when nothing matched.
    pub fn is_empty(&self) -> bool {
        self.audio.is_empty() && self.video.is_empty()
    }

    /// Every selected recording, audio first.
    pub fn all(&self) -> impl Iterator<Item = &TrackRecording> {
        self.audio.iter().chain(self.video.iter().map(|(_, r)| r))
    }

    /// SIDs of selected recordings sealed with the customer's key, which no one but the
    /// customer can read, so they cannot be composed (seed 001).
    pub fn encrypted(&self) -> Vec<String> {
        let mut sids: Vec<String> = self
            .all()
            .filter(|r| r.sealing == Sealing::Customer)
            .map(|r| r.sid.clone())
            .collect();
        sids.sort();
        sids.dedup();
        sids
    }
}

/// Picks the completed recordings of a room that `spec` names: audio tracks by
/// `audio_sources`/`audio_sources_excluded`, video tracks by each region's patterns (a track
/// shows in the first region that takes it).
pub fn select(recordings: &[TrackRecording], spec: &Spec) -> Selection {
    let mut sel = Selection::default();
    let mut ordered: Vec<&TrackRecording> = recordings
        .iter()
        .filter(|r| r.status == "completed" && !r.deleted && r.object_key.is_some())
        .collect();
    ordered.sort_by(|a, b| {
        a.offset_ms
            .cmp(&b.offset_ms)
            .then_with(|| a.sid.cmp(&b.sid))
    });
    let mut taken = HashSet::new();
    for r in &ordered {
        match r.media_type.as_str() {
            "audio"
                if included(
                    &r.track_name,
                    &spec.audio_sources,
                    &spec.audio_sources_excluded,
                ) =>
            {
                sel.audio.push((*r).clone());
            }
            "video" => {
                if let Some(i) = spec.regions.iter().position(|g| {
                    included(&r.track_name, &g.video_sources, &g.video_sources_excluded)
                }) && taken.insert(r.sid.clone())
                {
                    sel.video.push((i, (*r).clone()));
                }
            }
            _ => {}
        }
    }
    sel
}
