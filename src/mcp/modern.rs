//! The modern era (2026-07-28): stateless. Every request carries its own envelope in `_meta`
//! (protocol version, client capabilities), mirrored in HTTP headers that must agree with it.
//! There is no handshake, no session and no GET stream; `server/discover` describes the server
//! and `subscriptions/listen` delivers change notifications.
//!
//! The validation ladder, in the order the spec and the conformance suite require:
//! envelope (-32602) -> routing headers (-32020) -> version (-32022) -> method (-32601, 404).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::bus::ChangeEvent;
use super::context::{Item, Outbound, RequestContext};
use super::dispatch::{
    CacheScope, McpError, McpFuture, McpReply, McpRequest, feature_method_offered, may_require_input,
};
use super::downstream::Downstream;
use super::headers::check_routing_headers;
use super::http::{Post, Start, json_bytes, modern_status, outbox, rpc_error, start};
use super::jsonrpc::{Id, Message, RequestMeta, RpcError, code, error_frame, notification_frame};
use super::protocol::{CallToolResult, ClientCapabilities, InputRequired, LogLevel, ServerCapabilities};
use super::sse;
use super::state;
use super::version::{
    Era, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, META_SERVER_INFO, META_SUBSCRIPTION_ID, MODERN_VERSIONS,
    header_version,
};
use super::{Mcp, McpConfig};
use crate::error::AppError;
use crate::principal::Principal;

/// What the per-request envelope established.
struct Envelope {
    version: &'static str,
    client_capabilities: ClientCapabilities,
    log_level: Option<LogLevel>,
    progress_token: Option<Value>,
}

/// Serves one modern message.
pub(super) async fn handle(mcp: &Arc<Mcp>, post: Post, message: Message) -> Response {
    let (id, method, params) = match message {
        Message::Request { id, method, params } => (id, method, params),
        // The core protocol defines no client notifications over HTTP any more; accept and drop.
        Message::Notification { .. } => return StatusCode::ACCEPTED.into_response(),
        Message::Response { id, .. } => {
            let error = RpcError::invalid_request("responses are only accepted within a legacy session");
            return rpc_error(StatusCode::BAD_REQUEST, Some(&id), &error);
        }
    };
    let (meta, params) = params.into_parts();
    let envelope = match validate(mcp, &post, &method, &params, meta) {
        Ok(envelope) => envelope,
        Err(error) => return rpc_error(modern_status(&error), Some(&id), &error),
    };
    match method.as_str() {
        "server/discover" => json_bytes(StatusCode::OK, super::jsonrpc::result_frame(&id, &mcp.discover)),
        "subscriptions/listen" => listen(mcp, &post, id, &params),
        _ => match (&mcp.features, feature_method_offered(&method, mcp.capabilities())) {
            (Some(_), Some(true)) => call(mcp, post, id, method, params, envelope).await,
            _ => {
                let error = RpcError::method_not_found(&method);
                rpc_error(StatusCode::NOT_FOUND, Some(&id), &error)
            }
        },
    }
}

/// The envelope, header and version checks.
fn validate(
    mcp: &Mcp,
    post: &Post,
    method: &str,
    params: &Map<String, Value>,
    meta: RequestMeta,
) -> Result<Envelope, RpcError> {
    let RequestMeta { protocol_version: version, client_capabilities: capabilities, log_level, progress_token, .. } =
        meta;
    let mut missing = Vec::new();
    if version.is_none() {
        missing.push(META_PROTOCOL_VERSION);
    }
    if capabilities.is_none() {
        missing.push(META_CLIENT_CAPABILITIES);
    }
    if !missing.is_empty() {
        return Err(RpcError::invalid_params(format!(
            "Invalid params: missing required envelope key(s) in _meta: {}",
            missing.join(", ")
        )));
    }
    let Some(Value::String(version)) = &version else {
        return Err(RpcError::invalid_params(format!(
            "Invalid params: _meta.{META_PROTOCOL_VERSION} must be a string"
        )));
    };
    let Some(Value::Object(capabilities)) = capabilities else {
        return Err(RpcError::invalid_params(format!(
            "Invalid params: _meta.{META_CLIENT_CAPABILITIES} must be an object"
        )));
    };
    let version = version.as_str();

    // Headers before the version check: a body naming an unknown version under a header that
    // names a known one is a mismatch, not an unsupported version.
    match header_version(&post.headers) {
        None => {
            return Err(RpcError::header_mismatch("Header mismatch: MCP-Protocol-Version header is required"));
        }
        Some(header) if header != version => {
            return Err(RpcError::header_mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value '{header}' does not match body value '{version}'"
            )));
        }
        Some(_) => {}
    }
    let header_params = match (&mcp.features, method, params.get("name").and_then(Value::as_str)) {
        (Some(features), "tools/call", Some(tool)) => features.catalog.header_params(tool),
        _ => Arc::from([]),
    };
    check_routing_headers(&post.headers, method, params, &header_params)?;

    let Some(version) = MODERN_VERSIONS.iter().find(|v| **v == version) else {
        return Err(RpcError::new(code::UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
            .with_data(json!({ "supported": MODERN_VERSIONS, "requested": version })));
    };

    let log_level = match log_level {
        None => None,
        Some(level) => Some(
            LogLevel::parse(&level)
                .ok_or_else(|| RpcError::invalid_params(format!("Invalid params: unknown log level {level}")))?,
        ),
    };
    Ok(Envelope { version, client_capabilities: ClientCapabilities(capabilities), log_level, progress_token })
}

/// The `server/discover` result: versions, capabilities, instructions, serverInfo. It never
/// changes while the server runs, so it is built once, at start-up.
pub(super) fn discover(config: &McpConfig, capabilities: &ServerCapabilities) -> Value {
    let mut result = Map::new();
    result.insert("supportedVersions".into(), json!(MODERN_VERSIONS));
    let mut capabilities = json!(capabilities);
    if !config.extensions.is_empty() {
        capabilities["extensions"] = Value::Object(config.extensions.clone());
    }
    result.insert("capabilities".into(), capabilities);
    if let Some(instructions) = &config.instructions {
        result.insert("instructions".into(), json!(instructions));
    }
    let mut meta = config.discovery_meta.clone();
    meta.insert(META_SERVER_INFO.into(), json!(config.server_info));
    result.insert("_meta".into(), Value::Object(meta));
    result.insert("resultType".into(), json!("complete"));
    result.insert("ttlMs".into(), json!(config.list_ttl_ms));
    result.insert("cacheScope".into(), json!(CacheScope::Public));
    Value::Object(result)
}

/// A feature method: answered with JSON, or with an SSE stream once it sends a notification.
/// Closing that stream cancels the work.
async fn call(
    mcp: &Arc<Mcp>,
    post: Post,
    id: Id,
    method: String,
    mut params: Map<String, Value>,
    envelope: Envelope,
) -> Response {
    let features = mcp.features.as_ref().expect("checked by the caller");
    let opened = if may_require_input(&method) {
        match open_input(mcp, &method, &mut params, post.principal.as_ref(), &id).await {
            Ok(opened) => opened,
            Err(refusal) => return refusal,
        }
    } else {
        None
    };
    let seal = SealFor {
        target: state::binding(&method, &params, None).target.to_owned(),
        arguments: params.get("arguments").cloned(),
        principal: post.principal.clone(),
        opened,
    };
    // In this era a handler can only send the progress and log notifications the request asked
    // for in its `_meta`; a request that asked for neither needs no channel (most calls).
    let may_notify = envelope.progress_token.is_some() || envelope.log_level.is_some();
    let (sender, mut receiver) = outbox(post.accepts.sse && may_notify);
    let cancellation = CancellationToken::new();
    let client_capabilities = Arc::new(envelope.client_capabilities);
    let downstream = Downstream::for_request(mcp.config.token_exchange.as_ref(), &post.headers);
    let ctx = RequestContext {
        request_id: id.clone(),
        era: Era::Modern,
        protocol_version: envelope.version,
        principal: post.principal,
        client_capabilities: client_capabilities.clone(),
        progress_token: envelope.progress_token,
        log_level: envelope.log_level,
        cancellation: cancellation.clone(),
        access: None,
        outbox: sender,
        downstream,
    };
    let request = McpRequest { method: method.clone(), params, ctx };
    let mut pending = features.service.handle(request);
    // Dropping the guard (the client closed the stream, or the connection went away while we
    // waited) cancels the request: in this era, closing the stream is the cancellation.
    let guard = cancellation.drop_guard();
    let finish = Finish { mcp: mcp.clone(), id, method, client_capabilities, seal };
    match start(&mut pending, &mut receiver, post.accepts).await {
        Start::Json(result) => finish.response(result),
        Start::Stream { first, result } => {
            let state = Drive {
                pending: if result.is_some() { None } else { Some(pending) },
                receiver,
                queued: first.into_iter().collect(),
                result,
                finish: Some(finish),
                _guard: guard,
            };
            sse::response(futures_util::stream::unfold(state, Drive::next), &mcp.open_streams)
        }
    }
}

/// Checks the multi-round-trip fields of a retry: `inputResponses` must be an object of
/// objects, and a `requestState` must be one we sealed for this very request and caller, not
/// used before on any instance. The verified inner state replaces the sealed one, so handlers
/// only ever see their own. A refusal is the whole response.
async fn open_input(
    mcp: &Mcp,
    method: &str,
    params: &mut Map<String, Value>,
    principal: Option<&Principal>,
    id: &Id,
) -> Result<Option<state::Opened>, Response> {
    let refuse = |error: RpcError| rpc_error(modern_status(&error), Some(id), &error);
    if let Some(responses) = params.get("inputResponses") {
        let well_formed = responses.as_object().is_some_and(|r| r.values().all(Value::is_object));
        if !well_formed {
            let error = RpcError::invalid_params("Invalid params: inputResponses must map keys to result objects");
            return Err(refuse(error));
        }
    }
    let Some(token) = params.get("requestState") else { return Ok(None) };
    let invalid = || {
        RpcError::invalid_params("Invalid or expired requestState")
            .with_data(json!({ "reason": "invalid_request_state" }))
    };
    let token = token.as_str().ok_or_else(|| refuse(invalid()))?.to_owned();
    let opened = mcp.sealer.open(&state::binding(method, params, principal), &token).map_err(|reason| {
        tracing::info!(?reason, method, "requestState refused");
        refuse(invalid())
    })?;
    match state::StateSealer::claim(&*mcp.store, &opened).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(reason = ?state::Rejection::Replayed, method, "requestState refused");
            return Err(refuse(invalid()));
        }
        Err(err) => {
            tracing::error!(%err, "the store failed while a requestState was checked");
            return Err(AppError::Unavailable("the store is unavailable").into_response_with_id(Some(id.to_value())));
        }
    }
    match &opened.inner {
        Some(inner) => params.insert("requestState".into(), Value::String(inner.clone())),
        None => params.remove("requestState"),
    };
    Ok(Some(opened))
}

/// What a handler's `requestState` gets sealed against, and the state this request came with.
struct SealFor {
    target: String,
    arguments: Option<Value>,
    principal: Option<Principal>,
    opened: Option<state::Opened>,
}

/// Turns a call's outcome into the final message of its request.
struct Finish {
    mcp: Arc<Mcp>,
    id: Id,
    method: String,
    client_capabilities: Arc<ClientCapabilities>,
    seal: SealFor,
}

impl Finish {
    fn result(&self, reply: McpReply) -> Result<WireResult<'_>, RpcError> {
        let (body, result_type, cache) = match reply {
            McpReply::Complete { result, cache } => {
                (Members::Map(result), "complete", cache.map(|scope| (self.mcp.config.list_ttl_ms, scope)))
            }
            McpReply::Tool(result) => (Members::Tool(result), "complete", None),
            McpReply::InputRequired(input) => (Members::Map(self.input_required(input)?), "input_required", None),
        };
        Ok(WireResult { body, result_type, cache, server_info: &self.mcp.server_info_json })
    }

    /// Checks an `input_required` answer against the rules a handler could break: only three
    /// methods may ask, something must be asked, and never what the client did not declare.
    fn input_required(&self, input: InputRequired) -> Result<Map<String, Value>, RpcError> {
        if !may_require_input(&self.method) {
            tracing::error!(method = %self.method, "handler asked for input on a method that cannot");
            return Err(RpcError::internal("Internal error"));
        }
        if input.input_requests.is_empty() && input.request_state.is_none() {
            tracing::error!(method = %self.method, "input_required result with neither requests nor state");
            return Err(RpcError::internal("Internal error"));
        }
        for request in input.input_requests.values() {
            let needed = request.required_capability();
            if !self.client_capabilities.satisfies(&needed) {
                return Err(RpcError::missing_client_capability(needed));
            }
        }
        let binding = state::Binding {
            method: &self.method,
            target: &self.seal.target,
            arguments: self.seal.arguments.as_ref(),
            principal: self.seal.principal.as_ref(),
        };
        let input = InputRequired {
            request_state: Some(self.mcp.sealer.seal(&binding, input.request_state)),
            input_requests: input.input_requests,
        };
        match serde_json::to_value(input) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Ok(Map::new()),
        }
    }

    /// A request refused for authorization never ran: its state stays usable for the retry
    /// the client makes after stepping up.
    fn release_if_refused(&self, outcome: &Result<McpReply, McpError>) {
        if let (Err(McpError::Refused(_) | McpError::InsufficientScope(_)), Some(opened)) = (outcome, &self.seal.opened)
        {
            let (store, opened) = (self.mcp.store.clone(), opened.clone());
            tokio::spawn(async move { state::StateSealer::release(&*store, &opened).await });
        }
    }

    /// The final frame on an SSE stream (errors too: the status line is long gone).
    fn frame(&self, outcome: Result<McpReply, McpError>) -> Vec<u8> {
        self.release_if_refused(&outcome);
        match outcome.map_err(McpError::into_refusal).and_then(|reply| self.result(reply).map_err(Err)) {
            Ok(result) => super::jsonrpc::result_frame(&self.id, &result),
            Err(Err(error)) => error_frame(Some(&self.id), &error),
            Err(Ok(refusal)) => {
                let error = RpcError::new(refusal.rpc_code(), refusal.to_string());
                error_frame(Some(&self.id), &error)
            }
        }
    }

    /// The whole response when answering with JSON.
    fn response(&self, outcome: Result<McpReply, McpError>) -> Response {
        self.release_if_refused(&outcome);
        match outcome.map_err(McpError::into_refusal).and_then(|reply| self.result(reply).map_err(Err)) {
            Ok(result) => json_bytes(StatusCode::OK, super::jsonrpc::result_frame(&self.id, &result)),
            Err(Err(error)) => rpc_error(modern_status(&error), Some(&self.id), &error),
            Err(Ok(refusal)) => refusal.into_response_with_id(Some(self.id.to_value())),
        }
    }
}

/// A modern result as it goes on the wire: the handler's object plus `resultType`, the cache
/// hints and `serverInfo` in `_meta`, added while it is serialised. (Building them into the
/// handler's map first, then copying that into the response's JSON tree, was a fifth of the
/// instructions of a `tools/call`.) Members the handler set under these names are replaced,
/// except `_meta`, whose entries are kept.
struct WireResult<'a> {
    body: Members,
    result_type: &'static str,
    /// `ttlMs` and `cacheScope`, on cacheable results.
    cache: Option<(u64, CacheScope)>,
    /// Serialised once (`Mcp::server_info_json`): copied, not escaped again, per response.
    server_info: &'a RawValue,
}

impl WireResult<'_> {
    fn replaces(&self, key: &str) -> bool {
        match key {
            "resultType" | "_meta" => true,
            "ttlMs" | "cacheScope" => self.cache.is_some(),
            _ => false,
        }
    }

    /// `resultType` and the cache hints.
    fn serialize_added<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("resultType", self.result_type)?;
        if let Some((ttl_ms, scope)) = self.cache {
            map.serialize_entry("ttlMs", &ttl_ms)?;
            map.serialize_entry("cacheScope", &scope)?;
        }
        Ok(())
    }
}

/// A result's own members: a map, or a tool's result as its handler returned it.
enum Members {
    Map(Map<String, Value>),
    Tool(CallToolResult),
}

impl Serialize for WireResult<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let meta = match &self.body {
            Members::Map(body) => {
                for (key, value) in body.iter().filter(|(key, _)| !self.replaces(key)) {
                    map.serialize_entry(key, value)?;
                }
                match body.get("_meta") {
                    None => None,
                    Some(Value::Object(meta)) => Some(meta),
                    // Not an object: the handler's mistake, passed on as it is.
                    Some(meta) => {
                        self.serialize_added(&mut map)?;
                        map.serialize_entry("_meta", meta)?;
                        return map.end();
                    }
                }
            }
            // The members `CallToolResult` serialises, in its order (see the test
            // `tool_results_are_written_as_their_maps_would_be`).
            Members::Tool(result) => {
                map.serialize_entry("content", &result.content)?;
                if let Some(structured) = &result.structured_content {
                    map.serialize_entry("structuredContent", structured)?;
                }
                if result.is_error {
                    map.serialize_entry("isError", &true)?;
                }
                result.meta.as_ref()
            }
        };
        self.serialize_added(&mut map)?;
        map.serialize_entry("_meta", &MetaWithServerInfo { meta, server_info: self.server_info })?;
        map.end()
    }
}

/// A result's `_meta` with `serverInfo` added.
struct MetaWithServerInfo<'a> {
    meta: Option<&'a Map<String, Value>>,
    server_info: &'a RawValue,
}

impl Serialize for MetaWithServerInfo<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.meta.into_iter().flatten().filter(|(key, _)| *key != META_SERVER_INFO) {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry(META_SERVER_INFO, self.server_info)?;
        map.end()
    }
}

/// The state of a request's SSE stream: the running call, its queued notifications, and the
/// result once it arrives.
struct Drive {
    pending: Option<McpFuture>,
    receiver: Option<mpsc::Receiver<Outbound>>,
    queued: VecDeque<Outbound>,
    result: Option<Result<McpReply, McpError>>,
    finish: Option<Finish>,
    _guard: DropGuard,
}

impl Drive {
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        loop {
            if let Some(message) = self.queued.pop_front() {
                match message {
                    Outbound::Frame(frame) => return Some((Ok(sse::event(None, &frame)), self)),
                    // Resumable streams do not exist in this era.
                    Outbound::CloseConnection => continue,
                }
            }
            if let Some(result) = self.result.take() {
                // Notifications sent before the result go first.
                if let Some(receiver) = &mut self.receiver {
                    while let Ok(message) = receiver.try_recv() {
                        self.queued.push_back(message);
                    }
                }
                if !self.queued.is_empty() {
                    self.result = Some(result);
                    continue;
                }
                let finish = self.finish.take()?;
                let frame = finish.frame(result);
                return Some((Ok(sse::event(None, &frame)), self));
            }
            let pending = self.pending.as_mut()?;
            match &mut self.receiver {
                Some(receiver) => tokio::select! {
                    biased;
                    Some(message) = receiver.recv() => self.queued.push_back(message),
                    result = pending => { self.pending = None; self.result = Some(result); }
                },
                None => {
                    let result = pending.await;
                    self.pending = None;
                    self.result = Some(result);
                }
            }
        }
    }
}

/// `subscriptions/listen`: a long-lived SSE stream of the change notifications the client opted
/// in to, each tagged with the listen request's id.
fn listen(mcp: &Arc<Mcp>, post: &Post, id: Id, params: &Map<String, Value>) -> Response {
    let Some(features) = mcp.features.as_ref().filter(|_| mcp.capabilities().has_change_notifications()) else {
        return rpc_error(StatusCode::NOT_FOUND, Some(&id), &RpcError::method_not_found("subscriptions/listen"));
    };
    if let Some(access) = &features.access
        && let Err(refusal) = access.authorize(post.principal.as_ref(), "subscriptions/listen", params)
    {
        return refusal.into_response_with_id(Some(id.to_value()));
    }
    if !post.accepts.sse {
        return AppError::NotAcceptable("subscriptions/listen answers with text/event-stream").into_response();
    }
    let Some(wanted) = params.get("notifications").and_then(Value::as_object) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Some(&id),
            &RpcError::invalid_params("Invalid params: `notifications` must be an object"),
        );
    };
    let Some(slot) = mcp.sessions.stream_slot(None, post.principal.as_ref()) else {
        return AppError::TooManyStreams.into_response_with_id(Some(id.to_value()));
    };
    let filter = Filter::honoured(mcp, wanted);
    let mut ack_params = Map::new();
    ack_params.insert("_meta".into(), json!({ META_SUBSCRIPTION_ID: id.to_value() }));
    ack_params.insert("notifications".into(), filter.to_json());
    let ack = notification_frame("notifications/subscriptions/acknowledged", Value::Object(ack_params));

    let listener = Listener {
        id,
        filter,
        changes: mcp.changes.subscribe(),
        access: features.access.clone(),
        principal: post.principal.clone(),
        keepalive: mcp.config.sse_keepalive,
        shutdown: Box::pin(mcp.shutdown.wait()),
        expiry: Box::pin(token_expiry(post.principal.as_ref().and_then(|p| p.expires_at))),
        server_info: json!(mcp.config.server_info),
        ack: Some(ack),
        ended: false,
        _slot: slot,
    };
    sse::response(futures_util::stream::unfold(listener, Listener::next), &mcp.open_streams)
}

/// Which change notifications a listen stream carries: what the client asked for, limited to
/// what this server can send.
#[derive(Debug, Default)]
struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    resource_uris: Vec<String>,
}

impl Filter {
    fn honoured(mcp: &Mcp, wanted: &Map<String, Value>) -> Self {
        let caps = mcp.capabilities();
        let asked = |key: &str| wanted.get(key).and_then(Value::as_bool).unwrap_or(false);
        Filter {
            tools: asked("toolsListChanged") && caps.tools.is_some_and(|c| c.list_changed),
            prompts: asked("promptsListChanged") && caps.prompts.is_some_and(|c| c.list_changed),
            resources: asked("resourcesListChanged") && caps.resources.is_some_and(|c| c.list_changed),
            resource_uris: if caps.resources.is_some_and(|c| c.subscribe) {
                wanted
                    .get("resourceSubscriptions")
                    .and_then(Value::as_array)
                    .map(|uris| uris.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            },
        }
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        if self.tools {
            out.insert("toolsListChanged".into(), json!(true));
        }
        if self.prompts {
            out.insert("promptsListChanged".into(), json!(true));
        }
        if self.resources {
            out.insert("resourcesListChanged".into(), json!(true));
        }
        if !self.resource_uris.is_empty() {
            out.insert("resourceSubscriptions".into(), json!(self.resource_uris));
        }
        Value::Object(out)
    }

    fn wants(&self, event: &ChangeEvent) -> bool {
        match event {
            ChangeEvent::ToolsListChanged => self.tools,
            ChangeEvent::PromptsListChanged => self.prompts,
            ChangeEvent::ResourcesListChanged => self.resources,
            ChangeEvent::ResourceUpdated(uri) => self.resource_uris.iter().any(|u| **u == **uri),
        }
    }
}

/// Resolves when the caller's token expires, so the stream ends and the client re-opens it with
/// a fresh token; never without a principal or `exp`.
async fn token_expiry(expires_at: Option<i64>) {
    let Some(expires_at) = expires_at else {
        return std::future::pending().await;
    };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(expires_at.saturating_sub(now).max(0) as u64)).await;
}

type Wait = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The state of a listen stream.
struct Listener {
    id: Id,
    filter: Filter,
    changes: broadcast::Receiver<ChangeEvent>,
    access: Option<Arc<dyn super::context::AccessControl>>,
    principal: Option<Principal>,
    keepalive: Option<Duration>,
    shutdown: Wait,
    expiry: Wait,
    server_info: Value,
    ack: Option<Vec<u8>>,
    ended: bool,
    /// This stream's place in its caller's count of open streams.
    _slot: super::session::StreamSlot,
}

impl Listener {
    async fn next(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        if self.ended {
            return None;
        }
        if let Some(ack) = self.ack.take() {
            return Some((Ok(sse::event(None, &ack)), self));
        }
        loop {
            let keepalive = async {
                match self.keepalive {
                    Some(period) => tokio::time::sleep(period).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = self.changes.recv() => match event {
                    Ok(event) if self.filter.wants(&event) && self.may_see(&event) => {
                        let frame = self.notification(&event);
                        return Some((Ok(sse::event(None, &frame)), self));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return self.close(),
                },
                _ = keepalive => return Some((Ok(sse::KEEPALIVE), self)),
                _ = &mut self.shutdown => return self.close(),
                _ = &mut self.expiry => return self.close(),
            }
        }
    }

    /// Resource updates only reach callers allowed to read the resource.
    fn may_see(&self, event: &ChangeEvent) -> bool {
        match (event, &self.access) {
            (ChangeEvent::ResourceUpdated(uri), Some(access)) => {
                access.allows(self.principal.as_ref(), Item::Resource(uri))
            }
            _ => true,
        }
    }

    fn notification(&self, event: &ChangeEvent) -> Vec<u8> {
        let mut params = Map::new();
        params.insert("_meta".into(), json!({ META_SUBSCRIPTION_ID: self.id.to_value() }));
        if let ChangeEvent::ResourceUpdated(uri) = event {
            params.insert("uri".into(), json!(&**uri));
        }
        notification_frame(event.method(), Value::Object(params))
    }

    /// Ends the stream gracefully: the listen request's result, then close.
    fn close(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, Self)> {
        self.ended = true;
        let result = json!({
            "resultType": "complete",
            "_meta": { META_SUBSCRIPTION_ID: self.id.to_value(), META_SERVER_INFO: self.server_info },
        });
        let frame = super::jsonrpc::result_frame(&self.id, &result);
        Some((Ok(sse::event(None, &frame)), self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::protocol::Content;

    fn wire(body: Members) -> Value {
        let server_info = serde_json::value::to_raw_value(&json!({ "name": "s", "version": "1" })).unwrap();
        serde_json::to_value(WireResult { body, result_type: "complete", cache: None, server_info: &server_info })
            .unwrap()
    }

    /// `WireResult` writes a tool's result member by member; this is what the map the result
    /// serialises into would have written. Each case lists every field (no `..Default`), so a
    /// field added to `CallToolResult` fails to compile here until the writer knows it.
    #[test]
    fn tool_results_are_written_as_their_maps_would_be() {
        let mut meta = Map::new();
        meta.insert("mcp-auth-server/subject".into(), json!("u-1"));
        meta.insert(META_SERVER_INFO.into(), json!("the handler's, replaced"));
        let cases = [
            CallToolResult {
                content: vec![Content::text("hello")],
                structured_content: None,
                is_error: false,
                meta: None,
            },
            CallToolResult { content: vec![Content::text("no")], structured_content: None, is_error: true, meta: None },
            CallToolResult {
                content: vec![Content::text("{\"a\":1}")],
                structured_content: Some(json!({ "a": 1 })),
                is_error: false,
                meta: Some(meta),
            },
            CallToolResult { content: Vec::new(), structured_content: Some(json!([])), is_error: true, meta: None },
        ];
        for result in cases {
            let map = serde_json::to_value(&result).unwrap().as_object().unwrap().clone();
            let typed = wire(Members::Tool(result));
            assert_eq!(typed, wire(Members::Map(map)));
            assert_eq!(typed["_meta"][META_SERVER_INFO], json!({ "name": "s", "version": "1" }));
            assert_eq!(typed["resultType"], "complete");
        }
    }
}
