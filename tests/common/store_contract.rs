//! The one contract test suite of `Store`, run against every backend: `tests/store.rs` (memory),
//! `tests/store_sqlite.rs` and `tests/store_redis.rs` each build a [`Backend`] and expand
//! [`store_contract_tests!`] with it. Included with `#[path]` (not through `common/mod.rs`, whose
//! app helpers need other features).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_auth_server::store::{Clock, Spent, Store, StoreError};
use tokio::sync::Barrier;

/// A store under test, with a second handle on the same data and a way to observe time.
pub struct Backend {
    pub store: Arc<dyn Store>,
    /// Another instance on the same data (Redis: a second connection, as a second server process
    /// would have), or the same store where there is only one process (memory, SQLite).
    pub other: Arc<dyn Store>,
    pub time: Time,
    /// Whatever must outlive the test (a temporary directory, a redis-server process).
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

/// What expires, for backends whose clock the test cannot move.
#[derive(Debug, Clone)]
pub enum Probe {
    Record { table: String, key: String },
    Group { table: String, group: String },
    Log(String),
}

pub type TtlProbe = Arc<dyn Fn(Probe) -> Pin<Box<dyn Future<Output = Option<Duration>> + Send>> + Send + Sync>;

pub enum Time {
    /// The store reads this clock: expiry tests advance it instead of sleeping.
    Manual(ManualClock),
    /// The server's clock (Redis): expiry tests check the TTL the store set (PTTL).
    Server(TtlProbe),
}

/// Unix milliseconds that only move when a test says so.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(1_700_000_000_000)))
    }

    pub fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || now.load(Ordering::SeqCst))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

pub const TTL: Duration = Duration::from_secs(10);
pub const MS: Duration = Duration::from_millis(1);

fn record(table: &str, key: &str) -> Probe {
    Probe::Record { table: table.to_owned(), key: key.to_owned() }
}

/// The remaining life the server reports is at most `ttl`, and close to it.
async fn assert_ttl(probe: &TtlProbe, what: Probe, ttl: Duration) {
    let left = probe(what.clone()).await.unwrap_or_else(|| panic!("{what:?} has no TTL"));
    assert!(left <= ttl && left + Duration::from_secs(5) > ttl, "{what:?}: TTL {left:?}, expected about {ttl:?}");
}

/// Runs `n` copies of `op` at once (released together by a barrier), alternating between the two
/// handles, and returns their results.
async fn concurrently<T, F, Fut>(b: &Backend, n: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = if i % 2 == 0 { Arc::clone(&b.store) } else { Arc::clone(&b.other) };
            let barrier = Arc::clone(&barrier);
            let fut = op(store, i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("task ran"));
    }
    results
}

pub async fn reports_its_kind_and_answers_ping(b: Backend) {
    assert!(["memory", "sqlite", "redis"].contains(&b.store.kind()));
    assert_eq!(b.store.shared(), b.store.kind() == "redis");
    b.store.ping().await.expect("ping");
}

pub async fn put_then_get_returns_the_value_and_put_overwrites(b: Backend) {
    let s = &b.store;
    assert_eq!(s.get("t", "k").await.unwrap(), None);
    s.put("t", "k", b"one", TTL).await.unwrap();
    assert_eq!(s.get("t", "k").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(b.other.get("t", "k").await.unwrap().as_deref(), Some(&b"one"[..]), "the other handle sees it");
    s.put("t", "k", b"two", TTL).await.unwrap();
    assert_eq!(s.get("t", "k").await.unwrap().as_deref(), Some(&b"two"[..]));
    // Tables are separate namespaces.
    assert_eq!(s.get("u", "k").await.unwrap(), None);
}

pub async fn values_are_bytes_and_keys_are_any_string(b: Backend) {
    let s = &b.store;
    let value: Vec<u8> = (0..=255).collect();
    let key = "a:b/c d\u{e9}\u{1F600}\n*?[x]";
    s.put("t", key, &value, TTL).await.unwrap();
    assert_eq!(s.get("t", key).await.unwrap(), Some(value));
    assert_eq!(s.get("t", "a").await.unwrap(), None);
    s.put("t", "empty", b"", TTL).await.unwrap();
    assert_eq!(s.get("t", "empty").await.unwrap(), Some(Vec::new()));
}

pub async fn a_table_name_with_a_colon_is_refused(b: Backend) {
    assert!(matches!(b.store.put("a:b", "k", b"v", TTL).await, Err(StoreError::Invalid(_))));
    assert!(matches!(b.store.get("", "k").await, Err(StoreError::Invalid(_))));
}

pub async fn records_expire_after_their_ttl(b: Backend) {
    let s = &b.store;
    s.put("t", "k", b"v", TTL).await.unwrap();
    match &b.time {
        Time::Manual(clock) => {
            clock.advance(TTL - MS);
            assert!(s.get("t", "k").await.unwrap().is_some(), "alive 1 ms before expiry");
            clock.advance(MS);
            assert_eq!(s.get("t", "k").await.unwrap(), None, "gone at expiry");
            assert_eq!(s.take("t", "k").await.unwrap(), None);
            assert!(!s.delete("t", "k").await.unwrap());
            assert!(!s.touch("t", "k", TTL).await.unwrap());
            assert!(s.put_new("t", "k", b"new", TTL).await.unwrap(), "an expired record does not block put_new");
            assert_eq!(s.get("t", "k").await.unwrap().as_deref(), Some(&b"new"[..]));
        }
        Time::Server(pttl) => assert_ttl(pttl, record("t", "k"), TTL).await,
    }
}

pub async fn touch_sets_a_new_expiry_and_is_false_for_absent_records(b: Backend) {
    let s = &b.store;
    assert!(!s.touch("t", "missing", TTL).await.unwrap());
    s.put("t", "k", b"v", TTL).await.unwrap();
    let longer = Duration::from_secs(3600);
    assert!(s.touch("t", "k", longer).await.unwrap());
    match &b.time {
        Time::Manual(clock) => {
            clock.advance(longer - MS);
            assert!(s.get("t", "k").await.unwrap().is_some());
            clock.advance(MS);
            assert_eq!(s.get("t", "k").await.unwrap(), None);
        }
        Time::Server(pttl) => assert_ttl(pttl, record("t", "k"), longer).await,
    }
}

pub async fn put_new_writes_only_when_absent(b: Backend) {
    let s = &b.store;
    assert!(s.put_new("jti", "k", b"first", TTL).await.unwrap());
    assert!(!s.put_new("jti", "k", b"second", TTL).await.unwrap());
    assert_eq!(s.get("jti", "k").await.unwrap().as_deref(), Some(&b"first"[..]));
    let wins = concurrently(&b, 50, |store, i| async move {
        store.put_new("jti", "race", format!("{i}").as_bytes(), TTL).await.unwrap()
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "exactly one put_new of 50 wins");
}

pub async fn take_gives_the_value_to_exactly_one_of_50_concurrent_takers(b: Backend) {
    b.store.put("codes", "k", b"the-value", TTL).await.unwrap();
    let got = concurrently(&b, 50, |store, _| async move { store.take("codes", "k").await.unwrap() }).await;
    let winners: Vec<_> = got.into_iter().flatten().collect();
    assert_eq!(winners, vec![b"the-value".to_vec()], "exactly one taker gets it");
    assert_eq!(b.store.get("codes", "k").await.unwrap(), None);
}

pub async fn delete_removes_and_says_whether_there_was_a_record(b: Backend) {
    let s = &b.store;
    s.put("t", "k", b"v", TTL).await.unwrap();
    assert!(s.delete("t", "k").await.unwrap());
    assert!(!s.delete("t", "k").await.unwrap());
    assert_eq!(s.get("t", "k").await.unwrap(), None);
}

pub async fn spend_is_fresh_once_among_50_concurrent_spends_then_replayed(b: Backend) {
    b.store.put_spendable("refresh", "k", b"grant", TTL).await.unwrap();
    let outcomes = concurrently(&b, 50, |store, _| async move { store.spend("refresh", "k").await.unwrap() }).await;
    let fresh = outcomes.iter().filter(|o| **o == Spent::Fresh(b"grant".to_vec())).count();
    let replayed = outcomes.iter().filter(|o| **o == Spent::Replayed(b"grant".to_vec())).count();
    assert_eq!((fresh, replayed), (1, 49), "one Fresh, the rest Replayed with the value: {outcomes:?}");
    assert_eq!(b.other.spend("refresh", "k").await.unwrap(), Spent::Replayed(b"grant".to_vec()));
    // The spent record keeps its value (get) and its expiry.
    assert_eq!(b.store.get("refresh", "k").await.unwrap().as_deref(), Some(&b"grant"[..]));
    match &b.time {
        Time::Manual(clock) => {
            clock.advance(TTL - MS);
            assert_eq!(b.store.spend("refresh", "k").await.unwrap(), Spent::Replayed(b"grant".to_vec()));
            clock.advance(MS);
            assert_eq!(b.store.spend("refresh", "k").await.unwrap(), Spent::Unknown, "Unknown after expiry");
        }
        Time::Server(pttl) => assert_ttl(pttl, record("refresh", "k"), TTL).await,
    }
}

pub async fn spend_of_an_unknown_record_is_unknown_and_of_a_plain_one_an_error(b: Backend) {
    let s = &b.store;
    assert_eq!(s.spend("codes", "nothing").await.unwrap(), Spent::Unknown);
    s.put("codes", "plain", b"v", TTL).await.unwrap();
    assert!(matches!(s.spend("codes", "plain").await, Err(StoreError::Invalid(_))));
    assert_eq!(s.get("codes", "plain").await.unwrap().as_deref(), Some(&b"v"[..]), "the failed spend changed nothing");
}

pub async fn put_spendable_again_makes_a_fresh_record(b: Backend) {
    let s = &b.store;
    s.put_spendable("codes", "k", b"one", TTL).await.unwrap();
    assert_eq!(s.spend("codes", "k").await.unwrap(), Spent::Fresh(b"one".to_vec()));
    s.put_spendable("codes", "k", b"two", TTL).await.unwrap();
    assert_eq!(s.spend("codes", "k").await.unwrap(), Spent::Fresh(b"two".to_vec()));
    assert_eq!(s.take("codes", "k").await.unwrap().as_deref(), Some(&b"two"[..]), "take works on spendable records");
    assert_eq!(s.spend("codes", "k").await.unwrap(), Spent::Unknown);
}

pub async fn count_counts_in_a_fixed_window_that_counting_never_extends(b: Backend) {
    let s = &b.store;
    let window = Duration::from_secs(60);
    let first = s.count("logins", "k", window).await.unwrap();
    assert_eq!(first.count, 1);
    assert!(first.resets_in <= window && first.resets_in + Duration::from_secs(5) > window, "{first:?}");
    assert_eq!(b.other.count("logins", "k", window).await.unwrap().count, 2);
    match &b.time {
        Time::Manual(clock) => {
            clock.advance(Duration::from_secs(45));
            let third = s.count("logins", "k", window).await.unwrap();
            assert_eq!(third.count, 3);
            assert_eq!(third.resets_in, Duration::from_secs(15), "the window started at the first count");
            clock.advance(Duration::from_secs(15));
            assert_eq!(s.count("logins", "k", window).await.unwrap().count, 1, "a new window");
        }
        Time::Server(pttl) => {
            let third = s.count("logins", "k", window).await.unwrap();
            assert_eq!(third.count, 3);
            assert!(third.resets_in <= first.resets_in, "counting does not extend the window");
            assert_ttl(pttl, record("logins", "k"), window).await;
        }
    }
    // Concurrent counts each see a different number.
    let counts = concurrently(&b, 50, |store, _| async move {
        store.count("logins", "race", Duration::from_secs(60)).await.unwrap().count
    })
    .await;
    assert_eq!(counts.into_iter().collect::<BTreeSet<_>>(), (1..=50).collect::<BTreeSet<_>>());
}

pub async fn count_of_a_record_that_is_not_a_counter_is_an_error(b: Backend) {
    b.store.put("logins", "k", b"not a number", TTL).await.unwrap();
    assert!(matches!(b.store.count("logins", "k", TTL).await, Err(StoreError::Invalid(_))));
}

pub async fn a_group_over_its_bound_loses_its_least_recently_used_records(b: Backend) {
    let s = &b.store;
    for key in ["a", "b", "c"] {
        assert!(s.put_in_group("sessions", "alice", key, key.as_bytes(), TTL, 3).await.unwrap().is_empty());
    }
    assert_eq!(s.group_len("sessions", "alice").await.unwrap(), 3);
    assert_eq!(s.put_in_group("sessions", "alice", "d", b"d", TTL, 3).await.unwrap(), vec!["a".to_owned()]);
    assert_eq!(s.get("sessions", "a").await.unwrap(), None, "the evicted record is gone");
    assert_eq!(s.get("sessions", "d").await.unwrap().as_deref(), Some(&b"d"[..]));
    assert_eq!(s.group_len("sessions", "alice").await.unwrap(), 3);
    // Other groups of the same table are separate.
    assert!(s.put_in_group("sessions", "bob", "x", b"x", TTL, 3).await.unwrap().is_empty());
    assert_eq!(s.group_len("sessions", "bob").await.unwrap(), 1);
    // A lower bound evicts several at once, oldest first.
    assert_eq!(
        s.put_in_group("sessions", "alice", "e", b"e", TTL, 1).await.unwrap(),
        vec!["b".to_owned(), "c".to_owned(), "d".to_owned()]
    );
    assert_eq!(s.group_len("sessions", "alice").await.unwrap(), 1);
    // Upserting a member does not count it twice.
    assert!(s.put_in_group("sessions", "alice", "e", b"e2", TTL, 1).await.unwrap().is_empty());
    assert_eq!(s.get("sessions", "e").await.unwrap().as_deref(), Some(&b"e2"[..]));
}

pub async fn touch_makes_a_group_member_the_most_recent(b: Backend) {
    let s = &b.store;
    for key in ["a", "b", "c"] {
        s.put_in_group("pending", "10.0.0.1", key, b"v", TTL, 3).await.unwrap();
    }
    assert!(b.other.touch("pending", "a", TTL).await.unwrap());
    assert_eq!(s.put_in_group("pending", "10.0.0.1", "d", b"v", TTL, 3).await.unwrap(), vec!["b".to_owned()]);
    assert!(s.get("pending", "a").await.unwrap().is_some());
}

pub async fn delete_take_and_a_plain_put_remove_a_record_from_its_group(b: Backend) {
    let s = &b.store;
    for key in ["a", "b", "c"] {
        s.put_in_group("sessions", "g", key, b"v", TTL, 3).await.unwrap();
    }
    assert!(s.delete("sessions", "a").await.unwrap());
    assert_eq!(s.take("sessions", "b").await.unwrap().as_deref(), Some(&b"v"[..]));
    s.put("sessions", "c", b"plain now", TTL).await.unwrap();
    assert_eq!(s.group_len("sessions", "g").await.unwrap(), 0);
    for key in ["d", "e", "f"] {
        assert!(s.put_in_group("sessions", "g", key, b"v", TTL, 3).await.unwrap().is_empty(), "room for three");
    }
    assert_eq!(s.get("sessions", "c").await.unwrap().as_deref(), Some(&b"plain now"[..]), "not evicted");
    // Moving a record to another group takes it out of the first.
    s.put_in_group("sessions", "h", "d", b"v", TTL, 3).await.unwrap();
    assert_eq!(s.group_len("sessions", "g").await.unwrap(), 2);
    assert_eq!(s.group_len("sessions", "h").await.unwrap(), 1);
}

pub async fn expired_group_members_are_not_counted_nor_returned(b: Backend) {
    let s = &b.store;
    match &b.time {
        Time::Manual(clock) => {
            s.put_in_group("sessions", "g", "old", b"v", TTL, 2).await.unwrap();
            clock.advance(Duration::from_secs(5));
            s.put_in_group("sessions", "g", "mid", b"v", TTL, 2).await.unwrap();
            clock.advance(Duration::from_secs(6));
            assert_eq!(s.group_len("sessions", "g").await.unwrap(), 1, "`old` expired");
            assert!(s.put_in_group("sessions", "g", "new", b"v", TTL, 2).await.unwrap().is_empty());
            assert_eq!(s.put_in_group("sessions", "g", "newer", b"v", TTL, 2).await.unwrap(), vec!["mid".to_owned()]);
        }
        Time::Server(pttl) => {
            s.put_in_group("sessions", "g", "a", b"v", TTL, 2).await.unwrap();
            assert_ttl(pttl, record("sessions", "a"), TTL).await;
            let group = Probe::Group { table: "sessions".to_owned(), group: "g".to_owned() };
            assert_ttl(pttl, group.clone(), TTL).await;
            let longer = Duration::from_secs(3600);
            assert!(s.touch("sessions", "a", longer).await.unwrap());
            assert_ttl(pttl, group, longer).await;
        }
    }
}

pub async fn appended_events_are_numbered_from_1_and_read_in_order(b: Backend) {
    let s = &b.store;
    for (i, event) in ["e1", "e2", "e3"].iter().enumerate() {
        assert_eq!(s.append("stream-1", event.as_bytes(), 10, TTL).await.unwrap(), i as u64 + 1);
    }
    let all = s.read_after("stream-1", 0).await.unwrap();
    assert_eq!(all, vec![(1, b"e1".to_vec()), (2, b"e2".to_vec()), (3, b"e3".to_vec())]);
    assert_eq!(b.other.read_after("stream-1", 2).await.unwrap(), vec![(3, b"e3".to_vec())]);
    assert!(s.read_after("stream-1", 3).await.unwrap().is_empty());
    assert!(s.read_after("stream-1", u64::MAX).await.unwrap().is_empty());
    assert!(s.read_after("no-such-stream", 0).await.unwrap().is_empty());
    assert_eq!(s.append("stream-2", b"x", 10, TTL).await.unwrap(), 1, "numbering is per log");
}

pub async fn an_event_log_keeps_only_its_last_events(b: Backend) {
    let s = &b.store;
    for i in 1..=5u64 {
        assert_eq!(s.append("stream", format!("e{i}").as_bytes(), 3, TTL).await.unwrap(), i);
    }
    let kept: Vec<u64> = s.read_after("stream", 0).await.unwrap().into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(kept, vec![3, 4, 5]);
}

pub async fn concurrent_appenders_get_unique_increasing_numbers(b: Backend) {
    let seqs = concurrently(&b, 50, |store, i| async move {
        store.append("shared", format!("e{i}").as_bytes(), 100, TTL).await.unwrap()
    })
    .await;
    assert_eq!(seqs.iter().copied().collect::<BTreeSet<_>>(), (1..=50).collect::<BTreeSet<_>>());
    let events = b.store.read_after("shared", 0).await.unwrap();
    assert_eq!(events.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (1..=50).collect::<Vec<_>>());
    // Each number carries the event its appender was told it has.
    let mut by_seq = std::collections::HashMap::new();
    for (i, seq) in seqs.iter().enumerate() {
        by_seq.insert(*seq, format!("e{i}").into_bytes());
    }
    for (seq, event) in events {
        assert_eq!(by_seq[&seq], event);
    }
}

pub async fn an_event_log_expires_after_its_last_append(b: Backend) {
    let s = &b.store;
    s.append("stream", b"e1", 10, TTL).await.unwrap();
    match &b.time {
        Time::Manual(clock) => {
            clock.advance(TTL - Duration::from_secs(1));
            s.append("stream", b"e2", 10, TTL).await.unwrap();
            clock.advance(TTL - MS);
            assert_eq!(s.read_after("stream", 0).await.unwrap().len(), 2, "the last append extended it");
            clock.advance(MS);
            assert!(s.read_after("stream", 0).await.unwrap().is_empty());
            assert_eq!(s.append("stream", b"again", 10, TTL).await.unwrap(), 1, "an expired log starts again");
        }
        Time::Server(pttl) => {
            let longer = Duration::from_secs(3600);
            s.append("stream", b"e2", 10, longer).await.unwrap();
            assert_ttl(pttl, Probe::Log("stream".to_owned()), longer).await;
        }
    }
}

pub async fn subscribers_receive_what_is_published_after_they_subscribed(b: Backend) {
    let mut here = b.store.subscribe("session-1");
    let mut there = b.other.subscribe("session-1");
    let mut elsewhere = b.store.subscribe("session-2");
    b.other.publish("session-1", b"hello").await.unwrap();
    b.store.publish("session-1", b"again").await.unwrap();
    for sub in [&mut here, &mut there] {
        for expected in [&b"hello"[..], b"again"] {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.expect("delivered in time");
            assert_eq!(got.as_deref(), Some(expected));
        }
    }
    b.store.publish("session-2", b"two").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), elsewhere.recv()).await.expect("delivered in time");
    assert_eq!(got.as_deref(), Some(&b"two"[..]), "channels are separate");
    // Publishing to a channel without subscribers is fine.
    b.store.publish("nobody", b"x").await.unwrap();
}

/// Expands to one `#[tokio::test]` per contract case, each on a fresh backend from `$make` (an
/// async fn returning a [`Backend`]).
macro_rules! store_contract_tests {
    ($make:expr) => {
        store_contract_tests!(@cases $make;
            reports_its_kind_and_answers_ping,
            put_then_get_returns_the_value_and_put_overwrites,
            values_are_bytes_and_keys_are_any_string,
            a_table_name_with_a_colon_is_refused,
            records_expire_after_their_ttl,
            touch_sets_a_new_expiry_and_is_false_for_absent_records,
            put_new_writes_only_when_absent,
            take_gives_the_value_to_exactly_one_of_50_concurrent_takers,
            delete_removes_and_says_whether_there_was_a_record,
            spend_is_fresh_once_among_50_concurrent_spends_then_replayed,
            spend_of_an_unknown_record_is_unknown_and_of_a_plain_one_an_error,
            put_spendable_again_makes_a_fresh_record,
            count_counts_in_a_fixed_window_that_counting_never_extends,
            count_of_a_record_that_is_not_a_counter_is_an_error,
            a_group_over_its_bound_loses_its_least_recently_used_records,
            touch_makes_a_group_member_the_most_recent,
            delete_take_and_a_plain_put_remove_a_record_from_its_group,
            expired_group_members_are_not_counted_nor_returned,
            appended_events_are_numbered_from_1_and_read_in_order,
            an_event_log_keeps_only_its_last_events,
            concurrent_appenders_get_unique_increasing_numbers,
            an_event_log_expires_after_its_last_append,
            subscribers_receive_what_is_published_after_they_subscribed,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        mod contract {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = $make().await;
                    store_contract::$case(backend).await;
                }
            )*
        }
    };
}
