//! Writing an HTTP/1.1 request head, and choosing how its body is framed (RFC 9112 §6).
//!
//! The request has been checked by the proxy already (method, URI and header values are valid
//! `http` types, so none can carry a CR or LF); hop-by-hop headers are gone, but this module
//! does not rely on it: `Transfer-Encoding` and `Content-Length` are always reconciled with
//! the body actually sent, so an upstream can never be told a length the body will not have.

use bytes::BytesMut;
#[cfg(test)]
use http::header::HeaderMap;
use http::header::{self, HeaderValue};
use http::{Method, request};
use http_body::Body;
use tollgate_plugin_api::ProxyBody;

use crate::Overrides;

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    Empty,
    /// `Content-Length`: exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a request head cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The `Content-Length` header is not one non-negative integer.
    #[error("invalid content-length header in the request")]
    ContentLength,
}

/// Appends the request line and headers of `parts` to `out` and returns how `body` will be
/// framed, adding `Content-Length` or `Transfer-Encoding: chunked` when the headers do not
/// already say. One pass over the headers: the framing headers are written last.
pub(crate) fn head(
    parts: &request::Parts,
    body: &ProxyBody,
    overrides: &Overrides<'_>,
    out: &mut BytesMut,
) -> Result<Framing, EncodeError> {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    match parts.uri.path_and_query() {
        Some(pq) => out.extend_from_slice(pq.as_str().as_bytes()),
        None => out.extend_from_slice(b"/"),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // `Host` first (RFC 9110 §7.2), when the gateway sets it.
    if let Some(host) = overrides.host() {
        write_field(out, b"host", host.as_bytes());
    }

    let mut lengths = Lengths::default();
    let mut te: Option<&HeaderValue> = None;
    let mut te_count = 0usize;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            lengths.add(value)?;
        } else if name == header::TRANSFER_ENCODING {
            te = Some(value);
            te_count += 1;
        } else if !overrides.replaces(name) {
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    for (name, value) in overrides.iter() {
        if name != header::HOST {
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let framing = if body.is_end_stream() {
        // Say `content-length: 0` only where the client did (some servers require it on an
        // empty POST); a stale non-zero length would make the upstream wait for bytes.
        if lengths.value.is_some() {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        Framing::Empty
    } else if let Some(last) = te {
        // Chunked wins over any Content-Length (RFC 9112 §6.3); an encoding list not ending
        // in `chunked` gets it appended (a second header line extends the list).
        for value in parts
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .take(te_count)
        {
            write_field(out, b"transfer-encoding", value.as_bytes());
        }
        if !ends_with_chunked(last) {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        Framing::Chunked
    } else if let Some(n) = lengths.value.or_else(|| body.size_hint().exact()) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
        Framing::Length(n)
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Framing::Chunked
    };
    out.extend_from_slice(b"\r\n");
    Ok(framing)
}

fn write_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `Content-Length` values seen so far: all must agree.
#[derive(Debug, Default)]
pub struct Lengths {
    /// The length all values agreed on, if any was seen.
    pub value: Option<u64>,
}

impl Lengths {
    /// Adds one header value (itself possibly a comma-separated list).
    pub fn add(&mut self, value: &HeaderValue) -> Result<(), EncodeError> {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = parse_decimal(part.trim_ascii()).ok_or(EncodeError::ContentLength)?;
            if self.value.is_some_and(|v| v != n) {
                return Err(EncodeError::ContentLength);
            }
            self.value = Some(n);
        }
        Ok(())
    }
}

/// What the `Connection` field values of a message ask for (RFC 9112 §9.3, §9.6).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `close` was listed.
    pub close: bool,
    /// `keep-alive` was listed (what makes an HTTP/1.0 connection persistent).
    pub keep_alive: bool,
    /// Something else was listed: `upgrade`, or the name of a field meant for this hop only.
    pub other: bool,
}

impl ConnectionOptions {
    /// Adds one `Connection` field value (a comma-separated list of options).
    pub fn add(&mut self, value: &HeaderValue) {
        for token in value.as_bytes().split(|b| *b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if !token.is_empty() {
                self.other = true;
            }
        }
    }
}

/// Whether a request with this method may be sent again when a reused connection closes
/// before answering (RFC 9110 §9.2.2: idempotent methods).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The value of the `Content-Length` headers: `None` when absent, an error unless every value
/// (and every comma-separated element) is the same non-negative integer.
#[cfg(test)]
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, EncodeError> {
    let mut lengths = Lengths::default();
    for value in headers.get_all(header::CONTENT_LENGTH) {
        lengths.add(value)?;
    }
    Ok(lengths.value)
}

/// Whether the last transfer coding listed in `value` is `chunked`.
pub fn ends_with_chunked(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Digits only, at most 19 of them (fits `u64`).
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn encode(req: Request<ProxyBody>) -> (String, Framing) {
        let (parts, body) = req.into_parts();
        let mut out = BytesMut::new();
        let framing = head(&parts, &body, &Overrides::default(), &mut out).unwrap();
        (String::from_utf8(out.to_vec()).unwrap(), framing)
    }

    #[test]
    fn overrides_replace_the_request_fields_of_their_name_and_host_comes_first() {
        static XFF: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");
        let req = Request::get("/")
            .header("accept", "*/*")
            .header("host", "client.test")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-for", "7.7.7.7")
            .body(ProxyBody::Empty)
            .unwrap();
        let mut o = Overrides::default();
        o.set(&XFF, HeaderValue::from_static("1.2.3.4")).unwrap();
        o.set(&header::HOST, HeaderValue::from_static("up.test"))
            .unwrap();
        let (parts, body) = req.into_parts();
        let mut out = BytesMut::new();
        head(&parts, &body, &o, &mut out).unwrap();
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nhost: up.test\r\naccept: */*\r\nx-forwarded-for: 1.2.3.4\r\n\r\n"
        );
    }

    #[test]
    fn a_bodiless_get_is_a_request_line_and_headers() {
        let req = Request::get("/a/b?c=1")
            .header("host", "up")
            .header("x-k", "v")
            .body(ProxyBody::Empty)
            .unwrap();
        assert_eq!(
            encode(req),
            (
                "GET /a/b?c=1 HTTP/1.1\r\nhost: up\r\nx-k: v\r\n\r\n".into(),
                Framing::Empty
            )
        );
    }

    #[test]
    fn a_known_length_body_gets_a_content_length() {
        let req = Request::post("/").body(ProxyBody::full("hello")).unwrap();
        assert_eq!(
            encode(req),
            (
                "POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\n".into(),
                Framing::Length(5)
            )
        );
    }

    #[test]
    fn a_declared_length_is_kept_and_a_stale_one_on_an_empty_body_becomes_zero() {
        let req = Request::put("/")
            .header("content-length", "5")
            .body(ProxyBody::full("hello"))
            .unwrap();
        assert_eq!(encode(req).1, Framing::Length(5));
        let req = Request::post("/")
            .header("content-length", "5")
            .body(ProxyBody::Empty)
            .unwrap();
        assert_eq!(
            encode(req),
            (
                "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n".into(),
                Framing::Empty
            )
        );
    }

    #[test]
    fn an_unknown_length_body_is_chunked_and_transfer_encoding_wins_over_length() {
        let body = ProxyBody::boxed(Unsized(Some(bytes::Bytes::from_static(b"x"))));
        let req = Request::post("/").body(body).unwrap();
        let (text, framing) = encode(req);
        assert_eq!(framing, Framing::Chunked);
        assert!(
            text.ends_with("transfer-encoding: chunked\r\n\r\n"),
            "{text}"
        );

        let req = Request::post("/")
            .header("transfer-encoding", "chunked")
            .header("content-length", "5")
            .body(ProxyBody::full("hello"))
            .unwrap();
        let (text, framing) = encode(req);
        assert_eq!(framing, Framing::Chunked);
        assert!(!text.contains("content-length"), "{text}");
        assert_eq!(text.matches("transfer-encoding").count(), 1, "{text}");
    }

    #[test]
    fn conflicting_content_lengths_are_refused() {
        let req = Request::post("/")
            .header("content-length", "5")
            .header("content-length", "6")
            .body(ProxyBody::full("hello"))
            .unwrap();
        let (parts, body) = req.into_parts();
        assert_eq!(
            head(&parts, &body, &Overrides::default(), &mut BytesMut::new()),
            Err(EncodeError::ContentLength)
        );
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, "7, 7".parse().unwrap());
        assert_eq!(content_length(&h), Ok(Some(7)));
        h.insert(header::CONTENT_LENGTH, "-1".parse().unwrap());
        assert_eq!(content_length(&h), Err(EncodeError::ContentLength));
    }

    /// A one-chunk body that does not say how long it is.
    pub(crate) struct Unsized(pub(crate) Option<bytes::Bytes>);

    impl Body for Unsized {
        type Data = bytes::Bytes;
        type Error = tollgate_plugin_api::BodyError;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
        }
    }
}
