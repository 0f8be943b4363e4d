//! MD5 (RFC 1321), only for HTTP Digest with `algorithm=MD5`, which every SIP phone still
//! uses. AWS-LC's Rust bindings do not expose MD5, so this wraps RustCrypto's maintained `md-5`
//! crate behind the three calls digest authentication needs. Never use it for anything else.

use md5::Digest as _;

/// Incremental MD5.
#[derive(Clone)]
pub(crate) struct Md5(md5::Md5);

impl Md5 {
    pub(crate) fn new() -> Self {
        Self(md5::Md5::new())
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            let mut h = Md5::new();
            h.update(input.as_bytes());
            assert_eq!(hex(h.finish()), want, "{input:?}");
            // Same digest when fed byte by byte.
            let mut h = Md5::new();
            for b in input.as_bytes() {
                h.update(std::slice::from_ref(b));
            }
            assert_eq!(hex(h.finish()), want);
        }
    }
}
