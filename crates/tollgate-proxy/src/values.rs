//! Header values the gateway writes per request (request ids, `Forwarded`), carved from a
//! per-thread chunk instead of allocated one by one.
//!
//! A `HeaderValue` owns its bytes, so each value written per request was an allocation, and
//! cloning one (the request id goes upstream, into the response and into the access log)
//! another. Values carved from a shared chunk cost a reference count instead: the chunk is
//! freed once every value carved from it is gone. Chunks are small ([`CHUNK`]), so a value
//! that lives long (the id of a streaming request) keeps little else alive with it.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;

/// Bytes per chunk: a few dozen values, and within `malloc`'s per-thread cache.
const CHUNK: usize = 1000;

thread_local! {
    static CHUNK_LEFT: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A header value made of what `write` puts into the buffer it is given (with room for at
/// least `hint` bytes). `None` when the bytes are not a valid header value.
pub(crate) fn header_value(hint: usize, write: impl FnOnce(&mut BytesMut)) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(carve(hint, write)).ok()
}

/// What `write` puts into the buffer it is given (with room for at least `hint` bytes), as
/// bytes carved from this thread's chunk.
pub(crate) fn carve(hint: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
    CHUNK_LEFT.with(|left| match left.try_borrow_mut() {
        Ok(mut left) => {
            if left.capacity() < hint {
                *left = BytesMut::with_capacity(CHUNK.max(hint));
            }
            write(&mut left);
            left.split().freeze()
        }
        // Only reachable if `write` itself made a value: it gets a buffer of its own.
        Err(_) => {
            let mut own = BytesMut::with_capacity(hint);
            write(&mut own);
            own.freeze()
        }
    })
}

/// `parts` joined into one header value.
pub(crate) fn joined(parts: &[&[u8]]) -> Option<HeaderValue> {
    let len = parts.iter().map(|p| p.len()).sum();
    header_value(len, |buf| {
        for p in parts {
            buf.put_slice(p);
        }
    })
}

thread_local! {
    /// The last value [`joined_again`] made on this thread, and the bytes it was made of.
    static LAST_JOINED: RefCell<(Vec<u8>, Option<HeaderValue>)> =
        const { RefCell::new((Vec::new(), None)) };
}

/// [`joined`] for values that repeat from one request to the next (the `Forwarded` element of
/// a client's connection and host): when `parts` join to the same bytes as the last call on
/// this thread, that value is returned again (a reference count) instead of being made and
/// checked anew.
pub(crate) fn joined_again(parts: &[&[u8]]) -> Option<HeaderValue> {
    LAST_JOINED.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return joined(parts);
        };
        let (key, value) = &mut *last;
        if let Some(v) = value.as_ref()
            && same_bytes(key, parts)
        {
            return Some(v.clone());
        }
        let made = joined(parts)?;
        key.clear();
        if made.len() <= 256 {
            key.extend_from_slice(made.as_bytes());
            *value = Some(made.clone());
        } else {
            *value = None;
        }
        Some(made)
    })
}

/// Whether `parts`, joined, are `bytes`.
fn same_bytes(mut bytes: &[u8], parts: &[&[u8]]) -> bool {
    for part in parts {
        match bytes.split_at_checked(part.len()) {
            Some((head, rest)) if head == *part => bytes = rest,
            _ => return false,
        }
    }
    bytes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_carved_from_one_chunk_and_checked() {
        let a = joined(&[b"for=", b"127.0.0.1"]).unwrap();
        let b = joined(&[b"abc"]).unwrap();
        assert_eq!(a, "for=127.0.0.1");
        assert_eq!(b, "abc");
        // Consecutive values share the chunk: the second starts where the first ends.
        assert_eq!(a.as_bytes().as_ptr_range().end, b.as_bytes().as_ptr());
        assert!(joined(&[b"bad\r\nvalue"]).is_none());
        let big = vec![b'x'; 5000];
        assert_eq!(joined(&[&big]).unwrap().len(), 5000);
        assert_eq!(joined(&[b"after"]).unwrap(), "after");
    }

    #[test]
    fn a_repeated_value_is_the_same_value_again() {
        let a = joined_again(&[b"for=1.2.3.4", b";host=", b"a.test"]).unwrap();
        let b = joined_again(&[b"for=1.2.3.4;host=", b"a.test"]).unwrap();
        assert_eq!(a, "for=1.2.3.4;host=a.test");
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
        let c = joined_again(&[b"for=1.2.3.4", b";host=", b"a.tes"]).unwrap();
        assert_eq!(c, "for=1.2.3.4;host=a.tes");
        let d = joined_again(&[b"for=1.2.3.4", b";host=", b"a.test", b"x"]).unwrap();
        assert_eq!(d, "for=1.2.3.4;host=a.testx");
        assert!(joined_again(&[b"bad\r\n"]).is_none());
        assert_eq!(joined_again(&[b"for=1.2.3.4;host=a.testx"]).unwrap(), d);
        assert!(same_bytes(b"abc", &[b"a", b"", b"bc"]));
        assert!(!same_bytes(b"abc", &[b"a", b"b"]));
        assert!(!same_bytes(b"ab", &[b"a", b"bc"]));
    }
}
