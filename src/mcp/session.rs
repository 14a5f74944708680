//! Legacy sessions (2025-03-26 .. 2025-11-25): created by `initialize`, named by
//! `Mcp-Session-Id`, bound to the caller that created them, bounded in number, expired when idle.
//!
//! A session also keeps, per SSE stream, a short log of the events it sent, so a client that
//! lost its connection can resume with `Last-Event-ID` and miss nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;
use tokio::sync::{oneshot, watch};
// Idleness is measured on tokio's clock, the one the sweeper's interval ticks on (and that tests
// can pause and advance); outside a paused test it is `std::time::Instant`.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::jsonrpc::Id;
use super::protocol::{ClientCapabilities, LogLevel};
use super::sse;
use super::version::LegacyVersion;
use crate::error::AppError;
use crate::principal::Principal;

/// The stream number of a session's standalone GET stream.
const STANDALONE_STREAM: u64 = 0;
/// Request streams whose logs a session keeps for resumption.
const KEPT_STREAMS: usize = 32;

/// One legacy session.
pub struct Session {
    pub id: Arc<str>,
    /// (issuer, subject) of the principal that created it; `None` without authentication.
    owner: Option<(String, String)>,
    pub version: LegacyVersion,
    pub client_capabilities: Arc<ClientCapabilities>,
    log_level: Mutex<Option<LogLevel>>,
    subscriptions: Mutex<HashSet<String>>,
    /// Milliseconds since the store's epoch of the last request on this session.
    last_seen: AtomicU64,
    standalone_open: AtomicBool,
    streams: Mutex<StreamTable>,
    next_server_request: AtomicU64,
    pending: Mutex<HashMap<Id, oneshot::Sender<Result<Value, Value>>>>,
    in_flight: Mutex<HashMap<Id, CancellationToken>>,
    /// Cancelled when the session ends: its streams close and its requests stop.
    pub closed: CancellationToken,
}

#[derive(Default)]
struct StreamTable {
    next: u64,
    logs: VecDeque<(u64, Arc<StreamLog>)>,
}

impl Session {
    /// Whether `principal` may use this session: the same (issuer, subject) that created it.
    /// A refreshed token of the same subject keeps the session; another caller does not.
    pub fn owned_by(&self, principal: Option<&Principal>) -> bool {
        match (&self.owner, principal) {
            (None, None) => true,
            (Some((iss, sub)), Some(p)) => p.owner_key() == (iss.as_str(), sub.as_str()),
            _ => false,
        }
    }

    pub fn log_level(&self) -> Option<LogLevel> {
        *self.log_level.lock().expect("lock")
    }

    pub fn set_log_level(&self, level: LogLevel) {
        *self.log_level.lock().expect("lock") = Some(level);
    }

    pub fn subscribe(&self, uri: &str) {
        self.subscriptions.lock().expect("lock").insert(uri.to_owned());
    }

    pub fn unsubscribe(&self, uri: &str) {
        self.subscriptions.lock().expect("lock").remove(uri);
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions.lock().expect("lock").contains(uri)
    }

    /// Claims the standalone GET stream; `None` if one is already open. The claim is released
    /// when the returned guard drops.
    pub fn open_standalone(self: &Arc<Self>) -> Option<StandaloneGuard> {
        (!self.standalone_open.swap(true, Ordering::AcqRel)).then(|| StandaloneGuard(self.clone()))
    }

    /// The event id of the `n`th event on the standalone stream.
    pub fn standalone_event_id(n: u64) -> String {
        format!("{STANDALONE_STREAM}-{n}")
    }

    /// Starts the log of a new request stream.
    pub fn new_stream(&self, capacity: usize) -> Arc<StreamLog> {
        let mut table = self.streams.lock().expect("lock");
        table.next += 1;
        let number = table.next;
        let log = Arc::new(StreamLog::new(number, capacity));
        table.logs.push_back((number, log.clone()));
        while table.logs.len() > KEPT_STREAMS {
            table.logs.pop_front();
        }
        log
    }

    /// The log of a request stream, if still kept.
    pub fn stream(&self, number: u64) -> Option<Arc<StreamLog>> {
        let table = self.streams.lock().expect("lock");
        table.logs.iter().find(|(n, _)| *n == number).map(|(_, log)| log.clone())
    }

    /// Registers a server-to-client request and returns its id and the receiver of the
    /// client's answer.
    pub fn expect_response(&self) -> (Id, oneshot::Receiver<Result<Value, Value>>) {
        let id = Id::Number(self.next_server_request.fetch_add(1, Ordering::Relaxed) as i64);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id.clone(), tx);
        (id, rx)
    }

    /// Forgets a server-to-client request that will not be answered.
    pub fn abandon_request(&self, id: &Id) {
        self.pending.lock().expect("lock").remove(id);
    }

    /// Delivers a client's answer; `false` if nothing was waiting for it.
    pub fn deliver_response(&self, id: &Id, outcome: Result<Value, Value>) -> bool {
        match self.pending.lock().expect("lock").remove(id) {
            Some(waiter) => waiter.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Tracks a running client request so `notifications/cancelled` can stop it.
    pub fn track(self: &Arc<Self>, id: Id, token: CancellationToken) -> InFlightGuard {
        self.in_flight.lock().expect("lock").insert(id.clone(), token);
        InFlightGuard { session: self.clone(), id }
    }

    /// Cancels a running request (`notifications/cancelled`).
    pub fn cancel(&self, id: &Id) {
        if let Some(token) = self.in_flight.lock().expect("lock").get(id) {
            token.cancel();
        }
    }

    fn busy(&self) -> bool {
        self.standalone_open.load(Ordering::Acquire) || !self.in_flight.lock().expect("lock").is_empty()
    }
}

/// Releases the standalone-stream claim on drop.
pub struct StandaloneGuard(Arc<Session>);

impl Drop for StandaloneGuard {
    fn drop(&mut self) {
        self.0.standalone_open.store(false, Ordering::Release);
    }
}

/// Stops tracking a request on drop.
pub struct InFlightGuard {
    session: Arc<Session>,
    id: Id,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.session.in_flight.lock().expect("lock").remove(&self.id);
    }
}

/// All live sessions.
pub struct SessionStore {
    sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    max: usize,
    idle: Duration,
    epoch: Instant,
}

impl SessionStore {
    pub fn new(max: usize, idle: Duration) -> Self {
        SessionStore { sessions: RwLock::new(HashMap::new()), max, idle, epoch: Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Opens a session for a successful `initialize`. When full, idle sessions are swept first;
    /// if it is still full the client gets 503 rather than another client losing its session.
    pub fn create(
        &self,
        principal: Option<&Principal>,
        version: LegacyVersion,
        client_capabilities: ClientCapabilities,
    ) -> Result<Arc<Session>, AppError> {
        if self.len() >= self.max {
            self.sweep();
            if self.len() >= self.max {
                return Err(AppError::Unavailable("too many sessions"));
            }
        }
        // A v4 UUID from the OS CSPRNG: unguessable, and visible ASCII (0x21-0x7E) as required.
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let session = Arc::new(Session {
            id: id.clone(),
            owner: principal.map(|p| (p.issuer.clone(), p.subject.clone())),
            version,
            client_capabilities: Arc::new(client_capabilities),
            log_level: Mutex::new(None),
            subscriptions: Mutex::new(HashSet::new()),
            last_seen: AtomicU64::new(self.now_ms()),
            standalone_open: AtomicBool::new(false),
            streams: Mutex::new(StreamTable::default()),
            next_server_request: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
        });
        self.sessions.write().expect("lock").insert(id, session.clone());
        Ok(session)
    }

    /// Looks a session up and marks it used.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions.read().expect("lock").get(id).cloned()?;
        session.last_seen.store(self.now_ms(), Ordering::Relaxed);
        Some(session)
    }

    /// Ends a session: later requests with its id get 404, its streams close.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions.write().expect("lock").remove(id)?;
        session.closed.cancel();
        Some(session)
    }

    pub fn len(&self) -> usize {
        self.sessions.read().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends every session idle for longer than the timeout and not in use.
    pub fn sweep(&self) -> usize {
        let now = self.now_ms();
        let idle = self.idle.as_millis() as u64;
        let expired: Vec<Arc<str>> = self
            .sessions
            .read()
            .expect("lock")
            .iter()
            .filter(|(_, s)| now.saturating_sub(s.last_seen.load(Ordering::Relaxed)) > idle && !s.busy())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.remove(id);
        }
        expired.len()
    }

    /// Ends every session (shutdown).
    pub fn close_all(&self) {
        for (_, session) in self.sessions.write().expect("lock").drain() {
            session.closed.cancel();
        }
    }
}

/// What a stream reader does next.
enum Step {
    /// Send these events; continue from the given sequence number.
    Events(Bytes, u64),
    /// Send a `retry:` hint and end: the server closed this connection.
    Close,
    /// The stream is complete.
    End,
    /// Nothing new yet.
    Wait,
}

/// The events of one SSE stream, kept so a reconnecting client can resume after the last event
/// it saw. Bounded: beyond `capacity` the oldest events are dropped.
pub struct StreamLog {
    number: u64,
    state: Mutex<LogState>,
    changed: watch::Sender<u64>,
}

struct LogState {
    events: VecDeque<(u64, Bytes)>,
    next_seq: u64,
    capacity: usize,
    finished: bool,
    /// Positions where the server closed the connection (SEP-1699 polling): a reader stops
    /// after the events before such a point, and the client resumes from there.
    close_points: Vec<u64>,
}

impl StreamLog {
    fn new(number: u64, capacity: usize) -> Self {
        StreamLog {
            number,
            state: Mutex::new(LogState {
                events: VecDeque::new(),
                next_seq: 0,
                capacity: capacity.max(1),
                finished: false,
                close_points: Vec::new(),
            }),
            changed: watch::channel(0).0,
        }
    }

    fn event_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.number)
    }

    /// Appends a priming event (empty data) that clients can resume from.
    pub fn push_priming(&self, retry_ms: u64) {
        self.push_with(|id| sse::priming(id, retry_ms));
    }

    /// Appends one JSON-RPC message.
    pub fn push(&self, frame: &[u8]) {
        self.push_with(|id| sse::event(Some(id), frame));
    }

    fn push_with(&self, encode: impl FnOnce(&str) -> Bytes) {
        let mut state = self.state.lock().expect("lock");
        let seq = state.next_seq;
        state.next_seq += 1;
        let event = encode(&self.event_id(seq));
        state.events.push_back((seq, event));
        while state.events.len() > state.capacity {
            state.events.pop_front();
        }
        drop(state);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Marks the stream complete: readers end after the last event.
    pub fn finish(&self) {
        self.state.lock().expect("lock").finished = true;
        self.changed.send_modify(|v| *v += 1);
    }

    /// Closes the current connection after the events written so far; the stream goes on for a
    /// resuming reader.
    pub fn disconnect(&self) {
        let mut state = self.state.lock().expect("lock");
        let point = state.next_seq;
        state.close_points.push(point);
        drop(state);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Parses a `Last-Event-ID` of the form `<stream>-<seq>`.
    pub fn parse_event_id(value: &str) -> Option<(u64, u64)> {
        let (stream, seq) = value.trim().split_once('-')?;
        Some((stream.parse().ok()?, seq.parse().ok()?))
    }

    /// A reader of this stream's events after `after` (all of them when `None`). It ends when
    /// the stream is finished and drained, at a server-side close point (after a `retry:` hint),
    /// or when `stop` is cancelled.
    pub fn reader(
        self: Arc<Self>,
        after: Option<u64>,
        retry_ms: u64,
        stop: CancellationToken,
    ) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
        let receiver = self.changed.subscribe();
        let start = after.map_or(0, |seq| seq + 1);
        futures_util::stream::unfold((self, receiver, start, false), move |(log, mut receiver, cursor, ended)| {
            let stop = stop.clone();
            async move {
                if ended {
                    return None;
                }
                loop {
                    receiver.borrow_and_update();
                    let step = log.step(start, cursor);
                    match step {
                        Step::Events(chunk, next) => return Some((Ok(chunk), (log, receiver, next, false))),
                        Step::Close => return Some((Ok(sse::retry(retry_ms)), (log, receiver, cursor, true))),
                        Step::End => return None,
                        Step::Wait => {}
                    }
                    tokio::select! {
                        changed = receiver.changed() => if changed.is_err() { return None },
                        _ = stop.cancelled() => return None,
                    }
                }
            }
        })
    }

    /// What a reader that started at `start` and has delivered everything before `cursor`
    /// does next.
    fn step(&self, start: u64, cursor: u64) -> Step {
        let state = self.state.lock().expect("lock");
        // The first close point this reader has not passed; a resumed reader starting exactly
        // at a point is past it.
        let close_at = state.close_points.iter().copied().filter(|p| *p > start && *p >= cursor).min();
        let limit = close_at.unwrap_or(u64::MAX);
        let mut chunk = bytes::BytesMut::new();
        let mut next = cursor;
        for (seq, event) in state.events.iter().filter(|(seq, _)| *seq >= cursor && *seq < limit) {
            chunk.extend_from_slice(event);
            next = seq + 1;
        }
        if !chunk.is_empty() {
            return Step::Events(chunk.freeze(), next);
        }
        if close_at.is_some_and(|point| point <= state.next_seq) {
            Step::Close
        } else if state.finished {
            Step::End
        } else {
            Step::Wait
        }
    }
}
