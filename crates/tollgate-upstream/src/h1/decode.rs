//! Reading an HTTP/1.1 response head (with `httparse`) and the body framing it implies
//! (RFC 9112 §6.3); the body itself is `body_decoder`'s.
//!
//! Header values are slices of the bytes read (no copy per header); a response that frames
//! its body ambiguously (differing `Content-Length`s, `Transfer-Encoding` on HTTP/1.0) is
//! refused rather than guessed at, so a malicious upstream cannot desynchronise the connection.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version, response};
use smallvec::SmallVec;

use super::encode::{ConnectionOptions, Lengths, ends_with_chunked};

/// Most header fields a response (or its trailers) may have.
pub(crate) const MAX_HEADERS: usize = 100;
/// Longest response head; past it the response is refused.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A response from the upstream that breaks HTTP/1.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The head does not parse.
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    /// The head is longer than [`MAX_HEAD_BYTES`].
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] fields.
    #[error("more than {MAX_HEADERS} response header fields")]
    TooManyHeaders,
    /// A header name `http` does not accept.
    #[error("invalid response header name")]
    HeaderName,
    /// `Content-Length` missing a single integer value.
    #[error("invalid or conflicting content-length in the response")]
    ContentLength,
    /// `Transfer-Encoding` in an HTTP/1.0 response.
    #[error("transfer-encoding in an HTTP/1.0 response")]
    TransferEncodingOnHttp10,
    /// A chunk size line that does not parse.
    #[error("invalid chunk size line")]
    ChunkSize,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    /// Malformed trailer fields.
    #[error("malformed trailer fields")]
    Trailers,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    /// Chunked coding.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) parts: response::Parts,
    pub(crate) framing: BodyFraming,
    /// Whether the connection may carry another request after this response.
    pub(crate) keep_alive: bool,
}

/// Parses a final response head from the front of `buf`, removing it (and any interim 1xx
/// responses before it). `Ok(None)`: more bytes are needed. `head_request`: the request was
/// `HEAD`, so the response has no body whatever its headers say.
/// `spare`: a header map to fill instead of allocating one (the request's, once sent).
pub(crate) fn head(
    buf: &mut BytesMut,
    head_request: bool,
    spare: &mut Option<HeaderMap>,
) -> Result<Option<Head>, ProtocolError> {
    loop {
        // Offsets of each name and value in `buf`, recorded so the head can be split off
        // and the values sliced from it without copying.
        let mut spans = SmallVec::<[(u32, u32, u32, u32); 32]>::new();
        let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut res,
            buf,
            &mut fields,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return if buf.len() > MAX_HEAD_BYTES {
                    Err(ProtocolError::HeadTooLarge)
                } else {
                    Ok(None)
                };
            }
            Err(httparse::Error::TooManyHeaders) => return Err(ProtocolError::TooManyHeaders),
            Err(e) => return Err(ProtocolError::Head(e)),
        };
        if len > MAX_HEAD_BYTES {
            return Err(ProtocolError::HeadTooLarge);
        }
        let code = res.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| ProtocolError::Head(httparse::Error::Status))?;
        if status.is_informational() && code != 101 {
            // 100 Continue, 103 Early Hints...: interim, the final response follows.
            buf.advance(len);
            continue;
        }
        let version = if res.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let base = buf.as_ptr() as usize;
        let count = res.headers.len();
        spans.extend(res.headers.iter().map(|field| {
            let name = field.name.as_ptr() as usize - base;
            let value = field.value.as_ptr() as usize - base;
            // Offsets are below MAX_HEAD_BYTES, checked above.
            (
                name as u32,
                (name + field.name.len()) as u32,
                value as u32,
                (value + field.value.len()) as u32,
            )
        }));
        let reason = res
            .reason
            .filter(|r| !r.is_empty() && Some(*r) != status.canonical_reason())
            .map(|r| Bytes::copy_from_slice(r.as_bytes()));
        let raw = buf.split_to(len).freeze();
        // Room for the fields the gateway adds to a response (request id, deprecation).
        let mut headers = crate::recycle::header_map(spare.take(), count + 3);
        // The framing headers are noted while the map is built (no lookups afterwards).
        let mut framing = Framing::default();
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        for &(n0, n1, v0, v1) in &spans {
            let name = HeaderName::from_bytes(&raw[n0 as usize..n1 as usize])
                .map_err(|_| ProtocolError::HeaderName)?;
            // SAFETY: the span is a field value httparse returned from this head.
            #[allow(unsafe_code)]
            let value = unsafe { parsed_value(raw.slice(v0 as usize..v1 as usize)) };
            if framing.note(&name, &value)? == Field::Keep || switching {
                headers.append(name, value);
            }
        }
        return Ok(Some(finish(
            status,
            version,
            headers,
            &framing,
            reason,
            head_request,
        )?));
    }
}

/// What the framing headers of a response said.
#[derive(Debug, Default)]
struct Framing {
    lengths: Lengths,
    /// Whether the last `Transfer-Encoding` seen ends in `chunked`, if there was one.
    chunked: Option<bool>,
    connection: ConnectionOptions,
}

/// Whether a response field goes into the map the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Keep,
    /// A field about this connection alone (RFC 9110 §7.6.1), read here and not passed on:
    /// `Transfer-Encoding` (the body's framing says it), `TE`, `Keep-Alive`,
    /// `Proxy-Connection`, and a `Connection` value listing only `close` and `keep-alive`.
    /// A `Connection` value naming other fields stays, for the proxy to remove those.
    Hop,
}

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

impl Framing {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<Field, ProtocolError> {
        if name == header::CONTENT_LENGTH {
            self.lengths
                .add(value)
                .map_err(|_| ProtocolError::ContentLength)?;
        } else if name == header::TRANSFER_ENCODING {
            self.chunked = Some(ends_with_chunked(value));
            return Ok(Field::Hop);
        } else if name == header::CONNECTION {
            let mut options = ConnectionOptions::default();
            options.add(value);
            self.connection.close |= options.close;
            self.connection.keep_alive |= options.keep_alive;
            self.connection.other |= options.other;
            if !options.other {
                return Ok(Field::Hop);
            }
        } else if name == header::TE || name == KEEP_ALIVE || name == PROXY_CONNECTION {
            return Ok(Field::Hop);
        }
        Ok(Field::Keep)
    }
}

fn finish(
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    seen: &Framing,
    reason: Option<Bytes>,
    head_request: bool,
) -> Result<Head, ProtocolError> {
    let mut keep_alive =
        !seen.connection.close && (version == Version::HTTP_11 || seen.connection.keep_alive);
    let framing = if head_request
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::SWITCHING_PROTOCOLS
    {
        BodyFraming::Length(0)
    } else if let Some(chunked) = seen.chunked {
        if version == Version::HTTP_10 {
            return Err(ProtocolError::TransferEncodingOnHttp10);
        }
        if chunked {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else {
        match seen.lengths.value {
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::UntilClose,
        }
    };
    if framing == BodyFraming::UntilClose || status == StatusCode::SWITCHING_PROTOCOLS {
        keep_alive = false;
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    if let Some(reason) = reason
        && let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason)
    {
        parts.extensions.insert(phrase);
    }
    Ok(Head {
        parts,
        framing,
        keep_alive,
    })
}

/// A header value from bytes `httparse` accepted as a field value, without checking them
/// again (both HTTP/1.1 parsers, this client's and the proxy's server, build their maps so).
///
/// `HeaderValue` requires every byte to be a tab or at least 0x20 and not 0x7f (`http`'s
/// `is_valid`). `httparse` accepts in a value exactly tab, 0x20..=0x7e and 0x80..=0xff (its
/// `HEADER_VALUE_MAP`; a value with any other byte fails to parse): the same set. Debug
/// builds check again (`from_maybe_shared_unchecked` validates under `debug_assertions`).
///
/// # Safety
/// `bytes` must be (a slice of the buffer holding) a field value that `httparse` returned from
/// a successful parse.
#[allow(unsafe_code)]
pub unsafe fn parsed_value(bytes: Bytes) -> HeaderValue {
    // SAFETY: by the caller's contract the bytes are an httparse field value, whose byte set
    // is `HeaderValue`'s (see above).
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, head_request: bool) -> Result<Option<Head>, ProtocolError> {
        head(&mut BytesMut::from(text), head_request, &mut None)
    }

    #[test]
    fn a_head_parses_into_parts_framing_and_keep_alive() {
        let h = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.parts.status, 200);
        assert_eq!(h.framing, BodyFraming::Length(12));
        assert!(h.keep_alive);
        assert_eq!(h.parts.headers.get_all("x-a").iter().count(), 2);
        assert!(
            h.parts
                .extensions
                .get::<hyper::ext::ReasonPhrase>()
                .is_none()
        );
    }

    #[test]
    fn values_keep_their_bytes_ascii_or_obs_text() {
        let h = parse(
            "HTTP/1.1 200 OK\r\nX-A: a\tb c~\r\nX-B: caf\u{e9}\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.parts.headers["x-a"].as_bytes(), b"a\tb c~");
        assert_eq!(h.parts.headers["x-b"].as_bytes(), "caf\u{e9}".as_bytes());
        assert!(
            h.parts.headers["x-b"].to_str().is_err(),
            "obs-text is not visible ASCII"
        );
    }

    #[test]
    fn fields_about_the_connection_alone_are_read_but_not_passed_on() {
        let h = parse(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
             Proxy-Connection: keep-alive\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\
             Server: o\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, BodyFraming::Chunked);
        let names: Vec<&str> = h.parts.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["server"]);

        // `close` is still obeyed; a value naming other fields stays for the proxy to strip.
        let h = parse(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: x-hop\r\nX-Hop: 1\r\n\
             Content-Length: 0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive);
        let connection: Vec<_> = h.parts.headers.get_all("connection").iter().collect();
        assert_eq!(connection, ["x-hop"]);
        assert!(h.parts.headers.contains_key("x-hop"));

        // A 101 keeps its `Connection` and `Upgrade` as they are.
        let h = parse(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.parts.headers.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn partial_heads_wait_and_interim_responses_are_skipped() {
        assert!(
            parse("HTTP/1.1 200 OK\r\nContent-Le", false)
                .unwrap()
                .is_none()
        );
        let mut buf = BytesMut::from(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Made\r\nContent-Length: 0\r\n\r\n",
        );
        let h = head(&mut buf, false, &mut None).unwrap().unwrap();
        assert_eq!(h.parts.status, 201);
        assert!(buf.is_empty());
        let phrase = h
            .parts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .unwrap();
        assert_eq!(phrase.as_bytes(), b"Made");
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing = |t: &str, head_req| parse(t, head_req).unwrap().unwrap().framing;
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                false
            ),
            BodyFraming::Chunked
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true),
            BodyFraming::Length(0)
        );
        assert_eq!(
            framing(
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n",
                false
            ),
            BodyFraming::Length(0)
        );
        let h = parse("HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(h.framing, BodyFraming::UntilClose);
        assert!(!h.keep_alive);
        let h = parse(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(h.keep_alive);
        let h = parse(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                false
            )
            .unwrap_err(),
            ProtocolError::ContentLength
        );
        assert_eq!(
            parse(
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .unwrap_err(),
            ProtocolError::TransferEncodingOnHttp10
        );
        assert!(matches!(
            parse("HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", false),
            Err(ProtocolError::Head(_))
        ));
    }
}
