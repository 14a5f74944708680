//! A store for fail-closed tests: the memory store, except that reads or writes of one table
//! fail (`StoreError::Unavailable`) while `failing` is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mcp_auth_server::store::{Counted, MemoryStore, Spent, Store, StoreError, Subscription};

/// Which operations on the table fail.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fails {
    /// `get`.
    Reads,
    /// `put` and `put_new`.
    Writes,
}

pub struct FailingTable {
    inner: MemoryStore,
    table: &'static str,
    fails: Fails,
    failing: AtomicBool,
}

impl FailingTable {
    pub fn new(table: &'static str, fails: Fails, failing: bool) -> Self {
        FailingTable { inner: MemoryStore::new(), table, fails, failing: AtomicBool::new(failing) }
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self, table: &str, fails: Fails) -> Result<(), StoreError> {
        if table == self.table && self.fails == fails && self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test: down".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FailingTable {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn shared(&self) -> bool {
        false
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn put(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.check(table, Fails::Writes)?;
        self.inner.put(table, key, value, ttl).await
    }
    async fn put_new(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.check(table, Fails::Writes)?;
        self.inner.put_new(table, key, value, ttl).await
    }
    async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check(table, Fails::Reads)?;
        self.inner.get(table, key).await
    }
    async fn take(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.take(table, key).await
    }
    async fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        self.inner.delete(table, key).await
    }
    async fn touch(&self, table: &str, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.touch(table, key, ttl).await
    }
    async fn put_spendable(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.inner.put_spendable(table, key, value, ttl).await
    }
    async fn spend(&self, table: &str, key: &str) -> Result<Spent, StoreError> {
        self.inner.spend(table, key).await
    }
    async fn count(&self, table: &str, key: &str, window: Duration) -> Result<Counted, StoreError> {
        self.inner.count(table, key, window).await
    }
    async fn put_in_group(
        &self,
        table: &str,
        group: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.put_in_group(table, group, key, value, ttl, max).await
    }
    async fn group_len(&self, table: &str, group: &str) -> Result<usize, StoreError> {
        self.inner.group_len(table, group).await
    }
    async fn append(&self, log: &str, event: &[u8], keep: usize, ttl: Duration) -> Result<u64, StoreError> {
        self.inner.append(log, event, keep, ttl).await
    }
    async fn read_after(&self, log: &str, after: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.read_after(log, after).await
    }
    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), StoreError> {
        self.inner.publish(channel, message).await
    }
    fn subscribe(&self, channel: &str) -> Subscription {
        self.inner.subscribe(channel)
    }
}
