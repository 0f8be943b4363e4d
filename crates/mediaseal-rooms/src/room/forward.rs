//! Forwarding: frames from publishers to subscribers and sinks, keyframe requests routed and
//! throttled, simulcast layers chosen per subscriber.

use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};

use super::{
    Admit, KEYFRAME_RETRY, LAYER_INACTIVE_AFTER, ParticipantKey, Room, SinkFrame, SubState, Work,
};

impl Room {
    pub(super) fn process_work(&mut self) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Media { publisher, data } => self.forward(publisher, &data),
                Work::SubscriberKeyframeRequest {
                    subscriber,
                    mid,
                    kind,
                } => self.route_keyframe_request(subscriber, mid, kind),
                Work::WantKeyframe { track, layer } => {
                    if let Some(t) = self.tracks.iter().position(|t| t.key == track) {
                        self.request_keyframe(t, layer, KeyframeRequestKind::Pli);
                    }
                }
            }
        }
    }

    pub(super) fn forward(&mut self, publisher: ParticipantKey, data: &MediaData) {
        let now = self.now;
        let Some(t) = self
            .tracks
            .iter()
            .position(|t| t.owner == publisher && t.mid == data.mid)
        else {
            return;
        };
        let keyframe = data.is_keyframe();
        let track = &mut self.tracks[t];
        track.record_frame(now, data.rid, data.data.len(), keyframe);
        let track_key = track.key;
        let is_video = track.kind == MediaKind::Video;
        if is_video && !data.contiguous {
            // Packets were lost upstream: without a fresh keyframe every subscriber's decoder
            // shows garbage until the next scheduled one.
            self.request_keyframe(t, data.rid, KeyframeRequestKind::Pli);
        }

        if !self.sinks.is_empty() {
            let track = &self.tracks[t];
            let rid = data.rid;
            let frame = SinkFrame {
                track_sid: &track.sid,
                participant_sid: &track.owner_sid,
                layer: rid.as_deref(),
                codec: data.params.spec().codec,
                media_time: data.time,
                received_at: data.network_time,
                keyframe,
                contiguous: data.contiguous,
                data: &data.data,
            };
            for sink in &mut self.sinks {
                sink.frame(frame);
            }
            self.stats.sink_frames += 1;
        }

        for index in 0..self.participants.len() {
            let participant = &mut self.participants[index];
            if participant.key == publisher
                || !participant.is_active()
                || participant.connected_at.is_none()
            {
                continue;
            }
            let Some(subscription) = participant
                .subscriptions
                .iter_mut()
                .find(|s| s.track == track_key)
            else {
                continue;
            };
            let SubState::Open(mid) = subscription.state else {
                continue;
            };
            let switched = match subscription.admit(data.rid, keyframe) {
                Admit::Forward { switched } => switched,
                Admit::Skip => continue,
                Admit::WaitForKeyframe => {
                    let due = subscription
                        .keyframe_asked_at
                        .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_RETRY);
                    if due {
                        subscription.keyframe_asked_at = Some(now);
                        let layer = subscription.target_layer.unwrap_or(data.rid);
                        self.work.push_back(Work::WantKeyframe {
                            track: track_key,
                            layer,
                        });
                    }
                    continue;
                }
            };
            let time = subscription
                .time
                .map(data.time, data.network_time, switched);
            let Some(writer) = participant.rtc.writer(mid) else {
                continue;
            };
            // The subscriber's m-line may have negotiated a different payload type for the
            // codec, or not the codec at all (then it cannot take this track).
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            match writer.write(pt, data.network_time, time, data.data.clone()) {
                Ok(()) => {
                    subscription.frames_out += 1;
                    subscription.bytes_out += data.data.len() as u64;
                    self.stats.forwarded_frames += 1;
                    self.stats.forwarded_bytes += data.data.len() as u64;
                }
                Err(e) => {
                    tracing::debug!(participant = %participant.sid, error = %e, "frame not written");
                }
            }
            // Drained either way: a refused write may still have touched the instance.
            self.drain(index);
        }
    }

    /// A subscriber's PLI/FIR for its m-line `mid` goes to the publisher of the layer it
    /// receives, through the throttle.
    pub(super) fn route_keyframe_request(
        &mut self,
        subscriber: ParticipantKey,
        mid: Mid,
        kind: KeyframeRequestKind,
    ) {
        let Some(index) = self.index_of(subscriber) else {
            return;
        };
        let Some(subscription) = self.participants[index]
            .subscriptions
            .iter()
            .find(|s| s.state == SubState::Open(mid))
        else {
            return;
        };
        let layer = subscription
            .current_layer
            .or(subscription.target_layer)
            .flatten();
        let track = subscription.track;
        if let Some(t) = self.tracks.iter().position(|t| t.key == track) {
            self.request_keyframe(t, layer, kind);
        }
    }

    pub(super) fn request_keyframe(
        &mut self,
        track: usize,
        layer: Option<Rid>,
        kind: KeyframeRequestKind,
    ) {
        let interval = self.config.keyframe_request_interval;
        let published = &mut self.tracks[track];
        if published.kind != MediaKind::Video {
            return;
        }
        let Some(kind) = published.keyframe_request(self.now, interval, layer, kind) else {
            return;
        };
        let (owner, mid) = (published.owner, published.mid);
        self.send_keyframe_request(owner, mid, layer, kind);
    }

    pub(super) fn send_keyframe_request(
        &mut self,
        owner: ParticipantKey,
        mid: Mid,
        layer: Option<Rid>,
        kind: KeyframeRequestKind,
    ) {
        let Some(index) = self.index_of(owner) else {
            return;
        };
        let participant = &mut self.participants[index];
        if !participant.is_active() {
            return;
        }
        let Some(mut writer) = participant.rtc.writer(mid) else {
            return;
        };
        // Use what the publisher negotiated: PLI is near universal, FIR less so.
        let kind = if writer.is_request_keyframe_possible(kind) {
            kind
        } else if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
            KeyframeRequestKind::Pli
        } else {
            return;
        };
        if let Err(e) = writer.request_keyframe(layer, kind) {
            tracing::debug!(participant = %participant.sid, error = %e, "keyframe request not sent");
        }
        self.drain(index);
    }

    /// Re-evaluates the simulcast layer of each open video subscription of participant `index`.
    pub(super) fn refresh_layer_choice(&mut self, index: usize) {
        let now = self.now;
        let participant = &mut self.participants[index];
        for subscription in &mut participant.subscriptions {
            if subscription.kind != MediaKind::Video
                || !matches!(subscription.state, SubState::Open(_))
            {
                continue;
            }
            let Some(track) = self.tracks.iter().find(|t| t.key == subscription.track) else {
                continue;
            };
            if !track.simulcast {
                continue;
            }
            let Some(choice) =
                track.select_layer(subscription.preferred_layer, now, LAYER_INACTIVE_AFTER)
            else {
                continue;
            };
            if subscription.target_layer != Some(choice) {
                subscription.target_layer = Some(choice);
                if subscription.current_layer != Some(choice) {
                    self.work.push_back(Work::WantKeyframe {
                        track: track.key,
                        layer: choice,
                    });
                }
            }
        }
    }
}
