//! Header values the gateway writes per request (request ids, `Forwarded`), carved from a
//! per-thread chunk instead of allocated one by one.
//!
//! A `HeaderValue` owns its bytes, so each value written per request was an allocation, and
//! cloning one (the request id goes upstream, into the response and into the access log)
//! another. Values carved from a shared chunk cost a reference count instead: the chunk is
//! freed once every value carved from it is gone. Chunks are small ([`CHUNK`]), so a value
//! that lives long (the id of a streaming request) keeps little else alive with it.

use std::cell::RefCell;

use bytes::{BufMut, BytesMut};
use http::HeaderValue;

/// Bytes per chunk: a few dozen values, and within `malloc`'s per-thread cache.
const CHUNK: usize = 1000;

thread_local! {
    static CHUNK_LEFT: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A header value made of what `write` puts into the buffer it is given (with room for at
/// least `hint` bytes). `None` when the bytes are not a valid header value.
pub(crate) fn header_value(hint: usize, write: impl FnOnce(&mut BytesMut)) -> Option<HeaderValue> {
    let bytes = CHUNK_LEFT.with(|left| match left.try_borrow_mut() {
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
    });
    HeaderValue::from_maybe_shared(bytes).ok()
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
}
