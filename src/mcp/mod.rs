//! Feature `mcp` (tutorial step 2): JSON-RPC 2.0 and the MCP lifecycle over Streamable HTTP on
//! `POST /mcp`, for both protocol eras on the one endpoint.
//!
//! # How a request flows
//! 1. The layers the composition root puts on the `/mcp` route: CORS, the Host/Origin guard
//!    (`crate::guard`, DNS rebinding), [`limits`], authentication (`jwt`).
//! 2. [`transport`] checks content types and size, parses JSON-RPC ([`jsonrpc`]), and decides
//!    the era ([`version::classify`]).
//! 3. [`modern`] (2026-07-28, stateless) or [`legacy`] (2025-11-25 and older, sessions) applies
//!    its era's rules and hands feature methods to the [`McpService`] ([`dispatch`]).
//! 4. The answer goes back as one JSON object, or as an SSE stream when the handler sends
//!    notifications while it runs ([`context`], [`sse`]).
//!
//! While metrics or traces are on, [`observe`] measures each message of step 2 to 4 once.

pub mod audit;
pub mod bus;
mod context;
pub mod dispatch;
pub mod downstream;
pub mod headers;
mod http;
pub mod jsonrpc;
mod legacy;
pub mod limits;
mod modern;
pub mod observe;
pub mod protocol;
pub mod session;
mod sse;
pub mod state;
mod transport;
pub mod uri_template;
pub mod version;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::{Route, post};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

pub use context::{AccessControl, Item, RequestContext};
pub use dispatch::{
    CacheScope, Catalog, FeatureService, Features, McpError, McpFuture, McpReply, McpRequest, McpService,
    REQUIREMENTS_META,
};
pub use downstream::{DownstreamToken, ExchangeError, ExchangeRequest, TokenExchange};
pub use jsonrpc::{Id, RpcError};
pub use protocol::{Implementation, ServerCapabilities};

use crate::config::Settings;
use crate::error::StartupError;
use crate::serve::Shutdown;
use crate::store::Store;
use bus::{ChangeBus, ChangeEvent};
use session::Sessions;

/// Protocol-layer settings, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct McpConfig {
    pub server_info: Implementation,
    pub instructions: Option<String>,
    pub max_body_bytes: usize,
    pub body_read_timeout: Duration,
    pub sse_retry_ms: u64,
    pub sse_replay_buffer: usize,
    pub sse_keepalive: Option<Duration>,
    pub list_ttl_ms: u64,
    pub request_state_secret: SecretString,
    pub request_state_ttl: Duration,
    /// Extra entries for the `_meta` of `initialize` / `server/discover` results (for example
    /// where the OAuth protected-resource metadata lives).
    pub discovery_meta: Map<String, Value>,
    /// The extensions `server/discover` advertises in its capabilities (for example the OAuth
    /// client credentials extension, when the embedded authorization server grants it).
    pub extensions: Map<String, Value>,
    /// One span per MCP request, when traces are exported (see [`observe`]).
    pub tracing: Option<observe::Tracing>,
    /// Exchanges callers' tokens for tools' downstream calls (`None`: no exchange, and requests
    /// carry nothing for it).
    pub token_exchange: Option<Arc<dyn downstream::TokenExchange>>,
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
            body_read_timeout: Duration::from_secs(settings.server.body_read_timeout_secs),
            sse_retry_ms: mcp.sse_retry_ms,
            sse_replay_buffer: mcp.sse_replay_buffer,
            sse_keepalive: (mcp.sse_keepalive_secs > 0).then(|| Duration::from_secs(mcp.sse_keepalive_secs)),
            list_ttl_ms: mcp.list_ttl_ms,
            request_state_secret: mcp.request_state_secret.clone(),
            request_state_ttl: Duration::from_secs(mcp.request_state_ttl_secs),
            discovery_meta: Map::new(),
            extensions: Map::new(),
            tracing: None,
            token_exchange: None,
        }
    }
}

/// The protocol layer's shared state.
pub struct Mcp {
    pub config: McpConfig,
    pub features: Option<Features>,
    pub sessions: Arc<Sessions>,
    sealer: state::StateSealer,
    /// The server's store: sessions, spent `requestState` nonces, change notifications.
    store: Arc<dyn Store>,
    /// Change notifications of every instance sharing the store (see [`bridge_changes`]).
    changes: ChangeBus,
    /// SSE responses currently open (for `/health` and leak tests).
    open_streams: Arc<std::sync::atomic::AtomicUsize>,
    capabilities: ServerCapabilities,
    /// The `server/discover` result, built once.
    discover: Value,
    /// `config.server_info` as JSON, serialised once: every modern result carries it in `_meta`.
    server_info_json: Box<serde_json::value::RawValue>,
    shutdown: Shutdown,
}

impl Mcp {
    /// What this server offers: the feature layer's capabilities, or nothing (step 2).
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.capabilities
    }
}

/// The `/mcp` endpoint, built once at start-up.
pub struct Endpoint {
    mcp: Arc<Mcp>,
}

impl Endpoint {
    /// Builds the protocol layer. `features` is the tools/prompts/resources service (absent in
    /// step 2, where only the lifecycle works); `store` keeps what instances share. Fails when
    /// the store cannot give the `requestState` key.
    pub async fn new<S: FeatureService>(
        settings: &Settings,
        config: McpConfig,
        features: Option<Features<S>>,
        shutdown: Shutdown,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartupError> {
        let features = features.map(Features::erase);
        let capabilities = features.as_ref().map(|f| f.catalog.capabilities()).unwrap_or_default();
        let mcp_settings = &settings.mcp;
        let idle = Duration::from_secs(mcp_settings.session_idle_timeout_secs);
        let caps = session::Caps {
            sessions: mcp_settings.max_sessions,
            sessions_per_caller: mcp_settings.max_sessions_per_caller,
            streams_per_session: mcp_settings.max_streams_per_session,
            streams_per_caller: mcp_settings.max_streams_per_caller,
        };
        let key = state::StateSealer::key(config.request_state_secret.expose_secret(), &*store)
            .await
            .map_err(|err| StartupError::config("storage.url", format!("the requestState key: {err}")))?;
        let changes = ChangeBus::default();
        if let Some(features) = &features {
            bridge_changes(features.catalog.changes(), store.clone(), changes.clone(), &shutdown);
        }
        let mcp = Arc::new(Mcp {
            sessions: Sessions::new(store.clone(), caps, idle),
            sealer: state::StateSealer::new(key, config.request_state_ttl),
            store,
            changes,
            open_streams: Arc::default(),
            discover: modern::discover(&config, &capabilities),
            server_info_json: serde_json::value::to_raw_value(&config.server_info).expect("serverInfo serialises"),
            config,
            features,
            capabilities,
            shutdown,
        });
        // Alive before the first request, so no other instance takes this one's claims.
        mcp.sessions.heartbeat().await;
        spawn_session_sweeper(&mcp, idle);
        Ok(Endpoint { mcp })
    }

    /// The `/mcp` route, with `layers` (CORS, the Host/Origin guard, limits, authentication, in
    /// the order the composition root stacks them) on it alone: `route_layer`, so a request for
    /// any other path never meets them (an unknown path stays 404 instead of becoming 401).
    pub fn router<L>(self, layers: L) -> Router
    where
        L: tower::Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        Router::new()
            .route("/mcp", post(transport::post).get(transport::get).delete(transport::delete))
            .route_layer(layers)
            .with_state(self.mcp)
    }

    /// Live counters for `/health`: sessions and open SSE streams.
    pub fn stats(&self) -> impl Fn() -> Value + Send + Sync + 'static {
        let mcp = Arc::downgrade(&self.mcp);
        move || match mcp.upgrade() {
            Some(mcp) => serde_json::json!({
                "sessions": mcp.sessions.len(),
                "open_streams": mcp.open_streams.load(std::sync::atomic::Ordering::Relaxed),
            }),
            None => Value::Null,
        }
    }
}

/// Lets go of idle sessions in the background (and keeps busy ones alive in the store), and of
/// them all at shutdown; tells the other instances this one is alive.
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
        let mut heartbeats = tokio::time::interval(session::Sessions::HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                _ = heartbeats.tick() => {
                    let Some(mcp) = weak.upgrade() else { return };
                    mcp.sessions.heartbeat().await;
                }
                _ = ticks.tick() => {
                    let Some(mcp) = weak.upgrade() else { return };
                    let expired = mcp.sessions.sweep().await;
                    if expired > 0 {
                        tracing::debug!(expired, "let go of idle sessions");
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

/// The store's channel of change notifications.
const CHANGES: &str = "changes";

/// Change notifications reach every instance sharing the store: this instance's catalog
/// changes are published there, and what arrives from there (this instance's own included) is
/// what its streams hear. At most once: a notification published while Redis is unreachable is
/// lost, as it would be for a client that is not connected.
fn bridge_changes(
    mut local: tokio::sync::broadcast::Receiver<ChangeEvent>,
    store: Arc<dyn Store>,
    streams: ChangeBus,
    shutdown: &Shutdown,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let (publisher, stop) = (store.clone(), shutdown.wait());
    runtime.spawn(async move {
        tokio::pin!(stop);
        loop {
            let event = tokio::select! {
                event = local.recv() => event,
                _ = &mut stop => return,
            };
            match event {
                Ok(event) => {
                    let bytes = serde_json::to_vec(&event).expect("change events serialise");
                    if let Err(err) = publisher.publish(CHANGES, &bytes).await {
                        tracing::warn!(%err, "a change notification could not reach the other instances");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let mut subscription = store.subscribe(CHANGES);
    let stop = shutdown.wait();
    runtime.spawn(async move {
        tokio::pin!(stop);
        loop {
            let message = tokio::select! {
                message = subscription.recv() => message,
                _ = &mut stop => return,
            };
            let Some(message) = message else { return };
            if let Ok(event) = serde_json::from_slice::<ChangeEvent>(&message) {
                streams.publish(event);
            }
        }
    });
}

/// A random name (16 hexadecimal digits): stream names, unique across instances.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
