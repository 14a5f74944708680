//! Feature `jwt` (tutorial steps 5-6): keys, the JWKS, token minting, and access-token
//! validation on `/mcp`, so that only JWTs issued for this server get through.
//!
//! # Parts
//! - [`keyfile`] — the local RSA key pair on disk (created on first start), signing.
//! - [`keys`] — verification keys parsed once into a [`keys::KeySet`]; [`keys::LocalKeys`].
//! - [`remote`] — keys from a JWKS URL or the issuer's metadata, cached and refreshed.
//! - [`verify`] — the token checks, ending in a [`Principal`](crate::principal::Principal).
//! - [`cache`] — verified tokens, so a repeated token skips the signature check.
//! - [`claims`] — claims to principal: name, scopes, roles.
//! - [`revoked`] — grants the embedded issuer revoked, refused before their tokens expire.
//! - [`layer`] — the tower layer on `/mcp` and the `Authorization` header rules.
//!
//! The composition root builds a [`Jwt`] from the settings and takes from it the auth layer,
//! the `/.well-known/jwks.json` route and a `/health` section.

pub mod cache;
pub mod claims;
pub mod keyfile;
pub mod keys;
pub mod layer;
pub mod remote;
pub mod revoked;
pub mod verify;

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub use keys::{KeySet, LocalKeys, SignError};
pub use layer::{AuthLayer, Authenticator, ChallengeParams, ScopeHint};
pub use verify::{Rejection, Verifier};

use crate::config::{KeySource, Settings};
use crate::error::StartupError;
use crate::store::{Store, Subscription};
use remote::RemoteKeys;
use verify::Keys;

/// The `jwt` layer, built once at start-up.
pub struct Jwt {
    verifier: Arc<Verifier>,
    local: Option<Arc<LocalKeys>>,
    max_header_bytes: usize,
}

impl Jwt {
    /// Loads (or generates) local keys, or fetches remote ones, and starts their refresh. With
    /// `revocations` (the embedded issuer's store), tokens of revoked grants are refused, and
    /// revocations announced by any instance are listened to from now on.
    pub async fn from_settings(settings: &Settings, revocations: Option<Arc<dyn Store>>) -> Result<Jwt, StartupError> {
        let jwt = &settings.jwt;
        if !jwt.enforce_audience {
            tracing::warn!(
                "jwt.enforce_audience = false: tokens issued for ANY audience at this issuer are accepted, \
                 including tokens meant for other services"
            );
        }
        let (keys, local) = match jwt.key_source() {
            KeySource::LocalFiles => {
                let local = Arc::new(LocalKeys::load_or_generate(settings)?);
                tracing::info!(keys = ?local.key_set().kids(), issuer = %settings.token_issuer(), "using local signing keys");
                (Keys::Fixed(local.key_set().clone()), Some(local))
            }
            KeySource::JwksUrl(_) | KeySource::Discovery(_) => (Keys::Remote(RemoteKeys::start(settings).await?), None),
        };
        let mut verifier = Verifier::new(settings, keys);
        if let Some(store) = revocations {
            verifier = verifier.with_revocations(store);
        }
        let verifier = Arc::new(verifier);
        if let Keys::Remote(_) = verifier.keys() {
            spawn_refresher(Arc::downgrade(&verifier), Duration::from_secs(jwt.refresh_interval_secs));
        }
        if let Some(revocations) = verifier.revocations() {
            spawn_revocation_listener(Arc::downgrade(&verifier), revocations.subscribe());
        }
        Ok(Jwt { verifier, local, max_header_bytes: jwt.max_header_bytes })
    }

    /// The layer that authenticates `/mcp`; `challenge` adds parameters to its 401s.
    pub fn layer(&self, challenge: ChallengeParams) -> AuthLayer {
        AuthLayer::new(Authenticator::new(self.verifier.clone(), challenge, self.max_header_bytes))
    }

    /// The verifier, for callers that check tokens themselves.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The local key pair, when this server is its own issuer.
    pub fn local_keys(&self) -> Option<&Arc<LocalKeys>> {
        self.local.as_ref()
    }

    /// `GET /.well-known/jwks.json`: the public keys of a server that issues its own tokens.
    /// With an external issuer there is nothing of ours to publish, and the route is absent.
    pub fn jwks_router(&self) -> Router {
        let Some(local) = &self.local else {
            return Router::new();
        };
        let body = Arc::new(local.key_set().jwks());
        Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let body = body.clone();
                async move {
                    let mut response = Json(body.as_ref().clone()).into_response();
                    response
                        .headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
                    response
                }
            }),
        )
    }

    /// The `/health` section: key source and status.
    /// The readiness check: keys to verify tokens with are loaded (remote ones were fetched at
    /// start-up, and are kept while the issuer is unreachable).
    pub fn readiness(&self) -> impl Fn() -> std::future::Ready<Result<(), String>> + Send + Sync + 'static {
        let verifier = self.verifier.clone();
        move || {
            let ready = !verifier.key_set().is_empty();
            std::future::ready(if ready { Ok(()) } else { Err("no keys to verify tokens with".to_owned()) })
        }
    }

    pub fn health(&self) -> impl Fn() -> Value + Send + Sync + 'static {
        let verifier = self.verifier.clone();
        let local = self.local.clone();
        move || {
            let mut report = match (verifier.keys(), &local) {
                (Keys::Remote(remote), _) => remote.report(),
                (Keys::Fixed(set), local) => json!({
                    "source": "local",
                    "keys": set.len(),
                    "kids": set.kids(),
                    "signing_kid": local.as_ref().and_then(|l| l.kid()),
                }),
            };
            report["issuer"] = json!(verifier.issuer());
            report["audiences"] = json!(verifier.audiences());
            report["token_cache"] =
                json!({ "entries": verifier.cache().len(), "capacity": verifier.cache().capacity() });
            report
        }
    }
}

/// Evicts the cached tokens of every grant revoked on any instance, for as long as the verifier
/// lives (see [`revoked`]).
fn spawn_revocation_listener(verifier: Weak<Verifier>, mut subscription: Subscription) {
    tokio::spawn(async move {
        while let Some(message) = subscription.recv().await {
            let Some(verifier) = verifier.upgrade() else { return };
            if let Ok(grant) = std::str::from_utf8(&message) {
                verifier.forget_grant(grant);
            }
        }
    });
}

/// Refreshes remote keys every `period` for as long as the verifier lives.
fn spawn_refresher(verifier: Weak<Verifier>, period: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(verifier) = verifier.upgrade() else { return };
            verifier.refresh_keys().await;
        }
    });
}
