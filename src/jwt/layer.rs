//! The authentication layer (feature `jwt`, step 6): a tower [`Layer`]/[`Service`] pair that
//! the composition root puts on the `/mcp` routes with `route_layer`. It takes the bearer token
//! from the `Authorization` header, validates it, and puts the [`Principal`] into the request
//! extensions; anything else is refused with an RFC 6750 challenge (see [`crate::error`]), and
//! counted in `mcp_auth.authentication.failures` by reason (see [`crate::observe`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::verify::Verifier;
use crate::error::{AppError, Challenge};
use crate::principal::Principal;

/// Which scopes a challenge suggests, decided per request (it may depend on the request's
/// `Mcp-Method` / `Mcp-Name` headers).
pub type ScopeHint = Arc<dyn Fn(&HeaderMap) -> Option<String> + Send + Sync>;

/// Extra parameters of every challenge this layer sends: where the protected-resource
/// metadata is (RFC 9728) and which scopes to ask for. Supplied by the composition root (the
/// `oauth-meta` layer knows them); absent otherwise.
#[derive(Clone, Default)]
pub struct ChallengeParams {
    pub resource_metadata: Option<String>,
    pub scope: Option<ScopeHint>,
}

impl ChallengeParams {
    fn challenge(&self, headers: &HeaderMap, error: Option<&'static str>, description: Option<&str>) -> Challenge {
        Challenge {
            error,
            description: description.map(str::to_owned),
            scope: self.scope.as_ref().and_then(|hint| hint(headers)),
            resource_metadata: self.resource_metadata.clone(),
        }
    }
}

/// How the layer checks credentials; shared by every clone of the service.
pub struct Authenticator {
    verifier: Arc<Verifier>,
    challenge: ChallengeParams,
    max_header_bytes: usize,
}

impl Authenticator {
    pub fn new(verifier: Arc<Verifier>, challenge: ChallengeParams, max_header_bytes: usize) -> Self {
        Authenticator { verifier, challenge, max_header_bytes }
    }

    /// The principal of a request, or the refusal to send.
    pub async fn authenticate(&self, headers: &HeaderMap, uri: &Uri) -> Result<Principal, AppError> {
        let token = self.token(headers, uri)?;
        self.verifier.verify(token).await.map_err(|rejection| self.refused(headers, &rejection))
    }

    /// The bearer token of a request, or the refusal for credentials that are missing or
    /// malformed.
    fn token<'h>(&self, headers: &'h HeaderMap, uri: &Uri) -> Result<&'h str, AppError> {
        bearer_token(headers, uri, self.max_header_bytes).map_err(|credentials| match credentials {
            Credentials::Missing => {
                crate::observe::authentication_failed("missing");
                AppError::Unauthorized(self.challenge.challenge(headers, None, None))
            }
            Credentials::Malformed(why) => {
                crate::observe::authentication_failed("malformed");
                tracing::debug!(reason = why, "credentials refused");
                AppError::InvalidRequest(self.challenge.challenge(headers, Some("invalid_request"), Some(why)))
            }
        })
    }

    fn refused(&self, headers: &HeaderMap, rejection: &super::verify::Rejection) -> AppError {
        tracing::debug!(reason = %rejection, "access token refused");
        crate::observe::authentication_failed(rejection.reason());
        // The store the revoked grants are in did not answer: no verdict, so 503 (as every other
        // store failure), and the client tries again rather than asking for a new token.
        if *rejection == super::verify::Rejection::Unavailable {
            return AppError::Unavailable("cannot check the access token right now");
        }
        AppError::Unauthorized(self.challenge.challenge(headers, Some("invalid_token"), Some(rejection.description())))
    }
}

/// Why no token could be taken from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization: Bearer` credentials at all: a bare challenge.
    Missing,
    /// Credentials sent in a way RFC 6750 does not allow: `invalid_request`.
    Malformed(&'static str),
}

/// The bearer token of a request: exactly one `Authorization` header, of at most `max_bytes`,
/// with the `Bearer` scheme (any case); never a token in the query string (RFC 6750 section
/// 2.3 allows it, the MCP authorization spec forbids it, and URLs end up in logs).
pub fn bearer_token<'a>(headers: &'a HeaderMap, uri: &Uri, max_bytes: usize) -> Result<&'a str, Credentials> {
    if let Some(query) = uri.query()
        && url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token")
    {
        return Err(Credentials::Malformed("access token in the query string; send it in the Authorization header"));
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Credentials::Missing);
    };
    if values.next().is_some() {
        return Err(Credentials::Malformed("more than one Authorization header"));
    }
    if value.len() > max_bytes {
        return Err(Credentials::Malformed("Authorization header too large"));
    }
    let value = value.to_str().map_err(|_| Credentials::Malformed("Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Credentials::Missing);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() || has_blank(token.as_bytes()) {
        return Err(Credentials::Malformed("malformed Bearer credentials"));
    }
    Ok(token)
}

/// Whether `bytes` holds a space or a tab: the only bytes up to 0x20 in a header value that
/// `to_str` accepted.
fn has_blank(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b <= b' ')
}

/// Puts [`Authenticate`] around a service.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(auth: Authenticator) -> Self {
        AuthLayer { auth: Arc::new(auth) }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, auth: self.auth.clone() }
    }
}

/// Authenticates each request before passing it on.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S> Service<Request> for Authenticate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that `poll_ready` drove to readiness serves this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.authenticate(request.headers(), request.uri()).await {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                // Sent before the body is read: the connection loop adds `Connection: close`.
                Err(refusal) => Ok(refusal.into_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer   abc"] {
            assert_eq!(bearer_token(&headers(&[value]), &uri("/mcp"), 100), Ok("abc"), "{value}");
        }
    }

    #[test]
    fn other_schemes_and_no_header_are_missing_credentials() {
        assert_eq!(bearer_token(&headers(&[]), &uri("/mcp"), 100), Err(Credentials::Missing));
        assert_eq!(bearer_token(&headers(&["Basic YTpi"]), &uri("/mcp"), 100), Err(Credentials::Missing));
        assert_eq!(bearer_token(&headers(&["Bearerabc"]), &uri("/mcp"), 100), Err(Credentials::Missing));
    }

    #[test]
    fn query_tokens_duplicates_oversize_and_garbage_are_malformed() {
        let malformed = |r: Result<&str, Credentials>| matches!(r, Err(Credentials::Malformed(_)));
        assert!(malformed(bearer_token(&headers(&[]), &uri("/mcp?access_token=abc"), 100)));
        assert!(malformed(bearer_token(&headers(&["Bearer abc"]), &uri("/mcp?x=1&access_token=abc"), 100)));
        assert!(malformed(bearer_token(&headers(&["Bearer a", "Bearer b"]), &uri("/mcp"), 100)));
        assert!(malformed(bearer_token(&headers(&["Bearer abcdef"]), &uri("/mcp"), 8)));
        assert!(malformed(bearer_token(&headers(&["Bearer "]), &uri("/mcp"), 100)));
        assert!(malformed(bearer_token(&headers(&["Bearer a b"]), &uri("/mcp"), 100)));
        let long = "x".repeat(100);
        for blank in [" ", "\t"] {
            for at in [1, 31, 32, 63, 99] {
                let token = format!("{}{blank}{}", &long[..at], &long[at..]);
                let value = format!("Bearer {token}x");
                assert!(malformed(bearer_token(&headers(&[value.as_str()]), &uri("/mcp"), 1000)), "{blank:?} at {at}");
            }
        }
        assert_eq!(bearer_token(&headers(&[&format!("Bearer {long}")]), &uri("/mcp"), 1000), Ok(long.as_str()));
        assert_eq!(bearer_token(&headers(&["Bearer abc"]), &uri("/mcp?token=x"), 100), Ok("abc"));
    }
}
