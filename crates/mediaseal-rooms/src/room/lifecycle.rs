//! Participants coming and going: commands from the control plane, offers to subscribers,
//! departures, timers, and the end of the room.

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsVersion;
use str0m::media::{Direction, Rid};
use str0m::{Candidate, Rtc};

use super::track::TrackKey;
use super::{
    CLOSE_DRAIN_POLLS, Command, DisconnectReason, DtlsChoice, LAYER_CHECK_EVERY, Output,
    Participant, ParticipantKey, Room, RoomEndReason, RoomEvent, RoomState, SubState, error_event,
};
use crate::subscribe_rules::SubscribeRules;
use crate::token::MAX_IDENTITY_LEN;

impl Room {
    pub(super) fn on_command(&mut self, command: Command) {
        if self.state == RoomState::Ended {
            self.outputs.push_back(error_event(
                None,
                53118,
                "the room has ended; create a new room",
            ));
            return;
        }
        match command {
            Command::Join {
                participant_sid,
                identity,
                offer,
                subscribe,
                renegotiate,
            } => self.join(participant_sid, identity, &offer, subscribe, renegotiate),
            Command::Offer {
                participant_sid,
                sdp,
            } => self.participant_offer(&participant_sid, &sdp),
            Command::Answer {
                participant_sid,
                sdp,
            } => self.participant_answer(&participant_sid, &sdp),
            Command::Candidate {
                participant_sid,
                candidate,
            } => self.participant_candidate(&participant_sid, &candidate),
            Command::SelectLayer {
                participant_sid,
                track_sid,
                layer,
            } => self.select_layer(&participant_sid, &track_sid, layer.as_deref()),
            Command::Leave { participant_sid } => {
                self.remove_participant(&participant_sid, DisconnectReason::Left)
            }
            Command::Kick { participant_sid } => {
                self.remove_participant(&participant_sid, DisconnectReason::Kicked)
            }
            Command::SubscribeRules {
                participant_sid,
                rules,
            } => self.set_subscribe_rules(&participant_sid, rules),
            Command::Complete => self.end(RoomEndReason::Completed),
        }
    }

    pub(super) fn not_found(&mut self, participant_sid: &str) {
        self.outputs.push_back(error_event(
            Some(participant_sid),
            53204,
            "no such participant in this room",
        ));
    }

    pub(super) fn join(
        &mut self,
        participant_sid: String,
        identity: String,
        offer: &str,
        subscribe: bool,
        renegotiate: bool,
    ) {
        let sid = Some(participant_sid.as_str());
        if identity.is_empty() {
            self.outputs
                .push_back(error_event(sid, 53200, "the participant identity is empty"));
            return;
        }
        if identity.len() > MAX_IDENTITY_LEN {
            self.outputs.push_back(error_event(
                sid,
                53201,
                format!("the participant identity exceeds {MAX_IDENTITY_LEN} bytes"),
            ));
            return;
        }
        if self.index_of_sid(&participant_sid).is_some() {
            self.outputs.push_back(error_event(
                sid,
                53104,
                "a participant with this SID is already in the room",
            ));
            return;
        }
        let duplicate = self
            .participants
            .iter()
            .position(|p| p.is_active() && p.identity == identity);
        let others = self.participant_count() - usize::from(duplicate.is_some());
        if others >= self.config.max_participants {
            self.outputs.push_back(error_event(
                sid,
                53105,
                format!(
                    "the room is full ({} participants, its MaxParticipants)",
                    self.config.max_participants
                ),
            ));
            return;
        }
        let offer = match SdpOffer::from_sdp_string(offer) {
            Ok(o) => o,
            Err(e) => {
                self.outputs.push_back(error_event(
                    sid,
                    53403,
                    format!("the SDP offer does not parse: {e}"),
                ));
                return;
            }
        };
        let mut rtc = self.new_rtc();
        for addr in &self.local_addrs {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "host candidate refused"),
            }
        }
        let answer = match rtc.sdp_api().accept_offer(offer) {
            Ok(a) => a,
            Err(e) => {
                self.outputs.push_back(error_event(
                    sid,
                    53403,
                    format!("the SDP offer cannot be applied: {e}"),
                ));
                return;
            }
        };
        // Our connectivity checks start at the join, not when the client's first check
        // arrives: str0m's ICE agent has no clock, so schedules nothing, until its first
        // timeout, and a receive-only offer gives the Rtc no other timer. Without this the
        // client's DTLS ClientHello can come before any check of ours succeeded; it is then
        // dropped as unmatched and waits for the client's DTLS retransmit (1 s or more).
        if let Err(e) = rtc.handle_input(str0m::Input::Timeout(self.now)) {
            self.outputs.push_back(error_event(
                sid,
                53403,
                format!("the connection for this offer could not start: {e}; join again"),
            ));
            return;
        }
        if let Some(d) = duplicate {
            self.participants[d].remove(DisconnectReason::DuplicateIdentity, true);
        }
        let key = ParticipantKey(self.next_key);
        self.next_key += 1;
        self.emit(RoomEvent::Answer {
            participant_sid: participant_sid.clone(),
            sdp: answer.to_sdp_string(),
        });
        tracing::info!(room = %self.config.room_sid, participant = %participant_sid, "participant joined");
        self.participants.push(Participant {
            key,
            sid: participant_sid,
            identity,
            rtc,
            joined_at: self.now,
            connected_at: None,
            ice_lost_since: None,
            next_timeout: self.now,
            pending_offer: None,
            needs_negotiation: false,
            subscribe,
            renegotiate,
            rules: SubscribeRules::default(),
            subscriptions: Vec::new(),
            free_slots: Vec::new(),
            removal: None,
            frames_in: 0,
        });
        self.ever_joined = true;
        self.empty_since = None;
        let index = self.participants.len() - 1;
        self.drain(index);
        self.subscribe_to_wanted(index);
    }

    pub(super) fn new_rtc(&self) -> Rtc {
        let dtls = match self.config.dtls {
            DtlsChoice::Dtls12 => DtlsVersion::Dtls12,
            DtlsChoice::Dtls13 => DtlsVersion::Dtls13,
            DtlsChoice::Auto => DtlsVersion::Auto,
        };
        Rtc::builder()
            .set_ice_lite(self.config.ice_lite)
            .set_dtls_version(dtls)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
            .build(self.now)
    }

    pub(super) fn participant_offer(&mut self, participant_sid: &str, sdp: &str) {
        let Some(index) = self.index_of_sid(participant_sid) else {
            return self.not_found(participant_sid);
        };
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(o) => o,
            Err(e) => {
                self.outputs.push_back(error_event(
                    Some(participant_sid),
                    53403,
                    format!("the SDP offer does not parse: {e}"),
                ));
                return;
            }
        };
        let participant = &mut self.participants[index];
        // The participant's offer wins a collision: ours is void, its changes go into the
        // next one.
        participant.pending_offer = None;
        for s in &mut participant.subscriptions {
            match s.state {
                SubState::Negotiating(_) => s.state = SubState::ToOpen,
                SubState::NegotiatingStop(mid) => s.state = SubState::ToStop(mid),
                _ => {}
            }
        }
        // An m-line dropped while it was being offered was never open: nothing to stop.
        participant
            .subscriptions
            .retain(|s| !(s.dropped && s.state == SubState::ToOpen));
        participant.needs_negotiation = participant
            .subscriptions
            .iter()
            .any(|s| matches!(s.state, SubState::ToOpen | SubState::ToStop(_)));
        match participant.rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => {
                let event = RoomEvent::Answer {
                    participant_sid: participant_sid.to_owned(),
                    sdp: answer.to_sdp_string(),
                };
                self.emit(event);
            }
            Err(e) => {
                self.outputs.push_back(error_event(
                    Some(participant_sid),
                    53403,
                    format!("the SDP offer cannot be applied: {e}"),
                ));
            }
        }
        self.drain(index);
    }

    pub(super) fn participant_answer(&mut self, participant_sid: &str, sdp: &str) {
        let Some(index) = self.index_of_sid(participant_sid) else {
            return self.not_found(participant_sid);
        };
        let participant = &mut self.participants[index];
        let Some(pending) = participant.pending_offer.take() else {
            self.outputs.push_back(error_event(
                Some(participant_sid),
                53004,
                "no room offer is waiting for an answer (a later offer from the participant \
                 replaced it)",
            ));
            return;
        };
        let applied = SdpAnswer::from_sdp_string(sdp)
            .map_err(|e| e.to_string())
            .and_then(|answer| {
                participant
                    .rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = applied {
            self.outputs.push_back(error_event(
                Some(participant_sid),
                53403,
                format!("the SDP answer cannot be applied: {e}"),
            ));
            participant.remove(DisconnectReason::NegotiationFailed, true);
            return;
        }
        let mut opened = Vec::new();
        for s in &mut participant.subscriptions {
            if let SubState::Negotiating(mid) = s.state {
                if !s.dropped && self.tracks.iter().any(|t| t.key == s.track) {
                    s.state = SubState::Open(mid);
                    opened.push((s.publisher_sid.clone(), s.track_sid.clone()));
                } else {
                    s.state = SubState::ToStop(mid);
                    participant.needs_negotiation = true;
                }
            }
        }
        participant
            .subscriptions
            .retain(|s| !matches!(s.state, SubState::NegotiatingStop(_)));
        let subscriber = participant.sid.clone();
        for (publisher_sid, track_sid) in opened {
            self.emit(RoomEvent::TrackSubscribed {
                participant_sid: subscriber.clone(),
                publisher_sid,
                track_sid,
            });
        }
        self.drain(index);
        // A track its rules took away and gave back while an m-line of it was still being
        // stopped is subscribed again now the stop is settled.
        self.subscribe_to_wanted(index);
        self.refresh_layer_choice(index);
    }

    /// Replaces participant `participant_sid`'s subscribe rules and applies them to the tracks
    /// published now: subscriptions they no longer include end (as when their track is
    /// unpublished), tracks they now include are subscribed (as when a track is published).
    pub(super) fn set_subscribe_rules(&mut self, participant_sid: &str, rules: SubscribeRules) {
        let Some(index) = self.index_of_sid(participant_sid) else {
            return self.not_found(participant_sid);
        };
        tracing::info!(room = %self.config.room_sid, participant = %participant_sid, rules = rules.rules.len(), "subscribe rules changed");
        self.participants[index].rules = rules;
        let key = self.participants[index].key;
        let decisions: Vec<(TrackKey, bool)> = self
            .tracks
            .iter()
            .filter(|t| t.owner != key)
            .map(|t| (t.key, self.wants(index, t)))
            .collect();
        for (track, wanted) in decisions {
            if wanted {
                // An m-line of it offered since the rules dropped it opens after all.
                for s in &mut self.participants[index].subscriptions {
                    if s.track == track && matches!(s.state, SubState::Negotiating(_)) {
                        s.dropped = false;
                    }
                }
                self.subscribe(index, track);
            } else {
                self.end_subscription(index, track);
            }
        }
        // Slots freed above take tracks the rules still include.
        self.fill_offered_slots(index);
    }

    pub(super) fn participant_candidate(&mut self, participant_sid: &str, candidate: &str) {
        let Some(index) = self.index_of_sid(participant_sid) else {
            return self.not_found(participant_sid);
        };
        let line = candidate.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.is_empty() {
            // End of candidates: nothing to do for a room that never stops listening.
            return;
        }
        match Candidate::from_sdp_string(line) {
            Ok(c) => {
                self.participants[index].rtc.add_remote_candidate(c);
                self.drain(index);
            }
            Err(e) => self.outputs.push_back(error_event(
                Some(participant_sid),
                53004,
                format!("the ICE candidate does not parse: {e}"),
            )),
        }
    }

    pub(super) fn select_layer(
        &mut self,
        participant_sid: &str,
        track_sid: &str,
        layer: Option<&str>,
    ) {
        let Some(index) = self.index_of_sid(participant_sid) else {
            return self.not_found(participant_sid);
        };
        let Some(subscription) = self.participants[index]
            .subscriptions
            .iter_mut()
            .find(|s| s.track_sid == track_sid)
        else {
            self.outputs.push_back(error_event(
                Some(participant_sid),
                53300,
                "the participant does not subscribe to this track",
            ));
            return;
        };
        subscription.preferred_layer = layer.map(Rid::from);
        self.refresh_layer_choice(index);
    }

    pub(super) fn remove_participant(&mut self, participant_sid: &str, reason: DisconnectReason) {
        match self.index_of_sid(participant_sid) {
            Some(index) => self.participants[index].remove(reason, true),
            None => self.not_found(participant_sid),
        }
    }

    pub(super) fn end(&mut self, reason: RoomEndReason) {
        for p in &mut self.participants {
            p.remove(DisconnectReason::RoomEnded, true);
        }
        self.sweep();
        for track in self.tracks.drain(..) {
            for sink in &mut self.sinks {
                sink.track_ended(&track.sid, self.now);
            }
        }
        self.work.clear();
        self.state = RoomState::Ended;
        tracing::info!(room = %self.config.room_sid, ?reason, "room ended");
        self.emit(RoomEvent::RoomEnded { reason });
    }

    // ----- housekeeping -----

    /// Takes out participants marked for removal: their tracks are unpublished, their
    /// subscriptions dropped, a graceful leaver's DTLS connection closed with close_notify.
    pub(super) fn sweep(&mut self) {
        while let Some(index) = self.participants.iter().position(|p| !p.is_active()) {
            let mut participant = self.participants.remove(index);
            if self.last_matched >= self.participants.len() {
                self.last_matched = 0;
            }
            let (reason, graceful) = participant
                .removal
                .unwrap_or((DisconnectReason::Left, false));
            if graceful && participant.rtc.is_alive() {
                let _ = participant.rtc.close();
                for _ in 0..CLOSE_DRAIN_POLLS {
                    match participant.rtc.poll_output() {
                        Ok(str0m::Output::Transmit(t)) => {
                            self.outputs.push_back(Output::Transmit(t));
                        }
                        Ok(str0m::Output::Event(_)) => {}
                        Ok(str0m::Output::Timeout(_)) | Err(_) => break,
                    }
                }
            }
            let owned: Vec<TrackKey> = self
                .tracks
                .iter()
                .filter(|t| t.owner == participant.key)
                .map(|t| t.key)
                .collect();
            for track in owned {
                self.unpublish(track);
            }
            tracing::info!(room = %self.config.room_sid, participant = %participant.sid, ?reason, "participant left");
            self.emit(RoomEvent::ParticipantDisconnected {
                participant_sid: participant.sid,
                identity: participant.identity,
                reason,
            });
            if self.participants.is_empty() {
                self.empty_since = Some(self.now);
            }
        }
    }

    /// Sends each participant that needs one an offer with its pending subscription changes.
    pub(super) fn negotiate(&mut self) {
        for index in 0..self.participants.len() {
            let participant = &mut self.participants[index];
            if !participant.needs_negotiation
                || participant.pending_offer.is_some()
                || !participant.renegotiate
                || !participant.is_active()
                || !participant.rtc.is_alive()
            {
                continue;
            }
            participant.needs_negotiation = false;
            let Participant {
                rtc, subscriptions, ..
            } = participant;
            let mut changes = rtc.sdp_api();
            for s in subscriptions.iter_mut() {
                match s.state {
                    SubState::ToOpen => {
                        let mid = changes.add_media(
                            s.kind,
                            Direction::SendOnly,
                            Some(s.publisher_sid.clone()),
                            Some(s.track_sid.clone()),
                            None,
                        );
                        s.state = SubState::Negotiating(mid);
                    }
                    SubState::ToStop(mid) => {
                        changes.stop_media(mid);
                        s.state = SubState::NegotiatingStop(mid);
                    }
                    _ => {}
                }
            }
            if let Some((offer, pending)) = changes.apply() {
                participant.pending_offer = Some(pending);
                let event = RoomEvent::Offer {
                    participant_sid: participant.sid.clone(),
                    sdp: offer.to_sdp_string(),
                };
                self.emit(event);
            }
            self.drain(index);
        }
    }

    pub(super) fn housekeeping(&mut self) {
        let now = self.now;
        let interval = self.config.keyframe_request_interval;

        // Coalesced keyframe requests whose interval has ended.
        let mut due = std::mem::take(&mut self.due_keyframes);
        for track in &mut self.tracks {
            for layer in &mut track.layers {
                if let Some(kind) = layer.keyframes.due(now, interval) {
                    track.keyframe_requests_sent += 1;
                    due.push((track.owner, track.mid, layer.rid, kind));
                }
            }
        }
        for (owner, mid, rid, kind) in due.drain(..) {
            self.send_keyframe_request(owner, mid, rid, kind);
        }
        self.due_keyframes = due;

        if now >= self.next_layer_check {
            self.next_layer_check = now + LAYER_CHECK_EVERY;
            for index in 0..self.participants.len() {
                self.refresh_layer_choice(index);
            }
        }

        for p in &mut self.participants {
            if p.connected_at.is_none()
                && now.saturating_duration_since(p.joined_at) >= self.config.connect_timeout
            {
                p.remove(DisconnectReason::ConnectTimeout, true);
            }
            if p.ice_lost_since
                .is_some_and(|t| now.saturating_duration_since(t) >= self.config.reconnect_grace)
            {
                p.remove(DisconnectReason::MediaTimeout, false);
            }
            if self
                .config
                .max_participant_duration
                .is_some_and(|max| now.saturating_duration_since(p.joined_at) >= max)
            {
                p.remove(DisconnectReason::MaxDurationExceeded, true);
            }
        }
        self.sweep();

        if self.participants.is_empty() {
            let unused = !self.ever_joined
                && self
                    .config
                    .unused_room_timeout
                    .is_some_and(|t| now.saturating_duration_since(self.created_at) >= t);
            let empty = self.ever_joined
                && self.empty_since.is_some_and(|since| {
                    self.config
                        .empty_room_timeout
                        .is_some_and(|t| now.saturating_duration_since(since) >= t)
                });
            if unused {
                self.end(RoomEndReason::UnusedRoomTimeout);
            } else if empty {
                self.end(RoomEndReason::EmptyRoomTimeout);
            }
        }
    }
}
