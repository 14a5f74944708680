//! Typed settings, loaded in layers: the compiled-in `config/default.toml`, the same file on disk,
//! `config/<profile>.toml`, then `MCP_AUTH__<SECTION>__<KEY>` environment variables.
//!
//! Every section is always present whatever features are enabled, so one config file serves every
//! tutorial step and a typo is reported instead of ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;
use url::Url;

use crate::error::StartupError;

/// The defaults, compiled in so the binary starts anywhere.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every setting of the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub log: LogSettings,
    pub mcp: McpSettings,
    pub oauth: OAuthSettings,
    pub scopes: ScopeSettings,
}

/// `[server]`: listening, public URL, transport hygiene.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// Normalised at load time: never empty, no trailing slash.
    pub public_url: String,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub shutdown_grace_secs: u64,
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[mcp]`: protocol-layer settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSettings {
    pub server_name: String,
    pub server_title: String,
    pub instructions: String,
    pub session_idle_timeout_secs: u64,
    pub max_sessions: usize,
    pub sse_retry_ms: u64,
    pub sse_replay_buffer: usize,
    pub sse_keepalive_secs: u64,
    pub page_size: usize,
    pub list_ttl_ms: u64,
    pub request_state_secret: String,
    pub request_state_ttl_secs: u64,
}

/// `[oauth]`: the OAuth metadata this server publishes (feature `oauth-meta`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    pub resource_name: String,
    pub documentation_url: String,
    pub authorization_servers: Vec<String>,
    pub metadata_refresh_secs: u64,
}

/// `[scopes]`: the authorization policy (feature `scopes`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSettings {
    pub supported: Vec<String>,
    pub require_role: bool,
    pub challenge_scopes: ChallengeScopes,
    pub operations: BTreeMap<String, Vec<String>>,
    pub implies: BTreeMap<String, Vec<String>>,
    pub roles: BTreeMap<String, Vec<String>>,
    pub tools: BTreeMap<String, ItemRule>,
    pub prompts: BTreeMap<String, ItemRule>,
    pub resources: BTreeMap<String, ItemRule>,
}

/// What the 401 challenge's `scope` hint lists.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeScopes {
    All,
    Operation,
}

/// A per-item authorization rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemRule {
    /// Replaces the operation's scopes for this item when set.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The caller must hold one of these roles (none = no role needed).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] =
    &["server.allowed_hosts", "server.allowed_origins", "scopes.supported", "oauth.authorization_servers"];

impl Settings {
    /// Loads the layered configuration of a real process (files and environment).
    pub fn load() -> Result<Settings, StartupError> {
        let dir = std::env::var_os("MCP_AUTH_CONFIG_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("config"));
        let profile_from_env = std::env::var("MCP_AUTH_PROFILE").ok();
        let profile = profile_from_env.clone().unwrap_or_else(|| "dev".to_owned());

        let profile_path = dir.join(format!("{profile}.toml"));
        if profile_from_env.is_some() && !profile_path.exists() {
            return Err(StartupError::config(
                "MCP_AUTH_PROFILE",
                format!("profile file {} does not exist", profile_path.display()),
            ));
        }

        let mut env = Environment::with_prefix("MCP_AUTH")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }

        let builder = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from(dir.join("default.toml")).required(false))
            .add_source(File::from(profile_path).required(false))
            .add_source(env);
        Self::finish(builder.build())
    }

    /// Compiled-in defaults overlaid with `overrides` (TOML). Used by tests and examples, which
    /// must not depend on the caller's environment.
    pub fn from_toml(overrides: &str) -> Result<Settings, StartupError> {
        let builder = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from_str(overrides, FileFormat::Toml));
        Self::finish(builder.build())
    }

    fn finish(built: Result<Config, config::ConfigError>) -> Result<Settings, StartupError> {
        let mut settings: Settings =
            built.and_then(Config::try_deserialize).map_err(StartupError::from_config_error)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks cross-field rules and normalises derived values.
    fn validate(&mut self) -> Result<(), StartupError> {
        let server = &mut self.server;
        server.public_url = normalise_public_url(&server.public_url, server.bind)?;
        if server.max_body_bytes == 0 {
            return Err(StartupError::config("server.max_body_bytes", "must be greater than 0"));
        }
        for origin in &server.allowed_origins {
            Url::parse(origin)
                .map_err(|e| StartupError::config("server.allowed_origins", format!("`{origin}` is not a URL: {e}")))?;
        }
        if self.mcp.max_sessions == 0 {
            return Err(StartupError::config("mcp.max_sessions", "must be greater than 0"));
        }
        if self.mcp.page_size == 0 {
            return Err(StartupError::config("mcp.page_size", "must be greater than 0"));
        }
        Ok(())
    }

    /// The URL clients connect to for MCP, and this server's OAuth resource identifier.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.server.public_url)
    }
}

/// Fills in the public URL from the bind address when empty, and checks its shape.
fn normalise_public_url(raw: &str, bind: SocketAddr) -> Result<String, StartupError> {
    let key = "server.public_url";
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(format!("http://{bind}"));
    }
    let url = Url::parse(raw).map_err(|e| StartupError::config(key, format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(StartupError::config(key, "scheme must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(StartupError::config(key, "must not have a query or fragment"));
    }
    if url.host_str().is_none() {
        return Err(StartupError::config(key, "must have a host"));
    }
    // `Url` lowercases scheme and host; keep the path as given, without a trailing slash.
    Ok(url.as_str().trim_end_matches('/').to_owned())
}
