//! Test helpers for token exchange (feature `jwt`): a downstream API on loopback that checks the
//! tokens it is sent and records every `Authorization` header, and an exchanging issuer on
//! loopback (metadata, JWKS, a token endpoint that counts its requests).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// What the downstream API expects of a token.
#[derive(Clone)]
pub struct Expect {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
    /// `act.sub`: who exchanged the token.
    pub actor: String,
    /// The issuer's public keys (JWKS).
    pub jwks: Value,
}

/// A downstream API listening on 127.0.0.1.
pub struct DownstreamApi {
    pub base: String,
    /// Every `Authorization` header value it received, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl DownstreamApi {
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts the API: `GET /profile` answers 200 with the token's `sub`, `aud`, `act` and `scope`
/// when the token is signed by a key of `expect.jwks` and names the expected issuer, audience,
/// subject and actor; 401 otherwise.
pub async fn spawn_api(expect: Expect) -> DownstreamApi {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = (expect, seen.clone());
    let app = Router::new().route("/profile", get(profile)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    DownstreamApi { base, seen }
}

async fn profile(State((expect, seen)): State<(Expect, Arc<Mutex<Vec<String>>>)>, headers: HeaderMap) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    seen.lock().unwrap().push(authorization.clone());
    let Some(token) = authorization.strip_prefix("Bearer ") else {
        return (StatusCode::UNAUTHORIZED, "no bearer token").into_response();
    };
    match check(&expect, token) {
        Ok(claims) => axum::Json(json!({
            "sub": claims["sub"],
            "aud": claims["aud"],
            "act": claims["act"],
            "scope": claims["scope"],
        }))
        .into_response(),
        Err(why) => (StatusCode::UNAUTHORIZED, why).into_response(),
    }
}

fn check(expect: &Expect, token: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
    let keys = expect.jwks["keys"].as_array().cloned().unwrap_or_default();
    let jwk =
        keys.iter().find(|k| k["kid"].as_str() == header.kid.as_deref()).ok_or_else(|| "unknown kid".to_owned())?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&expect.audience]);
    validation.set_issuer(&[&expect.issuer]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?.claims;
    if claims["sub"] != expect.subject.as_str() {
        return Err(format!("sub is {}", claims["sub"]));
    }
    if claims["act"]["sub"] != expect.actor.as_str() {
        return Err(format!("act is {}", claims["act"]));
    }
    Ok(claims)
}

/// The forms of the token requests a [`FakeIssuer`] received.
pub type Requests = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// An exchanging identity provider on 127.0.0.1: OpenID metadata, the JWKS of the test keys,
/// and a token endpoint that issues opaque downstream tokens.
pub struct FakeIssuer {
    pub base: String,
    /// The form of every token request, with the `Authorization` header as `_authorization`.
    pub requests: Requests,
}

impl FakeIssuer {
    pub fn requests(&self) -> Vec<Vec<(String, String)>> {
        self.requests.lock().unwrap().clone()
    }
}

/// How the fake issuer answers token requests: `expires_in` of its tokens. It refuses requests
/// for the scope `forbidden` with `invalid_grant`.
#[derive(Clone)]
pub struct FakeAnswers {
    pub expires_in: u64,
}

pub async fn spawn_issuer(jwks: Value, answers: FakeAnswers) -> FakeIssuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let metadata = json!({
        "issuer": base,
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "authorization_endpoint": format!("{base}/authorize"),
        "response_types_supported": ["code"],
    });
    let state = (requests.clone(), answers);
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(move || std::future::ready(axum::Json(metadata.clone()))))
        .route("/jwks", get(move || std::future::ready(axum::Json(jwks.clone()))))
        .route("/token", post(token))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeIssuer { base, requests }
}

type IssuerState = (Requests, FakeAnswers);

async fn token(
    State((requests, answers)): State<IssuerState>,
    headers: HeaderMap,
    Form(mut form): Form<Vec<(String, String)>>,
) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    form.push(("_authorization".into(), authorization.to_owned()));
    let count = {
        let mut requests = requests.lock().unwrap();
        requests.push(form.clone());
        requests.len()
    };
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
    if field("scope").split(' ').any(|s| s == "forbidden") {
        let body = json!({"error": "invalid_grant", "error_description": "the subject token is not acceptable"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    axum::Json(json!({
        "access_token": format!("downstream-{count}"),
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": answers.expires_in,
        "scope": field("scope"),
    }))
    .into_response()
}
