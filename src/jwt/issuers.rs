//! Trusted issuers (feature `jwt`): every issuer whose tokens are accepted — `jwt.issuer` or
//! this server's local keys, and the `[[jwt.issuers]]` tables — each with its own keys (local
//! files, or a remote JWKS with its own refresh), algorithms, audiences and role claims.
//!
//! A token is routed to its issuer by the `iss` of its (not yet verified) payload before any key
//! is looked up, so a token naming an issuer that is not listed is refused without a fetch, and
//! a token naming issuer A is only ever checked with A's keys: one signed with B's key fails as
//! an unknown key or a bad signature, never passes as A's. The lists are short (a handful of
//! issuers), so routing is a scan of exact string comparisons.

use std::sync::Arc;

use serde_json::{Value, json};

use super::claims::RoleClaims;
use super::keys::{KeySet, VerifyingKey};
use super::remote::RemoteKeys;
use crate::config::JwtAlgorithm;

/// Where one issuer's verification keys come from.
pub enum Keys {
    /// A fixed set (local PEM files; empty for an issuer of opaque tokens only).
    Fixed(Arc<KeySet>),
    /// A remote JWKS, refreshed in the background and on unknown `kid`s.
    Remote(Arc<RemoteKeys>),
}

/// One trusted issuer and the rules for its tokens.
pub struct Issuer {
    name: String,
    keys: Keys,
    algorithms: Vec<JwtAlgorithm>,
    /// `None` when the audience is not enforced.
    audiences: Option<Vec<String>>,
    roles: RoleClaims,
    /// What `/health` says about fixed keys: "local", or "introspection" for none.
    fixed_source: &'static str,
}

impl Issuer {
    /// An issuer named `name` (the exact `iss`), checking tokens with `keys` and `algorithms`,
    /// accepting `audiences` (`None`: any), reading roles at `role_claims`.
    pub fn new(
        name: impl Into<String>,
        keys: Keys,
        algorithms: Vec<JwtAlgorithm>,
        audiences: Option<Vec<String>>,
        role_claims: &[String],
    ) -> Self {
        Issuer {
            name: name.into(),
            keys,
            algorithms,
            audiences,
            roles: RoleClaims::new(role_claims),
            fixed_source: "local",
        }
    }

    /// An issuer of opaque tokens only: no signing keys, every JWT naming it is refused.
    pub fn without_keys(mut self) -> Self {
        self.keys = Keys::Fixed(Arc::new(KeySet::default()));
        self.fixed_source = "introspection";
        self
    }

    /// The exact `iss` of its tokens.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn algorithms(&self) -> &[JwtAlgorithm] {
        &self.algorithms
    }

    /// The accepted audiences; `None` when not enforced.
    pub fn audiences(&self) -> Option<&[String]> {
        self.audiences.as_deref()
    }

    pub fn roles(&self) -> &RoleClaims {
        &self.roles
    }

    /// The keys in use now.
    pub fn key_set(&self) -> Arc<KeySet> {
        match &self.keys {
            Keys::Fixed(set) => set.clone(),
            Keys::Remote(remote) => remote.current(),
        }
    }

    /// Whether `key` is in this issuer's current set (the token cache's check on every hit).
    pub fn holds(&self, key: &Arc<VerifyingKey>) -> bool {
        match &self.keys {
            Keys::Fixed(set) => set.holds(key),
            Keys::Remote(remote) => remote.holds(key),
        }
    }

    /// Whether this issuer verifies JWTs at all (an introspection-only issuer does not).
    pub fn has_keys(&self) -> bool {
        self.fixed_source != "introspection"
    }

    /// For `/health`: the issuer, where its keys come from and how fresh they are.
    pub fn report(&self) -> Value {
        let mut report = match &self.keys {
            Keys::Remote(remote) => remote.report(),
            Keys::Fixed(set) => json!({ "source": self.fixed_source, "keys": set.len(), "kids": set.kids() }),
        };
        report["issuer"] = json!(self.name);
        report["audiences"] = json!(self.audiences);
        report
    }
}

/// Every trusted issuer, in configuration order.
pub struct Issuers(Vec<Issuer>);

impl Issuers {
    pub fn new(issuers: Vec<Issuer>) -> Self {
        Issuers(issuers)
    }

    /// The issuer a token's `iss` names, with its index (what the token cache files it under).
    pub fn route(&self, iss: &str) -> Option<(usize, &Issuer)> {
        self.0.iter().enumerate().find(|(_, issuer)| issuer.name == iss)
    }

    /// The issuer at `index` (from [`Issuers::route`]).
    pub fn get(&self, index: usize) -> Option<&Issuer> {
        self.0.get(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Issuer> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
