//! Request ids: accepted from the client when well-formed (and trusted), generated otherwise.

use http::{HeaderMap, HeaderName, HeaderValue};

/// The id for this request.
pub(crate) fn request_id(headers: &HeaderMap, name: &HeaderName, trust: bool) -> HeaderValue {
    if trust
        && let Some(v) = crate::headers::first(headers, name)
        && valid(v.as_bytes())
    {
        return v.clone();
    }
    generate()
}

fn valid(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 128 && id.iter().all(|b| b.is_ascii_graphic())
}

/// A random 128-bit id as 32 lowercase hex digits.
pub(crate) fn generate() -> HeaderValue {
    let n: u128 = rand::random();
    let mut out = [0u8; 32];
    for (pair, byte) in out.chunks_exact_mut(2).zip(n.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    hex_value(&out)
}

/// The value of 32 hex digits, without checking its bytes.
#[allow(unsafe_code)]
fn hex_value(digits: &[u8; 32]) -> HeaderValue {
    use bytes::BufMut;
    let bytes = crate::values::carve(digits.len(), |buf| buf.put_slice(digits));
    debug_assert!(bytes.iter().all(u8::is_ascii_hexdigit));
    // SAFETY: `HeaderValue` requires every byte to be a tab or at least 0x20 and not 0x7f.
    // The bytes are the 32 given, each taken from `HEX_PAIRS`, whose entries are made of
    // `0-9` and `a-f` only (0x30..=0x39, 0x61..=0x66).
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) }
}

/// Each byte's two lowercase hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_replaces_invalid() {
        let name = HeaderName::from_static("x-request-id");
        let mut h = HeaderMap::new();
        h.insert(&name, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h, &name, true), "abc-123");
        assert_ne!(request_id(&h, &name, false), "abc-123");
        h.insert(&name, HeaderValue::from_str(&"x".repeat(200)).unwrap());
        assert_eq!(request_id(&h, &name, true).len(), 32);
        assert_ne!(generate(), generate());
        let id = generate();
        assert_eq!(id.len(), 32);
        assert!(
            id.as_bytes()
                .iter()
                .all(|b| b"0123456789abcdef".contains(b))
        );
        assert_eq!(HEX_PAIRS[0x00], *b"00");
        assert_eq!(HEX_PAIRS[0x9f], *b"9f");
        assert_eq!(HEX_PAIRS[0xff], *b"ff");
    }
}
