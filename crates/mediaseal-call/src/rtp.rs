//! The RTP fixed header (RFC 3550 §5.1): read and rewrite in place.
//!
//! The relay decrypts every packet, then reads the header to find the payload (for the tap,
//! the DTMF detector and silence detection) and rewrites SSRC, sequence number, timestamp and
//! payload type for the other leg before encrypting. Input is untrusted: every accessor is
//! bounds-checked and a malformed packet is an error, never a panic.

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet shorter than 12 bytes")]
    TooShort,
    /// The version is not 2.
    #[error("RTP version is not 2")]
    BadVersion,
    /// CSRCs or the header extension run past the end of the packet.
    #[error("RTP header longer than the packet")]
    BadHeaderLength,
    /// The padding count is zero or larger than the payload.
    #[error("RTP padding larger than the payload")]
    BadPadding,
}

/// A parsed RTP header: where the payload is and the fields the relay uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Offset of the payload.
    pub payload_offset: usize,
    /// End of the payload (before padding).
    pub payload_end: usize,
}

impl RtpHeader {
    /// Parses the header of a plaintext RTP packet.
    pub fn parse(packet: &[u8]) -> Result<Self, RtpError> {
        let fixed: &[u8; 12] = packet
            .get(..12)
            .and_then(|h| h.try_into().ok())
            .ok_or(RtpError::TooShort)?;
        if fixed[0] >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let csrc_count = usize::from(fixed[0] & 0x0f);
        let mut offset = 12 + 4 * csrc_count;
        if fixed[0] & 0x10 != 0 {
            let ext = packet
                .get(offset..offset + 4)
                .ok_or(RtpError::BadHeaderLength)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            offset += 4 + 4 * words;
        }
        if offset > packet.len() {
            return Err(RtpError::BadHeaderLength);
        }
        let mut end = packet.len();
        if fixed[0] & 0x20 != 0 {
            let pad = usize::from(*packet.last().ok_or(RtpError::BadPadding)?);
            if pad == 0 || pad > end - offset {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(Self {
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7f,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            payload_offset: offset,
            payload_end: end,
        })
    }

    /// The payload of `packet` (which this header was parsed from).
    pub fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        packet
            .get(self.payload_offset..self.payload_end)
            .unwrap_or_default()
    }
}

/// Overwrites the fixed-header fields of a packet already checked by [`RtpHeader::parse`].
pub fn rewrite(
    packet: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    if let Some(h) = packet.get_mut(..12) {
        h[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
        h[2..4].copy_from_slice(&sequence.to_be_bytes());
        h[4..8].copy_from_slice(&timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
}

/// Writes a 12-byte header (no CSRCs, no extension, no padding) at the start of `out` and
/// returns 12. `out` must hold at least 12 bytes.
pub fn write_header(
    out: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) -> usize {
    if let Some(h) = out.get_mut(..12) {
        h[0] = 0x80;
        rewrite(h, marker, payload_type, sequence, timestamp, ssrc);
        12
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rewrites() {
        let mut p = vec![0u8; 12 + 160];
        write_header(&mut p, true, 0, 0xfffe, 160, 0xdead_beef);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(
            (h.payload_type, h.sequence, h.timestamp, h.ssrc),
            (0, 0xfffe, 160, 0xdead_beef)
        );
        assert_eq!(h.payload(&p).len(), 160);
        rewrite(&mut p, false, 101, 7, 8, 9);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(
            (h.marker, h.payload_type, h.sequence, h.timestamp, h.ssrc),
            (false, 101, 7, 8, 9)
        );
    }

    #[test]
    fn csrc_extension_and_padding() {
        // 1 CSRC, an extension of 1 word, 4 payload bytes, 2 padding bytes.
        let mut p = vec![0xb1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[0, 0, 0, 4]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        p.extend_from_slice(&[9, 9, 9, 9, 0, 2]);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(h.payload(&p), &[9, 9, 9, 9]);
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(RtpHeader::parse(&[0x80; 11]), Err(RtpError::TooShort));
        assert_eq!(RtpHeader::parse(&[0x40; 12]), Err(RtpError::BadVersion));
        assert_eq!(
            RtpHeader::parse(&[0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtpError::BadHeaderLength)
        );
        let mut p = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::BadPadding));
        p.pop();
        p.push(0);
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::BadPadding));
    }
}
