//! The pure part of a composition: the recordings laid out on a timeline and the ffmpeg filter
//! graph that mixes and tiles them. No process is run here.

use std::path::PathBuf;

use mediaseal_store::video::TrackRecording;

use crate::select::Selection;
use crate::spec::Spec;

/// Output frame rate of compositions with video.
const FPS: u32 = 25;

/// The longest timeline a composition may have: a room lasts at most 24 hours (as on Twilio),
/// so tracks whose `Offset`s and measured lengths span more cannot all be genuine. Such a
/// composition is refused rather than clamped: a clamped offset would silently misplace a
/// track, and the customer is better told which input is wrong.
pub const MAX_TIMELINE_MS: u64 = 24 * 3600 * 1000;

/// Where a composition's timeline starts: its first selected track when trimmed, else the
/// room's first track.
pub fn origin(sel: &Selection, recordings: &[TrackRecording], trim: bool) -> i64 {
    let selected_min = sel.all().map(|r| r.offset_ms).min().unwrap_or(0);
    if trim {
        selected_min
    } else {
        recordings
            .iter()
            .map(|r| r.offset_ms)
            .min()
            .unwrap_or(0)
            .min(selected_min)
    }
}

/// Refuses a timeline longer than [`MAX_TIMELINE_MS`], with the reason for the customer.
pub fn check_timeline(total_ms: u64) -> Result<(), String> {
    if total_ms <= MAX_TIMELINE_MS {
        return Ok(());
    }
    Err(format!(
        "the selected recordings span {} s of the room's timeline (their Offset values and \
         lengths measured from the media), more than the {} s a room can last; exclude the \
         recordings whose Offset is wrong",
        total_ms / 1000,
        MAX_TIMELINE_MS / 1000
    ))
}

/// One ffmpeg input: a decrypted recording arriving through a FIFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The recording's SID.
    pub sid: String,
    /// Its at-rest object.
    pub object_key: String,
    /// A video (else audio) input.
    pub video: bool,
    /// Where the track starts on the composition's timeline, ms.
    pub start_ms: u64,
}

/// Everything needed to run ffmpeg, except the FIFO paths.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The inputs, in ffmpeg's input order.
    pub inputs: Vec<Input>,
    /// The `-filter_complex` graph.
    pub filter: String,
    /// The `-map` labels of the outputs.
    pub maps: Vec<String>,
    /// Encoder and muxer arguments.
    pub codec_args: Vec<String>,
    /// Length of the composition, ms.
    pub total_ms: u64,
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Lays the selection out on a timeline and builds the filter graph. `durations` gives each
/// selected recording's length in ms; `origin_ms` is the offset the timeline starts at.
pub fn plan(sel: &Selection, spec: &Spec, durations: &dyn Fn(&str) -> u64, origin_ms: i64) -> Plan {
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
pub fn ffmpeg_args(plan: &Plan, fifos: &[PathBuf]) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::select;
    use crate::spec::parse_layout;
    use mediaseal_store::model::Sealing;
    use serde_json::json;

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

        assert_eq!(origin(&sel, &recs, true), 1000);
        assert_eq!(origin(&sel, &recs, false), 0);
        assert!(check_timeline(MAX_TIMELINE_MS).is_ok());
        // A track placed a week after the others makes a week-long timeline: refused.
        let mut far = recs.clone();
        far[0].offset_ms = 7 * 86_400_000;
        let p = plan(&select(&far, &spec), &spec, &|_| 2000, 1000);
        let why = check_timeline(p.total_ms).unwrap_err();
        assert!(why.contains("Offset"), "{why}");

        let all = Spec {
            audio_sources: vec!["*".to_owned()],
            audio_sources_excluded: vec![],
            ..spec
        };
        assert_eq!(select(&recs, &all).encrypted(), ["RT4"]);
    }
}
