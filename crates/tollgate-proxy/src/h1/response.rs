//! Writing a response head and choosing how its body is framed (RFC 9112 §6.3, RFC 9110 §6.4.1).
//!
//! The framing headers of the response (`Content-Length`, `Transfer-Encoding`, `Connection`)
//! are the connection's to decide, not the handler's: they are reconciled with the body that
//! will actually be sent, so a client is never told a length the body will not have.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http::header::{self, HeaderName, HeaderValue};
use http::{StatusCode, response};
use http_body::SizeHint;
use tollgate_upstream::codec::{ConnectionOptions, Lengths};

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyOut {
    /// No body (HEAD, 1xx, 204, 304, or an empty body with `content-length: 0`).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked coding.
    Chunked,
    /// Until the connection closes (HTTP/1.0 client, unknown length).
    UntilClose,
}

/// What the connection knows about the request being answered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answering {
    pub(super) head_request: bool,
    pub(super) http10: bool,
    /// The connection stays open after this response (may be turned off here).
    pub(super) keep_alive: bool,
}

/// Appends the status line and headers of `parts` to `out`, with `field` (the request id)
/// replacing the response's own of that name. Returns the body framing and whether the
/// connection stays open afterwards.
pub(super) fn head(
    parts: &response::Parts,
    field: Option<&(HeaderName, HeaderValue)>,
    hint: &SizeHint,
    ended: bool,
    req: Answering,
    out: &mut BytesMut,
) -> (BodyOut, bool) {
    let status = parts.status;
    let mut connection = ConnectionOptions::default();
    status_line(status, out);

    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    let mut lengths = Lengths::default();
    let mut bad_length = false;
    let mut date = false;
    if let Some((name, value)) = field {
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in &parts.headers {
        if field.is_some_and(|(replaced, _)| replaced == name) {
        } else if switching {
            // The upgrade's own `Connection`/`Upgrade` fields go out as they are.
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        } else if name == header::CONTENT_LENGTH {
            bad_length |= lengths.add(value).is_err();
        } else if name == header::TRANSFER_ENCODING {
        } else if name == header::CONNECTION {
            connection.add(value);
        } else {
            date |= name == header::DATE;
            write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !date {
        write_date(out);
    }
    let mut keep_alive = req.keep_alive && !connection.close;
    let declared = if bad_length { None } else { lengths.value };
    if switching {
        out.extend_from_slice(b"\r\n");
        return (BodyOut::None, keep_alive);
    }
    let framing = if status.is_informational() || status == StatusCode::NO_CONTENT {
        BodyOut::None
    } else if status == StatusCode::NOT_MODIFIED || req.head_request {
        // No body, but the length it would have is metadata worth keeping.
        if let Some(n) = declared.or_else(|| hint.exact().filter(|n| *n > 0)) {
            write_length(out, n);
        }
        BodyOut::None
    } else if ended {
        write_length(out, 0);
        BodyOut::None
    } else if let Some(n) = hint.exact().or(declared) {
        write_length(out, n);
        if n == 0 {
            BodyOut::None
        } else {
            BodyOut::Length(n)
        }
    } else if req.http10 {
        keep_alive = false;
        BodyOut::UntilClose
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        BodyOut::Chunked
    };
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if req.http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (framing, keep_alive)
}

/// The status line and headers of an answer the connection writes itself (an error before any
/// request could be handled); the connection closes after it.
pub(super) fn own_head(
    status: StatusCode,
    extra: &[(&[u8], &[u8])],
    len: usize,
    out: &mut BytesMut,
) {
    status_line(status, out);
    for (name, value) in extra {
        write_field(out, name, value);
    }
    write_date(out);
    write_length(out, len as u64);
    out.extend_from_slice(b"connection: close\r\n\r\n");
}

fn status_line(status: StatusCode, out: &mut BytesMut) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn write_date(out: &mut BytesMut) {
    out.extend_from_slice(b"date: ");
    with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\n");
}

fn write_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn write_length(out: &mut BytesMut, n: u64) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The size line of a chunk of `len` bytes.
pub(super) fn chunk_size(len: usize, out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk with trailer fields: `0`, the fields, an empty line.
pub(super) fn last_chunk(trailers: Option<&http::HeaderMap>, out: &mut BytesMut) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `Date` value of the current second, formatted once per second per worker.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Calls `f` with the current IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == 29 {
                cached.1.copy_from_slice(text.as_bytes());
                cached.0 = second;
            }
        }
        f(&cached.1);
    });
}

#[cfg(test)]
mod tests {
    use http::Response;

    use super::*;

    const GET11: Answering = Answering {
        head_request: false,
        http10: false,
        keep_alive: true,
    };

    fn encode(
        r: Response<()>,
        hint: SizeHint,
        ended: bool,
        req: Answering,
    ) -> (String, BodyOut, bool) {
        let mut out = BytesMut::new();
        let (parts, ()) = r.into_parts();
        let (framing, keep) = head(&parts, None, &hint, ended, req, &mut out);
        (String::from_utf8(out.to_vec()).unwrap(), framing, keep)
    }

    #[test]
    fn known_lengths_are_declared_and_framing_headers_are_the_connections() {
        let r = Response::builder()
            .header("content-length", "999")
            .header("transfer-encoding", "chunked")
            .header("x-a", "1")
            .body(())
            .unwrap();
        let (text, framing, keep) = encode(r, SizeHint::with_exact(5), false, GET11);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with("GMT\r\ncontent-length: 5\r\n\r\n"), "{text}");
        assert_eq!((framing, keep), (BodyOut::Length(5), true));
    }

    #[test]
    fn unknown_lengths_are_chunked_or_close_delimited_for_http10() {
        let (text, framing, _) = encode(Response::new(()), SizeHint::default(), false, GET11);
        assert!(text.contains("transfer-encoding: chunked\r\n"));
        assert_eq!(framing, BodyOut::Chunked);
        let http10 = Answering {
            http10: true,
            ..GET11
        };
        let (text, framing, keep) = encode(Response::new(()), SizeHint::default(), false, http10);
        assert!(text.contains("connection: close\r\n"));
        assert_eq!((framing, keep), (BodyOut::UntilClose, false));
    }

    #[test]
    fn bodiless_answers_and_connection_close() {
        let r = Response::builder()
            .status(204)
            .header("connection", "close")
            .body(())
            .unwrap();
        let (text, framing, keep) = encode(r, SizeHint::with_exact(0), true, GET11);
        assert!(!text.contains("content-length"));
        assert!(text.ends_with("connection: close\r\n\r\n"));
        assert_eq!((framing, keep), (BodyOut::None, false));
        let head = Answering {
            head_request: true,
            ..GET11
        };
        let r = Response::builder()
            .header("content-length", "42")
            .body(())
            .unwrap();
        let (text, framing, _) = encode(r, SizeHint::with_exact(0), true, head);
        assert!(text.contains("content-length: 42\r\n"));
        assert_eq!(framing, BodyOut::None);
        let (text, framing, _) = encode(Response::new(()), SizeHint::with_exact(0), true, GET11);
        assert!(text.contains("content-length: 0\r\n"));
        assert_eq!(framing, BodyOut::None);
    }

    #[test]
    fn a_switch_keeps_its_upgrade_fields_and_ends_its_head() {
        let r = Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        let (text, framing, _) = encode(r, SizeHint::default(), false, GET11);
        assert!(text.starts_with(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
        ));
        assert!(text.ends_with("GMT\r\n\r\n"), "{text}");
        assert_eq!(framing, BodyOut::None);
    }

    #[test]
    fn the_id_field_replaces_the_responses_own() {
        let r = Response::builder()
            .header("x-request-id", "from-upstream")
            .header("x-a", "1")
            .body(())
            .unwrap();
        let (parts, ()) = r.into_parts();
        let id = (
            HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("abc"),
        );
        let mut out = BytesMut::new();
        head(
            &parts,
            Some(&id),
            &SizeHint::with_exact(0),
            true,
            GET11,
            &mut out,
        );
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nx-request-id: abc\r\nx-a: 1\r\n"),
            "{text}"
        );
        assert!(!text.contains("from-upstream"), "{text}");
    }

    #[test]
    fn chunk_lines() {
        let mut out = BytesMut::new();
        chunk_size(0x1a2, &mut out);
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sum", http::HeaderValue::from_static("9"));
        last_chunk(Some(&trailers), &mut out);
        assert_eq!(&out[..], b"1a2\r\n0\r\nx-sum: 9\r\n\r\n");
    }
}
