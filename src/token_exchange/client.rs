//! The RFC 8693 request to a remote issuer's token endpoint (feature `jwt`, part of
//! `token_exchange`): `client_secret_basic`, a form body, a bounded JSON answer.
//!
//! The endpoint is `token_endpoint` when configured, else the one the issuer's metadata names
//! (`jwt::remote`'s discovery: OpenID Connect, then RFC 8414), looked up at the first exchange
//! and kept; a failed lookup is tried again at the next. Redirects are not followed: the request
//! carries the client's credentials and the caller's token.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::form_urlencoded;

use super::{Backend, IssuedToken};
use crate::config::{TOKEN_EXCHANGE_GRANT, TokenExchangeIssuer};
use crate::error::StartupError;
use crate::mcp::ExchangeError;

/// RFC 8693 section 3: the token type of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Largest token endpoint answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The HTTP client every remote exchange shares (one connection pool).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, StartupError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcp-auth-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StartupError::Remote(format!("cannot create the token exchange's HTTP client: {e}")))
}

/// Exchanges at one remote issuer's token endpoint.
pub struct HttpExchange {
    issuer: String,
    configured_endpoint: Option<String>,
    discovered: tokio::sync::OnceCell<String>,
    /// `Authorization: Basic ...`, form-encoded inside (RFC 6749 section 2.3.1), made once.
    authorization: SecretString,
    http: reqwest::Client,
}

impl HttpExchange {
    pub fn new(entry: &TokenExchangeIssuer, http: reqwest::Client) -> Self {
        let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let credentials = format!("{}:{}", encode(&entry.client_id), encode(entry.client_secret.expose_secret()));
        HttpExchange {
            issuer: entry.issuer.clone(),
            configured_endpoint: Some(entry.token_endpoint.clone()).filter(|e| !e.is_empty()),
            discovered: tokio::sync::OnceCell::new(),
            authorization: format!("Basic {}", STANDARD.encode(credentials)).into(),
            http,
        }
    }

    /// The token endpoint: configured, or from the issuer's metadata.
    async fn endpoint(&self) -> Result<&str, ExchangeError> {
        if let Some(endpoint) = &self.configured_endpoint {
            return Ok(endpoint);
        }
        let found = self
            .discovered
            .get_or_try_init(|| async {
                let metadata = crate::jwt::remote::issuer_metadata(&self.http, &self.issuer)
                    .await
                    .map_err(ExchangeError::Unavailable)?;
                metadata
                    .get("token_endpoint")
                    .and_then(Value::as_str)
                    .filter(|url| url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http")))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ExchangeError::Unavailable(format!("the metadata of {} names no token_endpoint", self.issuer))
                    })
            })
            .await?;
        Ok(found)
    }
}

impl Backend for HttpExchange {
    fn exchange<'a>(
        &'a self,
        subject_token: &'a str,
        audience: &'a str,
        scopes: &'a [String],
    ) -> BoxFuture<'a, Result<IssuedToken, ExchangeError>> {
        Box::pin(async move {
            let endpoint = self.endpoint().await?;
            let body = {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", TOKEN_EXCHANGE_GRANT)
                    .append_pair("subject_token", subject_token)
                    .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
                    .append_pair("requested_token_type", ACCESS_TOKEN_TYPE)
                    .append_pair("audience", audience);
                if !scopes.is_empty() {
                    form.append_pair("scope", &scopes.join(" "));
                }
                form.finish()
            };
            let response = self
                .http
                .post(endpoint)
                .header(reqwest::header::AUTHORIZATION, self.authorization.expose_secret())
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| ExchangeError::Unavailable(format!("{endpoint}: {}", without_url(&e))))?;
            let status = response.status();
            let answer = read_json(response).await;
            if status.is_success() {
                return issued(answer.map_err(|e| ExchangeError::Unavailable(format!("{endpoint}: {e}")))?);
            }
            // RFC 6749 section 5.2: 400 (and 401 for client authentication) with an error object.
            let answer = answer.unwrap_or_default();
            match answer.get("error").and_then(Value::as_str) {
                Some(error) if status.is_client_error() => Err(ExchangeError::Refused {
                    error: short(error),
                    description: answer.get("error_description").and_then(Value::as_str).map(short),
                }),
                _ => Err(ExchangeError::Unavailable(format!("{endpoint}: HTTP {status}"))),
            }
        })
    }
}

/// An issuer's words, at most 200 characters of them, for a tool's error message.
fn short(text: &str) -> String {
    text.chars().take(200).filter(|c| !c.is_control()).collect()
}

/// A reqwest error's text without its URL (which names nothing secret, but is already said).
fn without_url(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// The answer as JSON, at most [`MAX_ANSWER_BYTES`].
async fn read_json(mut response: reqwest::Response) -> Result<Value, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| "the answer was cut off".to_owned())? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| "the answer is not JSON".to_owned())
}

/// A successful answer (RFC 8693 section 2.2.1), checked: a Bearer access token.
fn issued(answer: Value) -> Result<IssuedToken, ExchangeError> {
    let unusable = |why: &str| Err(ExchangeError::Unavailable(format!("unusable answer: {why}")));
    let Some(access_token) = answer.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return unusable("no access_token");
    };
    if !answer.get("token_type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
        return unusable("token_type is not Bearer");
    }
    if let Some(kind) = answer.get("issued_token_type").and_then(Value::as_str)
        && kind != ACCESS_TOKEN_TYPE
    {
        return unusable("issued_token_type is not an access token");
    }
    Ok(IssuedToken {
        access_token: access_token.to_owned(),
        expires_in: answer.get("expires_in").and_then(Value::as_u64),
        scope: answer.get("scope").and_then(Value::as_str).map(str::to_owned),
    })
}
