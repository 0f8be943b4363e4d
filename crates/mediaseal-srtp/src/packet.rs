//! RTP/RTCP header checks: just enough parsing to find what SRTP needs, without panics.

/// Why a packet could not be processed as RTP or RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedPacket {
    /// Shorter than the fixed header (plus the SRTP/SRTCP trailer on receive).
    #[error("packet too short")]
    TooShort,
    /// The version field is not 2.
    #[error("RTP/RTCP version is not 2")]
    BadVersion,
    /// The CSRC list or header extension runs past the end of the packet.
    #[error("RTP header (CSRCs or extension) longer than the packet")]
    HeaderOverrun,
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

/// Fields of an RTP header SRTP needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    /// Header length including CSRCs and extension: where encryption starts.
    pub(crate) len: usize,
    pub(crate) seq: u16,
    pub(crate) ssrc: u32,
}

/// Parses the RTP header of `pkt`, whose last `trailer` bytes are not part of the RTP packet.
#[inline]
pub(crate) fn rtp_header(pkt: &[u8], trailer: usize) -> Result<RtpHeader, MalformedPacket> {
    let end = pkt
        .len()
        .checked_sub(trailer)
        .ok_or(MalformedPacket::TooShort)?;
    let b0 = *pkt.first().ok_or(MalformedPacket::TooShort)?;
    if end < 12 {
        return Err(MalformedPacket::TooShort);
    }
    if b0 >> 6 != 2 {
        return Err(MalformedPacket::BadVersion);
    }
    let seq = be16(pkt, 2).ok_or(MalformedPacket::TooShort)?;
    let ssrc = be32(pkt, 8).ok_or(MalformedPacket::TooShort)?;
    let mut len = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        // Extension header: 16-bit profile, 16-bit length in 32-bit words.
        let words = be16(pkt, len + 2).ok_or(MalformedPacket::HeaderOverrun)?;
        len += 4 + 4 * usize::from(words);
    }
    if len > end {
        return Err(MalformedPacket::HeaderOverrun);
    }
    Ok(RtpHeader { len, seq, ssrc })
}

/// Checks the fixed RTCP header of `pkt` and returns the sender SSRC.
#[inline]
pub(crate) fn rtcp_ssrc(pkt: &[u8], trailer: usize) -> Result<u32, MalformedPacket> {
    let end = pkt
        .len()
        .checked_sub(trailer)
        .ok_or(MalformedPacket::TooShort)?;
    if end < 8 {
        return Err(MalformedPacket::TooShort);
    }
    let b0 = *pkt.first().ok_or(MalformedPacket::TooShort)?;
    if b0 >> 6 != 2 {
        return Err(MalformedPacket::BadVersion);
    }
    be32(pkt, 4).ok_or(MalformedPacket::TooShort)
}

/// Whether a packet on an RTP/RTCP-multiplexed port is RTCP (RFC 5761 §4: the second byte, as an
/// RTCP packet type, is in 192..=223, i.e. an RTP payload type 64..=95 with the marker bit).
pub fn is_rtcp(pkt: &[u8]) -> bool {
    pkt.get(1).is_some_and(|pt| (192..=223).contains(pt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_headers() {
        let mut p = vec![
            0x80, 0, 0x12, 0x34, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3,
        ];
        let h = rtp_header(&p, 0).unwrap();
        assert_eq!((h.len, h.seq, h.ssrc), (12, 0x1234, 0xcafe_babe));
        assert_eq!(rtp_header(&p, 4), Err(MalformedPacket::TooShort));
        p[0] = 0x81; // one CSRC but only 3 bytes follow
        assert_eq!(rtp_header(&p, 0), Err(MalformedPacket::HeaderOverrun));
        p.push(4);
        assert_eq!(rtp_header(&p, 0).unwrap().len, 16);
        p[0] = 0x90; // extension header: needs 4 bytes at 12, then words*4
        p.extend_from_slice(&[0xbe, 0xde, 0, 1]);
        assert_eq!(rtp_header(&p, 0), Err(MalformedPacket::HeaderOverrun));
        p[12..16].copy_from_slice(&[0xbe, 0xde, 0, 0]);
        assert_eq!(rtp_header(&p, 0).unwrap().len, 16);
        p[0] = 0x40;
        assert_eq!(rtp_header(&p, 0), Err(MalformedPacket::BadVersion));
        assert_eq!(rtp_header(&[], 0), Err(MalformedPacket::TooShort));
    }

    #[test]
    fn rtcp_detection() {
        assert!(is_rtcp(&[0x80, 200]));
        assert!(!is_rtcp(&[0x80, 0]));
        assert!(!is_rtcp(&[0x80]));
        assert_eq!(
            rtcp_ssrc(&[0x81, 200, 0, 1, 1, 2, 3, 4], 0),
            Ok(0x0102_0304)
        );
        assert_eq!(
            rtcp_ssrc(&[0x81, 200, 0, 1, 1, 2, 3], 0),
            Err(MalformedPacket::TooShort)
        );
    }
}
