//! Shared test helpers: settings, the app for `oneshot`, a real server on port 0, and request
//! builders for both MCP eras.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use mcp_auth_server::Settings;
use mcp_auth_server::serve::{self, Shutdown};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const MODERN: &str = "2026-07-28";
pub const LEGACY: &str = "2025-11-25";

pub mod binary;
#[cfg(all(feature = "issuer", feature = "tools"))]
pub mod downstream;
#[cfg(any(feature = "store-sqlite", feature = "store-redis"))]
pub mod failing_store;
#[cfg(feature = "issuer")]
pub mod issuer;
#[cfg(feature = "jwt")]
pub mod tokens;

/// The base layer of the test settings. Rate limits off: functional tests send many requests
/// with one token from one (unknown) address; the limits have their own tests, which switch them
/// on. `/health` with every layer's report, which tests read.
pub const TEST_LAYER: &str = "[limits]\nper_address_per_sec = 0\nper_caller_per_sec = 0\n[server]\nhealth_details = true\n[storage]\nurl = \"memory:\"\n";

/// Default settings for tests, with `overrides` (TOML) on top. Independent of the environment.
pub fn test_settings_with(overrides: &str) -> Settings {
    Settings::from_toml_layers(&[TEST_LAYER, &auth_settings(), overrides]).expect("test settings are valid")
}

/// With `jwt`: the test key pair (generated once under the target directory, never in keys/).
#[cfg(feature = "jwt")]
pub fn auth_settings() -> String {
    tokens::settings_layer()
}

/// Without `jwt` there are no keys to configure.
#[cfg(not(feature = "jwt"))]
pub fn auth_settings() -> String {
    String::new()
}

/// With `jwt`: the `Authorization` value [`send`] adds — a valid token for the default test
/// settings, so tests of other layers run unchanged with authentication on.
#[cfg(feature = "jwt")]
pub fn auth_header() -> Option<String> {
    Some(format!("Bearer {}", tokens::default_token()))
}

/// Without `jwt` requests need no credentials.
#[cfg(not(feature = "jwt"))]
pub fn auth_header() -> Option<String> {
    None
}

/// With `jwt`: credentials for a server spawned at `base` (its own issuer and audience).
#[cfg(feature = "jwt")]
pub fn auth_header_for(base: &str) -> Option<String> {
    Some(format!(
        "Bearer {}",
        tokens::TokenBuilder::new().for_server(base).scopes(&["mcp:read", "mcp:tools", "mcp:prompts"]).build()
    ))
}

/// Without `jwt` requests need no credentials.
#[cfg(not(feature = "jwt"))]
pub fn auth_header_for(_base: &str) -> Option<String> {
    None
}

pub fn test_settings() -> Settings {
    test_settings_with("")
}

/// The application as the binary builds it.
pub async fn app() -> Router {
    mcp_auth_server::app(&test_settings()).await.expect("app builds")
}

pub async fn app_with(settings: &Settings) -> Router {
    mcp_auth_server::app(settings).await.expect("app builds")
}

/// A server listening on 127.0.0.1 on a free port.
pub struct TestServer {
    pub base: String,
    pub shutdown: Shutdown,
    pub handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }
}

/// Starts the real server (TCP, graceful shutdown) with `settings` adjusted to the chosen port.
pub async fn spawn_app_with(overrides: &str) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let settings =
        test_settings_with(&format!("{overrides}\n[server]\nbind = \"{addr}\"\npublic_url = \"http://{addr}\"\n"));
    spawn_with_settings(listener, settings).await
}

pub async fn spawn_app() -> TestServer {
    spawn_app_with("").await
}

pub async fn spawn_with_settings(listener: tokio::net::TcpListener, settings: Settings) -> TestServer {
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::default();
    let options = serve::ServeOptions {
        grace: std::time::Duration::from_secs(5),
        ..serve::ServeOptions::from_settings(&settings.server)
    };
    // The service the binary serves (in-process tests use `build`, the same routes in a Router).
    let app = mcp_auth_server::AppBuilder::new(settings).shutdown(shutdown.clone()).build().await.expect("app builds");
    let signal = shutdown.wait();
    let handle = tokio::spawn(serve::serve(listener, app, signal, shutdown.clone(), options));
    TestServer { base: format!("http://{addr}"), shutdown, handle }
}

/// A buffered response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_sse(&self) -> bool {
        self.header("content-type").is_some_and(|c| c.starts_with("text/event-stream"))
    }

    /// The JSON-RPC messages of the response, whether it is JSON or SSE.
    pub fn messages(&self) -> Vec<Value> {
        if self.is_sse() { sse_messages(&self.body) } else { vec![self.json()] }
    }

    /// The final JSON-RPC response (the last message).
    pub fn rpc(&self) -> Value {
        self.messages().pop().expect("a message")
    }
}

/// The `data:` payloads of an SSE body that carry JSON.
pub fn sse_messages(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            let data = data.join("\n");
            if data.trim().is_empty() { None } else { serde_json::from_str(&data).ok() }
        })
        .collect()
}

/// Sends one request through the router, with valid credentials unless it carries its own
/// `Authorization` header (see [`auth_header`]).
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    send_as_is(app, authorized(request)).await
}

/// `request` with the default credentials added, unless it has its own (see [`auth_header`]).
pub fn authorized(mut request: Request<Body>) -> Request<Body> {
    if let Some(value) = auth_header()
        && !request.headers().contains_key("authorization")
    {
        request.headers_mut().insert("authorization", value.parse().expect("a header value"));
    }
    request
}

/// Sends one request through the router as built, with the `Host` header every HTTP/1.1 client
/// sends (`127.0.0.1:3000`) when it has none.
pub async fn send_as_is(app: &Router, mut request: Request<Body>) -> Reply {
    if !request.headers().contains_key("host") {
        request.headers_mut().insert("host", axum::http::HeaderValue::from_static("127.0.0.1:3000"));
    }
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    Reply { status, headers, body }
}

/// The `_meta` envelope of a modern request.
pub fn envelope(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1.0" },
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// A modern request with a correct envelope and routing headers.
pub fn modern(id: i64, method: &str, mut params: Value) -> Request<Body> {
    if params.get("_meta").is_none() {
        params["_meta"] = envelope(json!({}));
    }
    let name = match method {
        "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str).map(str::to_owned),
        "resources/read" => params.get("uri").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let mut builder = post_builder().header("mcp-protocol-version", MODERN).header("mcp-method", method);
    if let Some(name) = name {
        builder = builder.header("mcp-name", name);
    }
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    builder.body(Body::from(body.to_string())).unwrap()
}

/// A POST to /mcp with the standard content headers.
pub fn post_builder() -> axum::http::request::Builder {
    Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

/// A raw POST body with the standard headers.
pub fn raw_post(body: impl Into<Body>) -> Request<Body> {
    post_builder().body(body.into()).unwrap()
}

/// Opens a legacy session at `version`; returns its id.
pub async fn initialize(app: &Router, version: &str) -> String {
    initialize_with(app, version, json!({})).await
}

pub async fn initialize_with(app: &Router, version: &str, capabilities: Value) -> String {
    let body = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": version, "capabilities": capabilities, "clientInfo": { "name": "test", "version": "1.0" } }
    });
    let reply = send(app, raw_post(body.to_string())).await;
    assert_eq!(reply.status, StatusCode::OK, "initialize: {}", String::from_utf8_lossy(&reply.body));
    let session = reply.header("mcp-session-id").expect("a session id").to_owned();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let reply = send(app, legacy(&session, version, initialized)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    session
}

/// A legacy request within `session`.
pub fn legacy(session: &str, version: &str, body: Value) -> Request<Body> {
    post_builder()
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", version)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A legacy JSON-RPC request body.
pub fn call(id: i64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// One SSE event as received.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub id: Option<String>,
    pub retry: Option<u64>,
    pub data: String,
    pub comment: bool,
}

impl Event {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// Reads an SSE response body event by event, as a client would while it is still open.
pub struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    pub fn new(response: axum::response::Response) -> Self {
        Events { body: response.into_body(), buffer: String::new() }
    }

    /// The next event (comments included), or `None` when the stream ended or nothing came
    /// within `wait`.
    pub async fn next_event(&mut self, wait: std::time::Duration) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("retry:") {
                        event.retry = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    } else if line.starts_with(':') {
                        event.comment = true;
                    }
                }
                return Some(event);
            }
            let frame = tokio::time::timeout(wait, http_body_util::BodyExt::frame(&mut self.body)).await.ok()??.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// The next JSON-RPC message, skipping priming events and keep-alives.
    pub async fn next_message(&mut self, wait: std::time::Duration) -> Option<Value> {
        loop {
            let event = self.next_event(wait).await?;
            if let Some(message) = event.json() {
                return Some(message);
            }
        }
    }
}

/// Sends a request (with credentials and the `Host` every client sends, as [`send`] does) and
/// returns the raw response, for streaming reads.
pub async fn open(app: &Router, request: Request<Body>) -> axum::response::Response {
    let mut request = authorized(request);
    if !request.headers().contains_key("host") {
        request.headers_mut().insert("host", axum::http::HeaderValue::from_static("127.0.0.1:3000"));
    }
    app.clone().oneshot(request).await.expect("infallible")
}

/// Captures what a tracing subscriber writes, for tests of the log (install the subscriber with
/// `tracing::subscriber::set_default`).
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text().lines().filter(|line| line.contains(needle)).map(str::to_owned).collect()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}
