//! The [`Store`] contract on Redis (feature `store-redis`): state shared by several instances of
//! the server behind a load balancer, and kept across their restarts.
//!
//! How it holds the contract:
//! - commands go through one `ConnectionManager`: a multiplexed connection (concurrent requests
//!   share it) that reconnects by itself after Redis restarts; while Redis is down, operations
//!   fail with [`StoreError::Unavailable`] after a short retry;
//! - every operation that reads and writes is ONE Lua script, and Redis runs a script atomically:
//!   nothing else runs between its commands, whichever instance sent it. Scripts are sent by
//!   SHA (`EVALSHA`) and re-sent in full when Redis answers `NOSCRIPT` (after a restart);
//! - expiry is Redis's own (`PEXPIRE`, millisecond TTLs);
//! - publish/subscribe: ONE pub/sub connection per store, `PSUBSCRIBE mcp-auth:c:*`, fanned out to
//!   this process's subscribers of each channel, so thousands of channels cost one connection. It
//!   pings every few seconds, and reconnects and subscribes again after a connection loss
//!   (messages published meanwhile are lost: delivery is at most once).
//!
//! Layout, every key under `mcp-auth:` (a standalone Redis or a primary with replicas; the
//! scripts compute some key names themselves, so Redis Cluster is not supported):
//! - `mcp-auth:r:{table}:{key}` — a record: a hash with `v` (the value), `s` (`0`/`1`: unspent or
//!   spent, spendable records only) and `g` (its group, grouped records only);
//! - `mcp-auth:g:{table}:{group}` — a bounded group: a sorted set of keys scored by recency;
//! - `mcp-auth:tick` — the recency counter of all groups (`INCR`);
//! - `mcp-auth:s:{log}` and `mcp-auth:l:{log}` — an event log's last number (`INCR`) and its
//!   events (a stream with IDs `{seq}-0`, trimmed to the last `keep` with `MAXLEN`);
//! - `mcp-auth:c:{channel}` — a pub/sub channel.

use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Client, ErrorKind, RedisError, Script};

use crate::store::{Counted, Hub, Spent, StorageUrl, Store, StoreError, Subscription, check_table, millis};

const CHANNELS: &str = "mcp-auth:c:";
const CHANNEL_PATTERN: &str = "mcp-auth:c:*";
const TICK: &str = "mcp-auth:tick";

/// Connecting, and waiting for one reply: a Redis that takes longer is treated as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the pub/sub connection proves it is alive, and the pause between reconnections.
const PUBSUB_PING_EVERY: Duration = Duration::from_secs(5);
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

fn record_key(table: &str, key: &str) -> String {
    format!("mcp-auth:r:{table}:{key}")
}
fn record_prefix(table: &str) -> String {
    format!("mcp-auth:r:{table}:")
}
fn group_key(table: &str, group: &str) -> String {
    format!("mcp-auth:g:{table}:{group}")
}
fn group_prefix(table: &str) -> String {
    format!("mcp-auth:g:{table}:")
}

/// The Redis backend. See the module documentation.
pub struct RedisStore {
    conn: ConnectionManager,
    hub: Arc<Hub>,
    listener: tokio::task::JoinHandle<()>,
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://` or `rediss://`) and subscribes to this store's
    /// channels. Errors name `storage.url` (without its password).
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let shown = StorageUrl::Redis(url.to_owned()).redacted();
        let fail = |what: &str, e: RedisError| {
            StoreError::Unavailable(format!("storage.url `{shown}`: {what}: {}", describe(&e)))
        };
        let client = Client::open(url).map_err(|e| fail("not a usable Redis URL", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // While Redis is away, an operation waits for at most a few quick reconnection
            // attempts (about a second) before failing; the next operation tries again.
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let mut conn =
            client.get_connection_manager_with_config(config).await.map_err(|e| fail("cannot connect", e))?;
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(|e| fail("no answer to PING", e))?;
        let pubsub = subscribe_channels(&client).await.map_err(|e| fail("cannot subscribe", e))?;
        let hub = Arc::new(Hub::default());
        let listener = tokio::spawn(listen(client, pubsub, Arc::downgrade(&hub)));
        Ok(RedisStore { conn, hub, listener })
    }

    /// Channels with subscribers in this process (for tests of the clean-up).
    pub fn channel_count(&self) -> usize {
        self.hub.channel_count()
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A pub/sub connection subscribed to every channel of the store.
async fn subscribe_channels(client: &Client) -> Result<PubSub, RedisError> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(CHANNEL_PATTERN).await?;
        Ok(pubsub)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, connect).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "pub/sub connection"))),
    }
}

/// Delivers channel messages to the hub's subscribers, for as long as the store lives:
/// reconnecting (with backoff) and subscribing again whenever the connection is lost.
async fn listen(client: Client, first: PubSub, hub: Weak<Hub>) {
    let mut next = Some(first);
    let mut backoff = RECONNECT_MIN;
    loop {
        let pubsub = match next.take() {
            Some(pubsub) => pubsub,
            None => match subscribe_channels(&client).await {
                Ok(pubsub) => {
                    tracing::info!("Redis pub/sub connection re-established");
                    backoff = RECONNECT_MIN;
                    pubsub
                }
                Err(e) => {
                    tracing::debug!(error = %describe(&e), "Redis pub/sub reconnection failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    continue;
                }
            },
        };
        let (mut sink, mut messages) = pubsub.split();
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PUBSUB_PING_EVERY, PUBSUB_PING_EVERY);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let Some(hub) = hub.upgrade() else { return };
                    if let Some(channel) = message.get_channel_name().strip_prefix(CHANNELS) {
                        hub.deliver(channel, message.get_payload_bytes());
                    }
                }
                _ = ping.tick() => {
                    if hub.strong_count() == 0 {
                        return;
                    }
                    // A connection that stopped answering (a half-open TCP connection after a
                    // network failure) is replaced rather than waited on forever.
                    let answered = tokio::time::timeout(RESPONSE_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        tracing::warn!("Redis pub/sub connection lost; reconnecting (messages published meanwhile are lost)");
    }
}

/// A Redis error as [`StoreError`]. Replies that fail to decode are reported without their
/// content, which could be a record value.
fn store_error(err: RedisError) -> StoreError {
    match err.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            StoreError::Invalid("redis: a reply did not have the expected shape".to_owned())
        }
        _ if err.code() == Some("MCPAUTH") => {
            StoreError::Invalid(format!("redis: {}", err.detail().unwrap_or("a record of another kind")))
        }
        _ if err.code() == Some("WRONGTYPE") => {
            StoreError::Invalid("redis: a key holds a value of another type (WRONGTYPE)".to_owned())
        }
        _ => StoreError::Unavailable(format!("redis: {}", describe(&err))),
    }
}

/// An error's text, except for kinds whose text may quote a reply or the URL.
fn describe(err: &RedisError) -> String {
    match err.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType | ErrorKind::InvalidClientConfig => {
            err.category().to_owned()
        }
        _ => err.to_string(),
    }
}

/// Upsert of a plain (ARGV[3] = 0) or spendable (1) record, leaving any group it was in.
/// KEYS: record. ARGV: value, ttl ms, spendable, group prefix, key.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local g = redis.call('HGET', KEYS[1], 'g')
if g then redis.call('ZREM', ARGV[4] .. g, ARGV[5]) end
redis.call('DEL', KEYS[1])
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', '0')
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1",
    )
});

/// Writes a plain record unless one is live. KEYS: record. ARGV: value, ttl ms.
static PUT_NEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1",
    )
});

/// Deletes a record and its group membership, returning its value (nil if absent).
/// KEYS: record. ARGV: group prefix, key.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return false end
local g = redis.call('HGET', KEYS[1], 'g')
if g then redis.call('ZREM', ARGV[1] .. g, ARGV[2]) end
redis.call('DEL', KEYS[1])
return v",
    )
});

/// New expiry, and most recent in its group. KEYS: record, tick. ARGV: ttl ms, group prefix, key.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
local g = redis.call('HGET', KEYS[1], 'g')
if g then
  local gk = ARGV[2] .. g
  redis.call('ZADD', gk, redis.call('INCR', KEYS[2]), ARGV[3])
  if redis.call('PTTL', gk) < tonumber(ARGV[1]) then redis.call('PEXPIRE', gk, ARGV[1]) end
end
return 1",
    )
});

/// {0, ''} unknown, {1, value} fresh (now spent), {2, value} replayed. KEYS: record.
static SPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local r = redis.call('HMGET', KEYS[1], 'v', 's')
if not r[1] then return {0, ''} end
if not r[2] then return redis.error_reply('MCPAUTH spend of a record that is not spendable') end
if r[2] == '0' then
  redis.call('HSET', KEYS[1], 's', '1')
  return {1, r[1]}
end
return {2, r[1]}",
    )
});

/// {count, ms until the window ends}. KEYS: record. ARGV: window ms.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.pcall('HINCRBY', KEYS[1], 'v', 1)
if type(n) == 'table' and n.err then
  return redis.error_reply('MCPAUTH count of a record that is not a counter')
end
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {n, t}",
    )
});

/// Upsert into a group, then trim it to `max` live members; returns the evicted keys, oldest
/// first. KEYS: record, group, tick. ARGV: value, ttl ms, max, key, group name, group prefix,
/// record prefix.
static PUT_IN_GROUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = redis.call('HGET', KEYS[1], 'g')
if old and old ~= ARGV[5] then redis.call('ZREM', ARGV[6] .. old, ARGV[4]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'g', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
local max = tonumber(ARGV[3])
local evicted = {}
if redis.call('ZCARD', KEYS[2]) > max then
  -- Forget members whose record expired, was deleted, or now belongs elsewhere.
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('HGET', ARGV[7] .. m, 'g') ~= ARGV[5] then redis.call('ZREM', KEYS[2], m) end
  end
  local excess = redis.call('ZCARD', KEYS[2]) - max
  if excess > 0 then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
      redis.call('DEL', ARGV[7] .. m)
      redis.call('ZREM', KEYS[2], m)
      table.insert(evicted, m)
    end
  end
end
return evicted",
    )
});

/// Live members of a group (forgetting the others). KEYS: group. ARGV: group name, record prefix.
static GROUP_LEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', ARGV[2] .. m, 'g') == ARGV[1] then n = n + 1 else redis.call('ZREM', KEYS[1], m) end
end
return n",
    )
});

/// Appends an event; returns its number. KEYS: seq, stream. ARGV: event, keep, ttl ms.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local seq = redis.call('INCR', KEYS[1])
if seq == 1 then redis.call('DEL', KEYS[2]) end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], string.format('%d-0', seq), 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return seq",
    )
});

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn shared(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING").query_async::<()>(&mut self.conn()).await.map_err(store_error)
    }

    async fn put(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_table(table)?;
        PUT.key(record_key(table, key))
            .arg(value)
            .arg(millis(ttl))
            .arg(0)
            .arg(group_prefix(table))
            .arg(key)
            .invoke_async::<()>(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn put_new(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        check_table(table)?;
        PUT_NEW
            .key(record_key(table, key))
            .arg(value)
            .arg(millis(ttl))
            .invoke_async::<bool>(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        redis::cmd("HGET").arg(record_key(table, key)).arg("v").query_async(&mut self.conn()).await.map_err(store_error)
    }

    async fn take(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        TAKE.key(record_key(table, key))
            .arg(group_prefix(table))
            .arg(key)
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.take(table, key).await?.is_some())
    }

    async fn touch(&self, table: &str, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        check_table(table)?;
        TOUCH
            .key(record_key(table, key))
            .key(TICK)
            .arg(millis(ttl))
            .arg(group_prefix(table))
            .arg(key)
            .invoke_async::<bool>(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn put_spendable(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_table(table)?;
        PUT.key(record_key(table, key))
            .arg(value)
            .arg(millis(ttl))
            .arg(1)
            .arg(group_prefix(table))
            .arg(key)
            .invoke_async::<()>(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn spend(&self, table: &str, key: &str) -> Result<Spent, StoreError> {
        check_table(table)?;
        let (outcome, value): (i64, Vec<u8>) =
            SPEND.key(record_key(table, key)).invoke_async(&mut self.conn()).await.map_err(store_error)?;
        match outcome {
            0 => Ok(Spent::Unknown),
            1 => Ok(Spent::Fresh(value)),
            2 => Ok(Spent::Replayed(value)),
            _ => Err(StoreError::Invalid("redis: unexpected spend outcome".to_owned())),
        }
    }

    async fn count(&self, table: &str, key: &str, window: Duration) -> Result<Counted, StoreError> {
        check_table(table)?;
        let (count, resets_in_ms): (i64, i64) = COUNT
            .key(record_key(table, key))
            .arg(millis(window))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_error)?;
        Ok(Counted {
            count: u64::try_from(count).map_err(|_| StoreError::Invalid("redis: a negative count".to_owned()))?,
            resets_in: Duration::from_millis(resets_in_ms.max(0) as u64),
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
        PUT_IN_GROUP
            .key(record_key(table, key))
            .key(group_key(table, group))
            .key(TICK)
            .arg(value)
            .arg(millis(ttl))
            .arg(max.max(1))
            .arg(key)
            .arg(group)
            .arg(group_prefix(table))
            .arg(record_prefix(table))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn group_len(&self, table: &str, group: &str) -> Result<usize, StoreError> {
        check_table(table)?;
        GROUP_LEN
            .key(group_key(table, group))
            .arg(group)
            .arg(record_prefix(table))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn append(&self, log: &str, event: &[u8], keep: usize, ttl: Duration) -> Result<u64, StoreError> {
        APPEND
            .key(format!("mcp-auth:s:{log}"))
            .key(format!("mcp-auth:l:{log}"))
            .arg(event)
            .arg(keep.max(1))
            .arg(millis(ttl))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_error)
    }

    async fn read_after(&self, log: &str, after: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let Some(first) = after.checked_add(1) else { return Ok(Vec::new()) };
        let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
            .arg(format!("mcp-auth:l:{log}"))
            .arg(format!("{first}-0"))
            .arg("+")
            .query_async(&mut self.conn())
            .await
            .map_err(store_error)?;
        entries
            .into_iter()
            .map(|(id, mut fields)| {
                let seq = id.strip_suffix("-0").and_then(|seq| seq.parse().ok());
                match (seq, fields.len()) {
                    (Some(seq), 2) => Ok((seq, fields.swap_remove(1))),
                    _ => Err(StoreError::Invalid("redis: an event log entry of another shape".to_owned())),
                }
            })
            .collect()
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), StoreError> {
        redis::cmd("PUBLISH")
            .arg(format!("{CHANNELS}{channel}"))
            .arg(message)
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(store_error)
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        self.hub.subscribe(channel)
    }
}
