//! `Range: bytes=…` request headers, resolved against an object's length.

/// An inclusive byte range, resolved against a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Bytes in the range.
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range holds at least one byte.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// A `Range` header that no byte of the object satisfies: the answer is 416.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Reads the value of a `Range` header (`None`: no header) for an object of `len` bytes.
/// `Ok(None)` means "serve everything" (no header, or one this server does not honour such as
/// several ranges); `Err` means 416.
pub fn parse_range(value: Option<&str>, len: u64) -> Result<Option<ByteRange>, Unsatisfiable> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || len == 0 {
            return Err(Unsatisfiable);
        }
        ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        }
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(Unsatisfiable);
        }
        ByteRange { start, end }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |v: &str| parse_range(Some(v), 10);
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(r("bytes=0-3"), Ok(Some(ByteRange { start: 0, end: 3 })));
        assert_eq!(r("bytes=5-"), Ok(Some(ByteRange { start: 5, end: 9 })));
        assert_eq!(r("bytes=-4"), Ok(Some(ByteRange { start: 6, end: 9 })));
        assert_eq!(r("bytes=8-100"), Ok(Some(ByteRange { start: 8, end: 9 })));
        assert_eq!(r("bytes=10-"), Err(Unsatisfiable));
        assert_eq!(r("bytes=4-2"), Err(Unsatisfiable));
        assert_eq!(r("bytes=0-1,4-5"), Ok(None));
        assert_eq!(r("items=0-1"), Ok(None));
        assert_eq!(r("bytes=x-1"), Err(Unsatisfiable));
    }
}
