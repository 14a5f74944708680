//! The seam between the protocol layer and the features behind it.
//!
//! The transport (both eras) turns an HTTP request into an [`McpRequest`] and hands it to an
//! [`McpService`], a tower service. The `tools` feature provides that service; the `scopes`
//! feature wraps it in a tower layer. A [`Catalog`] tells the transport what the service offers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tower::ServiceExt;

use super::bus::ChangeEvent;
use super::context::{AccessControl, RequestContext};
use super::headers::HeaderParam;
use super::jsonrpc::RpcError;
use super::protocol::{CallToolResult, InputRequired, ServerCapabilities};
use crate::error::AppError;
use crate::principal::Principal;

/// One operation for the feature service: `tools/list`, `tools/call`, `prompts/get`, ...
pub struct McpRequest {
    pub method: String,
    /// The request's params as sent (including `_meta`, `inputResponses`, `requestState`).
    pub params: Map<String, Value>,
    pub ctx: RequestContext,
}

impl McpRequest {
    /// A required string param, or -32602 naming it.
    pub fn str_param(&self, name: &str) -> Result<&str, McpError> {
        self.params
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::Rpc(RpcError::invalid_params(format!("missing string param `{name}`"))))
    }
}

/// Whether a complete result may be shared between callers by caches (2026-07-28 `cacheScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Holds nothing specific to the caller.
    Public,
    /// Depends on who asked (for example a list filtered by the caller's scopes).
    Private,
}

/// What the feature service answers.
#[derive(Debug)]
pub enum McpReply {
    /// The final result. `cache` is set on cacheable results (lists and reads).
    Complete { result: Map<String, Value>, cache: Option<CacheScope> },
    /// A tool's final result, kept typed until it is written: turned into a map first, as
    /// [`McpReply::complete`] does, building the map and taking it apart again cost 4% of the
    /// instructions of a cached `tools/call`, and nothing but the writer read it.
    Tool(CallToolResult),
    /// The client must supply input and retry (multi round-trip requests).
    InputRequired(InputRequired),
}

impl McpReply {
    /// A complete, non-cacheable result.
    pub fn complete(result: impl Serialize) -> Self {
        McpReply::Complete { result: to_map(result), cache: None }
    }

    /// A complete, cacheable result.
    pub fn cacheable(result: impl Serialize, scope: CacheScope) -> Self {
        McpReply::Complete { result: to_map(result), cache: Some(scope) }
    }
}

fn to_map(value: impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        // Results are objects by construction; anything else is a programming error we answer
        // with an empty result rather than a panic.
        _ => Map::new(),
    }
}

/// Why an operation failed.
#[derive(Debug)]
pub enum McpError {
    /// A JSON-RPC error, answered in the body.
    Rpc(RpcError),
    /// An HTTP-level refusal (403 `insufficient_scope`): a status and `WWW-Authenticate`
    /// challenge, with a JSON-RPC error body.
    Refused(AppError),
    /// A handler found out while running that it needs these scopes too; the authorization
    /// layer turns this into a step-up [`McpError::Refused`].
    InsufficientScope(Vec<String>),
}

impl McpError {
    /// The HTTP-level refusal for this error, if it is one.
    pub(crate) fn into_refusal(self) -> Result<AppError, RpcError> {
        match self {
            McpError::Rpc(error) => Err(error),
            McpError::Refused(refusal) => Ok(refusal),
            McpError::InsufficientScope(needed) => Ok(AppError::Forbidden(crate::error::Challenge {
                error: Some("insufficient_scope"),
                description: Some("additional scopes are required".into()),
                scope: Some(needed.join(" ")),
                resource_metadata: None,
            })),
        }
    }
}

impl From<RpcError> for McpError {
    fn from(error: RpcError) -> Self {
        McpError::Rpc(error)
    }
}

/// What the transport can serve: a tower service for feature operations, cheap to clone (each
/// request runs on a copy of it) and shareable between threads.
pub trait FeatureService:
    tower::Service<McpRequest, Response = McpReply, Error = McpError, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> FeatureService for S where
    S: tower::Service<McpRequest, Response = McpReply, Error = McpError, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The response future of an [`McpService`].
pub type McpFuture = Pin<Box<dyn Future<Output = Result<McpReply, McpError>> + Send>>;

/// The composed feature service as the transport holds it: the whole stack (registry,
/// authorization, audit, ...) behind one `Arc`. Erased once, after the last layer, rather than
/// boxed per layer: a request then copies the stack (a few reference counts, no allocation) and
/// boxes its future once, where a box per layer cost two allocations per layer and request.
#[derive(Clone)]
pub struct McpService(Arc<dyn Handle>);

impl McpService {
    pub fn new(service: impl FeatureService) -> Self {
        McpService(Arc::new(service))
    }

    /// Runs one operation on a copy of the stack.
    pub fn handle(&self, request: McpRequest) -> McpFuture {
        self.0.handle(request)
    }
}

impl tower::Service<McpRequest> for McpService {
    type Response = McpReply;
    type Error = McpError;
    type Future = McpFuture;

    /// Always ready: each call waits for readiness on its own copy of the stack.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), McpError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: McpRequest) -> McpFuture {
        self.handle(request)
    }
}

/// The object-safe face of a [`FeatureService`].
trait Handle: Send + Sync {
    fn handle(&self, request: McpRequest) -> McpFuture;
}

impl<S: FeatureService> Handle for S {
    fn handle(&self, request: McpRequest) -> McpFuture {
        let mut service = self.clone();
        // The feature layers are ready at once (load is shed by the HTTP layers in front of the
        // transport), so asking first, without a waker to wake, usually lets the box hold only the
        // service's future; `oneshot` would also keep the service and the request in it.
        match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Box::pin(service.call(request)),
            Poll::Ready(Err(error)) => Box::pin(std::future::ready(Err(error))),
            Poll::Pending => Box::pin(service.oneshot(request)),
        }
    }
}

/// What the feature layer offers, for the transport: capabilities, `x-mcp-header` bindings
/// per tool, and change notifications.
pub trait Catalog: Send + Sync + 'static {
    fn capabilities(&self) -> ServerCapabilities;
    /// The `x-mcp-header` annotations of `tool`'s input schema (empty if none or unknown).
    fn header_params(&self, tool: &str) -> Arc<[HeaderParam]>;
    /// A receiver of list and resource changes.
    fn changes(&self) -> broadcast::Receiver<ChangeEvent>;
    /// Whether `item` is offered now. Only offered names become metric labels (a client could
    /// send any name); a catalog that cannot tell says no, and the label is `_OTHER`.
    fn offers(&self, item: super::context::Item<'_>) -> bool {
        let _ = item;
        false
    }
}

/// The feature service and its catalog, handed to [`super::Endpoint`] by the composition root.
/// `S` is the service as composed so far; the endpoint erases it into an [`McpService`].
#[derive(Clone)]
pub struct Features<S = McpService> {
    pub service: S,
    pub catalog: Arc<dyn Catalog>,
    /// The authorization policy, when one is on (see [`Features::authorize_with`]).
    pub access: Option<Arc<dyn AccessControl>>,
}

impl<S> Features<S> {
    /// Features without authorization.
    pub fn new(service: S, catalog: Arc<dyn Catalog>) -> Self {
        Features { service, catalog, access: None }
    }

    /// Puts every operation under `access`: the service is wrapped in an [`Authorize`] layer,
    /// and the transport consults the same policy for the methods it serves itself
    /// (`subscriptions/listen`, `resources/subscribe`).
    pub fn authorize_with(mut self, access: Arc<dyn AccessControl>) -> Features<Authorize<S>> {
        self.access = Some(access.clone());
        self.layer(AuthorizeLayer { access })
    }

    /// Wraps the service in a tower layer (authorization, audit, metrics, ...).
    pub fn layer<L: tower::Layer<S>>(self, layer: L) -> Features<L::Service> {
        Features { service: layer.layer(self.service), catalog: self.catalog, access: self.access }
    }

    /// The composed service, erased for the transport.
    pub fn erase(self) -> Features
    where
        S: FeatureService,
    {
        Features { service: McpService::new(self.service), catalog: self.catalog, access: self.access }
    }
}

/// The `_meta` key under which a listed item's requirements are advertised (see
/// [`AccessControl::requirements`]), so a client can ask for the right scopes up front.
pub const REQUIREMENTS_META: &str = "mcp-auth-server/authorization";

/// The tower layer that enforces an [`AccessControl`] on the feature service, and installs it
/// into each request's context so lists can be filtered item by item.
#[derive(Clone)]
pub struct AuthorizeLayer {
    access: Arc<dyn AccessControl>,
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;
    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize { inner, access: self.access.clone() }
    }
}

/// See [`AuthorizeLayer`].
#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    access: Arc<dyn AccessControl>,
}

impl<S> tower::Service<McpRequest> for Authorize<S>
where
    S: tower::Service<McpRequest, Response = McpReply, Error = McpError>,
{
    type Response = McpReply;
    type Error = McpError;
    type Future = Authorized<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), McpError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: McpRequest) -> Self::Future {
        if let Err(refusal) = self.access.authorize(request.ctx.principal.as_ref(), &request.method, &request.params) {
            return Authorized::Refused { refusal: std::future::ready(Err(McpError::Refused(refusal))) };
        }
        request.ctx.access = Some(self.access.clone());
        let access = self.access.clone();
        let principal = request.ctx.principal.clone();
        // The verdict needs no waiting, so the inner service that `poll_ready` made ready takes
        // the request now: no per-request copy of it.
        Authorized::Allowed { response: self.inner.call(request), access, principal }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Authorize`]: a refusal decided in `call`, or the inner
    /// service's answer, in which a handler-raised [`McpError::InsufficientScope`] becomes the
    /// policy's step-up refusal.
    #[project = AuthorizedProj]
    pub enum Authorized<F> {
        Refused { refusal: std::future::Ready<Result<McpReply, McpError>> },
        Allowed { #[pin] response: F, access: Arc<dyn AccessControl>, principal: Option<Principal> },
    }
}

impl<F: Future<Output = Result<McpReply, McpError>>> Future for Authorized<F> {
    type Output = Result<McpReply, McpError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AuthorizedProj::Refused { refusal } => Pin::new(refusal).poll(cx),
            AuthorizedProj::Allowed { response, access, principal } => {
                Poll::Ready(std::task::ready!(response.poll(cx)).map_err(|error| match error {
                    McpError::InsufficientScope(needed) => {
                        McpError::Refused(access.challenge(principal.as_ref(), &needed))
                    }
                    other => other,
                }))
            }
        }
    }
}

/// The capability a feature method belongs to; `None` for methods the feature layer does not
/// serve.
pub(crate) fn feature_method_offered(method: &str, capabilities: &ServerCapabilities) -> Option<bool> {
    Some(match method {
        "tools/list" | "tools/call" => capabilities.tools.is_some(),
        "prompts/list" | "prompts/get" => capabilities.prompts.is_some(),
        "resources/list" | "resources/templates/list" | "resources/read" => capabilities.resources.is_some(),
        "completion/complete" => capabilities.completions.is_some(),
        _ => return None,
    })
}

/// Methods that may answer `input_required` (2026-07-28 MRTR rules).
pub(crate) fn may_require_input(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::Id;
    use crate::mcp::version::Era;

    /// Ready only on its second `poll_ready`; `call` insists on having been made ready.
    #[derive(Clone)]
    struct SlowToStart {
        polls: u8,
        fail: bool,
    }

    impl tower::Service<McpRequest> for SlowToStart {
        type Response = McpReply;
        type Error = McpError;
        type Future = std::future::Ready<Result<McpReply, McpError>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), McpError>> {
            self.polls += 1;
            match (self.polls, self.fail) {
                (1, _) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                (_, true) => Poll::Ready(Err(RpcError::internal("not today").into())),
                _ => Poll::Ready(Ok(())),
            }
        }

        fn call(&mut self, request: McpRequest) -> Self::Future {
            assert!(self.polls >= 2, "called before it was ready");
            std::future::ready(Ok(McpReply::complete(serde_json::json!({ "method": request.method }))))
        }
    }

    fn request() -> McpRequest {
        McpRequest {
            method: "tools/list".into(),
            params: Map::new(),
            ctx: RequestContext::detached(Id::Number(1), Era::Modern),
        }
    }

    #[tokio::test]
    async fn a_service_not_ready_at_once_is_waited_for_on_each_call() {
        let service = McpService::new(SlowToStart { polls: 0, fail: false });
        for _ in 0..2 {
            match service.handle(request()).await {
                Ok(McpReply::Complete { result, .. }) => assert_eq!(result["method"], "tools/list"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_readiness_error_is_the_answer() {
        let service = McpService::new(SlowToStart { polls: 1, fail: true });
        match service.handle(request()).await {
            Err(McpError::Rpc(error)) => assert!(error.message.contains("not today"), "{error:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
