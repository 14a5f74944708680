//! Feature `mcp` (tutorial step 2): JSON-RPC 2.0 and the MCP lifecycle over Streamable HTTP on
//! `POST /mcp`, for both protocol eras on the one endpoint.
//!
//! # How a request flows
//! 1. [`guard`] refuses foreign `Host` / `Origin` headers (DNS rebinding).
//! 2. [`transport`] checks content types and size, parses JSON-RPC ([`jsonrpc`]), and decides
//!    the era ([`version::classify`]).
//! 3. [`modern`] (2026-07-28, stateless) or [`legacy`] (2025-11-25 and older, sessions) applies
//!    its era's rules and hands feature methods to the [`McpService`] ([`dispatch`]).
//! 4. The answer goes back as one JSON object, or as an SSE stream when the handler sends
//!    notifications while it runs ([`context`], [`sse`]).

pub mod bus;
mod context;
pub mod dispatch;
pub mod guard;
pub mod headers;
pub mod jsonrpc;
mod legacy;
mod modern;
pub mod protocol;
pub mod session;
mod sse;
mod transport;
pub mod version;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use serde_json::{Map, Value};

pub use context::RequestContext;
pub use dispatch::{AccessControl, CacheScope, Catalog, Features, Item, McpError, McpReply, McpRequest, McpService};
pub use jsonrpc::{Id, RpcError};
pub use protocol::{Implementation, ServerCapabilities};

use crate::config::Settings;
use crate::serve::Shutdown;
use session::SessionStore;

/// Protocol-layer settings, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct McpConfig {
    pub server_info: Implementation,
    pub instructions: Option<String>,
    pub max_body_bytes: usize,
    pub sse_retry_ms: u64,
    pub sse_replay_buffer: usize,
    pub sse_keepalive: Option<Duration>,
    pub list_ttl_ms: u64,
    /// Extra entries for the `_meta` of `initialize` / `server/discover` results (for example
    /// where the OAuth protected-resource metadata lives).
    pub discovery_meta: Map<String, Value>,
}

impl McpConfig {
    pub fn from_settings(settings: &Settings) -> Self {
        let mcp = &settings.mcp;
        McpConfig {
            server_info: Implementation {
                name: mcp.server_name.clone(),
                title: Some(mcp.server_title.clone()).filter(|t| !t.is_empty()),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                description: None,
                website_url: None,
            },
            instructions: Some(mcp.instructions.clone()).filter(|i| !i.is_empty()),
            max_body_bytes: settings.server.max_body_bytes,
            sse_retry_ms: mcp.sse_retry_ms,
            sse_replay_buffer: mcp.sse_replay_buffer,
            sse_keepalive: (mcp.sse_keepalive_secs > 0).then(|| Duration::from_secs(mcp.sse_keepalive_secs)),
            list_ttl_ms: mcp.list_ttl_ms,
            discovery_meta: Map::new(),
        }
    }
}

/// The protocol layer's shared state.
pub struct Mcp {
    pub config: McpConfig,
    pub features: Option<Features>,
    pub sessions: SessionStore,
    capabilities: ServerCapabilities,
    shutdown: Shutdown,
}

impl Mcp {
    /// What this server offers: the feature layer's capabilities, or nothing (step 2).
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.capabilities
    }
}

/// Builds the `/mcp` router. `features` is the tools/prompts/resources service (absent in
/// step 2, where only the lifecycle works). `protect` wraps the routes before the Host/Origin
/// guard does, so a layer it adds with `route_layer` (authentication) runs after the guard.
pub fn router(
    settings: &Settings,
    config: McpConfig,
    features: Option<Features>,
    shutdown: Shutdown,
    protect: impl FnOnce(Router) -> Router,
) -> Router {
    let capabilities = features.as_ref().map(|f| f.catalog.capabilities()).unwrap_or_default();
    let mcp = Arc::new(Mcp {
        sessions: SessionStore::new(
            settings.mcp.max_sessions,
            Duration::from_secs(settings.mcp.session_idle_timeout_secs),
        ),
        config,
        features,
        capabilities,
        shutdown,
    });
    spawn_session_sweeper(&mcp, Duration::from_secs(settings.mcp.session_idle_timeout_secs));
    let allow = Arc::new(guard::AllowList::from_settings(settings));
    let routes = Router::new()
        .route("/mcp", post(transport::post).get(transport::get).delete(transport::delete))
        .with_state(mcp);
    protect(routes).layer(axum::middleware::from_fn_with_state(allow, guard::check))
}

/// Expires idle sessions in the background, and closes them all at shutdown.
fn spawn_session_sweeper(mcp: &Arc<Mcp>, idle: Duration) {
    let weak = Arc::downgrade(mcp);
    let shutdown = mcp.shutdown.wait();
    let period = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    // Only when a runtime is running: building the router in a plain unit test must not panic.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let Some(mcp) = weak.upgrade() else { return };
                    let expired = mcp.sessions.sweep();
                    if expired > 0 {
                        tracing::debug!(expired, "expired idle sessions");
                    }
                }
                _ = &mut shutdown => {
                    if let Some(mcp) = weak.upgrade() {
                        mcp.sessions.close_all();
                    }
                    return;
                }
            }
        }
    });
}
