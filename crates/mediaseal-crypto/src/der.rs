//! Just enough DER reading to tell key structures apart and to unwrap PKCS#8 into PKCS#1.
//!
//! AWS-LC does the real parsing and validation; this only looks at the outline of a structure
//! (which tags, in which order) so that a private key pasted as a public one gets its own error,
//! and so that `keygen --pkcs1` can write the `RSAPrivateKey` that sits inside a PKCS#8 document.

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_SEQUENCE: u8 = 0x30;

/// One tag-length-value element and what follows it.
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
    rest: &'a [u8],
}

/// Reads one element with a definite length in at most four length octets.
fn read_tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first_len, mut after_len) = after_tag.split_first()?;
    let len = if first_len < 0x80 {
        usize::from(first_len)
    } else {
        let octets = usize::from(first_len & 0x7f);
        if octets == 0 || octets > 4 {
            return None;
        }
        let (len_bytes, rest) = after_len.split_at_checked(octets)?;
        after_len = rest;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (value, rest) = after_len.split_at_checked(len)?;
    Some(Tlv { tag, value, rest })
}

/// The elements of a SEQUENCE that spans the whole input, or `None` if the input is not one.
fn sequence_elements(input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let outer = read_tlv(input)?;
    if outer.tag != TAG_SEQUENCE || !outer.rest.is_empty() {
        return None;
    }
    let mut elements = Vec::new();
    let mut cursor = outer.value;
    while !cursor.is_empty() {
        let element = read_tlv(cursor)?;
        cursor = element.rest;
        elements.push(element);
        if elements.len() > 64 {
            return None;
        }
    }
    Some(elements)
}

/// The `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`:
/// `SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey, … }`.
pub(crate) fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Option<&[u8]> {
    let elements = sequence_elements(pkcs8)?;
    match elements.as_slice() {
        [version, algorithm, key, ..]
            if version.tag == TAG_INTEGER
                && algorithm.tag == TAG_SEQUENCE
                && key.tag == TAG_OCTET_STRING =>
        {
            Some(key.value)
        }
        _ => None,
    }
}

/// True for the outline of PKCS#8 `PrivateKeyInfo` or PKCS#1 `RSAPrivateKey` (nine INTEGERs).
pub(crate) fn looks_like_private_key(input: &[u8]) -> bool {
    if pkcs1_from_pkcs8(input).is_some() {
        return true;
    }
    is_pkcs1_private(input)
}

fn is_pkcs1_private(input: &[u8]) -> bool {
    sequence_elements(input)
        .is_some_and(|e| e.len() >= 9 && e.iter().take(9).all(|t| t.tag == TAG_INTEGER))
}

/// Modulus size of a PKCS#8 or PKCS#1 private key, read from its structure alone.
pub(crate) fn modulus_bits_of_private(input: &[u8]) -> Option<usize> {
    let pkcs1 = pkcs1_from_pkcs8(input).unwrap_or(input);
    let elements = sequence_elements(pkcs1)?;
    let modulus = elements.get(1).filter(|t| t.tag == TAG_INTEGER)?.value;
    let first = modulus.iter().position(|&b| b != 0)?;
    let modulus = modulus.get(first..)?;
    let top = *modulus.first()?;
    Some((modulus.len() - 1) * 8 + (8 - top.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_truncated_and_overlong_lengths() {
        assert!(read_tlv(&[0x30]).is_none());
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_none());
        assert!(read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read_tlv(&[0x30, 0x80]).is_none());
        let ok = read_tlv(&[0x04, 0x81, 0x01, 0xaa, 0xbb]).unwrap();
        assert_eq!(ok.value, &[0xaa]);
        assert_eq!(ok.rest, &[0xbb]);
    }

    #[test]
    fn outlines() {
        // SEQUENCE { INTEGER 0, SEQUENCE {}, OCTET STRING { 0x30 0x00 } }
        let pkcs8 = [
            0x30, 0x09, 0x02, 0x01, 0x00, 0x30, 0x00, 0x04, 0x02, 0x30, 0x00,
        ];
        assert_eq!(pkcs1_from_pkcs8(&pkcs8), Some(&[0x30, 0x00][..]));
        assert!(looks_like_private_key(&pkcs8));
        // SEQUENCE { INTEGER 5, INTEGER 3 } is the outline of an RSAPublicKey.
        assert!(!looks_like_private_key(&[
            0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03
        ]));
    }
}
