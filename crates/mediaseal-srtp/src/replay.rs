//! Sliding replay window over packet indices (RFC 3711 §3.3.2) and RTP index estimation
//! (RFC 3711 Appendix A).
//!
//! The window is a circular bitmap: bit `i mod B` records whether index `i` was accepted, for
//! the indices within `size` of the highest one. Advancing by `d` clears `d` bits (all of them
//! when `d ≥ B`), so the common in-order case touches one bit.

/// Why [`ReplayWindow::check`] refused an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// The index was already accepted.
    Duplicate,
    /// The index is behind the window.
    TooOld,
}

#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    bits: Box<[u64]>,
    /// Number of bits in `bits`; a power of two ≥ `size`.
    capacity: u64,
    /// Indices `highest - size` and older are rejected.
    size: u64,
    highest: u64,
    started: bool,
}

impl ReplayWindow {
    /// `size` must be at least 1; callers validate the configured range.
    pub(crate) fn new(size: u32) -> Self {
        let size = u64::from(size.max(1));
        let capacity = size.next_power_of_two().max(64);
        let words = usize::try_from(capacity / 64).unwrap_or(1);
        Self {
            bits: vec![0; words].into_boxed_slice(),
            capacity,
            size,
            highest: 0,
            started: false,
        }
    }

    /// The highest accepted index, if any.
    pub(crate) fn highest(&self) -> Option<u64> {
        self.started.then_some(self.highest)
    }

    #[inline]
    fn slot(&self, index: u64) -> (usize, u64) {
        let bit = index & (self.capacity - 1);
        // `bit / 64 < capacity / 64 == bits.len()`, so the index is in range.
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    #[inline]
    fn is_set(&self, index: u64) -> bool {
        let (w, m) = self.slot(index);
        self.bits.get(w).is_some_and(|word| word & m != 0)
    }

    #[inline]
    fn set(&mut self, index: u64, on: bool) {
        let (w, m) = self.slot(index);
        if let Some(word) = self.bits.get_mut(w) {
            if on {
                *word |= m;
            } else {
                *word &= !m;
            }
        }
    }

    /// Whether `index` may be accepted. Does not change the window.
    #[inline]
    pub(crate) fn check(&self, index: u64) -> Result<(), Replay> {
        if !self.started || index > self.highest {
            return Ok(());
        }
        if self.highest - index >= self.size {
            return Err(Replay::TooOld);
        }
        if self.is_set(index) {
            Err(Replay::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records `index` as accepted. Call only after `check` passed and the packet authenticated.
    #[inline]
    pub(crate) fn commit(&mut self, index: u64) {
        if !self.started {
            self.bits.fill(0);
            self.started = true;
            self.highest = index;
        } else if index > self.highest {
            let d = index - self.highest;
            if d >= self.capacity {
                self.bits.fill(0);
            } else {
                for i in self.highest + 1..index {
                    self.set(i, false);
                }
            }
            self.highest = index;
        }
        self.set(index, true);
    }

    /// Forgets everything (used when the ROC is set from outside).
    pub(crate) fn reset(&mut self) {
        self.bits.fill(0);
        self.started = false;
        self.highest = 0;
    }
}

/// The largest SRTP packet index (48 bits).
pub(crate) const MAX_INDEX: u64 = (1 << 48) - 1;

/// Estimates the 48-bit packet index of a packet with sequence number `seq`, given the highest
/// authenticated index (RFC 3711 Appendix A). Before any packet, `roc_hint` is the ROC to use.
///
/// As in libsrtp, a guess of ROC − 1 while the ROC is 0 is taken as ROC 0 (the stream cannot have
/// started before index 0). Returns `None` if the index would pass 2^48.
#[inline]
pub(crate) fn estimate_index(highest: Option<u64>, roc_hint: u32, seq: u16) -> Option<u64> {
    let Some(highest) = highest else {
        return Some((u64::from(roc_hint) << 16) | u64::from(seq));
    };
    let roc = highest >> 16;
    let s_l = (highest & 0xffff) as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    let index = (v << 16) | u64::from(seq);
    (index <= MAX_INDEX).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_basics() {
        let mut w = ReplayWindow::new(128);
        assert_eq!(w.check(5), Ok(()));
        w.commit(5);
        assert_eq!(w.check(5), Err(Replay::Duplicate));
        assert_eq!(w.check(4), Ok(()));
        w.commit(200);
        assert_eq!(w.check(72), Err(Replay::TooOld));
        assert_eq!(w.check(73), Ok(()));
        assert_eq!(w.check(5), Err(Replay::TooOld));
        w.commit(73);
        assert_eq!(w.check(73), Err(Replay::Duplicate));
        assert_eq!(w.check(199), Ok(()));
        // A jump larger than the bitmap clears it.
        w.commit(200 + 10_000);
        assert_eq!(w.check(200 + 9_999), Ok(()));
        assert_eq!(w.check(200 + 10_000), Err(Replay::Duplicate));
    }

    #[test]
    fn window_matches_a_naive_model() {
        // Deterministic pseudo-random walk compared against a set-based model.
        let mut w = ReplayWindow::new(100);
        let mut seen = std::collections::BTreeSet::new();
        let mut highest: Option<u64> = None;
        let mut x: u64 = 0x1234_5678;
        let mut base: u64 = 1000;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            base += x % 3;
            let idx = base - (x >> 8) % 140;
            let model = match highest {
                Some(h) if idx <= h && h - idx >= 100 => Err(Replay::TooOld),
                _ if seen.contains(&idx) => Err(Replay::Duplicate),
                _ => Ok(()),
            };
            assert_eq!(w.check(idx), model, "index {idx}");
            if model.is_ok() {
                w.commit(idx);
                seen.insert(idx);
                highest = Some(highest.map_or(idx, |h| h.max(idx)));
            }
        }
    }

    #[test]
    fn estimate_follows_appendix_a() {
        assert_eq!(estimate_index(None, 0, 65535), Some(65535));
        assert_eq!(estimate_index(None, 7, 3), Some((7 << 16) | 3));
        // Wrap forward.
        assert_eq!(estimate_index(Some(65535), 0, 0), Some(65536));
        assert_eq!(estimate_index(Some(65000), 0, 100), Some(65536 + 100));
        // Late packet from before the wrap.
        assert_eq!(estimate_index(Some(65536 + 10), 0, 65530), Some(65530));
        // ROC 0: never guess ROC -1.
        assert_eq!(estimate_index(Some(10), 0, 65530), Some(65530));
        // Index space exhausted.
        assert_eq!(estimate_index(Some(MAX_INDEX), 0, 0), None);
    }
}
