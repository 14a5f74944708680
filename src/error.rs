//! HTTP-level refusals of requests ([`AppError`]), and the start-up error type ([`StartupError`]).
//!
//! [`AppError`] is how a request is refused before (or instead of) protocol processing: the
//! transport's checks, the limits, authentication and authorization. It logs its cause
//! server-side, sends a short JSON body (a JSON-RPC error object, as `/mcp` clients expect), and
//! carries an RFC 6750 `WWW-Authenticate` challenge for authentication and authorization failures.
//!
//! Each protocol that has an error format of its own maps its own errors, next to the code that
//! speaks it, because a client of that protocol reads only that format:
//! - JSON-RPC errors stay error objects inside `mcp`; the 2026-07-28 era also gives them an HTTP
//!   status (`mcp::http`), the 2025 eras answer them with 200.
//! - OAuth errors of the token and registration endpoints are RFC 6749 / RFC 7591 JSON objects
//!   (`issuer::error`).
//! - A person in a browser (the sign-in and consent pages) gets an HTML error page
//!   (`issuer::pages`).

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request refused before (or instead of) protocol processing.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No usable credentials, or a token that failed validation (401).
    #[error("unauthorized: {0}")]
    Unauthorized(Challenge),
    /// A valid token without the scope or role the operation needs (403).
    #[error("forbidden: {0}")]
    Forbidden(Challenge),
    /// Credentials presented in a way RFC 6750 forbids (in the query, twice, oversized): 400
    /// with an `invalid_request` challenge.
    #[error("invalid credentials request: {0}")]
    InvalidRequest(Challenge),
    /// A `Host` header outside the allow-list (DNS-rebinding protection).
    #[error("host not allowed: {0}")]
    HostNotAllowed(String),
    /// An `Origin` header outside the allow-list (DNS-rebinding protection).
    #[error("origin not allowed: {0}")]
    OriginNotAllowed(String),
    /// The request body exceeds `server.max_body_bytes`.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A body that is not `application/json`.
    #[error("unsupported content type: {0}")]
    UnsupportedMediaType(String),
    /// An `Accept` header that admits nothing we can send.
    #[error("not acceptable: {0}")]
    NotAcceptable(&'static str),
    /// A malformed request the caller can fix (duplicate headers, token in the query, ...).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Too many live sessions, streams or requests in flight; try again later (503).
    #[error("server busy: {0}")]
    Unavailable(&'static str),
    /// The caller exceeded its rate limit (429).
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// The caller (or session) holds as many open streams as it may (429): close one first.
    #[error("too many open streams: close one first (mcp.max_streams_per_session, mcp.max_streams_per_caller)")]
    TooManyStreams,
    /// The request (its body, or producing its response) took too long (408).
    #[error("request timed out")]
    RequestTimeout,
    /// A bug or an unreachable dependency. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The parameters of a `WWW-Authenticate: Bearer ...` challenge (RFC 6750 section 3, RFC 9728
/// section 5.1).
#[derive(Debug, Clone, Default)]
pub struct Challenge {
    /// `invalid_token`, `invalid_request`, `insufficient_scope`, or none when no token was presented.
    pub error: Option<&'static str>,
    /// A short human-readable reason. Never contains the token.
    pub description: Option<String>,
    /// Space-separated scopes the client should ask for.
    pub scope: Option<String>,
    /// Absolute URL of this server's protected-resource metadata.
    pub resource_metadata: Option<String>,
}

impl Challenge {
    /// Renders the header value. Quotes and backslashes in parameters are escaped (RFC 9110
    /// quoted-string), and control characters are dropped so no value can split the header.
    pub fn header_value(&self) -> HeaderValue {
        let mut params: Vec<String> = Vec::with_capacity(4);
        let mut push = |name: &str, value: &str| {
            let escaped: String = value
                .chars()
                .filter(|c| !c.is_control())
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            params.push(format!("{name}=\"{escaped}\""));
        };
        if let Some(error) = self.error {
            push("error", error);
        }
        if let Some(description) = &self.description {
            push("error_description", description);
        }
        if let Some(scope) = &self.scope {
            push("scope", scope);
        }
        if let Some(url) = &self.resource_metadata {
            push("resource_metadata", url);
        }
        let value = if params.is_empty() { "Bearer".to_owned() } else { format!("Bearer {}", params.join(", ")) };
        // Non-ASCII survives as opaque bytes; anything HeaderValue still rejects degrades to a bare challenge.
        HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error.unwrap_or("no token"))?;
        if let Some(d) = &self.description {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl AppError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::HostNotAllowed(_) | AppError::OriginNotAllowed(_) => {
                StatusCode::FORBIDDEN
            }
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            AppError::BadRequest(_) | AppError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TooManyRequests { .. } | AppError::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message sent to the client: specific where it helps the caller fix the request,
    /// generic where detail would help an attacker or leak internals.
    fn public_message(&self) -> String {
        match self {
            AppError::Unauthorized(c) | AppError::Forbidden(c) | AppError::InvalidRequest(c) => {
                c.description.clone().unwrap_or_else(|| "authentication required".to_owned())
            }
            AppError::HostNotAllowed(_) => "Forbidden: Host header is not allowed".to_owned(),
            AppError::OriginNotAllowed(_) => "Forbidden: Origin header is not allowed".to_owned(),
            AppError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }

    /// Builds the response; `id` is the JSON-RPC request id when the refusal answers a parsed
    /// request, so the client can correlate it.
    pub fn into_response_with_id(self, id: Option<serde_json::Value>) -> Response {
        match &self {
            AppError::Internal(cause) => tracing::error!(%cause, "request failed"),
            AppError::Unauthorized(c) | AppError::Forbidden(c) | AppError::InvalidRequest(c) => {
                tracing::info!(status = self.status().as_u16(), challenge = %c, "request refused")
            }
            other => tracing::debug!(error = %other, "request refused"),
        }
        let status = self.status();
        let mut body = json!({
            "jsonrpc": "2.0",
            "error": { "code": self.rpc_code(), "message": self.public_message() },
        });
        if let AppError::Unauthorized(c) | AppError::Forbidden(c) | AppError::InvalidRequest(c) = &self {
            // RFC 6750 error fields too, for OAuth-aware clients that read the body; like the
            // header, no error code when no token was presented.
            let mut data = serde_json::Map::new();
            if let Some(error) = c.error {
                data.insert("error".into(), json!(error));
            }
            if let Some(scope) = &c.scope {
                data.insert("scope".into(), json!(scope));
            }
            body["error"]["data"] = serde_json::Value::Object(data);
        }
        if let Some(id) = id {
            body["id"] = id;
        }
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            AppError::Unauthorized(c) | AppError::Forbidden(c) | AppError::InvalidRequest(c) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, c.header_value());
            }
            AppError::Unavailable(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            AppError::TooManyRequests { retry_after_secs } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            AppError::TooManyStreams => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }

    /// JSON-RPC code for the body. Transport refusals use Invalid Request; auth refusals use
    /// application codes outside the reserved -32768..-32000 range (the MCP spec reserves that
    /// range, and -32000..-32019 is legacy).
    pub fn rpc_code(&self) -> i64 {
        match self {
            AppError::Unauthorized(_) => -31401,
            AppError::Forbidden(_) => -31403,
            AppError::Internal(_) => -32603,
            _ => -32600,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.into_response_with_id(None)
    }
}

/// A problem that stops the process at start-up, with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing, malformed or inconsistent.
    #[error("configuration: `{key}` {problem}")]
    Config { key: String, problem: String },
    /// The configuration could not be read or parsed as a whole.
    #[error("configuration: {0}")]
    ConfigSource(String),
    /// Keys could not be read, generated or fetched.
    #[error("keys: {0}")]
    Keys(String),
    /// A remote dependency (issuer, JWKS) could not be reached or understood.
    #[error("{0}")]
    Remote(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

impl StartupError {
    /// A bad value for one key.
    pub fn config(key: impl Into<String>, problem: impl Into<String>) -> Self {
        StartupError::Config { key: key.into(), problem: problem.into() }
    }

    pub(crate) fn from_config_error(err: config::ConfigError) -> Self {
        StartupError::ConfigSource(err.to_string())
    }
}
