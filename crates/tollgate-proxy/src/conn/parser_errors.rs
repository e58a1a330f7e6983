//! The gateway's JSON error body for the requests hyper's HTTP/1.1 parser refuses itself.
//!
//! hyper answers a request head it cannot parse (malformed line, header folding, conflicting
//! `Content-Length`, too large or too many headers, a version it does not speak) on its own,
//! with the status, an empty body and the connection closed; the gateway's code never sees the
//! request. Such an answer has exactly three header fields, `connection: close`,
//! `content-length: 0` and `date`, while every response of the gateway carries the request-id
//! header, so the shape is unambiguous. This wrapper around the connection's stream recognizes
//! that answer on its way out and writes instead the same status with the JSON body every other
//! error has (`{"error": {"code", "message", "request_id"}}`), a request id, and the connection
//! still closed. Writes of any other shape pass through untouched; the check is a prefix
//! comparison.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderName, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tollgate_plugin_api::GatewayError;

/// A client stream whose parser-error answers are rewritten.
#[derive(Debug)]
pub(crate) struct ParserErrors<T> {
    inner: T,
    /// The request-id header of the current configuration.
    request_id_header: HeaderName,
    /// The rewritten answer still being written.
    pending: Bytes,
}

impl<T> ParserErrors<T> {
    pub(crate) fn new(inner: T, request_id_header: HeaderName) -> Self {
        Self {
            inner,
            request_id_header,
            pending: Bytes::new(),
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncWrite + Unpin> ParserErrors<T> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// When `head` is hyper's own error answer, queues the JSON one in its place.
    fn rewrite(&mut self, head: &[u8]) -> bool {
        let Some((status, date)) = parser_error(head) else {
            return false;
        };
        self.pending = json_answer(status, date, &self.request_id_header);
        true
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ParserErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ParserErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if this.rewrite(buf) {
            // Reported as written; the replacement goes out now or on the next flush.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (non_empty.next(), non_empty.next())
            && this.rewrite(only)
        {
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(only.len()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The status and `date` value of hyper's own error answer, if `head` is one: a whole
/// `HTTP/1.1 4xx|5xx` head with exactly `connection: close`, `content-length: 0` and `date`.
fn parser_error(head: &[u8]) -> Option<(StatusCode, &[u8])> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    if !matches!(rest.first(), Some(b'4' | b'5')) || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    // The field lines, without the blank line that ends the head.
    let mut lines = head[..head.len() - 4].split(|b| *b == b'\n').skip(1);
    let (mut close, mut empty, mut date) = (false, false, None);
    for _ in 0..3 {
        let line = lines.next()?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"connection: close" {
            close = true;
        } else if line == b"content-length: 0" {
            empty = true;
        } else if let Some(value) = line.strip_prefix(b"date: ") {
            date = Some(value);
        } else {
            return None;
        }
    }
    if lines.next().is_some() || !close || !empty {
        return None;
    }
    Some((status, date?))
}

/// The gateway's answer for a request refused by the parser with `status`.
fn answer_error(status: StatusCode) -> GatewayError {
    let (code, message) = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "the request head is too large or has too many header fields",
        ),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target is too long"),
        StatusCode::HTTP_VERSION_NOT_SUPPORTED => (
            "http_version_not_supported",
            "the HTTP version is not supported",
        ),
        _ => (
            "bad_request",
            "malformed HTTP request: the request line, a header field or the message framing is invalid",
        ),
    };
    GatewayError::downstream(status, code, message)
}

fn json_answer(status: StatusCode, date: &[u8], request_id_header: &HeaderName) -> Bytes {
    let id = crate::request_id::generate();
    let body = crate::error::error_body(&answer_error(status), &id);
    let mut out = BytesMut::with_capacity(256 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("Error").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\nconnection: close\r\n");
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(request_id_header.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 27 Nov 2026 21:35:08 GMT\r\n\r\n";

    #[test]
    fn only_hypers_own_error_answers_are_recognized() {
        let (status, date) = parser_error(HYPER_431).unwrap();
        assert_eq!(status, 431);
        assert_eq!(date, b"Fri, 27 Nov 2026 21:35:08 GMT");
        // The gateway's answers carry a request id; successful ones are not errors.
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\nx-request-id: 1\r\ndate: x\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\nbody",
            b"hello",
        ] {
            assert!(parser_error(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }

    #[tokio::test]
    async fn the_answer_is_rewritten_with_a_json_body_and_a_request_id() {
        let mut out = ParserErrors::new(Vec::new(), HeaderName::from_static("x-request-id"));
        out.write_all(HYPER_431).await.unwrap();
        out.flush().await.unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(head.contains("\r\nx-request-id: "), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "headers_too_large");
        assert_eq!(json["error"]["request_id"].as_str().unwrap().len(), 32);

        let mut out = ParserErrors::new(Vec::new(), HeaderName::from_static("x-request-id"));
        out.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert_eq!(out.into_inner(), b"HTTP/1.1 200 OK\r\n\r\n");
    }
}
