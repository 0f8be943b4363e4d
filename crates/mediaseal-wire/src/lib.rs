//! What clients send the HTTP API, parsed without any IO: SIDs, form and query parameters,
//! `Range` headers, the signed tokens of `/Media` download URLs, and composition specs
//! (`VideoLayout`, `Resolution`, track name patterns).
//!
//! Every parser here takes untrusted input and answers with a value or an error that names the
//! offending field; none panics. They are small and free of the server's dependencies so the
//! fuzz targets (`fuzz/fuzz_targets/server_inputs.rs`) can drive them without building the
//! server.

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod composition;
pub mod media_token;
pub mod params;
pub mod range;
pub mod sid;

pub use params::{ParamError, Params};
pub use range::{ByteRange, Unsatisfiable, parse_range};

/// Entry points for the `fuzz/` crate: every parser of untrusted request input, driven without a
/// running server. Each checks the invariants its callers rely on and panics when one breaks.
#[doc(hidden)]
pub mod fuzzing {
    /// Form/query parameters and the typed reads the handlers make of them.
    pub fn params(data: &[u8]) {
        let p = crate::Params::parse(data);
        let _ = p.boolean("EncryptionEnabled");
        if let Ok(Some(n)) = p.int_in("Ttl", 1..=604_800) {
            assert!((1..=604_800).contains(&n));
        }
        if let Ok(Some(sid)) = p.sid("RoomSid", "RM") {
            assert!(crate::sid::is_sid(sid, "RM"));
        }
        let _ = p.url("StatusCallback");
        let _ = p.method("StatusCallbackMethod");
        let _ = p.friendly_name("FriendlyName", 64);
    }

    /// A `Range` header against an object of a length taken from the input.
    pub fn range(data: &[u8]) {
        let Some((&n, value)) = data.split_first() else {
            return;
        };
        let len = u64::from(n) * 37;
        let Ok(value) = core::str::from_utf8(value) else {
            return;
        };
        if let Ok(Some(r)) = crate::parse_range(Some(value), len) {
            assert!(r.start <= r.end && r.end < len, "{r:?} outside 0..{len}");
        }
    }

    /// `Resolution` and `VideoLayout` of a composition request.
    pub fn composition_spec(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        if let Ok((w, h)) = crate::composition::parse_resolution(&text) {
            assert!((16..=1280).contains(&w) && (16..=1280).contains(&h));
        }
        if let Ok(layout) = serde_json::from_slice::<serde_json::Value>(data)
            && let Ok(regions) = crate::composition::parse_layout(&layout, (640, 480))
        {
            for r in regions {
                assert!(r.x + r.width <= 640 && r.y + r.height <= 480, "{}", r.name);
            }
        }
    }

    /// A `/v1/MediaDownload/{token}`: nothing but a token this secret signed is accepted.
    pub fn media_token(data: &[u8]) {
        let token = String::from_utf8_lossy(data);
        assert!(crate::media_token::verify(&[0x5a; 32], &token, 0).is_err());
    }
}
