//! Published tracks and the per-track policies of the forwarder: simulcast layer bookkeeping,
//! per-subscriber layer choice and keyframe-request throttling. Pure state, no `Rtc` in sight,
//! so each rule is tested on its own.

use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};

use super::ParticipantKey;

/// Stable handle of a published track inside one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TrackKey(pub(crate) u64);

/// Coalesces keyframe requests for one layer of one publisher track: at most one request per
/// interval reaches the publisher; requests inside the interval are remembered and sent when it
/// ends, unless a keyframe arrives first (then nobody needs one any more).
#[derive(Debug, Default)]
pub(crate) struct KeyframeThrottle {
    last_sent: Option<Instant>,
    pending: Option<KeyframeRequestKind>,
}

fn stronger(a: KeyframeRequestKind, b: KeyframeRequestKind) -> KeyframeRequestKind {
    // A FIR obliges the encoder; a PLI only hints. Keep the stronger of two coalesced requests.
    if a == KeyframeRequestKind::Fir || b == KeyframeRequestKind::Fir {
        KeyframeRequestKind::Fir
    } else {
        KeyframeRequestKind::Pli
    }
}

impl KeyframeThrottle {
    /// A request arrives: `Some(kind)` if it goes to the publisher now, `None` if it was
    /// folded into a pending one.
    pub(crate) fn request(
        &mut self,
        now: Instant,
        interval: Duration,
        kind: KeyframeRequestKind,
    ) -> Option<KeyframeRequestKind> {
        let open = self.last_sent.is_none_or(|t| now >= t + interval);
        if open {
            let kind = self.pending.take().map_or(kind, |p| stronger(p, kind));
            self.last_sent = Some(now);
            Some(kind)
        } else {
            self.pending = Some(self.pending.map_or(kind, |p| stronger(p, kind)));
            None
        }
    }

    /// A pending request whose interval has ended, to send now.
    pub(crate) fn due(&mut self, now: Instant, interval: Duration) -> Option<KeyframeRequestKind> {
        let deadline = self.deadline(interval)?;
        if now < deadline {
            return None;
        }
        self.last_sent = Some(now);
        self.pending.take()
    }

    /// When the pending request may go out, if one is pending.
    pub(crate) fn deadline(&self, interval: Duration) -> Option<Instant> {
        // A request is only ever held back behind one that was sent.
        self.pending?;
        self.last_sent.map(|t| t + interval)
    }

    /// A keyframe arrived on this layer: a pending request is moot.
    pub(crate) fn satisfied(&mut self) {
        self.pending = None;
    }

    #[cfg(test)]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// Bytes per second over the last whole one-second window.
#[derive(Debug, Default)]
struct RateMeter {
    window_start: Option<Instant>,
    window_bytes: u64,
    last_rate: u64,
}

impl RateMeter {
    fn record(&mut self, now: Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            let millis = u64::try_from(elapsed.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            self.last_rate = self.window_bytes.saturating_mul(1000) / millis;
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
        self.window_bytes = self.window_bytes.saturating_add(bytes as u64);
    }

    /// The best current estimate: the last window, or the running one before any completed.
    fn rate(&self) -> u64 {
        if self.last_rate > 0 {
            self.last_rate
        } else {
            self.window_bytes
        }
    }
}

/// One incoming encoding of a track: the single stream of a plain track, or one simulcast
/// layer.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) rid: Option<Rid>,
    last_frame_at: Option<Instant>,
    rate: RateMeter,
    pub(crate) keyframes: KeyframeThrottle,
}

impl Layer {
    fn new(rid: Option<Rid>) -> Self {
        Self {
            rid,
            last_frame_at: None,
            rate: RateMeter::default(),
            keyframes: KeyframeThrottle::default(),
        }
    }

    fn is_active(&self, now: Instant, inactive_after: Duration) -> bool {
        self.last_frame_at
            .is_some_and(|t| now.saturating_duration_since(t) < inactive_after)
    }
}

/// A track a participant publishes.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub(crate) key: TrackKey,
    pub(crate) sid: String,
    pub(crate) owner: ParticipantKey,
    pub(crate) owner_sid: String,
    pub(crate) mid: Mid,
    pub(crate) kind: MediaKind,
    pub(crate) name: String,
    pub(crate) simulcast: bool,
    pub(crate) layers: Vec<Layer>,
    pub(crate) frames_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) keyframe_requests_in: u64,
    pub(crate) keyframe_requests_sent: u64,
    pub(crate) keyframe_requests_coalesced: u64,
}

impl PublishedTrack {
    pub(crate) fn new(
        key: TrackKey,
        sid: String,
        owner: (ParticipantKey, &str),
        mid: Mid,
        kind: MediaKind,
        name: String,
        rids: &[Rid],
    ) -> Self {
        let layers = if rids.is_empty() {
            vec![Layer::new(None)]
        } else {
            rids.iter().map(|r| Layer::new(Some(*r))).collect()
        };
        Self {
            key,
            sid,
            owner: owner.0,
            owner_sid: owner.1.to_owned(),
            mid,
            kind,
            name,
            simulcast: rids.len() > 1,
            layers,
            frames_in: 0,
            bytes_in: 0,
            keyframe_requests_in: 0,
            keyframe_requests_sent: 0,
            keyframe_requests_coalesced: 0,
        }
    }

    /// The layer a frame with `rid` belongs to; unknown rids get a layer of their own (a
    /// publisher may send a rid it did not announce).
    pub(crate) fn layer_mut(&mut self, rid: Option<Rid>) -> &mut Layer {
        let index = match self.layers.iter().position(|l| l.rid == rid) {
            Some(i) => i,
            None => {
                self.layers.push(Layer::new(rid));
                self.simulcast = self.layers.len() > 1;
                self.layers.len() - 1
            }
        };
        &mut self.layers[index]
    }

    /// Books an incoming frame.
    pub(crate) fn record_frame(
        &mut self,
        now: Instant,
        rid: Option<Rid>,
        len: usize,
        keyframe: bool,
    ) {
        self.frames_in += 1;
        self.bytes_in += len as u64;
        let layer = self.layer_mut(rid);
        layer.last_frame_at = Some(now);
        layer.rate.record(now, len);
        if keyframe {
            layer.keyframes.satisfied();
        }
    }

    /// Asks for a keyframe on layer `rid`, throttled. Returns what to send to the publisher now.
    pub(crate) fn keyframe_request(
        &mut self,
        now: Instant,
        interval: Duration,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    ) -> Option<KeyframeRequestKind> {
        self.keyframe_requests_in += 1;
        let sent = self.layer_mut(rid).keyframes.request(now, interval, kind);
        if sent.is_some() {
            self.keyframe_requests_sent += 1;
        } else {
            self.keyframe_requests_coalesced += 1;
        }
        sent
    }

    /// The earliest moment a coalesced keyframe request of this track may go out.
    #[cfg(test)]
    pub(crate) fn keyframe_deadline(&self, interval: Duration) -> Option<Instant> {
        self.layers
            .iter()
            .filter_map(|l| l.keyframes.deadline(interval))
            .min()
    }

    /// Picks the layer a subscriber should receive: its preferred rid while that layer flows,
    /// else the flowing layer with the highest bitrate. Ordering by measured bitrate rather
    /// than by rid name works whatever naming the publisher uses (`q/h/f`, `l/m/h`, `0/1/2`).
    /// `None` when no layer flows.
    pub(crate) fn select_layer(
        &self,
        preferred: Option<Rid>,
        now: Instant,
        inactive_after: Duration,
    ) -> Option<Option<Rid>> {
        let mut active = self
            .layers
            .iter()
            .filter(|l| l.is_active(now, inactive_after));
        if let Some(want) = preferred
            && let Some(l) = self
                .layers
                .iter()
                .find(|l| l.rid == Some(want) && l.is_active(now, inactive_after))
        {
            return Some(l.rid);
        }
        let first = active.next()?;
        let best = active.fold(first, |best, l| {
            if l.rate.rate() > best.rate.rate() {
                l
            } else {
                best
            }
        });
        Some(best.rid)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an epoch for simulated time
mod tests {
    use super::*;

    const I: Duration = Duration::from_millis(500);

    #[test]
    fn throttle_sends_one_request_per_interval_and_flushes_the_rest() {
        let t0 = Instant::now();
        let mut t = KeyframeThrottle::default();
        assert_eq!(
            t.request(t0, I, KeyframeRequestKind::Pli),
            Some(KeyframeRequestKind::Pli)
        );
        for ms in [1, 10, 100, 499] {
            assert_eq!(
                t.request(t0 + Duration::from_millis(ms), I, KeyframeRequestKind::Pli),
                None
            );
        }
        assert_eq!(
            t.request(t0 + Duration::from_millis(200), I, KeyframeRequestKind::Fir),
            None
        );
        assert_eq!(t.deadline(I), Some(t0 + I));
        assert_eq!(t.due(t0 + Duration::from_millis(400), I), None);
        assert_eq!(t.due(t0 + I, I), Some(KeyframeRequestKind::Fir));
        assert_eq!(t.due(t0 + I * 3, I), None, "nothing pending any more");
    }

    #[test]
    fn a_keyframe_cancels_the_pending_request() {
        let t0 = Instant::now();
        let mut t = KeyframeThrottle::default();
        t.request(t0, I, KeyframeRequestKind::Pli);
        t.request(t0 + Duration::from_millis(5), I, KeyframeRequestKind::Pli);
        assert!(t.is_pending());
        t.satisfied();
        assert_eq!(t.due(t0 + I, I), None);
    }

    fn track(rids: &[&str]) -> PublishedTrack {
        let rids: Vec<Rid> = rids.iter().map(|r| Rid::from(*r)).collect();
        PublishedTrack::new(
            TrackKey(1),
            "MT1".into(),
            (ParticipantKey(1), "PA1"),
            Mid::from("0"),
            MediaKind::Video,
            "cam".into(),
            &rids,
        )
    }

    #[test]
    fn layer_choice_follows_bitrate_activity_and_preference() {
        let t0 = Instant::now();
        let mut tr = track(&["q", "h", "f"]);
        assert!(tr.simulcast);
        let gone = Duration::from_millis(1500);
        assert_eq!(tr.select_layer(None, t0, gone), None, "nothing flows yet");
        // Two seconds of 30 fps: q small, h medium, f large.
        for i in 0..60u64 {
            let now = t0 + Duration::from_millis(i * 33);
            tr.record_frame(now, Some(Rid::from("q")), 200, false);
            tr.record_frame(now, Some(Rid::from("h")), 800, false);
            tr.record_frame(now, Some(Rid::from("f")), 3000, false);
        }
        let now = t0 + Duration::from_secs(2);
        assert_eq!(tr.select_layer(None, now, gone), Some(Some(Rid::from("f"))));
        assert_eq!(
            tr.select_layer(Some(Rid::from("q")), now, gone),
            Some(Some(Rid::from("q")))
        );
        // f stops (the publisher's encoder dropped it): the best remaining layer wins.
        for i in 60..120u64 {
            let now = t0 + Duration::from_millis(i * 33);
            tr.record_frame(now, Some(Rid::from("q")), 200, false);
            tr.record_frame(now, Some(Rid::from("h")), 800, false);
        }
        let later = t0 + Duration::from_millis(120 * 33);
        assert_eq!(
            tr.select_layer(None, later, gone),
            Some(Some(Rid::from("h")))
        );
        assert_eq!(
            tr.select_layer(Some(Rid::from("f")), later, gone),
            Some(Some(Rid::from("h"))),
            "a preference for a stopped layer falls back"
        );
    }

    #[test]
    fn keyframe_requests_are_throttled_per_layer() {
        let t0 = Instant::now();
        let mut tr = track(&["l", "h"]);
        let l = Some(Rid::from("l"));
        let h = Some(Rid::from("h"));
        assert!(
            tr.keyframe_request(t0, I, l, KeyframeRequestKind::Pli)
                .is_some()
        );
        assert!(
            tr.keyframe_request(t0, I, h, KeyframeRequestKind::Pli)
                .is_some()
        );
        for _ in 0..10 {
            assert!(
                tr.keyframe_request(t0, I, l, KeyframeRequestKind::Pli)
                    .is_none()
            );
        }
        assert_eq!(tr.keyframe_requests_in, 12);
        assert_eq!(tr.keyframe_requests_sent, 2);
        assert_eq!(tr.keyframe_requests_coalesced, 10);
        assert_eq!(tr.keyframe_deadline(I), Some(t0 + I));
    }
}
