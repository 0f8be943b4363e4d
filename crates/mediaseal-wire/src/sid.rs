//! SIDs: two uppercase letters and 32 lowercase hex digits.

/// A fresh SID with `prefix`, e.g. `RE…`.
pub fn new_sid(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    let mut s = String::with_capacity(34);
    s.push_str(prefix);
    s.push_str(&hex(&bytes));
    s
}

/// A fresh secret: 32 lowercase hex digits (128 bits).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    hex(&bytes)
}

fn fill(bytes: &mut [u8]) {
    #[allow(
        clippy::expect_used,
        reason = "without randomness no safe SID or secret can be made"
    )]
    aws_lc_rs::rand::fill(bytes).expect("the system random number generator failed");
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| {
            [
                DIGITS[usize::from(b >> 4)] as char,
                DIGITS[usize::from(b & 15)] as char,
            ]
        })
        .collect()
}

/// True if `sid` is `prefix` followed by 32 hex digits (either case, as the OpenAPI patterns allow).
pub fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34 && sid.starts_with(prefix) && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let s = new_sid("RE");
        assert!(is_sid(&s, "RE"));
        assert!(!is_sid(&s, "CA"));
        assert!(!is_sid("RE123", "RE"));
        assert!(!is_sid("REzz000000000000000000000000000000", "RE"));
        assert_ne!(new_sid("RE"), new_sid("RE"));
        assert_eq!(new_secret().len(), 32);
    }
}
