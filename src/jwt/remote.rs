//! Remote keys (feature `jwt`, step 6): a JWKS fetched from a URL, or found through the
//! issuer's metadata (OpenID Connect discovery, then RFC 8414), as Keycloak, Auth0 and Entra ID
//! publish them.
//!
//! The set is fetched at start-up, refreshed on a schedule, and refreshed at once when a token
//! names an unknown `kid` (key rotation at the issuer). Those on-demand refreshes are
//! single-flight (concurrent misses wait for one fetch) and rate-limited
//! (`jwt.min_refresh_interval_secs`), so a flood of tokens with made-up kids costs the issuer at
//! most one request per interval. A failed refresh keeps the keys we have: a briefly
//! unavailable issuer does not lock everyone out. Requests never wait for the network when
//! their key is known.
//!
//! Start-up policy: the first fetch must succeed. Start-up retries for
//! `jwt.startup_timeout_secs` (an issuer starting alongside us), then stops with a
//! [`StartupError`] naming the URL and the cause. A server that came up without keys would pass
//! health checks while refusing every request, and a wrong issuer URL would show up as a stream
//! of 401s instead of one clear message; orchestrators restart a failed process with back-off
//! anyway. Once running, the server never drops keys because the issuer is unreachable.
//!
//! Every fetch counts in `mcp_auth.jwks.refreshes` by result, and a successful one sets
//! `mcp_auth.jwks.last_success_timestamp` (see [`crate::observe`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use url::Url;

use super::keys::KeySet;
use crate::config::{JwtAlgorithm, JwtSettings, KeySource};
use crate::error::StartupError;

/// Largest metadata or JWKS document accepted, in bytes.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// A failed fetch: what went wrong, and whether trying again could help.
#[derive(Debug, Clone)]
struct FetchError {
    message: String,
    retryable: bool,
}

impl FetchError {
    fn fatal(message: impl Into<String>) -> Self {
        FetchError { message: message.into(), retryable: false }
    }
    fn transient(message: impl Into<String>) -> Self {
        FetchError { message: message.into(), retryable: true }
    }
}

#[derive(Debug, Default)]
struct Status {
    last_attempt: Option<Instant>,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
    fetches: u64,
}

/// A JWKS-backed key set that refreshes itself.
pub struct RemoteKeys {
    /// How the JWKS URL was found: "jwks_url" or "discovery".
    origin: &'static str,
    jwks_url: String,
    client: reqwest::Client,
    algorithms: Vec<JwtAlgorithm>,
    current: RwLock<Arc<KeySet>>,
    /// Bumped on every successful fetch.
    generation: AtomicU64,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    min_interval: Duration,
    status: Mutex<Status>,
}

impl RemoteKeys {
    /// The HTTP client for one issuer's keys (and its introspection endpoint): bounded times,
    /// few redirects, our user agent.
    pub fn client(jwt: &JwtSettings) -> Result<reqwest::Client, StartupError> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(jwt.fetch_timeout_secs))
            .connect_timeout(Duration::from_secs(jwt.fetch_timeout_secs.min(5)))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("mcp-auth-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartupError::Remote(format!("cannot create the HTTP client: {e}")))
    }

    /// Finds the JWKS of `source` (discovery when configured) and fetches it, keeping the keys
    /// usable with `algorithms`, retrying for `jwt.startup_timeout_secs` before giving up.
    /// `settings_hint` names the settings to check, in the error.
    pub async fn start(
        jwt: &JwtSettings,
        client: reqwest::Client,
        source: KeySource,
        algorithms: &[JwtAlgorithm],
        settings_hint: &str,
    ) -> Result<Arc<RemoteKeys>, StartupError> {
        let deadline = Instant::now() + Duration::from_secs(jwt.startup_timeout_secs);
        let mut pause = Duration::from_millis(250);
        let mut attempt_number = 0u32;
        loop {
            let attempt = async {
                let (origin, jwks_url) = match &source {
                    KeySource::JwksUrl(url) => ("jwks_url", url.clone()),
                    KeySource::Discovery(issuer) => ("discovery", discover(&client, issuer).await?),
                    KeySource::LocalFiles | KeySource::Introspection => {
                        return Err(FetchError::fatal("no remote key source configured"));
                    }
                };
                warn_if_plain_http(&jwks_url);
                let keys = fetch_jwks(&client, &jwks_url, algorithms).await?;
                Ok((origin, jwks_url, keys))
            };
            match attempt.await {
                Ok((origin, jwks_url, keys)) => {
                    tracing::info!(%jwks_url, keys = ?keys.kids(), "fetched the issuer's signing keys");
                    crate::observe::jwks_fetched(true);
                    let status = Status {
                        last_attempt: Some(Instant::now()),
                        last_success: Some(SystemTime::now()),
                        last_error: None,
                        fetches: 1,
                    };
                    return Ok(Arc::new(RemoteKeys {
                        origin,
                        jwks_url,
                        client,
                        algorithms: algorithms.to_vec(),
                        current: RwLock::new(Arc::new(keys)),
                        generation: AtomicU64::new(1),
                        fetching: tokio::sync::Mutex::new(()),
                        min_interval: Duration::from_secs(jwt.min_refresh_interval_secs),
                        status: Mutex::new(status),
                    }));
                }
                Err(err) if err.retryable && Instant::now() + pause < deadline => {
                    crate::observe::jwks_fetched(false);
                    attempt_number += 1;
                    // One short line per attempt: the first failure is the telling one (the
                    // whole list, every metadata URL tried, is in the error if we give up).
                    let first = err.message.split("; ").next().unwrap_or_default();
                    let cause: String = first.chars().take(160).collect();
                    tracing::warn!(
                        attempt = attempt_number,
                        retry_in_ms = pause.as_millis() as u64,
                        "signing keys not available yet: {cause}"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(err) => {
                    let what = match &source {
                        KeySource::Discovery(issuer) => format!("from issuer {issuer}"),
                        KeySource::JwksUrl(url) => format!("from {url}"),
                        KeySource::LocalFiles | KeySource::Introspection => String::new(),
                    };
                    return Err(StartupError::Remote(format!(
                        "cannot get the token signing keys {what}: {} (check {settings_hint} and that the issuer is up)",
                        err.message
                    )));
                }
            }
        }
    }

    /// The keys in use now.
    pub fn current(&self) -> Arc<KeySet> {
        self.current.read().expect("lock").clone()
    }

    /// Whether `key` is in the current set (no clone of the set: the token cache asks on every hit).
    pub fn holds(&self, key: &Arc<super::keys::VerifyingKey>) -> bool {
        self.current.read().expect("lock").holds(key)
    }

    /// The keys in use now, with the generation they belong to.
    pub fn snapshot(&self) -> (u64, Arc<KeySet>) {
        let keys = self.current.read().expect("lock");
        (self.generation.load(Ordering::Acquire), keys.clone())
    }

    /// After a token named an unknown `kid` in key generation `seen`: refreshes the keys unless
    /// another request already did (then returns at once) or the last fetch was less than
    /// `min_refresh_interval_secs` ago. Returns whether there are newer keys than `seen`.
    pub async fn refresh_on_miss(&self, seen: u64) -> bool {
        let _one_at_a_time = self.fetching.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return true;
        }
        let recently =
            self.status.lock().expect("lock").last_attempt.is_some_and(|at| at.elapsed() < self.min_interval);
        if recently {
            tracing::debug!("unknown kid: key refresh rate-limited");
            return false;
        }
        self.fetch_and_swap().await;
        self.generation.load(Ordering::Acquire) != seen
    }

    /// Refreshes the keys now (the schedule). A failure keeps the current keys.
    pub async fn refresh(&self) {
        let _one_at_a_time = self.fetching.lock().await;
        self.fetch_and_swap().await;
    }

    /// Fetches the JWKS and installs it; the caller holds `fetching`.
    async fn fetch_and_swap(&self) {
        self.status.lock().expect("lock").last_attempt = Some(Instant::now());
        let fetched = fetch_jwks(&self.client, &self.jwks_url, &self.algorithms).await;
        crate::observe::jwks_fetched(fetched.is_ok());
        let mut status = self.status.lock().expect("lock");
        status.fetches += 1;
        match fetched {
            Ok(keys) => {
                let mut current = self.current.write().expect("lock");
                let keys = keys.reusing(&current);
                if keys.kids() != current.kids() {
                    tracing::info!(jwks_url = %self.jwks_url, keys = ?keys.kids(), "signing keys changed");
                }
                *current = Arc::new(keys);
                self.generation.fetch_add(1, Ordering::AcqRel);
                status.last_success = Some(SystemTime::now());
                status.last_error = None;
            }
            Err(err) => {
                tracing::warn!(jwks_url = %self.jwks_url, error = %err.message, "key refresh failed; keeping the cached keys");
                status.last_error = Some(err.message);
            }
        }
    }

    /// For `/health`: where the keys come from and how fresh they are.
    pub fn report(&self) -> Value {
        let keys = self.current();
        let status = self.status.lock().expect("lock");
        let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        json!({
            "source": self.origin,
            "jwks_url": self.jwks_url,
            "keys": keys.len(),
            "kids": keys.kids(),
            "last_refresh": status.last_success.map(unix),
            "last_refresh_age_secs": status.last_success.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs()),
            "last_error": status.last_error,
            "fetches": status.fetches,
        })
    }
}

/// Finds the JWKS URL in the issuer's metadata (see [`metadata`]).
async fn discover(client: &reqwest::Client, issuer: &str) -> Result<String, FetchError> {
    let (url, metadata) = metadata(client, issuer).await?;
    match metadata.get("jwks_uri").and_then(Value::as_str) {
        Some(jwks) if Url::parse(jwks).is_ok() => Ok(jwks.to_owned()),
        _ => Err(FetchError::fatal(format!("{url} has no valid jwks_uri"))),
    }
}

/// The issuer's metadata document, for other layers that need another of its endpoints (the
/// token exchange's `token_endpoint`).
pub(crate) async fn issuer_metadata(client: &reqwest::Client, issuer: &str) -> Result<Value, String> {
    metadata(client, issuer).await.map(|(_, metadata)| metadata).map_err(|err| err.message)
}

/// The issuer's metadata and where it was found: OpenID Connect discovery first, then the RFC
/// 8414 locations. The document must name exactly this issuer (RFC 8414 section 3.3).
async fn metadata(client: &reqwest::Client, issuer: &str) -> Result<(String, Value), FetchError> {
    let mut failures = Vec::new();
    let mut retryable = false;
    for url in metadata_urls(issuer)? {
        match fetch_json(client, &url).await {
            Ok(metadata) => {
                if metadata.get("issuer").and_then(Value::as_str) != Some(issuer) {
                    return Err(FetchError::fatal(format!(
                        "{url} names issuer {} instead of {issuer}",
                        metadata.get("issuer").unwrap_or(&Value::Null)
                    )));
                }
                return Ok((url, metadata));
            }
            Err(err) => {
                retryable |= err.retryable;
                failures.push(err.message);
            }
        }
    }
    Err(FetchError { message: format!("no issuer metadata found ({})", failures.join("; ")), retryable })
}

/// Where an issuer's metadata may live, in the order tried: `<issuer>/.well-known/openid-configuration`,
/// then (for issuers with a path) the OIDC and RFC 8414 path-insertion forms, then RFC 8414 appended.
fn metadata_urls(issuer: &str) -> Result<Vec<String>, FetchError> {
    let url = Url::parse(issuer).map_err(|e| FetchError::fatal(format!("issuer {issuer} is not a URL: {e}")))?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let base = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{base}/.well-known/openid-configuration")];
    if path.is_empty() {
        urls.push(format!("{origin}/.well-known/oauth-authorization-server"));
    } else {
        urls.push(format!("{origin}/.well-known/oauth-authorization-server{path}"));
        urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
        urls.push(format!("{base}/.well-known/oauth-authorization-server"));
    }
    Ok(urls)
}

async fn fetch_jwks(client: &reqwest::Client, url: &str, algorithms: &[JwtAlgorithm]) -> Result<KeySet, FetchError> {
    let document = fetch_json(client, url).await?;
    KeySet::from_jwks(&document, algorithms).map_err(|e| FetchError::fatal(format!("{url}: {e}")))
}

/// GETs a JSON document of bounded size. Network errors and 5xx/429 may be retried; other
/// statuses and bad JSON are fatal.
async fn fetch_json(client: &reqwest::Client, url: &str) -> Result<Value, FetchError> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchError::transient(format!("{url}: {}", error_chain(&e))))?;
    let status = response.status();
    if !status.is_success() {
        let message = format!("{url}: HTTP {status}");
        return Err(if status.is_server_error() || status.as_u16() == 429 {
            FetchError::transient(message)
        } else {
            FetchError::fatal(message)
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::transient(format!("{url}: {e}")))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::fatal(format!("{url}: document larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| FetchError::fatal(format!("{url}: not JSON ({e})")))
}

/// An error with its causes, which is where reqwest keeps the useful part.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Keys fetched over plain HTTP from another machine can be swapped by anyone on the path.
fn warn_if_plain_http(url: &str) {
    let Ok(parsed) = Url::parse(url) else { return };
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if parsed.scheme() == "http" && !loopback {
        tracing::warn!(%url, "signing keys are fetched over plain HTTP: use https outside development");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_cover_oidc_and_rfc_8414_forms() {
        assert_eq!(
            metadata_urls("https://idp.example.com").unwrap(),
            [
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            metadata_urls("https://kc.example.com/realms/mcp").unwrap(),
            [
                "https://kc.example.com/realms/mcp/.well-known/openid-configuration",
                "https://kc.example.com/.well-known/oauth-authorization-server/realms/mcp",
                "https://kc.example.com/.well-known/openid-configuration/realms/mcp",
                "https://kc.example.com/realms/mcp/.well-known/oauth-authorization-server",
            ]
        );
        // Auth0 issuers end with a slash; the metadata URL must not get two.
        assert_eq!(
            metadata_urls("https://tenant.auth0.com/").unwrap()[0],
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
    }
}
