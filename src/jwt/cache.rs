//! The verified-token cache (feature `jwt`): a repeated token costs a hash and a lookup instead
//! of a signature check.
//!
//! Entries are keyed by the SHA-256 of the token (the token itself is never stored), bounded in
//! number, and never outlive the token's `exp` (plus leeway). An entry also remembers the key
//! that verified it and is only used while that very key is in the current key set, so a key
//! removed by rotation takes its cached tokens with it. Time claims are checked by the caller on
//! every hit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;

use super::keys::{KeySet, VerifyingKey};
use crate::principal::Principal;

/// Shards, so concurrent requests rarely wait on the same lock.
const SHARDS: usize = 16;

/// The cache key: SHA-256 of the token.
pub type TokenDigest = [u8; 32];

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct Verified {
    pub principal: Principal,
    pub key: Arc<VerifyingKey>,
    pub exp: i64,
    pub nbf: Option<i64>,
}

/// A bounded map from token digest to verification result.
pub struct TokenCache {
    shards: Vec<Mutex<HashMap<TokenDigest, Verified>>>,
    per_shard: usize,
    leeway: i64,
}

impl TokenCache {
    /// A cache of about `capacity` entries; 0 disables it.
    pub fn new(capacity: usize, leeway_secs: i64) -> Self {
        let shards = if capacity == 0 { 0 } else { SHARDS.min(capacity) };
        TokenCache {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(shards.max(1)),
            leeway: leeway_secs,
        }
    }

    /// The digest a token is filed under.
    pub fn digest(token: &str) -> TokenDigest {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        out
    }

    fn shard(&self, digest: &TokenDigest) -> Option<&Mutex<HashMap<TokenDigest, Verified>>> {
        if self.shards.is_empty() {
            return None;
        }
        self.shards.get(digest[0] as usize % self.shards.len())
    }

    /// The cached verification of a token, if its key is still in `keys` and it has not
    /// expired; stale entries are dropped on the way.
    pub fn get(&self, digest: &TokenDigest, keys: &KeySet, now: i64) -> Option<Verified> {
        let mut shard = self.shard(digest)?.lock().expect("lock");
        let entry = shard.get(digest)?;
        if keys.holds(&entry.key) && now <= entry.exp + self.leeway {
            return Some(entry.clone());
        }
        shard.remove(digest);
        None
    }

    /// Remembers a verification. When the shard is full, expired entries go first, then
    /// arbitrary ones: a bounded cache must forget something, and any entry is cheap to redo.
    pub fn insert(&self, digest: TokenDigest, verified: Verified, now: i64) {
        let Some(shard) = self.shard(&digest) else { return };
        let mut shard = shard.lock().expect("lock");
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            let leeway = self.leeway;
            shard.retain(|_, v| now <= v.exp + leeway);
            if shard.len() >= self.per_shard {
                let excess: Vec<TokenDigest> = shard.keys().take((self.per_shard / 8).max(1)).copied().collect();
                for key in excess {
                    shard.remove(&key);
                }
            }
        }
        shard.insert(digest, verified);
    }

    /// Drops every entry whose key is no longer in `keys` (after a key refresh).
    pub fn retain_keys(&self, keys: &KeySet) {
        for shard in &self.shards {
            shard.lock().expect("lock").retain(|_, v| keys.holds(&v.key));
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
    use crate::jwt::keys::tests::rsa_jwk;
    use crate::principal::Identity;

    fn keys(kids: &[&str]) -> KeySet {
        let jwks = json!({ "keys": kids.iter().map(|k| rsa_jwk(Some(k), None)).collect::<Vec<_>>() });
        KeySet::from_jwks(&jwks, &[JwtAlgorithm::RS256]).unwrap()
    }

    fn verified(keys: &KeySet, kid: &str, exp: i64) -> Verified {
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
        Verified { principal, key: keys.get(kid).unwrap().clone(), exp, nbf: None }
    }

    #[test]
    fn entries_never_outlive_exp_plus_leeway() {
        let keys = keys(&["a"]);
        let cache = TokenCache::new(100, 5);
        let digest = TokenCache::digest("t");
        cache.insert(digest, verified(&keys, "a", 1000), 900);
        assert!(cache.get(&digest, &keys, 1005).is_some());
        assert!(cache.get(&digest, &keys, 1006).is_none());
        assert!(cache.is_empty(), "the stale entry was dropped");
    }

    #[test]
    fn entries_go_with_their_key() {
        let old = keys(&["a", "b"]);
        let cache = TokenCache::new(100, 0);
        let (ta, tb) = (TokenCache::digest("ta"), TokenCache::digest("tb"));
        cache.insert(ta, verified(&old, "a", 1000), 0);
        cache.insert(tb, verified(&old, "b", 1000), 0);
        let new = keys(&["b"]).reusing(&old);
        assert!(cache.get(&ta, &new, 1).is_none());
        assert!(cache.get(&tb, &new, 1).is_some());
        cache.retain_keys(&keys(&["c"]));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_and_can_be_off() {
        let keys = keys(&["a"]);
        let cache = TokenCache::new(64, 0);
        for i in 0..1000 {
            cache.insert(TokenCache::digest(&i.to_string()), verified(&keys, "a", 1000), 0);
        }
        assert!(cache.len() <= cache.capacity() && cache.capacity() == 64, "{}", cache.len());
        let off = TokenCache::new(0, 0);
        off.insert(TokenCache::digest("t"), verified(&keys, "a", 1000), 0);
        assert_eq!((off.len(), off.capacity()), (0, 0));
    }
}
