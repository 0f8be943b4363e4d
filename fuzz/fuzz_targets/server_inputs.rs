//! The HTTP API's parsers of untrusted request input (`mediaseal-wire`, `mediaseal-media`): form/query parameters, `Range` headers,
//! composition `Resolution`/`VideoLayout`, uploaded Matroska heads and `/Media` download tokens.
//! The first byte picks the parser; each must refuse bad input with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_wire::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => fuzzing::params(rest),
        1 => fuzzing::range(rest),
        2 => fuzzing::composition_spec(rest),
        3 => {
            let _ = mediaseal_media::matroska::sniff(rest);
        }
        _ => fuzzing::media_token(rest),
    }
});
