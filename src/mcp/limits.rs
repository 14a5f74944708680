//! Limits on `/mcp`, so one client cannot take the server from the others: rate limits (429 +
//! `Retry-After`) per client address before authentication and per caller after it, a cap on
//! requests in flight (503 + `Retry-After`), and a time limit on producing a response (408).
//!
//! Every limit has a default in `config/default.toml` (`[limits]`); 0 switches a limit off. Each
//! refusal counts in `mcp_auth.rate_limit.refusals`, by limit (see [`crate::observe`]).
//! The rate limits use GCRA (the `governor` crate): a steady rate plus a burst allowance, with
//! the exact time until the next request is allowed, which is what `Retry-After` reports.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tower_http::validate_request::ValidateRequest;

use crate::config::LimitSettings;
use crate::error::AppError;
use crate::principal::Principal;

/// Who a request is charged to.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Caller(Caller),
    /// No address known (in-process tests): one shared bucket.
    Unknown,
}

/// An authenticated caller as a rate-limit key: equal and hashed by issuer and subject only, so
/// it is the same caller across token refreshes.
#[derive(Clone)]
struct Caller(Principal);

impl PartialEq for Caller {
    fn eq(&self, other: &Self) -> bool {
        self.0.owner_key() == other.0.owner_key()
    }
}

impl Eq for Caller {}

impl Hash for Caller {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.owner_key().hash(state);
    }
}

/// For the log line of a refusal: the address, or the caller's issuer and subject.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Address(address) => f.debug_tuple("Address").field(address).finish(),
            Key::Caller(Caller(principal)) => {
                let (issuer, subject) = principal.owner_key();
                f.debug_tuple("Caller").field(&issuer).field(&subject).finish()
            }
            Key::Unknown => f.write_str("Unknown"),
        }
    }
}

/// A keyed rate limiter; `None` when switched off.
#[derive(Clone)]
struct Limiter(Option<Arc<DefaultKeyedRateLimiter<Key>>>);

impl Limiter {
    fn new(per_second: u32, burst: u32) -> Self {
        let Some(rate) = NonZeroU32::new(per_second) else { return Limiter(None) };
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Limiter(Some(Arc::new(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))))
    }

    /// `Err(wait)` when `key` must wait before its next request.
    fn check(&self, key: &Key) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets keys whose buckets are full again, so the table stays as small as the set of
    /// recently active clients.
    fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The limits of `/mcp`, built once from `[limits]`. The composition root applies them in this
/// order: [`PerAddress`] and [`in_flight_and_time`] outside authentication, [`PerCaller`] inside
/// it. The rate limits decide before the request goes on, so they are request validators
/// (tower-http's `ValidateRequestHeaderLayer::custom`); the other two follow the request to its
/// response, so they are middleware.
pub struct Limits {
    per_address: Limiter,
    per_caller: Limiter,
    in_flight: Option<Arc<Semaphore>>,
    timeout: Option<Duration>,
    trust_forwarded_for: bool,
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Arc<Self> {
        let limits = Limits {
            per_address: Limiter::new(settings.per_address_per_sec, settings.per_address_burst),
            per_caller: Limiter::new(settings.per_caller_per_sec, settings.per_caller_burst),
            in_flight: (settings.max_in_flight > 0).then(|| Arc::new(Semaphore::new(settings.max_in_flight))),
            timeout: (settings.request_timeout_secs > 0).then(|| Duration::from_secs(settings.request_timeout_secs)),
            trust_forwarded_for: settings.trust_forwarded_for,
        };
        limits.spawn_janitor();
        Arc::new(limits)
    }

    fn spawn_janitor(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (address, caller) = (self.per_address.clone(), self.per_caller.clone());
        if address.0.is_none() && caller.0.is_none() {
            return;
        }
        let weak = address.0.as_ref().map(Arc::downgrade);
        let weak_caller = caller.0.as_ref().map(Arc::downgrade);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(60));
            loop {
                ticks.tick().await;
                let address = weak.as_ref().and_then(|w| w.upgrade());
                let caller = weak_caller.as_ref().and_then(|w| w.upgrade());
                if address.is_none() && caller.is_none() {
                    return;
                }
                Limiter(address).forget_idle();
                Limiter(caller).forget_idle();
            }
        });
    }

    /// The client's address (see [`crate::serve::client_address`]).
    fn address<B>(&self, request: &axum::http::Request<B>) -> Option<IpAddr> {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
        crate::serve::client_address(request.headers(), peer, self.trust_forwarded_for)
    }
}

fn too_many(limit: &'static str, key: &Key, wait: Duration) -> Response {
    tracing::info!(?key, wait_ms = wait.as_millis() as u64, "rate limited");
    crate::observe::rate_limited(limit);
    AppError::TooManyRequests { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 }.into_response()
}

/// The per-address rate limit, outside authentication: bounds floods of bogus tokens.
#[derive(Clone)]
pub struct PerAddress(pub Arc<Limits>);

impl<B> ValidateRequest<B> for PerAddress {
    type ResponseBody = axum::body::Body;

    fn validate(&mut self, request: &mut axum::http::Request<B>) -> Result<(), Response> {
        let key = self.0.address(request).map_or(Key::Unknown, Key::Address);
        self.0.per_address.check(&key).map_err(|wait| too_many("per_address", &key, wait))
    }
}

/// Middleware outside authentication: the in-flight cap and the time limit on starting a
/// response.
pub async fn in_flight_and_time(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    // Held until the response starts: a long-lived stream then no longer counts as in flight
    // (streams have their own bounds).
    let _permit = match &limits.in_flight {
        None => None,
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                crate::observe::rate_limited("in_flight");
                return AppError::Unavailable("too many requests in flight").into_response();
            }
        },
    };
    match limits.timeout {
        None => next.run(request).await,
        Some(limit) => tokio::time::timeout(limit, next.run(request)).await.unwrap_or_else(|_| {
            crate::observe::rate_limited("timeout");
            AppError::RequestTimeout.into_response()
        }),
    }
}

/// The per-caller rate limit, inside authentication (by address when there is no
/// authentication), for fairness between callers.
#[derive(Clone)]
pub struct PerCaller(pub Arc<Limits>);

impl<B> ValidateRequest<B> for PerCaller {
    type ResponseBody = axum::body::Body;

    fn validate(&mut self, request: &mut axum::http::Request<B>) -> Result<(), Response> {
        let limits = &self.0;
        let key = match request.extensions().get::<Principal>() {
            Some(caller) => Key::Caller(Caller(caller.clone())),
            None => limits.address(request).map_or(Key::Unknown, Key::Address),
        };
        limits.per_caller.check(&key).map_err(|wait| too_many("per_caller", &key, wait))?;
        // A 2025-03-26 batch holds many messages in one request: the transport charges the rest
        // to the same caller once it has counted them.
        if let Some(limiter) = &limits.per_caller.0 {
            request.extensions_mut().insert(Charge { limiter: limiter.clone(), key });
        }
        Ok(())
    }
}

/// What the per-caller rate limit charges a request to, for the transport to charge the further
/// messages of a batch (each message counts, not each request).
#[derive(Clone)]
pub struct Charge {
    limiter: Arc<DefaultKeyedRateLimiter<Key>>,
    key: Key,
}

impl Charge {
    /// Charges `messages` more; a refusal (429 with the time to wait) when the caller's budget
    /// does not hold them all, in which case none is charged.
    pub fn more(&self, messages: u32) -> Result<(), AppError> {
        let Some(messages) = NonZeroU32::new(messages) else { return Ok(()) };
        let wait = match self.limiter.check_key_n(&self.key, messages) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(DefaultClock::default().now()),
            // More than the burst can ever hold: as long a wait as a whole burst takes.
            Err(_) => Duration::from_secs(1),
        };
        tracing::info!(key = ?self.key, messages = messages.get(), wait_ms = wait.as_millis() as u64, "rate limited (batch)");
        crate::observe::rate_limited("per_caller");
        Err(AppError::TooManyRequests { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 })
    }
}
