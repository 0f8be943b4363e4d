//! Counters of the SIP edge: read them with [`crate::VoiceEdgeHandle::metrics`], and they are
//! published through the `metrics` facade (so `/metrics` shows them when the server installs
//! its Prometheus recorder).
//!
//! | name | type | what |
//! |---|---|---|
//! | `mediaseal_sip_active_calls` | gauge | calls past authentication, not yet ended |
//! | `mediaseal_sip_calls_accepted_total` | counter | calls accepted by authentication and policy |
//! | `mediaseal_sip_policy_rejections_total{reason}` | counter | secure-media policy refusals by reason |
//! | `mediaseal_sip_refusals_total{reason}` | counter | refusals before the policy (`unknown_domain`, `challenged`, `bad_credentials`, `not_allowed`…) |
//! | `mediaseal_srtp_auth_failures_total` | counter | SRTP/SRTCP packets that failed authentication (forged, wrong key, plain RTP on a secure leg) |
//! | `mediaseal_srtp_replays_total` | counter | replayed or too-old SRTP/SRTCP packets |
//! | `mediaseal_relay_packets_forwarded_total` | counter | packets decrypted on one leg and re-encrypted for the other |
//! | `mediaseal_relay_packets_dropped_total` | counter | other drops (malformed, unknown payload type, foreign source) |
//! | `mediaseal_recorder_frames_dropped_total` | counter | tap frames dropped because the recorder queue was full |

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mediaseal_call::CoreStats;
use mediaseal_call::relay::RelayCounters;

/// The edge's counters (shared by the signalling task and the relay threads).
#[derive(Debug, Default)]
pub struct VoiceMetrics {
    pub(crate) relay_received: AtomicU64,
    pub(crate) relay_forwarded: AtomicU64,
    pub(crate) relay_generated: AtomicU64,
    pub(crate) srtp_auth_failures: AtomicU64,
    pub(crate) srtp_replays: AtomicU64,
    pub(crate) relay_dropped: AtomicU64,
    pub(crate) tap_frames: AtomicU64,
    pub(crate) recorder_frames_dropped: AtomicU64,
    pub(crate) digits: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) core: Mutex<CoreStats>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Calls in progress.
    pub active_calls: usize,
    /// Calls accepted.
    pub calls_accepted: u64,
    /// Policy rejections by reason label.
    pub policy_rejections: BTreeMap<String, u64>,
    /// Refusals before the policy, by reason.
    pub refusals: BTreeMap<String, u64>,
    /// Webhook requests made.
    pub webhooks: u64,
    /// Datagrams the relay received.
    pub relay_received: u64,
    /// Packets re-encrypted and forwarded.
    pub relay_forwarded: u64,
    /// Packets the relay generated (prompts, DTMF, RTCP reports).
    pub relay_generated: u64,
    /// SRTP/SRTCP authentication failures.
    pub srtp_auth_failures: u64,
    /// Replayed SRTP/SRTCP packets.
    pub srtp_replays: u64,
    /// Other dropped packets.
    pub relay_dropped: u64,
    /// Frames handed to recorders.
    pub tap_frames: u64,
    /// Frames dropped because a recorder's queue was full.
    pub recorder_frames_dropped: u64,
    /// DTMF keys detected.
    pub digits: u64,
    /// Datagrams the kernel refused to send.
    pub send_errors: u64,
}

impl VoiceMetrics {
    pub(crate) fn add_relay(&self, c: &RelayCounters) {
        let add = |a: &AtomicU64, v: u64| {
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&self.relay_received, c.received);
        add(&self.relay_forwarded, c.forwarded);
        add(&self.relay_generated, c.generated);
        add(&self.srtp_auth_failures, c.auth_failures);
        add(&self.srtp_replays, c.replays);
        add(&self.relay_dropped, c.other_drops);
        add(&self.tap_frames, c.tap_frames);
        add(&self.recorder_frames_dropped, c.tap_dropped);
        add(&self.digits, c.digits);
    }

    pub(crate) fn set_core(&self, stats: CoreStats) {
        if let Ok(mut c) = self.core.lock() {
            *c = stats;
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let core = self.core.lock().map(|c| c.clone()).unwrap_or_default();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            active_calls: core.active_calls,
            calls_accepted: core.calls_accepted,
            policy_rejections: core
                .policy_rejections
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            refusals: core
                .refusals
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            webhooks: core.webhooks,
            relay_received: get(&self.relay_received),
            relay_forwarded: get(&self.relay_forwarded),
            relay_generated: get(&self.relay_generated),
            srtp_auth_failures: get(&self.srtp_auth_failures),
            srtp_replays: get(&self.srtp_replays),
            relay_dropped: get(&self.relay_dropped),
            tap_frames: get(&self.tap_frames),
            recorder_frames_dropped: get(&self.recorder_frames_dropped),
            digits: get(&self.digits),
            send_errors: get(&self.send_errors),
        }
    }

    /// Copies the counters into the `metrics` facade.
    pub fn publish(&self) {
        let s = self.snapshot();
        metrics::gauge!("mediaseal_sip_active_calls").set(s.active_calls as f64);
        metrics::counter!("mediaseal_sip_calls_accepted_total").absolute(s.calls_accepted);
        for (reason, n) in &s.policy_rejections {
            metrics::counter!("mediaseal_sip_policy_rejections_total", "reason" => reason.clone())
                .absolute(*n);
        }
        for (reason, n) in &s.refusals {
            metrics::counter!("mediaseal_sip_refusals_total", "reason" => reason.clone())
                .absolute(*n);
        }
        metrics::counter!("mediaseal_srtp_auth_failures_total").absolute(s.srtp_auth_failures);
        metrics::counter!("mediaseal_srtp_replays_total").absolute(s.srtp_replays);
        metrics::counter!("mediaseal_relay_packets_forwarded_total").absolute(s.relay_forwarded);
        metrics::counter!("mediaseal_relay_packets_dropped_total").absolute(s.relay_dropped);
        metrics::counter!("mediaseal_recorder_frames_dropped_total")
            .absolute(s.recorder_frames_dropped);
    }
}
