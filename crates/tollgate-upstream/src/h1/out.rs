//! Bytes waiting to be written to an upstream connection: a few segments (request head, chunk
//! framing, body data) written with one vectored write, without copying the body data.

use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Segments in order; room for a chunk header, its data and the CRLF after it, plus one.
pub const SEGMENTS: usize = 4;

/// Pending output, oldest segment first.
#[derive(Debug, Default)]
pub struct Out {
    segs: [Bytes; SEGMENTS],
    start: usize,
    len: usize,
}

impl Out {
    /// Nothing left to write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free segments.
    pub fn room(&self) -> usize {
        SEGMENTS - self.len
    }

    /// Queues `bytes` (ignored when empty). The caller checks [`Out::room`] first.
    pub fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        debug_assert!(self.len < SEGMENTS, "Out overflow");
        if self.len < SEGMENTS {
            self.segs[(self.start + self.len) % SEGMENTS] = bytes;
            self.len += 1;
        }
    }

    /// The pending segments, for a vectored write.
    pub fn slices<'a>(&'a self, into: &mut [IoSlice<'a>; SEGMENTS]) -> usize {
        for (i, slot) in into.iter_mut().enumerate().take(self.len) {
            *slot = IoSlice::new(&self.segs[(self.start + i) % SEGMENTS]);
        }
        self.len
    }

    /// Drops the first `n` bytes (they were written).
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 && self.len > 0 {
            let seg = &mut self.segs[self.start];
            let take = n.min(seg.len());
            seg.advance(take);
            n -= take;
            if seg.is_empty() {
                *seg = Bytes::new();
                self.start = (self.start + 1) % SEGMENTS;
                self.len -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_written_in_order_across_partial_writes() {
        let mut out = Out::default();
        out.push(Bytes::from_static(b"ab"));
        out.push(Bytes::new());
        out.push(Bytes::from_static(b"cde"));
        assert_eq!(out.room(), 2);
        out.advance(3);
        let mut slices = [IoSlice::new(&[]); SEGMENTS];
        let n = out.slices(&mut slices);
        assert_eq!(n, 1);
        assert_eq!(&*slices[0], b"de");
        out.push(Bytes::from_static(b"f"));
        out.advance(3);
        assert!(out.is_empty());
        assert_eq!(out.room(), SEGMENTS);
    }
}
