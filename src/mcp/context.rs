//! What a handler knows about the request it serves, and how it talks back while it runs
//! (progress and log notifications on the request's own response stream).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::downstream::{Downstream, DownstreamToken, ExchangeError};
use super::jsonrpc::{Id, RpcError, code, notification_frame};
use super::protocol::{ClientCapabilities, LogLevel};
use super::version::Era;
use crate::error::AppError;
use crate::principal::Principal;

/// A message produced while a request runs, before its result.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A serialised JSON-RPC notification or (legacy only) server-to-client request.
    Frame(Bytes),
    /// End the current SSE connection without ending the stream; the client resumes with
    /// `Last-Event-ID` (SEP-1699 polling, legacy 2025-11-25 sessions only).
    CloseConnection,
}

/// Everything about one MCP request that is not its params.
#[derive(Clone)]
pub struct RequestContext {
    /// The JSON-RPC id of the request.
    pub request_id: Id,
    /// The era the request is served in.
    pub era: Era,
    /// The protocol version in force for this request.
    pub protocol_version: &'static str,
    /// The authenticated caller, when the `jwt` layer is on.
    pub principal: Option<Principal>,
    /// Capabilities the client declared (per request in the modern era, at `initialize` in the
    /// legacy one).
    pub client_capabilities: Arc<ClientCapabilities>,
    /// `_meta.progressToken`, if the client asked for progress.
    pub progress_token: Option<Value>,
    /// The lowest log level the client wants for this request; `None` = no log notifications.
    pub log_level: Option<LogLevel>,
    /// Cancelled when the client gives up on the request (modern: closes the stream; legacy:
    /// `notifications/cancelled`) or the server shuts down.
    pub cancellation: CancellationToken,
    /// Per-item access decisions, installed by an authorization layer.
    pub access: Option<Arc<dyn AccessControl>>,
    pub(crate) outbox: Option<mpsc::Sender<Outbound>>,
    /// The token exchange and the caller's token, when an exchange is configured (see
    /// [`super::downstream`]); never handed to tools as such.
    pub(crate) downstream: Option<Downstream>,
}

impl RequestContext {
    /// A context with no stream, no caller and no capabilities: for tests and direct calls.
    pub fn detached(request_id: Id, era: Era) -> Self {
        RequestContext {
            request_id,
            era,
            protocol_version: match era {
                Era::Modern => super::version::MODERN_VERSIONS[0],
                Era::Legacy => super::version::LEGACY_VERSIONS[0],
            },
            principal: None,
            client_capabilities: Arc::default(),
            progress_token: None,
            log_level: None,
            cancellation: CancellationToken::new(),
            access: None,
            outbox: None,
            downstream: None,
        }
    }

    async fn send(&self, frame: Vec<u8>) {
        if let Some(outbox) = &self.outbox {
            // A closed outbox means the stream is gone; the notification has nowhere to go.
            let _ = outbox.send(Outbound::Frame(Bytes::from(frame))).await;
        }
    }

    /// Sends `notifications/progress` when the client asked for progress. `progress` must
    /// increase from one call to the next.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = Map::new();
        params.insert("progressToken".into(), token.clone());
        params.insert("progress".into(), json!(progress));
        if let Some(total) = total {
            params.insert("total".into(), json!(total));
        }
        if let Some(message) = message {
            params.insert("message".into(), json!(message));
        }
        self.send(notification_frame("notifications/progress", Value::Object(params))).await;
    }

    /// Sends `notifications/message` when `level` is at or above what the client asked for.
    pub async fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) {
        if self.log_level.is_none_or(|wanted| level < wanted) {
            return;
        }
        let mut params = Map::new();
        params.insert("level".into(), json!(level));
        if let Some(logger) = logger {
            params.insert("logger".into(), json!(logger));
        }
        params.insert("data".into(), data);
        self.send(notification_frame("notifications/message", Value::Object(params))).await;
    }

    /// Ends the current SSE connection so the client reconnects and resumes (SEP-1699). Only
    /// legacy sessions of 2025-11-25 or later support this; elsewhere it does nothing.
    pub async fn close_sse_connection(&self) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(Outbound::CloseConnection).await;
        }
    }

    /// A token for the downstream API `audience` with `scopes`, exchanged for the caller's
    /// token (RFC 8693) and cached; the caller's own token never leaves this server.
    pub async fn downstream_token(&self, audience: &str, scopes: &[&str]) -> Result<DownstreamToken, ExchangeError> {
        match &self.downstream {
            Some(downstream) => downstream.token(self.principal.as_ref(), audience, scopes).await,
            None => Err(ExchangeError::NotConfigured),
        }
    }

    /// The error for a resource that does not exist, with the code of this request's era
    /// (-32602 since 2026-07-28, -32002 before).
    pub fn resource_not_found(&self, uri: &str) -> RpcError {
        let code = match self.era {
            Era::Modern => code::INVALID_PARAMS,
            Era::Legacy => code::RESOURCE_NOT_FOUND_LEGACY,
        };
        RpcError::new(code, format!("Resource not found: {uri}")).with_data(json!({ "uri": uri }))
    }
}
/// A primitive a caller may or may not be allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Tool(&'a str),
    Prompt(&'a str),
    /// A resource by URI, or a resource template by its URI template.
    Resource(&'a str),
}

/// An authorization policy: which operations and items a caller may use.
pub trait AccessControl: Send + Sync + 'static {
    /// Decides an operation before it runs (for `tools/call`, `prompts/get`, `resources/read`
    /// the item is known from `params`). A refusal is an HTTP-level answer (403 with a step-up
    /// challenge).
    fn authorize(
        &self,
        principal: Option<&Principal>,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<(), AppError>;
    /// The refusal for an operation that found out while running that it needs more scopes
    /// than the caller has (a handler-raised challenge).
    fn challenge(&self, principal: Option<&Principal>, needed: &[String]) -> AppError;
    /// Whether `principal` may use `item`.
    fn allows(&self, principal: Option<&Principal>, item: Item<'_>) -> bool;
    /// What using `item` requires, advertised in the item's `_meta` (for example its scopes).
    fn requirements(&self, item: Item<'_>) -> Option<Value>;
}

impl RequestContext {
    /// Whether the caller may use `item` (always, when no authorization layer is on).
    pub fn may_use(&self, item: Item<'_>) -> bool {
        self.access.as_ref().is_none_or(|access| access.allows(self.principal.as_ref(), item))
    }

    /// What `item` requires, to advertise in its listing.
    pub fn requirements(&self, item: Item<'_>) -> Option<Value> {
        self.access.as_ref().and_then(|access| access.requirements(item))
    }

    /// Whether lists answered to this request depend on the caller.
    pub fn lists_are_private(&self) -> bool {
        self.access.is_some()
    }
}
