//! Downstream tokens per caller and target (feature `jwt`, part of `token_exchange`): used until
//! shortly before they expire, one exchange at a time per key, and a bounded number of keys.
//!
//! Each key has an entry with an async lock. A call takes the lock; a fresh token under it is the
//! answer, otherwise the call exchanges while holding it, so concurrent calls for one key wait
//! for that one exchange (single-flight) and then find its token. A failure is kept only for the
//! calls that were already waiting for it (they would otherwise repeat a request that just
//! failed); a later call tries again. Times are tokio's, so tests can pause the clock.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::mcp::{DownstreamToken, ExchangeError};

/// What a downstream token is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub issuer: String,
    pub subject: String,
    /// The client the caller's token was issued to.
    pub client_id: Option<String>,
    /// The caller's own scopes, sorted, space-separated.
    pub caller_scopes: String,
    pub audience: String,
    /// The scopes asked for, sorted, deduplicated, space-separated.
    pub scopes: String,
}

#[derive(Default)]
struct Entry {
    slot: tokio::sync::Mutex<Slot>,
    /// Exchanges finished under this key: a waiter that sees it move knows the failure it finds
    /// is the one it waited for.
    finished: AtomicU64,
}

#[derive(Default)]
struct Slot {
    token: Option<(DownstreamToken, Instant)>,
    failure: Option<ExchangeError>,
}

impl Slot {
    fn fresh(&self, now: Instant) -> Option<&DownstreamToken> {
        self.token.as_ref().filter(|(_, until)| now < *until).map(|(token, _)| token)
    }
}

/// Downstream tokens by [`Key`], at most `capacity` keys not in use.
pub struct Cache {
    entries: Mutex<HashMap<Key, Arc<Entry>>>,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached token for `key`, or the one `exchange` gets (with its lifetime), kept until
    /// `margin` before that lifetime ends.
    pub async fn get_or_exchange<F, Fut>(
        &self,
        key: Key,
        margin: Duration,
        exchange: F,
    ) -> Result<DownstreamToken, ExchangeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(DownstreamToken, Option<Duration>), ExchangeError>>,
    {
        let entry = self.entry(key);
        let seen = entry.finished.load(Ordering::Acquire);
        let mut slot = entry.slot.lock().await;
        if let Some(token) = slot.fresh(Instant::now()) {
            return Ok(token.clone());
        }
        if let Some(failure) = &slot.failure
            && entry.finished.load(Ordering::Acquire) != seen
        {
            return Err(failure.clone());
        }
        let started = Instant::now();
        let result = exchange().await;
        match &result {
            Ok((token, lifetime)) => {
                slot.failure = None;
                slot.token = lifetime
                    .and_then(|lifetime| lifetime.checked_sub(margin))
                    .filter(|usable| !usable.is_zero())
                    .map(|usable| (token.clone(), started + usable));
            }
            Err(error) => {
                slot.token = None;
                slot.failure = Some(error.clone());
            }
        }
        entry.finished.fetch_add(1, Ordering::AcqRel);
        result.map(|(token, _)| token)
    }

    /// The entry for `key`, made (room first) when there is none.
    fn entry(&self, key: Key) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get(&key) {
            return entry.clone();
        }
        if entries.len() >= self.capacity {
            let now = Instant::now();
            // Expired and failed entries nobody waits on go first, then any entry nobody waits on.
            entries.retain(|_, entry| {
                Arc::strong_count(entry) > 1 || entry.slot.try_lock().map_or(true, |slot| slot.fresh(now).is_some())
            });
            if entries.len() >= self.capacity {
                let idle: Vec<Key> = entries
                    .iter()
                    .filter(|(_, entry)| Arc::strong_count(entry) == 1)
                    .map(|(key, _)| key.clone())
                    .take(entries.len() + 1 - self.capacity)
                    .collect();
                for key in idle {
                    entries.remove(&key);
                }
            }
        }
        let entry = Arc::new(Entry::default());
        entries.insert(key, entry.clone());
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(audience: &str) -> Key {
        Key {
            issuer: "https://issuer".into(),
            subject: "alice".into(),
            client_id: None,
            caller_scopes: String::new(),
            audience: audience.into(),
            scopes: String::new(),
        }
    }

    fn token(value: &str) -> DownstreamToken {
        DownstreamToken::new(value, "api", Vec::new(), None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_reused_until_its_margin_then_exchanged_again() {
        let cache = Cache::new(10);
        let margin = Duration::from_secs(30);
        let lifetime = Some(Duration::from_secs(90));
        let first = cache.get_or_exchange(key("api"), margin, || async { Ok((token("one"), lifetime)) }).await;
        assert_eq!(first.unwrap().secret(), "one");
        tokio::time::advance(Duration::from_secs(59)).await;
        let cached = cache.get_or_exchange(key("api"), margin, || async { Ok((token("two"), lifetime)) }).await;
        assert_eq!(cached.unwrap().secret(), "one");
        tokio::time::advance(Duration::from_secs(1)).await;
        let renewed = cache.get_or_exchange(key("api"), margin, || async { Ok((token("three"), lifetime)) }).await;
        assert_eq!(renewed.unwrap().secret(), "three");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_calls_for_one_key_make_one_exchange() {
        let cache = Arc::new(Cache::new(10));
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_exchange(key("api"), Duration::ZERO, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok((token("shared"), Some(Duration::from_secs(60))))
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().secret(), "shared");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_shared_by_its_waiters_but_not_cached_for_later_calls() {
        let cache = Arc::new(Cache::new(10));
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_exchange(key("api"), Duration::ZERO, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err(ExchangeError::Unavailable("down".into()))
                    })
                    .await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let later = cache.get_or_exchange(key("api"), Duration::ZERO, || async { Ok((token("ok"), None)) }).await;
        assert_eq!(later.unwrap().secret(), "ok");
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_capacity_of_idle_keys() {
        let cache = Cache::new(3);
        for i in 0..10 {
            let audience = format!("api-{i}");
            let got = cache
                .get_or_exchange(key(&audience), Duration::ZERO, || async {
                    Ok((token("t"), Some(Duration::from_secs(600))))
                })
                .await;
            assert!(got.is_ok());
        }
        assert!(cache.len() <= 3, "{} keys", cache.len());
    }
}
