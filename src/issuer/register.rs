//! Dynamic client registration (feature `issuer`; RFC 7591), for clients of MCP revisions before
//! client ID metadata documents. Anyone may register, so a registration grants nothing by itself:
//! the client still needs a person to sign in and consent, its redirect URIs are held to the same
//! rules as everyone's, its name is shown as unverified, and it may only use the authorization
//! code and refresh token grants. Registrations are kept in the store (in memory by default: lost
//! on restart) up to `issuer.max_registered_clients`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::clients::{Client, Origin, Secret, check_redirect_uri};
use super::error::OAuthError;
use super::{Core, digest, now, random_token};

/// `POST /register`.
pub(super) async fn register(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    match handle(&core, &body) {
        Ok(body) => {
            let mut response = (StatusCode::CREATED, Json(body)).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

fn strings(metadata: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match metadata.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| OAuthError::invalid_client_metadata(format!("{name} must be an array of strings"))),
        Some(_) => Err(OAuthError::invalid_client_metadata(format!("{name} must be an array of strings"))),
    }
}

fn handle(core: &Core, body: &[u8]) -> Result<Value, OAuthError> {
    let metadata: Value =
        serde_json::from_slice(body).map_err(|_| OAuthError::invalid_client_metadata("the body must be JSON"))?;
    let metadata =
        metadata.as_object().ok_or_else(|| OAuthError::invalid_client_metadata("the body must be a JSON object"))?;

    let redirect_uris = strings(metadata, "redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() || redirect_uris.len() > 20 {
        return Err(OAuthError::invalid_redirect_uri("redirect_uris must list 1 to 20 URIs"));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri, &core.settings.redirect_schemes).map_err(OAuthError::invalid_redirect_uri)?;
    }
    // RFC 7591 section 2: the default method is client_secret_basic.
    let method = match metadata.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => "client_secret_basic",
        Some(Value::String(method)) => match method.as_str() {
            "none" => "none",
            "client_secret_basic" => "client_secret_basic",
            "client_secret_post" => "client_secret_post",
            other => {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "token_endpoint_auth_method {other} is not supported (none, client_secret_basic, client_secret_post)"
                )));
            }
        },
        Some(_) => return Err(OAuthError::invalid_client_metadata("token_endpoint_auth_method must be a string")),
    };
    let grant_types = strings(metadata, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    if let Some(other) = grant_types.iter().find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token")) {
        return Err(OAuthError::invalid_client_metadata(format!(
            "grant type {other} cannot be registered here (authorization_code, refresh_token)"
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(OAuthError::invalid_client_metadata("grant_types must include authorization_code"));
    }
    let response_types = strings(metadata, "response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|t| t != "code") {
        return Err(OAuthError::invalid_client_metadata("only the code response type is supported"));
    }
    let name = match metadata.get("client_name") {
        None | Some(Value::Null) => "Unnamed application".to_owned(),
        Some(Value::String(name)) if !name.trim().is_empty() && name.chars().count() <= 200 => name.trim().to_owned(),
        Some(_) => return Err(OAuthError::invalid_client_metadata("client_name must be 1 to 200 characters")),
    };

    let client_id = random_token();
    let secret = (method != "none").then(random_token);
    let client = Client {
        client_id: client_id.clone(),
        name: name.clone(),
        origin: Origin::Registered,
        redirect_uris: redirect_uris.clone(),
        grant_types: grant_types.clone(),
        secret: secret.as_deref().map_or(Secret::None, |s| Secret::Digest(digest(s))),
        roles: Vec::new(),
        scopes: Vec::new(),
    };
    if !core.store.save_client(client, core.settings.max_registered_clients) {
        return Err(OAuthError::temporarily_unavailable("this server has as many registered clients as it keeps"));
    }
    tracing::info!(%client_id, client_name = %name, method, "client registered");
    let mut body = json!({
        "client_id": client_id,
        "client_id_issued_at": now(),
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    });
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(body)
}
