//! Header maps handed from one message to the next instead of allocated per message.
//!
//! A header map with room for a request's fields is over a kilobyte, which `malloc` serves on
//! its slow path (beyond its per-thread caches): allocating one per message was the largest
//! single cost of the allocator on a proxied request. So a map outlives its message: the
//! client request's map, once the upstream request is written, receives the upstream
//! response's fields; once that response's head is written to the client, the map receives
//! the connection's next request.

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

/// `map`, if it is worth keeping for reuse.
pub fn keep(map: HeaderMap) -> Option<HeaderMap> {
    (map.capacity() <= MAX_KEPT).then_some(map)
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
}
