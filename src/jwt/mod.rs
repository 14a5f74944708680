//! Feature `jwt` (tutorial steps 5-6): keys, the JWKS, token minting, and access-token
//! validation on `/mcp`, so that only JWTs issued for this server get through.
//!
//! # Parts
//! - [`keyfile`] — the local RSA key pair on disk (created on first start), signing.
//! - [`keys`] — verification keys parsed once into a [`keys::KeySet`]; [`keys::LocalKeys`].
//! - [`remote`] — keys from a JWKS URL or the issuer's metadata, cached and refreshed.
//! - [`issuers`] — the trusted issuers (`jwt.issuer`, `[[jwt.issuers]]`), each with its own
//!   keys and rules; tokens are routed to theirs by `iss`.
//! - [`introspect`] — opaque (non-JWT) tokens, introspected (RFC 7662) and cached.
//! - [`checks`] — the refusal reasons and the claim checks JWTs and introspection share.
//! - [`verify`] — the token checks, ending in a [`Principal`](crate::principal::Principal).
//! - [`cache`] — verified tokens, so a repeated token skips the signature check.
//! - [`claims`] — claims to principal: name, scopes, roles.
//! - [`revoked`] — grants the embedded issuer revoked, refused before their tokens expire.
//! - [`layer`] — the tower layer on `/mcp` and the `Authorization` header rules.
//!
//! The composition root builds a [`Jwt`] from the settings and takes from it the auth layer,
//! the `/.well-known/jwks.json` route and a `/health` section.

pub mod cache;
pub mod checks;
pub mod claims;
pub mod introspect;
pub mod issuers;
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
use introspect::Introspector;
use issuers::{Issuer, Issuers, Keys};
use remote::RemoteKeys;

/// The `jwt` layer, built once at start-up.
pub struct Jwt {
    verifier: Arc<Verifier>,
    local: Option<Arc<LocalKeys>>,
    max_header_bytes: usize,
}

impl Jwt {
    /// Loads (or generates) local keys and fetches every remote issuer's (concurrently), and
    /// starts their refresh. With `revocations` (the embedded issuer's store), tokens of revoked
    /// grants are refused, and revocations announced by any instance are listened to from now on.
    pub async fn from_settings(settings: &Settings, revocations: Option<Arc<dyn Store>>) -> Result<Jwt, StartupError> {
        let jwt = &settings.jwt;
        if !jwt.enforce_audience {
            tracing::warn!(
                "jwt.enforce_audience = false: tokens issued for ANY audience at this issuer are accepted, \
                 including tokens meant for other services"
            );
        }
        let trusted = jwt.trusted_issuers(&settings.server.public_url);
        let local = match trusted.iter().any(|t| t.keys == KeySource::LocalFiles) {
            true => {
                let local = Arc::new(LocalKeys::load_or_generate(settings)?);
                tracing::info!(keys = ?local.key_set().kids(), issuer = %settings.server.public_url, "using local signing keys");
                Some(local)
            }
            false => None,
        };
        let client = RemoteKeys::client(jwt)?;
        let issuers = futures_util::future::try_join_all(trusted.iter().map(|t| {
            let (client, local) = (client.clone(), local.clone());
            async move {
                let audiences = jwt.enforce_audience.then(|| {
                    let mut audiences = vec![settings.mcp_url()];
                    audiences.extend(t.audiences.iter().cloned());
                    audiences
                });
                let keys = match (&t.keys, local) {
                    (KeySource::LocalFiles, Some(local)) => Keys::Fixed(local.key_set().clone()),
                    (KeySource::LocalFiles | KeySource::Introspection, _) => Keys::Fixed(Default::default()),
                    (source, _) => Keys::Remote(
                        RemoteKeys::start(
                            jwt,
                            client,
                            source.clone(),
                            &t.algorithms,
                            "jwt.issuer / jwt.jwks_url / jwt.issuers",
                        )
                        .await?,
                    ),
                };
                let issuer = Issuer::new(t.issuer.clone(), keys, t.algorithms.clone(), audiences, &t.role_claims);
                Ok::<_, StartupError>(if t.keys == KeySource::Introspection { issuer.without_keys() } else { issuer })
            }
        }))
        .await?;
        if trusted.len() > 1 {
            let names: Vec<&str> = trusted.iter().map(|t| t.issuer.as_str()).collect();
            tracing::info!(issuers = ?names, "trusting several issuers; tokens are routed by `iss`");
        }
        let mut verifier = Verifier::with_issuers(settings, Issuers::new(issuers));
        if let Some(opaque) = trusted.iter().find(|t| t.introspection.is_some()) {
            let endpoint = opaque.introspection.as_ref().expect("found by it");
            let audiences =
                verifier.issuers().route(&opaque.issuer).and_then(|(_, i)| i.audiences().map(<[_]>::to_vec));
            let rules = introspect::Rules {
                issuer: opaque.issuer.clone(),
                audiences,
                role_claims: opaque.role_claims.clone(),
                leeway_secs: jwt.leeway_secs,
                cache_secs: jwt.introspection_cache_secs,
                negative_cache_secs: jwt.introspection_negative_cache_secs,
            };
            verifier = verifier.with_introspection(Introspector::new(endpoint, client.clone(), rules));
        }
        if let Some(store) = revocations {
            verifier = verifier.with_revocations(store);
        }
        let verifier = Arc::new(verifier);
        if verifier.issuers().iter().any(|issuer| matches!(issuer.keys(), Keys::Remote(_))) {
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

    /// The readiness check: every issuer that signs tokens has keys to verify them with
    /// (remote ones were fetched at start-up, and are kept while the issuer is unreachable).
    pub fn readiness(&self) -> impl Fn() -> std::future::Ready<Result<(), String>> + Send + Sync + 'static {
        let verifier = self.verifier.clone();
        move || {
            let empty = verifier.issuers().iter().find(|i| i.has_keys() && i.key_set().is_empty());
            std::future::ready(match empty {
                None => Ok(()),
                Some(issuer) => Err(format!("no keys to verify tokens of {} with", issuer.name())),
            })
        }
    }

    /// The `/health` section: per issuer, where its keys come from and their status; with one
    /// issuer, its report is the section itself (as before several were possible).
    pub fn health(&self) -> impl Fn() -> Value + Send + Sync + 'static {
        let verifier = self.verifier.clone();
        let local = self.local.clone();
        move || {
            let issuers: Vec<Value> = verifier
                .issuers()
                .iter()
                .map(|issuer| {
                    let mut report = issuer.report();
                    if report["source"] == "local" {
                        report["signing_kid"] = json!(local.as_ref().and_then(|l| l.kid()));
                    }
                    report
                })
                .collect();
            let mut report = match issuers.as_slice() {
                [only] => only.clone(),
                _ => json!({}),
            };
            report["issuers"] = Value::Array(issuers);
            if let Some(introspector) = verifier.introspector() {
                report["introspection"] = introspector.report();
            }
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
