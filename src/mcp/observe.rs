//! Each JSON-RPC request and notification POSTed to `/mcp`, observed once, where its method is
//! known (feature `mcp`): its duration in `mcp.server.operation.duration` (while metrics are
//! recorded, see [`crate::observe`]) and, while traces are exported, an MCP server span with the
//! semantic conventions' attributes. That span's parent is the `traceparent` in the request's
//! `params._meta` when it has one (linked to the HTTP request's span), else the HTTP request's
//! span. With neither metrics nor traces on, the transport skips all of it.
//!
//! How the outcome is learnt across both eras without reaching into them: the transport runs the
//! operation with an [`OutcomeSlot`] in a task-local; whatever writes a JSON-RPC error for it
//! reports the code ([`super::jsonrpc::error_frame`]), and the [`OutcomeLayer`] on the feature
//! service reports what only a result says (`isError`, a refusal), from whichever task the work
//! finishes on. The first problem reported wins; with none, the HTTP status decides. A streamed
//! answer is measured when its stream ends.
//!
//! A 2025-03-26 JSON-RPC batch is not observed message by message.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tracing::Span;
use tracing::field::Empty;
use tracing::instrument::Instrument;

use super::Mcp;
use super::context::Item;
use super::dispatch::{McpError, McpReply, McpRequest};
use super::jsonrpc::{Message, Params};
use super::version::{self, Era, LegacyVersion};
use crate::observe::{self, McpOperation, OTHER, OUTCOME, Outcome, OutcomeSlot};
use crate::principal::Principal;
use crate::telemetry::TraceContext;

/// Traces of MCP operations: how spans adopt a caller's trace, and whether they name the caller.
#[derive(Clone)]
pub struct Tracing {
    pub context: Arc<dyn TraceContext>,
    /// Record the principal's subject as `enduser.id` (`telemetry.include_subject`).
    pub include_subject: bool,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing").field("include_subject", &self.include_subject).finish_non_exhaustive()
    }
}

/// Methods whose names are label values as they are; any other method is [`OTHER`].
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/roots/list_changed",
    "notifications/progress",
    "logging/setLevel",
    "server/discover",
    "subscriptions/listen",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
];

/// One MCP request or notification being served.
pub(super) struct Operation {
    labels: McpOperation,
    started: Instant,
    slot: Arc<OutcomeSlot>,
    /// `Span::none()` unless traces are exported.
    span: Span,
    metrics: bool,
    initialize: bool,
}

impl Operation {
    /// Starts observing `message`, or `None` when nothing is observed (metrics and traces off,
    /// or a client's response, which is not an operation of its own).
    pub(super) fn begin(
        mcp: &Mcp,
        message: &Message,
        era: Era,
        headers: &HeaderMap,
        principal: Option<&Principal>,
    ) -> Option<Operation> {
        let metrics = observe::enabled();
        let tracing = mcp.config.tracing.as_ref();
        if !metrics && tracing.is_none() {
            return None;
        }
        let (id, method, params) = match message {
            Message::Request { id, method, params } => (Some(id), method, params),
            Message::Notification { method, params } => (None, method, params),
            Message::Response { .. } => return None,
        };
        let method_label = METHODS.iter().find(|known| **known == method).copied().unwrap_or(OTHER);
        // Only names the server offers become label values.
        let offered = |item: Item<'_>| mcp.features.as_ref().is_some_and(|f| f.catalog.offers(item));
        let name = params.get("name").and_then(Value::as_str);
        let target = match method_label {
            "tools/call" => Some(("gen_ai.tool.name", name.filter(|name| offered(Item::Tool(name))))),
            "prompts/get" => Some(("gen_ai.prompt.name", name.filter(|name| offered(Item::Prompt(name))))),
            _ => None,
        }
        .map(|(key, name)| (key, name.unwrap_or(OTHER).to_owned()));
        let labels = McpOperation {
            method: method_label,
            era: match era {
                Era::Modern => "modern",
                Era::Legacy => "legacy",
            },
            protocol_version: protocol_version(era, method, params, headers),
            target,
        };
        let span = match tracing {
            Some(tracing) => span(tracing, &labels, id.map(request_id), method, params, headers, principal),
            None => Span::none(),
        };
        Some(Operation {
            initialize: method_label == "initialize",
            labels,
            started: Instant::now(),
            slot: Arc::default(),
            span,
            metrics,
        })
    }

    /// Serves the operation (`handling`) with its outcome slot in scope and inside its span,
    /// and records it when its answer is complete: now, or when a streamed answer ends.
    pub(super) async fn run(self, handling: impl Future<Output = Response>) -> Response {
        let response = OUTCOME.scope(self.slot.clone(), handling.instrument(self.span.clone())).await;
        if self.initialize
            && let Some(session) = response.headers().get(&version::HEADER_SESSION_ID).and_then(|v| v.to_str().ok())
        {
            self.span.record("mcp.session.id", session);
        }
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if !streamed {
            self.finish(response.status());
            return response;
        }
        let status = response.status();
        response.map(|body| Body::new(Streaming { body, operation: Some((self, status)) }))
    }

    /// Records the operation: its metric, and its span's outcome.
    fn finish(self, status: StatusCode) {
        let outcome = self.slot.take().unwrap_or(match status.as_u16() {
            code @ 400.. => Outcome::Status(code),
            _ => Outcome::Ok,
        });
        if self.metrics {
            observe::mcp_operation(&self.labels, outcome, self.started.elapsed());
        }
        if let Some(error_type) = outcome.error_type() {
            self.span.record("error.type", error_type.as_str());
            self.span.record("otel.status_code", "error");
            if let Outcome::Rpc(code) | Outcome::Refused(code) = outcome {
                self.span.record("rpc.response.status_code", code.to_string().as_str());
            }
        }
    }
}

/// `jsonrpc.request.id`: the id as the client wrote it, a string either way.
fn request_id(id: &super::jsonrpc::Id) -> String {
    match id {
        super::jsonrpc::Id::Number(n) => n.to_string(),
        super::jsonrpc::Id::String(s) => s.to_string(),
    }
}

/// `mcp.protocol.version`: the version the request is served in, if it is one we know.
fn protocol_version(era: Era, method: &str, params: &Params, headers: &HeaderMap) -> &'static str {
    let known = |versions: &[&'static str], version: &str| versions.iter().find(|v| **v == version).copied();
    match era {
        Era::Modern => params
            .meta()
            .and_then(|meta| meta.protocol_version.as_ref())
            .and_then(Value::as_str)
            .or_else(|| version::header_version(headers))
            .and_then(|v| known(version::MODERN_VERSIONS, v)),
        // The version `initialize` negotiates (it echoes a known one, else offers the newest).
        Era::Legacy if method == "initialize" => {
            params.get("protocolVersion").and_then(Value::as_str).map(|v| LegacyVersion::negotiate(v).as_str())
        }
        Era::Legacy => match version::header_version(headers) {
            None => Some(version::DEFAULT_LEGACY_VERSION),
            Some(v) => known(version::LEGACY_VERSIONS, v),
        },
    }
    .unwrap_or(OTHER)
}

/// The MCP server span: named `{method} {tool or prompt}`, with the conventions' attributes.
fn span(
    tracing: &Tracing,
    labels: &McpOperation,
    id: Option<String>,
    method: &str,
    params: &Params,
    headers: &HeaderMap,
    principal: Option<&Principal>,
) -> Span {
    // The name only carries a target the server offers (span names must stay few); the
    // attributes carry what the client sent.
    let name = match &labels.target {
        Some((_, target)) if target != OTHER => format!("{} {target}", labels.method),
        _ => labels.method.to_owned(),
    };
    let span = tracing::info_span!(
        "mcp",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        mcp.method.name = method,
        mcp.protocol.version = labels.protocol_version,
        mcp.session.id = Empty,
        mcp_auth.era = labels.era,
        jsonrpc.request.id = id,
        gen_ai.operation.name = Empty,
        gen_ai.tool.name = Empty,
        gen_ai.prompt.name = Empty,
        mcp.resource.uri = Empty,
        enduser.id = Empty,
        error.type = Empty,
        rpc.response.status_code = Empty,
        network.transport = "tcp",
        network.protocol.name = "http",
    );
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    match method {
        "tools/call" => {
            span.record("gen_ai.operation.name", "execute_tool");
            if let Some(tool) = text("name") {
                span.record("gen_ai.tool.name", tool);
            }
        }
        "prompts/get" => {
            if let Some(prompt) = text("name") {
                span.record("gen_ai.prompt.name", prompt);
            }
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            if let Some(uri) = text("uri") {
                span.record("mcp.resource.uri", uri);
            }
        }
        _ => {}
    }
    if let Some(session) = headers.get(&version::HEADER_SESSION_ID).and_then(|v| v.to_str().ok()) {
        span.record("mcp.session.id", session);
    }
    if tracing.include_subject
        && let Some(principal) = principal
    {
        span.record("enduser.id", principal.subject.as_str());
    }
    if let Some(meta) = params.meta()
        && let Some(traceparent) = meta.traceparent.as_ref().and_then(Value::as_str)
    {
        let tracestate = meta.tracestate.as_ref().and_then(Value::as_str);
        tracing.context.adopt_meta(&span, traceparent, tracestate);
    }
    span
}

/// A streamed answer's body: the operation is recorded when it is dropped (the stream ended, or
/// the client went away).
struct Streaming {
    body: Body,
    operation: Option<(Operation, StatusCode)>,
}

impl http_body::Body for Streaming {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if let Some((operation, status)) = self.operation.take() {
            operation.finish(status);
        }
    }
}

/// Reports what only a feature method's result says about its outcome (a tool's `isError`, a
/// refusal, an error), into the slot of the operation it serves, whichever task finishes it.
/// The composition root puts it outermost on the feature service, and only while something is
/// observed.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutcomeLayer;

impl<S> tower::Layer<S> for OutcomeLayer {
    type Service = Outcomes<S>;
    fn layer(&self, inner: S) -> Outcomes<S> {
        Outcomes { inner }
    }
}

/// See [`OutcomeLayer`].
#[derive(Clone, Debug)]
pub struct Outcomes<S> {
    inner: S,
}

impl<S> tower::Service<McpRequest> for Outcomes<S>
where
    S: tower::Service<McpRequest, Response = McpReply, Error = McpError>,
{
    type Response = McpReply;
    type Error = McpError;
    type Future = Reported<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), McpError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: McpRequest) -> Self::Future {
        // Taken now: a legacy stream's work goes on in a task of its own, outside the scope.
        let slot = OUTCOME.try_with(Arc::clone).ok();
        Reported { response: self.inner.call(request), slot }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Outcomes`].
    pub struct Reported<F> {
        #[pin]
        response: F,
        slot: Option<Arc<OutcomeSlot>>,
    }
}

impl<F: Future<Output = Result<McpReply, McpError>>> Future for Reported<F> {
    type Output = Result<McpReply, McpError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.response.poll(cx));
        if let Some(slot) = this.slot.take() {
            slot.report(outcome_of(&result));
        }
        Poll::Ready(result)
    }
}

/// What a feature method's result says about its outcome.
fn outcome_of(result: &Result<McpReply, McpError>) -> Outcome {
    match result {
        Ok(McpReply::Tool(result)) if result.is_error => Outcome::ToolError,
        Ok(McpReply::Complete { result, .. }) if result.get("isError") == Some(&Value::Bool(true)) => {
            Outcome::ToolError
        }
        Ok(_) => Outcome::Ok,
        Err(McpError::Rpc(error)) => Outcome::Rpc(error.code),
        Err(McpError::Refused(refusal)) => Outcome::Refused(refusal.rpc_code()),
        Err(McpError::InsufficientScope(_)) => {
            Outcome::Refused(crate::error::AppError::Forbidden(Default::default()).rpc_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::protocol::{CallToolResult, Content};

    #[test]
    fn a_tool_result_with_is_error_is_a_tool_error_and_a_refusal_is_refused() {
        let failed =
            CallToolResult { content: vec![Content::text("no")], structured_content: None, is_error: true, meta: None };
        assert_eq!(outcome_of(&Ok(McpReply::Tool(failed))), Outcome::ToolError);
        assert_eq!(outcome_of(&Err(McpError::InsufficientScope(vec!["mcp:tools".into()]))), Outcome::Refused(-31403));
        let error = super::super::jsonrpc::RpcError::invalid_params("nope");
        assert_eq!(outcome_of(&Err(McpError::Rpc(error))), Outcome::Rpc(-32602));
    }
}
