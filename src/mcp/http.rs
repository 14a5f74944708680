//! HTTP pieces both eras answer with (feature `mcp`): what the transport knows about a POST,
//! JSON and JSON-RPC error responses, the modern era's status mapping, and the switch from a
//! JSON answer to an SSE stream when a handler speaks before its result. A leaf module: the
//! transport and both eras use it, and it uses neither.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::context::Outbound;
use super::dispatch::{McpError, McpFuture, McpReply};
use super::headers::Accepts;
use super::jsonrpc::{self, Id, RpcError, code};
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
