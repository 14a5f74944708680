//! OAuth protocol errors of the authorization server (feature `issuer`): the JSON error objects
//! of the token and registration endpoints (RFC 6749 section 5.2, RFC 7591 section 3.2.2). Like
//! JSON-RPC errors in `mcp`, they are part of the protocol this module speaks, so they live here
//! rather than in `crate::error`. Errors of the authorization endpoint go back to the client in
//! its redirect (see `authorize.rs`), or, when the client or redirect URI cannot be trusted, to
//! the person as a page.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An OAuth error response: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: Cow<'static, str>,
    /// Seconds to wait before trying again (429, 503).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError { status, error, description: description.into(), retry_after: None }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// Client authentication failed: 401, with a `Basic` challenge (RFC 6749 section 5.2).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// RFC 8707: the `resource` is not one this server issues tokens for.
    pub fn invalid_target(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub fn invalid_redirect_uri(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
    }

    pub fn invalid_client_metadata(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", description)
    }

    /// 503 with `Retry-After`: try again shortly (the store failed, too many checks waiting).
    pub fn temporarily_unavailable(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", description)
        }
    }

    /// The store failed: 503 with `Retry-After`, the cause logged, and nothing changed.
    pub fn store(err: crate::store::StoreError) -> Self {
        tracing::error!(%err, "the authorization server's store failed");
        Self::temporarily_unavailable("this server cannot complete the request right now; try again shortly")
    }

    /// 429 with `Retry-After`: a limit of this server was reached (`error` as RFC 6749 names the
    /// problem, the description saying it is a limit).
    pub fn too_many(error: &'static str, description: impl Into<Cow<'static, str>>, retry_after: u64) -> Self {
        OAuthError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, error, description)
        }
    }

    /// A failure on our side; the cause is logged, never sent.
    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "authorization server error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if self.status != StatusCode::INTERNAL_SERVER_ERROR {
            tracing::info!(error = self.error, description = %self.description, "OAuth request refused");
        }
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"token\""));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(err: crate::store::StoreError) -> Self {
        OAuthError::store(err)
    }
}
