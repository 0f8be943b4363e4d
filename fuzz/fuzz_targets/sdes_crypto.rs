//! `a=crypto` parsing: never panics; whatever parses formats back to text that parses to the
//! same attribute; the negotiator never panics on what parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_srtp::SrtpProfile;
use mediaseal_srtp::negotiate;
use mediaseal_srtp::sdes::CryptoAttribute;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        if let Ok(attr) = CryptoAttribute::parse(line) {
            let again = CryptoAttribute::parse(&attr.to_string()).expect("formatted line parses");
            assert_eq!(again, attr);
        }
    }
    let _ = negotiate::answer_lines(lines.iter().copied(), &SrtpProfile::ALL);
});
