//! Native header parsing on arbitrary bytes: never panics, and whatever parses serialises back
//! to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mediaseal_crypto::fuzzing::parse_native_header(data);
});
