//! The audit trail: one log line (target `audit`) per tool call, prompt get and resource read,
//! with who, what, the outcome and how long it took. Never the token; the arguments only when
//! `log.audit_arguments` says so, since they may carry personal data.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use serde_json::Value;

use super::dispatch::{McpError, McpReply, McpRequest};
use crate::principal::Principal;

/// Wraps the feature service with the audit trail.
#[derive(Clone, Copy, Debug)]
pub struct AuditLayer {
    pub log_arguments: bool,
}

impl<S> tower::Layer<S> for AuditLayer {
    type Service = Audit<S>;
    fn layer(&self, inner: S) -> Audit<S> {
        Audit { inner, log_arguments: self.log_arguments }
    }
}

/// See [`AuditLayer`].
#[derive(Clone, Debug)]
pub struct Audit<S> {
    inner: S,
    log_arguments: bool,
}

impl<S> tower::Service<McpRequest> for Audit<S>
where
    S: tower::Service<McpRequest, Response = McpReply, Error = McpError>,
{
    type Response = McpReply;
    type Error = McpError;
    type Future = Audited<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), McpError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: McpRequest) -> Self::Future {
        let (operation, target_key) = match request.method.as_str() {
            "tools/call" => ("tools/call", "name"),
            "prompts/get" => ("prompts/get", "name"),
            "resources/read" => ("resources/read", "uri"),
            // Lists and completions are not audited: they read definitions, not data.
            _ => return Audited { response: self.inner.call(request), entry: None },
        };
        let entry = Entry {
            operation,
            target: request.params.get(target_key).and_then(Value::as_str).unwrap_or("").to_owned(),
            // The principal itself (a reference count), not a copy of its subject.
            caller: request.ctx.principal.clone(),
            arguments: self.log_arguments.then(|| request.params.get("arguments").cloned()).flatten(),
            started: Instant::now(),
        };
        Audited { response: self.inner.call(request), entry: Some(entry) }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Audit`]: the inner service's, logged when it completes (a
    /// plain struct, not a box, so the layer adds no allocation).
    pub struct Audited<F> {
        #[pin]
        response: F,
        entry: Option<Entry>,
    }
}

impl<F: Future<Output = Result<McpReply, McpError>>> Future for Audited<F> {
    type Output = Result<McpReply, McpError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.response.poll(cx));
        if let Some(entry) = this.entry.take() {
            entry.log(&result);
        }
        Poll::Ready(result)
    }
}

/// One operation's line, written when it completes.
struct Entry {
    operation: &'static str,
    target: String,
    caller: Option<Principal>,
    arguments: Option<Value>,
    started: Instant,
}

impl Entry {
    fn log(self, result: &Result<McpReply, McpError>) {
        let outcome = match result {
            Ok(McpReply::Complete { result, .. }) if result.get("isError") == Some(&Value::Bool(true)) => "tool_error",
            Ok(McpReply::Tool(result)) if result.is_error => "tool_error",
            Ok(McpReply::Complete { .. } | McpReply::Tool(_)) => "ok",
            Ok(McpReply::InputRequired(_)) => "input_required",
            Err(McpError::Refused(_) | McpError::InsufficientScope(_)) => "refused",
            Err(McpError::Rpc(_)) => "error",
        };
        // Whole microseconds: an integer formats in a tenth of the instructions of a float.
        let duration_us = self.started.elapsed().as_micros() as u64;
        let subject = self.caller.as_ref().map_or("-", |p| p.subject.as_str());
        let (operation, name) = (self.operation, self.target.as_str());
        match self.arguments {
            Some(arguments) => {
                tracing::info!(target: "audit", subject, operation, name, outcome, duration_us, %arguments)
            }
            None => tracing::info!(target: "audit", subject, operation, name, outcome, duration_us),
        }
    }
}
