//! Feature `issuer` (tutorial step 10): a small OAuth 2.1 authorization server built in, so that
//! `cargo run --all-features` works with real MCP hosts and no other service. MCP hosts cannot
//! paste tokens: they discover an authorization server, register, send a person to sign in, and
//! exchange a code for a token. This is that server, for development and small deployments; a
//! production deployment points `jwt.issuer` at its identity provider, and then this module is not
//! mounted at all.
//!
//! What it implements:
//! - authorization code with PKCE (S256 only, required), exact redirect URI matching (any port
//!   for loopback redirect URIs, RFC 8252 section 7.3), `state` passed through, `iss` in every
//!   authorization response (RFC 9207); codes are single-use, live at most a minute, and are bound
//!   to client, redirect URI, PKCE challenge and resource;
//! - the token endpoint: `authorization_code`, `refresh_token` (rotated on every use; a reused
//!   refresh token or code revokes its whole family, access tokens included), and
//!   `client_credentials` for confidential clients of the configuration; client authentication
//!   `none`, `client_secret_basic`, `client_secret_post`, `private_key_jwt` ([`assertion`]);
//! - the JWT bearer grant carrying an ID-JAG from a trusted enterprise identity provider
//!   (Enterprise-Managed Authorization, [`enterprise`]);
//! - RFC 7009 revocation ([`revocation`]) and RFC 7662 introspection ([`introspection`]);
//! - resource indicators (RFC 8707): `resource` must be this server's MCP endpoint (or one of
//!   `jwt.extra_audiences`) and becomes `aud`; granted scopes are the requested ones that the
//!   user's roles permit (`[scopes.roles]`);
//! - client registration by client ID metadata documents ([`cimd`]) and RFC 7591 dynamic
//!   registration ([`register`]);
//! - RFC 8414 and OpenID Connect discovery documents ([`metadata`]);
//! - sign-in and consent pages ([`pages`]) for the users of `[[issuer.users]]` (Argon2 hashes,
//!   [`accounts`]), with anti-CSRF tokens, `HttpOnly; SameSite=Lax` cookies and a rate limit.
//!
//! Tokens are the JWTs the `jwt` layer validates: signed with its local key, `iss` =
//! `server.public_url`, naming their grant (`jwt::revoked`), so that a revoked grant's access
//! tokens are refused at `/mcp` on every instance, not only its refresh tokens at `/token`. State
//! lives on the server's store ([`store`]): in memory, in an SQLite file, or in Redis shared by
//! several instances.
//!
//! # Parts
//! - [`authorize`] — `GET /authorize`, the sign-in and consent forms.
//! - [`token`] — `POST /token`: client authentication and the three grants;
//!   [`assertion`] — `private_key_jwt` client assertions; [`enterprise`] — ID-JAGs.
//! - [`exchange`] — the token-exchange grant (RFC 8693), and this server as its own client.
//! - [`revocation`] — `POST /revoke` (RFC 7009); [`introspection`] — `POST /introspect` (RFC 7662).
//! - [`register`] — `POST /register` (RFC 7591).
//! - [`clients`] — clients, secrets, redirect URI rules; [`cimd`] — metadata documents.
//! - [`accounts`] — users and the sign-in rate limit; [`password`] — Argon2 hashes.
//! - [`store`] — what it keeps, on the server's store (`storage.url`).
//! - [`pages`] — HTML; [`error`] — OAuth error responses; [`metadata`] — discovery documents.

pub mod accounts;
pub mod assertion;
pub mod authorize;
pub mod cimd;
pub mod clients;
pub mod enterprise;
pub mod error;
pub mod exchange;
pub mod introspection;
pub mod metadata;
pub mod pages;
pub mod password;
pub mod register;
pub mod revocation;
pub mod store;
pub mod token;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_http::cors::{Any, CorsLayer};
use url::Url;

pub use password::hash_password;

use crate::config::{ScopeSettings, Settings};
use crate::error::StartupError;
use crate::jwt::{LocalKeys, Verifier};
use crate::store::{Store, StoreError};
use clients::Client;
use store::IssuerStore;

/// Largest form or JSON body the authorization server reads.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The embedded authorization server, built once at start-up.
pub struct Issuer {
    core: Arc<Core>,
}

/// What every handler shares.
pub struct Core {
    /// `iss`, and the base of every endpoint URL.
    issuer: String,
    /// The path of `server.public_url` (empty, or a prefix such as `/tenant`): forms and cookies
    /// use it, as the browser sees this server there.
    base_path: String,
    resource_name: String,
    keys: Arc<LocalKeys>,
    /// The resource server's verifier: revocation and introspection check access tokens with it,
    /// and revoking a grant goes through it (recorded, evicted from its cache, announced).
    verifier: Arc<Verifier>,
    /// How long a revoked grant is remembered: as long as any of its tokens can be used.
    revocation_lifetime: std::time::Duration,
    store: IssuerStore,
    users: accounts::Users,
    configured: HashMap<String, Client>,
    documents: cimd::MetadataDocuments,
    /// `private_key_jwt`: the assertion rules and the clients' fetched keys.
    assertions: assertion::Assertions,
    /// The enterprise IdPs whose ID-JAGs are accepted (none: the grant is not offered).
    enterprise: enterprise::EnterpriseIdps,
    grants: Grants,
    resources: Resources,
    sign_in_limits: accounts::SignInLimits,
    settings: crate::config::IssuerSettings,
    /// `limits.trust_forwarded_for`: the client address is the first `X-Forwarded-For` hop.
    trust_forwarded_for: bool,
    secure_cookies: bool,
}

impl Issuer {
    /// The authorization server for `settings`, signing with `keys`, keeping its state in
    /// `store` (the server's: `storage.url`), checking tokens with `verifier` (the `jwt` layer's,
    /// which must check revocations in the same store), accepting ID-JAGs of `enterprise`.
    pub fn new(
        settings: &Settings,
        keys: Arc<LocalKeys>,
        store: Arc<dyn Store>,
        verifier: Arc<Verifier>,
        enterprise: enterprise::EnterpriseIdps,
    ) -> Result<Issuer, StartupError> {
        if verifier.revocations().is_none() {
            return Err(StartupError::config(
                "issuer.enabled",
                "the embedded authorization server needs the jwt layer to check its revocations",
            ));
        }
        if keys.kid().is_none() {
            return Err(StartupError::config(
                "jwt.private_key",
                "does not exist, and the embedded authorization server signs its tokens with it \
                 (provide the key, or set issuer.enabled = false)",
            ));
        }
        let issuer = settings.token_issuer();
        let url = Url::parse(&issuer).map_err(|e| StartupError::config("server.public_url", e.to_string()))?;
        let base_path = url.path().trim_end_matches('/').to_owned();
        let issuer_settings = &settings.issuer;
        let users = accounts::Users::from_settings(settings)?;
        if users.is_empty() {
            tracing::warn!("the embedded authorization server has no users ([[issuer.users]]): nobody can sign in");
        }
        let mut configured = HashMap::new();
        for config in &issuer_settings.clients {
            let client = Client::configured(config, &issuer_settings.redirect_schemes)?;
            if let Some(unknown) = client.roles.iter().find(|r| !settings.scopes.roles.contains_key(*r)) {
                return Err(StartupError::config(
                    format!("issuer.clients.{}.roles", client.client_id),
                    format!("names `{unknown}`, which scopes.roles does not define"),
                ));
            }
            if let Some(unknown) = client.scopes.iter().find(|s| !settings.scopes.supported.contains(*s)) {
                return Err(StartupError::config(
                    format!("issuer.clients.{}.scopes", client.client_id),
                    format!("names `{unknown}`, which is not in scopes.supported"),
                ));
            }
            configured.insert(client.client_id.clone(), client);
        }
        if issuer_settings.allow_loopback_http_client_ids {
            tracing::warn!("issuer.allow_loopback_http_client_ids = true: development setting, never for production");
        }
        // Parse the page templates now, not on the first sign-in.
        pages::templates();
        let mut resources = vec![settings.mcp_url()];
        resources.extend(settings.jwt.extra_audiences.iter().map(|a| a.trim().to_owned()));
        let core = Core {
            issuer,
            base_path,
            resource_name: settings.oauth.resource_name.clone(),
            keys,
            verifier,
            revocation_lifetime: std::time::Duration::from_secs(
                issuer_settings
                    .refresh_token_ttl_secs
                    .max(issuer_settings.access_token_ttl_secs.saturating_add(settings.jwt.leeway_secs)),
            ),
            documents: cimd::MetadataDocuments::new(
                issuer_settings.allow_loopback_http_client_ids,
                issuer_settings.redirect_schemes.clone(),
                IssuerStore::new(store.clone()),
            ),
            assertions: assertion::Assertions::new(
                issuer_settings.client_assertion_algorithms.clone(),
                settings.jwt.leeway_secs,
            ),
            enterprise,
            store: IssuerStore::new(store),
            users,
            configured,
            grants: Grants::from_settings(&settings.scopes),
            resources: Resources(resources),
            sign_in_limits: accounts::SignInLimits::from_settings(issuer_settings),
            settings: issuer_settings.clone(),
            trust_forwarded_for: settings.limits.trust_forwarded_for,
            secure_cookies: url.scheme() == "https",
        };
        tracing::info!(issuer = %core.issuer, users = core.users.len(), "embedded authorization server enabled");
        Ok(Issuer { core: Arc::new(core) })
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.core.issuer
    }

    /// The RFC 8414 metadata document.
    pub fn metadata(&self) -> Value {
        metadata::authorization_server(&self.core)
    }

    /// Every route: discovery documents, `/authorize` and its forms, `/token`, `/register`.
    pub fn router(&self) -> Router {
        let core = &self.core;
        // Browser-based clients (the MCP Inspector) call these from another origin, without
        // cookies: any origin may, and none gets credentials.
        let api_cors = CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(Any)
            .expose_headers([header::WWW_AUTHENTICATE]);
        let mut discovery = Router::new();
        for path in metadata::paths(&core.base_path, metadata::AS_PATH) {
            discovery = discovery.route(&path, get(metadata::serve_oauth));
        }
        for path in metadata::paths(&core.base_path, metadata::OIDC_PATH) {
            discovery = discovery.route(&path, get(metadata::serve_openid));
        }
        let mut api = Router::new()
            .route("/token", post(token::token))
            .route("/revoke", post(revocation::revoke))
            .route("/introspect", post(introspection::introspect));
        if core.settings.dynamic_registration {
            api = api.route("/register", post(register::register));
        }
        let pages = Router::new()
            .route("/authorize", get(authorize::start))
            .route("/authorize/login", post(authorize::login))
            .route("/authorize/consent", get(authorize::consent_page).post(authorize::decide));
        discovery
            .merge(api)
            .layer(api_cors)
            .merge(pages)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.core.clone())
    }

    /// This server's own token exchange, in-process, acting as `actor` (its resource
    /// identifier), with the audiences it may mint for; `None` when none are configured.
    pub fn token_exchange(&self, actor: String) -> Option<(Arc<exchange::EmbeddedExchange>, Vec<String>)> {
        let audiences = self.core.settings.token_exchange_audiences.clone();
        (!audiences.is_empty())
            .then(|| (Arc::new(exchange::EmbeddedExchange::new(self.core.clone(), actor)), audiences))
    }

    /// The `/health` section: issuer, users, clients, and where the state is kept.
    pub fn health(&self) -> impl Fn() -> Value + Send + Sync + 'static {
        let core = self.core.clone();
        move || {
            json!({
                "issuer": core.issuer,
                "users": core.users.len(),
                "configured_clients": core.configured.len(),
                "store": core.store.store().kind(),
                "enterprise_idps": core.enterprise.report(),
            })
        }
    }
}

impl Core {
    /// The absolute URL of one of our endpoints (`path` starts with `/`).
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The path of one of our endpoints as the browser sees it (for forms and cookies).
    fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    /// Finds a client: configuration, then registrations, then a metadata document.
    async fn client(&self, client_id: &str) -> Result<Client, ClientError> {
        if let Some(client) = self.configured.get(client_id) {
            return Ok(client.clone());
        }
        if let Some(client) = self.store.registered(client_id).await? {
            return Ok(Client::registered(client));
        }
        if cimd::is_document_url(client_id) {
            return self.documents.client(client_id).await;
        }
        Err(ClientError::Unknown(
            "this server does not know this client_id: the application must register again".into(),
        ))
    }

    /// Revokes a family's grant: its refresh tokens at `/token`, its access tokens at `/mcp`.
    /// `reason` labels the metric ([`crate::observe::ISSUER_GRANTS_REVOKED`]).
    async fn revoke_family(&self, family: &str, reason: &'static str) -> Result<(), StoreError> {
        self.revoke_grant(&crate::jwt::revoked::grant_id(family), reason).await
    }

    /// Revokes a grant by its id (what access tokens carry), on every instance.
    async fn revoke_grant(&self, grant: &str, reason: &'static str) -> Result<(), StoreError> {
        self.verifier.revoke_grant(grant, self.revocation_lifetime).await?;
        crate::observe::issuer_grant_revoked(reason);
        Ok(())
    }

    /// The address of the client a request comes from (see [`crate::serve::client_address`]).
    fn address(&self, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
        crate::serve::client_address(headers, peer, self.trust_forwarded_for)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// Why no client was found.
pub enum ClientError {
    /// Nothing is known by that client ID, or its metadata document is not acceptable: what to
    /// tell the person or the client.
    Unknown(String),
    /// The store failed (503).
    Store(StoreError),
}

impl From<StoreError> for ClientError {
    fn from(err: StoreError) -> Self {
        ClientError::Store(err)
    }
}

/// Whether the configured users include the development users of `config/dev.toml`, with their
/// published passwords (their hashes are compared, nothing is re-hashed).
pub fn has_development_users(settings: &Settings) -> bool {
    let Ok(dev) = Settings::from_toml(include_str!("../../config/dev.toml")) else { return false };
    dev.issuer.users.iter().any(|published| {
        settings.issuer.users.iter().any(|user| {
            user.username == published.username
                && user.password_hash.expose_secret() == published.password_hash.expose_secret()
        })
    })
}

/// What the roles permit (`[scopes.roles]`, `[scopes.implies]`): the issuer grants the requested
/// scopes that the user's roles permit, never more.
pub struct Grants {
    supported: BTreeSet<String>,
    implies: BTreeMap<String, Vec<String>>,
    /// Role -> the scopes it permits; `None` = all (`"*"`).
    roles: BTreeMap<String, Option<Vec<String>>>,
}

impl Grants {
    pub fn from_settings(scopes: &ScopeSettings) -> Self {
        Grants {
            supported: scopes.supported.iter().filter(|s| *s != "offline_access").cloned().collect(),
            implies: scopes.implies.clone(),
            roles: scopes
                .roles
                .iter()
                .map(|(role, permits)| (role.clone(), (!permits.iter().any(|s| s == "*")).then(|| permits.clone())))
                .collect(),
        }
    }

    /// Every scope this server knows (metadata `scopes_supported`).
    pub fn supported(&self) -> impl Iterator<Item = &String> {
        self.supported.iter()
    }

    /// The known scopes of a `scope` parameter; `None` when it names none (then the default
    /// applies: everything the roles permit). Unknown scopes (`openid`, `offline_access`, other
    /// servers' scopes) are ignored, as RFC 6749 section 3.3 allows.
    pub fn requested(&self, scope: Option<&str>) -> Option<BTreeSet<String>> {
        let known: BTreeSet<String> =
            scope.unwrap_or("").split_whitespace().filter(|s| self.supported.contains(*s)).map(str::to_owned).collect();
        (!known.is_empty()).then_some(known)
    }

    /// Everything `roles` permit, narrower scopes of broader ones included.
    pub fn permitted(&self, roles: &[String]) -> BTreeSet<String> {
        let mut permitted = BTreeSet::new();
        for role in roles {
            match self.roles.get(role) {
                Some(None) => return self.supported.clone(),
                Some(Some(scopes)) => {
                    let mut pending: Vec<&String> = scopes.iter().collect();
                    while let Some(scope) = pending.pop() {
                        if permitted.insert(scope.clone()) {
                            pending.extend(self.implies.get(scope).into_iter().flatten());
                        }
                    }
                }
                None => {}
            }
        }
        permitted.retain(|s| self.supported.contains(s));
        permitted
    }

    /// What to grant for `requested`, and what was asked for but is not permitted.
    pub fn grant(&self, requested: Option<&BTreeSet<String>>, roles: &[String]) -> (Vec<String>, Vec<String>) {
        let permitted = self.permitted(roles);
        match requested {
            None => (permitted.into_iter().collect(), Vec::new()),
            Some(requested) => {
                let (granted, withheld): (Vec<String>, Vec<String>) =
                    requested.iter().cloned().partition(|s| permitted.contains(s));
                (granted, withheld)
            }
        }
    }
}

/// The resources (RFC 8707) tokens may be issued for: this server's MCP endpoint and
/// `jwt.extra_audiences`.
pub struct Resources(Vec<String>);

impl Resources {
    /// The resource a request names, as configured; this server's MCP endpoint when it names none.
    pub fn resolve(&self, requested: Option<&str>) -> Result<String, String> {
        let Some(requested) = requested else { return Ok(self.0[0].clone()) };
        let wanted = canonical(requested).ok_or("resource must be an absolute URI without a fragment")?;
        self.0
            .iter()
            .find(|r| canonical(r).as_deref() == Some(wanted.as_str()))
            .cloned()
            .ok_or_else(|| format!("this server issues no tokens for the resource {requested}"))
    }
}

/// A URI for comparison: scheme and host lowercased (by parsing), without a trailing slash.
fn canonical(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    if url.fragment().is_some() {
        return None;
    }
    Some(url.as_str().trim_end_matches('/').to_owned())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    crate::jwt::verify::unix_now()
}

/// 32 random bytes, base64url: codes, tokens, cookies, identifiers.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 digest of a secret value, base64url: what the store files it under.
pub fn digest(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Request parameters as sent (query or form), for the OAuth rule that none may be repeated
/// and that an empty value counts as absent.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// The value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// The first parameter name that occurs more than once.
    pub fn repeated(&self) -> Option<&str> {
        self.0
            .iter()
            .enumerate()
            .find(|(i, (name, _))| self.0[..*i].iter().any(|(n, _)| n == name))
            .map(|(_, (name, _))| name.as_str())
    }

    /// Whether `name` occurs more than once.
    pub fn is_repeated(&self, name: &str) -> bool {
        self.0.iter().filter(|(n, _)| n == name).count() > 1
    }
}

/// The cookies of the sign-in flow, read and written with the `cookie` crate.
pub(crate) mod cookies {
    use cookie::time::Duration;
    use cookie::{Cookie, SameSite};

    use super::*;

    /// Binds forms to the browser that started the request (anti-CSRF). Ends with the browser session.
    pub const BROWSER: &str = "mcp_as_browser";
    /// A sign-in.
    pub const SESSION: &str = "mcp_as_session";
    /// A browser that signed in before: its sign-ins are not locked out with unknown browsers'
    /// (see `accounts::SignInLimits`). Lives for `accounts::DEVICE_TTL`.
    pub const DEVICE: &str = "mcp_as_device";

    /// The value of cookie `name`, if the request has it (and it is not empty).
    pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name && !cookie.value().is_empty())
            .map(|cookie| cookie.value().to_owned())
    }

    /// A `Set-Cookie` value: `HttpOnly; SameSite=Lax`, scoped to the `/authorize` paths, and
    /// `Secure` when the server is served over https.
    pub fn set(core: &Core, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut cookie = Cookie::build((name, value))
            .path(core.path("/authorize"))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(core.secure_cookies);
        if let Some(max_age) = max_age {
            cookie = cookie.max_age(Duration::seconds(max_age));
        }
        HeaderValue::from_str(&cookie.to_string()).expect("cookie values are base64url")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(extra: &str) -> Grants {
        Grants::from_settings(&Settings::from_toml(extra).unwrap().scopes)
    }

    #[test]
    fn roles_cap_what_is_granted() {
        let grants = grants("");
        let all: BTreeSet<String> = ["mcp:read", "mcp:tools", "mcp:prompts"].map(String::from).into();
        let roles = |r: &str| vec![r.to_owned()];
        assert_eq!(grants.grant(Some(&all), &roles("admin")).0, ["mcp:prompts", "mcp:read", "mcp:tools"]);
        assert_eq!(
            grants.grant(Some(&all), &roles("user")),
            (vec!["mcp:read".into(), "mcp:tools".into()], vec!["mcp:prompts".into()])
        );
        assert_eq!(grants.grant(None, &roles("guest")).0, ["mcp:read"]);
        assert!(grants.grant(Some(&all), &roles("nobody")).0.is_empty());
    }

    #[test]
    fn implied_scopes_are_permitted_with_the_broad_one() {
        let grants = grants(
            "[scopes]\nsupported = [\"mcp:read\", \"mcp:tools\", \"mcp:admin\"]\n[scopes.implies]\n\"mcp:admin\" = [\"mcp:read\", \"mcp:tools\"]\n[scopes.roles]\nops = [\"mcp:admin\"]",
        );
        assert_eq!(grants.permitted(&["ops".into()]).len(), 3);
    }

    #[test]
    fn unknown_scopes_are_ignored_and_none_known_means_the_default() {
        let grants = grants("");
        assert_eq!(grants.requested(Some("openid mcp:read offline_access")).unwrap().len(), 1);
        assert_eq!(grants.requested(Some("openid")), None);
        assert_eq!(grants.requested(None), None);
    }

    #[test]
    fn resources_compare_in_canonical_form_and_default_to_the_mcp_endpoint() {
        let resources = Resources(vec!["http://127.0.0.1:3000/mcp".into(), "api://mcp".into()]);
        assert_eq!(resources.resolve(None).unwrap(), "http://127.0.0.1:3000/mcp");
        assert_eq!(resources.resolve(Some("HTTP://127.0.0.1:3000/mcp/")).unwrap(), "http://127.0.0.1:3000/mcp");
        assert_eq!(resources.resolve(Some("api://mcp")).unwrap(), "api://mcp");
        assert!(resources.resolve(Some("http://127.0.0.1:3000/other")).is_err());
        assert!(resources.resolve(Some("http://127.0.0.1:3000/mcp#x")).is_err());
        assert!(resources.resolve(Some("mcp")).is_err());
    }

    #[test]
    fn a_cookie_is_found_among_others_in_any_cookie_header_and_empty_ones_are_absent() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; mcp_as_session=; junk"));
        headers.append(header::COOKIE, HeaderValue::from_static("other=1;  mcp_as_session=abc-_1 ; mcp_as_browser=b"));
        assert_eq!(cookies::read(&headers, cookies::SESSION).as_deref(), Some("abc-_1"));
        assert_eq!(cookies::read(&headers, cookies::BROWSER).as_deref(), Some("b"));
        assert_eq!(cookies::read(&headers, "theme").as_deref(), Some("dark"));
        assert_eq!(cookies::read(&headers, "missing"), None);
        assert_eq!(cookies::read(&HeaderMap::new(), cookies::SESSION), None);
    }

    #[test]
    fn repeated_parameters_are_found() {
        let params = Params::new(vec![("a".into(), "1".into()), ("b".into(), "".into()), ("a".into(), "2".into())]);
        assert_eq!(params.repeated(), Some("a"));
        assert_eq!(params.get("b"), None);
        assert!(params.is_repeated("a") && !params.is_repeated("b"));
    }
}
