//! Typed settings, loaded in layers: the compiled-in `config/default.toml`, the same file on disk,
//! `config/<profile>.toml`, then `MCP_AUTH__<SECTION>__<KEY>` environment variables.
//!
//! Every section is always present whatever features are enabled, so one config file serves every
//! tutorial step and a typo is reported instead of ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

use crate::error::StartupError;

/// The defaults, compiled in so the binary starts anywhere.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every setting of the server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub log: LogSettings,
    pub mcp: McpSettings,
    pub jwt: JwtSettings,
    pub limits: LimitSettings,
    pub oauth: OAuthSettings,
    pub scopes: ScopeSettings,
    pub issuer: IssuerSettings,
    pub storage: StorageSettings,
    pub admin: AdminSettings,
    pub telemetry: TelemetrySettings,
    /// Absent from `config/default.toml`: no token exchange unless configured.
    #[serde(default)]
    pub token_exchange: TokenExchangeSettings,
}

/// `[server]`: listening, public URL, transport hygiene.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// An IP address and port; `localhost:PORT` is read as `127.0.0.1:PORT`.
    #[serde(deserialize_with = "bind_address")]
    pub bind: SocketAddr,
    /// Normalised at load time: never empty, no trailing slash.
    pub public_url: String,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub shutdown_grace_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub header_read_timeout_secs: u64,
    pub max_header_bytes: usize,
    pub body_read_timeout_secs: u64,
    /// Show the enabled features and every layer's report on `/health`.
    pub health_details: bool,
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
    pub audit_arguments: bool,
}

/// `[admin]`: the admin listener (metrics, the detailed health report, the probes), apart from
/// the public port.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Where the admin listener listens; `None` (an empty string) = no admin listener and no
    /// metrics recorded.
    #[serde(deserialize_with = "optional_bind_address", serialize_with = "address_or_empty")]
    pub bind: Option<SocketAddr>,
}

/// `[telemetry]`: traces exported over OTLP/HTTP (feature `otel`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The OTLP/HTTP collector's base URL (`/v1/traces` is added); empty = no traces exported.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Put the caller's subject on each MCP span (`enduser.id`): personal data, off by default.
    pub include_subject: bool,
}

impl TelemetrySettings {
    /// Where spans are sent: the endpoint with `/v1/traces`, or `None` when traces are off.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.trim().trim_end_matches('/');
        if base.is_empty() {
            None
        } else if base.ends_with("/v1/traces") {
            Some(base.to_owned())
        } else {
            Some(format!("{base}/v1/traces"))
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[mcp]`: protocol-layer settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct McpSettings {
    pub server_name: String,
    pub server_title: String,
    pub instructions: String,
    pub session_idle_timeout_secs: u64,
    pub max_sessions: usize,
    pub max_sessions_per_caller: usize,
    pub max_streams_per_session: usize,
    pub max_streams_per_caller: usize,
    pub sse_retry_ms: u64,
    pub sse_replay_buffer: usize,
    pub sse_keepalive_secs: u64,
    pub page_size: usize,
    pub list_ttl_ms: u64,
    /// The key that seals `requestState` (empty = a random key per process).
    #[serde(serialize_with = "redacted")]
    pub request_state_secret: SecretString,
    pub request_state_ttl_secs: u64,
}

/// `[limits]`: rate limits and caps on `/mcp`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub per_address_per_sec: u32,
    pub per_address_burst: u32,
    pub per_caller_per_sec: u32,
    pub per_caller_burst: u32,
    pub max_in_flight: usize,
    pub request_timeout_secs: u64,
    pub trust_forwarded_for: bool,
}

/// `[oauth]`: the OAuth metadata this server publishes (feature `oauth-meta`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    pub resource_name: String,
    pub documentation_url: String,
    pub authorization_servers: Vec<String>,
    pub metadata_refresh_secs: u64,
}

/// `[scopes]`: the authorization policy (feature `scopes`).
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeScopes {
    All,
    Operation,
}

/// When the embedded authorization server issues a refresh token with an authorization: always
/// only to a client that may use the `refresh_token` grant (its registration, metadata document
/// or configuration lists it), and with `offline_access` only when the authorization request
/// asked for the `offline_access` scope too (the 2026-07-28 specification's guidance).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefreshTokens {
    Client,
    OfflineAccess,
}

/// A per-item authorization rule.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ItemRule {
    /// Replaces the operation's scopes for this item when set.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The caller must hold one of these roles (none = no role needed).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `[issuer]`: the embedded authorization server (feature `issuer`), used when `jwt.issuer` is
/// empty: who may sign in, which clients are known in advance, and how long things live.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// Serve the authorization server when this server issues its own tokens.
    pub enabled: bool,
    /// Lifetime of an authorization code, in seconds (at most 60).
    pub code_ttl_secs: u64,
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, in seconds (each rotation starts a new one).
    pub refresh_token_ttl_secs: u64,
    /// How long a person has to sign in and decide on the consent page, in seconds.
    pub request_ttl_secs: u64,
    /// How long a sign-in is remembered by the browser that made it, in seconds.
    pub session_ttl_secs: u64,
    /// Sign-in attempts per account (and per account from one known browser) per window.
    pub login_max_attempts: u32,
    /// The window of the sign-in limits, in seconds.
    pub login_window_secs: u64,
    /// The longest an account stays locked for unknown browsers, in seconds (the lock doubles
    /// each time the account is locked again within a day).
    pub login_max_lockout_secs: u64,
    /// Sign-in attempts per client address per window, whatever the account.
    pub login_max_attempts_per_address: u32,
    /// Authorization requests (`GET /authorize`) per client address per minute.
    pub authorize_per_address_per_minute: u32,
    /// Pending authorization requests kept per client address; the address's oldest make room.
    pub max_pending_per_address: usize,
    /// Client-secret attempts per client, and per client address, per `login_window_secs`
    /// (client assertions count as attempts too).
    pub client_secret_max_attempts: u32,
    /// Signature algorithms accepted for `private_key_jwt` client assertions.
    pub client_assertion_algorithms: Vec<JwtAlgorithm>,
    /// Password and secret checks waiting for a hashing thread at once; beyond that, 503.
    pub max_hash_queue: usize,
    /// Accept RFC 7591 dynamic client registration at `/register`.
    pub dynamic_registration: bool,
    /// Refuse dynamic registrations that do not state their `application_type` (SEP-837).
    pub require_application_type: bool,
    /// When an authorization comes with a refresh token.
    pub refresh_tokens: RefreshTokens,
    /// Registrations per client address per hour.
    pub registrations_per_address_per_hour: u32,
    /// The most registrations kept that have not been used yet (the oldest make room).
    pub max_registered_clients: usize,
    /// A registration never used is forgotten after this many seconds.
    pub unused_registration_ttl_secs: u64,
    /// A used registration is forgotten after this many seconds without use.
    pub idle_registration_ttl_secs: u64,
    /// The most used registrations kept (the least recently used make room).
    pub max_used_clients: usize,
    /// Development only: accept `http://` client ID metadata documents on loopback addresses.
    pub allow_loopback_http_client_ids: bool,
    /// Private-use redirect URI schemes accepted besides reverse-domain ones (`cursor`, say).
    pub redirect_schemes: Vec<String>,
    /// Start even when the documented development users are configured and `server.bind` is
    /// not a loopback address.
    pub allow_dev_users_on_public_bind: bool,
    /// People who may sign in.
    pub users: Vec<IssuerUser>,
    /// Clients registered in advance (confidential ones may use `client_credentials`).
    pub clients: Vec<IssuerClient>,
    /// Downstream audiences the token-exchange grant (RFC 8693) mints tokens for; empty = the
    /// grant is off. This server exchanges its callers' tokens for them itself.
    #[serde(default)]
    pub token_exchange_audiences: Vec<String>,
    /// Enterprise identity providers whose ID-JAGs the token endpoint accepts (Enterprise-Managed
    /// Authorization); none = the `jwt-bearer` grant is not offered.
    #[serde(default)]
    pub enterprise_idps: Vec<EnterpriseIdp>,
}

/// `[[issuer.enterprise_idps]]`: an enterprise identity provider trusted to sign Identity
/// Assertion JWT Authorization Grants (ID-JAGs) for this server's users.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnterpriseIdp {
    /// The IdP's issuer URL: the `iss` of its ID-JAGs, and where its keys are discovered.
    pub issuer: String,
    /// Its JWKS URL, when discovery (`<issuer>/.well-known/openid-configuration`) is not wanted.
    #[serde(default)]
    pub jwks_url: String,
    /// Signature algorithms accepted from it.
    #[serde(default = "default_idp_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// The clients it may issue ID-JAGs to (their `client_id`s here); empty = any client.
    #[serde(default)]
    pub allowed_clients: Vec<String>,
    /// Link an unknown `sub` to the user whose `email` is the ID-JAG's (with `email_verified`).
    #[serde(default = "default_true")]
    pub link_by_email: bool,
    /// Accept users nobody here knows, as accounts of their own with `provision_roles`.
    #[serde(default)]
    pub provision_users: bool,
    /// The roles of provisioned users (from `scopes.roles`).
    #[serde(default)]
    pub provision_roles: Vec<String>,
}

fn default_idp_algorithms() -> Vec<JwtAlgorithm> {
    vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256, JwtAlgorithm::PS256]
}

fn default_true() -> bool {
    true
}

/// A person who may sign in to the embedded authorization server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerUser {
    /// The sign-in name; also the token's `sub` and `preferred_username`.
    pub username: String,
    /// An Argon2 PHC string (`$argon2id$v=19$...`); never the password itself, but a weak
    /// password can be found from it offline, so it is kept out of `Debug` output and logs too.
    #[serde(serialize_with = "redacted")]
    pub password_hash: SecretString,
    /// Roles, from `scopes.roles`: they cap the scopes this user can grant.
    pub roles: Vec<String>,
    /// Display name (`name` claim); defaults to the username.
    #[serde(default)]
    pub name: String,
    /// E-mail address: an enterprise IdP's ID-JAG with this (verified) `email` links to this user.
    #[serde(default)]
    pub email: String,
}

/// A client registered in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerClient {
    pub client_id: String,
    /// Shown on the consent page; defaults to the client ID.
    #[serde(default)]
    pub name: String,
    /// Argon2 PHC string of the client secret; empty = a public client (PKCE, no secret).
    #[serde(default)]
    #[serde(serialize_with = "redacted")]
    pub secret_hash: SecretString,
    /// Redirect URIs for the authorization code grant.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Of `authorization_code`, `refresh_token`, `client_credentials`.
    #[serde(default = "default_client_grant_types")]
    pub grant_types: Vec<String>,
    /// `client_credentials`: the roles the client acts with (they cap its scopes).
    #[serde(default)]
    pub roles: Vec<String>,
    /// `client_credentials`: the scopes it may obtain; empty = whatever its roles permit.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Empty = decided by `secret_hash` (`none` without one, `client_secret_basic` or `_post`
    /// with one); `private_key_jwt` = signed client assertions (RFC 7523), verified with `jwks`
    /// or `jwks_uri`.
    #[serde(default)]
    pub token_endpoint_auth_method: String,
    /// `private_key_jwt`: the client's public keys, a JWKS document as JSON text.
    #[serde(default)]
    pub jwks: String,
    /// `private_key_jwt`: where the client publishes its JWKS (fetched and cached).
    #[serde(default)]
    pub jwks_uri: String,
}

fn default_client_grant_types() -> Vec<String> {
    vec!["authorization_code".to_owned(), "refresh_token".to_owned()]
}

/// The JWT bearer grant (RFC 7523 section 2.1), which carries an ID-JAG.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The grant types the embedded authorization server implements.
pub const GRANT_TYPES: [&str; 5] =
    ["authorization_code", "refresh_token", "client_credentials", JWT_BEARER, TOKEN_EXCHANGE_GRANT];

/// RFC 8693 token exchange's `grant_type`.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl IssuerSettings {
    fn validate(&mut self) -> Result<(), StartupError> {
        if !(1..=60).contains(&self.code_ttl_secs) {
            return Err(StartupError::config("issuer.code_ttl_secs", "must be between 1 and 60"));
        }
        for (key, value) in [
            ("issuer.access_token_ttl_secs", self.access_token_ttl_secs),
            ("issuer.refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("issuer.request_ttl_secs", self.request_ttl_secs),
            ("issuer.session_ttl_secs", self.session_ttl_secs),
            ("issuer.login_window_secs", self.login_window_secs),
            ("issuer.login_max_attempts", u64::from(self.login_max_attempts)),
            ("issuer.login_max_lockout_secs", self.login_max_lockout_secs),
            ("issuer.login_max_attempts_per_address", u64::from(self.login_max_attempts_per_address)),
            ("issuer.authorize_per_address_per_minute", u64::from(self.authorize_per_address_per_minute)),
            ("issuer.max_pending_per_address", self.max_pending_per_address as u64),
            ("issuer.client_secret_max_attempts", u64::from(self.client_secret_max_attempts)),
            ("issuer.max_hash_queue", self.max_hash_queue as u64),
            ("issuer.registrations_per_address_per_hour", u64::from(self.registrations_per_address_per_hour)),
            ("issuer.max_registered_clients", self.max_registered_clients as u64),
            ("issuer.unused_registration_ttl_secs", self.unused_registration_ttl_secs),
            ("issuer.idle_registration_ttl_secs", self.idle_registration_ttl_secs),
            ("issuer.max_used_clients", self.max_used_clients as u64),
        ] {
            if value == 0 {
                return Err(StartupError::config(key, "must be greater than 0"));
            }
        }
        if self.client_assertion_algorithms.is_empty() {
            return Err(StartupError::config(
                "issuer.client_assertion_algorithms",
                "must name at least one algorithm (RS256, ES256, PS256, ...)",
            ));
        }
        let mut usernames = std::collections::BTreeSet::new();
        for user in &mut self.users {
            user.username = user.username.trim().to_owned();
            let key = format!("issuer.users.{}", user.username);
            if user.username.is_empty() || user.username.len() > 64 || user.username.chars().any(char::is_control) {
                return Err(StartupError::config("issuer.users", "a username must be 1 to 64 printable characters"));
            }
            if !usernames.insert(user.username.to_lowercase()) {
                return Err(StartupError::config(key, "is listed twice (usernames are compared without case)"));
            }
            if user.roles.is_empty() {
                return Err(StartupError::config(key, "needs at least one role (roles cap what a user can grant)"));
            }
            if user.name.trim().is_empty() {
                user.name = user.username.clone();
            }
        }
        let mut emails = std::collections::BTreeSet::new();
        for user in &mut self.users {
            user.email = user.email.trim().to_owned();
            if !user.email.is_empty() && !emails.insert(user.email.to_lowercase()) {
                return Err(StartupError::config(
                    format!("issuer.users.{}.email", user.username),
                    "is another user's too: linking an enterprise identity by e-mail would be ambiguous",
                ));
            }
        }
        self.validate_enterprise_idps()?;
        let mut client_ids = std::collections::BTreeSet::new();
        for client in &mut self.clients {
            let key = format!("issuer.clients.{}", client.client_id);
            if client.client_id.trim().is_empty() || client.client_id.contains("://") {
                return Err(StartupError::config(
                    "issuer.clients",
                    "a client_id must be non-empty and not a URL (URLs are client ID metadata documents)",
                ));
            }
            if !client_ids.insert(client.client_id.clone()) {
                return Err(StartupError::config(key, "is listed twice"));
            }
            if let Some(unknown) = client.grant_types.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
                return Err(StartupError::config(
                    format!("{key}.grant_types"),
                    format!("names `{unknown}` (known: {})", GRANT_TYPES.join(", ")),
                ));
            }
            let has_secret = !client.secret_hash.expose_secret().is_empty();
            let has_keys = !client.jwks.trim().is_empty() || !client.jwks_uri.trim().is_empty();
            let method_key = format!("{key}.token_endpoint_auth_method");
            match client.token_endpoint_auth_method.trim() {
                "" if has_keys => {
                    return Err(StartupError::config(
                        method_key,
                        "must be `private_key_jwt` when jwks or jwks_uri is set",
                    ));
                }
                "" => {}
                "none" if has_secret => return Err(StartupError::config(method_key, "`none` takes no secret_hash")),
                "client_secret_basic" | "client_secret_post" if !has_secret => {
                    return Err(StartupError::config(method_key, "a client secret method needs a secret_hash"));
                }
                "none" | "client_secret_basic" | "client_secret_post" if has_keys => {
                    return Err(StartupError::config(method_key, "jwks and jwks_uri are for `private_key_jwt`"));
                }
                "none" | "client_secret_basic" | "client_secret_post" => {}
                "private_key_jwt" => {
                    if has_secret {
                        return Err(StartupError::config(
                            method_key,
                            "`private_key_jwt` takes no secret_hash: a client authenticates one way",
                        ));
                    }
                    if client.jwks.trim().is_empty() == client.jwks_uri.trim().is_empty() {
                        return Err(StartupError::config(
                            method_key,
                            "`private_key_jwt` needs exactly one of jwks (inline JSON) and jwks_uri",
                        ));
                    }
                    if !client.jwks_uri.trim().is_empty() {
                        client.jwks_uri = client.jwks_uri.trim().to_owned();
                        check_remote_url(&format!("{key}.jwks_uri"), &client.jwks_uri)?;
                    }
                }
                other => {
                    return Err(StartupError::config(
                        method_key,
                        format!(
                            "`{other}` is not supported (none, client_secret_basic, client_secret_post, private_key_jwt)"
                        ),
                    ));
                }
            }
            let grants = |name: &str| client.grant_types.iter().any(|g| g == name);
            if grants("client_credentials")
                && (!(has_secret || client.token_endpoint_auth_method.trim() == "private_key_jwt")
                    || client.roles.is_empty())
            {
                return Err(StartupError::config(
                    key,
                    "client_credentials needs a secret_hash or private_key_jwt (a confidential client) and at least \
                     one role",
                ));
            }
            if grants(TOKEN_EXCHANGE_GRANT)
                && !(has_secret || client.token_endpoint_auth_method.trim() == "private_key_jwt")
            {
                return Err(StartupError::config(
                    format!("{key}.grant_types"),
                    "token exchange is for confidential clients: it needs a secret_hash or private_key_jwt",
                ));
            }
            if grants("authorization_code") && client.redirect_uris.is_empty() {
                return Err(StartupError::config(key, "authorization_code needs at least one redirect URI"));
            }
            if grants(JWT_BEARER) {
                if !(has_secret || client.token_endpoint_auth_method.trim() == "private_key_jwt") {
                    return Err(StartupError::config(
                        key,
                        "the jwt-bearer grant (ID-JAG) needs a secret_hash or private_key_jwt: the client \
                         authenticates as it is registered (Enterprise-Managed Authorization section 5)",
                    ));
                }
                if self.enterprise_idps.is_empty() {
                    return Err(StartupError::config(
                        key,
                        "lists the jwt-bearer grant, but no [[issuer.enterprise_idps]] is configured",
                    ));
                }
            }
            if client.name.trim().is_empty() {
                client.name = client.client_id.clone();
            }
        }
        Ok(())
    }
}

/// `[token_exchange]`: exchanging callers' tokens for tools' downstream calls (RFC 8693, feature
/// `jwt`; see `token_exchange`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenExchangeSettings {
    /// Downstream tokens kept at once, over every caller, audience and scope set.
    pub cache_size: usize,
    /// Time limit of one request to a token endpoint (or its discovery), in seconds.
    pub timeout_secs: u64,
    /// The issuers whose tokens are exchanged, each at its own token endpoint.
    pub issuers: Vec<TokenExchangeIssuer>,
}

impl Default for TokenExchangeSettings {
    fn default() -> Self {
        TokenExchangeSettings { cache_size: 10_000, timeout_secs: 10, issuers: Vec::new() }
    }
}

/// `[[token_exchange.issuers]]`: where and how the tokens of one issuer are exchanged.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeIssuer {
    /// The `iss` of the tokens exchanged here, exactly as the tokens carry it.
    pub issuer: String,
    /// Empty = the `token_endpoint` of the issuer's metadata (OpenID Connect discovery, then
    /// RFC 8414), looked up at the first exchange.
    #[serde(default)]
    pub token_endpoint: String,
    /// This server's client at the issuer (`client_secret_basic`).
    pub client_id: String,
    #[serde(serialize_with = "redacted")]
    pub client_secret: SecretString,
    /// The downstream audiences tools may ask for; any other is refused without a request.
    pub audiences: Vec<String>,
    /// A cached token is used until this many seconds before it expires.
    #[serde(default = "default_cache_margin_secs")]
    pub cache_margin_secs: u64,
}

fn default_cache_margin_secs() -> u64 {
    30
}

impl IssuerSettings {
    /// `[[issuer.enterprise_idps]]`: URLs, one entry per issuer, roles for provisioning.
    fn validate_enterprise_idps(&mut self) -> Result<(), StartupError> {
        let mut issuers = std::collections::BTreeSet::new();
        for idp in &mut self.enterprise_idps {
            idp.issuer = idp.issuer.trim().to_owned();
            if idp.issuer.is_empty() {
                return Err(StartupError::config("issuer.enterprise_idps", "every entry needs its `issuer` URL"));
            }
            let key = format!("issuer.enterprise_idps.{}", idp.issuer);
            check_remote_url(&format!("{key}.issuer"), &idp.issuer)?;
            if !issuers.insert(idp.issuer.clone()) {
                return Err(StartupError::config(key, "is listed twice"));
            }
            idp.jwks_url = idp.jwks_url.trim().to_owned();
            if !idp.jwks_url.is_empty() {
                check_remote_url(&format!("{key}.jwks_url"), &idp.jwks_url)?;
            }
            if idp.algorithms.is_empty() {
                return Err(StartupError::config(
                    format!("{key}.algorithms"),
                    "must name at least one algorithm (RS256, ES256, PS256, ...)",
                ));
            }
            if idp.allowed_clients.iter().any(|c| c.trim().is_empty()) {
                return Err(StartupError::config(format!("{key}.allowed_clients"), "must not contain empty values"));
            }
            if idp.provision_users && idp.provision_roles.is_empty() {
                return Err(StartupError::config(
                    format!("{key}.provision_roles"),
                    "provision_users needs at least one role: roles cap what a provisioned user can be granted",
                ));
            }
            if !idp.provision_users && !idp.provision_roles.is_empty() {
                return Err(StartupError::config(
                    format!("{key}.provision_roles"),
                    "is only used with provision_users = true",
                ));
            }
        }
        Ok(())
    }
}

/// `[storage]`: where state that must survive a restart, or be shared by instances, is kept.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Empty = automatic (decided where the store is opened); otherwise a [`StorageUrl`] form.
    /// A Redis URL may hold a password: it is never printed (`Debug`, `check-config`).
    #[serde(serialize_with = "url_without_password")]
    pub url: String,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings").field("url", &without_password(&self.url)).finish()
    }
}

/// `url` with its password, if it has one, replaced by `***` (as [`StorageUrl::redacted`]).
fn without_password(url: &str) -> String {
    StorageUrl::parse(url).map_or_else(|_| redact_before_parse(url), |parsed| parsed.redacted())
}

fn url_without_password<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&without_password(url))
}

impl StorageSettings {
    /// The configured store, or `None` when `url` is empty (automatic).
    pub fn parsed(&self) -> Result<Option<StorageUrl>, StartupError> {
        let raw = self.url.trim();
        if raw.is_empty() { Ok(None) } else { StorageUrl::parse(raw).map(Some) }
    }
}

/// A parsed `storage.url`. Lives here rather than in the `store` module because settings are
/// validated in every build, with or without the store backends.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// `memory:` — this process only, lost on restart.
    Memory,
    /// `sqlite://PATH` — a database file (relative paths from the working directory).
    Sqlite(PathBuf),
    /// `redis://...` or `rediss://...` (TLS) — the URL as given, for the Redis client.
    Redis(String),
}

impl StorageUrl {
    const FORMS: &str = "expected `memory:`, `sqlite://PATH`, `redis://HOST:PORT/DB` or `rediss://HOST:PORT/DB`";

    /// Parses one of the forms `memory:`, `sqlite://PATH`, `redis://...`, `rediss://...`. Errors
    /// name `storage.url` and never repeat a password.
    pub fn parse(raw: &str) -> Result<StorageUrl, StartupError> {
        let key = "storage.url";
        let raw = raw.trim();
        if raw == "memory:" {
            return Ok(StorageUrl::Memory);
        }
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StartupError::config(
                    key,
                    "`sqlite://` needs a file path, e.g. `sqlite://data/mcp-auth.db`",
                ));
            }
            return Ok(StorageUrl::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("redis://") || raw.starts_with("rediss://") {
            let url = Url::parse(raw)
                .map_err(|e| StartupError::config(key, format!("`{}` is not a URL: {e}", redact_before_parse(raw))))?;
            let shown = redact(&url);
            if url.host_str().is_none_or(str::is_empty) {
                return Err(StartupError::config(key, format!("`{shown}` has no host")));
            }
            if url.fragment().is_some() {
                return Err(StartupError::config(key, format!("`{shown}` must not have a fragment")));
            }
            let db = url.path().trim_start_matches('/');
            if !db.is_empty() && db.parse::<u16>().is_err() {
                return Err(StartupError::config(key, format!("`{shown}`: the path is a database number, e.g. `/0`")));
            }
            return Ok(StorageUrl::Redis(raw.to_owned()));
        }
        // Only the scheme is repeated: the rest may hold a password.
        let scheme = raw.split_once(':').map_or(raw, |(scheme, _)| scheme);
        Err(StartupError::config(key, format!("has an unknown form (scheme `{scheme}`): {}", Self::FORMS)))
    }

    /// The URL for logs and errors: a Redis password is replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            StorageUrl::Memory => "memory:".to_owned(),
            StorageUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            StorageUrl::Redis(raw) => Url::parse(raw).map_or_else(|_| redact_before_parse(raw), |url| redact(&url)),
        }
    }
}

/// Debug output is the redacted URL, so a Redis password never reaches a log through `{:?}`.
impl std::fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StorageUrl({})", self.redacted())
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A URL with its password (if any) replaced by `***`.
fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Only fails for URLs that cannot have credentials, which then have no password.
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

/// An unparsable URL, shown without anything between `://` and the last `@` (the credentials).
fn redact_before_parse(raw: &str) -> String {
    match (raw.split_once("://"), raw.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &raw[at..]),
        _ => raw.to_owned(),
    }
}

/// `[jwt]`: access tokens, and the keys that sign and verify them (used by feature `jwt`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Expected `iss`. Empty = this server issues its own tokens (`iss` = `server.public_url`).
    pub issuer: String,
    /// Where the verification keys come from, when not from local files or discovery.
    pub jwks_url: String,
    /// The local signing key (PEM). Created with the public key when neither exists.
    pub private_key: PathBuf,
    /// Local verification keys (PEM); all of them are accepted and published (rotation).
    pub public_keys: Vec<PathBuf>,
    /// Accepted signature algorithms.
    pub algorithms: Vec<JwtAlgorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Whether `aud` must name this server. Turning it off is logged at start-up.
    pub enforce_audience: bool,
    /// Audiences accepted besides this server's resource URL.
    pub extra_audiences: Vec<String>,
    /// Dotted claim paths whose string arrays are the caller's roles.
    pub role_claims: Vec<String>,
    /// Remote keys: seconds between scheduled refreshes.
    pub refresh_interval_secs: u64,
    /// Remote keys: the least time between two fetches triggered by an unknown `kid`.
    pub min_refresh_interval_secs: u64,
    /// Remote keys: time limit of one HTTP request to the issuer, in seconds.
    pub fetch_timeout_secs: u64,
    /// Remote keys: how long start-up keeps trying to fetch them before giving up, in seconds.
    pub startup_timeout_secs: u64,
    /// Verified tokens remembered so a repeated token skips the signature check (0 = off).
    pub token_cache_size: usize,
    /// Largest accepted `Authorization` header, in bytes.
    pub max_header_bytes: usize,
    /// More trusted issuers (`[[jwt.issuers]]`), beside `jwt.issuer` (its short form).
    #[serde(default)]
    pub issuers: Vec<IssuerEntry>,
    /// Opaque tokens: the longest an active introspection answer is reused, in seconds (it is
    /// never reused past the token's `exp`).
    pub introspection_cache_secs: u64,
    /// Opaque tokens: how long an inactive answer is remembered, in seconds (0 = not at all).
    pub introspection_negative_cache_secs: u64,
}

/// One `[[jwt.issuers]]` table: an issuer whose tokens are accepted, with its own keys,
/// audiences, role claims and algorithms (each defaulting to the `[jwt]` value).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerEntry {
    /// The `iss` its tokens carry, compared exactly.
    pub issuer: String,
    /// Its JWKS; empty = discovery from `issuer` (or no keys, for an introspection-only issuer).
    #[serde(default)]
    pub jwks_url: String,
    /// Audiences accepted besides this server's resource URL; empty = `jwt.extra_audiences`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Role claim paths; absent = `jwt.role_claims`.
    #[serde(default)]
    pub role_claims: Option<Vec<String>>,
    /// Accepted algorithms; absent = `jwt.algorithms`.
    #[serde(default)]
    pub algorithms: Option<Vec<JwtAlgorithm>>,
    /// RFC 7662 endpoint for opaque (non-JWT) access tokens.
    #[serde(default)]
    pub introspection_url: String,
    /// Client credentials for the introspection endpoint (`client_secret_basic`).
    #[serde(default)]
    pub client_id: String,
    #[serde(default = "empty_secret", serialize_with = "redacted")]
    pub client_secret: SecretString,
}

fn empty_secret() -> SecretString {
    SecretString::from("")
}

/// An issuer as the `jwt` layer trusts it, resolved from `jwt.issuer` or a `[[jwt.issuers]]`
/// entry with the `[jwt]` defaults filled in.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub keys: KeySource,
    /// Audiences accepted besides this server's resource URL.
    pub audiences: Vec<String>,
    pub role_claims: Vec<String>,
    pub algorithms: Vec<JwtAlgorithm>,
    pub introspection: Option<IntrospectionClient>,
}

/// Where and as whom opaque tokens are introspected.
#[derive(Debug, Clone)]
pub struct IntrospectionClient {
    pub url: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Where verification keys come from, as decided by `jwt.issuer` and `jwt.jwks_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Local PEM files (`jwt.private_key`, `jwt.public_keys`): this server is the issuer.
    LocalFiles,
    /// A JWKS document at this URL.
    JwksUrl(String),
    /// The issuer's metadata (OpenID Connect discovery, then RFC 8414) names the JWKS.
    Discovery(String),
    /// No signing keys: an issuer whose tokens are opaque and introspected.
    Introspection,
}

impl JwtSettings {
    /// The key source: no issuer = local files; a JWKS URL = that; an issuer alone = discovery.
    pub fn key_source(&self) -> KeySource {
        if !self.jwks_url.trim().is_empty() {
            KeySource::JwksUrl(self.jwks_url.trim().to_owned())
        } else if !self.issuer.is_empty() {
            KeySource::Discovery(self.issuer.clone())
        } else {
            KeySource::LocalFiles
        }
    }

    /// The algorithm local tokens are signed with: the first RSA algorithm allowed.
    pub fn local_signing_algorithm(&self) -> Option<JwtAlgorithm> {
        self.algorithms.iter().copied().find(|alg| alg.is_rsa())
    }

    /// Whether the local keys are trusted (and loaded): `jwt.issuer` is empty, and either no
    /// `[[jwt.issuers]]` are listed (the embedded issuer's set-up, as before) or one of them names
    /// this server (`public_url`) — so listing external issuers never adds local keys by surprise.
    pub fn trusts_local_keys(&self, public_url: &str) -> bool {
        self.issuer.is_empty() && (self.issuers.is_empty() || self.issuers.iter().any(|e| e.issuer == public_url))
    }

    /// Every trusted issuer, in order: `jwt.issuer` (or this server, with local keys), then the
    /// `[[jwt.issuers]]` entries. `public_url` is this server's (`server.public_url`).
    pub fn trusted_issuers(&self, public_url: &str) -> Vec<TrustedIssuer> {
        let mut trusted = Vec::new();
        let short = |issuer: String, keys: KeySource| TrustedIssuer {
            issuer,
            keys,
            audiences: self.extra_audiences.iter().map(|a| a.trim().to_owned()).collect(),
            role_claims: self.role_claims.clone(),
            algorithms: self.algorithms.clone(),
            introspection: None,
        };
        if !self.issuer.is_empty() {
            trusted.push(short(self.issuer.clone(), self.key_source()));
        } else if self.issuers.is_empty() {
            trusted.push(short(public_url.to_owned(), KeySource::LocalFiles));
        }
        for entry in &self.issuers {
            let keys = if entry.issuer == public_url && self.issuer.is_empty() {
                KeySource::LocalFiles
            } else if !entry.jwks_url.trim().is_empty() {
                KeySource::JwksUrl(entry.jwks_url.trim().to_owned())
            } else if !entry.introspection_url.trim().is_empty() {
                KeySource::Introspection
            } else {
                KeySource::Discovery(entry.issuer.clone())
            };
            let audiences = if entry.audiences.is_empty() { &self.extra_audiences } else { &entry.audiences };
            let introspection = (!entry.introspection_url.trim().is_empty()).then(|| IntrospectionClient {
                url: entry.introspection_url.trim().to_owned(),
                client_id: entry.client_id.trim().to_owned(),
                client_secret: entry.client_secret.clone(),
            });
            trusted.push(TrustedIssuer {
                issuer: entry.issuer.clone(),
                keys,
                audiences: audiences.iter().map(|a| a.trim().to_owned()).collect(),
                role_claims: entry.role_claims.clone().unwrap_or_else(|| self.role_claims.clone()),
                algorithms: entry.algorithms.clone().unwrap_or_else(|| self.algorithms.clone()),
                introspection,
            });
        }
        trusted
    }

    /// The issuer RFC 8414 metadata on this origin speaks for: `jwt.issuer`, else this server
    /// when its local keys are trusted, else the first `[[jwt.issuers]]` entry.
    pub fn primary_issuer(&self, public_url: &str) -> String {
        self.trusted_issuers(public_url).into_iter().next().map_or_else(|| public_url.to_owned(), |t| t.issuer)
    }
}

/// A JWS signature algorithm accepted for access tokens. HMAC and `none` are not representable:
/// with public keys they are never safe to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum JwtAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    pub const ALL: [JwtAlgorithm; 9] = [
        JwtAlgorithm::RS256,
        JwtAlgorithm::RS384,
        JwtAlgorithm::RS512,
        JwtAlgorithm::PS256,
        JwtAlgorithm::PS384,
        JwtAlgorithm::PS512,
        JwtAlgorithm::ES256,
        JwtAlgorithm::ES384,
        JwtAlgorithm::EdDSA,
    ];

    /// The JOSE name (`alg` header value).
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::RS384 => "RS384",
            JwtAlgorithm::RS512 => "RS512",
            JwtAlgorithm::PS256 => "PS256",
            JwtAlgorithm::PS384 => "PS384",
            JwtAlgorithm::PS512 => "PS512",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::ES384 => "ES384",
            JwtAlgorithm::EdDSA => "EdDSA",
        }
    }

    /// Whether this algorithm uses an RSA key.
    pub fn is_rsa(self) -> bool {
        matches!(self.as_str().as_bytes()[0], b'R' | b'P')
    }

    /// Parses a JOSE `alg` name; `None` for anything not accepted (including `none` and HS*).
    pub fn from_name(name: &str) -> Option<JwtAlgorithm> {
        JwtAlgorithm::ALL.into_iter().find(|alg| alg.as_str() == name)
    }
}

impl TryFrom<String> for JwtAlgorithm {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        if let Some(alg) = JwtAlgorithm::from_name(name.trim()) {
            return Ok(alg);
        }
        let known = JwtAlgorithm::ALL.map(JwtAlgorithm::as_str).join(", ");
        if name.trim().to_ascii_uppercase().starts_with("HS") || name.trim().eq_ignore_ascii_case("none") {
            Err(format!(
                "`{name}` is never accepted: tokens are verified with public keys, and a symmetric or \
                 absent signature would let anyone holding the public key forge them (known: {known})"
            ))
        } else {
            Err(format!("unknown algorithm `{name}` (known: {known})"))
        }
    }
}

impl Serialize for JwtAlgorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &[
    "server.allowed_hosts",
    "server.allowed_origins",
    "jwt.public_keys",
    "jwt.algorithms",
    "jwt.extra_audiences",
    "jwt.role_claims",
    "oauth.authorization_servers",
    "scopes.supported",
    "issuer.redirect_schemes",
    "issuer.client_assertion_algorithms",
];

impl Settings {
    /// Loads the layered configuration of a real process (files and environment).
    pub fn load() -> Result<Settings, StartupError> {
        Self::load_with(None)
    }

    /// Loads the layered configuration with `file` (the command line's `--config`) on top of
    /// the profile file, below the environment.
    pub fn load_with(file: Option<&Path>) -> Result<Settings, StartupError> {
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
        if let Some(file) = file
            && !file.is_file()
        {
            return Err(StartupError::config("--config", format!("{} is not a file", file.display())));
        }
        let environment: Vec<(String, String)> =
            std::env::vars().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
        check_environment(&environment)?;

        let mut env = Environment::with_prefix("MCP_AUTH")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }

        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from(dir.join("default.toml")).required(false))
            .add_source(File::from(profile_path).required(false));
        if let Some(file) = file {
            builder = builder.add_source(File::from(file.to_owned()).format(FileFormat::Toml));
        }
        Self::finish(builder.add_source(env).build()).map_err(|err| name_the_variable(err, &environment))
    }

    /// Compiled-in defaults overlaid with `overrides` (TOML). Used by tests and examples, which
    /// must not depend on the caller's environment.
    pub fn from_toml(overrides: &str) -> Result<Settings, StartupError> {
        Self::from_toml_layers(&[overrides])
    }

    /// Compiled-in defaults overlaid with each TOML layer in turn (later layers win).
    pub fn from_toml_layers(layers: &[&str]) -> Result<Settings, StartupError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        for layer in layers {
            builder = builder.add_source(File::from_str(layer, FileFormat::Toml));
        }
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
        if server.max_connections == 0 {
            return Err(StartupError::config("server.max_connections", "must be greater than 0"));
        }
        if server.max_header_bytes < 8192 {
            return Err(StartupError::config("server.max_header_bytes", "must be at least 8192"));
        }
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
        self.jwt.validate(&self.server.public_url)?;
        self.storage.parsed()?;
        self.validate_admin()?;
        let endpoint = self.telemetry.otlp_endpoint.trim();
        if !endpoint.is_empty() {
            check_remote_url("telemetry.otlp_endpoint", endpoint)?;
        }
        self.issuer.validate()?;
        self.validate_token_exchange()
    }

    /// `[token_exchange]` and `issuer.token_exchange_audiences`: every exchanging issuer is one
    /// whose tokens this server accepts, named once, with an endpoint (or discovery), client
    /// credentials and audiences; no downstream audience is this server itself.
    fn validate_token_exchange(&mut self) -> Result<(), StartupError> {
        let own_audiences: Vec<String> = std::iter::once(self.mcp_url())
            .chain(self.jwt.extra_audiences.iter().map(|a| a.trim().to_owned()))
            .collect();
        let audiences_key = "issuer.token_exchange_audiences";
        for audience in &mut self.issuer.token_exchange_audiences {
            *audience = audience.trim().to_owned();
            if audience.is_empty() {
                return Err(StartupError::config(audiences_key, "must not contain empty values"));
            }
            if own_audiences.contains(audience) {
                return Err(StartupError::config(
                    audiences_key,
                    format!("names `{audience}`, an audience of this server: exchanged tokens would be accepted here"),
                ));
            }
        }
        let exchange = &mut self.token_exchange;
        if exchange.cache_size == 0 || exchange.timeout_secs == 0 {
            return Err(StartupError::config("token_exchange", "cache_size and timeout_secs must be greater than 0"));
        }
        // Every issuer whose tokens this server accepts (`jwt.issuer`, `[[jwt.issuers]]`); this
        // server's own (local keys) exchanges in-process instead.
        let public_url = self.server.public_url.clone();
        let local = self.jwt.trusts_local_keys(&public_url);
        let accepted: Vec<String> = self.jwt.trusted_issuers(&public_url).into_iter().map(|t| t.issuer).collect();
        let mut seen = std::collections::BTreeSet::new();
        for entry in &mut exchange.issuers {
            entry.issuer = entry.issuer.trim().to_owned();
            let key = format!("token_exchange.issuers.{}", entry.issuer);
            check_remote_url(&format!("{key}.issuer"), &entry.issuer)?;
            if !seen.insert(entry.issuer.clone()) {
                return Err(StartupError::config(key, "is listed twice"));
            }
            if local && entry.issuer == public_url {
                return Err(StartupError::config(
                    key,
                    "is this server's own issuer: set issuer.token_exchange_audiences instead (it exchanges for \
                     itself)",
                ));
            }
            if !accepted.contains(&entry.issuer) {
                return Err(StartupError::config(
                    key,
                    format!("is not an issuer whose tokens this server accepts ({})", accepted.join(", ")),
                ));
            }
            entry.token_endpoint = entry.token_endpoint.trim().to_owned();
            if !entry.token_endpoint.is_empty() {
                check_remote_url(&format!("{key}.token_endpoint"), &entry.token_endpoint)?;
            }
            if entry.client_id.trim().is_empty() || entry.client_secret.expose_secret().is_empty() {
                return Err(StartupError::config(
                    key,
                    "needs client_id and client_secret (this server authenticates with client_secret_basic)",
                ));
            }
            for audience in &mut entry.audiences {
                *audience = audience.trim().to_owned();
            }
            if entry.audiences.is_empty() || entry.audiences.iter().any(String::is_empty) {
                return Err(StartupError::config(
                    format!("{key}.audiences"),
                    "must name at least one downstream audience, and no empty one",
                ));
            }
            if let Some(own) = entry.audiences.iter().find(|a| own_audiences.contains(a)) {
                return Err(StartupError::config(
                    format!("{key}.audiences"),
                    format!("names `{own}`, an audience of this server: that is passthrough, not exchange"),
                ));
            }
            if entry.cache_margin_secs > 3600 {
                return Err(StartupError::config(format!("{key}.cache_margin_secs"), "must be at most 3600"));
            }
        }
        Ok(())
    }

    /// The admin listener is never the public one: another port (or another address) than
    /// `server.bind`.
    fn validate_admin(&self) -> Result<(), StartupError> {
        let Some(admin) = self.admin.bind else { return Ok(()) };
        let public = self.server.bind;
        let overlaps = admin.port() == public.port()
            && (admin.ip() == public.ip() || admin.ip().is_unspecified() || public.ip().is_unspecified());
        if overlaps && admin.port() != 0 {
            return Err(StartupError::config(
                "admin.bind",
                format!(
                    "({admin}) must not be the public listener ({public}): metrics and the detailed health \
                     report are never served on the public port"
                ),
            ));
        }
        Ok(())
    }

    /// The URL clients connect to for MCP, and this server's OAuth resource identifier.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.server.public_url)
    }

    /// The `iss` access tokens must carry: `jwt.issuer`, or this server's public URL.
    pub fn token_issuer(&self) -> String {
        if self.jwt.issuer.is_empty() { self.server.public_url.clone() } else { self.jwt.issuer.clone() }
    }
}

impl JwtSettings {
    fn validate(&mut self, public_url: &str) -> Result<(), StartupError> {
        self.issuer = self.issuer.trim().to_owned();
        if !self.issuer.is_empty() {
            check_remote_url("jwt.issuer", &self.issuer)?;
        }
        let jwks_url = self.jwks_url.trim();
        if !jwks_url.is_empty() {
            check_remote_url("jwt.jwks_url", jwks_url)?;
            if self.issuer.is_empty() {
                return Err(StartupError::config(
                    "jwt.jwks_url",
                    "needs `jwt.issuer` too: the `iss` value the tokens from that key set carry",
                ));
            }
        }
        if self.algorithms.is_empty() {
            return Err(StartupError::config("jwt.algorithms", "must name at least one algorithm"));
        }
        if self.leeway_secs > 600 {
            return Err(StartupError::config("jwt.leeway_secs", "must be at most 600 (fix the clocks instead)"));
        }
        if self.extra_audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(StartupError::config("jwt.extra_audiences", "must not contain empty values"));
        }
        if self.role_claims.iter().any(|path| path.split('.').any(|segment| segment.trim().is_empty())) {
            return Err(StartupError::config("jwt.role_claims", "paths are dotted claim names, without empty parts"));
        }
        for (key, value) in [
            ("jwt.refresh_interval_secs", self.refresh_interval_secs),
            ("jwt.fetch_timeout_secs", self.fetch_timeout_secs),
            ("jwt.max_header_bytes", self.max_header_bytes as u64),
        ] {
            if value == 0 {
                return Err(StartupError::config(key, "must be greater than 0"));
            }
        }
        self.validate_issuers(public_url)
    }

    /// The `[[jwt.issuers]]` entries: each well formed, none listed twice (nor as `jwt.issuer`),
    /// at most one introspection endpoint.
    fn validate_issuers(&mut self, public_url: &str) -> Result<(), StartupError> {
        let mut seen: Vec<String> = Vec::new();
        if !self.issuer.is_empty() {
            seen.push(self.issuer.clone());
        }
        let mut introspecting: Option<String> = None;
        for (index, entry) in self.issuers.iter_mut().enumerate() {
            let key = format!("jwt.issuers[{index}]");
            entry.issuer = entry.issuer.trim().to_owned();
            if entry.issuer.is_empty() {
                return Err(StartupError::config(format!("{key}.issuer"), "is required (the `iss` its tokens carry)"));
            }
            check_remote_url(&format!("{key}.issuer"), &entry.issuer)?;
            if seen.contains(&entry.issuer) {
                let why = if self.issuer == entry.issuer {
                    format!(
                        "`{}` is jwt.issuer already: list an issuer once, as jwt.issuer or as a [[jwt.issuers]] table",
                        entry.issuer
                    )
                } else {
                    format!("`{}` is listed twice", entry.issuer)
                };
                return Err(StartupError::config(format!("{key}.issuer"), why));
            }
            seen.push(entry.issuer.clone());
            let local = entry.issuer == public_url && self.issuer.is_empty();
            if local && !(entry.jwks_url.trim().is_empty() && entry.introspection_url.trim().is_empty()) {
                return Err(StartupError::config(
                    &key,
                    "names this server (server.public_url): its tokens are checked with the local keys, so it takes                      no jwks_url or introspection_url",
                ));
            }
            if !entry.jwks_url.trim().is_empty() {
                check_remote_url(&format!("{key}.jwks_url"), entry.jwks_url.trim())?;
            }
            if entry.audiences.iter().any(|a| a.trim().is_empty()) {
                return Err(StartupError::config(format!("{key}.audiences"), "must not contain empty values"));
            }
            if let Some(paths) = &entry.role_claims
                && paths.iter().any(|path| path.split('.').any(|segment| segment.trim().is_empty()))
            {
                return Err(StartupError::config(
                    format!("{key}.role_claims"),
                    "paths are dotted claim names, without empty parts",
                ));
            }
            if entry.algorithms.as_ref().is_some_and(Vec::is_empty) {
                return Err(StartupError::config(format!("{key}.algorithms"), "must name at least one algorithm"));
            }
            let introspection = entry.introspection_url.trim();
            let has_secret = !entry.client_secret.expose_secret().is_empty();
            if introspection.is_empty() {
                if !entry.client_id.trim().is_empty() || has_secret {
                    return Err(StartupError::config(
                        &key,
                        "client_id and client_secret are the introspection endpoint's: set introspection_url too",
                    ));
                }
                continue;
            }
            check_remote_url(&format!("{key}.introspection_url"), introspection)?;
            if entry.client_id.trim().is_empty() || !has_secret {
                return Err(StartupError::config(
                    &key,
                    "introspection_url needs client_id and client_secret (RFC 7662 requires the caller to authenticate)",
                ));
            }
            // An opaque token names no issuer: it could only be tried at each endpoint in turn,
            // handing one identity provider's tokens to another. One endpoint, and no guessing.
            if let Some(first) = &introspecting {
                return Err(StartupError::config(
                    format!("{key}.introspection_url"),
                    format!(
                        "only one issuer may introspect opaque tokens ({first} does already): an opaque token \
                             names no issuer, and sending it to several would show one provider's tokens to another"
                    ),
                ));
            }
            introspecting = Some(entry.issuer.clone());
        }
        if self.introspection_cache_secs == 0 {
            return Err(StartupError::config("jwt.introspection_cache_secs", "must be greater than 0"));
        }
        if self.trusts_local_keys(public_url) && self.local_signing_algorithm().is_none() {
            return Err(StartupError::config(
                "jwt.algorithms",
                "local keys are RSA: include an RSA algorithm (RS256, PS256, ...) or configure a remote issuer",
            ));
        }
        Ok(())
    }
}

/// An issuer or JWKS URL: absolute http(s), no fragment.
fn check_remote_url(key: &str, raw: &str) -> Result<(), StartupError> {
    let url = Url::parse(raw).map_err(|e| StartupError::config(key, format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(StartupError::config(key, "scheme must be http or https"));
    }
    if url.fragment().is_some() || url.host_str().is_none() {
        return Err(StartupError::config(key, "must have a host and no fragment"));
    }
    Ok(())
}

/// `server.bind`: an IP address and port, or `localhost:PORT` (loopback, IPv4). A host name is
/// refused rather than resolved: which of its addresses to listen on would be a guess.
fn bind_address<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let raw = String::deserialize(deserializer)?;
    let raw = raw.trim();
    if let Ok(address) = raw.parse() {
        return Ok(address);
    }
    if let Some(port) = raw.strip_prefix("localhost:").and_then(|port| port.parse::<u16>().ok()) {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Err(serde::de::Error::custom(format!(
        "`{raw}` is not an IP address and port: use e.g. 127.0.0.1:3000 (this machine only), 0.0.0.0:3000 \
         (every interface, with server.public_url set) or [::1]:3000; localhost:PORT is read as 127.0.0.1:PORT"
    )))
}

/// `admin.bind`: empty (no admin listener), or an address as [`bind_address`] takes it.
fn optional_bind_address<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
    let raw = String::deserialize(deserializer)?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    bind_address(serde::de::value::StringDeserializer::<D::Error>::new(raw)).map(Some)
}

fn address_or_empty<S: Serializer>(address: &Option<SocketAddr>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&address.map(|a| a.to_string()).unwrap_or_default())
}

/// Fills in the public URL from the bind address when empty, and checks its shape. Listening on
/// every interface needs it set: `http://0.0.0.0:3000` would become the issuer and the audience
/// of every token, and no client can connect to it.
fn normalise_public_url(raw: &str, bind: SocketAddr) -> Result<String, StartupError> {
    let key = "server.public_url";
    let raw = raw.trim();
    if raw.is_empty() {
        if bind.ip().is_unspecified() {
            return Err(StartupError::config(
                key,
                format!(
                    "must be set when server.bind ({bind}) listens on every interface: the URL clients connect \
                     to, e.g. https://mcp.example.com (it names this server in tokens and metadata)"
                ),
            ));
        }
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

/// How a secret is shown when the settings are printed (`check-config`): whether it is set, never
/// what it is.
fn redacted<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if secret.expose_secret().is_empty() { "" } else { "[redacted]" })
}

impl Settings {
    /// The effective settings as TOML, secrets redacted: what `check-config` prints.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|err| format!("# the settings cannot be shown as TOML: {err}\n"))
    }
}

/// The prefix of the environment variables that set settings: `MCP_AUTH__SECTION__KEY`.
const ENV_PREFIX: &str = "MCP_AUTH__";

/// Settings whose values are maps with keys of the operator's choosing (`scopes.roles.admin`).
const MAP_SETTINGS: &[&str] =
    &["scopes.operations", "scopes.implies", "scopes.roles", "scopes.tools", "scopes.prompts", "scopes.resources"];

/// The dotted setting an environment variable names: `MCP_AUTH__JWT__ISSUER` -> `jwt.issuer`.
fn setting_of(variable: &str) -> String {
    variable.trim_start_matches(ENV_PREFIX).to_ascii_lowercase().replace("__", ".")
}

/// Every setting of the compiled-in defaults (which list them all), as dotted paths.
fn known_settings() -> Vec<String> {
    fn walk(prefix: &str, value: &config::Value, out: &mut Vec<String>) {
        if let Ok(table) = value.clone().into_table()
            && !MAP_SETTINGS.contains(&prefix)
        {
            for (key, value) in table {
                let path = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
                walk(&path, &value, out);
            }
        } else {
            out.push(prefix.to_owned());
        }
    }
    let defaults = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml)).build();
    let mut known = Vec::new();
    if let Ok(defaults) = defaults {
        walk("", &defaults.cache, &mut known);
    }
    known
}

/// Refuses an environment variable that names no setting, saying which it is and what was
/// probably meant (`MCP_AUTH__JWT__ISSUR` -> `jwt.issuer`).
fn check_environment(environment: &[(String, String)]) -> Result<(), StartupError> {
    let known = known_settings();
    for (variable, _) in environment {
        let setting = setting_of(variable);
        let is_known = known.contains(&setting)
            || MAP_SETTINGS.iter().any(|map| setting.strip_prefix(map).is_some_and(|rest| rest.starts_with('.')));
        if is_known {
            continue;
        }
        let section = setting.split('.').next().unwrap_or_default();
        let closest = known
            .iter()
            .filter(|k| k.split('.').next() == Some(section))
            .min_by_key(|k| edit_distance(k, &setting))
            .filter(|k| edit_distance(k, &setting) <= 3);
        let hint = closest.map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
        return Err(StartupError::config(
            variable.as_str(),
            format!("sets `{setting}`, which is not a setting{hint}; every setting is in config/default.toml"),
        ));
    }
    Ok(())
}

/// A settings error about a value an environment variable set, with the variable named.
fn name_the_variable(err: StartupError, environment: &[(String, String)]) -> StartupError {
    let message = err.to_string();
    let culprit = environment.iter().find(|(variable, _)| {
        let setting = setting_of(variable);
        let (section, key) = setting.rsplit_once('.').unwrap_or(("", &setting));
        message.contains(&format!("`{setting}`"))
            || (message.contains(&format!("`{key}`")) && message.contains(section))
    });
    match culprit {
        Some((variable, _)) => StartupError::ConfigSource(format!(
            "{} (set by the environment variable {variable})",
            message.trim_start_matches("configuration: ")
        )),
        None => err,
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn an_environment_variable_that_names_no_setting_is_refused_with_what_was_meant() {
        let err = check_environment(&env(&[("MCP_AUTH__JWT__ISSUR", "https://idp.example")])).unwrap_err().to_string();
        assert!(err.contains("MCP_AUTH__JWT__ISSUR") && err.contains("did you mean `jwt.issuer`"), "{err}");
        assert!(
            check_environment(&env(&[
                ("MCP_AUTH__JWT__ISSUER", "https://idp.example"),
                ("MCP_AUTH__SERVER__ALLOWED_ORIGINS", "https://a.example"),
                ("MCP_AUTH__SCOPES__ROLES__AUDITOR", "mcp:read"),
            ]))
            .is_ok()
        );
        let err = check_environment(&env(&[("MCP_AUTH__NOPE__X", "1")])).unwrap_err().to_string();
        assert!(err.contains("`nope.x`, which is not a setting") && !err.contains("did you mean"), "{err}");
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable_that_set_it() {
        let err = Settings::from_toml("[server]\nmax_connections = \"many\"").unwrap_err();
        let named = name_the_variable(err, &env(&[("MCP_AUTH__SERVER__MAX_CONNECTIONS", "many")])).to_string();
        assert!(named.contains("set by the environment variable MCP_AUTH__SERVER__MAX_CONNECTIONS"), "{named}");
        let err = Settings::from_toml("[server]\nmax_connections = \"many\"").unwrap_err();
        let other = name_the_variable(err, &env(&[("MCP_AUTH__JWT__ISSUER", "x")])).to_string();
        assert!(!other.contains("environment variable"), "{other}");
    }

    #[test]
    fn bind_takes_an_address_or_localhost_and_says_what_it_accepts() {
        let bind = |value: &str| Settings::from_toml(&format!("[server]\nbind = \"{value}\""));
        assert_eq!(bind("localhost:3001").unwrap().server.bind, SocketAddr::from(([127, 0, 0, 1], 3001)));
        assert_eq!(bind("[::1]:3001").unwrap().server.bind.to_string(), "[::1]:3001");
        let err = bind("mcp.example.com:3001").unwrap_err().to_string();
        assert!(err.contains("not an IP address and port") && err.contains("127.0.0.1:3000"), "{err}");
    }

    #[test]
    fn the_admin_listener_is_off_by_default_and_never_the_public_port() {
        assert_eq!(Settings::from_toml("").unwrap().admin.bind, None);
        let admin = Settings::from_toml("[admin]\nbind = \"localhost:9464\"").unwrap().admin.bind;
        assert_eq!(admin, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
        for clash in ["127.0.0.1:3000", "0.0.0.0:3000"] {
            let err = Settings::from_toml(&format!("[admin]\nbind = \"{clash}\"")).unwrap_err().to_string();
            assert!(err.contains("admin.bind") && err.contains("public port"), "{err}");
        }
        let err = Settings::from_toml("[admin]\nbind = \"metrics.internal:9464\"").unwrap_err().to_string();
        assert!(err.contains("not an IP address and port"), "{err}");
    }

    #[test]
    fn traces_go_to_the_endpoint_s_v1_traces_and_a_bad_endpoint_is_refused() {
        let url = |endpoint: &str| {
            Settings::from_toml(&format!("[telemetry]\notlp_endpoint = \"{endpoint}\""))
                .map(|s| s.telemetry.traces_url())
        };
        assert_eq!(url("").unwrap(), None);
        assert_eq!(url("http://127.0.0.1:4318").unwrap().as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(url("http://collector:4318/v1/traces").unwrap().as_deref(), Some("http://collector:4318/v1/traces"));
        let err = url("collector:4318").unwrap_err().to_string();
        assert!(err.contains("telemetry.otlp_endpoint"), "{err}");
    }

    #[test]
    fn listening_on_every_interface_needs_the_public_url() {
        let err = Settings::from_toml("[server]\nbind = \"0.0.0.0:3001\"").unwrap_err().to_string();
        assert!(err.contains("server.public_url") && err.contains("every interface"), "{err}");
        let set = Settings::from_toml("[server]\nbind = \"0.0.0.0:3001\"\npublic_url = \"https://mcp.example.com\"");
        assert_eq!(set.unwrap().server.public_url, "https://mcp.example.com");
    }

    #[test]
    fn a_redis_password_in_the_storage_url_is_never_printed() {
        let settings = Settings::from_toml("[storage]\nurl = \"redis://:hunter2@127.0.0.1:6379/0\"").unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(!settings.to_toml().contains("hunter2"));
        assert!(settings.to_toml().contains("redis://:***@127.0.0.1:6379/0"), "{}", settings.to_toml());
    }

    #[test]
    fn debug_output_of_the_settings_shows_no_secret_and_no_hash() {
        let secret = "request-state-key-8b1f3c";
        let user_hash = "$argon2id$v=19$m=19456,t=2,p=1$dXNlcnNhbHQ$dXNlcmhhc2g";
        let client_hash = "$argon2id$v=19$m=19456,t=2,p=1$Y2xpZW50c2FsdA$Y2xpZW50aGFzaA";
        let settings = Settings::from_toml(&format!(
            "[mcp]\nrequest_state_secret = \"{secret}\"\n\
             [[issuer.users]]\nusername = \"ada\"\npassword_hash = \"{user_hash}\"\nroles = [\"user\"]\n\
             [[issuer.clients]]\nclient_id = \"batch\"\nsecret_hash = \"{client_hash}\"\n\
             grant_types = [\"client_credentials\"]\nroles = [\"user\"]"
        ))
        .unwrap();
        assert_eq!(settings.mcp.request_state_secret.expose_secret(), secret);
        assert_eq!(settings.issuer.clients[0].secret_hash.expose_secret(), client_hash);
        let debug = format!("{settings:?}");
        for value in [secret, user_hash, client_hash, "argon2id"] {
            assert!(!debug.contains(value), "{value} in {debug}");
        }
        assert!(debug.contains("ada") && debug.contains("batch"), "the rest is still shown: {debug}");
    }
}
