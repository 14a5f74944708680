//! Feature `jwt`: token exchange for tools (RFC 8693). A tool that calls another API as the
//! user asks its context for a token for that API (`ToolContext::downstream_token`); this module
//! exchanges the caller's token for one at the issuer that issued it and caches the answer.
//!
//! The MCP specification forbids token passthrough: the caller's token was issued for this
//! server (its `aud`), and sending it on would let the downstream API replay it here and leave
//! no trace of who acted. An exchanged token names the downstream API as its audience, the user
//! as its subject, and (at the embedded issuer, and at most identity providers) this server as
//! the actor (`act`).
//!
//! # How an exchange is decided
//! - The caller's `iss` picks the configuration (`[[token_exchange.issuers]]`, matched exactly;
//!   the embedded issuer's is `issuer.token_exchange_audiences`). No match: refused.
//! - The audience must be one configured for that issuer; anything else is refused before any
//!   request is made.
//! - The request (see [`client`]): `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
//!   the caller's token as `subject_token` (type `access_token`), `requested_token_type`
//!   `access_token`, `audience`, `scope`; this server authenticates with `client_secret_basic`.
//!   The target goes in `audience`, not `resource`: RFC 8693 section 2.1 says `audience` names
//!   the service by the logical name the issuer knows it by, and identity providers (Keycloak,
//!   Okta, the embedded issuer) match their downstream clients and APIs by that name, which need
//!   not be a URL, while `resource` must be an absolute URI of the API's location.
//! - The answer is cached per issuer, subject, calling client, the caller's scopes, audience and
//!   sorted asked scopes ([`cache`]) until `expires_in` minus the issuer's `cache_margin_secs`;
//!   an answer without `expires_in` is not cached. Concurrent calls for one key make one
//!   exchange; a failure is not cached (only the calls that waited for it share it).
//!
//! The caller's client and scopes are part of the key so that a token exchanged for one of the
//! user's clients is never handed to another with narrower rights. A caller's token revoked
//! after an exchange leaves the downstream token usable until it expires (a teaching caveat: a
//! production deployment keeps downstream tokens short-lived, as the embedded issuer does).
//!
//! # Parts
//! - [`client`] — the RFC 8693 request to a remote token endpoint (found by discovery when not
//!   configured), over one pooled HTTP client.
//! - [`cache`] — downstream tokens per key, single-flight, bounded.

pub mod cache;
pub mod client;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::Settings;
use crate::error::StartupError;
use crate::mcp::{DownstreamToken, ExchangeError, ExchangeRequest, TokenExchange};
use cache::{Cache, Key};

/// What an issuer answered to an exchange.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    /// Seconds the token lives, when the issuer said.
    pub expires_in: Option<u64>,
    /// The scopes granted, when the issuer said (else those asked for).
    pub scope: Option<String>,
}

/// Where one issuer's tokens are exchanged: its token endpoint over HTTP ([`client::HttpExchange`]),
/// or the embedded authorization server in-process.
pub trait Backend: Send + Sync + 'static {
    fn exchange<'a>(
        &'a self,
        subject_token: &'a str,
        audience: &'a str,
        scopes: &'a [String],
    ) -> BoxFuture<'a, Result<IssuedToken, ExchangeError>>;
}

/// One issuer's exchange: where, and for which audiences.
struct IssuerExchange {
    backend: Arc<dyn Backend>,
    audiences: Vec<String>,
    margin: Duration,
}

/// Every configured issuer's exchange and the token cache: the [`TokenExchange`] the MCP layer
/// hands tools' requests to.
pub struct TokenExchanger {
    issuers: HashMap<String, IssuerExchange>,
    cache: Cache,
}

impl TokenExchanger {
    /// The exchanges of `[[token_exchange.issuers]]` (the embedded issuer adds its own with
    /// [`TokenExchanger::issuer`]).
    pub fn from_settings(settings: &Settings) -> Result<TokenExchanger, StartupError> {
        let config = &settings.token_exchange;
        let mut exchanger = TokenExchanger { issuers: HashMap::new(), cache: Cache::new(config.cache_size) };
        if config.issuers.is_empty() {
            return Ok(exchanger);
        }
        let http = client::http_client(Duration::from_secs(config.timeout_secs))?;
        for entry in &config.issuers {
            let backend = Arc::new(client::HttpExchange::new(entry, http.clone()));
            exchanger = exchanger.issuer(
                &entry.issuer,
                backend,
                entry.audiences.clone(),
                Duration::from_secs(entry.cache_margin_secs),
            );
            tracing::info!(issuer = %entry.issuer, audiences = ?entry.audiences, "token exchange configured");
        }
        Ok(exchanger)
    }

    /// Exchanges the tokens of `issuer` through `backend`, for `audiences` only.
    pub fn issuer(mut self, issuer: &str, backend: Arc<dyn Backend>, audiences: Vec<String>, margin: Duration) -> Self {
        self.issuers.insert(issuer.to_owned(), IssuerExchange { backend, audiences, margin });
        self
    }

    /// Whether no issuer's tokens are exchanged (then the MCP layer carries nothing for it).
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The tokens cached now (for `/health` and tests).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

impl fmt::Debug for TokenExchanger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchanger").field("issuers", &self.issuers.keys().collect::<Vec<_>>()).finish()
    }
}

impl TokenExchange for TokenExchanger {
    fn exchange<'a>(&'a self, request: ExchangeRequest<'a>) -> BoxFuture<'a, Result<DownstreamToken, ExchangeError>> {
        Box::pin(async move {
            let principal = request.principal;
            let Some(issuer) = self.issuers.get(&principal.issuer) else {
                return Err(ExchangeError::NotConfigured);
            };
            if !issuer.audiences.iter().any(|a| a == request.audience) {
                return Err(ExchangeError::AudienceNotAllowed(request.audience.to_owned()));
            }
            let mut scopes: Vec<String> =
                request.scopes.iter().flat_map(|s| s.split_whitespace()).map(str::to_owned).collect();
            scopes.sort();
            scopes.dedup();
            let key = Key {
                issuer: principal.issuer.clone(),
                subject: principal.subject.clone(),
                client_id: principal.client_id.clone(),
                caller_scopes: principal.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
                audience: request.audience.to_owned(),
                scopes: scopes.join(" "),
            };
            let audience = request.audience;
            let subject_token = request.subject_token;
            self.cache
                .get_or_exchange(key, issuer.margin, || async {
                    let issued = issuer.backend.exchange(subject_token, audience, &scopes).await;
                    let issued = match issued {
                        Ok(issued) => issued,
                        Err(error) => {
                            tracing::warn!(sub = %principal.subject, audience, %error, "token exchange failed");
                            return Err(error);
                        }
                    };
                    let granted = match &issued.scope {
                        Some(scope) => scope.split_whitespace().map(str::to_owned).collect(),
                        None => scopes.clone(),
                    };
                    let lifetime = issued.expires_in.map(Duration::from_secs);
                    let expires_at = issued.expires_in.map(|secs| crate::jwt::verify::unix_now() + secs as i64);
                    tracing::info!(sub = %principal.subject, audience, scope = %granted.join(" "), "token exchanged");
                    Ok((DownstreamToken::new(issued.access_token, audience, granted, expires_at), lifetime))
                })
                .await
        })
    }
}
