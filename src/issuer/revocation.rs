//! Token revocation, RFC 7009 (feature `issuer`): `POST /revoke` with `token` and an optional
//! `token_type_hint`, the client authenticated as at the token endpoint (a confidential client
//! with its secret, a public client by its `client_id`, as RFC 7009 section 2.1 allows).
//!
//! What a revocation revokes is the whole grant the token belongs to: its family of refresh
//! tokens and every access token issued under it, refused at `/mcp` from then on, on every
//! instance (see `jwt::revoked`). For a refresh token RFC 7009 section 2.1 asks for this. For an
//! access token it is our choice: the grant is the smallest unit the resource server knows, and
//! a client revoking an access token (signing out, a leaked token) wants none of its siblings to
//! keep working either; a `client_credentials` token has a grant of its own, so only that token
//! goes.
//!
//! The answer is 200 whatever the token was (unknown, expired, already revoked, malformed,
//! another client's), as the RFC says, so the endpoint tells nobody anything about tokens it
//! did not issue to them; only another client's token is logged. The hint is accepted and not
//! needed: refresh tokens are random strings and access tokens JWTs, and the shape tells them
//! apart. Access tokens minted outside this issuer (with the same key, by `generate_token`)
//! name no grant and cannot be revoked.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::OAuthError;
use super::store::RefreshToken;
use super::token::{authenticate, no_store};
use super::{Core, Params, digest};
use crate::jwt::Rejection;
use crate::jwt::revoked::grant_of;
use crate::principal::Principal;

/// `POST /revoke`.
pub(super) async fn revoke(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let address = core.address(&headers, peer.map(|Extension(ConnectInfo(addr))| addr));
    match handle(&core, &address, &headers, form).await {
        Ok(()) => no_store(().into_response()),
        Err(error) => error.into_response(),
    }
}

async fn handle(
    core: &Core,
    address: &str,
    headers: &HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<(), OAuthError> {
    let params = params(form)?;
    let client = authenticate(core, address, headers, &params).await?;
    let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let Some(presented) = presented(core, token).await? else { return Ok(()) };
    if presented.client_id() != Some(client.client_id.as_str()) {
        tracing::warn!(client_id = %client.client_id, "a client asked to revoke another client's token; nothing revoked");
        return Ok(());
    }
    match presented {
        Presented::Refresh { token, .. } => core.revoke_family(&token.family, "client_request").await?,
        Presented::Access(principal) => {
            if let Some(grant) = grant_of(&principal) {
                core.revoke_grant(grant, "client_request").await?;
            }
        }
    }
    tracing::info!(client_id = %client.client_id, "grant revoked at the client's request");
    Ok(())
}

/// The form of a revocation or introspection request, each parameter at most once.
pub(super) fn params(form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Result<Params, OAuthError> {
    let Form(pairs) =
        form.map_err(|_| OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"))?;
    let params = Params::new(pairs);
    if let Some(name) = params.repeated() {
        return Err(OAuthError::invalid_request(format!("parameter {name} is repeated")));
    }
    Ok(params)
}

/// A token this issuer issued and that is still live (not expired, not revoked).
pub(super) enum Presented {
    /// A valid access token, as the resource server sees it.
    Access(Principal),
    /// A refresh token (possibly rotated already), its store key and record (boxed: the record
    /// is large next to a principal, which is one pointer).
    Refresh { key: String, token: Box<RefreshToken> },
}

impl Presented {
    /// The client the token was issued to.
    pub(super) fn client_id(&self) -> Option<&str> {
        match self {
            Presented::Access(principal) => principal.client_id.as_deref(),
            Presented::Refresh { token, .. } => Some(&token.client_id),
        }
    }
}

/// Finds what `token` is; `None` for anything not live. A store that cannot say is 503.
pub(super) async fn presented(core: &Core, token: &str) -> Result<Option<Presented>, OAuthError> {
    // Refresh tokens are base64url (no dots); a JWT has two.
    if token.contains('.') {
        return match core.verifier.verify(token).await {
            // The verifier may also trust other issuers ([[jwt.issuers]]): only this issuer's
            // own tokens are revoked or described here.
            Ok(principal) if principal.issuer == core.issuer => Ok(Some(Presented::Access(principal))),
            Ok(_) => Ok(None),
            Err(Rejection::Unavailable) => {
                Err(OAuthError::temporarily_unavailable("this server cannot check tokens right now; try again shortly"))
            }
            Err(_) => Ok(None),
        };
    }
    let key = digest(token);
    Ok(core.store.refresh_token(&key).await?.map(|token| Presented::Refresh { key, token: Box::new(token) }))
}
