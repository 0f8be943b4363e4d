//! Compositions: choosing the sources, planning the ffmpeg filter graph, and the worker that runs
//! queued compositions.
//!
//! Plaintext never touches disk. Each source track (sealed at rest with the service's own key)
//! is decrypted in memory by a feeder thread and written into a FIFO in a private 0700
//! directory; a FIFO is a kernel pipe with a name, so its data lives only in kernel buffers.
//! ffmpeg reads the FIFOs, writes the composition to its stdout pipe, and the bytes are sealed
//! as they stream into the object store, exactly as an upload is. The directory is removed when
//! ffmpeg and the feeders are done.
//!
//! The queue is the `compositions` table: a worker on every node claims a row with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL), renews it while ffmpeg runs, and publishes the
//! result and its callbacks in one transaction only while it still holds the lease. A node that
//! dies mid-composition loses its lease; another node takes the row over and starts again. A new
//! composition is first reserved for the node that accepted it, so it normally runs there.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use mediaseal_crypto::native::NativeReader;
use mediaseal_crypto::{PrivateKey, PublicKey, Scheme};
use mediaseal_store::ObjectStore;
use mediaseal_store::model::{Callback, Sealing};
use mediaseal_store::video::{Composition, TrackRecording};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::callbacks::new_callback;
use crate::clock::{iso8601, now_us};
use crate::ingest::{IngestError, SealDetails, SealTo, seal_body};
use crate::state::AppState;

/// How long a claim holds before another node may take the composition over.
const LEASE: Duration = Duration::from_secs(60);
/// How often a running composition renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// How long a new composition stays reserved for the node that accepted it.
pub(crate) const RESERVATION: Duration = Duration::from_secs(30);
/// Tries before a composition is failed for good (a crash each time, say).
const MAX_ATTEMPTS: i64 = 3;
/// Idle poll interval of the worker.
const POLL: Duration = Duration::from_secs(1);
/// Output frame rate of compositions with video.
const FPS: u32 = 25;
/// Largest number of sources one composition reads.
pub(crate) const MAX_SOURCES: usize = 32;

// ---- track name patterns ------------------------------------------------------------------------

/// Twilio's source patterns: `*` matches any run of characters (including none); everything else
/// matches itself.
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

fn included(name: &str, sources: &[String], excluded: &[String]) -> bool {
    sources.iter().any(|p| pattern_matches(p, name))
        && !excluded.iter().any(|p| pattern_matches(p, name))
}

// ---- resolution and video layout ----------------------------------------------------------------

/// Parses `WIDTHxHEIGHT` within Twilio's limits (16..=1280 per side, at most 921,600 pixels);
/// both sides must be even, as the video encoders need.
pub(crate) fn parse_resolution(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("'{text}' is not WIDTHxHEIGHT, e.g. 640x480");
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(16..=1280).contains(&w) || !(16..=1280).contains(&h) {
        return Err(format!(
            "'{text}': each side must be from 16 to 1280 pixels"
        ));
    }
    if u64::from(w) * u64::from(h) > 921_600 {
        return Err(format!("'{text}' has more than 921600 pixels"));
    }
    if w % 2 == 1 || h % 2 == 1 {
        return Err(format!("'{text}': width and height must be even numbers"));
    }
    Ok((w, h))
}

/// One region of a video layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region {
    pub(crate) name: String,
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) z: i64,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) max_columns: u32,
    pub(crate) max_rows: u32,
    pub(crate) cells_excluded: Vec<u32>,
    pub(crate) video_sources: Vec<String>,
    pub(crate) video_sources_excluded: Vec<String>,
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("{what} must be an array of track names"))?;
    items
        .iter()
        .map(|i| match i.as_str() {
            Some(s) if !s.is_empty() && s.len() <= 256 => Ok(s.to_owned()),
            _ => Err(format!("{what} must contain only non-empty track names")),
        })
        .collect()
}

fn uint(v: &Value, what: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "{what} must be a whole number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

/// Parses a `VideoLayout`: an object of named regions, each with `video_sources` and optional
/// `x_pos`, `y_pos`, `z_pos`, `width`, `height`, `max_columns`, `max_rows`, `cells_excluded`,
/// `reuse` and `video_sources_excluded`, as Twilio documents them. Regions are drawn in `z_pos`
/// order; the sources of a region are tiled in a grid inside it.
pub(crate) fn parse_layout(
    layout: &Value,
    (canvas_w, canvas_h): (u32, u32),
) -> Result<Vec<Region>, String> {
    let obj = layout
        .as_object()
        .ok_or("VideoLayout must be a JSON object of named regions")?;
    if obj.len() > 16 {
        return Err("VideoLayout has more than 16 regions".to_owned());
    }
    let mut regions = Vec::new();
    for (name, spec) in obj {
        let spec = spec
            .as_object()
            .ok_or_else(|| format!("region '{name}' must be a JSON object"))?;
        let mut r = Region {
            name: name.clone(),
            x: 0,
            y: 0,
            z: 0,
            width: 0,
            height: 0,
            max_columns: 16,
            max_rows: 16,
            cells_excluded: Vec::new(),
            video_sources: Vec::new(),
            video_sources_excluded: Vec::new(),
        };
        let (mut width, mut height) = (None, None);
        for (key, value) in spec {
            let what = format!("'{name}'.{key}");
            match key.as_str() {
                "x_pos" => r.x = uint(value, &what, 0..=canvas_w - 1)?,
                "y_pos" => r.y = uint(value, &what, 0..=canvas_h - 1)?,
                "z_pos" => {
                    r.z = value
                        .as_i64()
                        .filter(|z| (-99..=99).contains(z))
                        .ok_or_else(|| format!("{what} must be a whole number from -99 to 99"))?;
                }
                "width" => width = Some(uint(value, &what, 16..=canvas_w)?),
                "height" => height = Some(uint(value, &what, 16..=canvas_h)?),
                "max_columns" => r.max_columns = uint(value, &what, 1..=1000)?,
                "max_rows" => r.max_rows = uint(value, &what, 1..=1000)?,
                "cells_excluded" => {
                    let items = value
                        .as_array()
                        .ok_or_else(|| format!("{what} must be an array of cell numbers"))?;
                    r.cells_excluded = items
                        .iter()
                        .map(|i| uint(i, &what, 0..=1_000_000))
                        .collect::<Result<_, _>>()?;
                }
                "reuse" => match value.as_str() {
                    Some("none" | "show_oldest" | "show_newest") => {}
                    _ => return Err(format!("{what} must be none, show_oldest or show_newest")),
                },
                "video_sources" => r.video_sources = string_list(value, &what)?,
                "video_sources_excluded" => r.video_sources_excluded = string_list(value, &what)?,
                other => return Err(format!("region '{name}' has an unknown property '{other}'")),
            }
        }
        if r.video_sources.is_empty() {
            return Err(format!(
                "region '{name}' needs a non-empty video_sources array"
            ));
        }
        // Regions reaching past the canvas are clipped to it; even sizes suit the encoders.
        r.width = width.unwrap_or(canvas_w).min(canvas_w - r.x) & !1;
        r.height = height.unwrap_or(canvas_h).min(canvas_h - r.y) & !1;
        if r.width < 2 || r.height < 2 {
            return Err(format!(
                "region '{name}' lies outside the {canvas_w}x{canvas_h} canvas"
            ));
        }
        regions.push(r);
    }
    regions.sort_by(|a, b| a.z.cmp(&b.z).then_with(|| a.name.cmp(&b.name)));
    Ok(regions)
}

/// What a composition is made of, as stored.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) audio_sources: Vec<String>,
    pub(crate) audio_sources_excluded: Vec<String>,
    pub(crate) regions: Vec<Region>,
    pub(crate) resolution: (u32, u32),
    pub(crate) format: String,
    pub(crate) trim: bool,
}

impl Spec {
    /// Reads the stored JSON of a composition (or a hook).
    pub(crate) fn from_stored(
        audio_sources: &str,
        audio_sources_excluded: &str,
        video_layout: &str,
        resolution: &str,
        format: &str,
        trim: bool,
    ) -> Result<Self, String> {
        let list = |s: &str| {
            serde_json::from_str::<Vec<String>>(s).map_err(|e| format!("stored source list: {e}"))
        };
        let resolution = parse_resolution(resolution)?;
        let layout: Value =
            serde_json::from_str(video_layout).map_err(|e| format!("stored layout: {e}"))?;
        Ok(Self {
            audio_sources: list(audio_sources)?,
            audio_sources_excluded: list(audio_sources_excluded)?,
            regions: parse_layout(&layout, resolution)?,
            resolution,
            format: format.to_owned(),
            trim,
        })
    }

    pub(crate) fn of_composition(c: &Composition) -> Result<Self, String> {
        Self::from_stored(
            &c.audio_sources,
            &c.audio_sources_excluded,
            &c.video_layout,
            &c.resolution,
            &c.format,
            c.trim,
        )
    }
}

/// The recordings a composition uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub(crate) audio: Vec<TrackRecording>,
    /// `(region index, recording)`.
    pub(crate) video: Vec<(usize, TrackRecording)>,
}

impl Selection {
    pub(crate) fn is_empty(&self) -> bool {
        self.audio.is_empty() && self.video.is_empty()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &TrackRecording> {
        self.audio.iter().chain(self.video.iter().map(|(_, r)| r))
    }

    /// SIDs of selected recordings sealed with the customer's key, which no one but the
    /// customer can read, so they cannot be composed (seed 001).
    pub(crate) fn encrypted(&self) -> Vec<String> {
        let mut sids: Vec<String> = self
            .all()
            .filter(|r| r.sealing == Sealing::Customer)
            .map(|r| r.sid.clone())
            .collect();
        sids.sort();
        sids.dedup();
        sids
    }
}

/// Picks the completed recordings of a room that `spec` names: audio tracks by
/// `audio_sources`/`audio_sources_excluded`, video tracks by each region's patterns (a track
/// shows in the first region that takes it).
pub(crate) fn select(recordings: &[TrackRecording], spec: &Spec) -> Selection {
    let mut sel = Selection::default();
    let mut ordered: Vec<&TrackRecording> = recordings
        .iter()
        .filter(|r| r.status == "completed" && !r.deleted && r.object_key.is_some())
        .collect();
    ordered.sort_by(|a, b| {
        a.offset_ms
            .cmp(&b.offset_ms)
            .then_with(|| a.sid.cmp(&b.sid))
    });
    let mut taken = HashSet::new();
    for r in &ordered {
        match r.media_type.as_str() {
            "audio"
                if included(
                    &r.track_name,
                    &spec.audio_sources,
                    &spec.audio_sources_excluded,
                ) =>
            {
                sel.audio.push((*r).clone());
            }
            "video" => {
                if let Some(i) = spec.regions.iter().position(|g| {
                    included(&r.track_name, &g.video_sources, &g.video_sources_excluded)
                }) && taken.insert(r.sid.clone())
                {
                    sel.video.push((i, (*r).clone()));
                }
            }
            _ => {}
        }
    }
    sel
}

// ---- the ffmpeg plan ----------------------------------------------------------------------------

/// One ffmpeg input: a decrypted recording arriving through a FIFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Input {
    pub(crate) sid: String,
    pub(crate) object_key: String,
    pub(crate) video: bool,
    /// Where the track starts on the composition's timeline, ms.
    pub(crate) start_ms: u64,
}

/// Everything needed to run ffmpeg, except the FIFO paths.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) inputs: Vec<Input>,
    pub(crate) filter: String,
    pub(crate) maps: Vec<String>,
    pub(crate) codec_args: Vec<String>,
    pub(crate) total_ms: u64,
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Lays the selection out on a timeline and builds the filter graph. `durations` gives each
/// selected recording's length in ms; `origin_ms` is the offset the timeline starts at.
pub(crate) fn plan(
    sel: &Selection,
    spec: &Spec,
    durations: &dyn Fn(&str) -> u64,
    origin_ms: i64,
) -> Plan {
    let start = |r: &TrackRecording| u64::try_from(r.offset_ms - origin_ms).unwrap_or(0);
    let mut inputs = Vec::new();
    let mut filter = Vec::new();
    let mut total_ms = 0u64;
    let mut maps = Vec::new();

    let mut video_labels = Vec::new();
    if !sel.video.is_empty() {
        // Geometry of every cell, by region: the region's sources tiled in a grid.
        let mut cells: Vec<(usize, &TrackRecording, u32, u32, u32, u32)> = Vec::new();
        for (ri, region) in spec.regions.iter().enumerate() {
            let members: Vec<&TrackRecording> = sel
                .video
                .iter()
                .filter(|(i, _)| *i == ri)
                .map(|(_, r)| r)
                .collect();
            if members.is_empty() {
                continue;
            }
            let n = members.len() as u32;
            let cols = (f64::from(n).sqrt().ceil() as u32).clamp(1, region.max_columns);
            let rows = n.div_ceil(cols).clamp(1, region.max_rows);
            let (cw, ch) = ((region.width / cols) & !1, (region.height / rows) & !1);
            let free = (0..cols * rows).filter(|c| !region.cells_excluded.contains(c));
            // Sources beyond the grid's free cells are left out of the picture.
            for (r, cell) in members.into_iter().zip(free) {
                let (col, row) = (cell % cols, cell / cols);
                cells.push((
                    ri,
                    r,
                    region.x + col * (region.width / cols),
                    region.y + row * (region.height / rows),
                    cw.max(2),
                    ch.max(2),
                ));
            }
        }
        for &(_, r, x, y, cw, ch) in &cells {
            let idx = inputs.len();
            let begin = start(r);
            total_ms = total_ms.max(begin + durations(&r.sid));
            inputs.push(Input {
                sid: r.sid.clone(),
                object_key: r.object_key.clone().unwrap_or_default(),
                video: true,
                start_ms: begin,
            });
            filter.push(format!(
                "[{idx}:v]setpts=PTS-STARTPTS+{}/TB,scale={cw}:{ch}:force_original_aspect_ratio=decrease,\
                 pad={cw}:{ch}:(ow-iw)/2:(oh-ih)/2:color=black,format=yuv420p[v{idx}]",
                secs(begin)
            ));
            video_labels.push((idx, x, y));
        }
    }

    let mut audio_labels = Vec::new();
    for r in &sel.audio {
        let idx = inputs.len();
        let begin = start(r);
        total_ms = total_ms.max(begin + durations(&r.sid));
        inputs.push(Input {
            sid: r.sid.clone(),
            object_key: r.object_key.clone().unwrap_or_default(),
            video: false,
            start_ms: begin,
        });
        filter.push(format!(
            "[{idx}:a]aresample=48000,adelay=delays={begin}:all=1[a{idx}]"
        ));
        audio_labels.push(idx);
    }
    let total_ms = total_ms.max(1);

    if !video_labels.is_empty() {
        let (w, h) = spec.resolution;
        filter.push(format!(
            "color=c=black:s={w}x{h}:r={FPS}:d={}[base]",
            secs(total_ms)
        ));
        let mut last = "base".to_owned();
        for (k, (idx, x, y)) in video_labels.iter().enumerate() {
            let out = if k + 1 == video_labels.len() {
                "vmix".to_owned()
            } else {
                format!("t{k}")
            };
            filter.push(format!(
                "[{last}][v{idx}]overlay=x={x}:y={y}:eof_action=pass[{out}]"
            ));
            last = out;
        }
        filter.push("[vmix]format=yuv420p[vout]".to_owned());
        maps.push("[vout]".to_owned());
    }
    match audio_labels.as_slice() {
        [] => {}
        [one] => {
            filter.push(format!("[a{one}]anull[aout]"));
            maps.push("[aout]".to_owned());
        }
        many => {
            let ins: String = many.iter().map(|i| format!("[a{i}]")).collect();
            filter.push(format!(
                "{ins}amix=inputs={}:duration=longest:dropout_transition=0:normalize=0[aout]",
                many.len()
            ));
            maps.push("[aout]".to_owned());
        }
    }

    let has_video = !video_labels.is_empty();
    let has_audio = !audio_labels.is_empty();
    let mut codec_args: Vec<String> = Vec::new();
    let mut push = |args: &[&str]| codec_args.extend(args.iter().map(|s| (*s).to_owned()));
    if spec.format == "mp4" {
        if has_video {
            push(&[
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            ]);
        }
        if has_audio {
            push(&["-c:a", "aac", "-b:a", "128k"]);
        }
        // Fragmented MP4 needs no seeking back, so it can go straight down a pipe.
        push(&[
            "-f",
            "mp4",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
        ]);
    } else {
        if has_video {
            push(&[
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "1M",
                "-threads",
                "2",
            ]);
        }
        if has_audio {
            push(&["-c:a", "libopus", "-b:a", "64k"]);
        }
        push(&["-f", "webm"]);
    }
    Plan {
        inputs,
        filter: filter.join(";"),
        maps,
        codec_args,
        total_ms,
    }
}

/// The ffmpeg arguments for `plan`, reading input `i` from `fifos[i]` and writing to stdout.
/// `-t` bounds the output and lets the WebM muxer write the duration up front (it cannot seek
/// back on a pipe).
pub(crate) fn ffmpeg_args(plan: &Plan, fifos: &[PathBuf]) -> Vec<String> {
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for fifo in fifos {
        args.extend([
            "-thread_queue_size".to_owned(),
            "1024".to_owned(),
            "-f".to_owned(),
            "matroska".to_owned(),
            "-i".to_owned(),
        ]);
        args.push(fifo.display().to_string());
    }
    args.extend(["-filter_complex".to_owned(), plan.filter.clone()]);
    for m in &plan.maps {
        args.extend(["-map".to_owned(), m.clone()]);
    }
    args.extend(["-t".to_owned(), secs(plan.total_ms)]);
    args.extend(plan.codec_args.iter().cloned());
    args.push("pipe:1".to_owned());
    args
}

// ---- Matroska header sniffing (ingest) ----------------------------------------------------------

/// What the first bytes of a track recording say.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MatroskaInfo {
    /// `matroska` or `webm`.
    pub(crate) doc_type: String,
    /// Duration from the segment info, when the writer recorded one.
    pub(crate) duration_ms: Option<u64>,
}

struct Ebml<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Ebml<'_> {
    fn vint(&mut self, keep_marker: bool) -> Option<(u64, bool)> {
        let first = *self.data.get(self.pos)?;
        let len = first.leading_zeros() as usize + 1;
        if len > 8 {
            return None;
        }
        let bytes = self.data.get(self.pos..self.pos + len)?;
        let mut v = if keep_marker {
            u64::from(first)
        } else {
            u64::from(first) & (0xff >> len)
        };
        for b in &bytes[1..] {
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
}

/// Reads the EBML header and, if it is in `head`, the segment info of a Matroska/WebM file.
/// `Err` when the bytes are not Matroska at all.
pub(crate) fn sniff_matroska(head: &[u8]) -> Result<MatroskaInfo, String> {
    let not_mkv = || "the media is not a Matroska (.mka/.mkv) file".to_owned();
    let mut p = Ebml { data: head, pos: 0 };
    let (id, size) = p.element().ok_or_else(not_mkv)?;
    if id != 0x1A45_DFA3 {
        return Err(not_mkv());
    }
    let header_end = p.pos + size.ok_or_else(not_mkv)? as usize;
    let mut doc_type = String::new();
    while p.pos < header_end.min(head.len()) {
        let (id, size) = p.element().ok_or_else(not_mkv)?;
        let size = size.ok_or_else(not_mkv)? as usize;
        let body = head.get(p.pos..p.pos + size).ok_or_else(not_mkv)?;
        if id == 0x4282 {
            doc_type = String::from_utf8_lossy(body)
                .trim_end_matches('\0')
                .to_owned();
        }
        p.pos += size;
    }
    if doc_type != "matroska" && doc_type != "webm" {
        return Err(format!(
            "the media is an EBML file of type '{doc_type}', not Matroska"
        ));
    }
    let mut info = MatroskaInfo {
        doc_type,
        duration_ms: None,
    };
    p.pos = header_end;
    let Some((0x1853_8067, _)) = p.element() else {
        return Ok(info);
    };
    // Top-level children of the segment, up to the info (or the end of what we have).
    while let Some((id, size)) = p.element() {
        let Some(size) = size.map(|s| s as usize) else {
            break;
        };
        if id == 0x1549_A966 {
            let Some(body) = head.get(p.pos..p.pos + size) else {
                break;
            };
            let mut q = Ebml { data: body, pos: 0 };
            let (mut scale, mut duration) = (1_000_000f64, None);
            while let Some((id, Some(size))) = q.element() {
                let Some(v) = body.get(q.pos..q.pos + size as usize) else {
                    break;
                };
                match (id, v.len()) {
                    (0x2A_D7B1, 1..=8) => {
                        scale = v.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)) as f64
                    }
                    (0x4489, 4) => {
                        duration = Some(f64::from(f32::from_be_bytes([v[0], v[1], v[2], v[3]])))
                    }
                    (0x4489, 8) => duration = v.try_into().ok().map(f64::from_be_bytes),
                    _ => {}
                }
                q.pos += size as usize;
            }
            info.duration_ms = duration
                .map(|d| d * scale / 1_000_000.0)
                .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms < 1e12)
                .map(|ms| ms.round() as u64);
            break;
        }
        if id == 0x1F43_B675 {
            break;
        }
        p.pos += size;
    }
    Ok(info)
}

// ---- running ffmpeg over FIFOs ------------------------------------------------------------------

/// A directory only this process's user can enter, removed (with its FIFOs) on drop.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new(parent: &Path) -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = parent.join(format!("mediaseal-compose-{}", crate::sid::new_secret()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkfifo(path: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, Mode, mkfifoat};
    mkfifoat(CWD, path, Mode::RUSR | Mode::WUSR).map_err(io::Error::from)
}

/// Opens a FIFO for writing once its reader (ffmpeg) has opened it, giving up when `cancel` is
/// set (ffmpeg exited without opening it). A blocking open would hang forever in that case.
fn open_fifo_writer(path: &Path, cancel: &AtomicBool) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags, fcntl_setfl, open};
    loop {
        match open(
            path,
            OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                fcntl_setfl(&fd, OFlags::empty()).map_err(io::Error::from)?;
                return Ok(File::from(fd));
            }
            Err(rustix::io::Errno::NXIO) => {
                if cancel.load(Ordering::Relaxed) {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "ffmpeg never opened this input",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why a feeder stopped.
enum FeedError {
    /// ffmpeg stopped reading (it exited, or had read all it needed).
    ReaderGone,
    /// The recording could not be read or did not authenticate.
    Source(String),
}

/// Decrypts an at-rest object into `out`; plaintext exists only in this thread's buffers.
fn feed(
    objects: &dyn ObjectStore,
    key: &str,
    at_rest: &PrivateKey,
    out: &mut dyn Write,
) -> Result<(), FeedError> {
    let raw = objects
        .open_blocking(key)
        .map_err(|e| FeedError::Source(e.to_string()))?;
    let mut reader =
        NativeReader::new(raw, at_rest).map_err(|e| FeedError::Source(e.to_string()))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FeedError::Source(e.to_string())),
        };
        if let Err(e) = out.write_all(&buf[..n]) {
            buf.iter_mut().for_each(|b| *b = 0);
            return Err(if e.kind() == io::ErrorKind::BrokenPipe {
                FeedError::ReaderGone
            } else {
                FeedError::Source(e.to_string())
            });
        }
    }
    // Plaintext does not outlive its use, even in freed memory.
    buf.iter_mut().for_each(|b| *b = 0);
    Ok(())
}

/// The length in ms of an at-rest recording whose header had none: ffmpeg reads it (decrypted
/// through its stdin pipe) without decoding and reports how far it got.
pub(crate) fn probe_duration_ms(
    ffmpeg: &Path,
    objects: Arc<dyn ObjectStore>,
    key: &str,
    at_rest: Arc<PrivateKey>,
) -> Result<u64, String> {
    let mut child = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-nostats",
            "-progress",
            "pipe:1",
            "-f",
            "matroska",
            "-i",
            "pipe:0",
        ])
        .args(["-map", "0", "-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("ffmpeg pipes missing".to_owned());
    };
    let key = key.to_owned();
    let feeder = std::thread::spawn(move || feed(objects.as_ref(), &key, &at_rest, &mut stdin));
    let mut last = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(v) = line.strip_prefix("out_time_us=") {
            last = v.trim().parse::<i64>().ok().or(last);
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    match feeder.join() {
        Ok(Err(FeedError::Source(e))) => return Err(e),
        Err(_) => return Err("the feeder thread panicked".to_owned()),
        _ => {}
    }
    if !status.success() {
        return Err(format!("ffmpeg could not read the recording ({status})"));
    }
    last.and_then(|us| u64::try_from(us).ok())
        .map(|us| us / 1000)
        .ok_or_else(|| "ffmpeg reported no duration".to_owned())
}

/// A running composition: ffmpeg, its feeders, and the stream of its output.
struct Running {
    child: Arc<Mutex<Child>>,
    output: mpsc::Receiver<io::Result<Bytes>>,
    progress: watch::Receiver<u64>,
    outcome: oneshot::Receiver<Result<(), String>>,
}

impl Running {
    fn kill(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
        }
    }
}

fn start(
    ffmpeg: &Path,
    scratch: &Path,
    plan: &Plan,
    objects: &Arc<dyn ObjectStore>,
    at_rest: &Arc<PrivateKey>,
) -> io::Result<Running> {
    let dir = PrivateDir::new(scratch)?;
    let fifos: Vec<PathBuf> = (0..plan.inputs.len())
        .map(|i| dir.0.join(format!("in{i}")))
        .collect();
    for f in &fifos {
        mkfifo(f)?;
    }
    let mut child = Command::new(ffmpeg)
        .args(ffmpeg_args(plan, &fifos))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("ffmpeg pipes missing"));
    };
    let child = Arc::new(Mutex::new(child));
    let cancel = Arc::new(AtomicBool::new(false));

    let mut feeders = Vec::new();
    for (input, fifo) in plan.inputs.iter().zip(&fifos) {
        let (objects, at_rest, cancel) = (objects.clone(), at_rest.clone(), cancel.clone());
        let (fifo, key, sid) = (fifo.clone(), input.object_key.clone(), input.sid.clone());
        feeders.push(std::thread::spawn(move || -> Result<(), String> {
            // Not opened means ffmpeg exited early; its own failure is what gets reported.
            let Ok(mut out) = open_fifo_writer(&fifo, &cancel) else {
                return Ok(());
            };
            match feed(objects.as_ref(), &key, &at_rest, &mut out) {
                Ok(()) | Err(FeedError::ReaderGone) => Ok(()),
                Err(FeedError::Source(e)) => Err(format!("recording {sid} could not be read: {e}")),
            }
        }));
    }

    let (progress_tx, progress) = watch::channel(0u64);
    let stderr_thread = std::thread::spawn(move || {
        // ffmpeg's errors; kept in memory only, never logged (they can quote media metadata).
        let mut errors: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(v) = line.strip_prefix("out_time_us=") {
                if let Ok(us) = v.trim().parse::<u64>() {
                    let _ = progress_tx.send(us);
                }
            } else if !line.contains('=') || line.contains(' ') {
                errors.push(line.chars().take(300).collect());
                if errors.len() > 5 {
                    errors.remove(0);
                }
            }
        }
        errors
    });

    let (tx, output) = mpsc::channel::<io::Result<Bytes>>(8);
    let (outcome_tx, outcome) = oneshot::channel();
    let waiter = child.clone();
    std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut reader_gone = false;
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        reader_gone = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if reader_gone && let Ok(mut c) = waiter.lock() {
            let _ = c.kill();
        }
        drop(stdout);
        let status = loop {
            let polled = waiter.lock().map(|mut c| c.try_wait());
            match polled {
                Ok(Ok(Some(status))) => break Some(status),
                Ok(Ok(None)) => std::thread::sleep(Duration::from_millis(10)),
                _ => break None,
            }
        };
        cancel.store(true, Ordering::Relaxed);
        let mut result = Ok(());
        for f in feeders {
            match f.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err("a feeder thread panicked".to_owned()),
            }
        }
        let errors = stderr_thread.join().unwrap_or_default();
        drop(dir);
        if result.is_ok() {
            result = match status {
                Some(s) if s.success() => Ok(()),
                Some(s) => Err(match errors.last() {
                    Some(last) => format!("ffmpeg failed ({s}): {last}"),
                    None => format!("ffmpeg failed ({s})"),
                }),
                None => Err("ffmpeg could not be waited for".to_owned()),
            };
        }
        if let Err(e) = &result {
            // Makes the sealing side discard what it wrote instead of storing a truncated file.
            let _ = tx.blocking_send(Err(io::Error::other(e.clone())));
        }
        let _ = outcome_tx.send(result);
    });
    Ok(Running {
        child,
        output,
        progress,
        outcome,
    })
}

// ---- the worker ---------------------------------------------------------------------------------

/// Wakes the worker of a node when a composition was queued there.
fn kicker(node: &str) -> Arc<Notify> {
    static KICKERS: OnceLock<Mutex<std::collections::HashMap<String, Arc<Notify>>>> =
        OnceLock::new();
    let map = KICKERS.get_or_init(Default::default);
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(node.to_owned())
        .or_insert_with(|| Arc::new(Notify::new()))
        .clone()
}

/// Tells this node's worker that a composition is waiting.
pub(crate) fn kick(state: &AppState) {
    kicker(&state.config.node_id).notify_one();
}

/// Starts this node's composition worker, once per node, if a Tokio runtime is running.
pub(crate) fn ensure_worker(state: &AppState) {
    static STARTED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let started = STARTED.get_or_init(Default::default);
    let fresh = started
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(state.config.node_id.clone());
    if fresh {
        handle.spawn(run_worker(state.clone()));
    }
}

/// Claims and runs compositions forever; also clears track uploads a crash left unfinished.
pub async fn run_worker(state: AppState) {
    let kick = kicker(&state.config.node_id);
    let mut last_sweep = Instant::now();
    loop {
        if last_sweep.elapsed() >= Duration::from_secs(60) {
            sweep_track_reservations(&state).await;
            last_sweep = Instant::now();
        }
        let now = now_us();
        match state
            .meta
            .claim_composition(&state.config.node_id, now, now + LEASE.as_micros() as i64)
            .await
        {
            Ok(Some(c)) => {
                process(&state, c).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "composition queue poll failed"),
        }
        let _ = tokio::time::timeout(POLL, kick.notified()).await;
    }
}

async fn sweep_track_reservations(state: &AppState) {
    let cutoff = now_us() - state.config.orphan_age.as_micros() as i64;
    match state.meta.stale_track_reservations(cutoff, 200).await {
        Ok(stale) => {
            for r in stale {
                if let Some(key) = &r.object_key
                    && let Err(e) = state.objects.delete(key).await
                {
                    tracing::warn!(recording = %r.sid, error = %e, "could not delete an unfinished track upload");
                    continue;
                }
                if state.meta.drop_track_reservation(&r.sid).await.is_ok() {
                    tracing::info!(recording = %r.sid, "swept a track upload that never completed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing unfinished track uploads failed"),
    }
}

/// Callback parameters common to every composition event.
pub(crate) fn composition_callback(
    c: &Composition,
    event: &str,
    extra: &[(&str, String)],
) -> Option<Callback> {
    let url = c.status_callback.as_deref()?;
    let mut params = vec![
        ("AccountSid".to_owned(), c.account_sid.clone()),
        ("RoomSid".to_owned(), c.room_sid.clone()),
        ("CompositionSid".to_owned(), c.sid.clone()),
        ("StatusCallbackEvent".to_owned(), event.to_owned()),
        ("Timestamp".to_owned(), iso8601(now_us())),
        (
            "CompositionUri".to_owned(),
            format!("/v1/Compositions/{}", c.sid),
        ),
    ];
    if let Some(hook) = &c.hook_sid {
        params.push(("HookSid".to_owned(), hook.clone()));
    }
    params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Some(new_callback(
        &c.account_sid,
        &c.sid,
        url,
        &c.status_callback_method,
        &params,
    ))
}

enum JobError {
    /// Another node took the composition, or it was deleted: drop the work silently.
    LeaseLost,
    /// The composition cannot be made; the message is for the customer.
    Failed(String),
}

struct Made {
    object_key: String,
    sealing: Sealing,
    sealed_size: u64,
    plain_size: u64,
    duration_ms: u64,
}

async fn process(state: &AppState, c: Composition) {
    let node = state.config.node_id.clone();
    if c.attempts > MAX_ATTEMPTS {
        let reason =
            format!("the composition was interrupted {MAX_ATTEMPTS} times and was abandoned");
        finish_failed(state, c, &node, &reason).await;
        return;
    }
    if c.attempts == 1
        && let Some(cb) = composition_callback(&c, "composition-started", &[])
        && let Err(e) = state.meta.enqueue_callbacks(&[cb]).await
    {
        tracing::warn!(composition = %c.sid, error = %e, "composition-started callback not queued");
    }
    tracing::info!(composition = %c.sid, account = %c.account_sid, attempt = c.attempts, "composing");
    let started = Instant::now();
    match compose(state, &c).await {
        Ok(made) => {
            let now = now_us();
            let mut done = c.clone();
            done.status = "completed".to_owned();
            done.object_key = Some(made.object_key.clone());
            done.sealing = made.sealing;
            done.sealed_size = made.sealed_size as i64;
            done.plain_size = made.plain_size as i64;
            done.duration = made.duration_ms.div_ceil(1000) as i64;
            done.bitrate = (made.plain_size * 8 * 1000)
                .checked_div(made.duration_ms)
                .unwrap_or(0) as i64;
            done.date_updated = now;
            done.date_completed = Some(now);
            let size = if made.sealing == Sealing::Customer {
                made.sealed_size
            } else {
                made.plain_size
            };
            let extra = [
                ("MediaUri", format!("/v1/Compositions/{}/Media", c.sid)),
                ("Duration", done.duration.to_string()),
                ("Size", size.to_string()),
            ];
            let callbacks: Vec<Callback> =
                composition_callback(&done, "composition-available", &extra)
                    .into_iter()
                    .collect();
            match state
                .meta
                .finish_composition(&done, &node, &callbacks)
                .await
            {
                Ok(true) => {
                    metrics::counter!("mediaseal_compositions_completed_total").increment(1);
                    tracing::info!(composition = %c.sid, seconds = started.elapsed().as_secs_f64(), bytes = made.plain_size, "composition stored");
                }
                Ok(false) => {
                    tracing::info!(composition = %c.sid, "composition was deleted or taken over while composing; result discarded");
                    let _ = state.objects.delete(&made.object_key).await;
                }
                Err(e) => {
                    // The row still shows processing; the lease runs out and it is tried again.
                    tracing::error!(composition = %c.sid, error = %e, "composition could not be recorded");
                    let _ = state.objects.delete(&made.object_key).await;
                }
            }
        }
        Err(JobError::LeaseLost) => {
            tracing::info!(composition = %c.sid, "composition was deleted or taken over; stopped");
        }
        Err(JobError::Failed(reason)) => finish_failed(state, c, &node, &reason).await,
    }
}

async fn finish_failed(state: &AppState, c: Composition, node: &str, reason: &str) {
    let now = now_us();
    let mut failed = c;
    failed.status = "failed".to_owned();
    failed.error_message = Some(reason.to_owned());
    failed.date_updated = now;
    failed.object_key = None;
    failed.sealing = Sealing::None;
    let extra = [
        ("FailedOperation", "composition".to_owned()),
        ("ErrorMessage", reason.to_owned()),
    ];
    let callbacks: Vec<Callback> = composition_callback(&failed, "composition-failed", &extra)
        .into_iter()
        .collect();
    metrics::counter!("mediaseal_compositions_failed_total").increment(1);
    tracing::warn!(composition = %failed.sid, reason, "composition failed");
    if let Err(e) = state
        .meta
        .finish_composition(&failed, node, &callbacks)
        .await
    {
        tracing::error!(composition = %failed.sid, error = %e, "composition failure could not be recorded");
    }
}

fn stored_public_key(hex: &str) -> Option<PublicKey> {
    let der: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()?;
    PublicKey::from_der(&der).ok()
}

async fn compose(state: &AppState, c: &Composition) -> Result<Made, JobError> {
    let failed = |m: String| JobError::Failed(m);
    let ffmpeg = state
        .config
        .ffmpeg
        .clone()
        .ok_or_else(|| failed("this server has no ffmpeg installed".to_owned()))?;
    let spec = Spec::of_composition(c).map_err(failed)?;
    let recordings = state
        .meta
        .room_track_recordings(&c.account_sid, &c.room_sid)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let sel = select(&recordings, &spec);
    if sel.is_empty() {
        return Err(failed(
            "no recording of the room matches the composition's sources".to_owned(),
        ));
    }
    let encrypted = sel.encrypted();
    if !encrypted.is_empty() {
        return Err(failed(format!(
            "recordings {} are encrypted with your public key and cannot be composed",
            encrypted.join(", ")
        )));
    }
    if sel.all().count() > MAX_SOURCES {
        return Err(failed(format!(
            "more than {MAX_SOURCES} recordings match; narrow the sources"
        )));
    }

    // Lengths: from the recording where known, else measured by reading the track once.
    let mut durations = std::collections::HashMap::new();
    for r in sel.all() {
        let ms = match r.duration_ms {
            Some(ms) => u64::try_from(ms).unwrap_or(0),
            None => {
                let (ffmpeg, objects, at_rest) =
                    (ffmpeg.clone(), state.objects.clone(), state.at_rest.clone());
                let key = r.object_key.clone().unwrap_or_default();
                tokio::task::spawn_blocking(move || {
                    probe_duration_ms(&ffmpeg, objects, &key, at_rest)
                })
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(format!("recording {}: {e}", r.sid)))?
            }
        };
        durations.insert(r.sid.clone(), ms);
    }
    let selected_min = sel.all().map(|r| r.offset_ms).min().unwrap_or(0);
    let origin = if spec.trim {
        selected_min
    } else {
        recordings
            .iter()
            .map(|r| r.offset_ms)
            .min()
            .unwrap_or(0)
            .min(selected_min)
    };
    let plan = plan(
        &sel,
        &spec,
        &|sid| durations.get(sid).copied().unwrap_or(0),
        origin,
    );

    let key_record = match &c.seal_key_sid {
        Some(sid) => {
            let record = state
                .meta
                .public_key(sid)
                .await
                .map_err(|e| failed(e.to_string()))?;
            match record
                .filter(|k| k.account_sid == c.account_sid)
                .and_then(|k| stored_public_key(&k.spki_der_hex))
            {
                Some(key) => Some((sid.clone(), key)),
                None => {
                    return Err(failed(format!(
                        "composition encryption is on, but public key {sid} no longer exists; nothing was stored"
                    )));
                }
            }
        }
        None => None,
    };
    let to = match &key_record {
        Some((sid, key)) => SealTo::CustomerS3 {
            key,
            sid,
            scheme: Scheme::CbcPkcs1,
        },
        None => SealTo::AtRest(state.at_rest.public_key()),
    };

    let objects = state.objects.clone();
    let at_rest = state.at_rest.clone();
    let plan_for_start = plan.clone();
    let scratch = state.config.scratch_dir.clone();
    let mut running = tokio::task::spawn_blocking(move || {
        start(&ffmpeg, &scratch, &plan_for_start, &objects, &at_rest)
    })
    .await
    .map_err(|e| failed(e.to_string()))?
    .map_err(|e| failed(format!("ffmpeg could not be started: {e}")))?;

    let object_key = format!("{}/{}-{}", c.account_sid, c.sid, c.attempts);
    let output = std::mem::replace(&mut running.output, mpsc::channel(1).1);
    let body = Body::from_stream(
        futures::stream::unfold(output, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed(),
    );
    let seal = seal_body(state.objects.as_ref(), &object_key, body, to);
    tokio::pin!(seal);
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    let mut progress = running.progress.clone();
    let mut progress_done = false;
    let mut reported = 0u64;
    let mut last_report = Instant::now();
    let began = Instant::now();
    let node = state.config.node_id.clone();
    let sealed = loop {
        tokio::select! {
            result = &mut seal => break result,
            _ = renew.tick() => {
                let until = now_us() + LEASE.as_micros() as i64;
                match state.meta.renew_composition_lease(&c.sid, &node, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        running.kill();
                        let _ = (&mut seal).await;
                        return Err(JobError::LeaseLost);
                    }
                    Err(e) => tracing::warn!(composition = %c.sid, error = %e, "lease renewal failed; retrying"),
                }
            }
            changed = progress.changed(), if !progress_done => {
                if changed.is_err() {
                    // The progress sender is gone: ffmpeg finished; keep waiting for the seal.
                    progress_done = true;
                    continue;
                }
                let us = *progress.borrow_and_update();
                let percent = (us / 1000).saturating_mul(100) / plan.total_ms.max(1);
                if percent / 10 > reported / 10 && percent < 100 && last_report.elapsed() >= Duration::from_secs(1) {
                    reported = percent;
                    last_report = Instant::now();
                    let spent = began.elapsed().as_secs();
                    let remaining = spent.saturating_mul(100 - percent) / percent.max(1);
                    let extra = [("PercentageDone", percent.to_string()), ("SecondsRemaining", remaining.to_string())];
                    if let Some(cb) = composition_callback(c, "composition-progress", &extra)
                        && let Err(e) = state.meta.enqueue_callbacks(&[cb]).await
                    {
                        tracing::warn!(composition = %c.sid, error = %e, "composition-progress callback not queued");
                    }
                }
            }
        }
    };
    let outcome = (&mut running.outcome)
        .await
        .unwrap_or_else(|_| Err("the composition pipeline stopped".to_owned()));
    let sealed = match (sealed, outcome) {
        (Ok(s), Ok(())) => s,
        (Ok(_), Err(e)) => {
            let _ = state.objects.delete(&object_key).await;
            return Err(failed(e));
        }
        (Err(_), Err(e)) => return Err(failed(e)),
        (Err(IngestError::Seal(e)), Ok(())) => return Err(failed(format!("sealing failed: {e}"))),
        (Err(e), Ok(())) => {
            tracing::error!(composition = %c.sid, error = %e, "storing the composition failed");
            return Err(failed("the composition could not be stored".to_owned()));
        }
    };
    if sealed.plain_size == 0 {
        let _ = state.objects.delete(&object_key).await;
        return Err(failed("ffmpeg produced no media".to_owned()));
    }
    let sealing = match sealed.details {
        SealDetails::S3(_) | SealDetails::RsaAes(_) => Sealing::Customer,
        SealDetails::Native => Sealing::AtRest,
    };
    Ok(Made {
        object_key: object_key.clone(),
        sealing,
        sealed_size: sealed.sealed_size,
        plain_size: sealed.plain_size,
        duration_ms: plan.total_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("student*", "student"));
        assert!(pattern_matches("student*", "studentTeam"));
        assert!(!pattern_matches("student*", "teacher"));
        assert!(pattern_matches("*mic", "alice-mic"));
        assert!(pattern_matches("a*b*c", "aXbYc"));
        assert!(!pattern_matches("a*b*c", "aXc"));
        assert!(!pattern_matches("ab*ba", "aba"));
        assert!(pattern_matches("exact", "exact"));
        assert!(!pattern_matches("exact", "exact1"));
    }

    #[test]
    fn resolutions() {
        assert_eq!(parse_resolution("640x480"), Ok((640, 480)));
        assert_eq!(parse_resolution("1280x720"), Ok((1280, 720)));
        for bad in [
            "",
            "640",
            "x480",
            "640x",
            "1920x1080",
            "8x8",
            "641x480",
            "1280x1280",
            "axb",
        ] {
            assert!(parse_resolution(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn layouts() {
        let ok = json!({"main": {"video_sources": ["*"], "x_pos": 10, "width": 320, "z_pos": 2},
                        "pip": {"video_sources": ["screen*"], "z_pos": -1, "max_columns": 2}});
        let regions = parse_layout(&ok, (640, 480)).unwrap();
        assert_eq!(regions[0].name, "pip");
        assert_eq!(
            (regions[1].x, regions[1].width, regions[1].height),
            (10, 320, 480)
        );
        for bad in [
            json!([]),
            json!({"r": 1}),
            json!({"r": {}}),
            json!({"r": {"video_sources": []}}),
            json!({"r": {"video_sources": [1]}}),
            json!({"r": {"video_sources": ["*"], "x_pos": 640}}),
            json!({"r": {"video_sources": ["*"], "width": 8}}),
            json!({"r": {"video_sources": ["*"], "reuse": "sometimes"}}),
            json!({"r": {"video_sources": ["*"], "colour": "red"}}),
            json!({"r": {"video_sources": ["*"], "z_pos": 100}}),
        ] {
            assert!(parse_layout(&bad, (640, 480)).is_err(), "{bad}");
        }
    }

    fn track(sid: &str, name: &str, kind: &str, offset: i64, sealing: Sealing) -> TrackRecording {
        TrackRecording {
            sid: sid.to_owned(),
            account_sid: "AC1".to_owned(),
            room_sid: "RM1".to_owned(),
            participant_sid: "PA1".to_owned(),
            source_sid: "MT1".to_owned(),
            track_name: name.to_owned(),
            media_type: kind.to_owned(),
            codec: "OPUS".to_owned(),
            container_format: "mka".to_owned(),
            offset_ms: offset,
            duration_ms: Some(5000),
            status: "completed".to_owned(),
            sealing,
            encryption_key_sid: None,
            object_key: Some(format!("AC1/{sid}")),
            sealed_size: 1,
            plain_size: 1,
            status_callback: None,
            status_callback_method: "POST".to_owned(),
            visible: true,
            deleted: false,
            date_created: 0,
            date_updated: 0,
            date_deleted: None,
        }
    }

    #[test]
    fn selection_and_plan() {
        let recs = vec![
            track("RT2", "bob-mic", "audio", 1500, Sealing::AtRest),
            track("RT1", "alice-mic", "audio", 1000, Sealing::AtRest),
            track("RT3", "alice-cam", "video", 1000, Sealing::AtRest),
            track("RT4", "carol-mic", "audio", 0, Sealing::Customer),
            track("RT5", "data", "data", 0, Sealing::AtRest),
        ];
        let spec = Spec {
            audio_sources: vec!["*-mic".to_owned()],
            audio_sources_excluded: vec!["carol*".to_owned()],
            regions: parse_layout(&json!({"grid": {"video_sources": ["*"]}}), (640, 480)).unwrap(),
            resolution: (640, 480),
            format: "webm".to_owned(),
            trim: true,
        };
        let sel = select(&recs, &spec);
        assert_eq!(
            sel.audio.iter().map(|r| r.sid.as_str()).collect::<Vec<_>>(),
            ["RT1", "RT2"]
        );
        assert_eq!(sel.video.len(), 1);
        assert!(sel.encrypted().is_empty());
        let p = plan(&sel, &spec, &|_| 5000, 1000);
        assert_eq!(p.total_ms, 5500);
        assert_eq!(
            p.inputs
                .iter()
                .map(|i| (i.sid.as_str(), i.start_ms))
                .collect::<Vec<_>>(),
            [("RT3", 0), ("RT1", 0), ("RT2", 500)]
        );
        assert!(p.filter.contains("adelay=delays=500:all=1"), "{}", p.filter);
        assert!(p.filter.contains("amix=inputs=2"), "{}", p.filter);
        assert!(p.filter.contains("color=c=black:s=640x480"), "{}", p.filter);
        let args = ffmpeg_args(
            &p,
            &[
                PathBuf::from("/x/in0"),
                PathBuf::from("/x/in1"),
                PathBuf::from("/x/in2"),
            ],
        );
        assert!(args.windows(2).any(|w| w[0] == "-t" && w[1] == "5.500"));

        let all = Spec {
            audio_sources: vec!["*".to_owned()],
            audio_sources_excluded: vec![],
            ..spec
        };
        assert_eq!(select(&recs, &all).encrypted(), ["RT4"]);
    }

    #[test]
    fn matroska_sniffing() {
        // EBML header (DocType "webm"), a segment of unknown size, and an info element with a
        // 4-byte float duration of 2500.0 at the default 1 ms scale.
        let mut f = vec![0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84];
        f.extend_from_slice(b"webm");
        f.extend_from_slice(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        f.extend_from_slice(&[0xEC, 0x82, 0, 0]);
        f.extend_from_slice(&[0x15, 0x49, 0xA9, 0x66, 0x87, 0x44, 0x89, 0x84]);
        f.extend_from_slice(&2500f32.to_be_bytes());
        let info = sniff_matroska(&f).unwrap();
        assert_eq!(info.doc_type, "webm");
        assert_eq!(info.duration_ms, Some(2500));
        assert_eq!(sniff_matroska(&f[..20]).unwrap().duration_ms, None);
        assert!(sniff_matroska(b"RIFF....WAVE").is_err());
        assert!(sniff_matroska(b"").is_err());
        let mut other = f.clone();
        other[8..12].copy_from_slice(b"abcd");
        assert!(sniff_matroska(&other).is_err());
    }
}
