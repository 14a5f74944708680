//! The legacy era (2025-11-25, 2025-06-18, 2025-03-26): an `initialize` handshake opens a
//! session named by `Mcp-Session-Id`; the client may open a GET stream for server notifications;
//! the server may ask the client for input (sampling, elicitation, roots) with JSON-RPC requests
//! on the request's SSE stream, and the client POSTs its answers back.
//!
//! Handlers are written once, in the modern multi-round-trip style (they return
//! `input_required`); [`drive`] plays those rounds out over the session, so legacy clients get
//! real server-to-client requests.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::Mcp;
use super::bus::ChangeEvent;
use super::context::{Item, Outbound, RequestContext};
use super::dispatch::{Features, McpError, McpFuture, McpReply, McpRequest, feature_method_offered};
use super::downstream::Downstream;
use super::headers::Accepts;
use super::http::{Post, Start, json_bytes, outbox, rpc_error, start};
use super::jsonrpc::{Id, Message, Params, RpcError, code, error_frame, result_frame};
use super::protocol::{CallToolResult, ClientCapabilities, LogLevel};
use super::session::{Session, StreamLog};
use super::sse;
use super::version::{
    DEFAULT_LEGACY_VERSION, Era, HEADER_LAST_EVENT_ID, HEADER_SESSION_ID, LEGACY_VERSIONS, LegacyVersion,
    header_version, is_handshake_version,
};
use crate::error::AppError;
use crate::principal::Principal;

/// Rounds of server-to-client input one request may take before we give up.
const MAX_INPUT_ROUNDS: usize = 8;
/// How long a client has to answer a server-to-client request.
const INPUT_TIMEOUT: Duration = Duration::from_secs(300);

/// Serves one legacy message.
pub(super) async fn handle(mcp: &Arc<Mcp>, post: Post, message: Message) -> Response {
    if let Message::Request { id, method, params } = &message
        && method == "initialize"
    {
        return initialize(mcp, &post, id, params).await;
    }
    let request_id = match &message {
        Message::Request { id, .. } => Some(id.clone()),
        _ => None,
    };
    let session = match session_for(mcp, &post.headers, post.principal.as_ref()).await {
        Ok(session) => session,
        Err(refusal) => return refusal.response(request_id.as_ref()),
    };
    match message {
        Message::Response { id, outcome } => {
            // Whichever instance waits for this answer gets it.
            session.deliver_response(&id, outcome).await;
            StatusCode::ACCEPTED.into_response()
        }
        Message::Notification { method, params } => {
            notification(&session, &method, &params).await;
            StatusCode::ACCEPTED.into_response()
        }
        Message::Request { id, method, params } => {
            let outcome = request(mcp, &session, &post, id.clone(), method, params).await;
            match outcome {
                Answer::Stream(response) => response,
                Answer::Refused(refusal) => refusal.into_response_with_id(Some(id.to_value())),
                Answer::Result(Ok(result)) => json_bytes(StatusCode::OK, result_frame(&id, &result)),
                Answer::Result(Err(error)) => json_bytes(StatusCode::OK, error_frame(Some(&id), &error)),
            }
        }
    }
}

/// A 2025-03-26 batch: every message handled in order, the responses returned together.
pub(super) async fn handle_batch(
    mcp: &Arc<Mcp>,
    post: Post,
    messages: Vec<Result<Message, (Option<Id>, RpcError)>>,
) -> Response {
    let session = match session_for(mcp, &post.headers, post.principal.as_ref()).await {
        Ok(session) => session,
        Err(refusal) => return refusal.response(None),
    };
    if session.version != LegacyVersion::V2025_03_26 {
        let error = RpcError::invalid_request(format!(
            "JSON-RPC batches are not part of protocol version {}",
            session.version.as_str()
        ));
        return rpc_error(StatusCode::BAD_REQUEST, None, &error);
    }
    // Batched requests answer in one JSON array; nothing can stream.
    let post = Post { accepts: Accepts { json: true, sse: false }, ..post };
    let mut responses = Vec::new();
    for message in messages {
        match message {
            Err((id, error)) => responses.push(error_value(id.as_ref(), &error)),
            Ok(Message::Request { id, method, .. }) if method == "initialize" => {
                responses.push(error_value(Some(&id), &RpcError::invalid_request("initialize must not be batched")));
            }
            Ok(Message::Response { id, outcome }) => session.deliver_response(&id, outcome).await,
            Ok(Message::Notification { method, params }) => notification(&session, &method, &params).await,
            Ok(Message::Request { id, method, params }) => {
                let value = match request(mcp, &session, &post, id.clone(), method, params).await {
                    Answer::Result(Ok(result)) => {
                        json!({ "jsonrpc": "2.0", "id": id, "result": result })
                    }
                    Answer::Result(Err(error)) => error_value(Some(&id), &error),
                    Answer::Refused(refusal) => {
                        error_value(Some(&id), &RpcError::new(refusal.rpc_code(), refusal.to_string()))
                    }
                    // Batched calls have no stream to use (sse: false above).
                    Answer::Stream(_) => error_value(Some(&id), &RpcError::internal("cannot be answered in a batch")),
                };
                responses.push(value);
            }
        }
    }
    if responses.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    json_bytes(StatusCode::OK, serde_json::to_vec(&responses).expect("JSON values serialise"))
}

fn error_value(id: Option<&Id>, error: &RpcError) -> Value {
    serde_json::from_slice(&error_frame(id, error)).expect("frames are JSON")
}

/// `initialize`: negotiate a version, open a session bound to the caller.
async fn initialize(mcp: &Arc<Mcp>, post: &Post, id: &Id, params: &Map<String, Value>) -> Response {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let Some(requested) = requested else {
        let error = RpcError::invalid_params("Invalid params: protocolVersion is required");
        return json_bytes(StatusCode::OK, error_frame(Some(id), &error));
    };
    let version = LegacyVersion::negotiate(requested);
    let capabilities = params.get("capabilities").and_then(Value::as_object).cloned().unwrap_or_default();
    let session = match mcp.sessions.create(post.principal.as_ref(), version, ClientCapabilities(capabilities)).await {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response_with_id(Some(id.to_value())),
    };
    let client = params.get("clientInfo").and_then(|c| c.get("name")).and_then(Value::as_str).unwrap_or("?");
    tracing::info!(session = %session.id, version = version.as_str(), client, "session opened");

    let mut result = Map::new();
    result.insert("protocolVersion".into(), json!(version.as_str()));
    result.insert("capabilities".into(), json!(mcp.capabilities()));
    result.insert("serverInfo".into(), json!(mcp.config.server_info));
    if let Some(instructions) = &mcp.config.instructions {
        result.insert("instructions".into(), json!(instructions));
    }
    if !mcp.config.discovery_meta.is_empty() {
        result.insert("_meta".into(), Value::Object(mcp.config.discovery_meta.clone()));
    }
    let mut response = json_bytes(StatusCode::OK, result_frame(id, &Value::Object(result)));
    let header = HeaderValue::from_str(&session.id).expect("session ids are visible ASCII");
    response.headers_mut().insert(&HEADER_SESSION_ID, header);
    response
}

/// Why a request could not be tied to a session.
enum NoSession {
    /// 400: an `MCP-Protocol-Version` we do not serve.
    BadVersion(String),
    /// 400: no `Mcp-Session-Id`.
    Missing,
    /// 404: a session that does not exist, has ended, or belongs to another caller
    /// (indistinguishable on purpose).
    NotFound,
    /// 503: the store that keeps sessions failed.
    Unavailable(AppError),
}

impl NoSession {
    fn response(self, id: Option<&Id>) -> Response {
        let (status, message) = match self {
            NoSession::Unavailable(refusal) => return refusal.into_response_with_id(id.map(Id::to_value)),
            NoSession::BadVersion(version) => (
                StatusCode::BAD_REQUEST,
                format!("Unsupported MCP-Protocol-Version: {version} (supported: {})", LEGACY_VERSIONS.join(", ")),
            ),
            NoSession::Missing => (StatusCode::BAD_REQUEST, "Bad Request: Mcp-Session-Id header is required".into()),
            NoSession::NotFound => (StatusCode::NOT_FOUND, "Session not found".into()),
        };
        rpc_error(status, id, &RpcError::invalid_request(message))
    }
}

/// Finds the session a request names, for its owner only, on this instance or in the store.
async fn session_for(
    mcp: &Arc<Mcp>,
    headers: &HeaderMap,
    principal: Option<&Principal>,
) -> Result<Arc<Session>, NoSession> {
    if let Some(version) = header_version(headers)
        && !LEGACY_VERSIONS.contains(&version)
    {
        return Err(NoSession::BadVersion(version.to_owned()));
    }
    let session_id = headers.get(&HEADER_SESSION_ID).and_then(|v| v.to_str().ok()).ok_or(NoSession::Missing)?;
    match mcp.sessions.get(session_id.trim()).await.map_err(NoSession::Unavailable)? {
        Some(session) if session.owned_by(principal) => Ok(session),
        Some(_) => {
            tracing::warn!(session = session_id, "session presented by a caller other than its owner");
            Err(NoSession::NotFound)
        }
        None => Err(NoSession::NotFound),
    }
}

/// Client notifications within a session. Only cancellation needs action (the request may run
/// on another instance); `notifications/initialized` and the rest are acknowledged and dropped.
async fn notification(session: &Session, method: &str, params: &Map<String, Value>) {
    if method == "notifications/cancelled"
        && let Some(id) = params.get("requestId").and_then(Id::from_value)
    {
        session.cancel(&id).await;
    }
}

/// How a legacy request is answered: with a result or error (sent as JSON, status 200), an
/// HTTP-level refusal (403 step-up), or an SSE stream.
enum Answer {
    Result(Result<LegacyResult, RpcError>),
    Refused(AppError),
    Stream(Response),
}

async fn request(
    mcp: &Arc<Mcp>,
    session: &Arc<Session>,
    post: &Post,
    id: Id,
    method: String,
    params: Params,
) -> Answer {
    let empty = || Answer::Result(Ok(LegacyResult::Value(json!({}))));
    let capabilities = mcp.capabilities();
    match method.as_str() {
        "ping" => empty(),
        "logging/setLevel" if capabilities.logging.is_some() => match params.get("level").and_then(LogLevel::parse) {
            Some(level) => match session.update(|record| record.log_level = Some(level)).await {
                Ok(()) => empty(),
                Err(err) => Answer::Refused(store_unavailable(err)),
            },
            None => Answer::Result(Err(RpcError::invalid_params("Invalid params: unknown log level"))),
        },
        "resources/subscribe" | "resources/unsubscribe" if capabilities.resources.is_some_and(|r| r.subscribe) => {
            let Some(uri) = params.get("uri").and_then(Value::as_str) else {
                return Answer::Result(Err(RpcError::invalid_params("Invalid params: uri is required")));
            };
            if let Some(access) = mcp.features.as_ref().and_then(|f| f.access.as_ref())
                && let Err(refusal) = access.authorize(post.principal.as_ref(), &method, &params)
            {
                return Answer::Refused(refusal);
            }
            let subscribe = method == "resources/subscribe";
            let updated = session
                .update(|record| {
                    if subscribe {
                        record.subscriptions.insert(uri.to_owned());
                    } else {
                        record.subscriptions.remove(uri);
                    }
                })
                .await;
            match updated {
                Ok(()) => empty(),
                Err(err) => Answer::Refused(store_unavailable(err)),
            }
        }
        _ => match (&mcp.features, feature_method_offered(&method, capabilities)) {
            (Some(features), Some(true)) => call(mcp, features, session, post, id, method, params).await,
            _ => Answer::Result(Err(RpcError::method_not_found(&method))),
        },
    }
}

/// A feature method within a session: JSON when it finishes quietly, otherwise an SSE stream
/// whose events are logged so the client can resume it. A dropped connection does not cancel
/// the work in this era (`notifications/cancelled` does).
async fn call(
    mcp: &Arc<Mcp>,
    features: &Features,
    session: &Arc<Session>,
    post: &Post,
    id: Id,
    method: String,
    params: Params,
) -> Answer {
    let (meta, params) = params.into_parts();
    // Open whenever the client takes SSE: in a session the handler may also send requests to
    // the client or close the connection for polling, whatever this request's `_meta` says. A
    // session or caller with as many streams open as it may gets its answer without a stream.
    let slot = post.accepts.sse.then(|| mcp.sessions.stream_slot(Some(session), post.principal.as_ref())).flatten();
    let (sender, mut receiver) = outbox(slot.is_some());
    let cancellation = session.closed.child_token();
    let tracking = session.track(id.clone(), cancellation.clone());
    let ctx = RequestContext {
        request_id: id.clone(),
        era: Era::Legacy,
        protocol_version: header_version(&post.headers)
            .and_then(|v| LEGACY_VERSIONS.iter().find(|known| **known == v).copied())
            .unwrap_or(DEFAULT_LEGACY_VERSION),
        principal: post.principal.clone(),
        client_capabilities: session.client_capabilities.clone(),
        progress_token: meta.progress_token,
        log_level: session.log_level(),
        cancellation: cancellation.clone(),
        access: None,
        outbox: sender,
        downstream: Downstream::for_request(mcp.config.token_exchange.as_ref(), &post.headers),
    };
    // `notifications/cancelled` (or the session ending) stops the work: the handler's future is
    // dropped, and with it everything it holds.
    let work = drive(features.service.clone(), session.clone(), method, params, ctx);
    let mut pending: McpFuture = Box::pin(async move {
        tokio::select! {
            biased;
            _ = cancellation.cancelled() => Err(McpError::Rpc(RpcError::new(code::REQUEST_CANCELLED, "Request cancelled"))),
            result = work => result,
        }
    });
    match start(&mut pending, &mut receiver, post.accepts).await {
        Start::Json(result) => {
            drop(tracking);
            match result.map_err(McpError::into_refusal) {
                Ok(reply) => Answer::Result(Ok(legacy_result(reply))),
                Err(Err(error)) => Answer::Result(Err(error)),
                Err(Ok(refusal)) => Answer::Refused(refusal),
            }
        }
        Start::Stream { first, result } => {
            let log = session.new_stream(mcp.config.sse_replay_buffer);
            let polling = session.version.supports_polling();
            if polling {
                log.push_priming(mcp.config.sse_retry_ms).await;
            }
            // The reader exists before the writer runs, so a close requested by the very first
            // message applies to this connection.
            let reader = log.clone().reader(None, mcp.config.sse_retry_ms, session.closed.clone());
            let writer = log;
            tokio::spawn(async move {
                let _tracking = tracking;
                if let Some(first) = first {
                    write(&writer, first, polling).await;
                }
                let result = match result {
                    Some(result) => result,
                    None => loop {
                        match &mut receiver {
                            Some(rx) => tokio::select! {
                                biased;
                                Some(message) = rx.recv() => write(&writer, message, polling).await,
                                result = &mut pending => break result,
                            },
                            None => break (&mut pending).await,
                        }
                    },
                };
                if let Some(rx) = &mut receiver {
                    while let Ok(message) = rx.try_recv() {
                        write(&writer, message, polling).await;
                    }
                }
                let frame = match result.map_err(McpError::into_refusal) {
                    // A cancelled request gets no response; its stream just ends.
                    Err(Err(error)) if error.code == code::REQUEST_CANCELLED => {
                        writer.finish().await;
                        return;
                    }
                    Ok(reply) => result_frame(&id, &legacy_result(reply)),
                    Err(Err(error)) => error_frame(Some(&id), &error),
                    Err(Ok(refusal)) => error_frame(Some(&id), &RpcError::new(refusal.rpc_code(), refusal.to_string())),
                };
                writer.push(&frame).await;
                writer.finish().await;
            });
            Answer::Stream(sse::response(holding(reader, slot), &mcp.open_streams))
        }
    }
}

/// Logs one message a handler produced on its request's stream.
async fn write(log: &StreamLog, message: Outbound, polling: bool) {
    match message {
        Outbound::Frame(frame) => log.push(&frame).await,
        Outbound::CloseConnection if polling => log.disconnect().await,
        Outbound::CloseConnection => {}
    }
}

/// `stream`, holding `slot` (its place among the open streams) for as long as it lives.
fn holding<S, T>(stream: S, slot: T) -> impl futures_util::Stream<Item = S::Item> + Send + 'static
where
    S: futures_util::Stream + Send + 'static,
    T: Send + 'static,
{
    use futures_util::StreamExt;
    stream.map(move |item| {
        let _held = &slot;
        item
    })
}

/// The store failed while a session changed: 503, nothing half-written (the record is written
/// whole or not at all).
fn store_unavailable(err: crate::store::StoreError) -> AppError {
    tracing::error!(%err, "the session store failed");
    AppError::Unavailable("the session store is unavailable")
}

/// A complete result in the 2025 shape (no `resultType`, no cache hints).
fn legacy_result(reply: McpReply) -> LegacyResult {
    match reply {
        McpReply::Complete { result, .. } => LegacyResult::Value(Value::Object(result)),
        McpReply::Tool(result) => LegacyResult::Tool(result),
        // `drive` resolves every input round before returning.
        McpReply::InputRequired(_) => LegacyResult::Value(json!({})),
    }
}

/// A result as the 2025 eras answer it: JSON, or a tool's result, written as it is (see
/// [`McpReply::Tool`]). Untagged: each variant serialises as its content alone.
#[derive(Serialize)]
#[serde(untagged)]
enum LegacyResult {
    Value(Value),
    Tool(CallToolResult),
}

/// Calls the feature service and plays any `input_required` rounds out as real
/// server-to-client requests on the request's stream, retrying with the client's answers.
async fn drive(
    service: super::McpService,
    session: Arc<Session>,
    method: String,
    mut params: Map<String, Value>,
    ctx: RequestContext,
) -> Result<McpReply, McpError> {
    for _ in 0..MAX_INPUT_ROUNDS {
        let request = McpRequest { method: method.clone(), params: params.clone(), ctx: ctx.clone() };
        let input = match service.handle(request).await? {
            McpReply::InputRequired(input) => input,
            complete => return Ok(complete),
        };
        let Some(outbox) = ctx.outbox.as_ref() else {
            return Err(RpcError::invalid_request(
                "this request needs input from the client, which requires an SSE (text/event-stream) response",
            )
            .into());
        };
        let mut answers = Map::new();
        for (key, input_request) in input.input_requests {
            let needed = input_request.required_capability();
            if !ctx.client_capabilities.satisfies(&needed) {
                return Err(RpcError::invalid_request(format!(
                    "the client did not declare the capability this request needs: {needed}"
                ))
                .into());
            }
            let (request_id, answer) = session.expect_response();
            let frame = json!({
                "jsonrpc": "2.0",
                "id": request_id,
                "method": input_request.method,
                "params": input_request.params,
            });
            let frame = serde_json::to_vec(&frame).expect("JSON values serialise");
            if outbox.send(Outbound::Frame(frame.into())).await.is_err() {
                session.abandon_request(&request_id);
                return Err(RpcError::internal("the response stream closed").into());
            }
            let outcome = tokio::select! {
                outcome = answer => outcome.map_err(|_| RpcError::internal("session ended")),
                _ = tokio::time::sleep(INPUT_TIMEOUT) => Err(RpcError::internal("the client did not answer in time")),
                _ = ctx.cancellation.cancelled() => Err(RpcError::internal("request cancelled")),
            };
            if outcome.is_err() {
                session.abandon_request(&request_id);
            }
            match outcome? {
                Ok(result) => answers.insert(key, result),
                Err(error) => {
                    let message = error.get("message").and_then(Value::as_str).unwrap_or("error");
                    return Err(RpcError::internal(format!(
                        "the client refused `{}`: {message}",
                        input_request.method
                    ))
                    .into());
                }
            };
        }
        params.insert("inputResponses".into(), Value::Object(answers));
        match input.request_state {
            Some(state) => params.insert("requestState".into(), Value::String(state)),
            None => params.remove("requestState"),
        };
    }
    Err(RpcError::internal("too many rounds of client input").into())
}

/// `GET /mcp`: resume a request stream (`Last-Event-ID`, on any instance: its events are in
/// the store) or open the session's standalone stream of server notifications (list changes,
/// resource updates).
pub(super) async fn open_stream(mcp: &Arc<Mcp>, principal: Option<Principal>, headers: HeaderMap) -> Response {
    if header_version(&headers).is_some_and(|v| !is_handshake_version(v)) {
        // No GET stream in the modern era.
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response.headers_mut().insert(axum::http::header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if !Accepts::from_headers(&headers).sse {
        return AppError::NotAcceptable("GET /mcp answers with text/event-stream").into_response();
    }
    let session = match session_for(mcp, &headers, principal.as_ref()).await {
        Ok(session) => session,
        Err(refusal) => return refusal.response(None),
    };
    let Some(slot) = mcp.sessions.stream_slot(Some(&session), principal.as_ref()) else {
        return AppError::TooManyStreams.into_response();
    };
    let resume = headers
        .get(&HEADER_LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(StreamLog::parse_event_id)
        // Stream "0" is the standalone stream, which is not logged: a new one is opened instead.
        .filter(|(stream, _)| stream != "0");
    if let Some((stream, seq)) = resume {
        let log = session.stream(&stream, mcp.config.sse_replay_buffer);
        let reader = log.reader(Some(seq), mcp.config.sse_retry_ms, session.closed.clone());
        return sse::response(holding(reader, slot), &mcp.open_streams);
    }
    let claim = match session.open_standalone().await {
        Ok(Some(claim)) => claim,
        Ok(None) => {
            let error = RpcError::invalid_request("Conflict: only one standalone SSE stream per session");
            return rpc_error(StatusCode::CONFLICT, None, &error);
        }
        Err(err) => return store_unavailable(err).into_response(),
    };
    let changes = mcp.features.as_ref().map(|features| (mcp.changes.subscribe(), features.access.clone()));
    sse::response(holding(standalone(mcp, session, claim, changes, principal), slot), &mcp.open_streams)
}

type Changes = (tokio::sync::broadcast::Receiver<ChangeEvent>, Option<Arc<dyn super::context::AccessControl>>);

/// The standalone stream: priming (2025-11-25+), then change notifications the session may
/// hear, keep-alives, until the session ends or the server shuts down. Its claim (one per
/// session, across instances) is renewed while it is open.
fn standalone(
    mcp: &Arc<Mcp>,
    session: Arc<Session>,
    claim: super::session::StandaloneGuard,
    changes: Option<Changes>,
    principal: Option<Principal>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(16);
    let keepalive = mcp.config.sse_keepalive;
    let retry_ms = mcp.config.sse_retry_ms;
    let shutdown = mcp.shutdown.wait();
    let capabilities = mcp.capabilities().clone();
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut renewals = tokio::time::interval(super::session::StandaloneGuard::RENEW_EVERY);
        renewals.tick().await;
        let mut sequence = 0u64;
        let mut next_id = || {
            sequence += 1;
            Session::standalone_event_id(sequence)
        };
        if session.version.supports_polling() && tx.send(sse::priming(&next_id(), retry_ms)).await.is_err() {
            return;
        }
        let (mut receiver, access) = match changes {
            Some((receiver, access)) => (Some(receiver), access),
            None => (None, None),
        };
        loop {
            let event = async {
                match &mut receiver {
                    Some(r) => r.recv().await.ok(),
                    None => std::future::pending().await,
                }
            };
            let tick = async {
                match keepalive {
                    Some(period) => tokio::time::sleep(period).await,
                    None => std::future::pending().await,
                }
            };
            let frame = tokio::select! {
                event = event => match event {
                    Some(event) if wanted(&session, &capabilities, &event, access.as_deref(), principal.as_ref()) => {
                        let mut params = Map::new();
                        if let ChangeEvent::ResourceUpdated(uri) = &event {
                            params.insert("uri".into(), json!(&**uri));
                        }
                        let frame = super::jsonrpc::notification_frame(event.method(), Value::Object(params));
                        sse::event(Some(&next_id()), &frame)
                    }
                    _ => continue,
                },
                _ = tick => sse::KEEPALIVE,
                _ = renewals.tick() => {
                    claim.renew().await;
                    continue;
                }
                _ = session.closed.cancelled() => return,
                _ = &mut shutdown => return,
                _ = tx.closed() => return,
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) })
}

/// Whether a change goes to this session: list changes it has the capability for, resource
/// updates for URIs it subscribed to and may read.
fn wanted(
    session: &Session,
    capabilities: &super::ServerCapabilities,
    event: &ChangeEvent,
    access: Option<&dyn super::context::AccessControl>,
    principal: Option<&Principal>,
) -> bool {
    match event {
        ChangeEvent::ToolsListChanged => capabilities.tools.is_some_and(|c| c.list_changed),
        ChangeEvent::PromptsListChanged => capabilities.prompts.is_some_and(|c| c.list_changed),
        ChangeEvent::ResourcesListChanged => capabilities.resources.is_some_and(|c| c.list_changed),
        ChangeEvent::ResourceUpdated(uri) => {
            session.is_subscribed(uri) && access.is_none_or(|a| a.allows(principal, Item::Resource(uri)))
        }
    }
}

/// `DELETE /mcp`: the client ends its session, for every instance.
pub(super) async fn end_session(mcp: &Arc<Mcp>, principal: Option<Principal>, headers: HeaderMap) -> Response {
    let session = match session_for(mcp, &headers, principal.as_ref()).await {
        Ok(session) => session,
        Err(refusal) => return refusal.response(None),
    };
    if let Err(refusal) = mcp.sessions.remove(&session).await {
        return refusal.into_response();
    }
    tracing::info!(session = %session.id, "session ended by client");
    StatusCode::NO_CONTENT.into_response()
}
