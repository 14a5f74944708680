//! The request path of `/mcp` without the network (all features).
//!
//! ```sh
//! cargo bench --all-features --bench hot_path
//! ```
//!
//! - `jsonrpc_parse/tools_call`: the body of a modern `tools/call echo` into a JSON-RPC message.
//! - `scope_decision/tools_call`: the policy's verdict on a `tools/call` for a caller holding
//!   the scopes it needs (the default `[scopes]` policy, with a role).
//! - `router/modern_tools_call`: the whole router (`oneshot`), as the binary builds it: Host
//!   guard, rate limits, authentication with a cached token, the per-caller limit, parsing, the
//!   modern envelope and routing headers, the policy, the audit trail, the echo tool, and the
//!   answer serialised to bytes.
//! - `router/legacy_tools_call`: the same call inside a 2025-11-25 session.
//!
//! Load under real connections is `benches/load.sh`; instruction counts, `benches/profile.sh`.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use mcp_auth_server::Settings;
use mcp_auth_server::jwt::LocalKeys;
use mcp_auth_server::jwt::verify::unix_now;
use mcp_auth_server::mcp::AccessControl;
use mcp_auth_server::mcp::jsonrpc;
use mcp_auth_server::principal::{Identity, Principal};
use mcp_auth_server::scopes::Policy;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const MODERN_CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
const LEGACY_CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}"#;

/// The defaults, with the bench key pair, and rate limits far above what a bench sends (so
/// their bookkeeping is measured, never a refusal).
fn settings() -> Settings {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-keys");
    // The server generates keys only at its development defaults: the bench pair is made here.
    mcp_auth_server::jwt::keyfile::load_or_generate(&dir.join("private.pem"), &[dir.join("public.pem")])
        .expect("the bench key pair");
    Settings::from_toml(&format!(
        "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}]\n\
         [limits]\nper_address_per_sec = 1000000000\nper_address_burst = 1000000000\n\
         per_caller_per_sec = 1000000000\nper_caller_burst = 1000000000\n\
         [log]\nfilter = \"warn\"\n",
        dir.join("private.pem").display().to_string(),
        dir.join("public.pem").display().to_string()
    ))
    .expect("settings")
}

fn token(settings: &Settings) -> String {
    let keys = LocalKeys::load_or_generate(settings).expect("keys");
    let now = unix_now();
    keys.sign(&json!({
        "iss": settings.token_issuer(),
        "sub": "alice",
        "aud": settings.mcp_url(),
        "iat": now,
        "exp": now + 3600,
        "scope": "mcp:read mcp:tools",
        "roles": ["user"],
        "preferred_username": "alice",
        "client_id": "bench",
    }))
    .expect("sign")
}

fn post(token: &str) -> axum::http::request::Builder {
    Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {token}"))
}

fn modern_call(token: &str) -> Request<Body> {
    post(token)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .body(Body::from(MODERN_CALL))
        .unwrap()
}

fn legacy_call(token: &str, session: &str) -> Request<Body> {
    post(token)
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .body(Body::from(LEGACY_CALL))
        .unwrap()
}

/// Sends a request and reads the whole answer, checking it is the echo.
async fn call(app: &Router, request: Request<Body>) -> usize {
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    debug_assert!(body.windows(7).any(|w| w == b"\"hello\""));
    body.len()
}

async fn open_session(app: &Router, token: &str) -> String {
    let initialize = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    let response = app.clone().oneshot(post(token).body(Body::from(initialize)).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

fn parse(c: &mut Criterion) {
    c.bench_function("jsonrpc_parse/tools_call", |b| {
        b.iter(|| jsonrpc::parse(black_box(MODERN_CALL.as_bytes())).expect("a message"))
    });
}

fn scope_decision(c: &mut Criterion) {
    let settings = settings();
    let policy =
        Policy::new(&settings.scopes, None, None, Some("http://127.0.0.1:3000/.well-known/x".into())).expect("policy");
    let principal = Principal::new(Identity {
        subject: "alice".into(),
        name: "alice".into(),
        issuer: "http://127.0.0.1:3000".into(),
        scopes: BTreeSet::from(["mcp:read".to_owned(), "mcp:tools".to_owned()]),
        roles: BTreeSet::from(["user".to_owned()]),
        client_id: None,
        expires_at: None,
        claims: Map::new(),
    });
    let params: Map<String, Value> =
        json!({ "name": "echo", "arguments": { "message": "hello" } }).as_object().cloned().expect("an object");
    assert!(policy.authorize(Some(&principal), "tools/call", &params).is_ok());
    c.bench_function("scope_decision/tools_call", |b| {
        b.iter(|| policy.authorize(Some(black_box(&principal)), black_box("tools/call"), black_box(&params)))
    });
}

fn router(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let settings = settings();
    let token = token(&settings);
    let app = runtime.block_on(mcp_auth_server::app(&settings)).expect("app");
    let session = runtime.block_on(open_session(&app, &token));
    // Both answer, and the token is in the cache from here on.
    runtime.block_on(call(&app, modern_call(&token)));
    runtime.block_on(call(&app, legacy_call(&token, &session)));

    let mut group = c.benchmark_group("router");
    group.bench_function("modern_tools_call", |b| b.iter(|| runtime.block_on(call(&app, modern_call(&token)))));
    group.bench_function("legacy_tools_call", |b| {
        b.iter(|| runtime.block_on(call(&app, legacy_call(&token, &session))))
    });
    group.finish();
}

criterion_group!(benches, parse, scope_decision, router);
criterion_main!(benches);
