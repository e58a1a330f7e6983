//! Reading a request head (with `httparse`) and the body framing it implies (RFC 9112 §6.3).
//!
//! Header values are slices of the bytes read (no copy per field). Framing that is ambiguous is
//! refused, never guessed at, so nothing reaches an upstream that two parsers could read two
//! ways: `Transfer-Encoding` together with `Content-Length`, differing or malformed lengths,
//! a coding list not ending in `chunked`, `Transfer-Encoding` on HTTP/1.0.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version, request};
use smallvec::SmallVec;
use tollgate_upstream::codec::{ConnectionOptions, Lengths, ends_with_chunked};

/// Header slots kept on the stack; a configured limit above this parses into a heap buffer.
const STACK_HEADERS: usize = 128;
/// Spans of fields kept on the stack (zeroed per request, so fewer than the parser's slots).
const STACK_SPANS: usize = 32;
/// Room left in a request's header map for the fields the gateway adds (forwarding headers,
/// request id), so that adding them does not grow the map.
const ADDED_HEADERS: usize = 8;
/// Longest request target `http::Uri` takes.
const MAX_URI: usize = u16::MAX as usize - 1;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) parts: request::Parts,
    pub(super) framing: BodyFraming,
    /// Whether the client allows another request on this connection afterwards.
    pub(super) keep_alive: bool,
    /// `Expect: 100-continue` (HTTP/1.1).
    pub(super) expect_continue: bool,
    /// The client asks to switch protocols (`Upgrade`, HTTP/1.1).
    pub(super) upgrade: bool,
}

/// Why a head is refused; each is answered and the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadError {
    /// The request line, a field or the framing is malformed.
    Malformed(&'static str),
    /// The head is larger than `max_header_bytes`.
    TooLarge,
    /// More fields than `max_headers`.
    TooManyHeaders,
    /// The request target is longer than a URI may be.
    UriTooLong,
}

/// Offsets of a name or value (or the target) in the head.
type Span = (u32, u32);

/// Where the pieces of a complete head are, so it can be split off `buf` and sliced without
/// copying once the parser (whose slices borrow `buf`) is gone.
struct Layout {
    len: usize,
    method: Method,
    version: Version,
    target: Span,
    count: usize,
}

/// Room for the `(name, value)` spans: on the stack (not zeroed) up to [`STACK_SPANS`].
type Spans = SmallVec<[(Span, Span); STACK_SPANS]>;

/// Parses a request head from the front of `buf`, removing it. `Ok(None)`: more bytes needed.
/// `spare`: a header map to fill instead of allocating one (taken only for a complete head).
pub(super) fn parse(
    buf: &mut BytesMut,
    max_headers: usize,
    max_bytes: usize,
    spare: &mut Option<HeaderMap>,
) -> Result<Option<Head>, HeadError> {
    let mut spans = Spans::new();
    let Some(layout) = layout(buf, max_headers, max_bytes, &mut spans)? else {
        return Ok(None);
    };
    let raw: Bytes = buf.split_to(layout.len).freeze();
    let range = |(a, b): Span| a as usize..b as usize;
    let uri = Uri::from_maybe_shared(raw.slice(range(layout.target)))
        .map_err(|_| HeadError::Malformed("invalid request target"))?;
    let mut headers =
        tollgate_upstream::recycle::header_map(spare.take(), layout.count + ADDED_HEADERS);
    let mut seen = Seen::default();
    for &(name, value) in &spans {
        let name = HeaderName::from_bytes(&raw[range(name)])
            .map_err(|_| HeadError::Malformed("invalid header name"))?;
        // SAFETY: the span is a field value httparse returned from this head.
        #[allow(unsafe_code)]
        let value = unsafe { tollgate_upstream::codec::parsed_value(raw.slice(range(value))) };
        seen.note(&name, &value)?;
        headers.append(name, value);
    }
    let version = layout.version;
    let framing = seen.framing(version)?;
    let http11 = version == Version::HTTP_11;
    let mut parts = Request::new(()).into_parts().0;
    parts.method = layout.method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head {
        parts,
        framing,
        keep_alive: !seen.connection.close && (http11 || seen.connection.keep_alive),
        expect_continue: http11 && seen.expect_continue,
        upgrade: http11 && seen.upgrade,
    }))
}

fn layout(
    buf: &[u8],
    max_headers: usize,
    max_bytes: usize,
    spans: &mut Spans,
) -> Result<Option<Layout>, HeadError> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let fields: &mut [MaybeUninit<httparse::Header<'_>>] = if max_headers <= STACK_HEADERS {
        &mut stack[..max_headers]
    } else {
        heap.resize_with(max_headers, MaybeUninit::uninit);
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > max_bytes {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Malformed(describe(e))),
    };
    if len > max_bytes {
        return Err(HeadError::TooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    if target.len() > MAX_URI {
        return Err(HeadError::UriTooLong);
    }
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method"))?;
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| {
        // Below `len`, which fits `u32`: heads are bounded by `max_bytes`, itself checked
        // against the whole buffer, and a `u32` is 4 GiB.
        let start = s.as_ptr() as usize - base;
        (start as u32, (start + s.len()) as u32)
    };
    let count = req.headers.len();
    spans.extend(
        req.headers
            .iter()
            .map(|field| (offset(field.name.as_bytes()), offset(field.value))),
    );
    Ok(Some(Layout {
        len,
        method,
        version: if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        },
        target: offset(target.as_bytes()),
        count,
    }))
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or request line",
        httparse::Error::Version => "unsupported or invalid HTTP version",
        httparse::Error::TooManyHeaders => "too many header fields",
    }
}

/// What the fields that matter to the connection said.
#[derive(Debug, Default)]
struct Seen {
    lengths: Lengths,
    has_length: bool,
    /// Whether the last `Transfer-Encoding` seen ends in `chunked`, if there was one.
    chunked: Option<bool>,
    connection: ConnectionOptions,
    expect_continue: bool,
    upgrade: bool,
}

impl Seen {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<(), HeadError> {
        if name == header::CONTENT_LENGTH {
            self.has_length = true;
            self.lengths
                .add(value)
                .map_err(|_| HeadError::Malformed("invalid or conflicting content-length"))?;
        } else if name == header::TRANSFER_ENCODING {
            self.chunked = Some(ends_with_chunked(value));
        } else if name == header::CONNECTION {
            self.connection.add(value);
        } else if name == header::EXPECT {
            self.expect_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        } else if name == header::UPGRADE {
            self.upgrade = true;
        }
        Ok(())
    }

    fn framing(&self, version: Version) -> Result<BodyFraming, HeadError> {
        match (self.chunked, self.lengths.value) {
            (Some(_), _) if version == Version::HTTP_10 => Err(HeadError::Malformed(
                "transfer-encoding is not allowed in an HTTP/1.0 request",
            )),
            (Some(_), _) if self.has_length => Err(HeadError::Malformed(
                "a request must not have both content-length and transfer-encoding",
            )),
            (Some(false), _) => Err(HeadError::Malformed(
                "the last transfer coding of a request must be chunked",
            )),
            (Some(true), _) => Ok(BodyFraming::Chunked),
            (None, Some(0) | None) => Ok(BodyFraming::None),
            (None, Some(n)) => Ok(BodyFraming::Length(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Option<Head>, HeadError> {
        let mut buf = BytesMut::from(text);
        parse(&mut buf, 100, 32 * 1024, &mut None)
    }

    #[test]
    fn a_head_parses_into_parts_and_leaves_what_follows() {
        let mut buf = BytesMut::from(
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\nPOST /next HTTP/1.1\r\n",
        );
        let head = parse(&mut buf, 100, 1024, &mut None).unwrap().unwrap();
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri, "/a?b=1");
        assert_eq!(head.parts.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(head.framing, BodyFraming::None);
        assert!(head.keep_alive && !head.expect_continue && !head.upgrade);
        assert_eq!(&buf[..], b"POST /next HTTP/1.1\r\n");
        assert!(parse(&mut buf, 100, 1024, &mut None).unwrap().is_none());
    }

    #[test]
    fn framing_follows_rfc_9112_and_ambiguity_is_refused() {
        let framing = |t: &str| parse_str(t).map(|h| h.unwrap().framing);
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Ok(BodyFraming::Chunked)
        );
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(framing(bad), Err(HeadError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn connection_expect_and_upgrade_are_noted() {
        let h = parse_str("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let h = parse_str("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = parse_str(
            "POST / HTTP/1.1\r\nConnection: upgrade, close\r\nUpgrade: websocket\r\n\
             Expect: 100-Continue\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive && h.upgrade && h.expect_continue);
    }

    #[test]
    fn limits_give_their_own_errors() {
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(101));
        assert_eq!(parse_str(&many).unwrap_err(), HeadError::TooManyHeaders);
        let mut big = BytesMut::from(format!("GET / HTTP/1.1\r\nA: {}", "x".repeat(2000)).as_str());
        assert_eq!(
            parse(&mut big, 100, 1024, &mut None).unwrap_err(),
            HeadError::TooLarge
        );
        let many_allowed = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(200));
        let mut buf = BytesMut::from(many_allowed.as_str());
        assert_eq!(
            parse(&mut buf, 300, 32 * 1024, &mut None)
                .unwrap()
                .unwrap()
                .parts
                .headers
                .len(),
            200
        );
        for bad in [
            "GARBAGE\r\n\r\n",
            "GET /x HTTP/9.9\r\n\r\n",
            "GET /x HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
        ] {
            assert!(
                matches!(parse_str(bad), Err(HeadError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
