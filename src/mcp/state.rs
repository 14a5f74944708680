//! Integrity protection for `requestState` (multi round-trip requests, 2026-07-28).
//!
//! A handler's state travels through the client and comes back on the retry. The client may not
//! change it, replay it for another request or another caller, or keep it forever, so the state
//! the client sees is sealed:
//!
//! `v1.<base64url(payload)>.<base64url(HMAC-SHA256(key, "v1." + base64url(payload)))>`
//!
//! where the payload binds the handler's own state to the method, the tool/prompt/resource, a
//! digest of the arguments, the caller (issuer + subject, hashed), an expiry, and a nonce that
//! may be used once. This is integrity, not secrecy: the payload is readable, so handlers must
//! not put secrets in their state. In the legacy era the state never leaves the server, so
//! nothing is sealed there.
//!
//! Several instances must open each other's states: the key is `mcp.request_state_secret`, or one
//! drawn once and kept in the server's store, and spent nonces are kept in the store too (a
//! state is single-use across every instance).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::principal::Principal;
use crate::store::{Store, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// What a sealed state is bound to: the request that produced it.
pub struct Binding<'a> {
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI.
    pub target: &'a str,
    /// The request's `arguments` (tools, prompts); `None` for resources.
    pub arguments: Option<&'a Value>,
    pub principal: Option<&'a Principal>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    m: String,
    t: String,
    /// Digest of the canonical arguments.
    a: String,
    /// Digest of (issuer, subject), or empty without authentication.
    p: String,
    /// Expiry, seconds since the Unix epoch.
    e: u64,
    /// Single-use nonce.
    n: String,
    /// The handler's own state.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<String>,
}

/// Why a returned state was refused. Only logged: the client learns "invalid or expired".
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    BadSignature,
    Expired,
    WrongRequest,
    WrongCaller,
    Replayed,
}

/// A verified state, with its nonce, which [`StateSealer::claim`] spends.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The handler's state, as it returned it.
    pub inner: Option<String>,
    nonce: String,
    /// When the state expires (seconds since the epoch): the nonce is remembered until then.
    expires: u64,
}

/// Seals and opens request states with the server's key.
pub struct StateSealer {
    key: Vec<u8>,
    ttl: Duration,
}

/// The store's table of spent nonces, and of the shared key when none is configured.
const NONCES: &str = "mcp_nonce";
const KEYS: &str = "mcp_key";

impl StateSealer {
    /// A sealer with `key` (any length).
    pub fn new(key: Vec<u8>, ttl: Duration) -> Self {
        StateSealer { key, ttl }
    }

    /// The sealing key: `mcp.request_state_secret` when set; otherwise one drawn at random once
    /// and kept in the store, so every instance sharing the store (and this one after a restart,
    /// with a durable store) opens the states the others sealed.
    pub async fn key(secret: &str, store: &dyn Store) -> Result<Vec<u8>, StoreError> {
        if !secret.is_empty() {
            return Ok(secret.as_bytes().to_vec());
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random number generator works");
        let drawn = URL_SAFE_NO_PAD.encode(key);
        // The first instance's key wins; the others read it.
        store.put_new(KEYS, "request_state", drawn.as_bytes(), KEY_LIFETIME).await?;
        let kept = store.get(KEYS, "request_state").await?.unwrap_or_else(|| drawn.into_bytes());
        Ok(kept)
    }

    fn mac(&self, message: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(message);
        mac
    }

    /// Seals `inner` for the retry of the request described by `binding`.
    pub fn seal(&self, binding: &Binding<'_>, inner: Option<String>) -> String {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the OS random number generator works");
        let payload = Payload {
            v: 1,
            m: binding.method.to_owned(),
            t: binding.target.to_owned(),
            a: arguments_digest(binding.arguments),
            p: principal_digest(binding.principal),
            e: now() + self.ttl.as_secs(),
            n: URL_SAFE_NO_PAD.encode(nonce),
            s: inner,
        };
        let body = format!("v1.{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("payloads serialise")));
        let tag = self.mac(body.as_bytes()).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Verifies a returned state against the request it came back with, and claims its nonce.
    pub fn open(&self, binding: &Binding<'_>, token: &str) -> Result<Opened, Rejection> {
        let (body, tag) = token.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let encoded = body.strip_prefix("v1.").ok_or(Rejection::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Rejection::Malformed)?;
        // hmac compares the tags in constant time: timing tells nothing about a forged tag.
        self.mac(body.as_bytes()).verify_slice(&tag).map_err(|_| Rejection::BadSignature)?;
        let payload: Payload = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(Rejection::Malformed)?;
        if payload.v != 1 {
            return Err(Rejection::Malformed);
        }
        if payload.e < now() {
            return Err(Rejection::Expired);
        }
        if payload.m != binding.method
            || payload.t != binding.target
            || payload.a != arguments_digest(binding.arguments)
        {
            return Err(Rejection::WrongRequest);
        }
        if payload.p != principal_digest(binding.principal) {
            return Err(Rejection::WrongCaller);
        }
        Ok(Opened { inner: payload.s, nonce: payload.n, expires: payload.e })
    }

    /// Spends an opened state's nonce, for every instance sharing the store: `false` when it
    /// was spent before (a replay).
    pub async fn claim(store: &dyn Store, opened: &Opened) -> Result<bool, StoreError> {
        let ttl = Duration::from_secs(opened.expires.saturating_sub(now()).max(1));
        store.put_new(NONCES, &opened.nonce, b"1", ttl).await
    }

    /// Gives a claimed nonce back: the request was refused before it ran (for example 403 while
    /// the caller steps up its scopes), and the client may retry with the same state.
    pub async fn release(store: &dyn Store, opened: &Opened) {
        if let Err(err) = store.delete(NONCES, &opened.nonce).await {
            tracing::warn!(%err, "a requestState nonce could not be given back");
        }
    }
}

/// How long a key drawn for sealing request states is kept in the store.
const KEY_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A digest of a caller's issuer and subject: what states (and session groups) are bound to.
pub fn owner_digest(issuer: &str, subject: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(issuer.as_bytes());
    hasher.update([0]);
    hasher.update(subject.as_bytes());
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16])
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn principal_digest(principal: Option<&Principal>) -> String {
    let Some(principal) = principal else { return String::new() };
    let (issuer, subject) = principal.owner_key();
    owner_digest(issuer, subject)
}

fn arguments_digest(arguments: Option<&Value>) -> String {
    let Some(arguments) = arguments.filter(|a| !a.is_null()) else { return String::new() };
    let mut canonical = Vec::new();
    write_canonical(arguments, &mut canonical);
    URL_SAFE_NO_PAD.encode(&Sha256::digest(&canonical)[..16])
}

/// JSON with object keys sorted, whatever order the client sent them in.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).expect("strings serialise"));
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("scalars serialise")),
    }
}

/// The binding of a request from its method and params.
pub fn binding<'a>(method: &'a str, params: &'a Map<String, Value>, principal: Option<&'a Principal>) -> Binding<'a> {
    let target_key = if method == "resources/read" { "uri" } else { "name" };
    Binding {
        method,
        target: params.get(target_key).and_then(Value::as_str).unwrap_or_default(),
        arguments: params.get("arguments"),
        principal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use serde_json::json;

    fn sealer() -> StateSealer {
        StateSealer::new(b"test-secret".to_vec(), Duration::from_secs(60))
    }

    fn params(args: Value) -> Map<String, Value> {
        json!({ "name": "t", "arguments": args }).as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn a_sealed_state_opens_for_the_same_request_and_its_nonce_is_spent_once() {
        let (sealer, store) = (sealer(), MemoryStore::new());
        let p = params(json!({ "b": 1, "a": [1, 2] }));
        let token = sealer.seal(&binding("tools/call", &p, None), Some("round-1".into()));
        let reordered = params(json!({ "a": [1, 2], "b": 1 }));
        let opened = sealer.open(&binding("tools/call", &reordered, None), &token).unwrap();
        assert_eq!(opened.inner.as_deref(), Some("round-1"));
        assert!(StateSealer::claim(&store, &opened).await.unwrap());
        let again = sealer.open(&binding("tools/call", &p, None), &token).unwrap();
        assert!(!StateSealer::claim(&store, &again).await.unwrap(), "a replay");
        StateSealer::release(&store, &opened).await;
        assert!(StateSealer::claim(&store, &again).await.unwrap(), "released nonces may be used again");
    }

    #[tokio::test]
    async fn instances_sharing_a_store_share_the_drawn_key() {
        let store = MemoryStore::new();
        let first = StateSealer::key("", &store).await.unwrap();
        assert_eq!(StateSealer::key("", &store).await.unwrap(), first);
        assert_eq!(StateSealer::key("configured", &store).await.unwrap(), b"configured");
    }

    #[test]
    fn tampering_other_arguments_or_another_key_is_refused() {
        let sealer = sealer();
        let p = params(json!({ "x": 1 }));
        let token = sealer.seal(&binding("tools/call", &p, None), Some("s".into()));
        let b = binding("tools/call", &p, None);
        assert!(sealer.open(&b, &format!("{token}-TAMPERED")).is_err());
        let mut flipped = token.clone().into_bytes();
        flipped[5] ^= 1;
        assert!(sealer.open(&b, std::str::from_utf8(&flipped).unwrap()).is_err());
        let other_args = params(json!({ "x": 2 }));
        assert_eq!(
            sealer.open(&binding("tools/call", &other_args, None), &token).unwrap_err(),
            Rejection::WrongRequest
        );
        let other_key = StateSealer::new(b"another".to_vec(), Duration::from_secs(60));
        assert_eq!(other_key.open(&b, &token).unwrap_err(), Rejection::BadSignature);
    }

    #[test]
    fn expired_states_are_refused() {
        let sealer = StateSealer::new(b"k".to_vec(), Duration::from_secs(0));
        let p = params(json!({}));
        let mut token = sealer.seal(&binding("tools/call", &p, None), None);
        // Sealed with an expiry of now: one second on, it is past. The payload is re-sealed
        // with an expiry in the past rather than waited for.
        let (body, _) = token.rsplit_once('.').unwrap();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body.strip_prefix("v1.").unwrap()).unwrap()).unwrap();
        payload["e"] = json!(now() - 1);
        let body = format!("v1.{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()));
        let tag = sealer.mac(body.as_bytes()).finalize().into_bytes();
        token = format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(sealer.open(&binding("tools/call", &p, None), &token).unwrap_err(), Rejection::Expired);
    }
}
