//! DTMF as RFC 4733 telephone events: parsing, a detector for `<Gather>`, and a generator for
//! `<Play digits>`.
//!
//! An event is sent as a series of packets sharing one RTP timestamp (the event's start), with
//! growing durations, and ends with the E bit set, usually three times. The detector reports a
//! digit once per event, on the first packet that carries it, so a lost start packet or the
//! retransmitted end packets never double a digit.

/// Why a telephone-event payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Shorter than the 4-byte event block.
    #[error("telephone-event payload shorter than 4 bytes")]
    TooShort,
}

/// One RFC 4733 §2.3 event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0–9 digits, 10 `*`, 11 `#`, 12–15 `A`–`D`, others are tones).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Volume in -dBm0 (6 bits).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first block of a payload (RFC 2198 redundancy is not used by SIP phones; any
    /// further blocks are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        let b: &[u8; 4] = payload
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(EventError::TooShort)?;
        Ok(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The 4-byte block.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }

    /// The DTMF key, for events 0–15.
    pub fn digit(self) -> Option<char> {
        event_digit(self.event)
    }
}

/// The DTMF key of an event code.
pub fn event_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// The event code of a DTMF key (`0-9 * # A-D`, case-insensitive).
pub fn digit_event(digit: char) -> Option<u8> {
    Some(match digit.to_ascii_uppercase() {
        d @ '0'..='9' => d as u8 - b'0',
        '*' => 10,
        '#' => 11,
        d @ 'A'..='D' => d as u8 - b'A' + 12,
        _ => return None,
    })
}

/// Reports each event of one stream once.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    /// (SSRC, timestamp, event) of the last event reported.
    last: Option<(u32, u32, u8)>,
}

impl DtmfDetector {
    /// A detector that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one authenticated telephone-event packet; returns the key when it starts a new
    /// event.
    pub fn on_packet(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = TelephoneEvent::parse(payload).ok()?;
        let key = (ssrc, timestamp, ev.event);
        if self.last == Some(key) {
            return None;
        }
        let digit = ev.digit()?;
        self.last = Some(key);
        Some(digit)
    }
}

/// One packet to send for a DTMF sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfStep {
    /// An event packet: its block, whether it starts the event (marker bit), and the RTP
    /// timestamp offset of the event's start, in samples from the sequence's start.
    Event {
        /// The block.
        block: TelephoneEvent,
        /// First packet of the event (set the RTP marker).
        marker: bool,
        /// Event start, in samples from the start of the sequence.
        start: u32,
    },
    /// Nothing to send this 20 ms tick.
    Gap,
}

/// Generates RFC 4733 packets for a digit string, one step per 20 ms: each key is 100 ms of
/// event packets and three end packets, then 60 ms of gap; `w` is 500 ms of gap.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    steps: std::vec::IntoIter<DtmfStep>,
}

/// Samples per 20 ms packet at 8 kHz.
const TICK: u32 = 160;

impl DtmfGenerator {
    /// A generator for `digits`; characters other than keys and `w`/`W` are skipped.
    pub fn new(digits: &str) -> Self {
        let mut steps = Vec::new();
        let mut clock: u32 = 0;
        for c in digits.chars() {
            if c.eq_ignore_ascii_case(&'w') {
                for _ in 0..25 {
                    steps.push(DtmfStep::Gap);
                    clock += TICK;
                }
                continue;
            }
            let Some(event) = digit_event(c) else {
                continue;
            };
            let start = clock;
            for i in 1..=5u16 {
                steps.push(DtmfStep::Event {
                    block: TelephoneEvent {
                        event,
                        end: false,
                        volume: 10,
                        duration: i * 160,
                    },
                    marker: i == 1,
                    start,
                });
                clock += TICK;
            }
            for _ in 0..3 {
                steps.push(DtmfStep::Event {
                    block: TelephoneEvent {
                        event,
                        end: true,
                        volume: 10,
                        duration: 800,
                    },
                    marker: false,
                    start,
                });
                clock += TICK;
            }
            for _ in 0..3 {
                steps.push(DtmfStep::Gap);
                clock += TICK;
            }
        }
        Self {
            steps: steps.into_iter(),
        }
    }
}

impl Iterator for DtmfGenerator {
    type Item = DtmfStep;

    fn next(&mut self) -> Option<DtmfStep> {
        self.steps.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let e = TelephoneEvent::parse(&[11, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            e,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(e.digit(), Some('#'));
        assert_eq!(e.to_bytes(), [11, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(EventError::TooShort));
        for (c, n) in [
            ('0', 0),
            ('9', 9),
            ('*', 10),
            ('#', 11),
            ('a', 12),
            ('D', 15),
        ] {
            assert_eq!(digit_event(c), Some(n));
            assert_eq!(event_digit(n), Some(c.to_ascii_uppercase()));
        }
        assert_eq!(event_digit(16), None);
        assert_eq!(digit_event('x'), None);
    }

    #[test]
    fn detector_reports_each_event_once() {
        let mut d = DtmfDetector::new();
        let mut got = String::new();
        // "1" with three end packets, then "1" again (new timestamp), then "#".
        for (ts, block) in [
            (1000, [1, 10, 0, 160]),
            (1000, [1, 10, 1, 64]),
            (1000, [1, 0x8a, 1, 224]),
            (1000, [1, 0x8a, 1, 224]),
            (1000, [1, 0x8a, 1, 224]),
            (2000, [1, 0x8a, 1, 224]), // start packets lost: the end still counts
            (3000, [11, 10, 0, 160]),
            (3000, [20, 10, 0, 160]), // not a key
        ] {
            if let Some(c) = d.on_packet(7, ts, &block) {
                got.push(c);
            }
        }
        assert_eq!(got, "11#");
    }

    #[test]
    fn generator_round_trips_through_the_detector() {
        let mut d = DtmfDetector::new();
        let mut got = String::new();
        let mut ticks = 0;
        for step in DtmfGenerator::new("12w#x") {
            ticks += 1;
            if let DtmfStep::Event { block, start, .. } = step
                && let Some(c) = d.on_packet(1, start, &block.to_bytes())
            {
                got.push(c);
            }
        }
        assert_eq!(got, "12#");
        assert_eq!(ticks, 3 * 11 + 25);
    }
}
