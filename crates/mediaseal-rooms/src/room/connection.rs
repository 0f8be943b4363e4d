//! What each participant's connection reports: datagrams and timeouts in, str0m events out,
//! and the tracks they publish or the slots they offer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::media::{Direction, MediaAdded, MediaChanged, MediaKind, Mid, Rid};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Event, IceConnectionState};

use super::track::{PublishedTrack, TrackKey};
use super::{
    DisconnectReason, HOUSEKEEPING_EVERY, MAX_TRACK_NAME_LEN, Output, Room, RoomEvent, SinkTrack,
    SubState, Subscription, Work, error_event, new_track_sid, track_kind, truncate_to,
};
use crate::signal::TrackInfo;
use crate::track_rules::RuleTrack;

impl Room {
    pub(super) fn on_datagram(
        &mut self,
        at: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let Ok(contents) = DatagramRecv::try_from(contents) else {
            self.stats.datagrams_invalid += 1;
            return;
        };
        let input = str0m::Input::Receive(
            at,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        // Most datagrams come from the participant that sent the previous one.
        let hint = self.last_matched;
        let index = match self.participants.get(hint) {
            Some(p) if p.is_active() && p.rtc.accepts(&input) => Some(hint),
            _ => self
                .participants
                .iter()
                .position(|p| p.is_active() && p.rtc.accepts(&input)),
        };
        let Some(index) = index else {
            self.stats.datagrams_unmatched += 1;
            return;
        };
        self.last_matched = index;
        let participant = &mut self.participants[index];
        if let Err(e) = participant.rtc.handle_input(input) {
            tracing::info!(participant = %participant.sid, error = %e, "participant connection failed");
            participant.remove(DisconnectReason::MediaFailed, false);
            participant.rtc.disconnect();
            return;
        }
        self.drain(index);
    }

    pub(super) fn on_timeout(&mut self) {
        let now = self.now;
        for index in 0..self.participants.len() {
            let participant = &mut self.participants[index];
            if participant.next_timeout > now || !participant.rtc.is_alive() {
                continue;
            }
            if let Err(e) = participant.rtc.handle_input(str0m::Input::Timeout(now)) {
                tracing::info!(participant = %participant.sid, error = %e, "participant connection failed");
                participant.remove(DisconnectReason::MediaFailed, false);
                participant.rtc.disconnect();
                continue;
            }
            self.drain(index);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_EVERY;
            self.housekeeping();
        }
    }

    /// Polls participant `index`'s `Rtc` until it returns a timeout.
    pub(super) fn drain(&mut self, index: usize) {
        loop {
            let participant = &mut self.participants[index];
            if !participant.rtc.is_alive() {
                participant.next_timeout = self.now + Duration::from_secs(3600);
                participant.remove(DisconnectReason::Left, false);
                return;
            }
            match participant.rtc.poll_output() {
                Ok(str0m::Output::Timeout(t)) => {
                    participant.next_timeout = t;
                    return;
                }
                Ok(str0m::Output::Transmit(t)) => self.outputs.push_back(Output::Transmit(t)),
                Ok(str0m::Output::Event(e)) => self.on_rtc_event(index, e),
                Err(e) => {
                    tracing::info!(participant = %participant.sid, error = %e, "participant connection failed");
                    participant.remove(DisconnectReason::MediaFailed, false);
                    participant.rtc.disconnect();
                    return;
                }
            }
        }
    }

    pub(super) fn on_rtc_event(&mut self, index: usize, event: Event) {
        let now = self.now;
        let participant = &mut self.participants[index];
        match event {
            Event::Connected => {
                participant.connected_at = Some(now);
                participant.ice_lost_since = None;
                // Frames written before the connection was up were dropped: start over at a
                // keyframe.
                for s in &mut participant.subscriptions {
                    s.needs_keyframe = s.kind == MediaKind::Video;
                    s.keyframe_asked_at = None;
                }
                let event = RoomEvent::ParticipantConnected {
                    participant_sid: participant.sid.clone(),
                    identity: participant.identity.clone(),
                };
                self.emit(event);
            }
            Event::IceConnectionStateChange(state) => match state {
                IceConnectionState::Disconnected => {
                    participant.ice_lost_since.get_or_insert(now);
                }
                IceConnectionState::Connected | IceConnectionState::Completed => {
                    participant.ice_lost_since = None;
                }
                _ => {}
            },
            Event::MediaAdded(added) => self.on_media_added(index, &added),
            Event::MediaChanged(changed) => self.on_media_changed(index, &changed),
            Event::MediaData(data) => {
                participant.frames_in += 1;
                let publisher = participant.key;
                self.work.push_back(Work::Media { publisher, data });
            }
            Event::KeyframeRequest(request) => {
                let subscriber = participant.key;
                self.work.push_back(Work::SubscriberKeyframeRequest {
                    subscriber,
                    mid: request.mid,
                    kind: request.kind,
                });
            }
            Event::Closed => participant.remove(DisconnectReason::Left, false),
            _ => {}
        }
    }

    pub(super) fn on_media_added(&mut self, index: usize, added: &MediaAdded) {
        match added.direction {
            Direction::RecvOnly | Direction::SendRecv => {
                let rids: Vec<Rid> = added
                    .simulcast
                    .as_ref()
                    .map(|s| {
                        let layers = if s.recv.is_empty() { &s.send } else { &s.recv };
                        layers.iter().map(|l| l.rid).collect()
                    })
                    .unwrap_or_default();
                self.publish(index, added.mid, added.kind, &rids);
            }
            Direction::SendOnly => {
                // str0m reports media once DTLS is up, so tracks published before this
                // participant connected are handed out now.
                self.participants[index]
                    .free_slots
                    .push((added.mid, added.kind));
                self.fill_offered_slots(index);
            }
            Direction::Inactive => {}
        }
    }

    pub(super) fn on_media_changed(&mut self, index: usize, changed: &MediaChanged) {
        let owner = self.participants[index].key;
        let published = self
            .tracks
            .iter()
            .find(|t| t.owner == owner && t.mid == changed.mid)
            .map(|t| t.key);
        let receiving = matches!(changed.direction, Direction::RecvOnly | Direction::SendRecv);
        match (published, receiving) {
            (Some(track), false) => self.unpublish(track),
            (None, true) => {
                let kind = self.participants[index]
                    .rtc
                    .media(changed.mid)
                    .map(|m| m.kind());
                if let Some(kind) = kind {
                    self.publish(index, changed.mid, kind, &[]);
                }
            }
            _ => {}
        }
    }

    pub(super) fn publish(&mut self, index: usize, mid: Mid, kind: MediaKind, rids: &[Rid]) {
        let participant = &self.participants[index];
        let participant_sid = participant.sid.clone();
        if self.tracks.len() >= self.config.max_published_tracks {
            self.outputs.push_back(error_event(
                Some(&participant_sid),
                53203,
                format!(
                    "the room already has {} published tracks, its limit; unpublish one first",
                    self.tracks.len()
                ),
            ));
            return;
        }
        let name = participant
            .rtc
            .media(mid)
            .map(|m| m.track_id().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| mid.to_string());
        let name = truncate_to(name, MAX_TRACK_NAME_LEN);
        let key = TrackKey(self.next_key);
        self.next_key += 1;
        let track = PublishedTrack::new(
            key,
            new_track_sid(),
            (participant.key, &participant_sid),
            mid,
            kind,
            name,
            rids,
        );
        tracing::debug!(participant = %participant_sid, track = %track.sid, ?kind, simulcast = track.simulcast, "track published");
        for sink in &mut self.sinks {
            sink.track_started(SinkTrack {
                track_sid: &track.sid,
                participant_sid: &participant_sid,
                identity: &participant.identity,
                kind: track_kind(kind),
                name: &track.name,
            });
        }
        let info = TrackInfo {
            sid: track.sid.clone(),
            kind: track_kind(kind),
            name: track.name.clone(),
        };
        self.tracks.push(track);
        self.emit(RoomEvent::TrackPublished {
            participant_sid,
            track: info,
        });
        let owner = self.participants[index].key;
        for i in 0..self.participants.len() {
            if self.participants[i].key != owner {
                self.subscribe(i, key);
            }
        }
    }

    /// Whether participant `index`'s subscribe rules include `track` (another participant's).
    pub(super) fn wants(&self, index: usize, track: &PublishedTrack) -> bool {
        let publisher = self
            .participants
            .iter()
            .find(|p| p.key == track.owner)
            .map_or("", |p| p.identity.as_str());
        self.participants[index].rules.subscribes(&RuleTrack {
            publisher,
            publisher_sid: Some(&track.owner_sid),
            name: &track.name,
            sid: Some(&track.sid),
            kind: track_kind(track.kind),
        })
    }

    /// Gives participant `index` a subscription to `track` (if it subscribes at all, and its
    /// subscribe rules include the track).
    pub(super) fn subscribe(&mut self, index: usize, track: TrackKey) {
        let Some(published) = self.tracks.iter().find(|t| t.key == track) else {
            return;
        };
        if !self.wants(index, published) {
            return;
        }
        let participant = &mut self.participants[index];
        if !participant.subscribe
            || !participant.is_active()
            || participant.subscriptions.iter().any(|s| s.track == track)
        {
            return;
        }
        if participant.renegotiate {
            participant
                .subscriptions
                .push(Subscription::new(published, SubState::ToOpen));
            participant.needs_negotiation = true;
            return;
        }
        let Some(slot) = participant
            .free_slots
            .iter()
            .position(|(_, kind)| *kind == published.kind)
        else {
            return;
        };
        let (mid, _) = participant.free_slots.remove(slot);
        let mut subscription = Subscription::new(published, SubState::Open(mid));
        subscription.in_offered_slot = true;
        participant.subscriptions.push(subscription);
        let event = RoomEvent::TrackSubscribed {
            participant_sid: participant.sid.clone(),
            publisher_sid: published.owner_sid.clone(),
            track_sid: published.sid.clone(),
        };
        self.emit(event);
        self.refresh_layer_choice(index);
    }

    /// Subscribes participant `index` to every other participant's track it does not receive
    /// yet and its rules include.
    pub(super) fn subscribe_to_wanted(&mut self, index: usize) {
        let owner = self.participants[index].key;
        let waiting: Vec<TrackKey> = self
            .tracks
            .iter()
            .filter(|t| t.owner != owner)
            .map(|t| t.key)
            .collect();
        for track in waiting {
            self.subscribe(index, track);
        }
    }

    /// Puts published tracks the participant does not receive yet into its free offered
    /// `recvonly` m-lines (participants that cannot renegotiate).
    pub(super) fn fill_offered_slots(&mut self, index: usize) {
        let participant = &self.participants[index];
        if participant.renegotiate || participant.free_slots.is_empty() {
            return;
        }
        self.subscribe_to_wanted(index);
    }

    /// Ends participant `index`'s subscription to `track`, if it has one (its track was
    /// unpublished, or its rules no longer include it): frames stop at once; an offered slot
    /// is freed, a negotiated m-line is stopped in the next room offer, one being offered is
    /// stopped when the answer comes. [`RoomEvent::TrackUnsubscribed`] if frames flowed.
    pub(super) fn end_subscription(&mut self, index: usize, track: TrackKey) {
        let participant = &mut self.participants[index];
        let Some(s) = participant
            .subscriptions
            .iter()
            .position(|s| s.track == track)
        else {
            return;
        };
        let subscription = &mut participant.subscriptions[s];
        let was_open = matches!(subscription.state, SubState::Open(_));
        let track_sid = subscription.track_sid.clone();
        match subscription.state {
            SubState::ToOpen => {
                participant.subscriptions.remove(s);
            }
            SubState::Open(mid) if subscription.in_offered_slot => {
                participant.free_slots.push((mid, subscription.kind));
                participant.subscriptions.remove(s);
            }
            SubState::Open(mid) => {
                subscription.state = SubState::ToStop(mid);
                participant.needs_negotiation = true;
            }
            // Settled when the answer arrives: the m-line opens and is stopped at once.
            SubState::Negotiating(_) => subscription.dropped = true,
            SubState::ToStop(_) | SubState::NegotiatingStop(_) => {}
        }
        if was_open {
            let event = RoomEvent::TrackUnsubscribed {
                participant_sid: participant.sid.clone(),
                track_sid,
            };
            self.emit(event);
        }
    }

    pub(super) fn unpublish(&mut self, track: TrackKey) {
        let Some(position) = self.tracks.iter().position(|t| t.key == track) else {
            return;
        };
        let removed = self.tracks.remove(position);
        for sink in &mut self.sinks {
            sink.track_ended(&removed.sid, self.now);
        }
        for i in 0..self.participants.len() {
            self.end_subscription(i, track);
        }
        self.emit(RoomEvent::TrackUnpublished {
            participant_sid: removed.owner_sid,
            track_sid: removed.sid,
        });
        // A freed slot can take a track that found none when it was published.
        for i in 0..self.participants.len() {
            self.fill_offered_slots(i);
        }
    }
}
