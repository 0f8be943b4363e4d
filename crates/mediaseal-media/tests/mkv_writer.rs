//! The live Matroska writer against real encoders and real readers: ffmpeg encodes a few seconds
//! of Opus, PCMU, VP8 and H.264, the frames go through `LiveMatroska`, and ffprobe, ffmpeg's
//! decoders, `matroska::sniff` and the `BlockClock` read the result.

use std::path::PathBuf;
use std::process::Command;

use mediaseal_media::matroska::{BlockClock, sniff};
use mediaseal_media::mkv_writer::{LiveMatroska, TrackCodec};
use mediaseal_test_support::require_tool;
use serde::Deserialize;

/// One frame as the room would hand it over.
struct Frame {
    pts_ms: u64,
    keyframe: bool,
    data: Vec<u8>,
}

fn ffmpeg_tool() -> PathBuf {
    require_tool("ffmpeg", &["-version"])
}

/// Runs ffmpeg with `args` (ending in an output of `-`) and returns what it wrote.
fn encode(args: &[&str]) -> Vec<u8> {
    let out = Command::new(ffmpeg_tool())
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Whether this ffmpeg has `encoder`; a missing one skips its case.
fn has_encoder(encoder: &str) -> bool {
    let out = Command::new(ffmpeg_tool())
        .args(["-hide_banner", "-h", &format!("encoder={encoder}")])
        .output()
        .expect("run ffmpeg");
    let found =
        out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("is not recognized");
    if !found {
        eprintln!("SKIPPED: this ffmpeg has no {encoder} encoder");
    }
    found
}

/// The packets of an Ogg stream, without the `OpusHead` and `OpusTags` headers.
fn ogg_opus_packets(ogg: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut partial = Vec::new();
    let mut at = 0;
    while at < ogg.len() {
        assert_eq!(&ogg[at..at + 4], b"OggS", "an Ogg page at {at}");
        let segments = usize::from(ogg[at + 26]);
        let table = &ogg[at + 27..at + 27 + segments];
        let mut body = at + 27 + segments;
        for &lace in table {
            partial.extend_from_slice(&ogg[body..body + usize::from(lace)]);
            body += usize::from(lace);
            if lace < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        at = body;
    }
    assert!(packets[0].starts_with(b"OpusHead"));
    assert!(packets[1].starts_with(b"OpusTags"));
    packets.split_off(2)
}

/// The frames of an IVF file (VP8), with their times in ms.
fn ivf_frames(ivf: &[u8]) -> Vec<Frame> {
    assert_eq!(&ivf[..4], b"DKIF");
    let den = u64::from(u32::from_le_bytes(ivf[16..20].try_into().unwrap()));
    let num = u64::from(u32::from_le_bytes(ivf[20..24].try_into().unwrap()));
    let mut frames = Vec::new();
    let mut at = usize::from(u16::from_le_bytes([ivf[6], ivf[7]]));
    while at + 12 <= ivf.len() {
        let len = u32::from_le_bytes(ivf[at..at + 4].try_into().unwrap()) as usize;
        let pts = u64::from_le_bytes(ivf[at + 4..at + 12].try_into().unwrap());
        let data = ivf[at + 12..at + 12 + len].to_vec();
        frames.push(Frame {
            pts_ms: pts * num * 1000 / den,
            keyframe: data[0] & 1 == 0,
            data,
        });
        at += 12 + len;
    }
    frames
}

/// The access units of an Annex-B stream written with access unit delimiters, `ms` apart.
fn h264_access_units(stream: &[u8], ms: u64) -> Vec<Frame> {
    let aud = [0, 0, 0, 1, 0x09];
    let starts: Vec<usize> = (0..stream.len().saturating_sub(aud.len()))
        .filter(|&i| stream[i..].starts_with(&aud))
        .collect();
    assert!(!starts.is_empty(), "x264 wrote no access unit delimiters");
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(stream.len());
            let data = stream[start..end].to_vec();
            // An IDR slice (type 5) after a 3- or 4-byte start code.
            let keyframe = data
                .windows(4)
                .any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1F == 5);
            Frame {
                pts_ms: n as u64 * ms,
                keyframe,
                data,
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct Probe {
    streams: Vec<ProbeStream>,
    packets: Vec<ProbePacket>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_name: String,
    channels: Option<u32>,
    sample_rate: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Deserialize)]
struct ProbePacket {
    pts_time: Option<String>,
    duration_time: Option<String>,
}

/// What a case expects of the file.
struct Expect {
    codec_name: &'static str,
    extension: &'static str,
    /// Channels and sample rate, or width and height.
    audio: Option<(u32, &'static str)>,
    video: Option<(u32, u32)>,
    /// The media's length in ms.
    length_ms: u64,
}

/// Muxes `frames`, then checks the file with ffprobe, ffmpeg, `sniff` and the block clock.
fn mux_and_check(codec: TrackCodec, frames: &[Frame], expect: &Expect) {
    let mut mkv = LiveMatroska::new(codec);
    let mut bytes = Vec::new();
    for f in frames {
        mkv.push(f.pts_ms, f.keyframe, &f.data, &mut bytes)
            .unwrap_or_else(|e| panic!("frame at {} ms: {e}", f.pts_ms));
    }
    assert_eq!(mkv.frames_written(), frames.len() as u64);
    assert_eq!(mkv.frames_skipped(), 0);
    assert_eq!(mkv.extension(), expect.extension);
    let muxed_ms = mkv.duration_ms();
    mkv.finish(&mut bytes);
    assert!(
        muxed_ms.abs_diff(expect.length_ms) <= 100,
        "the writer says {muxed_ms} ms, the media lasts {} ms",
        expect.length_ms
    );

    let info = sniff(&bytes).expect("sniff accepts the writer's output");
    assert_eq!(info.doc_type, "matroska");
    assert_eq!(info.duration_ms, None, "a live writer claims no duration");
    for chunk in [7, 4096] {
        let mut clock = BlockClock::new();
        for part in bytes.chunks(chunk) {
            clock.feed(part);
        }
        let measured = clock.duration_ms().expect("the clock reads the blocks");
        assert!(
            measured.abs_diff(expect.length_ms) <= 100,
            "the block clock measures {measured} ms, the media lasts {} ms",
            expect.length_ms
        );
        assert_eq!(measured, muxed_ms, "the clock and the writer agree");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("track.{}", expect.extension));
    std::fs::write(&path, &bytes).expect("write the muxed file");
    let probe = Command::new(require_tool("ffprobe", &["-version"]))
        .args(["-v", "error", "-show_entries"])
        .args([
            "stream=codec_name,channels,sample_rate,width,height:packet=pts_time,duration_time",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("run ffprobe");
    assert!(
        probe.status.success() && probe.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let probe: Probe = serde_json::from_slice(&probe.stdout).expect("ffprobe's JSON");
    let [stream] = &probe.streams[..] else {
        panic!("one stream expected, ffprobe saw {}", probe.streams.len());
    };
    assert_eq!(stream.codec_name, expect.codec_name);
    if let Some((channels, rate)) = expect.audio {
        assert_eq!(stream.channels, Some(channels));
        assert_eq!(stream.sample_rate.as_deref(), Some(rate));
    }
    if let Some((width, height)) = expect.video {
        assert_eq!((stream.width, stream.height), (Some(width), Some(height)));
    }
    assert_eq!(probe.packets.len(), frames.len(), "one packet per frame");
    let last = probe.packets.last().expect("packets");
    let secs = |s: &Option<String>| s.as_deref().map_or(0.0, |s| s.parse::<f64>().unwrap());
    let end_ms = (secs(&last.pts_time) + secs(&last.duration_time)) * 1000.0;
    assert!(
        (end_ms - expect.length_ms as f64).abs() <= 100.0,
        "ffprobe's last packet ends at {end_ms} ms, the media lasts {} ms",
        expect.length_ms
    );

    eprintln!(
        "{}: {} frames, {} bytes; writer {muxed_ms} ms, ffprobe {end_ms:.0} ms, media {} ms",
        expect.codec_name,
        frames.len(),
        bytes.len(),
        expect.length_ms
    );

    let decode = Command::new(ffmpeg_tool())
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "ffmpeg decodes with errors: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
}

#[test]
fn opus_audio() {
    if !has_encoder("libopus") {
        return;
    }
    let ogg = encode(&[
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=3",
        "-ac",
        "2",
        "-c:a",
        "libopus",
        "-f",
        "ogg",
        "-",
    ]);
    let packets = ogg_opus_packets(&ogg);
    let frames: Vec<Frame> = packets
        .into_iter()
        .enumerate()
        .map(|(n, data)| Frame {
            pts_ms: n as u64 * 20,
            keyframe: false,
            data,
        })
        .collect();
    let length_ms = frames.len() as u64 * 20;
    assert!(length_ms.abs_diff(3000) <= 100, "{length_ms} ms of Opus");
    mux_and_check(
        TrackCodec::Opus {
            channels: 2,
            sample_rate: 48_000,
        },
        &frames,
        &Expect {
            codec_name: "opus",
            extension: "mka",
            audio: Some((2, "48000")),
            video: None,
            length_ms,
        },
    );
}

#[test]
fn pcmu_audio() {
    if !has_encoder("pcm_mulaw") {
        return;
    }
    let mulaw = encode(&[
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=3",
        "-ar",
        "8000",
        "-ac",
        "1",
        "-c:a",
        "pcm_mulaw",
        "-f",
        "mulaw",
        "-",
    ]);
    assert_eq!(mulaw.len(), 24_000);
    // 160 bytes: 20 ms, one RTP packet's worth.
    let frames: Vec<Frame> = mulaw
        .chunks(160)
        .enumerate()
        .map(|(n, data)| Frame {
            pts_ms: n as u64 * 20,
            keyframe: false,
            data: data.to_vec(),
        })
        .collect();
    mux_and_check(
        TrackCodec::Pcmu,
        &frames,
        &Expect {
            codec_name: "pcm_mulaw",
            extension: "mka",
            audio: Some((1, "8000")),
            video: None,
            length_ms: 3000,
        },
    );
}

#[test]
fn vp8_video() {
    if !has_encoder("libvpx") {
        return;
    }
    let ivf = encode(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25:d=3",
        "-c:v",
        "libvpx",
        "-g",
        "30",
        "-deadline",
        "realtime",
        "-f",
        "ivf",
        "-",
    ]);
    let frames = ivf_frames(&ivf);
    assert_eq!(frames.len(), 75);
    assert!(frames[0].keyframe && frames.iter().filter(|f| f.keyframe).count() >= 3);
    mux_and_check(
        TrackCodec::Vp8,
        &frames,
        &Expect {
            codec_name: "vp8",
            extension: "mkv",
            audio: None,
            video: Some((320, 240)),
            length_ms: 3000,
        },
    );

    // Joining mid-stream: frames before the first keyframe are skipped and counted.
    let mut mkv = LiveMatroska::new(TrackCodec::Vp8);
    let mut bytes = Vec::new();
    for f in &frames[1..] {
        mkv.push(f.pts_ms, f.keyframe, &f.data, &mut bytes).unwrap();
    }
    let second_key = frames.iter().skip(1).position(|f| f.keyframe).unwrap() as u64;
    assert_eq!(mkv.frames_skipped(), second_key);
    assert_eq!(
        mkv.first_pts_ms(),
        Some(frames[1 + second_key as usize].pts_ms)
    );
}

#[test]
fn h264_video() {
    if !has_encoder("libx264") {
        return;
    }
    // Odd-looking size on purpose: the SPS carries a crop that the header must apply.
    let stream = encode(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=318x238:rate=25:d=3",
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "30",
        "-x264-params",
        "aud=1",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
        "-",
    ]);
    let frames = h264_access_units(&stream, 40);
    assert_eq!(frames.len(), 75);
    assert!(frames[0].keyframe);
    mux_and_check(
        TrackCodec::H264,
        &frames,
        &Expect {
            codec_name: "h264",
            extension: "mkv",
            audio: None,
            video: Some((318, 238)),
            length_ms: 3000,
        },
    );
}
