//! Writing a response body: data as it comes (framed by length, chunks or the connection's
//! end), trailers in the last chunk.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::Body;
use tollgate_upstream::codec::Out;

use super::response::{self, BodyOut};
use crate::response_body::ResponseBody;

const CRLF: &[u8] = b"\r\n";

/// The response body being written.
pub(super) struct Writing {
    pub(super) body: ResponseBody,
    pub(super) framing: BodyOut,
    /// Bytes still to send for `BodyOut::Length`.
    pub(super) left: u64,
}

/// Queues what the response body has ready, as far as `out` has room. `Err`: abort.
pub(super) fn poll_body(
    w: &mut Writing,
    done: &mut bool,
    out: &mut Out,
    scratch: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Result<bool, ()> {
    let mut progress = false;
    while out.room() >= 3 {
        match Pin::new(&mut w.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                progress = true;
                match frame.into_data() {
                    Ok(mut data) => {
                        if data.is_empty() {
                            continue;
                        }
                        match w.framing {
                            BodyOut::Length(_) => {
                                // Never more than was declared.
                                let n = data
                                    .len()
                                    .min(usize::try_from(w.left).unwrap_or(usize::MAX));
                                data.truncate(n);
                                w.left -= n as u64;
                                out.push(data);
                                if w.left == 0 {
                                    *done = true;
                                    return Ok(true);
                                }
                            }
                            BodyOut::Chunked => {
                                response::chunk_size(data.len(), scratch);
                                out.push(scratch.split().freeze());
                                out.push(data);
                                out.push(Bytes::from_static(CRLF));
                            }
                            BodyOut::UntilClose | BodyOut::None => out.push(data),
                        }
                    }
                    Err(frame) => {
                        if w.framing == BodyOut::Chunked {
                            response::last_chunk(frame.trailers_ref(), scratch);
                            out.push(scratch.split().freeze());
                        } else if let BodyOut::Length(1..) = w.framing {
                            return Err(());
                        }
                        *done = true;
                        return Ok(true);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => return Err(()),
            Poll::Ready(None) => {
                match w.framing {
                    BodyOut::Chunked => {
                        response::last_chunk(None, scratch);
                        out.push(scratch.split().freeze());
                    }
                    // The body ended short of its declared length: the client must not
                    // take what it got for the whole.
                    BodyOut::Length(_) if w.left > 0 => return Err(()),
                    _ => {}
                }
                *done = true;
                return Ok(true);
            }
            Poll::Pending => break,
        }
    }
    Ok(progress)
}
