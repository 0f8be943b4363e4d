//! SIDs: two uppercase letters and 32 lowercase hex digits (defined in `mediaseal-wire`).

pub use mediaseal_wire::sid::{hex, is_sid, new_secret, new_sid};
