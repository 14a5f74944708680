//! Access-token validation (feature `jwt`, step 6): compact JWS parsing, the algorithm
//! allow-list, key selection by `kid`, the signature, then the claims (`exp`, `nbf`, `iat` with
//! leeway, `iss` exactly, `aud` naming this server), ending in a [`Principal`].
//!
//! Everything fails closed: anything unexpected is a [`Rejection`]. Header members that point
//! at keys (`jku`, `x5u`, `jwk`, `x5c`) are ignored — keys only ever come from configuration —
//! and a `crit` header is refused, as no JWS extension is understood. `typ` is not required
//! (issuers send `JWT` or `at+jwt`); the audience check is what keeps ID tokens and tokens for
//! other services out. Of the claims, only `iss` is read before the signature is checked: it
//! picks the trusted issuer whose keys, algorithms and audiences apply (see [`super::issuers`]);
//! everything else is looked at after the signature checked out. A token that is not a JWT at
//! all goes to introspection when an issuer of opaque tokens is configured (see
//! [`super::introspect`]).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::cache::{TokenCache, Verified};
pub use super::checks::{Rejection, unix_now};
use super::checks::{check_audience, check_times, numeric_date};
use super::claims;
use super::introspect::Introspector;
use super::issuers::{Issuer, Issuers};
use super::keys::{KeySet, VerifyingKey};
use super::revoked::{self, Revocations};
use crate::config::{JwtAlgorithm, Settings};
use crate::principal::Principal;

/// The JOSE header members that matter here.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

pub use super::issuers::Keys;

/// Validates access tokens into principals.
pub struct Verifier {
    issuers: Issuers,
    leeway: i64,
    cache: TokenCache,
    /// With the embedded issuer: where revoked grants are recorded.
    revocations: Option<Revocations>,
    /// With an issuer of opaque tokens: its introspection endpoint.
    introspector: Option<Introspector>,
}

/// A compact JWS taken apart, its signature not checked yet.
struct Parsed<'t> {
    signing_input: &'t str,
    header: JoseHeader,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

impl<'t> Parsed<'t> {
    /// Splits and decodes `token`: anything that is not a compact JWS with JSON header and
    /// claims is [`Rejection::Malformed`] (and, with introspection, an opaque token).
    fn new(token: &'t str) -> Result<Self, Rejection> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(Rejection::Malformed("not a JWT"))?;
        let (header, payload) = signing_input.split_once('.').ok_or(Rejection::Malformed("not a JWT"))?;
        if payload.contains('.') {
            return Err(Rejection::Malformed("encrypted or nested tokens are not accepted"));
        }
        if header.is_empty() || payload.is_empty() {
            return Err(Rejection::Malformed("not a JWT"));
        }
        let header: JoseHeader = json(b64(header)?, "malformed token header")?;
        if header.crit.is_some() {
            return Err(Rejection::Malformed("unsupported critical header"));
        }
        // Decoded before the (costly) signature check, so garbage never reaches it.
        let claims: Map<String, Value> = json(b64(payload)?, "malformed token claims")?;
        let signature = b64(signature)?;
        Ok(Parsed { signing_input, header, claims, signature })
    }
}

impl Verifier {
    /// A verifier of one issuer, `settings`' own (`jwt.issuer`, or this server), with `keys`.
    pub fn new(settings: &Settings, keys: Keys) -> Self {
        let jwt = &settings.jwt;
        let audiences = jwt.enforce_audience.then(|| {
            let mut audiences = vec![settings.mcp_url()];
            audiences.extend(jwt.extra_audiences.iter().map(|a| a.trim().to_owned()));
            audiences
        });
        let issuer = Issuer::new(settings.token_issuer(), keys, jwt.algorithms.clone(), audiences, &jwt.role_claims);
        Self::with_issuers(settings, Issuers::new(vec![issuer]))
    }

    /// A verifier of every issuer in `issuers`.
    pub fn with_issuers(settings: &Settings, issuers: Issuers) -> Self {
        let jwt = &settings.jwt;
        let leeway = jwt.leeway_secs as i64;
        Verifier {
            issuers,
            leeway,
            cache: TokenCache::new(jwt.token_cache_size, leeway),
            revocations: None,
            introspector: None,
        }
    }

    /// Introspects opaque (non-JWT) tokens with `introspector`.
    pub fn with_introspection(mut self, introspector: Introspector) -> Self {
        self.introspector = Some(introspector);
        self
    }

    /// Refuses tokens whose grant is revoked in `store` (the embedded issuer's; see
    /// [`super::revoked`]).
    pub fn with_revocations(mut self, store: Arc<dyn crate::store::Store>) -> Self {
        self.revocations = Some(Revocations::new(store));
        self
    }

    /// Where revoked grants are recorded, when this verifier checks them.
    pub fn revocations(&self) -> Option<&Revocations> {
        self.revocations.as_ref()
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> &Issuers {
        &self.issuers
    }

    /// The introspection endpoint for opaque tokens, if one is configured.
    pub fn introspector(&self) -> Option<&Introspector> {
        self.introspector.as_ref()
    }

    /// The keys of the first issuer (the only one, unless `[[jwt.issuers]]` lists more).
    pub fn key_set(&self) -> Arc<KeySet> {
        self.issuers.get(0).map(Issuer::key_set).unwrap_or_default()
    }

    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The `iss` of the first issuer.
    pub fn issuer(&self) -> &str {
        self.issuers.get(0).map_or("", Issuer::name)
    }

    /// The accepted audiences of the first issuer; `None` when not enforced.
    pub fn audiences(&self) -> Option<&[String]> {
        self.issuers.get(0).and_then(Issuer::audiences)
    }

    /// Validates `token`. A cached verification is used at once; otherwise the token goes to the
    /// issuer its `iss` names (an issuer not trusted is refused with no fetch). With remote keys,
    /// an unknown `kid` triggers one (shared, rate-limited) refresh of that issuer's keys before
    /// the token is refused. A token that is not a JWT is introspected, when an issuer of opaque
    /// tokens is configured. A JWT seen for the first time that names a grant is checked against
    /// the revoked grants, if this verifier checks them.
    pub async fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        let slot = match self.cached(token, unix_now())? {
            Ok(principal) => return Ok(principal),
            Err(slot) => slot,
        };
        let parsed = match Parsed::new(token) {
            Ok(parsed) => parsed,
            Err(rejection) => {
                return match &self.introspector {
                    Some(introspector) => introspector.check(token).await,
                    None => Err(rejection),
                };
            }
        };
        let (index, issuer) = self.route(&parsed)?;
        let verified = match issuer.keys() {
            Keys::Fixed(set) => self.verify_parsed(index, issuer, set, parsed, unix_now()),
            Keys::Remote(remote) => {
                let (generation, set) = remote.snapshot();
                match self.select_key(issuer, &set, &parsed) {
                    Err(Rejection::UnknownKey(kid)) => {
                        if !remote.refresh_on_miss(generation).await {
                            return Err(Rejection::UnknownKey(kid));
                        }
                        let set = remote.current();
                        self.cache.retain_keys(index, &set);
                        self.verify_parsed(index, issuer, &set, parsed, unix_now())
                    }
                    Err(other) => Err(other),
                    Ok(_) => self.verify_parsed(index, issuer, &set, parsed, unix_now()),
                }
            }
        }?;
        self.admit(token, verified, slot).await
    }

    /// The cached verification of `token` (`Ok`), or the slot to file a fresh one under (`Err`).
    /// The cached path: a hash, one shard lock and the check that the entry's key is still in
    /// its issuer's set; no parsing, no routing.
    fn cached(&self, token: &str, now: i64) -> Result<Result<Principal, Option<u64>>, Rejection> {
        if self.cache.capacity() == 0 {
            return Ok(Err(None));
        }
        let slot = self.cache.slot(token);
        let hit = self.cache.get(slot, token, &self.issuers, now);
        crate::observe::token_cache_lookup(hit.is_some());
        match hit {
            Some(hit) => {
                // `exp` was checked by the cache; `nbf` is checked on every use as well.
                self.check_times(hit.exp, hit.nbf, None, now, &hit.principal.subject)?;
                Ok(Ok(hit.principal))
            }
            None => Ok(Err(Some(slot))),
        }
    }

    /// The issuer the token's (unverified) `iss` names; a token naming no trusted issuer is
    /// refused before any key is looked up or fetched.
    fn route<'v>(&'v self, parsed: &Parsed<'_>) -> Result<(usize, &'v Issuer), Rejection> {
        let iss = parsed.claims.get("iss").and_then(Value::as_str).ok_or(Rejection::UnknownIssuer)?;
        self.issuers.route(iss).ok_or(Rejection::UnknownIssuer)
    }

    /// Checks a freshly verified token's grant (one store read), then caches it. An eviction
    /// between the read and the insert (a revocation announced meanwhile) takes the entry out
    /// again: the next use reads the store once more.
    async fn admit(&self, token: &str, verified: Verified, slot: Option<u64>) -> Result<Principal, Rejection> {
        let principal = verified.principal.clone();
        let revocations = self.revocations.as_ref().zip(revoked::grant_of(&principal));
        let Some((revocations, grant)) = revocations else {
            if let Some(slot) = slot {
                self.cache.insert(slot, token, verified, unix_now());
            }
            return Ok(principal);
        };
        let generation = revocations.generation();
        match revocations.is_revoked(grant).await {
            Ok(false) => {}
            Ok(true) => return Err(Rejection::Revoked { sub: principal.subject.clone() }),
            Err(err) => {
                tracing::warn!(%err, "revoked grants cannot be read: token refused");
                return Err(Rejection::Unavailable);
            }
        }
        if let Some(slot) = slot {
            self.cache.insert(slot, token, verified, unix_now());
            if revocations.generation() != generation {
                self.cache.remove(slot, token);
            }
        }
        Ok(principal)
    }

    /// Forgets the cached verifications of `grant`'s tokens: it was revoked (here or on another
    /// instance), and their next use must read the store.
    pub fn forget_grant(&self, grant: &str) {
        if let Some(revocations) = &self.revocations {
            revocations.bump();
        }
        self.cache.remove_where(|verified| revoked::grant_of(&verified.principal) == Some(grant));
    }

    /// Revokes `grant` for `lifetime`: recorded in the store, forgotten here at once, and
    /// announced to the other instances. Without revocations (no embedded issuer) it does nothing.
    pub async fn revoke_grant(
        &self,
        grant: &str,
        lifetime: std::time::Duration,
    ) -> Result<(), crate::store::StoreError> {
        let Some(revocations) = &self.revocations else { return Ok(()) };
        revocations.record(grant, lifetime).await?;
        self.forget_grant(grant);
        revocations.announce(grant).await
    }

    /// Validates `token` against the current keys as of `now` (seconds since the epoch),
    /// without fetching keys, introspecting or reading the store (benchmarks, tests): a token
    /// that needs its grant checked, or introspection, is refused as [`Rejection::Unavailable`],
    /// unless it is cached.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Principal, Rejection> {
        let slot = match self.cached(token, now)? {
            Ok(principal) => return Ok(principal),
            Err(slot) => slot,
        };
        let parsed = match Parsed::new(token) {
            Ok(parsed) => parsed,
            Err(_) if self.introspector.is_some() => return Err(Rejection::Unavailable),
            Err(rejection) => return Err(rejection),
        };
        let (index, issuer) = self.route(&parsed)?;
        let verified = self.verify_parsed(index, issuer, &issuer.key_set(), parsed, now)?;
        if self.revocations.is_some() && revoked::grant_of(&verified.principal).is_some() {
            return Err(Rejection::Unavailable);
        }
        let principal = verified.principal.clone();
        if let Some(slot) = slot {
            self.cache.insert(slot, token, verified, now);
        }
        Ok(principal)
    }

    /// Refreshes every issuer's remote keys now and forgets cached tokens of keys that left
    /// their set.
    pub async fn refresh_keys(&self) {
        for (index, issuer) in self.issuers.iter().enumerate() {
            if let Keys::Remote(remote) = issuer.keys() {
                remote.refresh().await;
                self.cache.retain_keys(index, &remote.current());
            }
        }
    }

    /// The algorithm (on `issuer`'s allow-list) and key (in `keys`, by `kid`) of a token.
    fn select_key(
        &self,
        issuer: &Issuer,
        keys: &KeySet,
        parsed: &Parsed<'_>,
    ) -> Result<(JwtAlgorithm, Arc<VerifyingKey>), Rejection> {
        let header = &parsed.header;
        let alg = JwtAlgorithm::from_name(&header.alg)
            .filter(|alg| issuer.algorithms().contains(alg))
            .ok_or_else(|| Rejection::Algorithm(header.alg.clone()))?;
        let key = match header.kid.as_deref() {
            Some(kid) => keys.get(kid),
            None => keys.sole(),
        }
        .ok_or_else(|| Rejection::UnknownKey(header.kid.clone()))?;
        Ok((alg, key.clone()))
    }

    /// The signature (with `issuer`'s key from `keys`), then the claims.
    fn verify_parsed(
        &self,
        index: usize,
        issuer: &Issuer,
        keys: &KeySet,
        parsed: Parsed<'_>,
        now: i64,
    ) -> Result<Verified, Rejection> {
        let (alg, key) = self.select_key(issuer, keys, &parsed)?;
        if !key.verify(alg, parsed.signing_input.as_bytes(), &parsed.signature) {
            return Err(Rejection::Signature { kid: key.kid().to_owned() });
        }
        let claims = parsed.claims;
        let (exp, nbf) = self.check_claims(issuer, &claims, now)?;
        let principal =
            claims::principal(claims, issuer.roles()).ok_or(Rejection::Claim { claim: "sub", sub: None })?;
        Ok(Verified { principal, key, exp, nbf, issuer: index })
    }

    /// The registered claims: times, issuer, audience. Returns `exp` and `nbf`.
    fn check_claims(
        &self,
        issuer: &Issuer,
        claims: &Map<String, Value>,
        now: i64,
    ) -> Result<(i64, Option<i64>), Rejection> {
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("").to_owned();
        let date = |claim: &'static str| match claims.get(claim) {
            None => Ok(None),
            Some(value) => {
                numeric_date(value).map(Some).ok_or_else(|| Rejection::Claim { claim, sub: Some(sub.clone()) })
            }
        };
        let exp = date("exp")?.ok_or_else(|| Rejection::Claim { claim: "exp", sub: Some(sub.clone()) })?;
        let (nbf, iat) = (date("nbf")?, date("iat")?);
        self.check_times(exp, nbf, iat, now, &sub)?;
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.name()) {
            return Err(Rejection::Issuer { sub });
        }
        check_audience(issuer.audiences(), claims.get("aud"), true, sub)?;
        Ok((exp, nbf))
    }

    fn check_times(&self, exp: i64, nbf: Option<i64>, iat: Option<i64>, now: i64, sub: &str) -> Result<(), Rejection> {
        check_times(self.leeway, exp, nbf, iat, now, sub)
    }
}

/// Strict base64url without padding, as JWS requires.
fn b64(part: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Rejection::Malformed("malformed base64url in token"))
}

/// A decoded part as JSON. UTF-8 is checked once for the whole part: parsed from bytes,
/// serde_json checks every string on its own, which costs more for the short strings of claims.
fn json<T: serde::de::DeserializeOwned>(part: Vec<u8>, malformed: &'static str) -> Result<T, Rejection> {
    let text = String::from_utf8(part).map_err(|_| Rejection::Malformed(malformed))?;
    serde_json::from_str(&text).map_err(|_| Rejection::Malformed(malformed))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numeric_dates_may_be_fractional_but_never_strings_or_nonsense() {
        assert_eq!(numeric_date(&json!(1_900_000_000)), Some(1_900_000_000));
        assert_eq!(numeric_date(&json!(1_900_000_000.9)), Some(1_900_000_000));
        assert_eq!(numeric_date(&json!(-1)), Some(-1));
        for bad in [json!("1900000000"), json!(null), json!(true), json!([1]), json!({})] {
            assert_eq!(numeric_date(&bad), None, "{bad}");
        }
    }

    #[test]
    fn descriptions_are_short_and_logs_name_kid_or_subject() {
        let expired = Rejection::Expired { sub: "alice".into() };
        assert_eq!(expired.description(), "token expired");
        assert_eq!(expired.to_string(), "token expired (sub \"alice\")");
        assert_eq!(Rejection::UnknownKey(Some("k1".into())).to_string(), "unknown signing key (kid \"k1\")");
        assert_eq!(Rejection::Algorithm("none".into()).to_string(), "signature algorithm not accepted (alg \"none\")");
        let long = Rejection::UnknownKey(Some("é".repeat(100)));
        assert_eq!(long.to_string(), format!("unknown signing key (kid \"{}\")", "é".repeat(32)));
    }
}
