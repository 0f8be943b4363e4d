//! Frame sinks: consumers inside the room process that see every published track, frame by
//! frame, as a subscriber would but without a peer connection. The track recorder (Matroska
//! into the sealing sink) is one; tests use a counting one.
//!
//! A sink is called synchronously from the forwarding path with borrowed data, so it must not
//! block. Frames arrive for every simulcast layer (with [`SinkFrame::layer`]); a recorder keeps
//! the one it wants.

use std::sync::Arc;
use std::time::Instant;

use str0m::format::Codec;
use str0m::media::MediaTime;

use crate::signal::TrackKind;

/// A track as a sink sees it when it starts.
#[derive(Debug, Clone, Copy)]
pub struct SinkTrack<'a> {
    /// `MT…` SID.
    pub track_sid: &'a str,
    /// `PA…` SID of the publisher.
    pub participant_sid: &'a str,
    /// The publisher's identity (recording rules filter on it).
    pub identity: &'a str,
    /// Audio or video.
    pub kind: TrackKind,
    /// The publisher's track name.
    pub name: &'a str,
}

/// One whole frame (an audio packet's payload or a depacketized video frame).
#[derive(Debug, Clone, Copy)]
pub struct SinkFrame<'a> {
    /// `MT…` SID of the track.
    pub track_sid: &'a str,
    /// `PA…` SID of the publisher.
    pub participant_sid: &'a str,
    /// Simulcast layer (RTP stream id), `None` for a plain track.
    pub layer: Option<&'a str>,
    /// Codec of this frame (it may change mid-track when the publisher renegotiates).
    pub codec: Codec,
    /// RTP media time (extended past wraparound), in the codec's clock rate.
    pub media_time: MediaTime,
    /// Arrival time of the frame's first packet.
    pub received_at: Instant,
    /// A video keyframe (always `false` for audio).
    pub keyframe: bool,
    /// The RTP sequence numbers were contiguous with the previous frame.
    pub contiguous: bool,
    /// The encoded frame, shared with the forwarding path (clone the `Arc` to keep it).
    pub data: &'a Arc<[u8]>,
}

/// Receives every published track's frames. See the module docs.
pub trait FrameSink {
    /// A track was published (called before its first frame).
    fn track_started(&mut self, track: SinkTrack<'_>) {
        let _ = track;
    }

    /// A frame of a published track.
    fn frame(&mut self, frame: SinkFrame<'_>);

    /// A track ended (unpublished, its publisher left, or the room ended).
    fn track_ended(&mut self, track_sid: &str, at: Instant) {
        let _ = (track_sid, at);
    }
}
