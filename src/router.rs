//! The composition root: the only file that switches layers on and off per feature. Each layer
//! is built from the settings here and handed what it needs from the others as plain values.

use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::error::StartupError;
use crate::health::Health;
use crate::serve::Shutdown;

/// The features compiled into this binary.
pub fn enabled_features() -> Vec<&'static str> {
    [
        ("mcp", cfg!(feature = "mcp")),
        ("tools", cfg!(feature = "tools")),
        ("jwt", cfg!(feature = "jwt")),
        ("oauth-meta", cfg!(feature = "oauth-meta")),
        ("scopes", cfg!(feature = "scopes")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// Builds the application from settings, with optional parts supplied by the caller.
pub struct AppBuilder {
    settings: Settings,
    shutdown: Shutdown,
    #[cfg(feature = "tools")]
    registry: Option<crate::tools::Registry>,
}

impl AppBuilder {
    pub fn new(settings: Settings) -> Self {
        AppBuilder {
            settings,
            shutdown: Shutdown::default(),
            #[cfg(feature = "tools")]
            registry: None,
        }
    }

    /// The shutdown signal long-lived streams watch (see [`crate::serve::serve`]).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Serves these tools, prompts and resources instead of the built-in ones.
    #[cfg(feature = "tools")]
    pub fn registry(mut self, registry: crate::tools::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Builds the router. Fails on configuration that cannot work (unreadable keys, an issuer
    /// that cannot be reached, a policy naming unknown tools).
    pub async fn build(self) -> Result<Router, StartupError> {
        let public_url = self.settings.server.public_url.clone();
        #[allow(unused_mut)]
        let mut health = Health::new(enabled_features()).section("public_url", move || public_url.clone().into());
        #[allow(unused_mut)]
        let mut app = Router::new();

        // What wraps the /mcp routes inside the Host/Origin guard: authentication, when on.
        #[cfg(feature = "jwt")]
        let auth = {
            let jwt = crate::jwt::Jwt::from_settings(&self.settings).await?;
            app = app.merge(jwt.jwks_router());
            health = health.section("jwt", jwt.health());
            // The challenge parameters (resource_metadata, scope) come from the oauth-meta layer.
            jwt.layer(crate::jwt::ChallengeParams::default())
        };
        #[cfg(all(feature = "mcp", not(feature = "jwt")))]
        let auth = tower::layer::util::Identity::new();

        #[cfg(feature = "mcp")]
        {
            let settings = &self.settings;
            let config = crate::mcp::McpConfig::from_settings(settings);
            let features = self.mcp_features()?;
            let endpoint = crate::mcp::Endpoint::new(settings, config, features, self.shutdown.clone());
            health = health.section("mcp", endpoint.stats());
            app = app.merge(endpoint.into_router_with(auth));
        }

        Ok(app
            .merge(health.router())
            .layer(TraceLayer::new_for_http())
            // A panicking handler becomes a 500 instead of a dropped connection.
            .layer(CatchPanicLayer::new()))
    }

    #[cfg(all(feature = "mcp", not(feature = "tools")))]
    fn mcp_features(&self) -> Result<Option<crate::mcp::Features>, StartupError> {
        Ok(None)
    }

    #[cfg(feature = "tools")]
    fn mcp_features(&self) -> Result<Option<crate::mcp::Features>, StartupError> {
        let registry = self.registry.clone().unwrap_or_else(crate::tools::builtin);
        Ok(Some(registry.into_features(&self.settings)))
    }
}

/// The application with the built-in tools: what the binary serves and most tests drive.
pub async fn app(settings: &Settings) -> Result<Router, StartupError> {
    AppBuilder::new(settings.clone()).build().await
}
