//! `private_key_jwt` client authentication (feature `issuer`; RFC 7523 sections 2.2 and 3, and
//! the MCP OAuth client credentials extension): instead of a secret, the client sends a JWT it
//! signed with its own private key (`client_assertion`, with `client_assertion_type`
//! `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`), checked here with the public keys
//! of its registration ([`ClientKeys`]).
//!
//! What an assertion must be:
//! - signed with an algorithm of `issuer.client_assertion_algorithms` (never `none` or HMAC: the
//!   client's keys are public), by the key its `kid` names, or the client's only key;
//! - `iss` and `sub` both the `client_id` (and the `client_id` parameter, if sent, the same);
//! - `aud` naming this issuer or its token endpoint URL;
//! - `exp` present, not past, and at most 5 minutes ahead (plus the `jwt.leeway_secs`): a
//!   short-lived proof, not a long-lived credential; `nbf` and `iat` not in the future;
//! - `jti` present, and never seen before for this client: it is kept in the store until the
//!   assertion expires, so no instance accepts it twice.
//!
//! Keys at a `jwks_uri` are fetched by [`super::cimd::MetadataDocuments::fetch_jwks`] (the
//! metadata documents' rules: size, time, no redirects, public addresses unless configured) and
//! cached here, per instance, as the response's `Cache-Control` says (1 minute to 1 day), for at
//! most [`MAX_KEY_SETS`] URLs. A `kid` the cached set lacks fetches the set again, at most every
//! [`REFETCH_SECS`] (the client rotated its keys).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::clients::{Client, ClientKeys, Origin};
use super::error::OAuthError;
use super::{Core, digest, now};
use crate::config::JwtAlgorithm;
use crate::jwt::KeySet;

/// `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may live ahead (`exp` - now), in seconds.
const MAX_LIFETIME_SECS: i64 = 300;
/// Longest assertion read, in bytes.
const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Key sets cached from `jwks_uri`s at once; beyond that, the oldest make room.
pub const MAX_KEY_SETS: usize = 256;
/// Shortest time between two fetches of one `jwks_uri`, in seconds (failures are remembered as long).
pub const REFETCH_SECS: i64 = 30;

/// The assertion rules of this server, and its cache of fetched key sets.
pub struct Assertions {
    /// `issuer.client_assertion_algorithms`.
    algorithms: Vec<JwtAlgorithm>,
    /// `jwt.leeway_secs`.
    leeway: i64,
    /// `jwks_uri` -> its keys (or why there are none), and when they were fetched and expire.
    fetched: Mutex<HashMap<String, Fetched>>,
}

#[derive(Clone)]
struct Fetched {
    keys: Result<Arc<KeySet>, String>,
    at: i64,
    until: i64,
}

/// The JOSE header fields read here and by [`super::enterprise`].
#[derive(Deserialize)]
pub(super) struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub crit: Option<Value>,
}

fn refused(description: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(format!("client assertion refused: {}", description.into()))
}

/// The three parts of a compact JWS, and its claims (unverified).
pub(super) struct Parsed<'a> {
    pub signing_input: &'a str,
    pub header: Header,
    pub claims: Map<String, Value>,
    pub signature: Vec<u8>,
}

fn parse(assertion: &str) -> Result<Parsed<'_>, OAuthError> {
    parse_jws(assertion).map_err(refused)
}

/// Splits and decodes a compact JWS of at most 8 KiB; the error says what is wrong with it.
pub(super) fn parse_jws(assertion: &str) -> Result<Parsed<'_>, String> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(format!("longer than {MAX_ASSERTION_BYTES} bytes"));
    }
    let malformed = || "not a signed JWT (header.payload.signature, base64url)".to_owned();
    let (signing_input, signature) = assertion.rsplit_once('.').ok_or_else(malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or_else(malformed)?;
    if payload.contains('.') {
        return Err(malformed());
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed());
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| malformed())?;
    let claims: Map<String, Value> = serde_json::from_slice(&decode(payload)?).map_err(|_| malformed())?;
    Ok(Parsed { signing_input, header, claims, signature: decode(signature)? })
}

/// The client an assertion says it is (its `sub`, RFC 7523 section 3), to look the client up
/// before anything is verified.
pub fn claimed_client(assertion: &str) -> Result<String, OAuthError> {
    let parsed = parse(assertion)?;
    parsed
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|sub| !sub.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| refused("`sub` (the client_id) is required"))
}

impl Assertions {
    pub fn new(algorithms: Vec<JwtAlgorithm>, leeway_secs: u64) -> Self {
        Assertions { algorithms, leeway: leeway_secs as i64, fetched: Mutex::new(HashMap::new()) }
    }

    /// The accepted algorithms (metadata `token_endpoint_auth_signing_alg_values_supported`).
    pub fn algorithms(&self) -> Vec<&'static str> {
        self.algorithms.iter().map(|a| a.as_str()).collect()
    }

    /// Checks `assertion` for `client`, whose keys are `keys`, and spends its `jti`.
    pub async fn verify(
        &self,
        core: &Core,
        client: &Client,
        keys: &ClientKeys,
        assertion: &str,
    ) -> Result<(), OAuthError> {
        let parsed = parse(assertion)?;
        if parsed.header.crit.is_some() {
            return Err(refused("critical header parameters are not supported"));
        }
        let alg = JwtAlgorithm::from_name(&parsed.header.alg).filter(|alg| self.algorithms.contains(alg)).ok_or_else(
            || {
                refused(format!(
                    "algorithm `{}` is not accepted (accepted: {})",
                    parsed.header.alg,
                    self.algorithms().join(", ")
                ))
            },
        )?;
        let kid = parsed.header.kid.as_deref();
        let set = match keys {
            ClientKeys::Inline(set) => set.clone(),
            ClientKeys::Uri(uri) => self.key_set(core, client, uri, kid).await?,
        };
        let key = match kid {
            Some(kid) => set.get(kid).ok_or_else(|| refused(format!("no key of this client has kid `{kid}`")))?,
            None => set.sole().ok_or_else(|| refused("the client has several keys: the header needs a `kid`"))?,
        };
        if !key.verify(alg, parsed.signing_input.as_bytes(), &parsed.signature) {
            return Err(refused(format!("bad signature (key `{}`, {})", key.kid(), alg.as_str())));
        }
        let claims = &parsed.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(client.client_id.as_str()) || text("sub") != Some(client.client_id.as_str()) {
            return Err(refused("`iss` and `sub` must both be the client_id"));
        }
        let audiences = [core.issuer.as_str(), &core.url("/token")];
        let ours = |aud: &Value| aud.as_str().is_some_and(|aud| audiences.contains(&aud));
        let aud_ok = match claims.get("aud") {
            Some(Value::Array(auds)) => auds.iter().any(ours),
            Some(aud) => ours(aud),
            None => false,
        };
        if !aud_ok {
            return Err(refused(format!("`aud` must name this issuer ({})", audiences.join(" or "))));
        }
        let date = |name: &'static str| match claims.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
                .map(Some)
                .ok_or_else(|| refused(format!("`{name}` must be a number of seconds"))),
        };
        let now = now();
        let exp = date("exp")?.ok_or_else(|| refused("`exp` is required"))?;
        if now > exp.saturating_add(self.leeway) {
            return Err(refused("expired (`exp`)"));
        }
        if exp > now.saturating_add(MAX_LIFETIME_SECS + self.leeway) {
            return Err(refused(format!("`exp` is more than {MAX_LIFETIME_SECS} s ahead: assertions are short-lived")));
        }
        if date("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(refused("not valid yet (`nbf`)"));
        }
        if date("iat")?.is_some_and(|iat| iat > now.saturating_add(self.leeway)) {
            return Err(refused("issued in the future (`iat`)"));
        }
        let jti = text("jti").filter(|jti| !jti.is_empty()).ok_or_else(|| refused("`jti` is required"))?;
        // Kept until the assertion can no longer be accepted anyway.
        let ttl = std::time::Duration::from_secs((exp + self.leeway - now).max(1) as u64);
        let key = digest(&format!("{}\n{jti}", client.client_id));
        if !core.store.spend_assertion(&key, ttl).await? {
            tracing::warn!(client_id = %client.client_id, "client assertion replayed");
            return Err(refused("this `jti` was already used: an assertion is accepted once"));
        }
        Ok(())
    }

    /// The keys at `uri`: cached, or fetched now (again when `kid` is not among them).
    async fn key_set(
        &self,
        core: &Core,
        client: &Client,
        uri: &str,
        kid: Option<&str>,
    ) -> Result<Arc<KeySet>, OAuthError> {
        let now = now();
        let cached = self.fetched.lock().unwrap_or_else(|p| p.into_inner()).get(uri).cloned();
        if let Some(cached) = cached.clone()
            && now < cached.until
        {
            let lacks_kid = matches!((&cached.keys, kid), (Ok(set), Some(kid)) if set.get(kid).is_none());
            if !lacks_kid || now < cached.at + REFETCH_SECS {
                return cached.keys.map_err(|problem| refused(format!("the client's jwks_uri: {problem}")));
            }
        }
        // Configured URLs were chosen by the operator: they may be on a private network.
        let any_address = client.origin == Origin::Configured;
        let mut fetched = match core.documents.fetch_jwks(uri, any_address).await {
            Ok((document, max_age)) => Fetched {
                keys: KeySet::from_jwks(&document, &JwtAlgorithm::ALL).map(Arc::new).map_err(|e| e.to_string()),
                at: now,
                until: now + max_age.max(REFETCH_SECS),
            },
            Err(problem) => Fetched { keys: Err(problem), at: now, until: now + REFETCH_SECS },
        };
        if let Err(problem) = &fetched.keys {
            tracing::warn!(client_id = %client.client_id, jwks_uri = uri, %problem, "client keys unavailable");
            // A failed refetch (asked for by an unknown `kid`, which anyone can send) keeps the
            // keys still within their lifetime: it must not lock the client out.
            if let Some(previous) = cached.filter(|previous| previous.keys.is_ok() && now < previous.until) {
                fetched = Fetched { at: now, ..previous };
            }
        }
        {
            let mut cache = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_KEY_SETS && !cache.contains_key(uri) {
                cache.retain(|_, entry| entry.until > now);
                if cache.len() >= MAX_KEY_SETS
                    && let Some(oldest) = cache.iter().min_by_key(|(_, entry)| entry.at).map(|(uri, _)| uri.clone())
                {
                    cache.remove(&oldest);
                }
            }
            cache.insert(uri.to_owned(), fetched.clone());
        }
        fetched.keys.map_err(|problem| refused(format!("the client's jwks_uri: {problem}")))
    }
}
