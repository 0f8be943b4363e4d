//! What mediaseal-store parses from outside: object store URLs (configuration), database URLs
//! (redacted for messages), object keys, and the stored spellings of statuses and kinds. None
//! may panic; a parsed URL never keeps credentials; a redacted URL never shows a password; an
//! accepted key never names a path outside the store; every accepted spelling prints back as
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_store::model::{AccountStatus, CallbackState, HttpMethod, RecordingStatus, Sealing};
use mediaseal_store::video::{
    CompositionFormat, CompositionStatus, ContainerFormat, MediaType, RoomStatus, RoomType,
    SettingsKind, TrackRecordingStatus,
};

fn round_trips<T: std::str::FromStr + std::fmt::Display>(text: &str) {
    if let Ok(value) = text.parse::<T>() {
        assert_eq!(value.to_string(), text);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = mediaseal_store::S3Config::from_url(text) {
        assert!(config.access_key_id.is_none() && config.secret_access_key.is_none());
        let _ = config.signs_payload();
        let _ = config.describe();
    }
    let redacted = mediaseal_store::redact_url(text);
    if let (Some(scheme_end), Some(at)) = (text.find("://"), text.rfind('@'))
        && at > scheme_end
    {
        assert!(redacted.contains(":***@"), "{redacted}");
    }
    if mediaseal_store::validate_key(text).is_ok() {
        assert!(!text.starts_with('/') && text.split('/').all(|p| p != ".." && p != "."));
    }
    round_trips::<AccountStatus>(text);
    round_trips::<RecordingStatus>(text);
    round_trips::<CallbackState>(text);
    round_trips::<HttpMethod>(text);
    round_trips::<Sealing>(text);
    round_trips::<SettingsKind>(text);
    round_trips::<RoomStatus>(text);
    round_trips::<RoomType>(text);
    round_trips::<TrackRecordingStatus>(text);
    round_trips::<MediaType>(text);
    round_trips::<ContainerFormat>(text);
    round_trips::<CompositionStatus>(text);
    round_trips::<CompositionFormat>(text);
});
