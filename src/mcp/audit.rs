//! The audit trail: one log line (target `audit`) per tool call, prompt get and resource read,
//! with who, what, the outcome and how long it took. Never the token; the arguments only when
//! `log.audit_arguments` says so, since they may carry personal data.

use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::dispatch::{McpError, McpReply, McpRequest};

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
    S: tower::Service<McpRequest, Response = McpReply, Error = McpError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = McpReply;
    type Error = McpError;
    type Future = BoxFuture<'static, Result<McpReply, McpError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), McpError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: McpRequest) -> Self::Future {
        let (method, target_key) = match request.method.as_str() {
            "tools/call" => ("tools/call", "name"),
            "prompts/get" => ("prompts/get", "name"),
            "resources/read" => ("resources/read", "uri"),
            // Lists and completions are not audited: they read definitions, not data.
            _ => return Box::pin(self.inner.call(request)),
        };
        let target = request.params.get(target_key).and_then(Value::as_str).unwrap_or("").to_owned();
        // The principal itself (a reference count), not a copy of its subject.
        let caller = request.ctx.principal.clone();
        let arguments = self.log_arguments.then(|| request.params.get("arguments").cloned()).flatten();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let outcome = match &result {
                Ok(McpReply::Complete { result, .. }) if result.get("isError") == Some(&Value::Bool(true)) => {
                    "tool_error"
                }
                Ok(McpReply::Complete { .. }) => "ok",
                Ok(McpReply::InputRequired(_)) => "input_required",
                Err(McpError::Refused(_) | McpError::InsufficientScope(_)) => "refused",
                Err(McpError::Rpc(_)) => "error",
            };
            // Whole microseconds: an integer formats in a tenth of the instructions of a float.
            let duration_us = started.elapsed().as_micros() as u64;
            let subject = caller.as_ref().map_or("-", |p| p.subject.as_str());
            match arguments {
                Some(arguments) => tracing::info!(
                    target: "audit", subject, operation = method, name = target.as_str(), outcome, duration_us, %arguments
                ),
                None => {
                    tracing::info!(target: "audit", subject, operation = method, name = target.as_str(), outcome, duration_us)
                }
            }
            result
        })
    }
}
