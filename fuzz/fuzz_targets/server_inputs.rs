//! The HTTP API's parsers of untrusted request input (`mediaseal-wire`, `mediaseal-media`): form/query parameters, `Range` headers,
//! composition `Resolution`/`VideoLayout`, uploaded Matroska heads, the block clock that measures an
//! upload's length as it streams, and `/Media` download tokens.
//! The first byte picks the parser; each must refuse bad input with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_wire::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => fuzzing::params(rest),
        1 => fuzzing::range(rest),
        2 => fuzzing::composition_spec(rest),
        3 => {
            let _ = mediaseal_media::matroska::sniff(rest);
        }
        4 => {
            // Fed in uneven pieces, as an upload arrives.
            let mut clock = mediaseal_media::matroska::BlockClock::new();
            let step = usize::from(which / 6) + 1;
            for piece in rest.chunks(step) {
                clock.feed(piece);
            }
            let _ = clock.duration_ms();
        }
        _ => fuzzing::media_token(rest),
    }
});
