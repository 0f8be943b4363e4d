//! Matroska/WebM: the EBML head and the segment info, read from the first bytes of a track,
//! and the [`BlockClock`] that measures a track's length from its blocks as it streams past.
//!
//! Track recordings arrive as Matroska (`.mka` audio, `.mkv` video). The ingest door checks
//! the head before it publishes a recording, and takes the duration from the block clock: the
//! segment info's duration (when the writer recorded one; a live writer usually cannot) is a
//! claim of the uploader, and a composition sized by a claim can be made to run for days.

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

/// `Tracks`, `Cues`, `Tags`, `SeekHead`, `Chapters`, `Attachments`: with the cluster and the
/// info, the segment's children. One of them ends a cluster of unknown size.
const LEVEL1: [u64; 8] = [
    CLUSTER,
    INFO,
    0x1654_AE6B,
    0x1C53_BB6B,
    0x1254_C367,
    0x114D_9B74,
    0x1043_A770,
    0x1941_A469,
];
/// A cluster's `Timestamp`, in ticks.
const CLUSTER_TIMESTAMP: u64 = 0xE7;
/// A block group: a `Block` and its `BlockDuration`.
const BLOCK_GROUP: u64 = 0xA0;
/// A block inside a group.
const BLOCK: u64 = 0xA1;
/// A block on its own.
const SIMPLE_BLOCK: u64 = 0xA3;
/// A grouped block's duration, in ticks.
const BLOCK_DURATION: u64 = 0x9B;
/// The longest element header: a 4-byte ID and an 8-byte size.
const MAX_HEADER: usize = 12;
/// What a block's header needs: an up-to-8-byte track number and a 2-byte relative time.
const BLOCK_HEAD: u64 = 10;

/// An element being read whose first `want` bytes are needed.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    id: u64,
    size: u64,
    want: usize,
}

/// Measures how long a Matroska track really is from the timestamps of its blocks, as its
/// bytes stream past (for instance on their way into the sealing sink).
///
/// The length a writer puts in the segment info, like a length the uploader states, is only a
/// claim: a two-second track can say it lasts a week. The blocks' own timestamps are what a
/// player (and ffmpeg) follow. The clock keeps no media: it reads element headers, the
/// timestamp scale, cluster timestamps and the few header bytes of each block, and skips
/// everything else; at most 12 bytes are held at a time, wiped when dropped.
#[derive(Debug)]
pub struct BlockClock {
    /// Bytes of the element header or leaf being read; never more than [`MAX_HEADER`].
    buf: zeroize::Zeroizing<Vec<u8>>,
    /// Stream offset of `buf[0]`.
    pos: u64,
    /// Bytes still to pass over.
    skip: u64,
    /// Open master elements: `(id, end offset)`, `None` for an unknown size.
    open: Vec<(u64, Option<u64>)>,
    leaf: Option<Leaf>,
    /// Nanoseconds per tick.
    scale_ns: u64,
    cluster_ticks: i64,
    /// Start of the last block seen, for a `BlockDuration` that follows it.
    last_start: Option<i64>,
    /// The last step between two successive block starts: the length of a block that states
    /// none (a track's blocks are evenly spaced, 20 ms of Opus, a video frame).
    step: i64,
    first: Option<i64>,
    /// The latest block start.
    end: Option<i64>,
    /// The latest end of a block that states its duration.
    stated_end: Option<i64>,
    /// Stopped: the stream is not Matroska as this reader understands it.
    broken: bool,
}

impl Default for BlockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockClock {
    /// A clock at the start of a stream.
    pub fn new() -> Self {
        Self {
            buf: zeroize::Zeroizing::new(Vec::with_capacity(MAX_HEADER)),
            pos: 0,
            skip: 0,
            open: Vec::new(),
            leaf: None,
            scale_ns: 1_000_000,
            cluster_ticks: 0,
            last_start: None,
            step: 0,
            first: None,
            end: None,
            stated_end: None,
            broken: false,
        }
    }

    /// The next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !self.broken {
            if self.skip > 0 {
                let from_buf = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                if from_buf > 0 {
                    self.buf.drain(..from_buf);
                    self.advance(from_buf);
                    self.skip -= from_buf as u64;
                    continue;
                }
                if data.is_empty() {
                    return;
                }
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                data = data.get(n..).unwrap_or_default();
                self.advance(n);
                self.skip -= n as u64;
                continue;
            }
            let target = self.leaf.map_or(MAX_HEADER, |l| l.want);
            if self.buf.len() < target && !data.is_empty() {
                let n = (target - self.buf.len()).min(data.len());
                let (now, rest) = data.split_at(n);
                self.buf.extend_from_slice(now);
                data = rest;
                continue;
            }
            if !self.step() {
                return;
            }
        }
    }

    /// How long the track lasts, in ms: from its first block to the end of its last (a block
    /// without a stated duration lasts as long as the step between the blocks before it, at
    /// most a second). `None` when no block was read.
    pub fn duration_ms(&self) -> Option<u64> {
        let (first, last) = (i128::from(self.first?), i128::from(self.end?));
        let scale = i128::from(self.scale_ns);
        let step_ns = (i128::from(self.step) * scale).min(1_000_000_000);
        let end_ns =
            (last * scale + step_ns).max(self.stated_end.map_or(0, |e| i128::from(e) * scale));
        u64::try_from((end_ns - first * scale) / 1_000_000).ok()
    }

    fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n as u64);
    }

    /// One element header or leaf out of `buf`; false when more bytes are needed.
    fn step(&mut self) -> bool {
        if let Some(leaf) = self.leaf {
            if self.buf.len() < leaf.want {
                return false;
            }
            let body = zeroize::Zeroizing::new(self.buf.drain(..leaf.want).collect::<Vec<u8>>());
            self.advance(leaf.want);
            self.read_leaf(leaf.id, &body);
            self.skip = leaf.size - leaf.want as u64;
            self.leaf = None;
            return true;
        }
        while let Some(&(id, Some(end))) = self.open.last()
            && self.pos >= end
        {
            self.close(id);
        }
        let mut p = Ebml {
            data: &self.buf,
            pos: 0,
        };
        let Some((id, size)) = p.element() else {
            // An unparsable header with every byte it could need is not Matroska.
            self.broken = self.buf.len() >= MAX_HEADER;
            return false;
        };
        let header = p.pos;
        if LEVEL1.contains(&id)
            && let Some(&(CLUSTER, None)) = self.open.last()
        {
            self.close(CLUSTER);
        }
        self.buf.drain(..header);
        self.advance(header);
        let in_info = self.open.last().is_some_and(|(open, _)| *open == INFO);
        match (id, size) {
            (SEGMENT | CLUSTER | BLOCK_GROUP | INFO, size) => {
                self.open
                    .push((id, size.map(|s| self.pos.saturating_add(s))));
            }
            (_, None) => self.broken = true,
            (TIMESTAMP_SCALE, Some(size)) if in_info && (1..=8).contains(&size) => {
                self.read(id, size, size);
            }
            (CLUSTER_TIMESTAMP | BLOCK_DURATION, Some(size)) if (1..=8).contains(&size) => {
                self.read(id, size, size);
            }
            (SIMPLE_BLOCK | BLOCK, Some(size)) if size >= 3 => {
                self.read(id, size, size.min(BLOCK_HEAD));
            }
            (_, Some(size)) => self.skip = size,
        }
        true
    }

    fn read(&mut self, id: u64, size: u64, want: u64) {
        self.leaf = Some(Leaf {
            id,
            size,
            want: usize::try_from(want).unwrap_or(MAX_HEADER),
        });
    }

    fn close(&mut self, id: u64) {
        self.open.pop();
        if id == CLUSTER {
            self.cluster_ticks = 0;
        }
    }

    fn read_leaf(&mut self, id: u64, body: &[u8]) {
        let uint = || body.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        match id {
            TIMESTAMP_SCALE => {
                let scale = uint();
                if scale == 0 {
                    self.broken = true;
                } else {
                    self.scale_ns = scale;
                }
            }
            CLUSTER_TIMESTAMP => self.cluster_ticks = i64::try_from(uint()).unwrap_or(i64::MAX),
            BLOCK_DURATION => {
                if let Some(start) = self.last_start {
                    let end = start.saturating_add(i64::try_from(uint()).unwrap_or(i64::MAX));
                    self.stated_end = Some(self.stated_end.map_or(end, |e| e.max(end)));
                }
            }
            _ => {
                let mut p = Ebml { data: body, pos: 0 };
                let relative = p.vint(false).and_then(|_| {
                    let t = body.get(p.pos..p.pos.checked_add(2)?)?;
                    Some(i16::from_be_bytes([*t.first()?, *t.get(1)?]))
                });
                let Some(relative) = relative else {
                    self.broken = true;
                    return;
                };
                let start = self.cluster_ticks.saturating_add(i64::from(relative));
                if let Some(previous) = self.last_start
                    && start > previous
                {
                    self.step = start - previous;
                }
                self.last_start = Some(start);
                self.first = Some(self.first.map_or(start, |f| f.min(start)));
                self.end = Some(self.end.map_or(start, |e| e.max(start)));
            }
        }
    }
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

    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut e = id.to_vec();
        // An 8-byte size, as live writers often use.
        e.push(0x01);
        e.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        e.extend_from_slice(body);
        e
    }

    /// A track whose info claims a week but whose blocks span `last_ms`: two clusters (one of
    /// unknown size), simple blocks every 20 ms, and a block group with a duration at the end.
    fn week_long_claim(last_ms: i16) -> Vec<u8> {
        // The head without its info (which claims 2.5 s); this info claims a week.
        let mut f = webm_head()[..28].to_vec();
        let mut info = element(&[0x2A, 0xD7, 0xB1], &1_000_000u32.to_be_bytes());
        info.extend(element(&[0x44, 0x89], &604_800_000f64.to_be_bytes()));
        info.extend(element(&[0x7B, 0xA9], b"title kept out of the clock"));
        f.extend(element(&[0x15, 0x49, 0xA9, 0x66], &info));
        f.extend(element(&[0x16, 0x54, 0xAE, 0x6B], &[0xAE, 0x80]));
        let block = |rel: i16| {
            let mut b = vec![0x81];
            b.extend_from_slice(&rel.to_be_bytes());
            b.extend_from_slice(&[0x80, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8]);
            b
        };
        let mut c1 = element(&[0xE7], &[0]);
        for t in (0..1000).step_by(20) {
            c1.extend(element(&[0xA3], &block(t)));
        }
        f.extend(element(&[0x1F, 0x43, 0xB6, 0x75], &c1));
        // A live writer's cluster: unknown size, ended by the cues.
        f.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75, 0xFF]);
        f.extend(element(&[0xE7], &[0x03, 0xE8]));
        for t in (0..last_ms - 1000).step_by(20) {
            f.extend(element(&[0xA3], &block(t)));
        }
        let mut group = element(&[0xA1], &block(last_ms - 1000));
        group.extend(element(&[0x9B], &[20]));
        f.extend(element(&[0xA0], &group));
        f.extend(element(&[0x1C, 0x53, 0xBB, 0x6B], &[0xBB, 0x80]));
        f
    }

    #[test]
    fn the_block_clock_measures_what_the_blocks_span_not_what_the_info_claims() {
        let f = week_long_claim(1980);
        assert_eq!(sniff(&f).unwrap().duration_ms, Some(604_800_000));
        for chunk in [1, 2, 3, 7, 12, 13, 100, f.len()] {
            let mut clock = BlockClock::new();
            for part in f.chunks(chunk) {
                clock.feed(part);
            }
            // Blocks from 0 to 1980 ms, 20 ms each.
            assert_eq!(clock.duration_ms(), Some(2000), "chunks of {chunk}");
        }
        assert_eq!(BlockClock::new().duration_ms(), None);
        let mut head_only = BlockClock::new();
        head_only.feed(&webm_head());
        assert_eq!(head_only.duration_ms(), None);
    }

    #[test]
    fn the_block_clock_survives_any_prefix_or_corruption() {
        let f = week_long_claim(1500);
        for end in 0..=f.len() {
            BlockClock::new().feed(&f[..end]);
        }
        let mut x = 0x2545_f491u32;
        for _ in 0..3000 {
            let mut bytes = f.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let at = x as usize % bytes.len();
                bytes[at] = (x >> 11) as u8;
            }
            let mut clock = BlockClock::new();
            for part in bytes.chunks(1 + x as usize % 64) {
                clock.feed(part);
            }
            let _ = clock.duration_ms();
        }
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
