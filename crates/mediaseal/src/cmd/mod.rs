//! One module per subcommand.

pub(crate) mod decrypt;
pub(crate) mod encrypt;
pub(crate) mod inspect;
pub(crate) mod keygen;
