//! What a composition is made of: Twilio's track name patterns, the `Resolution`, and the
//! `VideoLayout` regions, parsed from a request (or a hook) and from what the queue stored.

use serde_json::Value;

/// Largest number of sources one composition reads.
pub const MAX_SOURCES: usize = 32;

/// Twilio's source patterns: `*` matches any run of characters (including none); everything else
/// matches itself.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
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

/// True when `name` matches one of `sources` and none of `excluded`.
pub fn included(name: &str, sources: &[String], excluded: &[String]) -> bool {
    sources.iter().any(|p| pattern_matches(p, name))
        && !excluded.iter().any(|p| pattern_matches(p, name))
}

/// Parses `WIDTHxHEIGHT` within Twilio's limits (16..=1280 per side, at most 921,600 pixels);
/// both sides must be even, as the video encoders need.
pub fn parse_resolution(text: &str) -> Result<(u32, u32), String> {
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
pub struct Region {
    /// The region's name.
    pub name: String,
    /// Left edge on the canvas.
    pub x: u32,
    /// Top edge on the canvas.
    pub y: u32,
    /// Drawing order (higher on top).
    pub z: i64,
    /// Width, clipped to the canvas and even.
    pub width: u32,
    /// Height, clipped to the canvas and even.
    pub height: u32,
    /// Most columns of its grid.
    pub max_columns: u32,
    /// Most rows of its grid.
    pub max_rows: u32,
    /// Grid cells left empty.
    pub cells_excluded: Vec<u32>,
    /// Track name patterns shown here.
    pub video_sources: Vec<String>,
    /// Track name patterns never shown here.
    pub video_sources_excluded: Vec<String>,
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
pub fn parse_layout(
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
pub struct Spec {
    /// `AudioSources` patterns.
    pub audio_sources: Vec<String>,
    /// `AudioSourcesExcluded` patterns.
    pub audio_sources_excluded: Vec<String>,
    /// The layout's regions, in drawing order.
    pub regions: Vec<Region>,
    /// Canvas size.
    pub resolution: (u32, u32),
    /// `webm` or `mp4`.
    pub format: String,
    /// Start at the first selected track.
    pub trim: bool,
}

impl Spec {
    /// Reads the stored JSON of a composition (or a hook).
    pub fn from_stored(
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
}
