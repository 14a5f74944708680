//! Several instances on one store (issue 25): two applications in this process share a store,
//! as two processes share Redis, and any of them serves any request. Each scenario runs twice:
//! on one `memory:` store shared by both (the same code paths, fast) and on a real Redis started
//! by the test, each instance with its own connection, as two processes would have.
//!
//! The whole deployment (two server processes behind nginx, the official clients, a SIGKILL, a
//! Redis restart) is `tests/cluster/run.sh`; these tests pin the mechanisms down one by one.

mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::issuer::{self as is, Pkce, authorize_uri};
use common::*;
use mcp_auth_server::store::{MemoryStore, Store};
use mcp_auth_server::store_redis::RedisStore;
use mcp_auth_server::tools::{
    CallToolResult, InputRequest, InputRequired, NoArgs, Registry, ResourceContents, ResourceInfo, ToolError, ToolInfo,
    resource_fn, tool_fn,
};
use redis_server::RedisServer;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

const WATCHED: &str = "test://watched";
const WAIT: Duration = Duration::from_secs(5);

/// The tools of one instance: `ask` (elicits a name), `steps` (three progress notifications, each
/// after the test lets it go), `touch` (announces that the watched resource changed).
fn registry(steps: Arc<Semaphore>) -> Registry {
    let registry = Registry::new().resource(resource_fn(ResourceInfo::new(WATCHED, "watched"), |_ctx| async {
        Ok(vec![ResourceContents::Text { uri: WATCHED.into(), mime_type: None, text: "watched".into() }])
    }));
    registry.add_tool(tool_fn(ToolInfo::new("ask", "asks for a name"), |ctx, _: NoArgs| async move {
        match ctx.input_response("name") {
            Some(answer) => {
                let name = answer.pointer("/content/name").and_then(Value::as_str).unwrap_or("?");
                Ok(CallToolResult::text(format!("hello {name}")))
            }
            None => Err(ToolError::InputRequired(InputRequired {
                input_requests: BTreeMap::from([(
                    "name".to_owned(),
                    InputRequest::elicit(
                        "Your name?",
                        json!({ "type": "object", "properties": { "name": { "type": "string" } } }),
                    ),
                )]),
                request_state: Some("asked".into()),
            })),
        }
    }));
    registry.add_tool(tool_fn(ToolInfo::new("steps", "three steps"), move |ctx, _: NoArgs| {
        let steps = steps.clone();
        async move {
            for step in 1..=3 {
                steps.acquire().await.expect("open").forget();
                ctx.progress(f64::from(step), Some(3.0), None).await;
            }
            Ok(CallToolResult::text("done"))
        }
    }));
    let announcer = registry.clone();
    registry.add_tool(tool_fn(ToolInfo::new("touch", "touches the watched resource"), move |_ctx, _: NoArgs| {
        let announcer = announcer.clone();
        async move {
            announcer.resource_updated(WATCHED);
            Ok(CallToolResult::text("touched"))
        }
    }));
    registry
}

/// Two instances on `stores` (one each), with the test accounts.
struct Pair {
    a: Router,
    b: Router,
    steps: Arc<Semaphore>,
    _redis: Option<RedisServer>,
}

async fn pair(backend: &str, overrides: &str) -> Pair {
    let (stores, redis): ([Arc<dyn Store>; 2], _) = match backend {
        "memory" => {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            ([store.clone(), store], None)
        }
        _ => {
            let redis = RedisServer::start();
            let connect = || async { Arc::new(RedisStore::connect(&redis.url()).await.unwrap()) as Arc<dyn Store> };
            ([connect().await, connect().await], Some(redis))
        }
    };
    let steps = Arc::new(Semaphore::new(0));
    let [a, b] = stores;
    let build = |store: Arc<dyn Store>| {
        mcp_auth_server::AppBuilder::new(is::settings(overrides)).registry(registry(steps.clone())).store(store).build()
    };
    Pair { a: build(a).await.unwrap(), b: build(b).await.unwrap(), steps, _redis: redis }
}

/// Runs a scenario on both backends.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name("memory").await })*
        }
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name("redis").await })*
        }
    };
}

on_both!(
    a_session_opened_on_one_instance_is_served_and_ended_on_the_other,
    the_answer_to_an_elicitation_posted_to_another_instance_reaches_the_waiting_call,
    a_stream_lost_with_one_instance_resumes_on_the_other_with_nothing_lost_or_repeated,
    a_change_on_one_instance_reaches_a_stream_held_by_the_other,
    a_request_state_sealed_by_one_instance_opens_on_the_other_once,
    one_refresh_token_redeemed_on_both_instances_at_once_succeeds_once,
    sign_in_limits_count_across_instances,
    a_callers_session_cap_counts_across_instances,
);

const V: &str = "2025-11-25";

async fn a_session_opened_on_one_instance_is_served_and_ended_on_the_other(backend: &str) {
    let pair = pair(backend, "").await;
    let session = initialize(&pair.a, V).await;
    let reply =
        send(&pair.b, legacy(&session, V, call(1, "tools/call", json!({ "name": "touch", "arguments": {} })))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.rpc()["result"]["content"][0]["text"], "touched");
    // setLevel on B is A's too: A answers with it, the record being shared.
    let level = send(&pair.b, legacy(&session, V, call(2, "logging/setLevel", json!({ "level": "error" })))).await;
    assert_eq!(level.status, StatusCode::OK);
    let deleted = send(
        &pair.b,
        post_builder()
            .method("DELETE")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", V)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // A hears of it on the session's channel (within a millisecond or so; at most
    // session::TOUCH_EVERY later if that message is lost, when A next checks the store).
    let mut status = StatusCode::OK;
    for _ in 0..200 {
        status = send(&pair.a, legacy(&session, V, call(3, "ping", json!({})))).await.status;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(status, StatusCode::NOT_FOUND, "ended on B, gone on A");
}

async fn the_answer_to_an_elicitation_posted_to_another_instance_reaches_the_waiting_call(backend: &str) {
    let pair = pair(backend, "").await;
    let session = initialize_with(&pair.a, V, json!({ "elicitation": {} })).await;
    // The call runs on A, and asks the client on its stream.
    let response =
        open(&pair.a, legacy(&session, V, call(7, "tools/call", json!({ "name": "ask", "arguments": {} })))).await;
    let mut events = Events::new(response);
    let ask = events.next_message(WAIT).await.expect("the elicitation request");
    assert_eq!(ask["method"], "elicitation/create");
    // The client's answer goes to B.
    let answer =
        json!({ "jsonrpc": "2.0", "id": ask["id"], "result": { "action": "accept", "content": { "name": "Ada" } } });
    assert_eq!(send(&pair.b, legacy(&session, V, answer)).await.status, StatusCode::ACCEPTED);
    let result = events.next_message(WAIT).await.expect("the call's result");
    assert_eq!(result["id"], 7);
    assert_eq!(result["result"]["content"][0]["text"], "hello Ada");
}

async fn a_stream_lost_with_one_instance_resumes_on_the_other_with_nothing_lost_or_repeated(backend: &str) {
    let pair = pair(backend, "").await;
    let session = initialize(&pair.a, V).await;
    let body = json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": { "name": "steps", "arguments": {}, "_meta": { "progressToken": "p" } } });
    // The first step may go: the call answers with a stream once it has said something.
    pair.steps.add_permits(1);
    let mut events = Events::new(open(&pair.a, legacy(&session, V, body)).await);
    let mut last_id = None;
    let first = loop {
        let event = events.next_event(WAIT).await.expect("an event");
        last_id = event.id.clone().or(last_id);
        if let Some(message) = event.json() {
            break message;
        }
    };
    assert_eq!(first["params"]["progress"].as_f64(), Some(1.0));
    // The connection is lost (with A, say); the work goes on meanwhile.
    drop(events);
    pair.steps.add_permits(2);
    let resume = Request::get("/mcp")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", V)
        .header("last-event-id", last_id.expect("events carry ids"))
        .body(Body::empty())
        .unwrap();
    let mut resumed = Events::new(open(&pair.b, resume).await);
    let mut seen = Vec::new();
    while let Some(message) = resumed.next_message(WAIT).await {
        let done = message.get("result").is_some();
        seen.push(message);
        if done {
            break;
        }
    }
    let progress: Vec<f64> = seen.iter().filter_map(|m| m["params"].get("progress")?.as_f64()).collect();
    assert_eq!(progress, [2.0, 3.0], "the rest, once each: {seen:#?}");
    assert_eq!(seen.last().unwrap()["result"]["content"][0]["text"], "done");
}

async fn a_change_on_one_instance_reaches_a_stream_held_by_the_other(backend: &str) {
    let pair = pair(backend, "").await;
    let session = initialize(&pair.a, V).await;
    // Subscribed through B; the standalone stream is held by A.
    let subscribe = send(&pair.b, legacy(&session, V, call(1, "resources/subscribe", json!({ "uri": WATCHED })))).await;
    assert_eq!(subscribe.status, StatusCode::OK);
    let stream = Request::get("/mcp")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", V)
        .body(Body::empty())
        .unwrap();
    let mut events = Events::new(open(&pair.a, stream).await);
    // A second standalone stream, on B, is refused while A's is open.
    let second = Request::get("/mcp")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", V)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&pair.b, second).await.status, StatusCode::CONFLICT, "one standalone stream per session");
    // A POST on B changes the resource.
    let touched =
        send(&pair.b, legacy(&session, V, call(2, "tools/call", json!({ "name": "touch", "arguments": {} })))).await;
    assert_eq!(touched.status, StatusCode::OK);
    let update = events.next_message(WAIT).await.expect("the update reaches A's stream");
    assert_eq!(update["method"], "notifications/resources/updated");
    assert_eq!(update["params"]["uri"], WATCHED);
}

async fn a_request_state_sealed_by_one_instance_opens_on_the_other_once(backend: &str) {
    let pair = pair(backend, "").await;
    let capabilities = json!({ "elicitation": {} });
    let first =
        send(&pair.a, modern_with(1, "tools/call", json!({ "name": "ask", "arguments": {} }), capabilities.clone()))
            .await;
    let result = first.rpc()["result"].clone();
    assert_eq!(result["resultType"], "input_required", "{result}");
    let retry = json!({
        "name": "ask",
        "arguments": {},
        "requestState": result["requestState"],
        "inputResponses": { "name": { "action": "accept", "content": { "name": "Ada" } } },
    });
    let on_b = send(&pair.b, modern_with(2, "tools/call", retry.clone(), capabilities.clone())).await;
    assert_eq!(on_b.rpc()["result"]["content"][0]["text"], "hello Ada", "{}", String::from_utf8_lossy(&on_b.body));
    let replayed = send(&pair.a, modern_with(3, "tools/call", retry, capabilities)).await;
    assert_eq!(replayed.rpc()["error"]["message"], "Invalid or expired requestState", "single use on every instance");
}

/// A modern request with these client capabilities.
fn modern_with(id: i64, method: &str, params: Value, capabilities: Value) -> Request<Body> {
    let mut request = modern(id, method, params.clone());
    let mut body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    body["params"]["_meta"] = envelope(capabilities);
    *request.body_mut() = Body::from(body.to_string());
    request
}

async fn one_refresh_token_redeemed_on_both_instances_at_once_succeeds_once(backend: &str) {
    let pair = pair(backend, "").await;
    let pkce = Pkce::new();
    let callback = is::Browser::new(&pair.a)
        .authorize(&authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &pkce, &[]), "bob", is::BOB_PASSWORD)
        .await;
    // The code was issued by A and is redeemed on B.
    let tokens = is::redeem(&pair.b, is::CLIENT_ID, &callback, is::REDIRECT_URI, &pkce).await;
    assert_eq!(tokens.status, StatusCode::OK);
    let refresh = tokens.json()["refresh_token"].as_str().unwrap().to_owned();
    let fields = [("grant_type", "refresh_token"), ("client_id", is::CLIENT_ID), ("refresh_token", refresh.as_str())];
    let (on_a, on_b) =
        tokio::join!(is::token_request(&pair.a, &fields, None), is::token_request(&pair.b, &fields, None));
    let (won, lost) = match (on_a.status, on_b.status) {
        (StatusCode::OK, StatusCode::BAD_REQUEST) => (on_a, on_b),
        (StatusCode::BAD_REQUEST, StatusCode::OK) => (on_b, on_a),
        _ => panic!("exactly one success expected: {} / {}", is::text(&on_a), is::text(&on_b)),
    };
    assert!(won.json()["access_token"].is_string());
    assert!(is::text(&lost).contains("already used"), "{}", is::text(&lost));
    // The reuse revoked the family: the winner's successor, if the revocation came after it was
    // filed, no longer refreshes.
    if let Some(next) = won.json()["refresh_token"].as_str() {
        let fields = [("grant_type", "refresh_token"), ("client_id", is::CLIENT_ID), ("refresh_token", next)];
        let again = is::token_request(&pair.a, &fields, None).await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", is::text(&again));
    }
}

async fn sign_in_limits_count_across_instances(backend: &str) {
    let pair = pair(backend, "[issuer]\nlogin_max_attempts = 2").await;
    let mut statuses = Vec::new();
    for app in [&pair.a, &pair.b, &pair.a] {
        let mut browser = is::Browser::new(app);
        let page = browser.get(&authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &Pkce::new(), &[])).await;
        statuses.push(browser.sign_in(&page, "bob", "wrong").await.status);
    }
    assert_eq!(statuses, [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS]);
}

async fn a_callers_session_cap_counts_across_instances(backend: &str) {
    let pair = pair(backend, "[mcp]\nmax_sessions_per_caller = 2").await;
    let first = initialize(&pair.a, V).await;
    initialize(&pair.b, V).await;
    initialize(&pair.a, V).await;
    let closed = send(&pair.b, legacy(&first, V, call(1, "ping", json!({})))).await;
    assert_eq!(closed.status, StatusCode::NOT_FOUND, "the caller's oldest session made room");
}
