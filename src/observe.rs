//! Metrics (always on; recorded only while the admin listener serves them, see [`crate::admin`]):
//! the name of every series this server exports, and one small function per thing worth
//! counting, so that a call site reads `observe::authentication_failed("expired")` and needs no
//! feature gate.
//!
//! The functions go through the [`metrics`] facade. Until a recorder is installed (no
//! `admin.bind`: the default) each returns after one relaxed atomic load, before any label is
//! built.
//!
//! Names follow the OpenTelemetry semantic conventions where one exists (MCP's
//! `mcp.server.operation.duration` and `mcp.server.session.duration`, HTTP's
//! `http.server.request.duration`, with their attribute names as labels); the rest are ours,
//! under `mcp_auth.`. Prometheus shows dots as underscores and appends the unit and `_total`:
//! `mcp_server_operation_duration_seconds`, `mcp_auth_authentication_failures_total`.
//!
//! Every label value is bounded: fixed words, configured names (scopes), or names checked
//! against what the server offers (tools, prompts, methods). Anything a client made up is
//! `_OTHER`, so no client can grow the number of series.
//!
//! # Adding a series
//! Name it here, describe it in [`describe`], give it a function below that checks [`enabled`]
//! first, and call that function where the thing happens.

use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "mcp")]
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Label, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// `mcp.server.operation.duration` (semantic conventions): one MCP request or notification, from
/// its arrival to its answer (for a streamed answer, to the end of the stream).
pub const MCP_OPERATION_DURATION: &str = "mcp.server.operation.duration";
/// `mcp.server.session.duration` (semantic conventions): a legacy session, from `initialize` to
/// the client's `DELETE` (sessions that expire do so in the store, unseen by any instance).
pub const MCP_SESSION_DURATION: &str = "mcp.server.session.duration";
/// `http.server.request.duration` (semantic conventions): every HTTP request, to its response
/// head.
pub const HTTP_REQUEST_DURATION: &str = "http.server.request.duration";
/// Requests refused by authentication, by `reason`.
pub const AUTHENTICATION_FAILURES: &str = "mcp_auth.authentication.failures";
/// Operations refused by the scope policy, by `scope` (one count per missing scope) and `reason`.
pub const AUTHORIZATION_DENIALS: &str = "mcp_auth.authorization.denials";
/// Verified-token cache lookups, by `result` (`hit`, `miss`).
pub const TOKEN_CACHE_LOOKUPS: &str = "mcp_auth.token_cache.lookups";
/// Fetches of the issuer's JWKS, by `result` (`ok`, `error`).
pub const JWKS_REFRESHES: &str = "mcp_auth.jwks.refreshes";
/// When the JWKS was last fetched successfully, in seconds since the Unix epoch.
pub const JWKS_LAST_SUCCESS: &str = "mcp_auth.jwks.last_success_timestamp";
/// Requests and connections refused by a limit, by `limit`.
pub const RATE_LIMIT_REFUSALS: &str = "mcp_auth.rate_limit.refusals";
/// SSE responses open now.
pub const SSE_STREAMS_OPEN: &str = "mcp_auth.sse.streams_open";
/// Legacy MCP sessions opened by this instance, by `mcp.protocol.version`. Sessions live in the
/// store, shared by instances, so no one instance could say how many are open now.
pub const SESSIONS_OPENED: &str = "mcp_auth.sessions.opened";
/// Legacy MCP sessions ended by this instance, by `reason` (`closed`: the client's `DELETE`;
/// `evicted`: its caller opened more than `mcp.max_sessions_per_caller`).
pub const SESSIONS_ENDED: &str = "mcp_auth.sessions.ended";
/// Sign-ins at the embedded authorization server, by `outcome`.
pub const ISSUER_SIGN_INS: &str = "mcp_auth.issuer.sign_ins";
/// Answers to the consent page, by `decision`.
pub const ISSUER_CONSENTS: &str = "mcp_auth.issuer.consents";
/// Token requests at the embedded authorization server, by `grant` and `outcome`.
pub const ISSUER_TOKENS: &str = "mcp_auth.issuer.tokens";
/// Refresh tokens presented again after they were used (the whole family is revoked).
pub const ISSUER_REFRESH_REUSE: &str = "mcp_auth.issuer.refresh_reuse_detected";
/// Grants the embedded authorization server revoked (their refresh and access tokens), by
/// `reason`: `code_replay`, `refresh_reuse`, `wrong_client` (a refresh token presented by another
/// client), `client_request` (RFC 7009 revocation).
pub const ISSUER_GRANTS_REVOKED: &str = "mcp_auth.issuer.grants_revoked";
/// ID-JAGs presented with the JWT bearer grant (Enterprise-Managed Authorization), by `outcome`:
/// `accepted`, or why not (`untrusted_issuer`, `signature`, `typ`, `audience`, `resource`,
/// `expired`, `replayed`, `client`, `unknown_user`, `scope`, `malformed`, `store_error`).
pub const ISSUER_ID_JAGS: &str = "mcp_auth.issuer.id_jags";
/// Answers of the introspection endpoint (RFC 7662) to authenticated clients, by `active`.
pub const ISSUER_INTROSPECTIONS: &str = "mcp_auth.issuer.introspections";
/// One storage operation, by `backend`, `operation` and `outcome`.
pub const STORE_OPERATION_DURATION: &str = "mcp_auth.store.operation.duration";
/// Always 1, labelled with the version: which build is running.
pub const BUILD_INFO: &str = "mcp_auth.build.info";

/// The value of a label that would otherwise be something a client chose.
pub const OTHER: &str = "_OTHER";

/// Bucket bounds of the MCP operation histogram, in seconds (the semantic conventions' advice).
pub const MCP_DURATION_BUCKETS: &[f64] =
    &[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Bucket bounds of the HTTP request histogram, in seconds (the semantic conventions' advice).
pub const HTTP_DURATION_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
/// Bucket bounds of the session histogram, in seconds: a minute to a day.
pub const SESSION_DURATION_BUCKETS: &[f64] =
    &[1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0];
/// Bucket bounds of the storage histogram, in seconds: half a millisecond to 2.5 s.
pub const STORE_DURATION_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether metrics are being recorded (a recorder is installed).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Called once the recorder is installed: from now on the functions below record.
pub(crate) fn start_recording() {
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    ENABLED.store(true, Ordering::Relaxed);
}

/// The `# HELP` text and unit of every series.
pub(crate) fn describe() {
    describe_histogram!(MCP_OPERATION_DURATION, Unit::Seconds, "MCP request or notification duration");
    describe_histogram!(MCP_SESSION_DURATION, Unit::Seconds, "MCP session duration (legacy sessions)");
    describe_histogram!(HTTP_REQUEST_DURATION, Unit::Seconds, "HTTP request duration, to the response head");
    describe_counter!(AUTHENTICATION_FAILURES, "Requests refused by authentication, by reason");
    describe_counter!(AUTHORIZATION_DENIALS, "MCP operations refused by the scope policy, by missing scope");
    describe_counter!(TOKEN_CACHE_LOOKUPS, "Verified-token cache lookups, by result");
    describe_counter!(JWKS_REFRESHES, "Fetches of the issuer's JWKS, by result");
    describe_gauge!(JWKS_LAST_SUCCESS, Unit::Seconds, "Unix time of the last successful JWKS fetch");
    describe_counter!(RATE_LIMIT_REFUSALS, "Requests and connections refused by a limit, by limit");
    describe_gauge!(SSE_STREAMS_OPEN, "SSE responses open now");
    describe_counter!(SESSIONS_OPENED, "Legacy MCP sessions opened by this instance");
    describe_counter!(SESSIONS_ENDED, "Legacy MCP sessions ended by this instance, by reason");
    describe_counter!(ISSUER_SIGN_INS, "Sign-ins at the embedded authorization server, by outcome");
    describe_counter!(ISSUER_CONSENTS, "Consent page answers, by decision");
    describe_counter!(ISSUER_TOKENS, "Token requests at the embedded authorization server, by grant and outcome");
    describe_counter!(ISSUER_REFRESH_REUSE, "Refresh tokens presented again after use");
    describe_counter!(ISSUER_ID_JAGS, "ID-JAGs presented at the token endpoint, by outcome");
    describe_histogram!(
        STORE_OPERATION_DURATION,
        Unit::Seconds,
        "Storage operation duration, by backend and operation"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label");
}

/// What an MCP operation was, for [`mcp_operation`]. Every value is bounded (see the module docs).
#[derive(Debug, Clone)]
pub struct McpOperation {
    /// `mcp.method.name`: a method this server knows, or [`OTHER`].
    pub method: &'static str,
    /// `modern` or `legacy`.
    pub era: &'static str,
    /// `mcp.protocol.version`: a version this server knows, or [`OTHER`].
    pub protocol_version: &'static str,
    /// `gen_ai.tool.name` or `gen_ai.prompt.name` and the name: only names the server offers.
    pub target: Option<(&'static str, String)>,
}

/// How an MCP operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A tool answered with `isError: true` (`error.type` = `tool_error`).
    ToolError,
    /// A JSON-RPC error (`error.type` = its code).
    Rpc(i64),
    /// Refused by authorization (`error.type` = the JSON-RPC code of the refusal).
    Refused(i64),
    /// Answered with this HTTP error status and nothing more specific (`error.type` = the
    /// status; 401 and 403 count as refused).
    Status(u16),
}

impl Outcome {
    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Rpc(_) => "error",
            Outcome::Refused(_) | Outcome::Status(401 | 403) => "refused",
            Outcome::Status(_) => "error",
        }
    }

    /// `error.type`, as the semantic conventions say: the JSON-RPC code, or `tool_error`.
    pub fn error_type(self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::ToolError => Some("tool_error".to_owned()),
            Outcome::Rpc(code) | Outcome::Refused(code) => Some(code.to_string()),
            Outcome::Status(status) => Some(status.to_string()),
        }
    }
}

/// Records one MCP operation in `mcp.server.operation.duration`.
pub fn mcp_operation(operation: &McpOperation, outcome: Outcome, elapsed: Duration) {
    if !enabled() {
        return;
    }
    let mut labels = Vec::with_capacity(6);
    labels.push(Label::from_static_parts("mcp.method.name", operation.method));
    labels.push(Label::from_static_parts("mcp.protocol.version", operation.protocol_version));
    labels.push(Label::from_static_parts("era", operation.era));
    labels.push(Label::from_static_parts("outcome", outcome.label()));
    if let Some((key, name)) = &operation.target {
        labels.push(Label::new(*key, name.clone()));
    }
    if let Some(error_type) = outcome.error_type() {
        labels.push(Label::new("error.type", error_type));
    }
    histogram!(MCP_OPERATION_DURATION, labels).record(elapsed.as_secs_f64());
}

/// A request refused by authentication. `reason` is one of `missing`, `malformed`, `expired`,
/// `not_yet_valid`, `issued_in_future`, `signature`, `algorithm`, `unknown_key`, `issuer`,
/// `audience`, `no_audience`, `claim`.
pub fn authentication_failed(reason: &'static str) {
    if enabled() {
        counter!(AUTHENTICATION_FAILURES, "reason" => reason).increment(1);
    }
}

/// An operation refused by the scope policy: once per missing `scope` (`reason` =
/// `missing_scope`), or once with `scope` = `-` when the caller's roles forbid it (`reason` =
/// `role`). Scopes come from the configured policy, so the values are bounded.
pub fn authorization_denied<'a>(scopes: impl IntoIterator<Item = &'a str>, reason: &'static str) {
    if !enabled() {
        return;
    }
    let mut any = false;
    for scope in scopes {
        any = true;
        counter!(AUTHORIZATION_DENIALS, "scope" => scope.to_owned(), "reason" => reason).increment(1);
    }
    if !any {
        counter!(AUTHORIZATION_DENIALS, "scope" => "-", "reason" => reason).increment(1);
    }
}

/// A lookup in the verified-token cache.
pub fn token_cache_lookup(hit: bool) {
    if enabled() {
        counter!(TOKEN_CACHE_LOOKUPS, "result" => if hit { "hit" } else { "miss" }).increment(1);
    }
}

/// A fetch of the issuer's JWKS; on success the last-success time is set to now.
pub fn jwks_fetched(ok: bool) {
    if !enabled() {
        return;
    }
    counter!(JWKS_REFRESHES, "result" => if ok { "ok" } else { "error" }).increment(1);
    if ok {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        gauge!(JWKS_LAST_SUCCESS).set(now.as_secs_f64());
    }
}

/// A request or connection refused by a limit: `per_address`, `per_caller`, `in_flight`,
/// `timeout` (the `[limits]` of `/mcp`), or `connections_per_address` (the connection loop).
pub fn rate_limited(limit: &'static str) {
    if enabled() {
        counter!(RATE_LIMIT_REFUSALS, "limit" => limit).increment(1);
    }
}

/// An SSE response opened (+1) or ended (-1).
pub fn sse_streams(change: i8) {
    if enabled() {
        gauge!(SSE_STREAMS_OPEN).increment(f64::from(change));
    }
}

/// A legacy session opened (after `initialize` succeeded).
pub fn session_opened(protocol_version: &'static str) {
    if enabled() {
        counter!(SESSIONS_OPENED, "mcp.protocol.version" => protocol_version).increment(1);
    }
}

/// A legacy session ended here: `reason` is `closed` (the client's `DELETE`, which also records
/// its protocol version and how long it `lasted`, when known) or `evicted`.
pub fn session_ended(reason: &'static str, lasted: Option<(&'static str, Duration)>) {
    if !enabled() {
        return;
    }
    counter!(SESSIONS_ENDED, "reason" => reason).increment(1);
    if let Some((protocol_version, lasted)) = lasted {
        histogram!(MCP_SESSION_DURATION, "mcp.protocol.version" => protocol_version).record(lasted.as_secs_f64());
    }
}

/// A sign-in attempt at the embedded authorization server. `outcome`: `ok`,
/// `wrong_credentials`, `rate_limited`.
pub fn issuer_sign_in(outcome: &'static str) {
    if enabled() {
        counter!(ISSUER_SIGN_INS, "outcome" => outcome).increment(1);
    }
}

/// An answer to the consent page. `decision`: `allow` or `deny`.
pub fn issuer_consent(decision: &'static str) {
    if enabled() {
        counter!(ISSUER_CONSENTS, "decision" => decision).increment(1);
    }
}

/// A request to the token endpoint: `grant` is the request's `grant_type` as sent (only the
/// four the server implements are kept, anything else is [`OTHER`]); `outcome` is `issued`
/// or the OAuth error code it was refused with (`invalid_grant`, `invalid_client`, ...).
pub fn issuer_token(grant: &str, outcome: &'static str) {
    if !enabled() {
        return;
    }
    let grant = crate::config::GRANT_TYPES.into_iter().find(|known| *known == grant).unwrap_or(OTHER);
    counter!(ISSUER_TOKENS, "grant" => grant, "outcome" => outcome).increment(1);
}

/// A used refresh token presented again (its family is revoked).
pub fn issuer_refresh_reuse_detected() {
    if enabled() {
        counter!(ISSUER_REFRESH_REUSE).increment(1);
    }
}

/// A grant revoked, and why (see [`ISSUER_GRANTS_REVOKED`]).
pub fn issuer_grant_revoked(reason: &'static str) {
    if enabled() {
        counter!(ISSUER_GRANTS_REVOKED, "reason" => reason).increment(1);
    }
}

/// An ID-JAG presented at the token endpoint, and how it ended (see [`ISSUER_ID_JAGS`]).
pub fn issuer_id_jag(outcome: &'static str) {
    if enabled() {
        counter!(ISSUER_ID_JAGS, "outcome" => outcome).increment(1);
    }
}

/// An introspection answered, active or not.
pub fn issuer_introspection(active: bool) {
    if enabled() {
        counter!(ISSUER_INTROSPECTIONS, "active" => if active { "true" } else { "false" }).increment(1);
    }
}

/// Times one storage operation: `let timer = observe::store_timer("sqlite", "take_code");`
/// before it, `timer.finish(result.is_ok())` after it. `backend` is `memory`, `sqlite` or
/// `redis`; `operation` the name of the `Store` method.
pub fn store_timer(backend: &'static str, operation: &'static str) -> StoreTimer {
    StoreTimer { backend, operation, started: enabled().then(Instant::now) }
}

/// See [`store_timer`].
#[must_use = "call finish() when the operation is done"]
pub struct StoreTimer {
    backend: &'static str,
    operation: &'static str,
    started: Option<Instant>,
}

impl StoreTimer {
    /// Records the operation's duration, with `outcome` `ok` or `error`.
    pub fn finish(self, ok: bool) {
        if let Some(started) = self.started {
            let outcome = if ok { "ok" } else { "error" };
            histogram!(STORE_OPERATION_DURATION, "backend" => self.backend, "operation" => self.operation, "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
        }
    }
}

#[cfg(feature = "mcp")]
tokio::task_local! {
    /// The outcome of the operation being served on this task.
    pub(crate) static OUTCOME: Arc<OutcomeSlot>;
}

/// Where the parts that answer an operation report how it went (`mcp::observe` opens one per
/// operation; `mcp::jsonrpc` reports into it, so it lives here, below both).
#[cfg(feature = "mcp")]
#[derive(Default, Debug)]
pub struct OutcomeSlot(Mutex<Option<Outcome>>);

#[cfg(feature = "mcp")]
impl OutcomeSlot {
    /// Keeps the first problem; an `Ok` is never reported (it is what nothing reported means).
    pub(crate) fn report(&self, outcome: Outcome) {
        if outcome != Outcome::Ok {
            self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(outcome);
        }
    }

    pub(crate) fn take(&self) -> Option<Outcome> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// Reports how the operation being served on this task went; nothing when none is observed.
#[cfg(feature = "mcp")]
pub(crate) fn report(outcome: Outcome) {
    let _ = OUTCOME.try_with(|slot| slot.report(outcome));
}

/// Middleware on the public routes (`routed`) and on the fallback that answers every other path:
/// `http.server.request.duration` by method, route and status. Every route is a fixed path, so
/// the route is the path where a route serves it, and [`OTHER`] where none does. The composition
/// root adds it only while metrics are recorded.
pub async fn http_requests(State(routed): State<bool>, request: Request, next: Next) -> Response {
    let method = ["GET", "POST", "DELETE", "OPTIONS", "HEAD", "PUT", "PATCH"]
        .into_iter()
        .find(|known| *known == request.method().as_str())
        .unwrap_or(OTHER);
    let route = if routed { request.uri().path().to_owned() } else { OTHER.to_owned() };
    let started = Instant::now();
    let response = next.run(request).await;
    histogram!(
        HTTP_REQUEST_DURATION,
        "http.request.method" => method,
        "http.route" => route,
        "http.response.status_code" => response.status().as_str().to_owned(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_json_rpc_codes_or_tool_error_as_the_conventions_say() {
        assert_eq!(Outcome::Ok.error_type(), None);
        assert_eq!(Outcome::ToolError.error_type().as_deref(), Some("tool_error"));
        assert_eq!(Outcome::Rpc(-32602).error_type().as_deref(), Some("-32602"));
        assert_eq!(Outcome::Refused(-31403).label(), "refused");
    }

    #[cfg(feature = "mcp")]
    #[test]
    fn the_first_problem_reported_is_the_outcome() {
        let slot = OutcomeSlot::default();
        slot.report(Outcome::Ok);
        slot.report(Outcome::Rpc(-32602));
        slot.report(Outcome::Refused(-31403));
        assert_eq!(slot.take(), Some(Outcome::Rpc(-32602)));
        assert_eq!(slot.take(), None);
    }

    #[cfg(feature = "mcp")]
    #[tokio::test]
    async fn reports_reach_the_operation_served_on_this_task_only() {
        let slot = Arc::new(OutcomeSlot::default());
        OUTCOME.scope(slot.clone(), async { report(Outcome::Rpc(-32601)) }).await;
        report(Outcome::Rpc(-32603));
        assert_eq!(slot.take(), Some(Outcome::Rpc(-32601)));
    }

    #[test]
    fn without_a_recorder_nothing_is_recorded_and_a_store_timer_reads_no_clock() {
        // No test in this binary installs a recorder.
        assert!(!enabled());
        assert!(store_timer("memory", "get").started.is_none());
    }
}
