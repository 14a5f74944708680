//! The `/mcp` route's handlers (feature `mcp`), shared by both eras: content negotiation, size
//! and time limits on the body, JSON-RPC parsing, and the choice of era; then [`modern`] or
//! [`legacy`] serves the message.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Mcp;
use super::headers::{Accepts, require_json_body};
use super::http::{Post, rpc_error};
use super::jsonrpc::{self, Incoming};
use super::limits::Charge;
use super::observe::Operation;
use super::version::{self, Era};
use super::{legacy, modern};
use crate::error::AppError;
use crate::principal::Principal;

/// `POST /mcp`: one JSON-RPC message (or a 2025-03-26 batch), served in its era.
pub(super) async fn post(State(mcp): State<Arc<Mcp>>, mut request: Request) -> Response {
    let charge = request.extensions_mut().remove::<Charge>();
    let (post, body) = match accept_post(request) {
        Ok(accepted) => accepted,
        Err(refusal) => return refusal.into_response(),
    };
    let (max, deadline) = (mcp.config.max_body_bytes, mcp.config.body_read_timeout);
    let incoming = match read_body(body, &post.headers, max, deadline).await.map(|bytes| jsonrpc::parse(&bytes)) {
        Ok(Ok(incoming)) => incoming,
        Ok(Err(rejected)) => return rpc_error(StatusCode::BAD_REQUEST, rejected.id.as_ref(), &rejected.error),
        Err(refusal) => return refusal.into_response(),
    };
    match incoming {
        Incoming::Batch(messages) => {
            // The rate limit charged the request as one message; a batch pays for each.
            let more = u32::try_from(messages.len().saturating_sub(1)).unwrap_or(u32::MAX);
            if let Some(Err(refusal)) = charge.map(|charge| charge.more(more)) {
                return refusal.into_response();
            }
            legacy::handle_batch(&mcp, post, messages).await
        }
        Incoming::Single(message) => {
            let era = version::classify(&message, &post.headers);
            let operation = Operation::begin(&mcp, &message, era, &post.headers, post.principal.as_ref());
            let handling = async {
                match era {
                    Era::Modern => modern::handle(&mcp, post, message).await,
                    Era::Legacy => legacy::handle(&mcp, post, message).await,
                }
            };
            match operation {
                Some(operation) => operation.run(handling).await,
                None => handling.await,
            }
        }
    }
}

/// The checks of a POST that need no body: a JSON body, an `Accept` we can answer.
fn accept_post(request: Request) -> Result<(Post, Body), AppError> {
    let (principal, headers, body) = take_apart(request);
    require_json_body(&headers)?;
    let accepts = Accepts::from_headers(&headers);
    if !accepts.any() {
        return Err(AppError::NotAcceptable("Accept must include application/json or text/event-stream"));
    }
    Ok((Post { headers, principal, accepts }, body))
}

/// `GET /mcp`: a legacy session's standalone SSE stream, or the resumption of a stream.
pub(super) async fn get(State(mcp): State<Arc<Mcp>>, request: Request) -> Response {
    let (principal, headers, _body) = take_apart(request);
    legacy::open_stream(&mcp, principal, headers).await
}

/// `DELETE /mcp`: ends a legacy session.
pub(super) async fn delete(State(mcp): State<Arc<Mcp>>, request: Request) -> Response {
    let (principal, headers, _body) = take_apart(request);
    legacy::end_session(&mcp, principal, headers).await
}

/// The caller the authentication layer established (none without the `jwt` layer), the
/// headers and the body.
fn take_apart(request: Request) -> (Option<Principal>, HeaderMap, Body) {
    let (mut parts, body) = request.into_parts();
    (parts.extensions.remove::<Principal>(), parts.headers, body)
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
