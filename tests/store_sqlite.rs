//! The store contract on SQLite (a temporary file), and what only SQLite has: durability across a
//! reopen, the schema version, the background sweep, and all-or-nothing operations.

#[macro_use]
#[path = "common/store_contract.rs"]
mod store_contract;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_server::store::{Spent, Store, StoreError};
use mcp_auth_server::store_sqlite::SqliteStore;
use store_contract::{Backend, ManualClock, TTL, Time};

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("mcp-auth-store-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        // A directory that does not exist yet: open creates it.
        self.0.join("state").join("mcp-auth.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

async fn sqlite_backend() -> Backend {
    let dir = TempDir::new();
    let clock = ManualClock::new();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_with_clock(&dir.db(), clock.clock()).await.expect("open"));
    Backend { other: Arc::clone(&store), store, time: Time::Manual(clock), guard: Box::new(dir) }
}

store_contract_tests!(sqlite_backend);

/// A second connection to the file, as an operator's `sqlite3` shell would have.
fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("raw connection");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn rows(path: &Path) -> i64 {
    raw(path)
        .query_row("SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM logs)", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn data_survives_closing_and_reopening_the_file() {
    let dir = TempDir::new();
    let clock = ManualClock::new();
    {
        let store = SqliteStore::open_with_clock(&dir.db(), clock.clock()).await.unwrap();
        store.put("clients", "c1", b"registration", Duration::from_secs(3600)).await.unwrap();
        store.put_spendable("refresh", "r1", b"grant", Duration::from_secs(3600)).await.unwrap();
        assert!(matches!(store.spend("refresh", "r1").await.unwrap(), Spent::Fresh(_)));
        store.put_in_group("sessions", "alice", "s1", b"session", Duration::from_secs(3600), 2).await.unwrap();
        store.append("stream", b"e1", 10, Duration::from_secs(3600)).await.unwrap();
        store.put("codes", "short", b"code", Duration::from_secs(60)).await.unwrap();
    }
    clock.advance(Duration::from_secs(120));
    let store = SqliteStore::open_with_clock(&dir.db(), clock.clock()).await.unwrap();
    assert_eq!(store.get("clients", "c1").await.unwrap().as_deref(), Some(&b"registration"[..]));
    assert_eq!(store.spend("refresh", "r1").await.unwrap(), Spent::Replayed(b"grant".to_vec()), "still spent");
    assert_eq!(store.group_len("sessions", "alice").await.unwrap(), 1);
    assert_eq!(store.append("stream", b"e2", 10, Duration::from_secs(3600)).await.unwrap(), 2, "numbering goes on");
    assert_eq!(store.get("codes", "short").await.unwrap(), None, "expired while closed");
    // Group recency continues across the reopen: the new member is the most recent.
    store.put_in_group("sessions", "alice", "s2", b"session", Duration::from_secs(3600), 2).await.unwrap();
    assert_eq!(
        store.put_in_group("sessions", "alice", "s3", b"session", Duration::from_secs(3600), 2).await.unwrap(),
        vec!["s1".to_owned()]
    );
}

#[tokio::test(start_paused = true)]
async fn a_background_sweep_deletes_expired_rows_every_minute() {
    let dir = TempDir::new();
    let clock = ManualClock::new();
    let store = SqliteStore::open_with_clock(&dir.db(), clock.clock()).await.unwrap();
    store.put("t", "a", b"v", Duration::from_secs(1)).await.unwrap();
    store.put("t", "b", b"v", Duration::from_secs(3600)).await.unwrap();
    store.append("log", b"e", 10, Duration::from_secs(1)).await.unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(rows(&dir.db()), 3, "expired rows stay until the sweep");
    // Paused tokio time: the sleep returns at once, past the sweep's first tick.
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_secs(61)).await;
        if rows(&dir.db()) == 1 {
            break;
        }
    }
    assert_eq!(rows(&dir.db()), 1, "only the live record is left");
    assert_eq!(store.sweep().await.unwrap(), 0);
}

#[tokio::test]
async fn a_file_with_a_newer_schema_is_refused_with_the_setting_named() {
    let dir = TempDir::new();
    drop(SqliteStore::open(&dir.db()).await.unwrap());
    raw(&dir.db()).execute_batch("PRAGMA user_version = 99").unwrap();
    let Err(err) = SqliteStore::open(&dir.db()).await else { panic!("opened a newer schema") };
    let err = err.to_string();
    assert!(err.contains("storage.url") && err.contains("99"), "{err}");
}

#[tokio::test]
async fn an_unopenable_path_is_an_error_naming_the_setting() {
    let dir = TempDir::new();
    let blocker = dir.0.join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let Err(err) = SqliteStore::open(&blocker.join("db.sqlite")).await else { panic!("opened") };
    assert!(matches!(err, StoreError::Unavailable(_)));
    assert!(err.to_string().contains("storage.url"), "{err}");
}

/// A failure in the middle of an operation (here a trigger that aborts the second statement of
/// `append`, as a full disk would) leaves nothing of it written.
#[tokio::test]
async fn an_operation_that_fails_half_way_leaves_nothing_written() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.db()).await.unwrap();
    store.append("boom", b"e1", 10, TTL).await.unwrap();
    raw(&dir.db())
        .execute_batch(
            "CREATE TRIGGER fail_event BEFORE INSERT ON events WHEN NEW.event = X'626164'
               BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;
             CREATE TRIGGER fail_eviction BEFORE DELETE ON records WHEN OLD.key = 'victim'
               BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )
        .unwrap();
    // append: the log row was updated (seq 2) before the event insert failed.
    assert!(matches!(store.append("boom", b"bad", 10, TTL).await, Err(StoreError::Unavailable(_))));
    assert_eq!(store.append("boom", b"e2", 10, TTL).await.unwrap(), 2, "the failed append used no number");
    assert_eq!(store.read_after("boom", 0).await.unwrap().len(), 2);
    // put_in_group: the new record was written before evicting `victim` failed.
    store.put_in_group("sessions", "g", "victim", b"v", TTL, 1).await.unwrap();
    assert!(store.put_in_group("sessions", "g", "newcomer", b"v", TTL, 1).await.is_err());
    assert_eq!(store.get("sessions", "newcomer").await.unwrap(), None, "the new record was rolled back");
    assert_eq!(store.get("sessions", "victim").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.group_len("sessions", "g").await.unwrap(), 1);
}

#[tokio::test]
async fn a_damaged_row_is_an_error_not_a_panic() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.db()).await.unwrap();
    store.put_spendable("codes", "k", b"v", TTL).await.unwrap();
    store.put("logins", "n", b"1", TTL).await.unwrap();
    let conn = raw(&dir.db());
    conn.execute_batch(
        "UPDATE records SET spent = 'yes' WHERE key = 'k'; UPDATE records SET value = 'x' WHERE key = 'n'",
    )
    .unwrap();
    assert!(matches!(store.spend("codes", "k").await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.count("logins", "n", TTL).await, Err(StoreError::Invalid(_))));
    conn.execute_batch("UPDATE records SET value = 42 WHERE key = 'k'").unwrap();
    assert!(matches!(store.get("codes", "k").await, Err(StoreError::Invalid(_))));
}

#[tokio::test]
async fn in_process_channels_are_forgotten_when_their_last_subscriber_drops() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.db()).await.unwrap();
    let sub = store.subscribe("c");
    assert_eq!(store.channel_count(), 1);
    drop(sub);
    assert_eq!(store.channel_count(), 0);
}
