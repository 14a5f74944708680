//! People who may sign in (feature `issuer`): users from `[[issuer.users]]` with Argon2 password
//! hashes ([`super::password`]), the guard that keeps the published development users off the
//! network, and the sign-in rate limit.
//!
//! Argon2 is slow on purpose (tens of milliseconds and 19 MiB per check with the recommended
//! parameters), so checks run on the blocking thread pool, at most one per core at a time: a
//! flood of sign-in attempts queues instead of starving the rest of the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::password::{DECOY, DEV_PASSWORDS, check_hash, verify_password};
use super::store::Account;
use crate::config::Settings;
use crate::error::StartupError;

struct User {
    account: Account,
    hash: SecretString,
}

/// The people who may sign in.
pub struct Users {
    by_name: HashMap<String, User>,
    checks: Arc<Semaphore>,
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
            by_name.insert(user.username.to_lowercase(), User { account, hash: user.password_hash.clone() });
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
        Ok(Users { by_name, checks: Arc::new(Semaphore::new(permits)) })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The account of `username` (any case) if `password` is right.
    pub async fn verify(&self, username: &str, password: &str) -> Option<Account> {
        let user = self.by_name.get(&username.trim().to_lowercase());
        let ok = self.check_secret(user.map_or(DECOY, |u| u.hash.expose_secret()), password).await;
        match user {
            Some(user) if ok => Some(user.account.clone()),
            _ => None,
        }
    }
}

impl Users {
    /// Whether `secret` matches the Argon2 `hash`, checked on the blocking pool, at most one check
    /// per core at a time. Client secrets of the configuration are checked here too.
    pub async fn check_secret(&self, hash: &str, secret: &str) -> bool {
        let (hash, secret) = (hash.to_owned(), secret.to_owned());
        let Ok(_permit) = self.checks.acquire().await else { return false };
        tokio::task::spawn_blocking(move || verify_password(&hash, &secret)).await.unwrap_or(false)
    }
}

/// Most (address, username) pairs tracked at once; past that the table is cleared (logged).
const MAX_TRACKED: usize = 100_000;

/// (client address, lowercased username) -> (failures, start of their window).
type Failures = HashMap<(Option<IpAddr>, String), (u32, i64)>;

/// Failed sign-ins per client address and username within a window.
pub struct LoginLimiter {
    max_failures: u32,
    window: i64,
    failures: Mutex<Failures>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window_secs: u64) -> Self {
        LoginLimiter { max_failures, window: window_secs as i64, failures: Mutex::new(HashMap::new()) }
    }

    fn key(ip: Option<IpAddr>, username: &str) -> (Option<IpAddr>, String) {
        (ip, username.trim().to_lowercase())
    }

    /// `Err(seconds to wait)` when this pair has used up its attempts.
    pub fn check(&self, ip: Option<IpAddr>, username: &str, now: i64) -> Result<(), i64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&Self::key(ip, username)) {
            Some((count, started)) if *count >= self.max_failures && now < started + self.window => {
                Err(started + self.window - now)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, ip: Option<IpAddr>, username: &str, now: i64) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, started)| now < *started + self.window);
            if failures.len() >= MAX_TRACKED {
                tracing::warn!("sign-in rate limit table full; starting afresh");
                failures.clear();
            }
        }
        let entry = failures.entry(Self::key(ip, username)).or_insert((0, now));
        if now >= entry.1 + self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets the failures of a pair that signed in.
    pub fn succeeded(&self, ip: Option<IpAddr>, username: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&Self::key(ip, username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_failures_per_address_and_username_within_the_window() {
        let limiter = LoginLimiter::new(2, 60);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        limiter.failed(ip, "Alice", 0);
        assert!(limiter.check(ip, "alice", 1).is_ok());
        limiter.failed(ip, "alice", 1);
        assert_eq!(limiter.check(ip, "ALICE", 10), Err(50));
        assert!(limiter.check(ip, "bob", 10).is_ok());
        assert!(limiter.check(Some(IpAddr::from([127, 0, 0, 2])), "alice", 10).is_ok());
        assert!(limiter.check(ip, "alice", 60).is_ok(), "the window has passed");
        limiter.succeeded(ip, "alice");
        assert!(limiter.check(ip, "alice", 11).is_ok());
    }
}
