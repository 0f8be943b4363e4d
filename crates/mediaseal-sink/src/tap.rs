//! Plaintext taps: consumers that see a product's plaintext on its way into the sink, in memory
//! only (a duration sniffer, a format check, the speech recogniser's feed).

use zeroize::Zeroizing;

/// Sees every plaintext byte written to a sink, in order. A tap must keep what it sees in
/// memory (or hand it to another in-memory consumer); it never writes it anywhere.
pub trait PlainTap: Send {
    /// The next plaintext bytes.
    fn feed(&mut self, plain: &[u8]);
}

/// Keeps the first bytes of a product, for format sniffing (a WAV header, a Matroska head).
/// The bytes are wiped when the tap is dropped.
#[derive(Default)]
pub struct HeadTap {
    limit: usize,
    head: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for HeadTap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeadTap")
            .field("limit", &self.limit)
            .field("kept", &self.head.len())
            .finish()
    }
}

impl HeadTap {
    /// Keeps up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            head: Zeroizing::new(Vec::with_capacity(limit)),
        }
    }

    /// What was kept.
    pub fn bytes(&self) -> &[u8] {
        &self.head
    }
}

impl PlainTap for HeadTap {
    fn feed(&mut self, plain: &[u8]) {
        let take = self.limit.saturating_sub(self.head.len()).min(plain.len());
        if let Some(part) = plain.get(..take) {
            self.head.extend_from_slice(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_keeps_only_the_first_bytes() {
        let mut t = HeadTap::new(5);
        t.feed(b"abc");
        t.feed(b"defgh");
        t.feed(b"ij");
        assert_eq!(t.bytes(), b"abcde");
    }
}
