//! Unprotect of arbitrary bytes as SRTP and SRTCP, under every profile. Must never panic and
//! never accept a packet it did not authenticate (with a key nobody used, nothing authenticates,
//! so any `Ok` is a bug). A second phase protects the input as a packet and checks the round
//! trip, to exercise the success paths with odd headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediaseal_srtp::{
    InboundSession, MAX_TRAILER_LEN, MasterKey, OutboundSession, SessionConfig, SrtpProfile,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let profile = SrtpProfile::ALL[usize::from(selector) % SrtpProfile::ALL.len()];
    let n = profile.master_key_len() + profile.master_salt_len();
    let key = MasterKey::from_key_salt(profile, &[0x5a; 46][..n]).expect("length fits");
    let config = SessionConfig::default();
    let mut rx = InboundSession::new(&key, &config).expect("session");

    let mut a = rest.to_vec();
    assert!(rx.unprotect_rtp(&mut a).is_err(), "forged SRTP accepted");
    let mut b = rest.to_vec();
    assert!(rx.unprotect_rtcp(&mut b).is_err(), "forged SRTCP accepted");
    assert_eq!(rx.stream_count(), 0);

    // Round trip: whatever protect accepts, unprotect must give back.
    let mut tx = OutboundSession::new(&key, &config).expect("session");
    let mut buf = rest.to_vec();
    buf.resize(rest.len() + MAX_TRAILER_LEN, 0);
    if selector & 0x80 == 0 {
        if let Ok(m) = tx.protect_rtp(&mut buf, rest.len()) {
            let got = rx.unprotect_rtp(&mut buf[..m]).expect("own SRTP rejected");
            assert_eq!(&buf[..got], rest);
        }
    } else if let Ok(m) = tx.protect_rtcp(&mut buf, rest.len()) {
        let got = rx
            .unprotect_rtcp(&mut buf[..m])
            .expect("own SRTCP rejected");
        assert_eq!(&buf[..got], rest);
    }
});
