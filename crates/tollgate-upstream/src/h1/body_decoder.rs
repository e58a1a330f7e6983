//! Decoding an HTTP/1.1 response body from a read buffer: a length, chunked coding (with
//! extensions ignored and trailers kept), or until the connection closes (RFC 9112 §6, §7).

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::decode::{BodyFraming, MAX_HEAD_BYTES, MAX_HEADERS, ProtocolError};

/// Longest chunk-size line (size, extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// What the body decoder produced from the buffered bytes.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// Trailer fields (chunked coding only); the body ends after them.
    Trailers(HeaderMap),
    /// The body is complete.
    End,
    /// More bytes are needed.
    NeedMore,
}

/// Decodes a response body incrementally from a read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDecoder {
    /// This many bytes left.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk: this many data bytes left.
    ChunkData(u64),
    /// After a chunk's data: expecting CRLF.
    ChunkDataEnd,
    /// After the last chunk: expecting trailer fields or the final CRLF.
    Trailers,
    /// Until the connection closes.
    UntilClose,
    /// Done.
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Length(0) => Self::Done,
            BodyFraming::Length(n) => Self::Length(n),
            BodyFraming::Chunked => Self::ChunkSize,
            BodyFraming::UntilClose => Self::UntilClose,
        }
    }

    /// Bytes still expected, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Done => Some(0),
            _ => None,
        }
    }

    /// Takes the next piece of the body from `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ProtocolError> {
        loop {
            match *self {
                Self::Done => return Ok(Decoded::End),
                Self::Length(left) | Self::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let rest = left - n as u64;
                    *self = match (*self, rest) {
                        (Self::Length(_), 0) => Self::Done,
                        (Self::Length(_), r) => Self::Length(r),
                        (_, 0) => Self::ChunkDataEnd,
                        (_, r) => Self::ChunkData(r),
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                Self::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                Self::ChunkSize => {
                    let Some(eol) = find_crlf(buf) else {
                        return if buf.len() > MAX_CHUNK_LINE {
                            Err(ProtocolError::ChunkSize)
                        } else {
                            Ok(Decoded::NeedMore)
                        };
                    };
                    let size = chunk_size(&buf[..eol])?;
                    buf.advance(eol + 2);
                    *self = if size == 0 {
                        Self::Trailers
                    } else {
                        Self::ChunkData(size)
                    };
                }
                Self::ChunkDataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ProtocolError::ChunkEnd);
                    }
                    buf.advance(2);
                    *self = Self::ChunkSize;
                }
                Self::Trailers => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if buf.starts_with(b"\r\n") {
                        buf.advance(2);
                        *self = Self::Done;
                        return Ok(Decoded::End);
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return if buf.len() > MAX_HEAD_BYTES {
                            Err(ProtocolError::Trailers)
                        } else {
                            Ok(Decoded::NeedMore)
                        };
                    };
                    let trailers = trailers(&buf[..end + 4])?;
                    buf.advance(end + 4);
                    *self = Self::Done;
                    return Ok(Decoded::Trailers(trailers));
                }
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// `chunk-size [ chunk-ext ]`: hexadecimal digits, then optional extensions, which are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 16 {
        return Err(ProtocolError::ChunkSize);
    }
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(ProtocolError::ChunkSize);
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| ProtocolError::ChunkSize)?;
    u64::from_str_radix(hex, 16).map_err(|_| ProtocolError::ChunkSize)
}

fn trailers(block: &[u8]) -> Result<HeaderMap, ProtocolError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(httparse::Status::Complete((_, parsed))) = httparse::parse_headers(block, &mut fields)
    else {
        return Err(ProtocolError::Trailers);
    };
    let mut map = HeaderMap::with_capacity(parsed.len());
    for field in parsed {
        let name =
            HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| ProtocolError::Trailers)?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| ProtocolError::Trailers)?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_across_reads_with_trailers() {
        let mut d = BodyDecoder::new(BodyFraming::Chunked);
        let mut buf = BytesMut::from("5;ext=1\r\nhel");
        assert_eq!(
            d.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from("hel"))
        );
        assert_eq!(d.decode(&mut buf).unwrap(), Decoded::NeedMore);
        buf.extend_from_slice(b"lo\r\n0\r\nx-sum: 9\r\n\r\n");
        assert_eq!(
            d.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from("lo"))
        );
        let Decoded::Trailers(t) = d.decode(&mut buf).unwrap() else {
            panic!("trailers expected");
        };
        assert_eq!(t["x-sum"], "9");
        assert_eq!(d.decode(&mut buf).unwrap(), Decoded::End);
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_chunks_are_errors() {
        for bad in ["zz\r\n", "5\r\nhelloXX", "12345678901234567\r\n", "5 x\r\n"] {
            let mut d = BodyDecoder::new(BodyFraming::Chunked);
            let mut buf = BytesMut::from(bad);
            let mut result = d.decode(&mut buf);
            while let Ok(Decoded::Data(_)) = result {
                result = d.decode(&mut buf);
            }
            assert!(result.is_err(), "{bad:?} gave {result:?}");
        }
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut d = BodyDecoder::new(BodyFraming::Length(3));
        let mut buf = BytesMut::from("abcdef");
        assert_eq!(
            d.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from("abc"))
        );
        assert_eq!(d.decode(&mut buf).unwrap(), Decoded::End);
        assert_eq!(&buf[..], b"def");
    }
}
