//! The plaintext tap at ingest: how a recording sealed with the customer's key is transcribed.
//! The server cannot open such a recording afterwards, so the audio is kept in memory while it
//! is being sealed, and handed to the transcript job from there. Nothing of it touches a disk;
//! the buffer is wiped when the last job is done with it.

use std::sync::Arc;

use async_trait::async_trait;
use mediaseal_sink::PlainTap;
use zeroize::Zeroizing;

use crate::transcripts::AudioSource;

/// Most bytes the tap keeps (about 70 minutes of 8 kHz 16-bit mono); a longer recording is not
/// transcribed from the tap.
pub const MAX_TAP_BYTES: usize = 64 << 20;

/// Keeps the plaintext of a recording on its way into the sink, in memory, up to a limit.
#[derive(Default)]
pub struct IngestTap {
    buf: Zeroizing<Vec<u8>>,
    overflowed: bool,
}

impl core::fmt::Debug for IngestTap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IngestTap")
            .field("kept", &self.buf.len())
            .field("overflowed", &self.overflowed)
            .finish()
    }
}

impl IngestTap {
    /// An empty tap.
    pub fn new() -> Self {
        Self::default()
    }

    /// The audio, unless it was longer than [`MAX_TAP_BYTES`] (then it is wiped at once).
    pub fn into_audio(self) -> Option<TappedAudio> {
        (!self.overflowed && !self.buf.is_empty()).then(|| TappedAudio(Arc::new(self.buf)))
    }
}

impl PlainTap for IngestTap {
    fn feed(&mut self, plain: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.buf.len() + plain.len() > MAX_TAP_BYTES {
            self.overflowed = true;
            // Wipe now rather than hold a recording that will not be transcribed.
            self.buf = Zeroizing::new(Vec::new());
            return;
        }
        if self.buf.capacity() < self.buf.len() + plain.len() {
            // Grow by copying into a new buffer and wiping the old one: a plain `Vec` growth
            // would free the old allocation with the audio still in it.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (self.buf.len() + plain.len())
                    .max(self.buf.capacity() * 2)
                    .min(MAX_TAP_BYTES),
            ));
            bigger.extend_from_slice(&self.buf);
            self.buf = bigger;
        }
        self.buf.extend_from_slice(plain);
    }
}

/// A tapped recording, shared by the transcripts made of it.
#[derive(Clone)]
pub struct TappedAudio(Arc<Zeroizing<Vec<u8>>>);

impl core::fmt::Debug for TappedAudio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TappedAudio({} bytes)", self.0.len())
    }
}

#[async_trait]
impl AudioSource for TappedAudio {
    async fn read_all(&self, _object_key: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, String> {
        if self.0.len() as u64 > limit {
            return Err(format!(
                "{} bytes is more than the {limit} bytes a transcript can be made of",
                self.0.len()
            ));
        }
        Ok(Zeroizing::new(self.0.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_up_to_the_limit_and_nothing_beyond() {
        let mut tap = IngestTap::new();
        for chunk in [&b"RIFF"[..], b"....", &[7u8; 5000]] {
            tap.feed(chunk);
        }
        let audio = tap.into_audio().unwrap();
        assert_eq!(audio.0.len(), 5008);
        assert!(format!("{audio:?}").contains("5008 bytes"));

        let mut big = IngestTap::new();
        big.feed(&vec![1u8; MAX_TAP_BYTES]);
        big.feed(b"x");
        assert!(big.into_audio().is_none());
        assert!(IngestTap::new().into_audio().is_none());
    }
}
