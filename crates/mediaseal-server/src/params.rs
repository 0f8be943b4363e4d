//! Form and query parameters as Twilio clients send them (parsed by `mediaseal-wire`); a bad one
//! becomes a 400 with code 20001 naming it.

pub use mediaseal_wire::params::{ParamError, Params};
