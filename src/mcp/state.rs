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

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::principal::Principal;

type HmacSha256 = Hmac<Sha256>;

/// Nonces remembered as used, at most. Beyond it the oldest are forgotten (their states are
/// rejected by expiry soon anyway when the TTL is short).
const MAX_REMEMBERED_NONCES: usize = 100_000;

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

/// A verified state, with its nonce held until the request's outcome is known.
#[derive(Debug)]
pub struct Opened {
    /// The handler's state, as it returned it.
    pub inner: Option<String>,
    nonce: String,
}

/// Seals and opens request states with the server's key.
pub struct StateSealer {
    key: Vec<u8>,
    ttl: Duration,
    used: Mutex<UsedNonces>,
}

#[derive(Default)]
struct UsedNonces {
    expiry: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl StateSealer {
    /// A sealer with `secret` (any length; an empty secret draws a random per-process key, so
    /// states do not survive a restart and are not shared between instances).
    pub fn new(secret: &str, ttl: Duration) -> Self {
        let key = if secret.is_empty() {
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key).expect("the OS random number generator works");
            key
        } else {
            secret.as_bytes().to_vec()
        };
        StateSealer { key, ttl, used: Mutex::new(UsedNonces::default()) }
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
        self.claim(&payload.n, payload.e)?;
        Ok(Opened { inner: payload.s, nonce: payload.n })
    }

    fn claim(&self, nonce: &str, expires: u64) -> Result<(), Rejection> {
        let mut used = self.used.lock().expect("lock");
        let now = now();
        while used.order.len() >= MAX_REMEMBERED_NONCES
            || used.order.front().is_some_and(|oldest| used.expiry.get(oldest).is_none_or(|e| *e < now))
        {
            let Some(oldest) = used.order.pop_front() else { break };
            used.expiry.remove(&oldest);
        }
        if used.expiry.contains_key(nonce) {
            return Err(Rejection::Replayed);
        }
        used.expiry.insert(nonce.to_owned(), expires);
        used.order.push_back(nonce.to_owned());
        Ok(())
    }

    /// Gives a claimed nonce back: the request was refused before it ran (for example 403 while
    /// the caller steps up its scopes), and the client may retry with the same state.
    pub fn release(&self, opened: &Opened) {
        let mut used = self.used.lock().expect("lock");
        used.expiry.remove(&opened.nonce);
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn principal_digest(principal: Option<&Principal>) -> String {
    let Some(principal) = principal else { return String::new() };
    let (issuer, subject) = principal.owner_key();
    let mut hasher = Sha256::new();
    hasher.update(issuer.as_bytes());
    hasher.update([0]);
    hasher.update(subject.as_bytes());
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16])
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
    use serde_json::json;

    fn sealer() -> StateSealer {
        StateSealer::new("test-secret", Duration::from_secs(60))
    }

    fn params(args: Value) -> Map<String, Value> {
        json!({ "name": "t", "arguments": args }).as_object().unwrap().clone()
    }

    #[test]
    fn a_sealed_state_opens_once_for_the_same_request() {
        let sealer = sealer();
        let p = params(json!({ "b": 1, "a": [1, 2] }));
        let token = sealer.seal(&binding("tools/call", &p, None), Some("round-1".into()));
        let reordered = params(json!({ "a": [1, 2], "b": 1 }));
        let opened = sealer.open(&binding("tools/call", &reordered, None), &token).unwrap();
        assert_eq!(opened.inner.as_deref(), Some("round-1"));
        assert_eq!(sealer.open(&binding("tools/call", &p, None), &token).unwrap_err(), Rejection::Replayed);
        sealer.release(&opened);
        assert!(sealer.open(&binding("tools/call", &p, None), &token).is_ok(), "released nonces may be used again");
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
        let other_key = StateSealer::new("another", Duration::from_secs(60));
        assert_eq!(other_key.open(&b, &token).unwrap_err(), Rejection::BadSignature);
    }

    #[test]
    fn expired_states_are_refused() {
        let sealer = StateSealer::new("k", Duration::from_secs(0));
        let p = params(json!({}));
        let token = sealer.seal(&binding("tools/call", &p, None), None);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(sealer.open(&binding("tools/call", &p, None), &token).unwrap_err(), Rejection::Expired);
    }
}
