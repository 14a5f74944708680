//! What the authorization server keeps (feature `issuer`), on the server's [`Store`]: requests
//! waiting for a person, sign-ins, authorization codes, refresh tokens and their families (a
//! revoked family is filed by its grant id, where the resource server looks: `jwt::revoked`),
//! registered clients, cached client metadata documents, and the counters of the sign-in and
//! client-authentication limits. The store is `memory:`, an SQLite file or Redis
//! (`storage.url`), so this survives restarts and is shared by instances as the store is.
//!
//! Secrets are never keys or values: codes, refresh tokens and sign-in cookies are filed under
//! their SHA-256 digest (see [`super::digest`]), registered clients' secrets are kept as digests,
//! and anti-CSRF tokens are derived from the browser's cookie, not stored. Every record expires,
//! and the store enforces it. Code redemption and refresh-token rotation are single atomic
//! operations of the store ([`Store::spend`]): of two concurrent redemptions of one code or
//! token, on any instances, exactly one gets it, and a replay is recognised until the record
//! would have expired.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::jwt::revoked::grant_id;
use crate::store::{Counted, Spent, Store, StoreError};

/// A person (or, for `client_credentials`, a client) as tokens describe them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `sub`: the username for people, the client ID for `client_credentials`.
    pub subject: String,
    pub username: String,
    pub name: String,
    pub roles: Vec<String>,
}

/// An authorization request that passed validation and waits for sign-in and consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Whether errors may be redirected to the client (configured, or consented to before).
    pub trusted: bool,
    /// Whether the authorization comes with a refresh token (`issuer.refresh_tokens`).
    #[serde(default = "yes")]
    pub refresh: bool,
    pub expires_at: i64,
}

/// The default of flags added to records after they were first stored.
fn yes() -> bool {
    true
}

/// A sign-in remembered for one browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignIn {
    pub account: Account,
    pub expires_at: i64,
}

/// An issued authorization code and everything it is bound to.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Whether the grant comes with a refresh token (decided with the authorization request).
    #[serde(default = "yes")]
    pub refresh: bool,
    pub expires_at: i64,
}

/// A refresh token (stored by digest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshToken {
    pub family: String,
    /// When it was issued (seconds since the epoch); 0 in records written before it was kept.
    #[serde(default)]
    pub issued_at: i64,
    pub client_id: String,
    pub resource: String,
    /// The scopes of the original grant.
    pub scopes: Vec<String>,
    pub account: Account,
    pub expires_at: i64,
}

/// A client registered at `/register` (RFC 7591), as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisteredClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// The SHA-256 digest of the secret this server generated; `None` for a public client.
    pub secret_digest: Option<String>,
    pub registered_at: i64,
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

/// The tables of the authorization server.
mod table {
    /// Pending authorization requests, in groups by client address.
    pub const REQUESTS: &str = "as_request";
    pub const SIGN_INS: &str = "as_signin";
    pub const CODES: &str = "as_code";
    pub const REFRESH_TOKENS: &str = "as_refresh";
    /// Refresh tokens spent by a rotation (their record stays, so that a reuse is recognised).
    pub const ROTATED: &str = "as_refresh_used";
    /// Revoked grants, by grant id: the table the resource server reads (`jwt::revoked`).
    pub const REVOKED: &str = crate::jwt::revoked::TABLE;
    /// Registrations never used yet (one group), and used ones (another table, one group).
    pub const NEW_CLIENTS: &str = "as_client_new";
    pub const CLIENTS: &str = "as_client";
    /// Clients a person has consented to: trusted with error redirects from then on.
    pub const CONSENTED: &str = "as_consented";
    /// Client ID metadata documents (and failures to get one), for their cache lifetime.
    pub const DOCUMENTS: &str = "as_cimd";
    /// `jti`s of accepted client assertions (`private_key_jwt`), until the assertion expires.
    pub const ASSERTIONS: &str = "as_assertion";
    /// `jti`s of accepted ID-JAGs (by issuer), until the ID-JAG expires.
    pub const ID_JAGS: &str = "as_id_jag";
    /// Enterprise identities (issuer and `sub`) linked to a user, by username.
    pub const LINKS: &str = "as_idp_link";
    /// Counters of the limits (sign-in attempts, client secrets, registrations, ...).
    pub const COUNTERS: &str = "as_count";
    /// Accounts whose sign-in is locked for browsers it has not seen, until a time.
    pub const LOCKS: &str = "as_lock";
    /// Browsers that signed in to an account before (digest of the device cookie + account).
    pub const DEVICES: &str = "as_device";
}

/// The authorization server's view of the store: typed records in their tables.
#[derive(Clone)]
pub struct IssuerStore {
    store: Arc<dyn Store>,
}

/// A store failure, for the handlers to answer 503 with.
pub type StoreResult<T> = Result<T, StoreError>;

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|_| StoreError::Invalid(format!("an unreadable {table} record")))
}

/// Seconds until `expires_at` (seconds since the epoch), at least one.
fn ttl_until(expires_at: i64) -> Duration {
    Duration::from_secs((expires_at - super::now()).max(1) as u64)
}

impl IssuerStore {
    pub fn new(store: Arc<dyn Store>) -> Self {
        IssuerStore { store }
    }

    /// The store underneath (its kind, for the start-up line and readiness).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn get<T: DeserializeOwned>(&self, table: &str, key: &str) -> StoreResult<Option<T>> {
        match self.store.get(table, key).await? {
            Some(bytes) => decode(table, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Files a pending request under `id` in its client address's group, which keeps at most
    /// `per_address`: the address's oldest requests make room (and are returned), no one else's.
    pub async fn save_request(
        &self,
        address: &str,
        id: &str,
        request: &PendingRequest,
        per_address: usize,
    ) -> StoreResult<Vec<String>> {
        let ttl = ttl_until(request.expires_at);
        self.store.put_in_group(table::REQUESTS, address, id, &encode(request), ttl, per_address).await
    }

    pub async fn request(&self, id: &str) -> StoreResult<Option<PendingRequest>> {
        self.get(table::REQUESTS, id).await
    }

    /// Removes and returns a pending request: it is answered once, whatever the concurrency.
    pub async fn take_request(&self, id: &str) -> StoreResult<Option<PendingRequest>> {
        match self.store.take(table::REQUESTS, id).await? {
            Some(bytes) => decode(table::REQUESTS, &bytes).map(Some),
            None => Ok(None),
        }
    }

    pub async fn save_sign_in(&self, key: &str, sign_in: &SignIn) -> StoreResult<()> {
        self.store.put(table::SIGN_INS, key, &encode(sign_in), ttl_until(sign_in.expires_at)).await
    }

    pub async fn sign_in(&self, key: &str) -> StoreResult<Option<SignIn>> {
        self.get(table::SIGN_INS, key).await
    }

    pub async fn save_code(&self, key: &str, code: &AuthorizationCode) -> StoreResult<()> {
        self.store.put_spendable(table::CODES, key, &encode(code), ttl_until(code.expires_at)).await
    }

    /// Spends a code: `Fresh` the first time, `Replayed` afterwards (until it would have expired).
    pub async fn redeem_code(&self, key: &str) -> StoreResult<Redeemed<AuthorizationCode>> {
        Ok(match self.store.spend(table::CODES, key).await? {
            Spent::Fresh(bytes) => Redeemed::Fresh(decode(table::CODES, &bytes)?),
            Spent::Replayed(bytes) => {
                Redeemed::Replayed { family: decode::<AuthorizationCode>(table::CODES, &bytes)?.family }
            }
            Spent::Unknown => Redeemed::Unknown,
        })
    }

    /// Files a refresh token; `false` (nothing written) when its family was revoked.
    pub async fn save_refresh(&self, key: &str, token: &RefreshToken) -> StoreResult<bool> {
        if self.revoked(&token.family).await? {
            return Ok(false);
        }
        self.store.put_spendable(table::REFRESH_TOKENS, key, &encode(token), ttl_until(token.expires_at)).await?;
        Ok(true)
    }

    /// A refresh token as issued, without spending it (so a request can be checked first), or
    /// `None` when unknown, expired or revoked.
    pub async fn refresh_token(&self, key: &str) -> StoreResult<Option<RefreshToken>> {
        let Some(token) = self.get::<RefreshToken>(table::REFRESH_TOKENS, key).await? else { return Ok(None) };
        Ok(if self.revoked(&token.family).await? { None } else { Some(token) })
    }

    /// Spends a refresh token (rotation): `Fresh` the first time, `Replayed` afterwards. The
    /// family's revocation is checked by looking the token up first ([`IssuerStore::refresh_token`]):
    /// a revocation that lands after the spend (the reuse this very spend races, on another
    /// instance) leaves this rotation standing, and revokes the token it is about to issue.
    pub async fn redeem_refresh(&self, key: &str) -> StoreResult<Redeemed<RefreshToken>> {
        Ok(match self.store.spend(table::REFRESH_TOKENS, key).await? {
            Spent::Fresh(bytes) => Redeemed::Fresh(decode(table::REFRESH_TOKENS, &bytes)?),
            Spent::Replayed(bytes) => {
                Redeemed::Replayed { family: decode::<RefreshToken>(table::REFRESH_TOKENS, &bytes)?.family }
            }
            Spent::Unknown => Redeemed::Unknown,
        })
    }

    /// Remembers that the refresh token under `key` was rotated (spent by its client), until it
    /// would have expired: introspection reports it inactive.
    pub async fn mark_rotated(&self, key: &str, token: &RefreshToken) -> StoreResult<()> {
        self.store.put(table::ROTATED, key, b"1", ttl_until(token.expires_at)).await
    }

    /// Whether the refresh token under `key` was rotated.
    pub async fn rotated(&self, key: &str) -> StoreResult<bool> {
        Ok(self.store.get(table::ROTATED, key).await?.is_some())
    }

    /// Whether a family's grant was revoked. Revocations are filed under the grant id (the
    /// resource server looks them up by the id its access tokens carry); records of earlier
    /// versions, filed under the family itself, count too until they expire (a refresh-token
    /// lifetime after the upgrade, when this second look-up can go).
    async fn revoked(&self, family: &str) -> StoreResult<bool> {
        if self.store.get(table::REVOKED, &grant_id(family)).await?.is_some() {
            return Ok(true);
        }
        Ok(self.store.get(table::REVOKED, family).await?.is_some())
    }

    /// Files a new registration, among at most `max` never used: the oldest unused ones make
    /// room (returned). It expires after `ttl` unless used ([`IssuerStore::client_used`]).
    pub async fn register(&self, client: &RegisteredClient, ttl: Duration, max: usize) -> StoreResult<Vec<String>> {
        self.store.put_in_group(table::NEW_CLIENTS, "new", &client.client_id, &encode(client), ttl, max).await
    }

    /// A registered client, used or not.
    pub async fn registered(&self, client_id: &str) -> StoreResult<Option<RegisteredClient>> {
        match self.get(table::CLIENTS, client_id).await? {
            Some(client) => Ok(Some(client)),
            None => self.get(table::NEW_CLIENTS, client_id).await,
        }
    }

    /// A registered client got tokens: it is kept `ttl` from now (the idle expiry), among at most
    /// `max` used registrations, the least recently used making room.
    pub async fn client_used(&self, client: &RegisteredClient, ttl: Duration, max: usize) -> StoreResult<()> {
        if !self.store.touch(table::CLIENTS, &client.client_id, ttl).await? {
            self.store.put_in_group(table::CLIENTS, "used", &client.client_id, &encode(client), ttl, max).await?;
            self.store.delete(table::NEW_CLIENTS, &client.client_id).await?;
        }
        Ok(())
    }

    /// Remembers that a person consented to `client_id`, for `ttl`.
    pub async fn consented(&self, client_id: &str, ttl: Duration) -> StoreResult<()> {
        self.store.put(table::CONSENTED, client_id, b"1", ttl).await
    }

    /// Whether a person has consented to `client_id` before (and recently enough).
    pub async fn was_consented(&self, client_id: &str) -> StoreResult<bool> {
        Ok(self.store.get(table::CONSENTED, client_id).await?.is_some())
    }

    /// A cached client metadata document answer: the client's stored form, or why there is none.
    pub async fn document<T: DeserializeOwned>(&self, url: &str) -> StoreResult<Option<T>> {
        self.get(table::DOCUMENTS, url).await
    }

    pub async fn save_document<T: Serialize>(&self, url: &str, answer: &T, ttl: Duration) -> StoreResult<()> {
        self.store.put(table::DOCUMENTS, url, &encode(answer), ttl).await
    }

    /// Records a client assertion's `jti` (digest) for `ttl`; `false` when it was already there
    /// (a replay), on any instance sharing the store.
    pub async fn spend_assertion(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.store.put_new(table::ASSERTIONS, key, b"1", ttl).await
    }

    /// Records the `jti` of an ID-JAG under `key` for `ttl`; `false` when it was seen before.
    pub async fn spend_id_jag(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        self.store.put_new(table::ID_JAGS, key, b"1", ttl).await
    }

    /// The username an enterprise identity (`key`: digest of issuer and `sub`) is linked to.
    pub async fn linked_user(&self, key: &str) -> StoreResult<Option<String>> {
        let Some(bytes) = self.store.get(table::LINKS, key).await? else { return Ok(None) };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| crate::store::StoreError::Invalid(format!("{}: a link that is not text", table::LINKS)))
    }

    /// Links an enterprise identity to `username` for `ttl` (renewed each time it is used).
    pub async fn link_user(&self, key: &str, username: &str, ttl: Duration) -> StoreResult<()> {
        self.store.put(table::LINKS, key, username.as_bytes(), ttl).await
    }

    /// Counts one more event of `key` in a fixed window (attempts, registrations, ...).
    pub async fn count(&self, key: &str, window: Duration) -> StoreResult<Counted> {
        self.store.count(table::COUNTERS, key, window).await
    }

    /// Forgets a counter (a successful sign-in clears its failures).
    pub async fn reset(&self, key: &str) -> StoreResult<()> {
        self.store.delete(table::COUNTERS, key).await.map(drop)
    }

    /// Locks `account` for browsers it has not seen until `until` (seconds since the epoch).
    pub async fn lock(&self, account: &str, until: i64) -> StoreResult<()> {
        self.store.put(table::LOCKS, account, until.to_string().as_bytes(), ttl_until(until)).await
    }

    /// Until when `account` is locked, if it is.
    pub async fn locked_until(&self, account: &str) -> StoreResult<Option<i64>> {
        let until = self.store.get(table::LOCKS, account).await?;
        Ok(until.and_then(|bytes| std::str::from_utf8(&bytes).ok()?.parse().ok()).filter(|t| *t > super::now()))
    }

    pub async fn unlock(&self, account: &str) -> StoreResult<()> {
        self.store.delete(table::LOCKS, account).await.map(drop)
    }

    /// Remembers that the browser with device cookie digest `device` signed in to `account`.
    pub async fn remember_device(&self, device: &str, account: &str, ttl: Duration) -> StoreResult<()> {
        self.store.put(table::DEVICES, &format!("{device}/{account}"), b"1", ttl).await
    }

    /// Whether that browser signed in to `account` before.
    pub async fn known_device(&self, device: &str, account: &str) -> StoreResult<bool> {
        Ok(self.store.get(table::DEVICES, &format!("{device}/{account}")).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn account() -> Account {
        Account { subject: "alice".into(), username: "alice".into(), name: "Alice".into(), roles: vec!["admin".into()] }
    }

    fn refresh(family: &str) -> RefreshToken {
        RefreshToken {
            family: family.into(),
            issued_at: super::super::now(),
            client_id: "c".into(),
            resource: "r".into(),
            scopes: vec![],
            account: account(),
            expires_at: super::super::now() + 60,
        }
    }

    fn store() -> IssuerStore {
        IssuerStore::new(Arc::new(MemoryStore::new()))
    }

    #[tokio::test]
    async fn a_refresh_token_is_fresh_once_then_a_replay() {
        let store = store();
        assert!(store.save_refresh("k", &refresh("f")).await.unwrap());
        assert!(matches!(store.redeem_refresh("k").await.unwrap(), Redeemed::Fresh(_)));
        assert!(matches!(store.redeem_refresh("k").await.unwrap(), Redeemed::Replayed { family } if family == "f"));
        assert!(matches!(store.redeem_refresh("other").await.unwrap(), Redeemed::Unknown));
    }

    #[tokio::test]
    async fn a_revoked_family_loses_its_tokens_and_gets_no_new_ones() {
        let store = store();
        store.save_refresh("a", &refresh("f")).await.unwrap();
        store.save_refresh("b", &refresh("f")).await.unwrap();
        store.save_refresh("c", &refresh("g")).await.unwrap();
        store.redeem_refresh("a").await.unwrap();
        crate::jwt::revoked::Revocations::new(store.store().clone())
            .record(&grant_id("f"), Duration::from_secs(60))
            .await
            .unwrap();
        // The look-up that precedes every spend finds nothing.
        assert!(store.refresh_token("b").await.unwrap().is_none());
        assert!(!store.save_refresh("d", &refresh("f")).await.unwrap());
        assert!(matches!(store.redeem_refresh("c").await.unwrap(), Redeemed::Fresh(_)));
    }

    #[tokio::test]
    async fn a_family_revoked_by_an_earlier_version_stays_revoked() {
        let store = store();
        store.save_refresh("a", &refresh("f")).await.unwrap();
        store.store().put(table::REVOKED, "f", b"1", Duration::from_secs(60)).await.unwrap();
        assert!(store.refresh_token("a").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_used_registration_leaves_the_unused_ones_and_survives_their_eviction() {
        let store = store();
        let client = |id: &str| RegisteredClient {
            client_id: id.into(),
            name: "n".into(),
            redirect_uris: vec!["https://a.example/cb".into()],
            grant_types: vec!["authorization_code".into()],
            secret_digest: None,
            registered_at: 0,
        };
        let day = Duration::from_secs(86_400);
        assert!(store.register(&client("one"), day, 2).await.unwrap().is_empty());
        store.client_used(&client("one"), day, 10).await.unwrap();
        store.register(&client("two"), day, 2).await.unwrap();
        store.register(&client("three"), day, 2).await.unwrap();
        assert_eq!(store.register(&client("four"), day, 2).await.unwrap(), ["two"], "the oldest unused makes room");
        assert!(store.registered("one").await.unwrap().is_some(), "a used one is not evicted by new ones");
        assert!(store.registered("two").await.unwrap().is_none());
    }
}
