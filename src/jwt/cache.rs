//! The verified-token cache (feature `jwt`): a repeated token costs a hash and a lookup instead
//! of a signature check.
//!
//! Entries are filed under a keyed 64-bit hash of the end of the token, in its signature (SipHash
//! with a per-process random key, so nobody can aim tokens at one slot), and hold the token text,
//! which a lookup compares in full: a hit is only ever the very same token, and two tokens sharing a hash just take turns in
//! the slot. A cryptographic digest would spare storing the text but costs a fifth of a cached
//! request (profiled: SHA-256 of an 800-byte token is ~27k instructions, the whole request ~138k),
//! and the process holds live tokens in its request buffers anyway. Entries are bounded in number
//! and never outlive the token's `exp` (plus leeway). An entry also remembers the key that
//! verified it and is only used while that very key is in the current key set, so a key removed
//! by rotation takes its cached tokens with it. Time claims are checked by the caller on every hit.
//!
//! With several trusted issuers, an entry also remembers which issuer verified it, and its key
//! must still be in *that* issuer's set: a hit is the same token text, so the same `iss`, and a
//! token verified for one issuer is never taken as another's (even were two issuers to publish
//! the same key). The cached path does not parse the token or route it by `iss`: the issuer is
//! an index stored in the entry.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use super::issuers::Issuers;
use super::keys::{KeySet, VerifyingKey};
use crate::principal::Principal;

/// Shards, so concurrent requests rarely wait on the same lock.
const SHARDS: usize = 16;

/// How much of a token's end its slot is computed from (see [`TokenCache::slot`]).
const SLOT_BYTES: usize = 32;

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct Verified {
    pub principal: Principal,
    pub key: Arc<VerifyingKey>,
    pub exp: i64,
    pub nbf: Option<i64>,
    /// The trusted issuer (its index in [`Issuers`]) whose key verified the token.
    pub issuer: usize,
}

struct Entry {
    token: Box<str>,
    verified: Verified,
}

type Shard = HashMap<u64, Entry>;

/// A bounded map from token to verification result.
pub struct TokenCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    leeway: i64,
    hasher: RandomState,
}

impl TokenCache {
    /// A cache of about `capacity` entries; 0 disables it.
    pub fn new(capacity: usize, leeway_secs: i64) -> Self {
        let shards = if capacity == 0 { 0 } else { SHARDS.min(capacity) };
        TokenCache {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(shards.max(1)),
            leeway: leeway_secs,
            hasher: RandomState::new(),
        }
    }

    /// The slot a token is filed under: a keyed hash of its last [`SLOT_BYTES`] bytes, which lie
    /// in the signature. Only tokens whose signature verified are ever filed, and nobody can choose
    /// the signature a trusted key makes, so those bytes spread entries as well as the whole token
    /// would; any other token only looks a slot up, is compared in full and misses. Hashing all
    /// of an 800-byte token was the largest single cost of a cached request after the change
    /// from SHA-256 (profiled: ~2.9k of ~86k instructions).
    pub fn slot(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        self.hasher.hash_one(&bytes[bytes.len().saturating_sub(SLOT_BYTES)..])
    }

    fn shard(&self, slot: u64) -> Option<&Mutex<Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        // The high bits pick the shard; the map inside hashes the whole value again.
        self.shards.get((slot >> 56) as usize % self.shards.len())
    }

    /// The cached verification of `token` (filed under `slot`), if its key is still in the set
    /// of the issuer that verified it and it has not expired; stale entries are dropped on the way.
    pub fn get(&self, slot: u64, token: &str, issuers: &Issuers, now: i64) -> Option<Verified> {
        let mut shard = self.shard(slot)?.lock().expect("lock");
        let entry = shard.get(&slot)?;
        if *entry.token != *token {
            return None;
        }
        let verified = &entry.verified;
        let held = issuers.get(verified.issuer).is_some_and(|issuer| issuer.holds(&verified.key));
        if held && now <= verified.exp + self.leeway {
            return Some(entry.verified.clone());
        }
        shard.remove(&slot);
        None
    }

    /// Remembers a verification. When the shard is full, expired entries go first, then
    /// arbitrary ones: a bounded cache must forget something, and any entry is cheap to redo.
    pub fn insert(&self, slot: u64, token: &str, verified: Verified, now: i64) {
        let Some(shard) = self.shard(slot) else { return };
        let mut shard = shard.lock().expect("lock");
        if shard.len() >= self.per_shard && !shard.contains_key(&slot) {
            let leeway = self.leeway;
            shard.retain(|_, e| now <= e.verified.exp + leeway);
            if shard.len() >= self.per_shard {
                let excess: Vec<u64> = shard.keys().take((self.per_shard / 8).max(1)).copied().collect();
                for key in excess {
                    shard.remove(&key);
                }
            }
        }
        shard.insert(slot, Entry { token: token.into(), verified });
    }

    /// Drops the entry of `token` (filed under `slot`), if it is there.
    pub fn remove(&self, slot: u64, token: &str) {
        let Some(shard) = self.shard(slot) else { return };
        let mut shard = shard.lock().expect("lock");
        if shard.get(&slot).is_some_and(|entry| *entry.token == *token) {
            shard.remove(&slot);
        }
    }

    /// Drops every entry `doomed` picks (the tokens of a revoked grant): a scan of the whole
    /// cache, which revocations (rare) pay for so that cached requests pay nothing.
    pub fn remove_where(&self, doomed: impl Fn(&Verified) -> bool) {
        for shard in &self.shards {
            shard.lock().expect("lock").retain(|_, e| !doomed(&e.verified));
        }
    }

    /// Drops every entry of issuer `issuer` whose key is no longer in `keys` (after a refresh).
    pub fn retain_keys(&self, issuer: usize, keys: &KeySet) {
        for shard in &self.shards {
            shard.lock().expect("lock").retain(|_, e| e.verified.issuer != issuer || keys.holds(&e.verified.key));
        }
    }

    /// Number of cached verifications.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().expect("lock").len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound.
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::config::JwtAlgorithm;
    use crate::jwt::issuers::{Issuer, Keys};
    use crate::jwt::keys::tests::rsa_jwk;
    use crate::principal::Identity;

    fn set(kids: &[&str]) -> KeySet {
        let jwks = json!({ "keys": kids.iter().map(|k| rsa_jwk(Some(k), None)).collect::<Vec<_>>() });
        KeySet::from_jwks(&jwks, &[JwtAlgorithm::RS256]).unwrap()
    }

    /// Issuers with one key set each, named `https://issuer-<index>`.
    fn issuers_of(sets: Vec<Arc<KeySet>>) -> Issuers {
        let issuer = |(index, set)| {
            Issuer::new(format!("https://issuer-{index}"), Keys::Fixed(set), vec![JwtAlgorithm::RS256], None, &[])
        };
        Issuers::new(sets.into_iter().enumerate().map(issuer).collect())
    }

    /// One issuer with keys `kids`.
    fn keys(kids: &[&str]) -> Issuers {
        issuers_of(vec![Arc::new(set(kids))])
    }

    fn verified(keys: &Issuers, kid: &str, exp: i64) -> Verified {
        verified_by(keys, 0, kid, exp)
    }

    fn verified_by(keys: &Issuers, issuer: usize, kid: &str, exp: i64) -> Verified {
        let principal = Principal::new(Identity {
            subject: "s".into(),
            name: "s".into(),
            issuer: "i".into(),
            scopes: Default::default(),
            roles: Default::default(),
            client_id: None,
            expires_at: Some(exp),
            claims: Map::new(),
        });
        let key = keys.get(issuer).unwrap().key_set().get(kid).unwrap().clone();
        Verified { principal, key, exp, nbf: None, issuer }
    }

    /// Inserts `token` under its own slot.
    fn put(cache: &TokenCache, token: &str, verified: Verified, now: i64) {
        cache.insert(cache.slot(token), token, verified, now);
    }

    fn get(cache: &TokenCache, token: &str, keys: &Issuers, now: i64) -> Option<Verified> {
        cache.get(cache.slot(token), token, keys, now)
    }

    #[test]
    fn entries_never_outlive_exp_plus_leeway() {
        let keys = keys(&["a"]);
        let cache = TokenCache::new(100, 5);
        put(&cache, "t", verified(&keys, "a", 1000), 900);
        assert!(get(&cache, "t", &keys, 1005).is_some());
        assert!(get(&cache, "t", &keys, 1006).is_none());
        assert!(cache.is_empty(), "the stale entry was dropped");
    }

    #[test]
    fn a_hit_is_the_same_token_even_when_slots_collide() {
        let keys = keys(&["a"]);
        let cache = TokenCache::new(100, 0);
        let slot = cache.slot("token-a");
        cache.insert(slot, "token-a", verified(&keys, "a", 1000), 0);
        // Another token arriving under the same slot (a 64-bit collision) is a miss, never a hit.
        assert!(cache.get(slot, "token-b", &keys, 1).is_none());
        assert!(cache.get(slot, "token-a", &keys, 1).is_some());
        // A prefix or extension of a cached token is a different token.
        assert!(get(&cache, "token-", &keys, 1).is_none());
        assert!(get(&cache, "token-a.", &keys, 1).is_none());
        // The colliding token takes the slot over.
        cache.insert(slot, "token-b", verified(&keys, "a", 1000), 0);
        assert!(cache.get(slot, "token-a", &keys, 1).is_none());
        assert!(cache.get(slot, "token-b", &keys, 1).is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_slot_comes_from_the_signature_end_and_a_different_head_still_misses() {
        let cache = TokenCache::new(16, 0);
        let keys = keys(&["k1"]);
        let signature = "S".repeat(SLOT_BYTES);
        let (genuine, forged) = (format!("header.payload-a.{signature}"), format!("header.payload-b.{signature}"));
        assert_eq!(cache.slot(&genuine), cache.slot(&forged), "same end, same slot");
        assert_ne!(cache.slot(&genuine), cache.slot(&format!("header.payload-a.{signature}x")));
        put(&cache, &genuine, verified(&keys, "k1", 100), 0);
        assert!(get(&cache, &forged, &keys, 0).is_none(), "compared in full: another token misses");
        assert!(get(&cache, &genuine, &keys, 0).is_some());
        // Shorter than SLOT_BYTES: the whole token.
        assert_eq!(cache.slot("abc"), cache.slot("abc"));
    }

    #[test]
    fn entries_go_with_their_key() {
        let old = keys(&["a", "b"]);
        let cache = TokenCache::new(100, 0);
        put(&cache, "ta", verified(&old, "a", 1000), 0);
        put(&cache, "tb", verified(&old, "b", 1000), 0);
        let new = issuers_of(vec![Arc::new(set(&["b"]).reusing(&old.get(0).unwrap().key_set()))]);
        assert!(get(&cache, "ta", &new, 1).is_none());
        assert!(get(&cache, "tb", &new, 1).is_some());
        cache.retain_keys(1, &set(&["c"]));
        assert_eq!(cache.len(), 1, "another issuer's refresh leaves these entries alone");
        cache.retain_keys(0, &set(&["c"]));
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_is_only_a_hit_while_the_issuer_that_verified_it_holds_its_key() {
        // Two issuers publishing the very same key set: an entry verified for the first is
        // checked against the first's set only, and forgetting the first's key drops it even
        // though the second still has that key.
        let shared = Arc::new(set(&["a"]));
        let both = issuers_of(vec![shared.clone(), shared]);
        let cache = TokenCache::new(100, 0);
        put(&cache, "t0", verified_by(&both, 0, "a", 1000), 0);
        assert_eq!(get(&cache, "t0", &both, 1).map(|v| v.issuer), Some(0));
        let first_rotated = issuers_of(vec![Arc::new(set(&["b"])), both.get(1).unwrap().key_set()]);
        assert!(get(&cache, "t0", &first_rotated, 1).is_none(), "its own issuer's key went: a miss");
        // An entry naming an issuer that is no longer configured is a miss too.
        put(&cache, "t1", verified_by(&both, 1, "a", 1000), 0);
        assert!(get(&cache, "t1", &keys(&["a"]), 1).is_none());
    }

    #[test]
    fn entries_can_be_removed_one_by_one_or_by_what_they_verified() {
        let keys = keys(&["a", "b"]);
        let cache = TokenCache::new(100, 0);
        put(&cache, "ta", verified(&keys, "a", 1000), 0);
        put(&cache, "tb", verified(&keys, "b", 1000), 0);
        put(&cache, "tc", verified(&keys, "a", 1000), 0);
        cache.remove(cache.slot("ta"), "not-ta");
        assert!(get(&cache, "ta", &keys, 1).is_some(), "another token under the slot removes nothing");
        cache.remove(cache.slot("ta"), "ta");
        assert!(get(&cache, "ta", &keys, 1).is_none());
        cache.remove_where(|v| v.key.kid() == "a");
        assert!(get(&cache, "tc", &keys, 1).is_none());
        assert!(get(&cache, "tb", &keys, 1).is_some());
    }

    #[test]
    fn the_cache_is_bounded_and_can_be_off() {
        let keys = keys(&["a"]);
        let cache = TokenCache::new(64, 0);
        for i in 0..1000 {
            put(&cache, &i.to_string(), verified(&keys, "a", 1000), 0);
        }
        assert!(cache.len() <= cache.capacity() && cache.capacity() == 64, "{}", cache.len());
        let off = TokenCache::new(0, 0);
        put(&off, "t", verified(&keys, "a", 1000), 0);
        assert_eq!((off.len(), off.capacity()), (0, 0));
    }
}
