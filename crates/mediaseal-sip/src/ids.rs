//! Random identifiers: tags, branches, Call-IDs, cnonces (RFC 3261 §19.3: globally unique and
//! cryptographically random, at least 32 bits).

use crate::message::MAGIC_COOKIE;

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `len` random characters from `[0-9a-zA-Z]` (about 5.95 bits each).
pub fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    // The system RNG does not fail on supported platforms; if it ever did, identifiers would
    // collide and transactions would mis-match, which is visible, not a security hole.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// A From/To tag (16 characters, ~95 bits).
pub fn new_tag() -> String {
    random_token(16)
}

/// A Via branch starting with the RFC 3261 magic cookie.
pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{}", random_token(22))
}

/// A Call-ID: 24 random characters, `@host` when given.
pub fn new_call_id(host: Option<&str>) -> String {
    match host {
        Some(h) => format!("{}@{h}", random_token(24)),
        None => random_token(24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_uniqueness() {
        assert!(new_branch().starts_with("z9hG4bK"));
        assert_eq!(new_tag().len(), 16);
        assert_ne!(new_tag(), new_tag());
        assert!(new_call_id(Some("h")).ends_with("@h"));
        assert!(random_token(64).bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
