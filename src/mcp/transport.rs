//! The HTTP side of `/mcp`, shared by both eras: content negotiation, size limit, JSON-RPC
//! parsing, era classification, and the switch from a JSON answer to an SSE stream.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tokio::sync::mpsc;

use super::Mcp;
use super::context::Outbound;
use super::dispatch::{McpError, McpFuture, McpReply};
use super::headers::{Accepts, require_json_body};
use super::jsonrpc::{self, Id, Incoming, RpcError, code};
use super::version::{self, Era};
use super::{legacy, modern};
use crate::error::AppError;
use crate::principal::Principal;

/// Notifications a handler may queue before its result is written. Small: a handler that
/// produces faster than the client reads waits, instead of buffering without bound.
pub(super) const OUTBOX_CAPACITY: usize = 32;

/// What the transport knows about a POST besides its body.
pub(super) struct Post {
    pub headers: HeaderMap,
    pub principal: Option<Principal>,
    pub accepts: Accepts,
}

/// The `/mcp` endpoint behind its layers: POST, GET and DELETE to their handlers, 405 for any
/// other method. A plain service rather than an axum `MethodRouter`, so the layers in front of it
/// are composed once into one service (see [`super::Endpoint::route`]).
#[derive(Clone)]
pub struct Handlers {
    mcp: Arc<Mcp>,
}

impl Handlers {
    pub(super) fn new(mcp: Arc<Mcp>) -> Self {
        Handlers { mcp }
    }
}

impl tower::Service<Request> for Handlers {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mcp = self.mcp.clone();
        // The future boxed here is written into fresh memory on every call, so it is kept
        // small: `.map(Ok)`, not `async move { Ok(post(..).await) }` (such a block keeps its own
        // copy of the arguments beside the future it awaits), and POST served by plain functions
        // around `async` blocks (an `async fn` keeps each argument beside the locals moved out of
        // it). The box of a POST was 3,864 bytes; it is 880 (`-Zprint-type-sizes`).
        match *request.method() {
            Method::POST => match post(request) {
                Ok((post, body)) => Box::pin(post_body(mcp, post, body).map(Ok)),
                Err(refusal) => Box::pin(std::future::ready(Ok(refusal.into_response()))),
            },
            Method::GET => Box::pin(get(mcp, request).map(Ok)),
            Method::DELETE => Box::pin(delete(mcp, request).map(Ok)),
            _ => {
                let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET,POST,DELETE"));
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}

/// `POST /mcp`, the checks that need no body: a JSON body, an `Accept` we can answer. The
/// request is taken apart by hand: the `HeaderMap` extractor would copy every header.
fn post(request: Request) -> Result<(Post, Body), AppError> {
    let (parts, body) = request.into_parts();
    let (headers, mut extensions) = (parts.headers, parts.extensions);
    let principal = extensions.remove::<Principal>();
    require_json_body(&headers)?;
    let accepts = Accepts::from_headers(&headers);
    if !accepts.any() {
        return Err(AppError::NotAcceptable("Accept must include application/json or text/event-stream"));
    }
    Ok((Post { headers, principal, accepts }, body))
}

/// `POST /mcp`, the rest: read and parse the body, and serve it in its era. Legacy messages
/// (952 bytes of future) and batches (1,200) are served in boxes of their own, so that the future
/// of every call is only as large as the modern path needs.
#[allow(clippy::manual_async_fn, reason = "an `async fn` keeps its arguments twice (see `Handlers::call`)")]
fn post_body(mcp: Arc<Mcp>, post: Post, body: Body) -> impl Future<Output = Response> + Send {
    async move {
        let (max, deadline) = (mcp.config.max_body_bytes, mcp.config.body_read_timeout);
        let incoming = match read_body(body, &post.headers, max, deadline).await.map(|bytes| jsonrpc::parse(&bytes)) {
            Ok(Ok(incoming)) => incoming,
            Ok(Err(rejected)) => return rpc_error(StatusCode::BAD_REQUEST, rejected.id.as_ref(), &rejected.error),
            Err(refusal) => return refusal.into_response(),
        };
        match incoming {
            Incoming::Batch(messages) => Box::pin(legacy::handle_batch(&mcp, post, messages)).await,
            Incoming::Single(message) => match version::classify(&message, &post.headers) {
                Era::Modern => match modern::handle(&mcp, post, message) {
                    modern::Handled::Answered(response) => response,
                    modern::Handled::Running(call) => call.answer().await,
                },
                Era::Legacy => Box::pin(legacy::handle(&mcp, post, message)).await,
            },
        }
    }
}

/// `GET /mcp`: a legacy session's standalone SSE stream, or the resumption of a stream.
async fn get(mcp: Arc<Mcp>, request: Request) -> Response {
    let (principal, headers) = principal_and_headers(request);
    legacy::open_stream(&mcp, principal, headers).await
}

/// `DELETE /mcp`: ends a legacy session.
async fn delete(mcp: Arc<Mcp>, request: Request) -> Response {
    let (principal, headers) = principal_and_headers(request);
    legacy::end_session(&mcp, principal, headers).await
}

/// The caller the authentication layer established (none without the `jwt` layer), and the
/// headers, taken out of the request without copies.
fn principal_and_headers(request: Request) -> (Option<Principal>, HeaderMap) {
    let (mut parts, _body) = request.into_parts();
    (parts.extensions.remove::<Principal>(), parts.headers)
}

/// Reads the body up to `limit` bytes within `deadline`; a declared or actual larger body is 413,
/// one that does not arrive in time (or never ends) is 408.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<bytes::Bytes, AppError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(AppError::PayloadTooLarge { limit });
    }
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit));
    read.await.map_err(|_| AppError::RequestTimeout)?.map_err(|err| {
        let too_large =
            std::error::Error::source(&err).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            AppError::PayloadTooLarge { limit }
        } else {
            AppError::BadRequest("could not read the request body".into())
        }
    })
}

/// A JSON response from serialised bytes.
pub(super) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON-RPC error response.
pub(super) fn rpc_error(status: StatusCode, id: Option<&Id>, error: &RpcError) -> Response {
    json_bytes(status, jsonrpc::error_frame(id, error))
}

/// The HTTP status of a JSON-RPC error in the modern era (2026-07-28 maps errors to statuses;
/// the legacy era answers protocol errors with 200).
pub(super) fn modern_status(error: &RpcError) -> StatusCode {
    match error.code {
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | code::HEADER_MISMATCH
        | code::MISSING_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        code::INTERNAL_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    }
}

/// An outbox for a request whose messages can reach the client: it accepts SSE, and the era's
/// caller says the handler may have something to send. `None` otherwise (then notifications are
/// dropped, as there is nowhere to put them), which also spares the channel's allocation.
pub(super) fn outbox(open: bool) -> (Option<mpsc::Sender<Outbound>>, Option<mpsc::Receiver<Outbound>>) {
    if open {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}

/// How a call started: it finished before saying anything (answer with JSON), or it must be
/// answered with an SSE stream (it produced a message first, or the client takes only SSE).
pub(super) enum Start {
    Json(Result<McpReply, McpError>),
    Stream { first: Option<Outbound>, result: Option<Result<McpReply, McpError>> },
}

impl Start {
    /// A call that finished without saying anything first: JSON, unless the client takes only
    /// SSE, which then gets a stream of the result alone.
    fn quiet(result: Result<McpReply, McpError>, accepts: Accepts) -> Start {
        if accepts.json { Start::Json(result) } else { Start::Stream { first: None, result: Some(result) } }
    }
}

/// Runs `call` until it finishes or produces its first message.
pub(super) async fn start(
    call: &mut McpFuture,
    outbox: &mut Option<mpsc::Receiver<Outbound>>,
    accepts: Accepts,
) -> Start {
    let Some(receiver) = outbox else {
        return Start::quiet(call.await, accepts);
    };
    let result = tokio::select! {
        // Messages first: notifications queued before the result must precede it.
        biased;
        first = receiver.recv() => match first {
            Some(message) => return Start::Stream { first: Some(message), result: None },
            // The senders are gone (the handler dropped its context); the call goes on.
            None => call.await,
        },
        result = &mut *call => result,
    };
    // The call may have queued a message in the same poll in which it finished.
    if let Ok(message) = receiver.try_recv() {
        return Start::Stream { first: Some(message), result: Some(result) };
    }
    Start::quiet(result, accepts)
}
