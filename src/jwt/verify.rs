//! Access-token validation (feature `jwt`, step 6): compact JWS parsing, the algorithm
//! allow-list, key selection by `kid`, the signature, then the claims (`exp`, `nbf`, `iat` with
//! leeway, `iss` exactly, `aud` naming this server), ending in a [`Principal`].
//!
//! Everything fails closed: anything unexpected is a [`Rejection`]. Header members that point
//! at keys (`jku`, `x5u`, `jwk`, `x5c`) are ignored — keys only ever come from configuration —
//! and a `crit` header is refused, as no JWS extension is understood. `typ` is not required
//! (issuers send `JWT` or `at+jwt`); the audience check is what keeps ID tokens and tokens for
//! other services out. Claims are only looked at after the signature checked out, so a forger
//! learns nothing about them.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::cache::{TokenCache, Verified};
use super::claims::{self, RoleClaims};
use super::keys::{KeySet, VerifyingKey};
use super::remote::RemoteKeys;
use super::revoked::{self, Revocations};
use crate::config::{JwtAlgorithm, Settings};
use crate::principal::Principal;

/// Why a token was refused. The [`description`](Rejection::description) goes to the client;
/// the `Display` form, with `kid` or subject but never the token, goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a compact JWS, bad base64url, bad JSON, a `crit` header.
    Malformed(&'static str),
    /// `alg` is not on the allow-list (this includes `none` and HMAC).
    Algorithm(String),
    /// No key with this `kid` (or no `kid` and several keys).
    UnknownKey(Option<String>),
    /// The signature does not verify with the selected key.
    Signature { kid: String },
    /// A required claim is missing or has the wrong type.
    Claim { claim: &'static str, sub: Option<String> },
    /// `exp` (plus leeway) has passed.
    Expired { sub: String },
    /// `nbf` is in the future (beyond leeway).
    NotYetValid { sub: String },
    /// `iat` is in the future (beyond leeway).
    IssuedInFuture { sub: String },
    /// `iss` is not the configured issuer.
    Issuer { sub: String },
    /// `aud` does not name this server.
    Audience { sub: String },
    /// No `aud` claim, and the audience is enforced.
    NoAudience { sub: String },
    /// The embedded issuer revoked the token's grant (see [`super::revoked`]).
    Revoked { sub: String },
    /// Whether the token's grant was revoked cannot be read from the store right now: not a
    /// verdict on the token, and answered 503 (fail closed).
    Unavailable,
}

impl Rejection {
    /// The reason as a metric label (`mcp_auth.authentication.failures`): a word per kind.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::Algorithm(_) => "algorithm",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::Signature { .. } => "signature",
            Rejection::Claim { .. } => "claim",
            Rejection::Expired { .. } => "expired",
            Rejection::NotYetValid { .. } => "not_yet_valid",
            Rejection::IssuedInFuture { .. } => "issued_in_future",
            Rejection::Issuer { .. } => "issuer",
            Rejection::Audience { .. } => "audience",
            Rejection::NoAudience { .. } => "no_audience",
            Rejection::Revoked { .. } => "revoked",
            Rejection::Unavailable => "unavailable",
        }
    }

    /// A short reason for `error_description`.
    pub fn description(&self) -> &'static str {
        match self {
            Rejection::Malformed(what) => what,
            Rejection::Algorithm(_) => "signature algorithm not accepted",
            Rejection::UnknownKey(_) => "unknown signing key",
            Rejection::Signature { .. } => "invalid signature",
            Rejection::Claim { claim: "exp", .. } => "token has no valid exp claim",
            Rejection::Claim { claim: "sub", .. } => "token has no valid sub claim",
            Rejection::Claim { .. } => "token has an invalid claim",
            Rejection::Expired { .. } => "token expired",
            Rejection::NotYetValid { .. } => "token not yet valid",
            Rejection::IssuedInFuture { .. } => "token issued in the future",
            Rejection::Issuer { .. } => "wrong issuer",
            Rejection::Audience { .. } => "token not issued for this resource",
            Rejection::NoAudience { .. } => "token has no audience",
            Rejection::Revoked { .. } => "token revoked",
            Rejection::Unavailable => "cannot check the token right now; try again shortly",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())?;
        // `alg` and `kid` come from whoever sent the token: cut them short in the log.
        match self {
            Rejection::Algorithm(alg) => write!(f, " (alg {:?})", short(alg)),
            Rejection::UnknownKey(Some(kid)) | Rejection::Signature { kid } => write!(f, " (kid {:?})", short(kid)),
            Rejection::UnknownKey(None) => f.write_str(" (no kid)"),
            Rejection::Claim { sub: Some(sub), .. }
            | Rejection::Expired { sub }
            | Rejection::NotYetValid { sub }
            | Rejection::IssuedInFuture { sub }
            | Rejection::Issuer { sub }
            | Rejection::Audience { sub }
            | Rejection::NoAudience { sub }
            | Rejection::Revoked { sub } => write!(f, " (sub {sub:?})"),
            _ => Ok(()),
        }
    }
}

/// At most 64 bytes of `text`, cut at a character boundary.
fn short(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The JOSE header members that matter here.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Where the verifier gets its keys.
pub enum Keys {
    /// A fixed set (local PEM files).
    Fixed(Arc<KeySet>),
    /// A remote JWKS, refreshed in the background and on unknown `kid`s.
    Remote(Arc<RemoteKeys>),
}

/// Validates access tokens into principals.
pub struct Verifier {
    keys: Keys,
    algorithms: Vec<JwtAlgorithm>,
    issuer: String,
    /// `None` when the audience is not enforced.
    audiences: Option<Vec<String>>,
    leeway: i64,
    roles: RoleClaims,
    cache: TokenCache,
    /// With the embedded issuer: where revoked grants are recorded.
    revocations: Option<Revocations>,
}

/// What [`Verifier::verify_with`] established.
enum Checked {
    /// A cached verification: nothing more to check.
    Cached(Principal),
    /// A fresh one, to be admitted (its grant checked) and then cached under `slot`.
    Fresh { verified: Verified, slot: Option<u64> },
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Verifier {
    /// A verifier for `settings`, with its keys from `keys`.
    pub fn new(settings: &Settings, keys: Keys) -> Self {
        let jwt = &settings.jwt;
        let audiences = jwt.enforce_audience.then(|| {
            let mut audiences = vec![settings.mcp_url()];
            audiences.extend(jwt.extra_audiences.iter().map(|a| a.trim().to_owned()));
            audiences
        });
        let leeway = jwt.leeway_secs as i64;
        Verifier {
            keys,
            algorithms: jwt.algorithms.clone(),
            issuer: settings.token_issuer(),
            audiences,
            leeway,
            roles: RoleClaims::new(&jwt.role_claims),
            cache: TokenCache::new(jwt.token_cache_size, leeway),
            revocations: None,
        }
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

    /// The keys in use now.
    pub fn key_set(&self) -> Arc<KeySet> {
        match &self.keys {
            Keys::Fixed(set) => set.clone(),
            Keys::Remote(remote) => remote.current(),
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The expected `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences; `None` when not enforced.
    pub fn audiences(&self) -> Option<&[String]> {
        self.audiences.as_deref()
    }

    /// Validates `token`. With remote keys, an unknown `kid` triggers one (shared,
    /// rate-limited) refresh of the key set before the token is refused. A token seen for the
    /// first time that names a grant is checked against the revoked grants, if this verifier
    /// checks them.
    pub async fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        let checked = match &self.keys {
            Keys::Fixed(set) => self.verify_with(set, token, unix_now()),
            Keys::Remote(remote) => {
                let (generation, set) = remote.snapshot();
                match self.verify_with(&set, token, unix_now()) {
                    Err(Rejection::UnknownKey(kid)) => {
                        if !remote.refresh_on_miss(generation).await {
                            return Err(Rejection::UnknownKey(kid));
                        }
                        let set = remote.current();
                        self.cache.retain_keys(&set);
                        self.verify_with(&set, token, unix_now())
                    }
                    other => other,
                }
            }
        }?;
        match checked {
            Checked::Cached(principal) => Ok(principal),
            Checked::Fresh { verified, slot } => self.admit(token, verified, slot).await,
        }
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
    /// without fetching keys or reading the store (benchmarks, tests): a token that needs its
    /// grant checked is refused as [`Rejection::Unavailable`], unless it is cached.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Principal, Rejection> {
        match self.verify_with(&self.key_set(), token, now)? {
            Checked::Cached(principal) => Ok(principal),
            Checked::Fresh { verified, slot } => {
                if self.revocations.is_some() && revoked::grant_of(&verified.principal).is_some() {
                    return Err(Rejection::Unavailable);
                }
                let principal = verified.principal.clone();
                if let Some(slot) = slot {
                    self.cache.insert(slot, token, verified, now);
                }
                Ok(principal)
            }
        }
    }

    /// Refreshes remote keys now and forgets cached tokens of keys that left the set.
    pub async fn refresh_keys(&self) {
        if let Keys::Remote(remote) = &self.keys {
            remote.refresh().await;
            self.cache.retain_keys(&remote.current());
        }
    }

    fn verify_with(&self, keys: &KeySet, token: &str, now: i64) -> Result<Checked, Rejection> {
        let slot = (self.cache.capacity() > 0).then(|| self.cache.slot(token));
        if let Some(slot) = slot {
            let hit = self.cache.get(slot, token, keys, now);
            crate::observe::token_cache_lookup(hit.is_some());
            if let Some(hit) = hit {
                // `exp` was checked by the cache; `nbf` is checked on every use as well.
                self.check_times(hit.exp, hit.nbf, None, now, &hit.principal.subject)?;
                return Ok(Checked::Cached(hit.principal));
            }
        }
        let verified = self.verify_uncached(keys, token, now)?;
        Ok(Checked::Fresh { verified, slot })
    }

    fn verify_uncached(&self, keys: &KeySet, token: &str, now: i64) -> Result<Verified, Rejection> {
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
        let alg = JwtAlgorithm::from_name(&header.alg)
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or_else(|| Rejection::Algorithm(header.alg.clone()))?;
        let key: &Arc<VerifyingKey> = match header.kid.as_deref() {
            Some(kid) => keys.get(kid),
            None => keys.sole(),
        }
        .ok_or_else(|| Rejection::UnknownKey(header.kid.clone()))?;
        // Both decoded before the (costly) signature check, so garbage never reaches it.
        let (payload, signature) = (b64(payload)?, b64(signature)?);
        if !key.verify(alg, signing_input.as_bytes(), &signature) {
            return Err(Rejection::Signature { kid: key.kid().to_owned() });
        }
        let claims: Map<String, Value> = json(payload, "malformed token claims")?;
        let (exp, nbf) = self.check_claims(&claims, now)?;
        let principal = claims::principal(claims, &self.roles).ok_or(Rejection::Claim { claim: "sub", sub: None })?;
        Ok(Verified { principal, key: key.clone(), exp, nbf })
    }

    /// The registered claims: times, issuer, audience. Returns `exp` and `nbf`.
    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<(i64, Option<i64>), Rejection> {
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
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(Rejection::Issuer { sub });
        }
        if let Some(accepted) = &self.audiences {
            let named = |aud: &str| accepted.iter().any(|a| a == aud);
            match claims.get("aud") {
                None => return Err(Rejection::NoAudience { sub }),
                Some(Value::String(aud)) if named(aud) => {}
                Some(Value::Array(auds)) if auds.iter().filter_map(Value::as_str).any(named) => {}
                Some(_) => return Err(Rejection::Audience { sub }),
            }
        }
        Ok((exp, nbf))
    }

    fn check_times(&self, exp: i64, nbf: Option<i64>, iat: Option<i64>, now: i64, sub: &str) -> Result<(), Rejection> {
        if now > exp.saturating_add(self.leeway) {
            return Err(Rejection::Expired { sub: sub.to_owned() });
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(Rejection::NotYetValid { sub: sub.to_owned() });
        }
        if iat.is_some_and(|iat| iat > now.saturating_add(self.leeway)) {
            return Err(Rejection::IssuedInFuture { sub: sub.to_owned() });
        }
        Ok(())
    }
}

/// A JWT NumericDate: seconds since the epoch, possibly fractional (rounded down).
fn numeric_date(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64)),
        _ => None,
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
