//! The store contract on a real Redis, started by each test on a free loopback port (Debian's
//! `redis-server`; the tests fail, not skip, without it), and what only Redis has: several
//! instances on one store, its own expiry, and surviving a Redis restart.
//!
//! These tests know the key layout documented in `store_redis` (to read TTLs with PTTL).

#[macro_use]
#[path = "common/store_contract.rs"]
mod store_contract;
#[path = "common/redis.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_auth_server::store::{Spent, Store, StoreError};
use mcp_auth_server::store_redis::RedisStore;
use redis_server::{RedisServer, free_port};
use store_contract::{Backend, Probe, TTL, Time, TtlProbe};

/// The remaining life of what `probe` names, as Redis reports it (PTTL), or `None` without one.
fn ttl_probe(url: String) -> TtlProbe {
    Arc::new(move |probe: Probe| {
        let url = url.clone();
        Box::pin(async move {
            let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
            let keys = match probe {
                Probe::Record { table, key } => vec![format!("mcp-auth:r:{table}:{key}")],
                Probe::Group { table, group } => vec![format!("mcp-auth:g:{table}:{group}")],
                Probe::Log(log) => vec![format!("mcp-auth:s:{log}"), format!("mcp-auth:l:{log}")],
            };
            let mut shortest: Option<Duration> = None;
            for key in keys {
                let ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
                if ms < 0 {
                    return None;
                }
                let left = Duration::from_millis(ms as u64);
                shortest = Some(shortest.map_or(left, |s| s.min(left)));
            }
            shortest
        })
    })
}

async fn redis_backend() -> Backend {
    let server = RedisServer::start();
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(&server.url()).await.expect("connect"));
    // A second instance: its own connections, as another server process would have.
    let other: Arc<dyn Store> = Arc::new(RedisStore::connect(&server.url()).await.expect("connect"));
    Backend { store, other, time: Time::Server(ttl_probe(server.url())), guard: Box::new(server) }
}

store_contract_tests!(redis_backend);

/// Retries `op` until it succeeds or 10 s pass: after a Redis restart the connection comes back
/// by itself, and operations meanwhile fail with `Unavailable`.
async fn eventually<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match op().await {
            Ok(value) => return value,
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[tokio::test]
async fn redis_expires_spent_records_and_then_they_are_unknown() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let short = Duration::from_millis(100);
    store.put_spendable("codes", "k", b"v", short).await.unwrap();
    assert_eq!(store.spend("codes", "k").await.unwrap(), Spent::Fresh(b"v".to_vec()));
    store.put_new("jti", "k", b"v", short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.spend("codes", "k").await.unwrap(), Spent::Unknown);
    assert!(store.put_new("jti", "k", b"again", TTL).await.unwrap(), "the expired jti no longer blocks");
}

#[tokio::test]
async fn a_key_of_another_type_is_an_error_not_a_panic() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut raw = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SET").arg("mcp-auth:r:t:k").arg("a string").query_async::<()>(&mut raw).await.unwrap();
    assert!(matches!(store.get("t", "k").await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.spend("t", "k").await, Err(StoreError::Invalid(_))));
    redis::cmd("HSET").arg("mcp-auth:r:t:n").arg("v").arg("x").query_async::<()>(&mut raw).await.unwrap();
    assert!(matches!(store.count("t", "n", TTL).await, Err(StoreError::Invalid(_))));
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_naming_the_setting_without_the_password() {
    let url = format!("redis://:hunter2@127.0.0.1:{}/0", free_port());
    let Err(err) = RedisStore::connect(&url).await else { panic!("connected to nothing") };
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)));
    assert!(text.contains("storage.url") && !text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn after_a_redis_restart_the_data_is_there_and_the_store_works_again() {
    let mut server = RedisServer::start_persistent();
    let a = RedisStore::connect(&server.url()).await.unwrap();
    let b = RedisStore::connect(&server.url()).await.unwrap();
    let hour = Duration::from_secs(3600);
    a.put("clients", "c1", b"registration", hour).await.unwrap();
    a.put_spendable("refresh", "r1", b"grant", hour).await.unwrap();
    assert_eq!(a.spend("refresh", "r1").await.unwrap(), Spent::Fresh(b"grant".to_vec()));
    a.put_in_group("sessions", "alice", "s1", b"session", hour, 2).await.unwrap();
    assert_eq!(a.append("stream", b"e1", 10, hour).await.unwrap(), 1);
    let mut sub = a.subscribe("session-1");

    server.kill();
    let down = Instant::now();
    assert!(matches!(b.get("clients", "c1").await, Err(StoreError::Unavailable(_))), "no Redis, no data");
    assert!(down.elapsed() < Duration::from_secs(5), "failing took {:?}", down.elapsed());
    server.restart();

    let value = eventually("get after restart", || a.get("clients", "c1")).await;
    assert_eq!(value.as_deref(), Some(&b"registration"[..]));
    let replay = eventually("spend after restart", || b.spend("refresh", "r1")).await;
    assert_eq!(replay, Spent::Replayed(b"grant".to_vec()), "the spent mark survived");
    assert_eq!(eventually("group_len", || b.group_len("sessions", "alice")).await, 1);
    assert_eq!(eventually("append", || b.append("stream", b"e2", 10, hour)).await, 2, "numbering goes on");

    // The pub/sub connection re-subscribes by itself; messages published before it has are lost,
    // so publish until one arrives.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no message after the restart within 10 s");
        let _ = b.publish("session-1", b"after restart").await;
        if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(200), sub.recv()).await {
            assert_eq!(message, b"after restart");
            break;
        }
    }
}

#[tokio::test]
async fn one_pubsub_connection_serves_every_channel_and_forgets_unused_ones() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let subs: Vec<_> = (0..100).map(|i| store.subscribe(&format!("session-{i}"))).collect();
    assert_eq!(store.channel_count(), 100);
    let mut raw = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let patterns: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query_async(&mut raw).await.unwrap();
    assert_eq!(patterns, 1, "one pattern subscription for all channels");
    drop(subs);
    assert_eq!(store.channel_count(), 0);
}

#[tokio::test]
async fn rediss_speaks_tls_and_fails_cleanly_when_the_handshake_fails() {
    // The TLS stack (rustls on aws-lc) is compiled in and chosen without a panic; a server that
    // hangs up during the handshake is an error naming the setting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let url = format!("rediss://127.0.0.1:{port}/0");
    let Err(err) = RedisStore::connect(&url).await else { panic!("a TLS handshake with nobody succeeded") };
    assert!(err.to_string().contains("storage.url"), "{err}");
}
