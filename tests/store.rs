//! The store contract on the `memory:` backend, and the `storage.url` setting.

#[macro_use]
#[path = "common/store_contract.rs"]
mod store_contract;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_server::Settings;
use mcp_auth_server::store::{MemoryStore, StorageUrl, Store};
use store_contract::{Backend, ManualClock, TTL, Time};

async fn memory_backend() -> Backend {
    let clock = ManualClock::new();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::with_clock(clock.clock()));
    Backend { other: Arc::clone(&store), store, time: Time::Manual(clock), guard: Box::new(()) }
}

store_contract_tests!(memory_backend);

#[tokio::test]
async fn a_channel_is_forgotten_when_its_last_subscriber_drops() {
    let store = MemoryStore::new();
    let first = store.subscribe("c");
    let second = store.subscribe("c");
    assert_eq!(store.channel_count(), 1);
    drop(first);
    assert_eq!(store.channel_count(), 1);
    drop(second);
    assert_eq!(store.channel_count(), 0);
}

#[tokio::test]
async fn a_subscription_ends_when_its_store_is_dropped() {
    let store = MemoryStore::new();
    let mut sub = store.subscribe("c");
    drop(store);
    assert_eq!(sub.recv().await, None);
}

#[tokio::test]
async fn the_periodic_sweep_forgets_expired_records_nobody_reads() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clock());
    store.put("t", "old", b"v", TTL).await.unwrap();
    store.append("log", b"e", 10, TTL).await.unwrap();
    clock.advance(Duration::from_secs(61));
    // Any operation after a minute sweeps; the expired record and log are then gone for good,
    // which the contract cannot observe, but the next put of the same key starts clean.
    store.put("t", "new", b"v", TTL).await.unwrap();
    assert_eq!(store.get("t", "old").await.unwrap(), None);
    assert_eq!(store.append("log", b"e", 10, TTL).await.unwrap(), 1);
}

#[test]
fn storage_urls_parse_into_their_three_forms() {
    assert_eq!(StorageUrl::parse("memory:").unwrap(), StorageUrl::Memory);
    assert_eq!(
        StorageUrl::parse("sqlite://data/mcp-auth.db").unwrap(),
        StorageUrl::Sqlite(PathBuf::from("data/mcp-auth.db"))
    );
    assert_eq!(
        StorageUrl::parse("sqlite:///var/lib/mcp-auth/db.sqlite").unwrap(),
        StorageUrl::Sqlite(PathBuf::from("/var/lib/mcp-auth/db.sqlite"))
    );
    assert_eq!(
        StorageUrl::parse("redis://127.0.0.1:6379/0").unwrap(),
        StorageUrl::Redis("redis://127.0.0.1:6379/0".to_owned())
    );
    assert_eq!(
        StorageUrl::parse(" rediss://cache.example:6380 ").unwrap(),
        StorageUrl::Redis("rediss://cache.example:6380".to_owned())
    );
}

#[test]
fn bad_storage_urls_are_errors_that_name_the_setting() {
    for bad in ["postgres://db/x", "sqlite://", "redis://", "redis://host/not-a-db", "memory", "data/x.db"] {
        let err = StorageUrl::parse(bad).expect_err(bad).to_string();
        assert!(err.contains("storage.url"), "{bad}: {err}");
    }
}

#[test]
fn a_redis_password_never_appears_in_errors_or_debug_output() {
    let url = StorageUrl::parse("redis://:s3cret@cache.example:6379/0").unwrap();
    assert!(!format!("{url:?} {url}").contains("s3cret"), "{url:?}");
    assert!(url.redacted().contains("***"));
    let err = StorageUrl::parse("redis://:s3cret@cache.example:6379/x").unwrap_err().to_string();
    assert!(!err.contains("s3cret"), "{err}");
    let err = StorageUrl::parse("redsi://:s3cret@cache.example").unwrap_err().to_string();
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn settings_default_to_automatic_storage_and_refuse_a_bad_scheme() {
    let settings = Settings::from_toml("").unwrap();
    assert_eq!(settings.storage.url, "");
    assert_eq!(settings.storage.parsed().unwrap(), None);
    let settings = Settings::from_toml("[storage]\nurl = \"sqlite://state/x.db\"\n").unwrap();
    assert_eq!(settings.storage.parsed().unwrap(), Some(StorageUrl::Sqlite(PathBuf::from("state/x.db"))));
    let err = Settings::from_toml("[storage]\nurl = \"mysql://db\"\n").unwrap_err().to_string();
    assert!(err.contains("storage.url"), "{err}");
    let err = Settings::from_toml("[storage]\nurl = \"memory:\"\nsize = 3\n").unwrap_err().to_string();
    assert!(err.contains("size"), "unknown keys are refused: {err}");
}
