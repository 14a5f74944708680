//! Revoked grants (feature `jwt`): how the resource server learns that the embedded
//! authorization server revoked a grant, so that the grant's access tokens are refused at `/mcp`
//! before they expire (RFC 7009 revocation, a replayed code, a reused refresh token).
//!
//! Every access token the embedded issuer signs names its grant in the [`GRANT_CLAIM`] claim: the
//! digest of the grant's family (one family per authorization; see `issuer::store`), never the
//! family itself, so the token carries no key of the issuer's records. A revoked grant is a record
//! in the store's [`TABLE`] under that digest, written by the issuer, and a message on the store's
//! [`CHANNEL`] to every instance sharing the store.
//!
//! What a request costs: a token seen for the first time (a token-cache miss) that names a grant
//! costs one store read, and is refused with 503 when the store cannot answer (fail closed). A
//! cached token costs nothing more than before: when a grant is revoked, every instance evicts its
//! tokens from its cache ([`super::Verifier::forget_grant`]), the instance that revoked it at once,
//! the others when the message arrives, and their next use is a miss that finds the record. A
//! verification that raced a revocation (read the store before it, cached after the eviction) is
//! caught by the [`Revocations::generation`] counter and not kept.
//!
//! Messages are delivered at most once: an instance whose Redis pub/sub connection is down while a
//! grant is revoked keeps the tokens it had cached until they expire (`issuer.access_token_ttl_secs`
//! at most). A production deployment that cannot accept that window would re-check cached tokens
//! after the pub/sub connection comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::principal::Principal;
use crate::store::{Store, StoreError, Subscription};

/// The private claim naming a token's grant: the digest of its family ([`grant_id`]).
pub const GRANT_CLAIM: &str = "grant_id";

/// Revoked grants, by grant id; the embedded issuer checks its refresh tokens against it too.
pub const TABLE: &str = "as_revoked";

/// Where revocations are announced: the message is the grant id.
const CHANNEL: &str = "revoked_grants";

/// The grant id of a token family: its SHA-256 digest, base64url, with a label of its own so it
/// never equals the digest of the same value used elsewhere.
pub fn grant_id(family: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"mcp-auth grant\0");
    hash.update(family.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// The grant a verified token names, if any (tokens minted outside the embedded issuer have none).
pub fn grant_of(principal: &Principal) -> Option<&str> {
    principal.claims.get(GRANT_CLAIM).and_then(Value::as_str).filter(|grant| !grant.is_empty())
}

/// The resource server's view of revoked grants, on the store the embedded issuer writes to.
pub struct Revocations {
    store: Arc<dyn Store>,
    /// Bumped before every eviction, so a verification can tell that one ran while it read.
    generation: AtomicU64,
}

impl Revocations {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Revocations { store, generation: AtomicU64::new(0) }
    }

    /// Whether `grant` was revoked (and the record has not expired yet).
    pub async fn is_revoked(&self, grant: &str) -> Result<bool, StoreError> {
        Ok(self.store.get(TABLE, grant).await?.is_some())
    }

    /// Records that `grant` is revoked, for `lifetime` (as long as any token of it can live).
    pub async fn record(&self, grant: &str, lifetime: Duration) -> Result<(), StoreError> {
        self.store.put(TABLE, grant, b"1", lifetime).await
    }

    /// Tells every instance sharing the store (this one included) that `grant` is revoked.
    pub async fn announce(&self, grant: &str) -> Result<(), StoreError> {
        self.store.publish(CHANNEL, grant.as_bytes()).await
    }

    /// The announcements of every instance, from now on.
    pub fn subscribe(&self) -> Subscription {
        self.store.subscribe(CHANNEL)
    }

    /// The number of evictions so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Counts an eviction; called before it evicts.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_id_is_a_labelled_digest_of_the_family() {
        let id = grant_id("family");
        assert_eq!(id.len(), 43);
        assert_ne!(id, URL_SAFE_NO_PAD.encode(Sha256::digest(b"family")), "not the plain digest");
        assert_eq!(id, grant_id("family"));
        assert_ne!(id, grant_id("other"));
    }
}
