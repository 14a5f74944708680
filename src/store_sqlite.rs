//! The [`Store`] contract on an SQLite file (feature `store-sqlite`): state survives a restart.
//!
//! For ONE instance: SQLite locks the file against other writers but knows nothing of other
//! processes' subscribers, so publish/subscribe stays in-process and several server processes on
//! one file would each see only their own messages. Several instances need `store_redis`.
//!
//! How it holds the contract:
//! - one connection behind a mutex, used on tokio's blocking pool, so no SQLite call runs on an
//!   async worker thread and our own operations never contend for SQLite's write lock;
//! - every operation is a single statement or one `BEGIN IMMEDIATE` transaction, so it is atomic
//!   across threads, and an operation that fails half-way (disk full, I/O error) leaves nothing
//!   written: the transaction rolls back when it is dropped without a commit;
//! - WAL journal with `synchronous = NORMAL`: a commit survives a crash or kill of the process
//!   (the goal: restarts), without an fsync per write (sessions are touched on every request). A
//!   power loss or OS crash may lose the last commits since the WAL was last synced: tokens issued
//!   just before are then unknown (clients sign in again), and a refresh token spent in that
//!   window could be spent once more. A deployment for which that matters uses Redis with
//!   `appendfsync always`;
//! - a busy timeout, for the moments another process (an operator's `sqlite3` shell, a backup)
//!   holds the lock;
//! - expiry: every read compares `expires_at` with the store's clock, and a background task
//!   deletes expired rows every minute, in batches (it ends when the store is dropped).
//!
//! The schema is created at open, and `PRAGMA user_version` records its version: a file written
//! by a newer schema is refused rather than misread.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::store::{
    Clock, Counted, Hub, Spent, Store, StoreError, Subscription, check_table, millis, not_a_counter, parse_count,
    system_clock,
};

/// The schema version this build reads and writes.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    tbl        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,           -- Unix milliseconds
    spent      INTEGER,                    -- NULL: not spendable; 0: unspent; 1: spent
    grp        TEXT,                       -- bounded group, if any
    tick       INTEGER NOT NULL DEFAULT 0, -- recency in the group: larger is more recent
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_expiry ON records (expires_at);
CREATE INDEX IF NOT EXISTS records_by_group ON records (tbl, grp, tick) WHERE grp IS NOT NULL;
CREATE TABLE IF NOT EXISTS logs (
    name       TEXT    PRIMARY KEY,
    last_seq   INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_expiry ON logs (expires_at);
CREATE TABLE IF NOT EXISTS events (
    name  TEXT    NOT NULL,
    seq   INTEGER NOT NULL,
    event BLOB    NOT NULL,
    PRIMARY KEY (name, seq)
) WITHOUT ROWID;
";

/// How often expired rows are deleted, and how many per statement (so the lock is held briefly).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_BATCH: i64 = 1000;

/// The SQLite backend. See the module documentation.
pub struct SqliteStore {
    db: Arc<Db>,
    hub: Arc<Hub>,
    sweeper: tokio::task::JoinHandle<()>,
}

struct Db {
    conn: Mutex<Conn>,
    clock: Clock,
}

struct Conn {
    conn: Connection,
    /// The last group recency handed out (continues from the file's largest at open).
    tick: i64,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database at `path`, on the system clock.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_clock(path, system_clock()).await
    }

    /// Opens the database at `path` with an injected clock (tests advance it instead of sleeping).
    /// Errors name `storage.url` and the file.
    pub async fn open_with_clock(path: &Path, clock: Clock) -> Result<SqliteStore, StoreError> {
        let owned = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || open_connection(&owned))
            .await
            .map_err(|e| StoreError::Unavailable(format!("storage.url: opening the SQLite database: {e}")))?
            .map_err(|problem| {
                StoreError::Unavailable(format!(
                    "storage.url `sqlite://{}`: cannot open the database: {problem}",
                    path.display()
                ))
            })?;
        let db = Arc::new(Db { conn: Mutex::new(conn), clock });
        let sweeper = tokio::spawn(sweep_forever(Arc::downgrade(&db)));
        Ok(SqliteStore { db, hub: Arc::default(), sweeper })
    }

    /// Deletes expired rows now; returns how many. The background task calls this every minute.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        sweep(&self.db).await
    }

    /// Channels with subscribers (for tests of the clean-up).
    pub fn channel_count(&self) -> usize {
        self.hub.channel_count()
    }

    /// Runs `op` with the connection on the blocking pool, with the current time.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Conn, i64) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        run(&self.db, op).await
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.sweeper.abort();
    }
}

async fn run<T: Send + 'static>(
    db: &Arc<Db>,
    op: impl FnOnce(&mut Conn, i64) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let db = Arc::clone(db);
    tokio::task::spawn_blocking(move || {
        // A panic while the lock was held can only have happened inside a transaction, which
        // rolled back as it unwound: the connection is consistent, so carry on with it.
        let mut conn = db.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let now = i64::try_from((db.clock)()).unwrap_or(i64::MAX);
        op(&mut conn, now)
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("sqlite: the blocking task failed: {e}")))?
}

async fn sweep_forever(db: Weak<Db>) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(db) = db.upgrade() else { return };
        if let Err(e) = sweep(&db).await {
            tracing::warn!(error = %e, "deleting expired rows from the SQLite store failed; retrying in a minute");
        }
    }
}

async fn sweep(db: &Arc<Db>) -> Result<u64, StoreError> {
    run(db, |c, now| {
        let mut deleted = 0;
        loop {
            let n = c.conn.execute(
                "DELETE FROM records WHERE (tbl, key) IN
                   (SELECT tbl, key FROM records WHERE expires_at <= ?1 LIMIT ?2)",
                params![now, SWEEP_BATCH],
            )?;
            deleted += n as u64;
            if (n as i64) < SWEEP_BATCH {
                break;
            }
        }
        let tx = c.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM events WHERE name IN (SELECT name FROM logs WHERE expires_at <= ?1)", [now])?;
        deleted += tx.execute("DELETE FROM logs WHERE expires_at <= ?1", [now])? as u64;
        tx.commit()?;
        Ok(deleted)
    })
    .await
}

/// Opens the file, sets the pragmas, and creates or checks the schema. Errors are for a person.
fn open_connection(path: &Path) -> Result<Conn, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    let mut conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(|e| e.to_string())?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("the journal could not be switched to WAL (it is `{mode}`)"));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL").map_err(|e| e.to_string())?;

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(|e| e.to_string())?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the file has schema version {version}, written by a newer build (this one knows {SCHEMA_VERSION})"
        ));
    }
    tx.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(|e| e.to_string())?;
    let tick: i64 =
        tx.query_row("SELECT coalesce(max(tick), 0) FROM records", [], |row| row.get(0)).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(Conn { conn, tick })
}

/// Errors from SQLite: a row that cannot be decoded is [`StoreError::Invalid`]; everything else
/// (busy, I/O, disk full, a read-only file) is [`StoreError::Unavailable`]. SQLite's messages name
/// columns and constraints, never bound values.
impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match err {
            E::FromSqlConversionFailure(..)
            | E::InvalidColumnType(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..) => StoreError::Invalid(format!("sqlite: a stored row could not be decoded: {err}")),
            _ => StoreError::Unavailable(format!("sqlite: {err}")),
        }
    }
}

fn expiry(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(millis(ttl) as i64)
}

/// Upserts a record as plain (`spent` NULL) or spendable (`spent` 0), outside any group.
const UPSERT: &str = "
INSERT INTO records (tbl, key, value, expires_at, spent, grp, tick) VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0)
ON CONFLICT (tbl, key) DO UPDATE SET
    value = excluded.value, expires_at = excluded.expires_at, spent = excluded.spent, grp = NULL, tick = 0";

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn shared(&self) -> bool {
        false
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c, _| Ok(c.conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    async fn put(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_table(table)?;
        let (table, key, value) = (table.to_owned(), key.to_owned(), value.to_vec());
        self.run(move |c, now| {
            c.conn.prepare_cached(UPSERT)?.execute(params![table, key, value, expiry(now, ttl), None::<i64>])?;
            Ok(())
        })
        .await
    }

    async fn put_new(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        check_table(table)?;
        let (table, key, value) = (table.to_owned(), key.to_owned(), value.to_vec());
        self.run(move |c, now| {
            // Replaces only an expired row (not yet swept): one statement, so atomic.
            let written = c
                .conn
                .prepare_cached(
                    "INSERT INTO records (tbl, key, value, expires_at, spent, grp, tick)
                     VALUES (?1, ?2, ?3, ?4, NULL, NULL, 0)
                     ON CONFLICT (tbl, key) DO UPDATE SET
                         value = excluded.value, expires_at = excluded.expires_at, spent = NULL, grp = NULL, tick = 0
                     WHERE records.expires_at <= ?5",
                )?
                .execute(params![table, key, value, expiry(now, ttl), now])?;
            Ok(written == 1)
        })
        .await
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        let (table, key) = (table.to_owned(), key.to_owned());
        self.run(move |c, now| {
            Ok(c.conn
                .prepare_cached("SELECT value FROM records WHERE tbl = ?1 AND key = ?2 AND expires_at > ?3")?
                .query_row(params![table, key, now], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    async fn take(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        let (table, key) = (table.to_owned(), key.to_owned());
        self.run(move |c, now| {
            let tx = c.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM records WHERE tbl = ?1 AND key = ?2 AND expires_at > ?3")?
                .query_row(params![table, key, now], |row| row.get(0))
                .optional()?;
            if value.is_some() {
                tx.prepare_cached("DELETE FROM records WHERE tbl = ?1 AND key = ?2")?.execute(params![table, key])?;
            }
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    async fn delete(&self, table: &str, key: &str) -> Result<bool, StoreError> {
        check_table(table)?;
        let (table, key) = (table.to_owned(), key.to_owned());
        self.run(move |c, now| {
            let deleted = c
                .conn
                .prepare_cached("DELETE FROM records WHERE tbl = ?1 AND key = ?2 AND expires_at > ?3")?
                .execute(params![table, key, now])?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn touch(&self, table: &str, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        check_table(table)?;
        let (table, key) = (table.to_owned(), key.to_owned());
        self.run(move |c, now| {
            let tick = c.tick + 1;
            let touched = c
                .conn
                .prepare_cached(
                    "UPDATE records SET expires_at = ?1, tick = CASE WHEN grp IS NULL THEN tick ELSE ?2 END
                     WHERE tbl = ?3 AND key = ?4 AND expires_at > ?5",
                )?
                .execute(params![expiry(now, ttl), tick, table, key, now])?;
            c.tick = tick;
            Ok(touched == 1)
        })
        .await
    }

    async fn put_spendable(&self, table: &str, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        check_table(table)?;
        let (table, key, value) = (table.to_owned(), key.to_owned(), value.to_vec());
        self.run(move |c, now| {
            c.conn.prepare_cached(UPSERT)?.execute(params![table, key, value, expiry(now, ttl), 0])?;
            Ok(())
        })
        .await
    }

    async fn spend(&self, table: &str, key: &str) -> Result<Spent, StoreError> {
        check_table(table)?;
        let (table, key) = (table.to_owned(), key.to_owned());
        self.run(move |c, now| {
            let tx = c.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(Vec<u8>, Option<i64>)> = tx
                .prepare_cached("SELECT value, spent FROM records WHERE tbl = ?1 AND key = ?2 AND expires_at > ?3")?
                .query_row(params![table, key, now], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let outcome = match row {
                None => Spent::Unknown,
                Some((value, Some(0))) => {
                    tx.prepare_cached("UPDATE records SET spent = 1 WHERE tbl = ?1 AND key = ?2")?
                        .execute(params![table, key])?;
                    Spent::Fresh(value)
                }
                Some((value, Some(1))) => Spent::Replayed(value),
                Some(_) => {
                    return Err(StoreError::Invalid(format!("spend of a `{table}` record that is not spendable")));
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn count(&self, table: &str, key: &str, window: Duration) -> Result<Counted, StoreError> {
        check_table(table)?;
        let (table, key) = (table.to_owned(), key.to_owned());
        self.run(move |c, now| {
            let tx = c.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(Vec<u8>, i64)> = tx
                .prepare_cached(
                    "SELECT value, expires_at FROM records WHERE tbl = ?1 AND key = ?2 AND expires_at > ?3",
                )?
                .query_row(params![table, key, now], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let counted = match row {
                Some((value, expires_at)) => {
                    let count = parse_count(&value).ok_or_else(|| not_a_counter(&table))? + 1;
                    tx.prepare_cached("UPDATE records SET value = ?1 WHERE tbl = ?2 AND key = ?3")?
                        .execute(params![count.to_string().into_bytes(), table, key])?;
                    Counted { count, resets_in: Duration::from_millis((expires_at - now) as u64) }
                }
                None => {
                    let ends = expiry(now, window);
                    tx.prepare_cached(UPSERT)?.execute(params![table, key, b"1".to_vec(), ends, None::<i64>])?;
                    Counted { count: 1, resets_in: Duration::from_millis((ends - now) as u64) }
                }
            };
            tx.commit()?;
            Ok(counted)
        })
        .await
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
        let (table, group, key, value) = (table.to_owned(), group.to_owned(), key.to_owned(), value.to_vec());
        let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        self.run(move |c, now| {
            let tick = c.tick + 1;
            let tx = c.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO records (tbl, key, value, expires_at, spent, grp, tick) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)
                 ON CONFLICT (tbl, key) DO UPDATE SET
                     value = excluded.value, expires_at = excluded.expires_at, spent = NULL,
                     grp = excluded.grp, tick = excluded.tick",
            )?
            .execute(params![table, key, value, expiry(now, ttl), group, tick])?;
            // Everything past the `max` most recent live members, most recent first.
            let mut evicted = tx
                .prepare_cached(
                    "SELECT key FROM records WHERE tbl = ?1 AND grp = ?2 AND expires_at > ?3
                     ORDER BY tick DESC LIMIT -1 OFFSET ?4",
                )?
                .query_map(params![table, group, now, max], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM records WHERE tbl = ?1 AND key = ?2")?;
                for victim in &evicted {
                    delete.execute(params![table, victim])?;
                }
            }
            tx.commit()?;
            c.tick = tick;
            evicted.reverse();
            Ok(evicted)
        })
        .await
    }

    async fn group_len(&self, table: &str, group: &str) -> Result<usize, StoreError> {
        check_table(table)?;
        let (table, group) = (table.to_owned(), group.to_owned());
        self.run(move |c, now| {
            let n: i64 = c
                .conn
                .prepare_cached("SELECT count(*) FROM records WHERE tbl = ?1 AND grp = ?2 AND expires_at > ?3")?
                .query_row(params![table, group, now], |row| row.get(0))?;
            Ok(n as usize)
        })
        .await
    }

    async fn append(&self, log: &str, event: &[u8], keep: usize, ttl: Duration) -> Result<u64, StoreError> {
        let (log, event) = (log.to_owned(), event.to_vec());
        let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
        self.run(move |c, now| {
            let tx = c.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last: Option<(i64, i64)> = tx
                .prepare_cached("SELECT last_seq, expires_at FROM logs WHERE name = ?1")?
                .query_row([&log], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let last_seq = match last {
                Some((seq, expires_at)) if expires_at > now => seq,
                Some(_) => {
                    // Expired but not yet swept: the log starts again.
                    tx.prepare_cached("DELETE FROM events WHERE name = ?1")?.execute([&log])?;
                    0
                }
                None => 0,
            };
            let seq = last_seq + 1;
            tx.prepare_cached(
                "INSERT INTO logs (name, last_seq, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, expires_at = excluded.expires_at",
            )?
            .execute(params![log, seq, expiry(now, ttl)])?;
            tx.prepare_cached("INSERT INTO events (name, seq, event) VALUES (?1, ?2, ?3)")?
                .execute(params![log, seq, event])?;
            tx.prepare_cached("DELETE FROM events WHERE name = ?1 AND seq <= ?2")?.execute(params![log, seq - keep])?;
            tx.commit()?;
            Ok(seq as u64)
        })
        .await
    }

    async fn read_after(&self, log: &str, after: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let log = log.to_owned();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.run(move |c, now| {
            let events = c
                .conn
                .prepare_cached(
                    "SELECT e.seq, e.event FROM events e JOIN logs l ON l.name = e.name
                     WHERE e.name = ?1 AND l.expires_at > ?2 AND e.seq > ?3 ORDER BY e.seq",
                )?
                .query_map(params![log, now, after], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(events)
        })
        .await
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), StoreError> {
        self.hub.deliver(channel, message);
        Ok(())
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        self.hub.subscribe(channel)
    }
}
