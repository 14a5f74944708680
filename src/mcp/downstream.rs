//! Tokens for the APIs a tool calls (feature `mcp`; the `jwt` feature's `token_exchange` fills
//! it in): the contract between the protocol layer and whoever exchanges the caller's token.
//!
//! The MCP specification forbids passing the client's token through to another API (token
//! passthrough, security best practices). A tool that calls a downstream API as the user asks
//! its context for [`DownstreamToken`]s instead, and the server exchanges the caller's token for
//! one (RFC 8693) through the [`TokenExchange`] the composition root installed. Tools never see
//! the caller's token: the context carries it (the `Authorization` header value, a reference
//! count, taken only when an exchange is configured) and hands it to the exchange alone.

use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use futures_util::future::BoxFuture;

use crate::principal::Principal;

/// Exchanges a caller's access token for one meant for another audience.
pub trait TokenExchange: Send + Sync + fmt::Debug + 'static {
    /// A token for `audience` with `scopes`, on behalf of `request.principal`.
    fn exchange<'a>(&'a self, request: ExchangeRequest<'a>) -> BoxFuture<'a, Result<DownstreamToken, ExchangeError>>;
}

/// What an exchange is asked for.
pub struct ExchangeRequest<'a> {
    /// The caller, as the `jwt` layer validated it.
    pub principal: &'a Principal,
    /// The caller's access token (the RFC 8693 `subject_token`).
    pub subject_token: &'a str,
    /// The downstream API the token is for.
    pub audience: &'a str,
    /// The scopes asked for at the downstream API.
    pub scopes: &'a [&'a str],
}

/// An access token for a downstream API. Cheap to clone; `Debug` does not show the token.
#[derive(Clone)]
pub struct DownstreamToken {
    token: Arc<str>,
    /// The audience it was issued for.
    pub audience: Arc<str>,
    /// The scopes it was issued with (as the issuer stated them, else as asked).
    pub scopes: Arc<[String]>,
    /// Seconds since the Unix epoch after which it is useless, when the issuer said.
    pub expires_at: Option<i64>,
}

impl DownstreamToken {
    pub fn new(token: impl Into<Arc<str>>, audience: &str, scopes: Vec<String>, expires_at: Option<i64>) -> Self {
        DownstreamToken { token: token.into(), audience: audience.into(), scopes: scopes.into(), expires_at }
    }

    /// The access token itself, to send to the downstream API, and nowhere else.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// The `Authorization` header value for the downstream request: `Bearer <token>`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

impl fmt::Debug for DownstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownstreamToken")
            .field("token", &"[REDACTED]")
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why no downstream token was obtained. The messages name no token and are fit for a tool's
/// error result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// This server exchanges no tokens of the caller's issuer (or there is no caller).
    #[error("token exchange is not configured for this caller's issuer")]
    NotConfigured,
    /// The audience is not among those configured for the caller's issuer; nothing was sent.
    #[error("the audience {0} is not allowed for token exchange")]
    AudienceNotAllowed(String),
    /// The issuer refused (RFC 6749 section 5.2 / RFC 8693 section 2.2.2 `error` and description).
    #[error("the issuer refused the token exchange: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused { error: String, description: Option<String> },
    /// The issuer could not be reached or answered something unusable.
    #[error("the token exchange failed: {0}")]
    Unavailable(String),
}

/// The exchange and the caller's token, carried by a request's context when an exchange is
/// configured.
#[derive(Clone)]
pub(crate) struct Downstream {
    exchange: Arc<dyn TokenExchange>,
    /// The caller's whole `Authorization` header value (a reference count, not a copy).
    authorization: HeaderValue,
}

impl Downstream {
    /// The caller's bearer token with `exchange`; `None` without an exchange (no work at all)
    /// or without exactly one `Authorization` header.
    pub(crate) fn for_request(exchange: Option<&Arc<dyn TokenExchange>>, headers: &HeaderMap) -> Option<Downstream> {
        let exchange = exchange?;
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let authorization = values.next()?.clone();
        if values.next().is_some() {
            return None;
        }
        Some(Downstream { exchange: exchange.clone(), authorization })
    }

    /// Asks the exchange for a token for `audience` and `scopes` on behalf of `principal`.
    pub(crate) async fn token(
        &self,
        principal: Option<&Principal>,
        audience: &str,
        scopes: &[&str],
    ) -> Result<DownstreamToken, ExchangeError> {
        let principal = principal.ok_or(ExchangeError::NotConfigured)?;
        let subject_token = self
            .authorization
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(ExchangeError::NotConfigured)?;
        self.exchange.exchange(ExchangeRequest { principal, subject_token, audience, scopes }).await
    }
}

impl fmt::Debug for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downstream").field("exchange", &self.exchange).finish_non_exhaustive()
    }
}
