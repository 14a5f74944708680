//! Legacy sessions (2025-03-26 .. 2025-11-25; feature `mcp`): created by `initialize`, named by
//! `Mcp-Session-Id`, bound to the caller that created them, bounded in number, expired when idle,
//! and kept on the server's store so that any instance serves any request of a session and a
//! restart (with a durable store) keeps them.
//!
//! What every instance sees is the session's [`Record`] in the store: its owner, version, client
//! capabilities, log level and subscriptions, expiring `mcp.session_idle_timeout_secs` after its
//! last use (refreshed at most every few seconds, so a call costs no store round trip most of the
//! time). Each caller keeps at most `mcp.max_sessions_per_caller` sessions: beyond that its least
//! recently used one is closed. An instance that serves a session holds a local [`Session`]
//! object for it: the requests running here, the server-to-client requests waiting here for the
//! client's answer, and the streams open here.
//!
//! Instances tell each other about a session on one channel all sessions share ([`Signal`], each
//! addressed to its session, so an instance holding ten thousand idle sessions keeps one
//! subscription, not ten thousand): the client's answer to
//! a server-to-client request that reached another instance than the one waiting for it, a
//! cancellation of a request running elsewhere, a change of the record, the session's end, and
//! new events of a stream (which may be read elsewhere). The events of a request's SSE stream are
//! logged in the store, so a client that lost its connection resumes with `Last-Event-ID` on any
//! instance, and misses nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::jsonrpc::Id;
use super::protocol::{ClientCapabilities, LogLevel};
use super::sse;
use super::version::LegacyVersion;
use crate::error::AppError;
use crate::principal::Principal;
use crate::store::{Store, StoreError};

/// The store's table of session records.
const TABLE: &str = "mcp_session";
/// The store's table of standalone-stream claims (one open GET stream per session).
const STANDALONE: &str = "mcp_standalone";
/// How long a claim on the standalone stream lasts without renewal.
const CLAIM_TTL: Duration = Duration::from_secs(10);
/// The store's table of live instances: each renews its record every [`Sessions::HEARTBEAT_EVERY`],
/// so a claim held by an instance whose record expired (it died) is taken over at once, rather
/// than refusing the reconnecting client until the claim expires.
const INSTANCES: &str = "mcp_instance";
const ALIVE_TTL: Duration = Duration::from_secs(3);
/// The most a session's record goes without its expiry being refreshed while it is used.
const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// What every instance sees of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// (issuer, subject) of the principal that created it; `None` without authentication.
    pub owner: Option<(String, String)>,
    pub version: String,
    pub client_capabilities: Map<String, Value>,
    pub log_level: Option<LogLevel>,
    pub subscriptions: BTreeSet<String>,
    /// When `initialize` opened it, in Unix seconds (for the session-duration metric; 0 in
    /// records written before it was kept).
    #[serde(default)]
    pub opened_at: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What one instance tells the others about a session.
#[derive(Debug, Serialize, Deserialize)]
enum Signal {
    /// The client answered a server-to-client request (it may be waited for elsewhere).
    Response { id: Value, outcome: Result<Value, Value> },
    /// `notifications/cancelled` for a request that may run elsewhere.
    Cancel { id: Value },
    /// The record changed (log level, subscriptions): here it is, applied on arrival (a read
    /// from the store instead could lose the race with the client's next request).
    Changed(Record),
    /// The session ended (deleted, or its caller's oldest past the cap).
    Closed,
    /// A stream's log has new events.
    Appended { stream: String },
}

/// One legacy session, as this instance holds it.
pub struct Session {
    pub id: Arc<str>,
    owner: Option<(String, String)>,
    pub version: LegacyVersion,
    pub client_capabilities: Arc<ClientCapabilities>,
    record: RwLock<Record>,
    /// When this instance last refreshed the record's expiry, and last used the session.
    last_touch: Mutex<Instant>,
    last_seen: Mutex<Instant>,
    standalone_open: AtomicBool,
    open_streams: AtomicUsize,
    pending: Mutex<HashMap<Id, oneshot::Sender<Result<Value, Value>>>>,
    in_flight: Mutex<HashMap<Id, CancellationToken>>,
    /// Woken when a stream of this session gets new events (here or, by signal, elsewhere).
    appended: Notify,
    /// Cancelled when the session ends: its streams close and its requests stop.
    pub closed: CancellationToken,
    store: Arc<dyn Store>,
    /// The instance holding this object (see [`INSTANCES`]).
    instance: Arc<str>,
    group: String,
    cap: usize,
    idle: Duration,
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
        self.record.read().expect("lock").log_level
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.record.read().expect("lock").subscriptions.contains(uri)
    }

    /// Changes the record (log level, subscriptions) for every instance.
    pub async fn update(&self, change: impl FnOnce(&mut Record)) -> Result<(), StoreError> {
        let record = {
            let mut record = self.record.write().expect("lock");
            change(&mut record);
            record.clone()
        };
        let bytes = serde_json::to_vec(&record).expect("records serialise");
        self.store.put_in_group(TABLE, &self.group, &self.id, &bytes, self.idle, self.cap).await?;
        self.signal(&Signal::Changed(record)).await;
        Ok(())
    }

    async fn signal(&self, signal: &Signal) {
        if let Err(err) = publish(&*self.store, &self.id, signal).await {
            tracing::warn!(%err, session = %self.id, "could not tell the other instances about a session");
        }
    }

    /// Claims the standalone GET stream, for every instance; `None` if one is open already.
    /// The claim is renewed while the stream is open and released when the guard drops.
    pub async fn open_standalone(self: &Arc<Self>) -> Result<Option<StandaloneGuard>, StoreError> {
        if self.standalone_open.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        match self.claim_standalone().await {
            Ok(true) => Ok(Some(StandaloneGuard(self.clone()))),
            Ok(false) => {
                self.standalone_open.store(false, Ordering::Release);
                Ok(None)
            }
            Err(err) => {
                self.standalone_open.store(false, Ordering::Release);
                Err(err)
            }
        }
    }

    /// Files this instance's claim; a claim of an instance that is no longer alive (killed,
    /// or this process before a restart) is taken over.
    async fn claim_standalone(&self) -> Result<bool, StoreError> {
        let mine = self.instance.as_bytes();
        if self.store.put_new(STANDALONE, &self.id, mine, CLAIM_TTL).await? {
            return Ok(true);
        }
        let Some(holder) = self.store.get(STANDALONE, &self.id).await? else {
            // Released meanwhile.
            return self.store.put_new(STANDALONE, &self.id, mine, CLAIM_TTL).await;
        };
        let holder = String::from_utf8_lossy(&holder);
        if holder == *self.instance || self.store.get(INSTANCES, &holder).await?.is_some() {
            return Ok(false);
        }
        tracing::info!(session = %self.id, "standalone stream taken over from an instance that stopped");
        self.store.put(STANDALONE, &self.id, mine, CLAIM_TTL).await?;
        Ok(true)
    }

    /// The event id of the `n`th event on the standalone stream (not logged: a reconnecting
    /// client gets a new standalone stream).
    pub fn standalone_event_id(n: u64) -> String {
        format!("0-{n}")
    }

    /// Starts the log of a new request stream, named so that no other instance names another
    /// stream of this session the same.
    pub fn new_stream(self: &Arc<Self>, capacity: usize) -> StreamLog {
        StreamLog { session: self.clone(), stream: super::random_id(), capacity: capacity.max(1) }
    }

    /// The log of a request stream by the name an event id carries.
    pub fn stream(self: &Arc<Self>, name: &str, capacity: usize) -> StreamLog {
        StreamLog { session: self.clone(), stream: name.to_owned(), capacity: capacity.max(1) }
    }

    /// Registers a server-to-client request and returns its id and the receiver of the
    /// client's answer. Ids are random (JavaScript-safe integers), so the instances of one
    /// session never issue the same one.
    pub fn expect_response(&self) -> (Id, oneshot::Receiver<Result<Value, Value>>) {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random number generator works");
        let id = Id::Number((u64::from_le_bytes(bytes) >> 11) as i64);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id.clone(), tx);
        (id, rx)
    }

    /// Forgets a server-to-client request that will not be answered.
    pub fn abandon_request(&self, id: &Id) {
        self.pending.lock().expect("lock").remove(id);
    }

    /// Delivers a client's answer to whichever instance waits for it.
    pub async fn deliver_response(&self, id: &Id, outcome: Result<Value, Value>) {
        if let Some(waiter) = self.pending.lock().expect("lock").remove(id) {
            let _ = waiter.send(outcome);
            return;
        }
        self.signal(&Signal::Response { id: id.to_value(), outcome }).await;
    }

    fn deliver_here(&self, id: &Id, outcome: Result<Value, Value>) {
        if let Some(waiter) = self.pending.lock().expect("lock").remove(id) {
            let _ = waiter.send(outcome);
        }
    }

    /// Tracks a running client request so `notifications/cancelled` can stop it.
    pub fn track(self: &Arc<Self>, id: Id, token: CancellationToken) -> InFlightGuard {
        self.in_flight.lock().expect("lock").insert(id.clone(), token);
        InFlightGuard { session: self.clone(), id }
    }

    /// Cancels a running request (`notifications/cancelled`), here or on another instance.
    pub async fn cancel(&self, id: &Id) {
        if !self.cancel_here(id) {
            self.signal(&Signal::Cancel { id: id.to_value() }).await;
        }
    }

    fn cancel_here(&self, id: &Id) -> bool {
        match self.in_flight.lock().expect("lock").get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// A slot for one more stream of this session; `None` at the cap.
    fn stream_slot(self: &Arc<Self>, max: usize) -> Option<SessionStreamSlot> {
        let taken = self.open_streams.fetch_add(1, Ordering::AcqRel);
        if max > 0 && taken >= max {
            self.open_streams.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(SessionStreamSlot(self.clone()))
    }

    fn busy(&self) -> bool {
        self.standalone_open.load(Ordering::Acquire)
            || self.open_streams.load(Ordering::Acquire) > 0
            || !self.in_flight.lock().expect("lock").is_empty()
    }

    /// Handles what another instance said about this session.
    fn receive(&self, signal: Signal) {
        match signal {
            Signal::Response { id, outcome } => {
                if let Some(id) = Id::from_value(&id) {
                    self.deliver_here(&id, outcome);
                }
            }
            Signal::Cancel { id } => {
                if let Some(id) = Id::from_value(&id) {
                    self.cancel_here(&id);
                }
            }
            Signal::Changed(record) => *self.record.write().expect("lock") = record,
            Signal::Closed => self.closed.cancel(),
            Signal::Appended { .. } => self.appended.notify_waiters(),
        }
    }
}

/// The channel every session's signals travel on, each as `[session id, signal]`.
const CHANNEL: &str = "sessions";

async fn publish(store: &dyn Store, id: &str, signal: &Signal) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&(id, signal)).expect("signals serialise");
    store.publish(CHANNEL, &bytes).await
}

/// Releases the standalone-stream claim on drop.
pub struct StandaloneGuard(Arc<Session>);

impl StandaloneGuard {
    /// Renews the claim (and the session's expiry): the stream is still open.
    pub async fn renew(&self) {
        let session = &self.0;
        let _ = session.store.touch(STANDALONE, &session.id, CLAIM_TTL).await;
        let _ = session.store.touch(TABLE, &session.id, session.idle).await;
    }

    /// How often [`StandaloneGuard::renew`] must be called.
    pub const RENEW_EVERY: Duration = Duration::from_secs(3);
}

impl Drop for StandaloneGuard {
    fn drop(&mut self) {
        let session = self.0.clone();
        session.standalone_open.store(false, Ordering::Release);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = session.store.delete(STANDALONE, &session.id).await;
            });
        }
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

/// One stream's place in its session's count; see [`StreamSlot`].
struct SessionStreamSlot(Arc<Session>);

impl Drop for SessionStreamSlot {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place for one more open stream, held while the stream is open: within the session's cap
/// (`mcp.max_streams_per_session`) and its caller's (`mcp.max_streams_per_caller`).
pub struct StreamSlot {
    _session: Option<SessionStreamSlot>,
    _caller: Option<CallerStreamSlot>,
}

/// Open streams per caller, on this instance.
#[derive(Default)]
struct CallerStreams(Mutex<HashMap<String, usize>>);

struct CallerStreamSlot(Arc<CallerStreams>, String);

impl Drop for CallerStreamSlot {
    fn drop(&mut self) {
        let mut counts = (self.0).0.lock().expect("lock");
        if let Some(count) = counts.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.1);
            }
        }
    }
}

/// The caps on sessions and streams, from `[mcp]`.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Sessions this instance holds at once (`mcp.max_sessions`).
    pub sessions: usize,
    /// Sessions per caller, in the store (`mcp.max_sessions_per_caller`).
    pub sessions_per_caller: usize,
    /// Open streams per session and per caller (0 = no cap).
    pub streams_per_session: usize,
    pub streams_per_caller: usize,
}

/// Every session this instance holds, over the store every instance shares.
pub struct Sessions {
    store: Arc<dyn Store>,
    /// This instance's name among the live ones ([`Sessions::heartbeat`]).
    instance: Arc<str>,
    local: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    /// Set once this instance listens to [`CHANNEL`] (from its first session on).
    listening: std::sync::OnceLock<()>,
    caps: Caps,
    idle: Duration,
    streams: Arc<CallerStreams>,
}

impl Sessions {
    pub fn new(store: Arc<dyn Store>, caps: Caps, idle: Duration) -> Arc<Self> {
        let instance = Arc::from(super::random_id());
        let local = RwLock::new(HashMap::new());
        let sessions = Arc::new(Sessions {
            store,
            instance,
            local,
            listening: Default::default(),
            caps,
            idle,
            streams: Arc::default(),
        });
        // From the start: one task for the life of the instance (or, made outside a runtime, from
        // its first session on).
        sessions.listen();
        sessions
    }

    /// Starts listening to what other instances say about the sessions held here, unless it
    /// has (or there is no runtime to listen on yet). Called again before a session's record is
    /// first read, so that no change made after the read goes unheard.
    fn listen(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        self.listening.get_or_init(|| {
            let mut subscription = self.store.subscribe(CHANNEL);
            let sessions = Arc::downgrade(self);
            let listening = async move {
                while let Some(message) = subscription.recv().await {
                    let Some(sessions) = sessions.upgrade() else { return };
                    let Ok((id, signal)) = serde_json::from_slice::<(String, Signal)>(&message) else { continue };
                    let session = sessions.local.read().expect("lock").get(id.as_str()).cloned();
                    if let Some(session) = session {
                        session.receive(signal);
                    }
                }
            };
            runtime.spawn(listening);
        });
    }

    /// How often [`Sessions::heartbeat`] must run.
    pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

    /// Tells the other instances this one is alive (its claims stand).
    pub async fn heartbeat(&self) {
        if let Err(err) = self.store.put(INSTANCES, &self.instance, b"1", ALIVE_TTL).await {
            tracing::debug!(%err, "heartbeat not recorded");
        }
    }

    /// The group of a caller's sessions, each caller capped on its own; sessions without
    /// authentication share one group, capped like this instance's sessions in all.
    fn group_of(owner: Option<&(String, String)>) -> String {
        match owner {
            Some((issuer, subject)) => format!("caller/{}", crate::mcp::state::owner_digest(issuer, subject)),
            None => "anonymous".to_owned(),
        }
    }

    fn cap_of(&self, owner: Option<&(String, String)>) -> usize {
        match owner {
            Some(_) => self.caps.sessions_per_caller,
            None => self.caps.sessions,
        }
    }

    /// Opens a session for a successful `initialize`. When this instance holds as many as it
    /// may, its idle ones are let go first; if it is still full the client gets 503 rather than
    /// another client losing its session. A caller past its own cap loses its least recently
    /// used session instead.
    pub async fn create(
        self: &Arc<Self>,
        principal: Option<&Principal>,
        version: LegacyVersion,
        client_capabilities: ClientCapabilities,
    ) -> Result<Arc<Session>, AppError> {
        if self.len() >= self.caps.sessions {
            self.sweep().await;
            if self.len() >= self.caps.sessions {
                return Err(AppError::Unavailable("too many sessions"));
            }
        }
        let owner = principal.map(|p| (p.issuer.clone(), p.subject.clone()));
        let record = Record {
            owner: owner.clone(),
            version: version.as_str().to_owned(),
            client_capabilities: client_capabilities.0,
            log_level: None,
            subscriptions: BTreeSet::new(),
            opened_at: unix_now(),
        };
        // A v4 UUID from the OS CSPRNG: unguessable, and visible ASCII (0x21-0x7E) as required.
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let (group, cap) = (Self::group_of(owner.as_ref()), self.cap_of(owner.as_ref()));
        let bytes = serde_json::to_vec(&record).expect("records serialise");
        self.listen();
        let evicted = self.store.put_in_group(TABLE, &group, &id, &bytes, self.idle, cap).await.map_err(unavailable)?;
        crate::observe::session_opened(version.as_str());
        for old in evicted {
            tracing::info!(session = %old, "session closed: its caller opened more than mcp.max_sessions_per_caller");
            crate::observe::session_ended("evicted", None);
            self.close(&old).await;
        }
        Ok(self.hold(id, record))
    }

    /// Builds this instance's object for a session.
    fn hold(self: &Arc<Self>, id: Arc<str>, record: Record) -> Arc<Session> {
        let version = LegacyVersion::parse(&record.version).unwrap_or(LegacyVersion::V2025_11_25);
        let group = Self::group_of(record.owner.as_ref());
        let cap = self.cap_of(record.owner.as_ref());
        let session = Arc::new(Session {
            id: id.clone(),
            owner: record.owner.clone(),
            version,
            client_capabilities: Arc::new(ClientCapabilities(record.client_capabilities.clone())),
            record: RwLock::new(record),
            last_touch: Mutex::new(Instant::now()),
            last_seen: Mutex::new(Instant::now()),
            standalone_open: AtomicBool::new(false),
            open_streams: AtomicUsize::new(0),
            pending: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            appended: Notify::new(),
            closed: CancellationToken::new(),
            store: self.store.clone(),
            instance: self.instance.clone(),
            group,
            cap,
            idle: self.idle,
        });
        let previous = self.local.write().expect("lock").insert(id, session.clone());
        if let Some(previous) = previous {
            previous.closed.cancel();
        }
        session
    }

    /// Looks a session up, here or in the store, and marks it used. `None` for a session that
    /// does not exist or has ended (including one another instance ended).
    pub async fn get(self: &Arc<Self>, id: &str) -> Result<Option<Arc<Session>>, AppError> {
        let held = self.local.read().expect("lock").get(id).cloned();
        let session = match held {
            Some(session) if !session.closed.is_cancelled() => {
                let due = session.last_touch.lock().expect("lock").elapsed() >= TOUCH_EVERY.min(self.idle / 4);
                if due {
                    // Still there for every instance? Then its expiry starts again from now, and
                    // its record is read again, in case a change signalled was lost.
                    let Some(bytes) = self.store.get(TABLE, id).await.map_err(unavailable)? else {
                        self.forget(id);
                        return Ok(None);
                    };
                    if let Ok(record) = serde_json::from_slice::<Record>(&bytes) {
                        *session.record.write().expect("lock") = record;
                    }
                    self.store.touch(TABLE, id, self.idle).await.map_err(unavailable)?;
                    *session.last_touch.lock().expect("lock") = Instant::now();
                }
                session
            }
            _ => {
                self.listen();
                let Some(bytes) = self.store.get(TABLE, id).await.map_err(unavailable)? else {
                    self.forget(id);
                    return Ok(None);
                };
                let record: Record = serde_json::from_slice(&bytes)
                    .map_err(|_| AppError::Internal(format!("session {id}: an unreadable record")))?;
                self.store.touch(TABLE, id, self.idle).await.map_err(unavailable)?;
                self.hold(Arc::from(id), record)
            }
        };
        *session.last_seen.lock().expect("lock") = Instant::now();
        Ok(Some(session))
    }

    /// Ends a session for every instance: later requests with its id get 404, its streams close.
    pub async fn remove(&self, session: &Session) -> Result<(), AppError> {
        let deleted = self.store.delete(TABLE, &session.id).await.map_err(unavailable)?;
        self.close(&session.id).await;
        if deleted {
            let opened_at = session.record.read().expect("lock").opened_at;
            let lasted = Duration::from_secs(unix_now().saturating_sub(opened_at));
            crate::observe::session_ended("closed", (opened_at > 0).then_some((session.version.as_str(), lasted)));
        }
        Ok(())
    }

    /// Closes a session here and tells the other instances.
    async fn close(&self, id: &str) {
        self.forget(id);
        if let Err(err) = publish(&*self.store, id, &Signal::Closed).await {
            tracing::warn!(%err, session = id, "could not tell the other instances a session ended");
        }
    }

    /// Lets go of this instance's object for a session.
    fn forget(&self, id: &str) {
        if let Some(session) = self.local.write().expect("lock").remove(id) {
            session.closed.cancel();
        }
    }

    /// Sessions this instance holds.
    pub fn len(&self) -> usize {
        self.local.read().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lets go of the sessions idle here for longer than the timeout and not in use (their
    /// records expire in the store by themselves), and keeps the busy ones alive in the store.
    /// Returns how many were let go.
    pub async fn sweep(&self) -> usize {
        let sessions: Vec<Arc<Session>> = self.local.read().expect("lock").values().cloned().collect();
        let mut gone = 0;
        for session in sessions {
            let idle = session.last_seen.lock().expect("lock").elapsed() > self.idle;
            if session.busy() {
                let _ = self.store.touch(TABLE, &session.id, self.idle).await;
            } else if idle || session.closed.is_cancelled() {
                self.forget(&session.id);
                gone += 1;
            }
        }
        gone
    }

    /// Lets go of every session (shutdown): their records stay for the other instances, or
    /// for this one after a restart.
    pub fn close_all(&self) {
        for (_, session) in self.local.write().expect("lock").drain() {
            session.closed.cancel();
        }
    }

    /// A slot for one more open stream of `session`'s caller; `None` past either cap.
    pub fn stream_slot(&self, session: Option<&Arc<Session>>, principal: Option<&Principal>) -> Option<StreamSlot> {
        let session_slot = match session {
            Some(session) => Some(session.stream_slot(self.caps.streams_per_session)?),
            None => None,
        };
        let caller_slot = match principal {
            Some(principal) if self.caps.streams_per_caller > 0 => {
                let (issuer, subject) = principal.owner_key();
                let key = format!("{issuer}\u{0}{subject}");
                let mut counts = self.streams.0.lock().expect("lock");
                let count = counts.entry(key.clone()).or_insert(0);
                if *count >= self.caps.streams_per_caller {
                    return None;
                }
                *count += 1;
                Some(CallerStreamSlot(self.streams.clone(), key))
            }
            _ => None,
        };
        Some(StreamSlot { _session: session_slot, _caller: caller_slot })
    }
}

fn unavailable(err: StoreError) -> AppError {
    tracing::error!(%err, "the session store failed");
    AppError::Unavailable("the session store is unavailable")
}

/// What a stream's log holds, one tagged entry per event.
enum Entry {
    /// The SEP-1699 priming event: an id to resume from, and the reconnection delay.
    Priming(u64),
    /// A JSON-RPC message.
    Message(Bytes),
    /// The server closes the connection here; the client resumes after it.
    Close,
    /// The stream is complete.
    End,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Entry::Priming(retry_ms) => {
                out.push(b'p');
                out.extend_from_slice(retry_ms.to_string().as_bytes());
            }
            Entry::Message(frame) => {
                out.push(b'm');
                out.extend_from_slice(frame);
            }
            Entry::Close => out.push(b'c'),
            Entry::End => out.push(b'e'),
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Entry> {
        let (tag, rest) = bytes.split_first()?;
        Some(match tag {
            b'p' => Entry::Priming(std::str::from_utf8(rest).ok()?.parse().ok()?),
            b'm' => Entry::Message(Bytes::copy_from_slice(rest)),
            b'c' => Entry::Close,
            b'e' => Entry::End,
            _ => return None,
        })
    }
}

/// The events of one SSE stream of a session, logged in the store so a reconnecting client can
/// resume after the last event it saw, on any instance. Bounded: beyond `capacity` the oldest
/// events are dropped; the log expires with the session's idle timeout.
#[derive(Clone)]
pub struct StreamLog {
    session: Arc<Session>,
    stream: String,
    capacity: usize,
}

impl StreamLog {
    fn log_name(&self) -> String {
        format!("sse/{}/{}", self.session.id, self.stream)
    }

    fn event_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.stream)
    }

    async fn append(&self, entry: Entry) {
        let appended =
            self.session.store.append(&self.log_name(), &entry.encode(), self.capacity, self.session.idle).await;
        if let Err(err) = appended {
            // The client misses this event, and may resume from the one before; nothing else breaks.
            tracing::warn!(%err, session = %self.session.id, "a stream event could not be logged");
        }
        self.session.appended.notify_waiters();
        self.session.signal(&Signal::Appended { stream: self.stream.clone() }).await;
    }

    /// Appends a priming event (empty data) that clients can resume from.
    pub async fn push_priming(&self, retry_ms: u64) {
        self.append(Entry::Priming(retry_ms)).await;
    }

    /// Appends one JSON-RPC message.
    pub async fn push(&self, frame: &[u8]) {
        self.append(Entry::Message(Bytes::copy_from_slice(frame))).await;
    }

    /// Marks the stream complete: readers end after the last event.
    pub async fn finish(&self) {
        self.append(Entry::End).await;
    }

    /// Closes the current connection after the events written so far; the stream goes on for a
    /// resuming reader.
    pub async fn disconnect(&self) {
        self.append(Entry::Close).await;
    }

    /// Parses a `Last-Event-ID` of the form `<stream>-<seq>`.
    pub fn parse_event_id(value: &str) -> Option<(String, u64)> {
        let (stream, seq) = value.trim().rsplit_once('-')?;
        let valid = !stream.is_empty() && stream.len() <= 64 && stream.bytes().all(|b| b.is_ascii_alphanumeric());
        valid.then_some(())?;
        Some((stream.to_owned(), seq.parse().ok()?))
    }

    /// A reader of this stream's events after `after` (all of them when `None`). It ends when
    /// the stream is finished and drained, at a server-side close point (after a `retry:` hint),
    /// or when `stop` is cancelled.
    pub fn reader(
        self,
        after: Option<u64>,
        retry_ms: u64,
        stop: CancellationToken,
    ) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
        let start = after.unwrap_or(0);
        // `delivered`: this connection sent an event. A close point before that is one the
        // client already saw (the end of its previous connection), so it is passed over.
        futures_util::stream::unfold((self, start, false, false), move |(log, cursor, ended, delivered)| {
            let stop = stop.clone();
            async move {
                if ended {
                    return None;
                }
                loop {
                    // Registered before reading, so an event appended meanwhile wakes it.
                    let session = log.session.clone();
                    let appended = session.appended.notified();
                    tokio::pin!(appended);
                    appended.as_mut().enable();
                    let events = log.session.store.read_after(&log.log_name(), cursor).await.unwrap_or_default();
                    let mut chunk = BytesMut::new();
                    let mut next = cursor;
                    let mut close = false;
                    let mut end = false;
                    for (seq, bytes) in events {
                        match Entry::decode(&bytes) {
                            Some(Entry::Priming(retry)) => chunk.put(sse::priming(&log.event_id(seq), retry)),
                            Some(Entry::Message(frame)) => chunk.put(sse::event(Some(&log.event_id(seq)), &frame)),
                            Some(Entry::Close) if delivered || !chunk.is_empty() => {
                                next = seq;
                                close = true;
                                break;
                            }
                            Some(Entry::End) => end = true,
                            _ => {}
                        }
                        next = seq;
                    }
                    if close {
                        chunk.put(sse::retry(retry_ms));
                        return Some((Ok(chunk.freeze()), (log, next, true, true)));
                    }
                    if !chunk.is_empty() {
                        return Some((Ok(chunk.freeze()), (log, next, end, true)));
                    }
                    if end {
                        return None;
                    }
                    // Nothing new: wait for an append (here, or signalled from another instance),
                    // and look again now and then in case a signal was lost.
                    tokio::select! {
                        _ = appended => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.cancelled() => return None,
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn caps() -> Caps {
        Caps { sessions: 100, sessions_per_caller: 2, streams_per_session: 2, streams_per_caller: 3 }
    }

    #[test]
    fn event_ids_name_a_stream_and_a_position() {
        assert_eq!(StreamLog::parse_event_id("a1b2-17"), Some(("a1b2".to_owned(), 17)));
        assert_eq!(StreamLog::parse_event_id("0-3"), Some(("0".to_owned(), 3)));
        for bad in ["", "-1", "abc", "a-b", "a/b-1", "a-1-2x"] {
            assert_eq!(StreamLog::parse_event_id(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn two_instances_share_a_session_and_its_end() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (a, b) = (
            Sessions::new(store.clone(), caps(), Duration::from_secs(60)),
            Sessions::new(store, caps(), Duration::from_secs(60)),
        );
        let session = a.create(None, LegacyVersion::V2025_11_25, ClientCapabilities::default()).await.unwrap();
        let on_b = b.get(&session.id).await.unwrap().expect("B finds A's session");
        assert_eq!(on_b.version, LegacyVersion::V2025_11_25);
        on_b.update(|record| record.log_level = Some(LogLevel::Error)).await.unwrap();
        for _ in 0..100 {
            if session.log_level() == Some(LogLevel::Error) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(session.log_level(), Some(LogLevel::Error), "A hears of B's change");
        b.remove(&session).await.unwrap();
        for _ in 0..100 {
            if session.closed.is_cancelled() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(session.closed.is_cancelled(), "A's object closes when B ends the session");
        assert!(a.get(&session.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn held_sessions_share_one_store_subscription_and_each_hears_only_its_own_signals() {
        let memory = Arc::new(MemoryStore::new());
        let store: Arc<dyn Store> = memory.clone();
        let many = Caps { sessions: 1000, ..caps() };
        let (a, b) = (
            Sessions::new(store.clone(), many, Duration::from_secs(60)),
            Sessions::new(store, many, Duration::from_secs(60)),
        );
        let mut held = Vec::new();
        for _ in 0..200 {
            held.push(a.create(None, LegacyVersion::V2025_11_25, ClientCapabilities::default()).await.unwrap());
        }
        assert_eq!(memory.channel_count(), 1, "one channel for every session, not one each");
        let (target, bystander) = (&held[7], &held[8]);
        let on_b = b.get(&target.id).await.unwrap().unwrap();
        on_b.update(|record| record.log_level = Some(LogLevel::Error)).await.unwrap();
        for _ in 0..100 {
            if target.log_level().is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(target.log_level(), Some(LogLevel::Error), "A hears of B's change to its session");
        assert_eq!(bystander.log_level(), None, "and no other session takes it");
    }

    #[tokio::test(start_paused = true)]
    async fn the_standalone_stream_of_a_stopped_instance_is_taken_over_of_a_live_one_not() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (a, b) = (
            Sessions::new(store.clone(), caps(), Duration::from_secs(60)),
            Sessions::new(store, caps(), Duration::from_secs(60)),
        );
        a.heartbeat().await;
        b.heartbeat().await;
        let session = a.create(None, LegacyVersion::V2025_11_25, ClientCapabilities::default()).await.unwrap();
        let held = session.open_standalone().await.unwrap().expect("A claims the stream");
        let on_b = b.get(&session.id).await.unwrap().unwrap();
        assert!(on_b.open_standalone().await.unwrap().is_none(), "A is alive: one stream per session");
        // A dies without releasing its claim, and stops beating.
        std::mem::forget(held);
        tokio::time::sleep(ALIVE_TTL + Duration::from_millis(100)).await;
        b.heartbeat().await;
        let taken = on_b.open_standalone().await.unwrap();
        assert!(taken.is_some(), "B takes over the claim of a stopped instance before it expires");
        assert!(CLAIM_TTL > ALIVE_TTL + Duration::from_millis(100));
    }
}
