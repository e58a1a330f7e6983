//! Header maps and read buffers handed from one message to the next instead of allocated per
//! message.
//!
//! A header map with room for a request's fields is over a kilobyte, which `malloc` serves on
//! its slow path (beyond its per-thread caches): allocating one per message was the largest
//! single cost of the allocator on a proxied request. So a map outlives its message: the
//! client request's map, once the upstream request is written, receives the upstream
//! response's fields; once that response's head is written to the client, the map receives
//! the connection's next request.
//!
//! An upstream exchange's buffer (the request head is encoded into it, the response read into
//! what follows) is 4 KiB, also past those caches, and the response's header values and small
//! body are slices of it, so it cannot simply be reused when the exchange ends. Each worker
//! thread keeps instead the handles of the last exchanges' buffers ([`buffer`],
//! [`keep_buffer`]): by the time a handle comes up again its response has long been written
//! and dropped, the handle is the buffer's only owner, and the whole buffer is reclaimed
//! without an allocation. A handle whose buffer is still shared is dropped.

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::BytesMut;
use http::HeaderMap;

/// A map kept for reuse larger than this many fields is dropped instead (a request with
/// very many fields should not make every later one on the connection hold the room).
const MAX_KEPT: usize = 64;

/// An empty map with room for `fields`: `spare` cleared when given, else a new one.
pub fn header_map(spare: Option<HeaderMap>, fields: usize) -> HeaderMap {
    match spare {
        Some(mut map) => {
            map.clear();
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

/// `map`, emptied, if it is worth keeping for reuse. Its values are dropped at once: they are
/// often slices of a buffer that can then be reused (see [`buffer`]).
pub fn keep(mut map: HeaderMap) -> Option<HeaderMap> {
    if map.capacity() > MAX_KEPT {
        return None;
    }
    map.clear();
    Some(map)
}

/// Buffer handles a worker thread keeps: at least the exchanges a worker has in flight at once
/// in a burst, for a buffer to be free again when it comes up; and a bound on what idle
/// buffers hold once the load is gone (this many times 4 KiB, or more for the few that grew).
const KEPT_BUFFERS: usize = 64;

thread_local! {
    static BUFFERS: RefCell<VecDeque<BytesMut>> = const { RefCell::new(VecDeque::new()) };
}

/// An empty buffer with room for at least `capacity` bytes: the oldest kept one when its memory
/// is no longer shared, else a new one. A kept buffer still shared (its response not yet
/// written) goes back to the end of the line: the line grows to [`KEPT_BUFFERS`], so that a
/// buffer comes up again only after that many exchanges.
pub fn buffer(capacity: usize) -> BytesMut {
    let reused = BUFFERS.with(|kept| {
        let mut kept = kept.try_borrow_mut().ok()?;
        let mut buf = kept.pop_front()?;
        if buf.try_reclaim(capacity) {
            return Some(buf);
        }
        kept.push_back(buf);
        None
    });
    reused.unwrap_or_else(|| BytesMut::with_capacity(capacity))
}

/// Keeps `buf` (what is left of an exchange's buffer once its contents were split off) for a
/// later [`buffer`]. A buffer still holding bytes is dropped.
pub fn keep_buffer(buf: BytesMut) {
    if !buf.is_empty() {
        return;
    }
    BUFFERS.with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut() {
            if kept.len() == KEPT_BUFFERS {
                kept.pop_front();
            }
            kept.push_back(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn a_spare_map_comes_back_empty_with_its_room() {
        let mut map = HeaderMap::with_capacity(20);
        map.insert("x-a", HeaderValue::from_static("1"));
        let room = map.capacity();
        let map = header_map(keep(map), 4);
        assert!(map.is_empty());
        assert_eq!(map.capacity(), room);
        assert!(keep(HeaderMap::with_capacity(200)).is_none());
        assert!(header_map(None, 9).capacity() >= 9);
    }

    #[test]
    fn a_kept_buffer_is_reclaimed_once_its_slices_are_gone() {
        let mut buf = buffer(4096);
        buf.extend_from_slice(b"head and body");
        let start = buf.as_ptr();
        let piece = buf.split().freeze();
        keep_buffer(buf);
        // Still shared with `piece`: a new buffer, and the kept one waits its turn again.
        let other = buffer(4096);
        assert_ne!(other.as_ptr(), start);
        assert!(other.capacity() >= 4096);
        drop(piece);
        let reused = buffer(4096);
        assert_eq!(reused.as_ptr(), start);
        assert!(reused.is_empty() && reused.capacity() >= 4096);

        // A buffer with bytes left in it is not kept.
        let kept = || BUFFERS.with(|k| k.borrow().len());
        assert_eq!(kept(), 0);
        let mut full = BytesMut::with_capacity(16);
        full.extend_from_slice(b"left over");
        keep_buffer(full);
        assert_eq!(kept(), 0);
        keep_buffer(other);
        assert_eq!(kept(), 1);
    }
}
