//! One module per subcommand.

pub(crate) mod account;
pub(crate) mod call_transcripts;
pub(crate) mod decrypt;
pub(crate) mod download;
pub(crate) mod encrypt;
pub(crate) mod inspect;
pub(crate) mod intelligence;
pub(crate) mod keygen;
pub(crate) mod logging;
pub(crate) mod serve;
pub(crate) mod sip;
