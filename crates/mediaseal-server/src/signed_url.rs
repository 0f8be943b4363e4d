//! Capability URLs for `/Media` downloads when the object store cannot presign its own (the
//! directory backend). The token format is `mediaseal-wire`'s.

pub use mediaseal_wire::media_token::{Grant, Refusal, ServeMode, sign, verify};
