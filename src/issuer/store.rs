//! Where the authorization server keeps its state (feature `issuer`): requests waiting for a
//! person, sign-ins, authorization codes, refresh tokens and dynamically registered clients,
//! behind the small [`Store`] trait, with [`MemoryStore`] as the default.
//!
//! Secrets are never keys: codes, refresh tokens and session cookies are filed under their
//! SHA-256 digest (see [`super::digest`]), so a dump of the store gives nothing away. Every
//! operation is atomic on its own, which is what single-use codes and refresh-token rotation need:
//! of two concurrent redemptions of one code, exactly one gets it.
//!
//! The in-memory store loses everything on restart: people sign in again, clients register again,
//! refresh tokens stop working. Access tokens are JWTs and stay valid until they expire. A
//! deployment with several instances, or that must survive restarts, implements [`Store`] on a
//! shared database.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use super::clients::Client;

/// A person who signed in, as tokens describe them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `sub`: the username for people, the client ID for `client_credentials`.
    pub subject: String,
    pub username: String,
    pub name: String,
    pub roles: Vec<String>,
}

/// An authorization request that passed validation and waits for sign-in and consent.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    pub client_id: String,
    pub client_name: String,
    /// Whether the client is one of the configuration (its name is then vouched for).
    pub client_verified: bool,
    /// Where the answer goes (validated against the client's registration).
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub code_challenge: String,
    /// The resource (RFC 8707) the token is for: its `aud`.
    pub resource: String,
    /// The known scopes asked for; `None` = no `scope` parameter (everything the role permits).
    pub scopes: Option<BTreeSet<String>>,
    /// Digest of the browser cookie the request was started with: forms are only accepted from it.
    pub browser: String,
    /// The anti-CSRF token the forms of this request carry.
    pub csrf: String,
    pub expires_at: i64,
}

/// A sign-in remembered for one browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub account: Account,
    pub expires_at: i64,
}

/// An issued authorization code and everything it is bound to.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub account: Account,
    /// The token family the code starts: a replayed code revokes it.
    pub family: String,
    pub expires_at: i64,
}

/// A refresh token (stored by digest).
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub family: String,
    pub client_id: String,
    pub resource: String,
    /// The scopes of the original grant.
    pub scopes: Vec<String>,
    pub account: Account,
    pub expires_at: i64,
}

/// What redeeming a single-use value (code, refresh token) found.
#[derive(Debug, Clone)]
pub enum Redeemed<T> {
    /// First use: here it is, and it is now spent.
    Fresh(T),
    /// Already spent: someone replays it. The family should be revoked.
    Replayed { family: String },
    /// Never issued, expired and forgotten, or revoked.
    Unknown,
}

/// Counts for `/health`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StoreCounts {
    pub pending_requests: usize,
    pub sessions: usize,
    pub codes: usize,
    pub refresh_tokens: usize,
    pub registered_clients: usize,
}

/// The storage the authorization server needs. Keys of secret values are their digests.
pub trait Store: Send + Sync + 'static {
    /// Files a pending request under `id`; `false` when the store is full.
    fn save_request(&self, id: &str, request: PendingRequest) -> bool;
    fn request(&self, id: &str) -> Option<PendingRequest>;
    /// Removes and returns a pending request (it is answered once).
    fn take_request(&self, id: &str) -> Option<PendingRequest>;

    /// Files a sign-in; `false` when the store is full.
    fn save_session(&self, key: &str, session: Session) -> bool;
    fn session(&self, key: &str) -> Option<Session>;

    fn save_code(&self, key: &str, code: AuthorizationCode);
    /// Spends a code: `Fresh` the first time, `Replayed` afterwards (until it would have expired).
    fn redeem_code(&self, key: &str) -> Redeemed<AuthorizationCode>;

    /// Files a refresh token; `false` when its family was revoked meanwhile.
    fn save_refresh(&self, key: &str, token: RefreshToken) -> bool;
    /// Spends a refresh token (rotation): `Fresh` the first time, `Replayed` afterwards.
    fn redeem_refresh(&self, key: &str) -> Redeemed<RefreshToken>;
    /// Revokes every refresh token of a family, now and to come; returns how many were live.
    fn revoke_family(&self, family: &str) -> usize;

    /// Registers a client; `false` when `max` clients are registered already.
    fn save_client(&self, client: Client, max: usize) -> bool;
    fn client(&self, client_id: &str) -> Option<Client>;

    /// Forgets what expired before `now` (seconds since the epoch).
    fn sweep(&self, now: i64);
    fn counts(&self) -> StoreCounts;
}

/// Most pending requests and sessions kept at once: an unauthenticated visitor can create them.
const MAX_BROWSER_STATE: usize = 10_000;
/// Seconds between two automatic sweeps.
const SWEEP_EVERY: i64 = 30;

/// The default store: in memory, lost on restart.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: HashMap<String, PendingRequest>,
    sessions: HashMap<String, Session>,
    codes: HashMap<String, Spendable<AuthorizationCode>>,
    refresh: HashMap<String, Spendable<RefreshToken>>,
    /// Revoked families, until their last token would have expired.
    revoked: HashMap<String, i64>,
    clients: HashMap<String, Client>,
    last_sweep: i64,
}

/// A single-use value: live until spent, then a tombstone until it would have expired, so a
/// replay is recognised as one.
struct Spendable<T> {
    value: T,
    spent: bool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = super::now();
        if now - inner.last_sweep >= SWEEP_EVERY {
            inner.sweep(now);
        }
        inner
    }
}

impl Inner {
    fn sweep(&mut self, now: i64) {
        self.last_sweep = now;
        self.requests.retain(|_, r| r.expires_at >= now);
        self.sessions.retain(|_, s| s.expires_at >= now);
        self.codes.retain(|_, c| c.value.expires_at >= now);
        self.refresh.retain(|_, r| r.value.expires_at >= now);
        self.revoked.retain(|_, until| *until >= now);
    }
}

impl Store for MemoryStore {
    fn save_request(&self, id: &str, request: PendingRequest) -> bool {
        let mut inner = self.lock();
        if inner.requests.len() >= MAX_BROWSER_STATE {
            inner.sweep(super::now());
            if inner.requests.len() >= MAX_BROWSER_STATE {
                return false;
            }
        }
        inner.requests.insert(id.to_owned(), request);
        true
    }

    fn request(&self, id: &str) -> Option<PendingRequest> {
        self.lock().requests.get(id).cloned()
    }

    fn take_request(&self, id: &str) -> Option<PendingRequest> {
        self.lock().requests.remove(id)
    }

    fn save_session(&self, key: &str, session: Session) -> bool {
        let mut inner = self.lock();
        if inner.sessions.len() >= MAX_BROWSER_STATE {
            inner.sweep(super::now());
            if inner.sessions.len() >= MAX_BROWSER_STATE {
                return false;
            }
        }
        inner.sessions.insert(key.to_owned(), session);
        true
    }

    fn session(&self, key: &str) -> Option<Session> {
        self.lock().sessions.get(key).cloned()
    }

    fn save_code(&self, key: &str, code: AuthorizationCode) {
        self.lock().codes.insert(key.to_owned(), Spendable { value: code, spent: false });
    }

    fn redeem_code(&self, key: &str) -> Redeemed<AuthorizationCode> {
        let mut inner = self.lock();
        match inner.codes.get_mut(key) {
            None => Redeemed::Unknown,
            Some(entry) if entry.spent => Redeemed::Replayed { family: entry.value.family.clone() },
            Some(entry) => {
                entry.spent = true;
                Redeemed::Fresh(entry.value.clone())
            }
        }
    }

    fn save_refresh(&self, key: &str, token: RefreshToken) -> bool {
        let mut inner = self.lock();
        if inner.revoked.contains_key(&token.family) {
            return false;
        }
        inner.refresh.insert(key.to_owned(), Spendable { value: token, spent: false });
        true
    }

    fn redeem_refresh(&self, key: &str) -> Redeemed<RefreshToken> {
        let mut inner = self.lock();
        let revoked = match inner.refresh.get(key) {
            Some(entry) => inner.revoked.contains_key(&entry.value.family),
            None => return Redeemed::Unknown,
        };
        let entry = inner.refresh.get_mut(key).expect("checked above");
        if revoked {
            Redeemed::Unknown
        } else if entry.spent {
            Redeemed::Replayed { family: entry.value.family.clone() }
        } else {
            entry.spent = true;
            Redeemed::Fresh(entry.value.clone())
        }
    }

    fn revoke_family(&self, family: &str) -> usize {
        let mut inner = self.lock();
        let mut live = 0;
        let mut until = super::now();
        inner.refresh.retain(|_, entry| {
            if entry.value.family != family {
                return true;
            }
            if !entry.spent {
                live += 1;
            }
            until = until.max(entry.value.expires_at);
            false
        });
        // Codes of the family stay as tombstones (a replay must still be recognised).
        let code_expiry = inner.codes.values().filter(|c| c.value.family == family).map(|c| c.value.expires_at).max();
        until = until.max(code_expiry.unwrap_or(0));
        inner.revoked.insert(family.to_owned(), until);
        live
    }

    fn save_client(&self, client: Client, max: usize) -> bool {
        let mut inner = self.lock();
        if inner.clients.len() >= max {
            return false;
        }
        inner.clients.insert(client.client_id.clone(), client);
        true
    }

    fn client(&self, client_id: &str) -> Option<Client> {
        self.lock().clients.get(client_id).cloned()
    }

    fn sweep(&self, now: i64) {
        self.lock().sweep(now);
    }

    fn counts(&self) -> StoreCounts {
        let inner = self.lock();
        let live = |spent: &mut dyn Iterator<Item = bool>| spent.filter(|s| !s).count();
        StoreCounts {
            pending_requests: inner.requests.len(),
            sessions: inner.sessions.len(),
            codes: live(&mut inner.codes.values().map(|c| c.spent)),
            refresh_tokens: live(&mut inner.refresh.values().map(|r| r.spent)),
            registered_clients: inner.clients.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account { subject: "alice".into(), username: "alice".into(), name: "Alice".into(), roles: vec!["admin".into()] }
    }

    fn refresh(family: &str) -> RefreshToken {
        RefreshToken {
            family: family.into(),
            client_id: "c".into(),
            resource: "r".into(),
            scopes: vec![],
            account: account(),
            expires_at: super::super::now() + 60,
        }
    }

    #[test]
    fn a_refresh_token_is_fresh_once_then_a_replay() {
        let store = MemoryStore::new();
        assert!(store.save_refresh("k", refresh("f")));
        assert!(matches!(store.redeem_refresh("k"), Redeemed::Fresh(_)));
        assert!(matches!(store.redeem_refresh("k"), Redeemed::Replayed { family } if family == "f"));
        assert!(matches!(store.redeem_refresh("other"), Redeemed::Unknown));
    }

    #[test]
    fn a_revoked_family_loses_its_tokens_and_gets_no_new_ones() {
        let store = MemoryStore::new();
        store.save_refresh("a", refresh("f"));
        store.save_refresh("b", refresh("f"));
        store.save_refresh("c", refresh("g"));
        store.redeem_refresh("a");
        assert_eq!(store.revoke_family("f"), 1);
        assert!(matches!(store.redeem_refresh("b"), Redeemed::Unknown));
        assert!(!store.save_refresh("d", refresh("f")));
        assert!(matches!(store.redeem_refresh("c"), Redeemed::Fresh(_)));
    }

    #[test]
    fn registrations_stop_at_the_limit() {
        let store = MemoryStore::new();
        let client = |id: &str| Client::public(id, "name", vec!["https://a.example/cb".into()]);
        assert!(store.save_client(client("one"), 1));
        assert!(!store.save_client(client("two"), 1));
        assert!(store.client("one").is_some() && store.client("two").is_none());
    }
}
