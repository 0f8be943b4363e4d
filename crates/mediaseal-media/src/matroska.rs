//! Matroska/WebM: the EBML head and the segment info, read from the first bytes of a track.
//!
//! Track recordings arrive as Matroska (`.mka` audio, `.mkv` video). The ingest door checks
//! the head before it publishes a recording, and takes the duration from the segment info when
//! the writer recorded one (a live writer usually cannot: its segment has an unknown size and
//! no duration).

/// EBML header element.
const EBML: u64 = 0x1A45_DFA3;
/// `DocType` inside the EBML header.
const DOC_TYPE: u64 = 0x4282;
/// The segment.
const SEGMENT: u64 = 0x1853_8067;
/// Segment information.
const INFO: u64 = 0x1549_A966;
/// `TimestampScale` inside the info, in ns per tick.
const TIMESTAMP_SCALE: u64 = 0x2A_D7B1;
/// `Duration` inside the info, a float in ticks.
const DURATION: u64 = 0x4489;
/// A cluster: media starts here, so the info (if any) came before.
const CLUSTER: u64 = 0x1F43_B675;

/// What the first bytes of a track recording say.
#[derive(Debug, Clone, PartialEq)]
pub struct MatroskaInfo {
    /// `matroska` or `webm`.
    pub doc_type: String,
    /// Duration from the segment info, when the writer recorded one.
    pub duration_ms: Option<u64>,
}

/// Why the bytes are not a Matroska file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatroskaError {
    /// No EBML header, or one that does not parse.
    #[error("the media is not a Matroska (.mka/.mkv) file")]
    NotMatroska,
    /// An EBML file of another document type.
    #[error("the media is an EBML file of type '{0}', not Matroska")]
    OtherDocType(String),
}

/// A cursor over EBML elements.
struct Ebml<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Ebml<'_> {
    /// A variable-length integer; `keep_marker` for element IDs. The flag is true when all the
    /// value bits are ones ("unknown size").
    fn vint(&mut self, keep_marker: bool) -> Option<(u64, bool)> {
        let first = *self.data.get(self.pos)?;
        let len = first.leading_zeros() as usize + 1;
        if len > 8 {
            return None;
        }
        let bytes = self.data.get(self.pos..self.pos.checked_add(len)?)?;
        let mut v = if keep_marker {
            u64::from(first)
        } else {
            u64::from(first) & (0xff >> len)
        };
        for b in bytes.get(1..)? {
            v = (v << 8) | u64::from(*b);
        }
        let all_ones = !keep_marker && v == (1u64 << (7 * len)) - 1;
        self.pos += len;
        Some((v, all_ones))
    }

    /// `(id, size)`; size `None` means "unknown" (a live stream's segment).
    fn element(&mut self) -> Option<(u64, Option<u64>)> {
        let (id, _) = self.vint(true)?;
        let (size, unknown) = self.vint(false)?;
        Some((id, if unknown { None } else { Some(size) }))
    }

    fn body(&self, size: u64) -> Option<&[u8]> {
        let end = self.pos.checked_add(usize::try_from(size).ok()?)?;
        self.data.get(self.pos..end)
    }
}

/// Reads the EBML header and, if it is within `head`, the segment info of a Matroska/WebM file.
pub fn sniff(head: &[u8]) -> Result<MatroskaInfo, MatroskaError> {
    let mut p = Ebml { data: head, pos: 0 };
    let (id, size) = p.element().ok_or(MatroskaError::NotMatroska)?;
    if id != EBML {
        return Err(MatroskaError::NotMatroska);
    }
    let size = usize::try_from(size.ok_or(MatroskaError::NotMatroska)?)
        .map_err(|_| MatroskaError::NotMatroska)?;
    let header_end = p.pos.checked_add(size).ok_or(MatroskaError::NotMatroska)?;
    let mut doc_type = String::new();
    while p.pos < header_end.min(head.len()) {
        let (id, size) = p.element().ok_or(MatroskaError::NotMatroska)?;
        let size = size.ok_or(MatroskaError::NotMatroska)?;
        let body = p.body(size).ok_or(MatroskaError::NotMatroska)?;
        if id == DOC_TYPE {
            doc_type = String::from_utf8_lossy(body)
                .trim_end_matches('\0')
                .to_owned();
        }
        p.pos += body.len();
    }
    if doc_type != "matroska" && doc_type != "webm" {
        return Err(MatroskaError::OtherDocType(doc_type));
    }
    let mut info = MatroskaInfo {
        doc_type,
        duration_ms: None,
    };
    p.pos = header_end;
    let Some((SEGMENT, _)) = p.element() else {
        return Ok(info);
    };
    // Top-level children of the segment, up to the info (or the end of what we have).
    while let Some((id, size)) = p.element() {
        let Some(size) = size else {
            break;
        };
        if id == INFO {
            let Some(body) = p.body(size) else {
                break;
            };
            info.duration_ms = info_duration_ms(body);
            break;
        }
        if id == CLUSTER {
            break;
        }
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| p.pos.checked_add(s))
        else {
            break;
        };
        p.pos = next;
    }
    Ok(info)
}

/// The duration in a segment info body, scaled to milliseconds.
fn info_duration_ms(body: &[u8]) -> Option<u64> {
    let mut q = Ebml { data: body, pos: 0 };
    let (mut scale, mut duration) = (1_000_000f64, None);
    while let Some((id, Some(size))) = q.element() {
        let Some(v) = q.body(size) else {
            break;
        };
        match (id, v) {
            (TIMESTAMP_SCALE, v) if (1..=8).contains(&v.len()) => {
                scale = v.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)) as f64;
            }
            (DURATION, &[a, b, c, d]) => {
                duration = Some(f64::from(f32::from_be_bytes([a, b, c, d])))
            }
            (DURATION, v) if v.len() == 8 => {
                duration = v.try_into().ok().map(f64::from_be_bytes);
            }
            _ => {}
        }
        q.pos += v.len();
    }
    duration
        .map(|d| d * scale / 1_000_000.0)
        .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms < 1e12)
        .map(|ms| ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EBML header (DocType "webm"), a segment of unknown size, a Void element, and an info
    /// element with a 4-byte float duration of 2500.0 at the default 1 ms scale.
    fn webm_head() -> Vec<u8> {
        let mut f = vec![0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84];
        f.extend_from_slice(b"webm");
        f.extend_from_slice(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        f.extend_from_slice(&[0xEC, 0x82, 0, 0]);
        f.extend_from_slice(&[0x15, 0x49, 0xA9, 0x66, 0x87, 0x44, 0x89, 0x84]);
        f.extend_from_slice(&2500f32.to_be_bytes());
        f
    }

    #[test]
    fn reads_doc_type_and_duration() {
        let f = webm_head();
        let info = sniff(&f).unwrap();
        assert_eq!(info.doc_type, "webm");
        assert_eq!(info.duration_ms, Some(2500));
        assert_eq!(sniff(&f[..20]).unwrap().duration_ms, None);
    }

    #[test]
    fn refuses_what_is_not_matroska() {
        assert_eq!(sniff(b"RIFF....WAVE"), Err(MatroskaError::NotMatroska));
        assert_eq!(sniff(b""), Err(MatroskaError::NotMatroska));
        let mut other = webm_head();
        other[8..12].copy_from_slice(b"abcd");
        assert_eq!(
            sniff(&other),
            Err(MatroskaError::OtherDocType("abcd".to_owned()))
        );
    }

    #[test]
    fn any_prefix_or_corruption_is_safe() {
        let f = webm_head();
        for end in 0..=f.len() {
            let _ = sniff(&f[..end]);
        }
        let mut x = 0x9e37_79b9u32;
        for _ in 0..5000 {
            let mut bytes = f.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % bytes.len();
            bytes[at] = (x >> 11) as u8;
            let _ = sniff(&bytes);
        }
    }
}
