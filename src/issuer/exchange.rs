//! The token-exchange grant (feature `issuer`, RFC 8693): a confidential client that may use it
//! (`grant_types` naming `urn:ietf:params:oauth:grant-type:token-exchange`) trades an access
//! token this issuer signed for one meant for a downstream API of
//! `issuer.token_exchange_audiences`. This server itself is such a client, in-process
//! ([`EmbeddedExchange`]): the `token_exchange` layer uses it for the tools' downstream tokens.
//!
//! The subject token is checked as `/mcp` checks it (the resource server's verifier: signature,
//! `iss`, `aud` = this server, unexpired, grant not revoked). The new token has `aud` = the
//! downstream audience, `sub` = the subject's, `act: {"sub": <the exchanging client>}` (RFC 8693
//! section 4.1, nested when the subject token had an `act` itself), `client_id` = the exchanging
//! client, `scope` ⊆ the subject's (all of them when none is asked), the subject's grant id (so
//! revoking the user's grant covers it too), and lives at most `issuer.access_token_ttl_secs` and
//! never beyond the subject token. No refresh token.
//!
//! Refusals (RFC 8693 section 2.2.2, RFC 6749 section 5.2): `invalid_request` (missing or
//! unsupported token types, actor tokens), `invalid_target` (an audience not configured),
//! `invalid_grant` (a subject token that is not a valid access token of ours), `invalid_scope`
//! (a scope the subject token does not have), `unauthorized_client` (a public client, or one
//! whose `grant_types` lack the grant).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::clients::Client;
use super::error::OAuthError;
use super::{Core, Params, now, random_token};
use crate::jwt::Rejection;
use crate::jwt::revoked::GRANT_CLAIM;
use crate::mcp::ExchangeError;
use crate::token_exchange::client::ACCESS_TOKEN_TYPE;
use crate::token_exchange::{Backend, IssuedToken};

/// The grant at `/token`, for an authenticated `client` allowed to use it.
pub(super) async fn token_exchange(core: &Core, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    if !client.is_confidential() {
        return Err(OAuthError::unauthorized_client("token exchange is for confidential clients"));
    }
    if core.settings.token_exchange_audiences.is_empty() {
        return Err(OAuthError::unsupported_grant_type("this server exchanges no tokens"));
    }
    let subject_token =
        params.get("subject_token").ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    match params.get("subject_token_type") {
        Some(ACCESS_TOKEN_TYPE) => {}
        Some(_) => return Err(OAuthError::invalid_request(format!("subject_token_type must be {ACCESS_TOKEN_TYPE}"))),
        None => return Err(OAuthError::invalid_request("subject_token_type is required")),
    }
    if params.get("requested_token_type").is_some_and(|kind| kind != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!("only {ACCESS_TOKEN_TYPE} tokens are issued")));
    }
    if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
        return Err(OAuthError::invalid_request("actor tokens are not supported: the client is the actor"));
    }
    let audience = match (params.get("audience"), params.get("resource")) {
        (Some(audience), Some(resource)) if audience != resource => {
            return Err(OAuthError::invalid_target("audience and resource name different targets"));
        }
        (Some(target), _) | (None, Some(target)) => target,
        (None, None) => return Err(OAuthError::invalid_request("audience is required")),
    };
    let scopes = params.get("scope").map(|scope| scope.split_whitespace().map(str::to_owned).collect());
    mint(core, &client.client_id, subject_token, audience, scopes).await
}

/// Checks the subject token and the target, and signs the downstream token for `actor`.
async fn mint(
    core: &Core,
    actor: &str,
    subject_token: &str,
    audience: &str,
    scopes: Option<Vec<String>>,
) -> Result<Value, OAuthError> {
    if !core.settings.token_exchange_audiences.iter().any(|a| a == audience) {
        return Err(OAuthError::invalid_target(format!("this server issues no tokens for the audience {audience}")));
    }
    let subject = core.verifier.verify(subject_token).await.map_err(|rejection| match rejection {
        Rejection::Unavailable => OAuthError::temporarily_unavailable(rejection.description()),
        other => OAuthError::invalid_grant(format!("subject_token refused: {}", other.description())),
    })?;
    // The verifier may also trust other issuers ([[jwt.issuers]]): only this issuer's own tokens
    // are exchanged here, or another issuer's `sub` would become one of ours.
    if subject.issuer != core.issuer {
        return Err(OAuthError::invalid_grant("subject_token was not issued by this server"));
    }
    // With `jwt.enforce_audience = false` the verifier takes any audience: only tokens for this
    // server are exchanged, never a downstream token again.
    let own = |aud: &Value| aud.as_str().is_some_and(|aud| core.resources.0.iter().any(|r| r == aud));
    let for_us = match subject.claims.get("aud") {
        Some(Value::Array(auds)) => auds.iter().any(own),
        Some(aud) => own(aud),
        None => false,
    };
    if !for_us {
        return Err(OAuthError::invalid_grant("subject_token was not issued for this server"));
    }
    let scopes: Vec<String> = match scopes {
        None => subject.scopes.iter().cloned().collect(),
        Some(asked) => {
            if let Some(extra) = asked.iter().find(|s| !subject.has_scope(s)) {
                return Err(OAuthError::invalid_scope(format!("the subject token does not hold {extra}")));
            }
            asked
        }
    };
    let now = now();
    let exp = (now + core.settings.access_token_ttl_secs as i64).min(subject.expires_at.unwrap_or(now));
    if exp <= now {
        return Err(OAuthError::invalid_grant("subject_token refused: token expired"));
    }
    let scope = scopes.join(" ");
    let mut act = json!({ "sub": actor });
    if let Some(previous) = subject.claims.get("act") {
        act["act"] = previous.clone();
    }
    let mut claims = json!({
        "iss": core.issuer,
        "sub": subject.subject,
        "aud": audience,
        "iat": now,
        "exp": exp,
        "jti": random_token(),
        "scope": scope,
        "client_id": actor,
        "act": act,
    });
    for name in ["roles", "preferred_username", "name", GRANT_CLAIM] {
        if let Some(value) = subject.claims.get(name) {
            claims[name] = value.clone();
        }
    }
    let access_token = core.keys.sign(&claims).map_err(OAuthError::server_error)?;
    tracing::info!(client_id = actor, sub = %subject.subject, aud = audience, %scope, "token exchanged");
    Ok(json!({
        "access_token": access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": exp - now,
        "scope": scope,
    }))
}

/// This server as its own exchange client, in-process: `act.sub` is its resource identifier.
pub struct EmbeddedExchange {
    core: Arc<Core>,
    actor: String,
}

impl EmbeddedExchange {
    pub(super) fn new(core: Arc<Core>, actor: String) -> Self {
        EmbeddedExchange { core, actor }
    }
}

impl Backend for EmbeddedExchange {
    fn exchange<'a>(
        &'a self,
        subject_token: &'a str,
        audience: &'a str,
        scopes: &'a [String],
    ) -> BoxFuture<'a, Result<IssuedToken, ExchangeError>> {
        Box::pin(async move {
            let asked = (!scopes.is_empty()).then(|| scopes.to_vec());
            let answer = mint(&self.core, &self.actor, subject_token, audience, asked).await.map_err(|error| {
                match error.error {
                    "temporarily_unavailable" | "server_error" => ExchangeError::Unavailable(error.description.into()),
                    code => {
                        ExchangeError::Refused { error: code.to_owned(), description: Some(error.description.into()) }
                    }
                }
            })?;
            Ok(IssuedToken {
                access_token: answer["access_token"].as_str().unwrap_or_default().to_owned(),
                expires_in: answer["expires_in"].as_u64(),
                scope: answer["scope"].as_str().map(str::to_owned),
            })
        })
    }
}
