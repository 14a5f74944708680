//! A tool that calls another API as the user: `downstream_profile` asks its context for a token
//! for the profile API (the caller's token exchanged at its issuer, RFC 8693) and sends that,
//! never the caller's own token (the MCP specification forbids token passthrough).
//!
//! ```sh
//! PROFILE_API=http://127.0.0.1:4000 PROFILE_AUDIENCE=https://profile.example \
//!   cargo run --example downstream_tool --features issuer,tools
//! ```
//! with `issuer.token_exchange_audiences = ["https://profile.example"]` in the settings (the
//! embedded issuer), or a `[[token_exchange.issuers]]` entry for your identity provider (see the
//! README, "Tools calling other APIs"). `tests/token_exchange.rs` runs it against a profile API
//! it starts on loopback.

use mcp_auth_server::tools::{self, CallToolResult, NoArgs, Tool, ToolContext, ToolError, ToolInfo, ToolResult};
use mcp_auth_server::{AppBuilder, Settings, serve, telemetry};
use serde_json::Value;

/// Reads the caller's profile from the profile API, with a token exchanged for it.
pub struct DownstreamProfile {
    /// The profile API's base URL (`GET {api}/profile`).
    pub api: String,
    /// The audience the profile API expects in its tokens.
    pub audience: String,
    /// One client (one connection pool) for every call.
    pub http: reqwest::Client,
}

/// The scope the profile API requires.
pub const PROFILE_SCOPE: &str = "profile:read";

impl Tool for DownstreamProfile {
    type Args = NoArgs;

    fn info(&self) -> ToolInfo {
        ToolInfo::new("downstream_profile", "Reads your profile from the profile API, as you.").read_only()
    }

    async fn call(&self, ctx: ToolContext, _args: NoArgs) -> ToolResult {
        // Exchanged (or taken from the cache) for this caller, this audience and this scope.
        let token = ctx.downstream_token(&self.audience, &[PROFILE_SCOPE]).await?;
        let response = self
            .http
            .get(format!("{}/profile", self.api))
            .header(reqwest::header::AUTHORIZATION, token.authorization())
            .send()
            .await
            .map_err(|_| ToolError::failed("the profile API cannot be reached"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ToolError::failed(format!("the profile API answered {status}")));
        }
        let profile: Value = response.json().await.map_err(|_| ToolError::failed("the profile API sent no JSON"))?;
        Ok(CallToolResult::structured(profile))
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::load()?;
    telemetry::init(&settings.log);
    let tool = DownstreamProfile {
        api: std::env::var("PROFILE_API").unwrap_or_else(|_| "http://127.0.0.1:4000".into()),
        audience: std::env::var("PROFILE_AUDIENCE").unwrap_or_else(|_| "https://profile.example".into()),
        http: reqwest::Client::new(),
    };
    let registry = tools::builtin().tool(tool);
    let shutdown = serve::Shutdown::default();
    let router = AppBuilder::new(settings.clone()).registry(registry).shutdown(shutdown.clone()).build().await?;
    let listener = tokio::net::TcpListener::bind(settings.server.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "downstream_tool example listening");
    let options = serve::ServeOptions::from_settings(&settings.server);
    serve::serve(listener, router, serve::shutdown_signal(), shutdown, options).await?;
    Ok(())
}
