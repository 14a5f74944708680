//! Storage for state that must survive a restart or be shared by instances (feature `mcp`): the
//! [`Store`] contract, its errors and small types, and the `memory:` backend ([`MemoryStore`]).
//! The SQLite backend is `store_sqlite` (feature `store-sqlite`), the Redis one `store_redis`
//! (feature `store-redis`); one contract test suite runs against all three.
//!
//! The contract is deliberately small and backend-neutral:
//! - records are opaque bytes (callers serialise JSON) under `(table, key)`. A table is a short
//!   fixed name without `:`; a key is any string, and never a secret (callers file secrets under
//!   their digest);
//! - every record expires, and the store enforces it: an expired record is absent to every
//!   operation, whenever the backend gets round to deleting it;
//! - every operation is atomic on its own: across threads for `memory:` and SQLite, across
//!   instances for Redis. There are no multi-operation transactions: the operations that need
//!   atomicity across steps (take, spend, bounded groups, counters, event logs) are operations.
//!
//! A record is one of three kinds, by the operation that wrote it last: a plain record (`put`,
//! `put_new`, `put_in_group`), a spendable one (`put_spendable`), or a counter (`count`, whose value
//! is its count in decimal ASCII). `get`, `take`, `delete` and `touch` work on all of them.
//!
//! Errors: [`StoreError::Unavailable`] when the store cannot be reached or fails (the caller answers
//! 503 with `Retry-After`), [`StoreError::Invalid`] when a record cannot be what the operation
//! expects (a `spend` of a plain record, a `count` of a non-numeric record, a damaged row). A record
//! that fails to decode is an error, never silently absent: absent would make a damaged spent
//! refresh token look unknown rather than replayed. Messages never contain record values.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use crate::config::StorageUrl;

/// A store operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or failed; the operation may be retried later (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A record is not what the operation expects (another kind of record under the key, or
    /// damaged data), or a table name is not allowed. A bug or damage, never the caller's input.
    #[error("store record unusable: {0}")]
    Invalid(String),
}

/// The outcome of [`Store::spend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent {
    /// The first spend: here is the value, and the record is now spent.
    Fresh(Vec<u8>),
    /// Spent before (a replay): the value, so the caller can act on it (revoke a token family).
    Replayed(Vec<u8>),
    /// No such record, or it expired.
    Unknown,
}

/// The outcome of [`Store::count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// The count in the current window, this one included.
    pub count: u64,
    /// Time until the window ends and the count starts again from zero.
    pub resets_in: Duration,
}

/// The time as the memory and SQLite stores see it: Unix milliseconds. Injectable so expiry
/// tests advance time instead of sleeping.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

/// The system clock read once, then advanced by tokio's monotonic clock: for records that live
/// no longer than the process (the memory store), which then ignore jumps of the wall clock, and
/// expire on time in tests that pause tokio's clock.
pub fn runtime_clock() -> Clock {
    let (wall, start) = ((system_clock())(), tokio::time::Instant::now());
    Arc::new(move || wall + start.elapsed().as_millis() as u64)
}

/// The contract every backend implements. Object-safe: callers hold an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"memory"`, `"sqlite"` or `"redis"`.
    fn kind(&self) -> &'static str;
    /// Whether several processes share this store (only Redis).
    fn shared(&self) -> bool;
    /// Readiness: succeeds when the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Writes a plain record (replacing any record under the key, whatever its kind or group).
    async fn put(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    /// Writes a plain record only if none is live under the key; `true` when written. Replay
    /// detection of `jti`s and nonces.
    async fn put_new(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError>;
    /// The value of a live record of any kind.
    async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads and deletes a record: of two concurrent takes, exactly one gets the value.
    async fn take(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes a record (and its group membership); `true` when a live record was deleted.
    async fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError>;
    /// Gives a live record a new expiry, `ttl` from now, and makes it the most recently used of
    /// its group; `false` when there is no live record.
    async fn touch(&self, table: &str, key: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Writes a single-use record (authorization code, refresh token), unspent.
    async fn put_spendable(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    /// Spends a single-use record: the first spend gets [`Spent::Fresh`], every later one
    /// [`Spent::Replayed`] until the record expires (a spent record keeps its value and expiry, so a
    /// replay is recognised), then [`Spent::Unknown`]. Exactly one `Fresh` among any number of
    /// concurrent spends, on any instance. [`StoreError::Invalid`] for a record that is not spendable.
    async fn spend(&self, table: &str, key: &str) -> Result<Spent, StoreError>;

    /// Fixed-window counter: adds one and returns the new count. The window starts at the first
    /// count, and the counter disappears when it ends (counting never extends it).
    async fn count(&self, table: &str, key: &str, window: Duration) -> Result<Counted, StoreError>;

    /// Writes a plain record as the most recent member of `group` (a bounded group: pending
    /// sign-ins per client address, sessions per caller, registrations). When the group then
    /// holds more than `max` live records (a `max` of 0 acts as 1), the least recently put or
    /// touched are deleted in the same atomic step and their keys returned, oldest first.
    /// `get`, `take`, `delete` and `touch` work on grouped records by `(table, key)` as usual;
    /// `delete`, `take`, expiry and a later plain `put` remove them from the group.
    async fn put_in_group(
        &self,
        table: &str,
        group: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        max: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// The number of live records in a group.
    async fn group_len(&self, table: &str, group: &str) -> Result<usize, StoreError>;

    /// Appends an event to a log (SSE resumption) and returns its sequence number: 1 for the first
    /// event of a log, strictly increasing, unique across instances. Only the last `keep` events
    /// are kept (0 acts as 1); the whole log, numbering included, expires `ttl` after its last
    /// append, so a log that expired starts again at 1.
    async fn append(&self, log: &str, event: &[u8], keep: usize, ttl: Duration) -> Result<u64, StoreError>;
    /// The kept events numbered above `after`, in order.
    async fn read_after(&self, log: &str, after: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// Sends a message to every subscriber of `channel` in every process sharing the store, at
    /// most once: a subscriber that lags, or a Redis connection that is down, loses messages.
    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), StoreError>;
    /// Receives what is published on `channel` from now on, until the subscription is dropped.
    fn subscribe(&self, channel: &str) -> Subscription;
}

/// Messages of one channel, from [`Store::subscribe`]. Dropping it unsubscribes.
pub struct Subscription {
    // `None` only while dropping, so the hub sees the receiver gone when it counts them.
    rx: Option<broadcast::Receiver<Vec<u8>>>,
    channel: String,
    hub: Weak<Hub>,
}

impl Subscription {
    /// The next message; `None` once the store is gone. Messages missed by lagging are skipped.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let rx = self.rx.as_mut()?;
        loop {
            match rx.recv().await {
                Ok(message) => return Some(message),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut channels = hub.lock();
            // Drop the receiver under the lock, so two subscriptions dropping at once cannot both
            // see the other still there and leave the channel behind.
            self.rx = None;
            if channels.get(&self.channel).is_some_and(|tx| tx.receiver_count() == 0) {
                channels.remove(&self.channel);
            }
        }
    }
}

/// In-process fan-out of channel messages: one broadcast sender per channel with subscribers,
/// removed when its last subscription drops. Every backend delivers through one (Redis feeds it
/// from its single pub/sub connection).
#[derive(Default)]
pub(crate) struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>,
}

impl Hub {
    /// Messages a subscriber may fall behind by before it skips some. Channels are few (one for
    /// every session's signals, one for list changes), each with one subscriber per process.
    const CAPACITY: usize = 1024;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Vec<u8>>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn subscribe(self: &Arc<Self>, channel: &str) -> Subscription {
        let rx =
            self.lock().entry(channel.to_owned()).or_insert_with(|| broadcast::channel(Self::CAPACITY).0).subscribe();
        Subscription { rx: Some(rx), channel: channel.to_owned(), hub: Arc::downgrade(self) }
    }

    /// Delivers to this process's subscribers of `channel`, if any.
    pub(crate) fn deliver(&self, channel: &str, message: &[u8]) {
        if let Some(tx) = self.lock().get(channel) {
            // An error only means no receiver is left, which is not a failure of the publisher.
            let _ = tx.send(message.to_vec());
        }
    }

    /// Channels with subscribers in this process (for tests of the clean-up).
    pub(crate) fn channel_count(&self) -> usize {
        self.lock().len()
    }
}

/// A store whose every operation is timed into `mcp_auth.store.operation.duration`
/// ([`crate::observe::store_timer`]). The composition root wraps the store in it only while
/// metrics are recorded, so without the admin listener no operation pays for a clock read.
pub struct Timed(pub Arc<dyn Store>);

impl Timed {
    /// `store` itself when metrics are off, else `store` timed.
    pub fn wrap(store: Arc<dyn Store>) -> Arc<dyn Store> {
        if crate::observe::enabled() { Arc::new(Timed(store)) } else { store }
    }

    async fn time<T>(
        &self,
        operation: &'static str,
        run: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let timer = crate::observe::store_timer(self.0.kind(), operation);
        let result = run.await;
        timer.finish(result.is_ok());
        result
    }
}

#[async_trait]
impl Store for Timed {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn shared(&self) -> bool {
        self.0.shared()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.time("ping", self.0.ping()).await
    }
    async fn put(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.time("put", self.0.put(table, key, value, ttl)).await
    }
    async fn put_new(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.time("put_new", self.0.put_new(table, key, value, ttl)).await
    }
    async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.time("get", self.0.get(table, key)).await
    }
    async fn take(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.time("take", self.0.take(table, key)).await
    }
    async fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        self.time("delete", self.0.delete(table, key)).await
    }
    async fn touch(&self, table: &str, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.time("touch", self.0.touch(table, key, ttl)).await
    }
    async fn put_spendable(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.time("put_spendable", self.0.put_spendable(table, key, value, ttl)).await
    }
    async fn spend(&self, table: &str, key: &str) -> Result<Spent, StoreError> {
        self.time("spend", self.0.spend(table, key)).await
    }
    async fn count(&self, table: &str, key: &str, window: Duration) -> Result<Counted, StoreError> {
        self.time("count", self.0.count(table, key, window)).await
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
        self.time("put_in_group", self.0.put_in_group(table, group, key, value, ttl, max)).await
    }
    async fn group_len(&self, table: &str, group: &str) -> Result<usize, StoreError> {
        self.time("group_len", self.0.group_len(table, group)).await
    }
    async fn append(&self, log: &str, event: &[u8], keep: usize, ttl: Duration) -> Result<u64, StoreError> {
        self.time("append", self.0.append(log, event, keep, ttl)).await
    }
    async fn read_after(&self, log: &str, after: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.time("read_after", self.0.read_after(log, after)).await
    }
    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), StoreError> {
        self.time("publish", self.0.publish(channel, message)).await
    }
    fn subscribe(&self, channel: &str) -> Subscription {
        self.0.subscribe(channel)
    }
}

/// Table names become part of keys (`table:key` in Redis): they must not contain `:`.
pub(crate) fn check_table(table: &str) -> Result<(), StoreError> {
    if table.is_empty() || table.contains(':') {
        return Err(StoreError::Invalid(format!("table name `{table}` must be non-empty and without `:`")));
    }
    Ok(())
}

/// A duration in milliseconds, at least 1 (a zero TTL would be no expiry to Redis, and an error),
/// at most about a century (so adding it to the clock cannot overflow anywhere).
pub(crate) fn millis(ttl: Duration) -> u64 {
    const CENTURY_MS: u128 = 100 * 365 * 24 * 3600 * 1000;
    ttl.as_millis().clamp(1, CENTURY_MS) as u64
}

/// The `memory:` backend: one process, lost on restart. A mutex around plain maps; every
/// operation holds it once, so every operation is atomic across threads. Expiry is checked on
/// every access, and expired entries are swept by whichever operation first sees that a minute of
/// clock time has passed since the last sweep (no background task, and deterministic in tests).
pub struct MemoryStore {
    state: Mutex<MemoryState>,
    clock: Clock,
    hub: Arc<Hub>,
}

#[derive(Default)]
struct MemoryState {
    tables: HashMap<String, MemoryTable>,
    logs: HashMap<String, MemoryLog>,
    /// Recency of group members: larger is more recent.
    tick: u64,
    next_sweep: u64,
}

#[derive(Default)]
struct MemoryTable {
    records: HashMap<String, MemoryRecord>,
    /// Group name -> members by recency (tick -> key).
    groups: HashMap<String, BTreeMap<u64, String>>,
}

struct MemoryRecord {
    value: Vec<u8>,
    expires_at: u64,
    /// `None` for plain records and counters; `Some(spent)` for spendable ones.
    spent: Option<bool>,
    /// The group and the record's tick in it.
    group: Option<(String, u64)>,
}

struct MemoryLog {
    last_seq: u64,
    events: VecDeque<(u64, Vec<u8>)>,
    expires_at: u64,
}

const SWEEP_EVERY_MS: u64 = 60_000;

impl MemoryStore {
    /// An empty store on the runtime's clock ([`runtime_clock`]).
    pub fn new() -> MemoryStore {
        MemoryStore::with_clock(runtime_clock())
    }

    /// An empty store on `clock`.
    pub fn with_clock(clock: Clock) -> MemoryStore {
        MemoryStore { state: Mutex::new(MemoryState::default()), clock, hub: Arc::default() }
    }

    /// Runs `f` on the state under the lock, with the current time, after a sweep if one is due.
    fn with<T>(&self, f: impl FnOnce(&mut MemoryState, u64) -> T) -> T {
        let now = (self.clock)();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now >= state.next_sweep {
            state.sweep(now);
            state.next_sweep = now.saturating_add(SWEEP_EVERY_MS);
        }
        f(&mut state, now)
    }

    /// Channels with subscribers (for tests of the clean-up).
    pub fn channel_count(&self) -> usize {
        self.hub.channel_count()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryState {
    fn table(&mut self, table: &str) -> &mut MemoryTable {
        self.tables.entry(table.to_owned()).or_default()
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn sweep(&mut self, now: u64) {
        for table in self.tables.values_mut() {
            let expired: Vec<String> =
                table.records.iter().filter(|(_, r)| r.expires_at <= now).map(|(k, _)| k.clone()).collect();
            for key in expired {
                table.remove(&key);
            }
        }
        self.tables.retain(|_, t| !t.records.is_empty());
        self.logs.retain(|_, log| log.expires_at > now);
    }
}

impl MemoryTable {
    /// The live record under `key`; an expired one is removed on the way.
    fn live(&mut self, key: &str, now: u64) -> Option<&mut MemoryRecord> {
        if self.records.get(key).is_some_and(|r| r.expires_at <= now) {
            self.remove(key);
        }
        self.records.get_mut(key)
    }

    /// Removes a record and its group membership.
    fn remove(&mut self, key: &str) -> Option<MemoryRecord> {
        let record = self.records.remove(key)?;
        if let Some((group, tick)) = &record.group
            && let Some(members) = self.groups.get_mut(group)
        {
            members.remove(tick);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
        Some(record)
    }

    fn insert(&mut self, key: &str, record: MemoryRecord) {
        self.remove(key);
        if let Some((group, tick)) = &record.group {
            self.groups.entry(group.clone()).or_default().insert(*tick, key.to_owned());
        }
        self.records.insert(key.to_owned(), record);
    }

    /// Drops the group's expired members and returns the live ones, least recent first.
    fn live_members(&mut self, group: &str, now: u64) -> Vec<String> {
        let members: Vec<String> = self.groups.get(group).map(|m| m.values().cloned().collect()).unwrap_or_default();
        members.into_iter().filter(|key| self.live(key, now).is_some()).collect()
    }
}

fn plain(value: &[u8], expires_at: u64) -> MemoryRecord {
    MemoryRecord { value: value.to_vec(), expires_at, spent: None, group: None }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn shared(&self) -> bool {
        false
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn put(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_table(table)?;
        self.with(|s, now| s.table(table).insert(key, plain(value, now + millis(ttl))));
        Ok(())
    }

    async fn put_new(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        check_table(table)?;
        Ok(self.with(|s, now| {
            let t = s.table(table);
            if t.live(key, now).is_some() {
                return false;
            }
            t.insert(key, plain(value, now + millis(ttl)));
            true
        }))
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        Ok(self.with(|s, now| s.table(table).live(key, now).map(|r| r.value.clone())))
    }

    async fn take(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        Ok(self.with(|s, now| {
            let t = s.table(table);
            t.live(key, now)?;
            t.remove(key).map(|r| r.value)
        }))
    }

    async fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.take(table, key).await?.is_some())
    }

    async fn touch(&self, table: &str, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        check_table(table)?;
        Ok(self.with(|s, now| {
            let tick = s.next_tick();
            let t = s.table(table);
            if t.live(key, now).is_none() {
                return false;
            }
            let MemoryTable { records, groups } = t;
            let Some(record) = records.get_mut(key) else { return false };
            record.expires_at = now + millis(ttl);
            if let Some((group, old)) = &mut record.group {
                let old = std::mem::replace(old, tick);
                let members = groups.entry(group.clone()).or_default();
                members.remove(&old);
                members.insert(tick, key.to_owned());
            }
            true
        }))
    }

    async fn put_spendable(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_table(table)?;
        self.with(|s, now| {
            s.table(table).insert(key, MemoryRecord { spent: Some(false), ..plain(value, now + millis(ttl)) })
        });
        Ok(())
    }

    async fn spend(&self, table: &str, key: &str) -> Result<Spent, StoreError> {
        check_table(table)?;
        self.with(|s, now| match s.table(table).live(key, now) {
            None => Ok(Spent::Unknown),
            Some(MemoryRecord { spent: None, .. }) => {
                Err(StoreError::Invalid(format!("spend of `{table}` record that is not spendable")))
            }
            Some(MemoryRecord { spent: Some(true), value, .. }) => Ok(Spent::Replayed(value.clone())),
            Some(MemoryRecord { spent: Some(spent), value, .. }) => {
                *spent = true;
                Ok(Spent::Fresh(value.clone()))
            }
        })
    }

    async fn count(&self, table: &str, key: &str, window: Duration) -> Result<Counted, StoreError> {
        check_table(table)?;
        self.with(|s, now| {
            let t = s.table(table);
            if let Some(record) = t.live(key, now) {
                let count = parse_count(&record.value).ok_or_else(|| not_a_counter(table))? + 1;
                record.value = count.to_string().into_bytes();
                return Ok(Counted { count, resets_in: Duration::from_millis(record.expires_at - now) });
            }
            let ms = millis(window);
            t.insert(key, plain(b"1", now + ms));
            Ok(Counted { count: 1, resets_in: Duration::from_millis(ms) })
        })
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
        check_table(table)?;
        Ok(self.with(|s, now| {
            let tick = s.next_tick();
            let t = s.table(table);
            t.insert(key, MemoryRecord { group: Some((group.to_owned(), tick)), ..plain(value, now + millis(ttl)) });
            // Within the bound, expired members or not, there is nothing to evict (and no scan).
            if t.groups.get(group).map_or(0, BTreeMap::len) <= max.max(1) {
                return Vec::new();
            }
            let members = t.live_members(group, now);
            let excess = members.len().saturating_sub(max.max(1));
            let evicted: Vec<String> = members.into_iter().take(excess).collect();
            for key in &evicted {
                t.remove(key);
            }
            evicted
        }))
    }

    async fn group_len(&self, table: &str, group: &str) -> Result<usize, StoreError> {
        check_table(table)?;
        Ok(self.with(|s, now| s.table(table).live_members(group, now).len()))
    }

    async fn append(&self, log: &str, event: &[u8], keep: usize, ttl: Duration) -> Result<u64, StoreError> {
        Ok(self.with(|s, now| {
            let entry = s.logs.entry(log.to_owned()).or_insert(MemoryLog {
                last_seq: 0,
                events: VecDeque::new(),
                expires_at: 0,
            });
            if entry.expires_at <= now {
                entry.last_seq = 0;
                entry.events.clear();
            }
            entry.last_seq += 1;
            entry.events.push_back((entry.last_seq, event.to_vec()));
            while entry.events.len() > keep.max(1) {
                entry.events.pop_front();
            }
            entry.expires_at = now + millis(ttl);
            entry.last_seq
        }))
    }

    async fn read_after(&self, log: &str, after: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self.with(|s, now| match s.logs.get(log) {
            Some(entry) if entry.expires_at > now => {
                entry.events.iter().filter(|(seq, _)| *seq > after).cloned().collect()
            }
            _ => Vec::new(),
        }))
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), StoreError> {
        self.hub.deliver(channel, message);
        Ok(())
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        self.hub.subscribe(channel)
    }
}

/// A counter's value: its count in decimal ASCII.
pub(crate) fn parse_count(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

pub(crate) fn not_a_counter(table: &str) -> StoreError {
    StoreError::Invalid(format!("count of a `{table}` record that is not a counter"))
}
