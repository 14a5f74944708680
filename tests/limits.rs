//! Caps on `/mcp` (`tools`): requests in flight (503), time to respond (408), sessions (503) and
//! their idle expiry.
//!
//! The in-process tests run on tokio's paused clock: the slow tool's 3 s and the 1 s timeouts
//! pass as soon as nothing else is left to run. The shutdown test talks TCP, where the clock
//! cannot be paused, so its tool waits for the test's word instead of for time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use mcp_auth_server::tools::{self, CallToolResult, NoArgs, ToolInfo, tool_fn};
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A `slow` tool that takes 3 s of tokio's clock (no time at all when it is paused), counting its
/// live runs.
async fn app_with_slow_tool(overrides: &str, running: Arc<AtomicUsize>) -> Router {
    let slow = tool_fn(ToolInfo::new("slow", "Takes its time"), move |_, _: NoArgs| {
        let running = running.clone();
        async move {
            running.fetch_add(1, Ordering::SeqCst);
            struct Done(Arc<AtomicUsize>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _done = Done(running);
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(CallToolResult::text("finally"))
        }
    });
    let settings = test_settings_with(overrides);
    mcp_auth_server::AppBuilder::new(settings).registry(tools::builtin().tool(slow)).build().await.unwrap()
}

/// A `slow` tool that notifies `started` when it runs, then answers once `release` is notified.
async fn app_with_gated_tool(overrides: &str, started: Arc<Notify>, release: Arc<Notify>) -> Router {
    let slow = tool_fn(ToolInfo::new("slow", "Waits to be released"), move |_, _: NoArgs| {
        let (started, release) = (started.clone(), release.clone());
        async move {
            started.notify_one();
            release.notified().await;
            Ok(CallToolResult::text("finally"))
        }
    });
    let settings = test_settings_with(overrides);
    mcp_auth_server::AppBuilder::new(settings).registry(tools::builtin().tool(slow)).build().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn requests_beyond_the_in_flight_cap_get_503_with_retry_after() {
    let running = Arc::new(AtomicUsize::new(0));
    let app = app_with_slow_tool("[limits]\nmax_in_flight = 2", running.clone()).await;
    let first = tokio::spawn({
        let app = app.clone();
        async move { send(&app, modern(1, "tools/call", json!({ "name": "slow" }))).await }
    });
    let second = tokio::spawn({
        let app = app.clone();
        async move { send(&app, modern(2, "tools/call", json!({ "name": "slow" }))).await }
    });
    while running.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third = send(&app, modern(3, "tools/call", json!({ "name": "echo", "arguments": { "message": "x" } }))).await;
    assert_eq!(third.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.header("retry-after").is_some());
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
    assert_eq!(second.await.unwrap().status, StatusCode::OK);
    let fourth = send(&app, modern(4, "tools/call", json!({ "name": "echo", "arguments": { "message": "x" } }))).await;
    assert_eq!(fourth.status, StatusCode::OK, "capacity is given back");
}

#[tokio::test(start_paused = true)]
async fn a_request_that_takes_too_long_gets_408_and_its_work_stops() {
    let running = Arc::new(AtomicUsize::new(0));
    let app = app_with_slow_tool("[limits]\nrequest_timeout_secs = 1", running.clone()).await;
    let started = Instant::now();
    let reply = send(&app, modern(1, "tools/call", json!({ "name": "slow" }))).await;
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(running.load(Ordering::SeqCst), 0, "the tool was cancelled, not left running");
}

#[tokio::test(start_paused = true)]
async fn sessions_are_bounded_in_number_and_expire_when_idle() {
    let app = app_with(&test_settings_with("[mcp]\nmax_sessions = 3\nsession_idle_timeout_secs = 1")).await;
    let sessions = [initialize(&app, LEGACY).await, initialize(&app, LEGACY).await, initialize(&app, LEGACY).await];
    let body = call(1, "initialize", json!({ "protocolVersion": LEGACY, "capabilities": {} }));
    let full = send(&app, raw_post(body.to_string())).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE, "no fourth session while three are live");
    assert!(full.header("retry-after").is_some());

    // Idle sessions expire (the sweeper runs every second for a 1 s timeout); the paused clock
    // gets there at once.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    for session in &sessions {
        let reply = send(&app, legacy(session, LEGACY, call(2, "ping", json!({})))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "expired sessions are gone");
    }
    initialize(&app, LEGACY).await;
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_still_gets_its_answer() {
    use mcp_auth_server::serve;
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = test_settings_with(&format!("[server]\nbind = \"{addr}\"\npublic_url = \"http://{addr}\""));
    let options = serve::ServeOptions::from_settings(&settings.server);
    let app = app_with_gated_tool(
        &format!("[server]\nbind = \"{addr}\"\npublic_url = \"http://{addr}\""),
        started.clone(),
        release.clone(),
    )
    .await;
    let shutdown = serve::Shutdown::default();
    let server = tokio::spawn(serve::serve(listener, app, shutdown.wait(), shutdown.clone(), options));

    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "slow", "_meta": envelope(json!({})) } });
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "slow")
        .body(body.to_string());
    if let Some(credentials) = auth_header_for(&format!("http://{addr}")) {
        request = request.header("authorization", credentials);
    }
    let call = tokio::spawn(request.send());
    started.notified().await;
    shutdown.trigger();
    // The server drops its listener when it starts the graceful shutdown: once a new connection
    // is refused, the shutdown is under way with the call still in flight, and the tool may end.
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        tokio::task::yield_now().await;
    }
    release.notify_one();
    let reply = call.await.unwrap().expect("answered, not dropped");
    assert_eq!(reply.status(), 200);
    let text = reply.text().await.unwrap();
    assert!(text.contains("finally"), "{text}");
    assert!(tokio::time::timeout(Duration::from_secs(10), server).await.is_ok(), "the server then stops");
}
