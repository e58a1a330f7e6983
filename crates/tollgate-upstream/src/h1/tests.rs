//! The client against real sockets: a scripted origin on a loopback listener.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_plugin_api::ProxyBody;

use super::{Checkin, Failed, Prepared, send};
use crate::io::Io;
use crate::pool::{Idle, WorkerSlot};

fn slot() -> Arc<WorkerSlot> {
    Arc::new(WorkerSlot::new(Idle::default()))
}

fn checkin(slot: &Arc<WorkerSlot>) -> Checkin {
    Checkin {
        slot: slot.clone(),
        max_idle: 8,
        since: Instant::now(),
    }
}

fn idle(slot: &WorkerSlot) -> usize {
    slot.lock().unwrap().http1.len()
}

/// A connected pair: our side as `Io`, the origin's side as a stream.
async fn pair() -> (Io, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ours, theirs) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (Io::Plain(ours.unwrap()), theirs.unwrap().0)
}

/// Reads until the end of a request head; returns it.
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "closed inside a head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn prepared(req: Request<ProxyBody>) -> Prepared {
    Prepared::new(req, &crate::Overrides::default()).unwrap()
}

fn get(path: &str) -> Prepared {
    Prepared::new(
        Request::get(path)
            .header("host", "origin")
            .body(ProxyBody::Empty)
            .unwrap(),
        &crate::Overrides::default(),
    )
    .unwrap()
}

/// A body of `chunks` pieces of `size` bytes, of unknown length (sent chunked).
fn streamed(chunks: usize, size: usize) -> ProxyBody {
    ProxyBody::boxed(Chunks { left: chunks, size })
}

struct Chunks {
    left: usize,
    size: usize,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = tollgate_plugin_api::BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        let data = Bytes::from(vec![b'x'; self.size]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))))
    }
}

#[tokio::test]
async fn a_small_response_comes_whole_and_the_connection_is_pooled_at_once() {
    let (io, mut origin) = pair().await;
    let server = tokio::spawn(async move {
        let head = read_head(&mut origin).await;
        origin
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello")
            .await
            .unwrap();
        (head, origin)
    });
    let slot = slot();
    let res = send(io, get("/a?b=1"), checkin(&slot), false)
        .await
        .unwrap();
    let (head, _origin) = server.await.unwrap();
    assert_eq!(head, "GET /a?b=1 HTTP/1.1\r\nhost: origin\r\n\r\n");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-a"], "1");
    assert_eq!(idle(&slot), 1, "pooled before the body is read");
    assert!(matches!(res.body(), ProxyBody::Full(_)));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");
}

#[tokio::test]
async fn a_chunked_response_streams_and_pools_the_connection_at_its_end() {
    let (io, mut origin) = pair().await;
    let server = tokio::spawn(async move {
        read_head(&mut origin).await;
        origin
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        origin
            .write_all(b"2\r\nde\r\n0\r\nx-t: 1\r\n\r\n")
            .await
            .unwrap();
        origin
    });
    let slot = slot();
    let res = send(io, get("/"), checkin(&slot), false).await.unwrap();
    assert_eq!(idle(&slot), 0);
    let collected = res.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-t"], "1");
    assert_eq!(collected.to_bytes(), "abcde");
    assert_eq!(idle(&slot), 1);
    drop(server.await.unwrap());
}

#[tokio::test]
async fn request_and_response_bodies_flow_at_the_same_time() {
    // The origin echoes what it reads as it reads it, before the request ends: a client that
    // wrote the whole request first would deadlock once both socket buffers are full.
    let (io, mut origin) = pair().await;
    let server = tokio::spawn(async move {
        read_head(&mut origin).await;
        origin
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while !seen.ends_with(b"0\r\n\r\n") {
            let n = origin.read(&mut buf).await.unwrap();
            assert!(n > 0, "request cut short");
            seen.extend_from_slice(&buf[..n]);
            let mut chunk = format!("{n:x}\r\n").into_bytes();
            chunk.extend_from_slice(&buf[..n]);
            chunk.extend_from_slice(b"\r\n");
            origin.write_all(&chunk).await.unwrap();
        }
        origin.write_all(b"0\r\n\r\n").await.unwrap();
        (seen.len(), origin)
    });
    let req = Request::post("/echo")
        .body(streamed(256, 32 * 1024))
        .unwrap();
    let slot = slot();
    let res = send(io, prepared(req), checkin(&slot), false)
        .await
        .unwrap();
    let echoed = res.into_body().collect().await.unwrap().to_bytes();
    let (wire, _origin) = server.await.unwrap();
    assert_eq!(echoed.len(), wire, "every request byte came back");
    assert!(wire > 256 * 32 * 1024);
    assert_eq!(idle(&slot), 1);
}

#[tokio::test]
async fn an_early_answer_arrives_although_the_upload_cannot_finish() {
    let (io, mut origin) = pair().await;
    let server = tokio::spawn(async move {
        read_head(&mut origin).await;
        origin
            .write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
            .await
            .unwrap();
        // Lingers without reading, then goes away.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    });
    let req = Request::put("/upload")
        .body(streamed(1024, 64 * 1024))
        .unwrap();
    let slot = slot();
    let res = send(io, prepared(req), checkin(&slot), false)
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "big");
    assert_eq!(
        idle(&slot),
        0,
        "an unfinished upload leaves the connection unusable"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn a_closed_reused_connection_gives_a_replayable_request_back() {
    let (io, origin) = pair().await;
    drop(origin);
    let slot = slot();
    let Err(Failed { retry, .. }) = send(io, get("/"), checkin(&slot), true).await else {
        panic!("a closed connection cannot answer");
    };
    assert!(retry.is_some());

    let (io, origin) = pair().await;
    drop(origin);
    let post = Prepared::new(
        Request::post("/")
            .body(ProxyBody::full(Bytes::from_static(b"x")))
            .unwrap(),
        &crate::Overrides::default(),
    )
    .unwrap();
    assert!(!post.replayable());
    let Err(Failed { retry, .. }) = send(io, post, checkin(&slot), false).await else {
        panic!("a closed connection cannot answer");
    };
    assert!(retry.is_none());
}

#[tokio::test]
async fn a_response_cut_short_is_a_body_error_and_the_connection_is_dropped() {
    let (io, mut origin) = pair().await;
    tokio::spawn(async move {
        read_head(&mut origin).await;
        origin
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .await
            .unwrap();
    });
    let slot = slot();
    let res = send(io, get("/"), checkin(&slot), false).await.unwrap();
    assert!(res.into_body().collect().await.is_err());
    assert_eq!(idle(&slot), 0);
}
