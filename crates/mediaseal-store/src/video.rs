//! Video metadata: recording and composition settings, rooms, track recordings, compositions
//! (which are also the composition job queue) and composition hooks.
//!
//! The records live in [`crate::model`] and the trait beside the other store traits; this module
//! gathers them under the path the API layer has always used.

pub use crate::meta::VideoStore;
pub use crate::model::video::{
    Composition, CompositionFilter, CompositionFormat, CompositionHook, CompositionStatus,
    ContainerFormat, HookFilter, MediaType, Room, RoomCompletion, RoomFilter, RoomStatus, RoomType,
    SettingsKind, TrackRecording, TrackRecordingFilter, TrackRecordingStatus, VideoSettings,
};
