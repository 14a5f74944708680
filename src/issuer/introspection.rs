//! Token introspection, RFC 7662 (feature `issuer`): `POST /introspect` with `token` (and an
//! optional `token_type_hint`, not needed: see [`super::revocation`]), for confidential clients
//! authenticated with their secret, as at the token endpoint. A public client is refused with
//! 401 `invalid_client`: anyone can claim its `client_id`.
//!
//! Clients of the configuration (`[[issuer.clients]]` with a secret: resource servers and
//! services the operator set up) may introspect any token this issuer issued. Clients that
//! registered themselves (RFC 7591, with a secret) learn only about their own tokens: anyone can
//! register, and an introspection endpoint open to everyone would tell a thief which stolen
//! tokens still work. Anything else, like anything unknown, expired, revoked or rotated, is
//! `{"active": false}`, and nothing more.
//!
//! An active access token answers with its claims (`scope`, `client_id`, `username`, `sub`,
//! `aud`, `iss`, `exp`, `iat`, `jti`) and `token_type` `Bearer`; an active refresh token with
//! those of its grant and `token_type` `refresh_token` (RFC 7662 leaves the value to the server
//! for tokens that are not access tokens).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::clients::Origin;
use super::error::OAuthError;
use super::revocation::{Presented, params, presented};
use super::token::{authenticate, no_store};
use super::{Core, now};

/// `POST /introspect`.
pub(super) async fn introspect(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let address = core.address(&headers, peer.map(|Extension(ConnectInfo(addr))| addr));
    match handle(&core, &address, &headers, form).await {
        Ok(body) => {
            crate::observe::issuer_introspection(body["active"] == true);
            no_store(Json(body).into_response())
        }
        Err(error) => error.into_response(),
    }
}

async fn handle(
    core: &Core,
    address: &str,
    headers: &HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Value, OAuthError> {
    let params = params(form)?;
    let client = authenticate(core, address, headers, &params).await?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client("introspection is for confidential clients"));
    }
    let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = json!({ "active": false });
    let Some(presented) = presented(core, token).await? else { return Ok(inactive) };
    if client.origin != Origin::Configured && presented.client_id() != Some(client.client_id.as_str()) {
        return Ok(inactive);
    }
    let now = now();
    let answer = match presented {
        Presented::Access(principal) => {
            if principal.expires_at.is_none_or(|exp| exp < now) {
                return Ok(inactive);
            }
            let claims = &principal.claims;
            let mut answer = Map::new();
            answer.insert("active".into(), json!(true));
            answer.insert("token_type".into(), json!("Bearer"));
            for (member, claim) in [
                ("scope", "scope"),
                ("client_id", "client_id"),
                ("username", "preferred_username"),
                ("sub", "sub"),
                ("aud", "aud"),
                ("iss", "iss"),
                ("exp", "exp"),
                ("iat", "iat"),
                ("jti", "jti"),
            ] {
                if let Some(value) = claims.get(claim) {
                    answer.insert(member.into(), value.clone());
                }
            }
            Value::Object(answer)
        }
        Presented::Refresh { key, token } => {
            if token.expires_at < now || core.store.rotated(&key).await? {
                return Ok(inactive);
            }
            let mut answer = json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": token.scopes.join(" "),
                "client_id": token.client_id,
                "username": token.account.username,
                "sub": token.account.subject,
                "aud": token.resource,
                "iss": core.issuer,
                "exp": token.expires_at,
            });
            if token.issued_at > 0 {
                answer["iat"] = json!(token.issued_at);
            }
            answer
        }
    };
    Ok(answer)
}
