//! Caps on `/mcp` (`tools`): requests in flight (503), time to respond (408), sessions (503) and
//! their idle expiry.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use common::*;
use mcp_auth_server::tools::{self, CallToolResult, NoArgs, ToolInfo, tool_fn};
use serde_json::json;

/// A tool that takes `seconds`, counting its live runs.
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

#[tokio::test]
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

#[tokio::test]
async fn a_request_that_takes_too_long_gets_408_and_its_work_stops() {
    let running = Arc::new(AtomicUsize::new(0));
    let app = app_with_slow_tool("[limits]\nrequest_timeout_secs = 1", running.clone()).await;
    let started = Instant::now();
    let reply = send(&app, modern(1, "tools/call", json!({ "name": "slow" }))).await;
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(running.load(Ordering::SeqCst), 0, "the tool was cancelled, not left running");
}

#[tokio::test]
async fn sessions_are_bounded_in_number_and_expire_when_idle() {
    let app = app_with(&test_settings_with("[mcp]\nmax_sessions = 3\nsession_idle_timeout_secs = 1")).await;
    let sessions = [initialize(&app, LEGACY).await, initialize(&app, LEGACY).await, initialize(&app, LEGACY).await];
    let body = call(1, "initialize", json!({ "protocolVersion": LEGACY, "capabilities": {} }));
    let full = send(&app, raw_post(body.to_string())).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE, "no fourth session while three are live");
    assert!(full.header("retry-after").is_some());

    // Idle sessions expire (the sweeper runs every second for a 1 s timeout).
    tokio::time::sleep(Duration::from_millis(2600)).await;
    for session in &sessions {
        let reply = send(&app, legacy(session, LEGACY, call(2, "ping", json!({})))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "expired sessions are gone");
    }
    initialize(&app, LEGACY).await;
}
