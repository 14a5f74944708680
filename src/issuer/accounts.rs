//! People who may sign in (feature `issuer`): users from `[[issuer.users]]` with Argon2 password
//! hashes ([`super::password`]), the guard that keeps the published development users off the
//! network, and the sign-in limits ([`SignInLimits`]).
//!
//! Argon2 is slow on purpose (tens of milliseconds and 19 MiB per check with the recommended
//! parameters), so checks run on the blocking thread pool, at most one per core at a time, and a
//! bounded number wait: a flood of attempts is refused instead of starving the rest of the
//! server or delaying everyone's sign-in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::password::{DECOY, DEV_PASSWORDS, check_hash, verify_password};
use super::store::{Account, IssuerStore, StoreResult};
use crate::config::{IssuerSettings, Settings};
use crate::error::StartupError;

struct User {
    account: Account,
    hash: SecretString,
    /// Lowercased; empty = none.
    email: String,
}

/// The people who may sign in.
pub struct Users {
    by_name: HashMap<String, User>,
    /// One per core: checks running at once.
    checks: Arc<Semaphore>,
    /// `issuer.max_hash_queue`: checks waiting for one of those at once.
    waiting: Arc<Semaphore>,
}

impl Users {
    /// The users of `[[issuer.users]]`. Fails on a malformed hash, a role `scopes.roles` does not
    /// define, or a development user on a non-loopback bind address (unless allowed).
    pub fn from_settings(settings: &Settings) -> Result<Users, StartupError> {
        let issuer = &settings.issuer;
        let mut by_name = HashMap::new();
        for user in &issuer.users {
            let key = format!("issuer.users.{}", user.username);
            check_hash(user.password_hash.expose_secret())
                .map_err(|p| StartupError::config(format!("{key}.password_hash"), p))?;
            if let Some(unknown) = user.roles.iter().find(|r| !settings.scopes.roles.contains_key(*r)) {
                return Err(StartupError::config(
                    format!("{key}.roles"),
                    format!("names `{unknown}`, which scopes.roles does not define"),
                ));
            }
            let account = Account {
                subject: user.username.clone(),
                username: user.username.clone(),
                name: user.name.clone(),
                roles: user.roles.clone(),
            };
            let email = user.email.to_lowercase();
            by_name.insert(user.username.to_lowercase(), User { account, hash: user.password_hash.clone(), email });
        }
        let bind = settings.server.bind.ip();
        if !bind.is_loopback() && !issuer.allow_dev_users_on_public_bind {
            let users = issuer.users.iter().map(|u| ("user", &u.username, &u.password_hash));
            let clients = issuer.clients.iter().map(|c| ("client", &c.client_id, &c.secret_hash));
            for (what, name, hash) in users.chain(clients) {
                if DEV_PASSWORDS.iter().any(|password| verify_password(hash.expose_secret(), password)) {
                    return Err(StartupError::config(
                        "issuer",
                        format!(
                            "{what} `{name}` has a published development password, and server.bind ({bind}) is \
                             not a loopback address: configure your own users and clients (or, knowingly, set \
                             issuer.allow_dev_users_on_public_bind = true)"
                        ),
                    ));
                }
            }
        }
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get());
        let waiting = Arc::new(Semaphore::new(issuer.max_hash_queue));
        Ok(Users { by_name, checks: Arc::new(Semaphore::new(permits)), waiting })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The account of `username` (any case), without a password: an enterprise identity linked
    /// to it ([`super::enterprise`]).
    pub fn account(&self, username: &str) -> Option<Account> {
        self.by_name.get(&username.to_lowercase()).map(|user| user.account.clone())
    }

    /// The account whose `email` is `email` (any case); addresses are unique among users.
    pub fn by_email(&self, email: &str) -> Option<Account> {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return None;
        }
        self.by_name.values().find(|user| user.email == email).map(|user| user.account.clone())
    }

    /// Whether `name` is a user's username (any case).
    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(&name.to_lowercase())
    }

    /// The account of `username` (any case) if `password` is right; [`Busy`] when too many
    /// checks are waiting already.
    pub async fn verify(&self, username: &str, password: &str) -> Result<Option<Account>, Busy> {
        let user = self.by_name.get(&username.trim().to_lowercase());
        let ok = self.check_secret(user.map_or(DECOY, |u| u.hash.expose_secret()), password).await?;
        Ok(match user {
            Some(user) if ok => Some(user.account.clone()),
            _ => None,
        })
    }

    /// Whether `secret` matches the Argon2 `hash`, checked on the blocking pool, at most one check
    /// per core at a time, with at most `issuer.max_hash_queue` waiting: beyond that, [`Busy`] at
    /// once, so a flood of guesses cannot make every sign-in wait. Client secrets of the
    /// configuration are checked here too.
    pub async fn check_secret(&self, hash: &str, secret: &str) -> Result<bool, Busy> {
        let Ok(_waiting) = self.waiting.clone().try_acquire_owned() else { return Err(Busy) };
        let (hash, secret) = (hash.to_owned(), secret.to_owned());
        let Ok(_permit) = self.checks.acquire().await else { return Ok(false) };
        Ok(tokio::task::spawn_blocking(move || verify_password(&hash, &secret)).await.unwrap_or(false))
    }
}

/// Too many password or secret checks are waiting: try again shortly (503).
#[derive(Debug, Clone, Copy)]
pub struct Busy;

/// The sign-in limits (`issuer.login_*`): every attempt counted in the store before the
/// password is checked, so no number of concurrent guesses exceeds them, and shared by every
/// instance of a shared store.
///
/// Per account, `max` attempts per window from browsers that never signed in to it; the first
/// attempt beyond locks the account for such browsers, for a window the first time and twice as
/// long each time it is locked again within a day, at most `max_lockout`. A browser that signed in
/// to the account before (its device cookie is remembered with the account) is not locked out: it
/// has `max` attempts per window of its own. Per client address, `per_address` attempts per
/// window, whatever the account. A success clears the account's and the browser's counts.
pub struct SignInLimits {
    max: u32,
    window: Duration,
    max_lockout: Duration,
    per_address: u32,
}

/// Why an attempt is not checked: 429, with the seconds to wait.
pub struct Refused {
    pub retry_after: u64,
    pub why: &'static str,
}

const DAY: Duration = Duration::from_secs(86_400);

impl SignInLimits {
    pub fn from_settings(issuer: &IssuerSettings) -> Self {
        SignInLimits {
            max: issuer.login_max_attempts,
            window: Duration::from_secs(issuer.login_window_secs),
            max_lockout: Duration::from_secs(issuer.login_max_lockout_secs),
            per_address: issuer.login_max_attempts_per_address,
        }
    }

    /// Counts an attempt to sign in as `username` from `address`, with the browser's device
    /// cookie digest if it has one, and says whether its password may be checked.
    pub async fn admit(
        &self,
        store: &IssuerStore,
        address: &str,
        username: &str,
        device: Option<&str>,
    ) -> StoreResult<Result<(), Refused>> {
        let account = username.trim().to_lowercase();
        let by_address = store.count(&format!("signin-address/{address}"), self.window).await?;
        if by_address.count > u64::from(self.per_address) {
            return Ok(Err(Refused { retry_after: secs(by_address.resets_in), why: "from this address" }));
        }
        if let Some(device) = device
            && store.known_device(device, &account).await?
        {
            let by_device = store.count(&format!("signin-device/{device}/{account}"), self.window).await?;
            if by_device.count > u64::from(self.max) {
                return Ok(Err(Refused { retry_after: secs(by_device.resets_in), why: "for this account" }));
            }
            return Ok(Ok(()));
        }
        let now = super::now();
        if let Some(until) = store.locked_until(&account).await? {
            return Ok(Err(Refused { retry_after: (until - now).max(1) as u64, why: "for this account" }));
        }
        let by_account = store.count(&format!("signin-account/{account}"), self.window).await?;
        if by_account.count <= u64::from(self.max) {
            return Ok(Ok(()));
        }
        // The first refused attempt of the window locks the account, longer each time.
        let lock = if by_account.count == u64::from(self.max) + 1 {
            let lockouts = store.count(&format!("signin-lockouts/{account}"), DAY).await?.count;
            let doubled = self.window.saturating_mul(1 << lockouts.saturating_sub(1).min(20));
            let lock = doubled.min(self.max_lockout).max(by_account.resets_in);
            store.lock(&account, now + lock.as_secs() as i64).await?;
            tracing::warn!(%account, lock_secs = lock.as_secs(), lockouts, "sign-in locked for unknown browsers");
            lock
        } else {
            by_account.resets_in
        };
        Ok(Err(Refused { retry_after: secs(lock), why: "for this account" }))
    }

    /// A successful sign-in: the account's and this browser's counts start again, the account is
    /// unlocked, and the browser is remembered as one that signed in to it.
    pub async fn succeeded(&self, store: &IssuerStore, username: &str, device: &str) -> StoreResult<()> {
        let account = username.trim().to_lowercase();
        store.reset(&format!("signin-account/{account}")).await?;
        store.reset(&format!("signin-device/{device}/{account}")).await?;
        store.unlock(&account).await?;
        store.remember_device(device, &account, DEVICE_TTL).await
    }
}

/// How long a browser is remembered as one that signed in to an account.
pub const DEVICE_TTL: Duration = Duration::from_secs(90 * 86_400);

fn secs(duration: Duration) -> u64 {
    duration.as_secs_f64().ceil().max(1.0) as u64
}
