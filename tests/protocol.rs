//! The whole protocol surface (`tools`): resources, multi round-trip input in both eras,
//! subscriptions, streams (resumption, cancellation, isolation), and that abandoned streams
//! leave nothing behind.
//!
//! Every test drives the app in process on tokio's paused clock: the tools' sleeps, the polls and
//! the quiet periods that show nothing more arrives pass in no real time, in the same order.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use mcp_auth_server::tools::{
    CallToolResult, InputRequest, InputRequired, NoArgs, Registry, ResourceContents, ResourceInfo,
    ResourceTemplateInfo, ToolError, ToolInfo, resource_fn, template_fn, tool_fn,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// Counts live runs of a tool: incremented when it starts, decremented when its future is
/// dropped or finishes.
#[derive(Clone, Default)]
struct Running(Arc<AtomicUsize>);

struct RunGuard(Arc<AtomicUsize>);

impl Running {
    fn enter(&self) -> RunGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        RunGuard(self.0.clone())
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    async fn wait_for(&self, expected: usize) -> bool {
        for _ in 0..200 {
            if self.count() == expected {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The registry these tests serve, and handles to observe it.
struct Fixture {
    registry: Registry,
    forever: Running,
}

fn fixture() -> Fixture {
    let forever = Running::default();
    let runs = forever.clone();
    let registry = Registry::new()
        .tool(tool_fn(ToolInfo::new("ask_name", "Asks the user for their name"), |ctx, _: NoArgs| async move {
            match ctx.input_response("name").and_then(|a| a.pointer("/content/name")).and_then(Value::as_str) {
                Some(name) => Ok(CallToolResult::text(format!("Hello, {name}!"))),
                None => Err(ToolError::InputRequired(InputRequired {
                    input_requests: BTreeMap::from([(
                        "name".to_owned(),
                        InputRequest::elicit(
                            "What is your name?",
                            json!({ "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] }),
                        ),
                    )]),
                    request_state: Some("asked".into()),
                })),
            }
        }))
        .tool(tool_fn(ToolInfo::new("forever", "Reports progress until cancelled"), move |ctx, _: NoArgs| {
            let runs = runs.clone();
            async move {
                let _running = runs.enter();
                for step in 1.. {
                    ctx.progress(step as f64, None, None).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                unreachable!()
            }
        }))
        .tool(tool_fn(ToolInfo::new("two_parts", "Sends progress, closes the connection, finishes"), |ctx, _: NoArgs| async move {
            ctx.progress(1.0, Some(2.0), None).await;
            ctx.close_sse_connection().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            ctx.progress(2.0, Some(2.0), None).await;
            Ok(CallToolResult::text("both parts done"))
        }))
        .tool(tool_fn(ToolInfo::new("brief", "Sends one progress notification, then answers"), |ctx, _: NoArgs| async move {
            ctx.progress(1.0, None, None).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(CallToolResult::text("brief"))
        }))
        .resource(resource_fn(ResourceInfo::new("memo://readme", "Readme").mime_type("text/plain"), |_| async {
            Ok(vec![ResourceContents::Text { uri: "memo://readme".into(), mime_type: Some("text/plain".into()), text: "read me".into() }])
        }))
        .resource(resource_fn(ResourceInfo::new("memo://logo", "Logo").mime_type("image/png"), |_| async {
            Ok(vec![ResourceContents::Blob { uri: "memo://logo".into(), mime_type: Some("image/png".into()), blob: "iVBORw0KGgo=".into() }])
        }))
        .resource_template(template_fn(ResourceTemplateInfo::new("memo://notes/{id}", "Note"), |_, uri, vars| async move {
            let text = format!("note {}", vars["id"]);
            Ok(vec![ResourceContents::Text { uri, mime_type: None, text }])
        }));
    Fixture { registry, forever }
}

async fn app_for(registry: Registry) -> Router {
    mcp_auth_server::AppBuilder::new(test_settings()).registry(registry).build().await.unwrap()
}

fn modern_with(id: i64, method: &str, mut params: Value, capabilities: Value) -> Request<Body> {
    params["_meta"] = envelope(capabilities);
    modern(id, method, params)
}

async fn stats(app: &Router) -> Value {
    send(app, Request::get("/health").body(Body::empty()).unwrap()).await.json()["mcp"].clone()
}

// ---------------------------------------------------------------- resources

#[tokio::test(start_paused = true)]
async fn resources_list_read_text_binary_and_templates() {
    let app = app_for(fixture().registry).await;
    let list = send(&app, modern(1, "resources/list", json!({}))).await.json()["result"].clone();
    let uris: Vec<&str> = list["resources"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["memo://readme", "memo://logo"]);
    // Filtered by the caller's scopes when the policy is on, so not shareable between callers.
    let expected_scope = if cfg!(feature = "scopes") { "private" } else { "public" };
    assert_eq!(list["cacheScope"], expected_scope);

    let templates = send(&app, modern(2, "resources/templates/list", json!({}))).await.json();
    assert_eq!(templates["result"]["resourceTemplates"][0]["uriTemplate"], "memo://notes/{id}");

    let text = send(&app, modern(3, "resources/read", json!({ "uri": "memo://readme" }))).await.json();
    assert_eq!(text["result"]["contents"][0]["text"], "read me");
    assert!(text["result"]["ttlMs"].is_u64());
    let blob = send(&app, modern(4, "resources/read", json!({ "uri": "memo://logo" }))).await.json();
    assert_eq!(blob["result"]["contents"][0]["blob"], "iVBORw0KGgo=");
    let note = send(&app, modern(5, "resources/read", json!({ "uri": "memo://notes/42" }))).await.json();
    assert_eq!(note["result"]["contents"][0]["text"], "note 42");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_resource_is_an_error_with_the_code_of_the_era() {
    let app = app_for(fixture().registry).await;
    let modern_reply = send(&app, modern(1, "resources/read", json!({ "uri": "memo://nope" }))).await;
    assert_eq!(modern_reply.status, StatusCode::BAD_REQUEST);
    let error = &modern_reply.json()["error"];
    assert_eq!(error["code"], -32602);
    assert_eq!(error["data"]["uri"], "memo://nope");

    let session = initialize(&app, LEGACY).await;
    let traversal = json!({ "uri": "memo://notes/../../etc/passwd" });
    let legacy_reply = send(&app, legacy(&session, LEGACY, call(2, "resources/read", traversal))).await;
    assert_eq!(legacy_reply.status, StatusCode::OK);
    assert_eq!(legacy_reply.json()["error"]["code"], -32002);
}

// ---------------------------------------------------------------- multi round-trip input, modern

#[tokio::test(start_paused = true)]
async fn input_required_round_trip_with_a_sealed_request_state() {
    let app = app_for(fixture().registry).await;
    let caps = json!({ "elicitation": {} });
    let first = send(&app, modern_with(1, "tools/call", json!({ "name": "ask_name" }), caps.clone())).await.json();
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required");
    assert_eq!(result["inputRequests"]["name"]["method"], "elicitation/create");
    let state = result["requestState"].as_str().unwrap().to_owned();
    assert_ne!(state, "asked", "the handler's state is sealed, not sent as is");
    assert!(result.get("ttlMs").is_none(), "input_required results carry no cache hints");

    let answers = json!({ "name": { "action": "accept", "content": { "name": "Ada" } } });
    let retry = json!({ "name": "ask_name", "inputResponses": answers, "requestState": state });
    let done = send(&app, modern_with(2, "tools/call", retry.clone(), caps.clone())).await.json();
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "Hello, Ada!");

    let replay = send(&app, modern_with(3, "tools/call", retry, caps)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "a sealed state is good for one retry");
    assert_eq!(replay.json()["error"]["code"], -32602);
}

#[tokio::test(start_paused = true)]
async fn a_tampered_or_transplanted_request_state_is_refused() {
    let app = app_for(fixture().registry).await;
    let caps = json!({ "elicitation": {} });
    let first = send(&app, modern_with(1, "tools/call", json!({ "name": "ask_name" }), caps.clone())).await.json();
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    let answers = json!({ "name": { "action": "accept", "content": { "name": "Eve" } } });
    for (name, state) in [("ask_name", format!("{state}-TAMPERED")), ("brief", state.clone())] {
        let retry = json!({ "name": name, "inputResponses": answers, "requestState": state });
        let reply = send(&app, modern_with(2, "tools/call", retry, caps.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        let error = &reply.json()["error"];
        assert_eq!(error["code"], -32602);
        assert_eq!(error["data"]["reason"], "invalid_request_state");
    }
}

#[tokio::test(start_paused = true)]
async fn input_is_never_requested_from_a_client_that_did_not_declare_it() {
    let app = app_for(fixture().registry).await;
    let reply =
        send(&app, modern_with(1, "tools/call", json!({ "name": "ask_name" }), json!({ "sampling": {} }))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], -32021);
    assert_eq!(error["data"]["requiredCapabilities"], json!({ "elicitation": { "form": {} } }));
}

#[tokio::test(start_paused = true)]
async fn malformed_input_responses_are_invalid_params() {
    let app = app_for(fixture().registry).await;
    for responses in [json!(null), json!({ "name": 12345 }), json!("x")] {
        let params = json!({ "name": "ask_name", "inputResponses": responses });
        let reply = send(&app, modern_with(1, "tools/call", params, json!({ "elicitation": {} }))).await;
        assert_eq!(reply.json()["error"]["code"], -32602, "{responses}");
    }
}

// ---------------------------------------------------------------- multi round-trip input, legacy

#[tokio::test(start_paused = true)]
async fn legacy_clients_get_a_real_elicitation_request_on_the_call_stream_and_answer_it() {
    let app = app_for(fixture().registry).await;
    let session = initialize_with(&app, LEGACY, json!({ "elicitation": {} })).await;
    let response = open(&app, legacy(&session, LEGACY, call(7, "tools/call", json!({ "name": "ask_name" })))).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = Events::new(response);
    let request = events.next_message(WAIT).await.expect("the server asks");
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["message"], "What is your name?");
    let request_id = request["id"].clone();
    assert!(!request_id.is_null());

    let answer =
        json!({ "jsonrpc": "2.0", "id": request_id, "result": { "action": "accept", "content": { "name": "Grace" } } });
    let posted = send(&app, legacy(&session, LEGACY, answer)).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED);

    let result = events.next_message(WAIT).await.expect("the call completes");
    assert_eq!(result["id"], 7);
    assert_eq!(result["result"]["content"][0]["text"], "Hello, Grace!");
    assert!(result["result"].get("resultType").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_legacy_client_without_the_capability_gets_an_error_not_a_request() {
    let app = app_for(fixture().registry).await;
    let session = initialize(&app, LEGACY).await;
    let reply = send(&app, legacy(&session, LEGACY, call(1, "tools/call", json!({ "name": "ask_name" })))).await;
    assert!(reply.messages().iter().all(|m| m.get("method").is_none()), "no server request was sent");
    assert!(reply.rpc()["error"]["message"].as_str().unwrap().contains("capability"));
}

// ---------------------------------------------------------------- streams

#[tokio::test(start_paused = true)]
async fn closing_a_modern_stream_stops_the_work() {
    let fixture = fixture();
    let app = app_for(fixture.registry).await;
    let mut meta = envelope(json!({}));
    meta["progressToken"] = json!("t");
    let response = open(&app, modern(1, "tools/call", json!({ "name": "forever", "_meta": meta }))).await;
    let mut events = Events::new(response);
    let progress = events.next_message(WAIT).await.unwrap();
    assert_eq!(progress["method"], "notifications/progress");
    assert_eq!(fixture.forever.count(), 1);
    drop(events);
    assert!(fixture.forever.wait_for(0).await, "the tool stopped when the client closed the stream");
}

#[tokio::test(start_paused = true)]
async fn legacy_cancellation_stops_the_work_and_sends_no_response() {
    let fixture = fixture();
    let app = app_for(fixture.registry).await;
    let session = initialize(&app, LEGACY).await;
    let params = json!({ "name": "forever", "_meta": { "progressToken": 1 } });
    let mut events = Events::new(open(&app, legacy(&session, LEGACY, call(5, "tools/call", params))).await);
    assert_eq!(events.next_message(WAIT).await.unwrap()["method"], "notifications/progress");
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 5 } });
    assert_eq!(send(&app, legacy(&session, LEGACY, cancel)).await.status, StatusCode::ACCEPTED);
    assert!(fixture.forever.wait_for(0).await);
    while let Some(message) = events.next_message(WAIT).await {
        assert!(message.get("id").is_none(), "no response after cancellation: {message}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_legacy_client_disconnecting_does_not_cancel_and_resumes_with_last_event_id() {
    let app = app_for(fixture().registry).await;
    let session = initialize(&app, LEGACY).await;
    let params = json!({ "name": "two_parts", "_meta": { "progressToken": "p" } });
    let mut first = Events::new(open(&app, legacy(&session, LEGACY, call(9, "tools/call", params))).await);
    let priming = first.next_event(WAIT).await.unwrap();
    assert!(priming.id.is_some() && priming.data.is_empty() && priming.retry.is_some(), "{priming:?}");
    let progress = first.next_event(WAIT).await.unwrap();
    assert_eq!(progress.json().unwrap()["params"]["progress"], 1.0);
    let last_id = progress.id.clone().unwrap();
    let retry = first.next_event(WAIT).await.unwrap();
    assert!(retry.retry.is_some(), "the server says when to come back");
    assert!(first.next_event(QUIET).await.is_none(), "then closes the connection");

    let resume = Request::get("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", LEGACY)
        .header("last-event-id", &last_id)
        .body(Body::empty())
        .unwrap();
    let mut resumed = Events::new(open(&app, resume).await);
    let progress = resumed.next_message(WAIT).await.unwrap();
    assert_eq!(progress["params"]["progress"], 2.0);
    let result = resumed.next_message(WAIT).await.unwrap();
    assert_eq!(result["id"], 9);
    assert_eq!(result["result"]["content"][0]["text"], "both parts done");
}

#[tokio::test(start_paused = true)]
async fn a_listen_stream_acknowledges_then_delivers_only_what_was_asked_tagged_with_its_id() {
    let fixture = fixture();
    let registry = fixture.registry.clone();
    let app = app_for(fixture.registry).await;
    let tools_stream =
        open(&app, modern(1, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } }))).await;
    let prompts_request = modern_with(
        2,
        "subscriptions/listen",
        json!({ "notifications": { "promptsListChanged": true, "resourceSubscriptions": ["memo://readme"] } }),
        json!({}),
    );
    // A string id stays a string in the tags.
    let (mut parts, _) = prompts_request.into_parts();
    let body = json!({ "jsonrpc": "2.0", "id": "sub-2", "method": "subscriptions/listen", "params": {
        "_meta": envelope(json!({})), "notifications": { "promptsListChanged": true, "resourceSubscriptions": ["memo://readme"] } } });
    parts.headers.remove("content-length");
    let prompts_stream = open(&app, Request::from_parts(parts, Body::from(body.to_string()))).await;
    let mut tools = Events::new(tools_stream);
    let mut prompts = Events::new(prompts_stream);

    let ack = tools.next_message(WAIT).await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 1);
    assert_eq!(ack["params"]["notifications"], json!({ "toolsListChanged": true }));
    let ack = prompts.next_message(WAIT).await.unwrap();
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-2");
    assert!(ack["params"]["notifications"].get("promptsListChanged").is_none(), "no prompts here: not honoured");
    assert_eq!(ack["params"]["notifications"]["resourceSubscriptions"], json!(["memo://readme"]));

    registry.add_tool(tool_fn(ToolInfo::new("newcomer", "Arrives late"), |_, _: NoArgs| async {
        Ok(CallToolResult::text("hi"))
    }));
    let change = tools.next_message(WAIT).await.unwrap();
    assert_eq!(change["method"], "notifications/tools/list_changed");
    assert_eq!(change["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 1);

    registry.resource_updated("memo://logo");
    registry.resource_updated("memo://readme");
    let update = prompts.next_message(WAIT).await.unwrap();
    assert_eq!(update["method"], "notifications/resources/updated");
    assert_eq!(update["params"]["uri"], "memo://readme");
    assert_eq!(update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-2");
    assert!(tools.next_message(QUIET).await.is_none(), "the tools stream asked for no resource updates");
}

#[tokio::test(start_paused = true)]
async fn legacy_and_modern_clients_at_once_never_see_each_others_messages() {
    let fixture = fixture();
    let registry = fixture.registry.clone();
    let app = app_for(fixture.registry).await;
    let alice = initialize(&app, LEGACY).await;
    let bob = initialize(&app, LEGACY).await;
    let get = |session: &str| {
        Request::get("/mcp")
            .header("host", "127.0.0.1:3000")
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", LEGACY)
            .body(Body::empty())
            .unwrap()
    };
    let mut alice_stream = Events::new(open(&app, get(&alice)).await);
    let mut bob_stream = Events::new(open(&app, get(&bob)).await);
    let mut listen = Events::new(
        open(&app, modern(1, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } }))).await,
    );
    assert_eq!(listen.next_message(WAIT).await.unwrap()["method"], "notifications/subscriptions/acknowledged");
    let subscribe = call(2, "resources/subscribe", json!({ "uri": "memo://readme" }));
    assert_eq!(send(&app, legacy(&alice, LEGACY, subscribe)).await.json()["result"], json!({}));

    // Concurrent calls in both eras, each with progress: each answer carries only its own.
    let mut modern_meta = envelope(json!({}));
    modern_meta["progressToken"] = json!("modern-token");
    let (modern_call, legacy_call) = tokio::join!(
        send(&app, modern(3, "tools/call", json!({ "name": "brief", "_meta": modern_meta }))),
        send(
            &app,
            legacy(
                &alice,
                LEGACY,
                call(4, "tools/call", json!({ "name": "brief", "_meta": { "progressToken": "legacy-token" } }))
            )
        ),
    );
    let tokens = |reply: &Reply| -> Vec<Value> {
        reply
            .messages()
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .map(|m| m["params"]["progressToken"].clone())
            .collect()
    };
    assert_eq!(tokens(&modern_call), [json!("modern-token")]);
    assert_eq!(tokens(&legacy_call), [json!("legacy-token")]);

    registry.resource_updated("memo://readme");
    registry.remove_tool("brief");
    let first = alice_stream.next_message(WAIT).await.unwrap();
    assert_eq!(first["method"], "notifications/resources/updated");
    assert!(first["params"].get("_meta").is_none(), "legacy notifications carry no subscription tag");
    assert_eq!(alice_stream.next_message(WAIT).await.unwrap()["method"], "notifications/tools/list_changed");
    assert_eq!(
        bob_stream.next_message(WAIT).await.unwrap()["method"],
        "notifications/tools/list_changed",
        "bob did not subscribe"
    );
    let modern_change = listen.next_message(WAIT).await.unwrap();
    assert_eq!(modern_change["method"], "notifications/tools/list_changed");
    for stream in [&mut alice_stream, &mut bob_stream, &mut listen] {
        assert!(stream.next_message(QUIET).await.is_none(), "no request-scoped message leaked to a standing stream");
    }
}

#[tokio::test(start_paused = true)]
async fn abandoned_streams_leave_no_session_stream_or_task_behind() {
    let fixture = fixture();
    let app = app_for(fixture.registry).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    for round in 0..100 {
        let mut meta = envelope(json!({}));
        meta["progressToken"] = json!(round);
        let modern_call = open(&app, modern(round, "tools/call", json!({ "name": "forever", "_meta": meta }))).await;
        let listen =
            open(&app, modern(round, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } })))
                .await;
        let session = initialize(&app, LEGACY).await;
        let params = json!({ "name": "brief", "_meta": { "progressToken": 1 } });
        let legacy_call = open(&app, legacy(&session, LEGACY, call(1, "tools/call", params))).await;
        let standalone = open(
            &app,
            Request::get("/mcp")
                .header("host", "127.0.0.1:3000")
                .header("accept", "text/event-stream")
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", LEGACY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let mut first = Events::new(modern_call);
        first.next_message(WAIT).await.unwrap();
        drop((first, listen, legacy_call, standalone));
        let delete = Request::delete("/mcp")
            .header("host", "127.0.0.1:3000")
            .header("mcp-session-id", &session)
            .body(Body::empty())
            .unwrap();
        assert!(send(&app, delete).await.status.is_success());
    }
    assert!(fixture.forever.wait_for(0).await, "every abandoned tool run stopped");
    let mut settled = false;
    for _ in 0..200 {
        let stats = stats(&app).await;
        if stats["open_streams"] == 0 && stats["sessions"] == 0 && metrics.num_alive_tasks() <= tasks_before {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(settled, "stats {} tasks {} (before {tasks_before})", stats(&app).await, metrics.num_alive_tasks());
}
