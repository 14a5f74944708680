//! The composition root: the only file that switches layers on and off per feature. Each layer
//! is built from the settings here and handed what it needs from the others as plain values.

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::validate_request::ValidateRequestHeaderLayer;

use crate::config::Settings;
use crate::error::StartupError;
use crate::health::Health;
use crate::serve::Shutdown;
use crate::telemetry::{TraceContext, TraceExport};

/// The features compiled into this binary.
pub fn enabled_features() -> Vec<&'static str> {
    [
        ("mcp", cfg!(feature = "mcp")),
        ("tools", cfg!(feature = "tools")),
        ("jwt", cfg!(feature = "jwt")),
        ("oauth-meta", cfg!(feature = "oauth-meta")),
        ("scopes", cfg!(feature = "scopes")),
        ("issuer", cfg!(feature = "issuer")),
        ("store-sqlite", cfg!(feature = "store-sqlite")),
        ("store-redis", cfg!(feature = "store-redis")),
        ("otel", cfg!(feature = "otel")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The start-up line that tells a person where to connect (and, with the published development
/// users, how to sign in).
pub fn where_to_connect(settings: &Settings) -> String {
    let url = &settings.server.public_url;
    if !cfg!(feature = "mcp") {
        return format!("health at {url}/health");
    }
    #[cfg_attr(not(feature = "issuer"), allow(unused_mut))]
    let mut line = format!("connect MCP clients to {url}/mcp");
    #[cfg(feature = "issuer")]
    if settings.jwt.trusts_local_keys(&settings.server.public_url)
        && settings.issuer.enabled
        && crate::issuer::has_development_users(settings)
    {
        line.push_str(" and sign in as alice / wonderland (the development users of config/dev.toml)");
    }
    line
}

/// Traces exported to `telemetry.otlp_endpoint` (feature `otel`), or `None` when it is empty.
/// `runtime` runs the exporter's requests. Called by the binary before it sets up logging.
#[cfg(feature = "otel")]
pub fn trace_export(
    settings: &Settings,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<TraceExport>, StartupError> {
    crate::otel::export(&settings.telemetry, runtime)
}

/// Without the `otel` feature there is nothing to export to: an endpoint is refused rather than
/// ignored.
#[cfg(not(feature = "otel"))]
pub fn trace_export(
    settings: &Settings,
    _runtime: &tokio::runtime::Handle,
) -> Result<Option<TraceExport>, StartupError> {
    match settings.telemetry.traces_url() {
        None => Ok(None),
        Some(_) => Err(StartupError::config(
            "telemetry.otlp_endpoint",
            "is set, but this build has no traces: build with `--features otel` (or `full`)",
        )),
    }
}

/// What [`AppBuilder::build_routers`] makes: the public application, and the admin listener's
/// routes when `admin.bind` is set.
pub struct Routers {
    pub public: Router,
    pub admin: Option<Router>,
}

/// Builds the application from settings, with optional parts supplied by the caller.
pub struct AppBuilder {
    settings: Settings,
    shutdown: Shutdown,
    trace_context: Option<std::sync::Arc<dyn TraceContext>>,
    #[cfg(feature = "tools")]
    registry: Option<crate::tools::Registry>,
    #[cfg(feature = "mcp")]
    store: Option<std::sync::Arc<dyn crate::store::Store>>,
}

impl AppBuilder {
    pub fn new(settings: Settings) -> Self {
        AppBuilder {
            settings,
            shutdown: Shutdown::default(),
            trace_context: None,
            #[cfg(feature = "tools")]
            registry: None,
            #[cfg(feature = "mcp")]
            store: None,
        }
    }

    /// The shutdown signal long-lived streams watch (see [`crate::serve::serve`]).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Exports a span per HTTP request and per MCP request, adopting callers' traces through
    /// `context` (from [`trace_export`]; `None`, the default, makes no extra span).
    pub fn trace_context(mut self, context: Option<std::sync::Arc<dyn TraceContext>>) -> Self {
        self.trace_context = context;
        self
    }

    /// Serves these tools, prompts and resources instead of the built-in ones.
    #[cfg(feature = "tools")]
    pub fn registry(mut self, registry: crate::tools::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Keeps the server's state (legacy sessions, the embedded authorization server's) in
    /// `store` instead of the one `storage.url` names.
    #[cfg(feature = "mcp")]
    pub fn store(mut self, store: std::sync::Arc<dyn crate::store::Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Builds the application. Fails on configuration that cannot work (unreadable keys, an
    /// issuer that cannot be reached, a policy naming unknown tools).
    pub async fn build(self) -> Result<Router, StartupError> {
        self.build_app(false).await.map(|routers| routers.public)
    }

    /// Builds the application and, when `admin.bind` is set, the admin listener's routes
    /// (metrics and the detailed health report; see [`crate::admin`]): what the binary serves.
    /// Metrics are recorded from here on; without `admin.bind` nothing is.
    pub async fn build_routers(self) -> Result<Routers, StartupError> {
        let admin = self.settings.admin.bind.is_some();
        self.build_app(admin).await
    }

    async fn build_app(self, admin: bool) -> Result<Routers, StartupError> {
        // First, so that start-up (the first key fetch) is counted too.
        let metrics = if admin { Some(crate::admin::recorder()?) } else { None };
        let settings = &self.settings;
        let public_url = settings.server.public_url.clone();
        #[allow(unused_mut)]
        let mut health = Health::new(enabled_features(), settings.server.health_details)
            .section("public_url", move || public_url.clone().into());
        #[allow(unused_mut)]
        let mut app = Router::new();

        // Where state that must survive a restart, or be shared by instances, is kept.
        #[cfg(feature = "mcp")]
        let store = match self.store.clone() {
            Some(store) => store,
            None => open_store(settings).await?,
        };
        #[cfg(feature = "mcp")]
        {
            let (kind, ping) = (store.kind(), store.clone());
            health = health.section("store", move || kind.into()).check("store", move || {
                let store = ping.clone();
                async move { store.ping().await.map_err(|err| err.to_string()) }
            });
        }

        // Step 7: where a client learns how to get a token for this server.
        #[cfg(feature = "oauth-meta")]
        let meta = {
            let meta = crate::oauth_meta::OAuthMeta::new(
                settings,
                &settings.jwt.primary_issuer(&settings.server.public_url),
                settings.scopes.supported.clone(),
            )?;
            let (metadata, readiness) = self.authorization_server_metadata(&meta).await;
            app = app.merge(meta.router()).merge(metadata);
            health = health.section("oauth", meta.health());
            if let Some(readiness) = readiness {
                health = health.check("issuer_metadata", move || std::future::ready(readiness.check()));
            }
            meta
        };
        #[cfg(feature = "oauth-meta")]
        let resource_metadata = Some(meta.metadata_url().to_owned());
        #[cfg(all(feature = "scopes", not(feature = "oauth-meta")))]
        let resource_metadata = None;

        // Step 8: which scopes and roles each operation needs.
        #[cfg(feature = "scopes")]
        let policy = std::sync::Arc::new(self.policy(resource_metadata.clone())?);

        // Tools' downstream tokens: callers' tokens exchanged at their issuers (RFC 8693).
        #[cfg(feature = "jwt")]
        #[allow(unused_mut)]
        let mut token_exchange = crate::token_exchange::TokenExchanger::from_settings(settings)?;
        #[cfg(not(feature = "jwt"))]
        if !settings.token_exchange.issuers.is_empty() {
            return Err(StartupError::config(
                "token_exchange.issuers",
                "is set, but this build validates no tokens: build with `--features jwt` (or `full`)",
            ));
        }
        #[cfg(feature = "issuer")]
        if !self.embedded_issuer() && !settings.issuer.token_exchange_audiences.is_empty() {
            return Err(StartupError::config(
                "issuer.token_exchange_audiences",
                "is set, but the embedded authorization server does not run (jwt.issuer is set, or issuer.enabled \
                 = false): configure [[token_exchange.issuers]] for an external issuer instead",
            ));
        }

        // Steps 5-6: authentication, between the /mcp routes and the Host/Origin guard.
        #[cfg(feature = "jwt")]
        let auth = {
            // With the embedded issuer, the grants it revokes are refused here too, through the
            // store they share (and every instance sharing it).
            #[cfg(feature = "issuer")]
            let revocations = self.embedded_issuer().then(|| store.clone());
            #[cfg(not(feature = "issuer"))]
            let revocations = None;
            let jwt = crate::jwt::Jwt::from_settings(settings, revocations).await?;
            app = app.merge(jwt.jwks_router());
            health = health.section("jwt", jwt.health()).check("keys", jwt.readiness());
            // Step 10: the embedded authorization server, signing with the same local key.
            #[cfg(feature = "issuer")]
            if self.embedded_issuer() {
                let issuer = self.issuer(&jwt, store.clone()).await?;
                // This server exchanges its callers' tokens at its own issuer, in-process.
                if let Some((backend, audiences)) = issuer.token_exchange(settings.mcp_url()) {
                    tracing::info!(?audiences, "token exchange at the embedded issuer configured");
                    token_exchange = token_exchange.issuer(
                        issuer.issuer(),
                        backend,
                        audiences,
                        std::time::Duration::from_secs(EMBEDDED_CACHE_MARGIN_SECS),
                    );
                }
                app = app.merge(issuer.router());
                health = health.section("issuer", issuer.health());
            }
            #[allow(unused_mut)]
            let mut challenge = crate::jwt::ChallengeParams::default();
            #[cfg(feature = "oauth-meta")]
            {
                challenge.resource_metadata = resource_metadata.clone();
                #[cfg(feature = "scopes")]
                let operation_scopes = Some(policy_operation_scopes(&policy));
                #[cfg(not(feature = "scopes"))]
                let operation_scopes = None;
                challenge.scope = Some(crate::oauth_meta::scope_hint(settings, operation_scopes));
            }
            jwt.layer(challenge)
        };
        #[cfg(all(feature = "mcp", not(feature = "jwt")))]
        let auth = tower::layer::util::Identity::new();

        let allow = std::sync::Arc::new(crate::guard::AllowList::from_settings(settings));

        // Steps 2-4: the MCP endpoint and what it serves.
        #[cfg(feature = "mcp")]
        let mcp_routes = {
            #[allow(unused_mut)]
            let mut config = crate::mcp::McpConfig::from_settings(settings);
            #[cfg(feature = "oauth-meta")]
            {
                config.discovery_meta = meta.discovery_meta();
            }
            // The embedded authorization server grants client_credentials (secrets and
            // private_key_jwt): the OAuth client credentials extension, advertised as it suggests.
            #[cfg(feature = "issuer")]
            if self.embedded_issuer() {
                config
                    .extensions
                    .insert("io.modelcontextprotocol/oauth-client-credentials".into(), serde_json::json!({}));
                // And, with trusted enterprise IdPs, ID-JAGs (Enterprise-Managed Authorization).
                if !settings.issuer.enterprise_idps.is_empty() {
                    config.extensions.insert(
                        "io.modelcontextprotocol/enterprise-managed-authorization".into(),
                        serde_json::json!({}),
                    );
                }
            }
            #[cfg(feature = "jwt")]
            if !token_exchange.is_empty() {
                let exchanger = std::sync::Arc::new(token_exchange);
                let cached = exchanger.clone();
                health = health.section("token_exchange", move || serde_json::json!({ "cached": cached.cached() }));
                config.token_exchange = Some(exchanger);
            }
            config.tracing = self.trace_context.clone().map(|context| crate::mcp::observe::Tracing {
                context,
                include_subject: settings.telemetry.include_subject,
            });
            let observed = crate::observe::enabled() || config.tracing.is_some();
            // The feature service (tools, prompts, resources), wrapped by authorization and audit.
            let features = self.mcp_features();
            #[cfg(feature = "scopes")]
            let features = features.map(|f| f.authorize_with(policy.clone()));
            // Outermost, so refusals are in the audit trail too.
            let audit = crate::mcp::audit::AuditLayer { log_arguments: settings.log.audit_arguments };
            let features = features.map(|f| f.layer(audit));
            // How each call ended, for its metric and span; only while they are on.
            let outcomes = tower::util::option_layer(observed.then_some(crate::mcp::observe::OutcomeLayer));
            let features = features.map(|f| f.layer(outcomes));
            let endpoint =
                crate::mcp::Endpoint::new(settings, config, features, self.shutdown.clone(), store.clone()).await?;
            health = health.section("mcp", endpoint.stats());
            // Browser clients: preflights are answered before the guard and authentication.
            #[cfg(feature = "oauth-meta")]
            let cors = crate::oauth_meta::mcp_cors(settings);
            #[cfg(not(feature = "oauth-meta"))]
            let cors = tower::layer::util::Identity::new();
            // Then the Origin guard; outside authentication the per-address rate limit, the
            // in-flight cap and the time limit; inside it, the per-caller rate limit.
            let limits = crate::mcp::limits::Limits::new(&settings.limits);
            let layers = tower::ServiceBuilder::new()
                .layer(cors)
                .layer(ValidateRequestHeaderLayer::custom(crate::guard::OriginCheck(allow.clone())))
                .layer(ValidateRequestHeaderLayer::custom(crate::mcp::limits::PerAddress(limits.clone())))
                .layer(from_fn_with_state(limits.clone(), crate::mcp::limits::in_flight_and_time))
                .layer(auth)
                .layer(ValidateRequestHeaderLayer::custom(crate::mcp::limits::PerCaller(limits)));
            endpoint.router(layers)
        };

        // Every route but `/mcp` (health, metadata, the authorization server) must be answered,
        // body read included, within the body deadline: a client trickling a body in holds a
        // connection for that long at most. `/mcp` reads its body under the same deadline and
        // has its own time limit for the rest (`limits.request_timeout_secs`).
        let body_deadline = std::time::Duration::from_secs(settings.server.body_read_timeout_secs);
        // The admin listener shows every section, whatever `server.health_details` says.
        let admin = metrics.map(|metrics| crate::admin::router(metrics, health.clone().detailed()));
        let app = app
            .merge(health.router())
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, body_deadline));
        #[cfg(feature = "mcp")]
        let app = app.merge(mcp_routes);

        // Around every route, from the inside out: the Host guard (DNS rebinding), the request
        // metric (only while metrics are recorded), the request span (everything logged while
        // serving a request, the audit trail and refusals, can be told apart), and the panic
        // guard (a panicking handler becomes a 500 instead of a dropped connection). The same
        // around the fallback (404 for every other path), which is added after them so that they
        // know which requests no route serves: those get no route label and no route name.
        // One `layer` call, so each route is wrapped (and cloned per request) once, not once a
        // layer.
        let edge = |router: Router, routed: bool| {
            let metrics = crate::observe::enabled().then(|| from_fn_with_state(routed, crate::observe::http_requests));
            router.layer(
                tower::ServiceBuilder::new()
                    .layer(CatchPanicLayer::new())
                    .layer(crate::telemetry::trace_layer(self.trace_context.clone(), routed))
                    .option_layer(metrics)
                    .layer(ValidateRequestHeaderLayer::custom(crate::guard::HostCheck(allow.clone()))),
            )
        };
        let not_found = edge(Router::new().fallback(|| std::future::ready(StatusCode::NOT_FOUND)), false);
        let public = edge(app, true).fallback_service(not_found);
        Ok(Routers { public, admin })
    }

    #[cfg(all(feature = "mcp", not(feature = "tools")))]
    fn mcp_features(&self) -> Option<crate::mcp::Features> {
        None
    }

    #[cfg(feature = "tools")]
    fn mcp_features(&self) -> Option<crate::mcp::Features<crate::tools::RegistryService>> {
        Some(self.served_registry().into_features(&self.settings))
    }

    #[cfg(feature = "tools")]
    fn served_registry(&self) -> crate::tools::Registry {
        self.registry.clone().unwrap_or_else(crate::tools::builtin)
    }

    /// The policy, checked against the tools and prompts actually served.
    #[cfg(all(feature = "scopes", feature = "tools"))]
    fn policy(&self, resource_metadata: Option<String>) -> Result<crate::scopes::Policy, StartupError> {
        let registry = self.served_registry();
        let (tools, prompts) = (registry.tool_names(), registry.prompt_names());
        crate::scopes::Policy::new(&self.settings.scopes, Some(&tools), Some(&prompts), resource_metadata)
    }

    /// The policy; without tools there are no items to check it against.
    #[cfg(all(feature = "scopes", not(feature = "tools")))]
    fn policy(&self, resource_metadata: Option<String>) -> Result<crate::scopes::Policy, StartupError> {
        crate::scopes::Policy::new(&self.settings.scopes, None, None, resource_metadata)
    }

    /// RFC 8414 metadata on this origin: the external issuer's (`jwt.issuer`, else the first of
    /// `[[jwt.issuers]]`), mirrored; the embedded authorization server's (it serves its own); or,
    /// when we issue tokens offline only, ours without endpoints.
    #[cfg(feature = "oauth-meta")]
    async fn authorization_server_metadata(
        &self,
        meta: &crate::oauth_meta::OAuthMeta,
    ) -> (Router, Option<crate::oauth_meta::MetadataReadiness>) {
        if !self.settings.jwt.trusts_local_keys(&self.settings.server.public_url) {
            let refresh = std::time::Duration::from_secs(self.settings.oauth.metadata_refresh_secs);
            let (router, readiness) = meta.external_authorization_server(refresh).await;
            (router, Some(readiness))
        } else if self.embedded_issuer() {
            (Router::new(), None)
        } else {
            (meta.local_authorization_server(&self.settings.scopes.supported), None)
        }
    }

    /// Whether the embedded authorization server runs: compiled in, enabled, and the local keys
    /// trusted (no `jwt.issuer`, and no `[[jwt.issuers]]` unless one names this server): a
    /// production deployment with its own IdP never mounts it.
    #[cfg(feature = "oauth-meta")]
    fn embedded_issuer(&self) -> bool {
        cfg!(feature = "issuer")
            && self.settings.jwt.trusts_local_keys(&self.settings.server.public_url)
            && self.settings.issuer.enabled
    }

    /// The embedded authorization server, signing with the `jwt` layer's local key, and checking
    /// (revoking, introspecting) tokens with its verifier.
    #[cfg(feature = "issuer")]
    async fn issuer(
        &self,
        jwt: &crate::jwt::Jwt,
        store: std::sync::Arc<dyn crate::store::Store>,
    ) -> Result<crate::issuer::Issuer, StartupError> {
        let keys = jwt.local_keys().cloned().ok_or_else(|| {
            StartupError::config(
                "issuer.enabled",
                "the embedded authorization server needs local keys (jwt.issuer empty)",
            )
        })?;
        let enterprise = crate::issuer::enterprise::EnterpriseIdps::start(&self.settings).await?;
        crate::issuer::Issuer::new(&self.settings, keys, store, jwt.verifier().clone(), enterprise)
    }
}

/// The store `storage.url` names; when it is empty, an SQLite file at `data/mcp-auth.db` in a
/// build with the embedded authorization server and the SQLite backend (the deployable
/// service), memory otherwise (the tutorial's steps). A store that cannot be opened or reached
/// stops start-up, naming the setting.
#[cfg(feature = "mcp")]
async fn open_store(settings: &Settings) -> Result<std::sync::Arc<dyn crate::store::Store>, StartupError> {
    use crate::store::StorageUrl;
    let url = match settings.storage.parsed()? {
        Some(url) => url,
        None if cfg!(all(feature = "issuer", feature = "store-sqlite")) => {
            StorageUrl::Sqlite(std::path::PathBuf::from(DEFAULT_SQLITE_PATH))
        }
        None => StorageUrl::Memory,
    };
    let store: std::sync::Arc<dyn crate::store::Store> = match &url {
        StorageUrl::Memory => {
            tracing::info!(
                "state is kept in memory: sessions, sign-ins, registrations and refresh tokens are lost on restart"
            );
            std::sync::Arc::new(crate::store::MemoryStore::new())
        }
        #[cfg(feature = "store-sqlite")]
        StorageUrl::Sqlite(path) => {
            let store = crate::store_sqlite::SqliteStore::open(path).await.map_err(store_unavailable)?;
            tracing::info!(%url, "state is kept in an SQLite file: it survives restarts (one instance)");
            std::sync::Arc::new(store)
        }
        #[cfg(feature = "store-redis")]
        StorageUrl::Redis(raw) => {
            let store = crate::store_redis::RedisStore::connect(raw).await.map_err(store_unavailable)?;
            tracing::info!(%url, "state is kept in Redis: shared by every instance that uses it");
            std::sync::Arc::new(store)
        }
        #[allow(unreachable_patterns)]
        other => {
            let feature = if matches!(other, StorageUrl::Redis(_)) { "store-redis" } else { "store-sqlite" };
            return Err(StartupError::config(
                "storage.url",
                format!("names {other}, but this build has no `{feature}` feature (build with --features {feature})"),
            ));
        }
    };
    Ok(crate::store::Timed::wrap(store))
}

/// A store that cannot be opened or reached at start-up: a settings problem, naming the setting.
#[cfg(any(feature = "store-sqlite", feature = "store-redis"))]
fn store_unavailable(err: crate::store::StoreError) -> StartupError {
    StartupError::config("storage.url", err.to_string())
}

/// How long before expiry a downstream token of the embedded issuer is exchanged again.
#[cfg(feature = "issuer")]
const EMBEDDED_CACHE_MARGIN_SECS: u64 = 30;

/// Where the deployable service keeps its state when `storage.url` is empty.
#[cfg(feature = "mcp")]
const DEFAULT_SQLITE_PATH: &str = "data/mcp-auth.db";

/// What an operation needs, by its `Mcp-Method` / `Mcp-Name`, for 401 scope hints.
#[cfg(all(feature = "oauth-meta", feature = "scopes"))]
fn policy_operation_scopes(policy: &std::sync::Arc<crate::scopes::Policy>) -> crate::oauth_meta::OperationScopes {
    let policy = policy.clone();
    std::sync::Arc::new(move |method: &str, name: Option<&str>| policy.operation_scopes(method, name))
}

/// The application with the built-in tools: what the binary serves and most tests drive.
pub async fn app(settings: &Settings) -> Result<Router, StartupError> {
    AppBuilder::new(settings.clone()).build().await
}
