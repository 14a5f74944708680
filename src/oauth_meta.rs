//! Feature `oauth-meta` (tutorial step 7): how an OAuth client finds out how to get a token
//! for this server.
//!
//! - RFC 9728 protected-resource metadata, at `/.well-known/oauth-protected-resource` and at the
//!   path-inserted form for the MCP endpoint (`/.well-known/oauth-protected-resource/mcp`, and
//!   with `public_url`'s path prefix when it has one). Its URL goes into every 401
//!   (`resource_metadata=...`) and into the `_meta` of `initialize` / `server/discover`.
//! - RFC 8414 authorization-server metadata at `/.well-known/oauth-authorization-server`, for
//!   2025-03-26 clients that look for it on the MCP server's origin: truthful metadata when this
//!   server issues its own tokens, or the external issuer's own document, fetched and cached.
//! - CORS for browser-based clients: metadata is readable from anywhere; `/mcp` answers the
//!   configured origins, exposes `WWW-Authenticate`, `Mcp-Session-Id` and
//!   `MCP-Protocol-Version`, and preflights never reach authentication.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use url::Url;

use crate::config::{ChallengeScopes, Settings};
use crate::error::StartupError;

/// The path of the protected-resource metadata document.
const PRM_PATH: &str = "/.well-known/oauth-protected-resource";
/// The path of the authorization-server metadata document.
const AS_PATH: &str = "/.well-known/oauth-authorization-server";
/// Largest metadata document accepted from an issuer, in bytes.
const MAX_METADATA_BYTES: usize = 256 * 1024;

/// The OAuth picture of this server, built once at start-up.
pub struct OAuthMeta {
    resource: String,
    metadata_url: String,
    /// Local paths under which the protected-resource metadata is served.
    paths: Vec<String>,
    document: Arc<Value>,
    issuer: String,
    authorization_servers: Vec<String>,
}

impl OAuthMeta {
    /// `issuer` is the issuer this server trusts first (the one whose RFC 8414 metadata it may
    /// mirror); every other trusted issuer is listed after it. `scopes_supported` comes from the
    /// scope policy.
    pub fn new(settings: &Settings, issuer: &str, scopes_supported: Vec<String>) -> Result<Self, StartupError> {
        let resource = settings.mcp_url();
        let url = Url::parse(&resource).map_err(|e| StartupError::config("server.public_url", e.to_string()))?;
        let origin = url.origin().ascii_serialization();
        // RFC 9728 section 3.1: the well-known segment goes between the host and the path.
        let metadata_url = format!("{origin}{PRM_PATH}{}", url.path());
        let mut paths = vec![PRM_PATH.to_owned(), format!("{PRM_PATH}/mcp")];
        if url.path() != "/mcp" {
            // Behind a proxy that keeps the prefix on well-known requests.
            paths.push(format!("{PRM_PATH}{}", url.path()));
        }
        let oauth = &settings.oauth;
        // Every trusted issuer (RFC 9728 allows several), `issuer` first.
        let authorization_servers = if oauth.authorization_servers.is_empty() {
            let mut servers = vec![issuer.to_owned()];
            for trusted in settings.jwt.trusted_issuers(&settings.server.public_url) {
                if !servers.contains(&trusted.issuer) {
                    servers.push(trusted.issuer);
                }
            }
            servers
        } else {
            oauth.authorization_servers.clone()
        };
        let scopes_supported: Vec<String> = scopes_supported.into_iter().filter(|s| s != "offline_access").collect();
        let mut document = json!({
            "resource": resource,
            "authorization_servers": authorization_servers,
            "scopes_supported": scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": oauth.resource_name,
        });
        if !oauth.documentation_url.is_empty() {
            document["resource_documentation"] = json!(oauth.documentation_url);
        }
        Ok(OAuthMeta {
            resource,
            metadata_url,
            paths,
            document: Arc::new(document),
            issuer: issuer.to_owned(),
            authorization_servers,
        })
    }

    /// The absolute URL of the protected-resource metadata, for `WWW-Authenticate`.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The protected-resource metadata routes (public, readable cross-origin).
    pub fn router(&self) -> Router {
        let mut router = Router::new();
        for path in &self.paths {
            let document = self.document.clone();
            router = router.route(path, get(move || async move { cached_json(&document) }));
        }
        router.layer(metadata_cors())
    }

    /// RFC 8414 metadata for a server that issues its own tokens offline (dev tokens from
    /// `generate_token`): the issuer and its keys, and no endpoints, because there are none.
    pub fn local_authorization_server(&self, scopes_supported: &[String]) -> Router {
        let mut document = json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer.trim_end_matches('/')),
            "scopes_supported": scopes_supported,
            "response_types_supported": [],
            "grant_types_supported": [],
        });
        // Optional members are left out when there is nothing to say, never `null`.
        if let Some(documentation) = self.document.get("resource_documentation") {
            document["service_documentation"] = documentation.clone();
        }
        let document = Arc::new(document);
        Router::new().route(AS_PATH, get(move || async move { cached_json(&document) })).layer(metadata_cors())
    }

    /// RFC 8414 metadata of an external issuer, fetched now and refreshed every `refresh`, so
    /// clients that look on this origin find the real authorization server. Until the first
    /// fetch succeeds the route answers 503 and the readiness check (returned beside the route)
    /// fails; afterwards the last good copy is kept if the issuer is briefly down.
    pub async fn external_authorization_server(&self, refresh: Duration) -> (Router, MetadataReadiness) {
        let mirror = Arc::new(Mirror { issuer: self.issuer.clone(), document: RwLock::new(None) });
        if let Err(problem) = mirror.fetch().await {
            tracing::warn!(issuer = %self.issuer, %problem, "issuer metadata unavailable; retrying in the background");
        }
        let weak = Arc::downgrade(&mirror);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
            loop {
                ticks.tick().await;
                let Some(mirror) = weak.upgrade() else { return };
                if let Err(problem) = mirror.fetch().await {
                    tracing::warn!(issuer = %mirror.issuer, %problem, "issuer metadata refresh failed; keeping the last copy");
                }
            }
        });
        let readiness = MetadataReadiness(mirror.clone());
        let router = Router::new()
            .route(
                AS_PATH,
                get(move || {
                    let mirror = mirror.clone();
                    async move {
                        match mirror.document.read().expect("lock").clone() {
                            Some(document) => cached_json(&document),
                            None => {
                                let mut response = (
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    Json(json!({ "error": "temporarily_unavailable" })),
                                )
                                    .into_response();
                                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                                response
                            }
                        }
                    }
                }),
            )
            .layer(metadata_cors());
        (router, readiness)
    }

    /// The `_meta` entries of `initialize` / `server/discover` results.
    pub fn discovery_meta(&self) -> serde_json::Map<String, Value> {
        let mut meta = serde_json::Map::new();
        meta.insert("mcp-auth-server/resourceMetadata".into(), json!(self.metadata_url));
        meta
    }

    /// The `/health` section: resource, issuer, metadata URLs.
    pub fn health(&self) -> impl Fn() -> Value + Send + Sync + 'static {
        let report = json!({
            "resource": self.resource,
            "issuer": self.issuer,
            "authorization_servers": self.authorization_servers,
            "protected_resource_metadata": self.metadata_url,
            "authorization_server_metadata": format!("{}{AS_PATH}", origin_of(&self.resource)),
        });
        move || report.clone()
    }
}

fn origin_of(url: &str) -> String {
    Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

fn cached_json(document: &Value) -> Response {
    let mut response = Json(document).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// Metadata documents are public: any origin may read them (browser-based clients fetch them
/// before they have any credentials).
fn metadata_cors() -> CorsLayer {
    CorsLayer::new().allow_origin(Any).allow_methods([Method::GET, Method::OPTIONS]).allow_headers(Any)
}

/// The scopes an operation needs, by method and item name (from the scope policy).
pub type OperationScopes = Arc<dyn Fn(&str, Option<&str>) -> Option<Vec<String>> + Send + Sync>;

/// The `scope` hint of 401 challenges: every supported scope (`challenge_scopes = "all"`), or
/// what this request needs, read from its `Mcp-Method` / `Mcp-Name` headers (`"operation"`).
/// Requests without those headers (legacy clients) get every scope.
pub fn scope_hint(settings: &Settings, operation_scopes: Option<OperationScopes>) -> crate::jwt::ScopeHint {
    let all: Vec<String> = settings.scopes.supported.iter().filter(|s| *s != "offline_access").cloned().collect();
    let all = all.join(" ");
    match (settings.scopes.challenge_scopes, operation_scopes) {
        (ChallengeScopes::Operation, Some(needed)) => Arc::new(move |headers: &HeaderMap| {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
            let scopes = header("mcp-method").and_then(|method| {
                let name = header("mcp-name").and_then(crate::mcp::headers::decode_sentinel);
                needed(method, name.as_deref())
            });
            match scopes {
                Some(scopes) if !scopes.is_empty() => Some(scopes.join(" ")),
                _ => Some(all.clone()),
            }
        }),
        _ => Arc::new(move |_: &HeaderMap| Some(all.clone())),
    }
}

/// CORS for `/mcp`: the configured origins (and loopback, as the Host/Origin guard allows),
/// the headers MCP clients send, and the ones they must read.
pub fn mcp_cors(settings: &Settings) -> CorsLayer {
    let mut allowed: Vec<String> =
        settings.server.allowed_origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect();
    if let Ok(public) = Url::parse(&settings.server.public_url) {
        allowed.push(public.origin().ascii_serialization().to_ascii_lowercase());
    }
    let origins = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        let Ok(origin) = origin.to_str() else { return false };
        let Ok(url) = Url::parse(origin) else { return false };
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        loopback || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
    });
    let name = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            name("mcp-protocol-version"),
            name("mcp-session-id"),
            name("mcp-method"),
            name("mcp-name"),
            name("last-event-id"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE, name("mcp-session-id"), name("mcp-protocol-version")])
        .max_age(Duration::from_secs(600))
}

/// The readiness check of a mirrored issuer's metadata: fetched at least once.
#[derive(Clone)]
pub struct MetadataReadiness(Arc<Mirror>);

impl MetadataReadiness {
    pub fn check(&self) -> Result<(), String> {
        match self.0.document.read().expect("lock").is_some() {
            true => Ok(()),
            false => Err(format!("the metadata of issuer {} could not be fetched yet", self.0.issuer)),
        }
    }
}

/// A cached copy of an external issuer's metadata.
struct Mirror {
    issuer: String,
    document: RwLock<Option<Value>>,
}

impl Mirror {
    /// Tries RFC 8414 (path-inserted, then root for a pathless issuer), then OpenID Connect
    /// discovery (appended, then path-inserted), and keeps the first document whose `issuer` is
    /// exactly ours.
    async fn fetch(&self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let mut failures = Vec::new();
        for url in metadata_urls(&self.issuer) {
            match fetch_json(&client, &url).await {
                Ok(document) if document.get("issuer").and_then(Value::as_str) == Some(&self.issuer) => {
                    *self.document.write().expect("lock") = Some(document);
                    return Ok(());
                }
                Ok(_) => failures.push(format!("{url}: issuer does not match")),
                Err(problem) => failures.push(format!("{url}: {problem}")),
            }
        }
        Err(failures.join("; "))
    }
}

async fn fetch_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response =
        client.get(url).header(header::ACCEPT, "application/json").send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if body.len() > MAX_METADATA_BYTES {
        return Err("document too large".into());
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Where an issuer's metadata may be, in the order the MCP authorization spec lists.
fn metadata_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = Url::parse(issuer) else { return Vec::new() };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        vec![format!("{origin}{AS_PATH}"), format!("{origin}/.well-known/openid-configuration")]
    } else {
        vec![
            format!("{origin}{AS_PATH}{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_segment_before_the_path() {
        let settings = Settings::from_toml("[server]\npublic_url = \"https://gw.example.com/tenants/a\"").unwrap();
        let meta = OAuthMeta::new(&settings, "https://idp.example.com", vec!["mcp:read".into()]).unwrap();
        assert_eq!(meta.metadata_url(), "https://gw.example.com/.well-known/oauth-protected-resource/tenants/a/mcp");
        assert_eq!(meta.document["resource"], "https://gw.example.com/tenants/a/mcp");
        assert!(meta.paths.contains(&"/.well-known/oauth-protected-resource/tenants/a/mcp".to_owned()));
    }

    #[test]
    fn issuer_metadata_locations_follow_the_spec_order() {
        assert_eq!(
            metadata_urls("https://kc.example.com/realms/mcp"),
            [
                "https://kc.example.com/.well-known/oauth-authorization-server/realms/mcp",
                "https://kc.example.com/.well-known/openid-configuration/realms/mcp",
                "https://kc.example.com/realms/mcp/.well-known/openid-configuration",
            ]
        );
        assert_eq!(metadata_urls("https://idp.example.com/").len(), 2);
    }
}
