//! Server-Sent Events framing and the shared headers of every SSE response, and the count of
//! open streams (for `/health`, and the `mcp_auth.sse.streams_open` gauge).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A keep-alive comment line; clients ignore it, intermediaries see traffic.
pub const KEEPALIVE: Bytes = Bytes::from_static(b": keep-alive\n\n");

/// One event carrying a JSON-RPC message (serialised JSON has no raw newlines).
pub fn event(id: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 32);
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(id.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"data: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// The SEP-1699 priming event: an id to resume from, the reconnection delay, and an empty
/// `data:` line (without it, clients dispatch nothing).
pub fn priming(id: &str, retry_ms: u64) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: {retry_ms}\ndata: \n\n"))
}

/// A bare `retry:` field, sent before the server closes a connection it expects the client to
/// resume.
pub fn retry(retry_ms: u64) -> Bytes {
    Bytes::from(format!("retry: {retry_ms}\n\n"))
}

/// A `200 text/event-stream` response over `stream`, counted in `open` while it lives.
pub fn response<S>(stream: S, open: &Arc<AtomicUsize>) -> Response
where
    S: Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
{
    let guard = OpenStream::new(open);
    let stream = stream.map(move |item| {
        let _alive = &guard;
        item
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies (nginx) must not buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Counts an open stream; the count drops when the response body is dropped (client gone,
/// stream ended).
struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        crate::observe::sse_streams(1);
        OpenStream(open.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        crate::observe::sse_streams(-1);
    }
}
