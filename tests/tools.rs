//! Steps 3-4 (`tools`): tool and prompt definitions, and their dispatch, in both eras.

mod common;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use mcp_auth_server::tools::{self, CallToolResult, NoArgs, Tool, ToolContext, ToolInfo, ToolResult};
use serde_json::{Value, json};

/// Runs `method` in the modern era and returns the reply.
async fn modern_call(app: &Router, method: &str, params: Value) -> Reply {
    send(app, modern(7, method, params)).await
}

/// Runs `method` in a fresh legacy session and returns the reply.
async fn legacy_call(app: &Router, method: &str, params: Value) -> Reply {
    let session = initialize(app, LEGACY).await;
    send(app, legacy(&session, LEGACY, call(7, method, params))).await
}

#[tokio::test]
async fn tools_list_shows_the_builtin_tools_with_descriptions_and_object_schemas_in_both_eras() {
    let app = app().await;
    for reply in [modern_call(&app, "tools/list", json!({})).await, legacy_call(&app, "tools/list", json!({})).await] {
        assert_eq!(reply.status, StatusCode::OK);
        let tools = reply.json()["result"]["tools"].as_array().unwrap().clone();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["echo", "get_time", "whoami"]);
        for tool in &tools {
            assert!(!tool["description"].as_str().unwrap().is_empty());
            assert_eq!(tool["inputSchema"]["type"], "object");
        }
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["message"]));
    }
}

#[tokio::test]
async fn modern_lists_carry_result_type_and_cache_hints() {
    let app = app().await;
    for method in ["tools/list", "prompts/list"] {
        let result = modern_call(&app, method, json!({})).await.json()["result"].clone();
        assert_eq!(result["resultType"], "complete");
        assert!(result["ttlMs"].as_u64().is_some());
        // Filtered by the caller's scopes when the policy is on, so not shareable between callers.
        let expected_scope = if cfg!(feature = "scopes") { "private" } else { "public" };
        assert_eq!(result["cacheScope"], expected_scope);
    }
}

#[tokio::test]
async fn tools_list_order_is_stable() {
    let app = app().await;
    let first = modern_call(&app, "tools/list", json!({})).await.json()["result"]["tools"].clone();
    for _ in 0..3 {
        assert_eq!(modern_call(&app, "tools/list", json!({})).await.json()["result"]["tools"], first);
    }
}

#[tokio::test]
async fn echo_returns_the_message_in_both_eras() {
    let app = app().await;
    let params = json!({ "name": "echo", "arguments": { "message": "hello, 世界" } });
    for reply in
        [modern_call(&app, "tools/call", params.clone()).await, legacy_call(&app, "tools/call", params.clone()).await]
    {
        assert_eq!(reply.status, StatusCode::OK);
        let result = &reply.json()["result"];
        assert_eq!(result["content"], json!([{ "type": "text", "text": "hello, 世界" }]));
        assert!(result.get("isError").is_none());
    }
}

#[tokio::test]
async fn get_time_answers_rfc3339_in_utc_or_the_named_zone() {
    let app = app().await;
    let utc = modern_call(&app, "tools/call", json!({ "name": "get_time", "arguments": {} })).await.json();
    let text = utc["result"]["content"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.ends_with("+00:00"), "{text}");
    assert_eq!(utc["result"]["structuredContent"]["timezone"], "UTC");

    let tokyo = json!({ "name": "get_time", "arguments": { "timezone": "Asia/Tokyo" } });
    let text = modern_call(&app, "tools/call", tokyo).await.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.ends_with("+09:00"), "{text}");
    assert_eq!(text.len(), "2026-01-01T00:00:00+09:00".len());
}

#[tokio::test]
async fn an_unknown_time_zone_is_a_tool_error_naming_it_in_both_eras() {
    let app = app().await;
    let params = json!({ "name": "get_time", "arguments": { "timezone": "Mars/Olympus" } });
    for reply in
        [modern_call(&app, "tools/call", params.clone()).await, legacy_call(&app, "tools/call", params.clone()).await]
    {
        let result = &reply.json()["result"];
        assert_eq!(result["isError"], true);
        assert!(result["content"][0]["text"].as_str().unwrap().contains("Mars/Olympus"));
    }
}

#[tokio::test]
async fn structured_results_carry_structured_content_in_both_eras() {
    let app = app().await;
    let params = json!({ "name": "get_time", "arguments": {} });
    for reply in
        [modern_call(&app, "tools/call", params.clone()).await, legacy_call(&app, "tools/call", params.clone()).await]
    {
        let result = &reply.json()["result"];
        assert_eq!(result["structuredContent"]["timezone"], "UTC");
        assert!(result["content"][0]["text"].as_str().unwrap().ends_with("+00:00"));
        assert!(result.get("isError").is_none());
    }
}

#[tokio::test]
async fn bad_arguments_are_a_tool_error_naming_the_problem() {
    let app = app().await;
    let cases = [
        (json!({}), "message"),
        (json!({ "message": 42 }), "string"),
        (json!({ "message": "x", "extra": 1 }), "extra"),
    ];
    for (arguments, expected) in cases {
        let reply = modern_call(&app, "tools/call", json!({ "name": "echo", "arguments": arguments })).await;
        assert_eq!(reply.status, StatusCode::OK);
        let result = &reply.json()["result"];
        assert_eq!(result["isError"], true, "{arguments}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(expected), "{text} should name {expected}");
    }
}

#[tokio::test]
async fn unknown_tools_and_prompts_are_invalid_params() {
    let app = app().await;
    let tool = json!({ "name": "nope", "arguments": {} });
    let modern_reply = modern_call(&app, "tools/call", tool.clone()).await;
    assert_eq!(modern_reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(modern_reply.json()["error"]["code"], -32602);
    let legacy_reply = legacy_call(&app, "tools/call", tool).await;
    assert_eq!(legacy_reply.status, StatusCode::OK, "legacy protocol errors travel in a 200");
    assert_eq!(legacy_reply.json()["error"]["code"], -32602);
    let prompt = modern_call(&app, "prompts/get", json!({ "name": "nope" })).await;
    assert_eq!(prompt.json()["error"]["code"], -32602);
}

#[tokio::test]
async fn prompts_list_shows_greeting_and_help_with_arguments() {
    let app = app().await;
    for reply in
        [modern_call(&app, "prompts/list", json!({})).await, legacy_call(&app, "prompts/list", json!({})).await]
    {
        let prompts = reply.json()["result"]["prompts"].as_array().unwrap().clone();
        let names: Vec<&str> = prompts.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["greeting", "help"]);
        assert_eq!(
            prompts[0]["arguments"],
            json!([{ "name": "name", "description": "Who to greet; the caller when omitted." }])
        );
        assert!(prompts.iter().all(|p| !p["description"].as_str().unwrap().is_empty()));
    }
}

#[tokio::test]
async fn prompts_get_renders_greeting_and_help() {
    let app = app().await;
    let reply = legacy_call(&app, "prompts/get", json!({ "name": "greeting", "arguments": { "name": "Ada" } })).await;
    let messages = reply.json()["result"]["messages"].clone();
    assert_eq!(messages[0]["role"], "user");
    assert!(messages[0]["content"]["text"].as_str().unwrap().contains("Ada"));
    let help = modern_call(&app, "prompts/get", json!({ "name": "help" })).await;
    assert!(help.json()["result"]["messages"][0]["content"]["text"].as_str().unwrap().contains("echo"));
}

#[tokio::test]
async fn a_prompt_with_a_bad_argument_is_invalid_params_naming_it() {
    let app = app().await;
    for arguments in [json!({ "name": 5 }), json!({ "nickname": "x" })] {
        let reply = modern_call(&app, "prompts/get", json!({ "name": "greeting", "arguments": arguments })).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["error"]["code"], -32602);
        let message = reply.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("name"), "{message}");
    }
}

#[tokio::test]
async fn whoami_answers_structured_content_matching_its_output_schema() {
    let reply = modern_call(&app().await, "tools/call", json!({ "name": "whoami" })).await.json();
    let seen = &reply["result"]["structuredContent"];
    // Authenticated exactly when the jwt layer is on.
    assert_eq!(seen["authenticated"], cfg!(feature = "jwt"));
    assert!(reply["result"].get("isError").is_none());
}

#[tokio::test]
async fn completion_answers_for_known_prompts() {
    let app = app().await;
    let params =
        json!({ "ref": { "type": "ref/prompt", "name": "greeting" }, "argument": { "name": "name", "value": "A" } });
    let reply = modern_call(&app, "completion/complete", params).await;
    assert!(reply.json()["result"]["completion"]["values"].is_array());
}

// ---------------------------------------------------------------- a user's own tools

/// A tool that reports progress three times, then answers.
struct Countdown;

impl Tool for Countdown {
    type Args = NoArgs;
    fn info(&self) -> ToolInfo {
        ToolInfo::new("countdown", "Counts to three, reporting progress.")
    }
    async fn call(&self, ctx: ToolContext, _args: NoArgs) -> ToolResult {
        for step in 1..=3 {
            ctx.progress(step as f64, Some(3.0), Some("counting")).await;
            ctx.log(tools::LogLevel::Info, json!(format!("step {step}"))).await;
        }
        Ok(CallToolResult::text("done"))
    }
}

async fn custom_app(page_size: usize) -> Router {
    let settings = test_settings_with(&format!("[mcp]\npage_size = {page_size}"));
    let registry = tools::builtin().tool(Countdown);
    mcp_auth_server::AppBuilder::new(settings).registry(registry).build().await.unwrap()
}

#[tokio::test]
async fn a_tool_that_reports_progress_answers_with_an_sse_stream_in_the_modern_era() {
    let app = custom_app(100).await;
    let mut meta = envelope(json!({}));
    meta["progressToken"] = json!("p-1");
    meta["io.modelcontextprotocol/logLevel"] = json!("info");
    let reply = modern_call(&app, "tools/call", json!({ "name": "countdown", "_meta": meta })).await;
    assert!(reply.is_sse());
    assert_eq!(reply.header("x-accel-buffering"), Some("no"));
    let messages = reply.messages();
    let progress: Vec<&Value> = messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 3);
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "p-1"));
    assert_eq!(messages.iter().filter(|m| m["method"] == "notifications/message").count(), 3);
    let last = messages.last().unwrap();
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["content"][0]["text"], "done");
}

#[tokio::test]
async fn without_a_log_level_a_modern_request_gets_no_log_messages() {
    let app = custom_app(100).await;
    let reply = modern_call(&app, "tools/call", json!({ "name": "countdown" })).await;
    assert!(reply.messages().iter().all(|m| m["method"] != "notifications/message"));
}

#[tokio::test]
async fn a_modern_log_level_alone_opens_the_stream_for_log_messages() {
    let app = custom_app(100).await;
    let mut meta = envelope(json!({}));
    meta["io.modelcontextprotocol/logLevel"] = json!("info");
    let reply = modern_call(&app, "tools/call", json!({ "name": "countdown", "_meta": meta })).await;
    assert!(reply.is_sse());
    let messages = reply.messages();
    assert_eq!(messages.iter().filter(|m| m["method"] == "notifications/message").count(), 3);
    assert!(messages.iter().all(|m| m["method"] != "notifications/progress"));
    assert_eq!(messages.last().unwrap()["result"]["content"][0]["text"], "done");
}

#[tokio::test]
async fn a_modern_call_that_asked_for_no_notifications_is_answered_with_json() {
    let app = custom_app(100).await;
    let reply = modern_call(&app, "tools/call", json!({ "name": "countdown" })).await;
    assert!(!reply.is_sse());
    assert_eq!(reply.json()["result"]["content"][0]["text"], "done");
}

#[tokio::test]
async fn an_sse_only_client_gets_a_stream_even_when_nothing_precedes_the_result() {
    let app = custom_app(100).await;
    for (id, meta) in [
        (3, envelope(json!({}))),
        (4, {
            let mut m = envelope(json!({}));
            m["progressToken"] = json!(1);
            m
        }),
    ] {
        let mut request =
            modern(id, "tools/call", json!({ "name": "echo", "arguments": { "message": "hi" }, "_meta": meta }));
        request.headers_mut().insert("accept", "text/event-stream".parse().unwrap());
        let reply = send(&app, request).await;
        assert!(reply.is_sse(), "request {id}");
        let messages = reply.messages();
        assert_eq!(messages.len(), 1, "request {id}: {messages:?}");
        assert_eq!(messages[0]["id"], id);
        assert_eq!(messages[0]["result"]["content"][0]["text"], "hi");
    }
}

#[tokio::test]
async fn a_json_only_client_gets_the_result_without_notifications() {
    let app = custom_app(100).await;
    let mut meta = envelope(json!({}));
    meta["progressToken"] = json!(5);
    let mut request = modern(3, "tools/call", json!({ "name": "countdown", "_meta": meta }));
    request.headers_mut().insert("accept", "application/json".parse().unwrap());
    let reply = send(&app, request).await;
    assert!(!reply.is_sse());
    assert_eq!(reply.json()["result"]["content"][0]["text"], "done");
}

#[tokio::test]
async fn legacy_progress_and_logs_arrive_on_the_request_stream_with_event_ids() {
    let app = custom_app(100).await;
    let session = initialize(&app, LEGACY).await;
    let set_level =
        send(&app, legacy(&session, LEGACY, call(1, "logging/setLevel", json!({ "level": "debug" })))).await;
    assert_eq!(set_level.json()["result"], json!({}));
    let params = json!({ "name": "countdown", "_meta": { "progressToken": 11 } });
    let reply = send(&app, legacy(&session, LEGACY, call(2, "tools/call", params))).await;
    assert!(reply.is_sse());
    let text = String::from_utf8_lossy(&reply.body).to_string();
    assert!(text.starts_with("id: "), "priming event first: {text}");
    let messages = reply.messages();
    assert_eq!(messages.iter().filter(|m| m["method"] == "notifications/progress").count(), 3);
    assert_eq!(messages.iter().filter(|m| m["method"] == "notifications/message").count(), 3);
    assert_eq!(messages.last().unwrap()["result"]["content"][0]["text"], "done");
}

#[tokio::test]
async fn lists_page_with_opaque_cursors_and_refuse_forged_ones() {
    let app = custom_app(1).await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let result = modern_call(&app, "tools/list", params).await.json()["result"].clone();
        names.extend(result["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match result["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(names, ["echo", "get_time", "whoami", "countdown"]);
    let forged = modern_call(&app, "tools/list", json!({ "cursor": "garbage" })).await;
    assert_eq!(forged.json()["error"]["code"], -32602);
}

#[tokio::test]
async fn a_hand_written_input_schema_is_enforced_and_a_broken_output_is_caught() {
    use mcp_auth_server::tools::tool_fn;
    let strict = tool_fn(
        ToolInfo::new("strict", "Takes a count of at least one").input_schema(json!({
            "type": "object",
            "properties": { "count": { "type": "integer", "minimum": 1 } },
            "required": ["count"]
        })),
        |_, args: serde_json::Map<String, Value>| async move { Ok(CallToolResult::text(format!("{}", args["count"]))) },
    );
    let liar = tool_fn(
        ToolInfo::new("liar", "Promises a number, returns a string").output_schema(json!({
            "type": "object", "properties": { "n": { "type": "number" } }, "required": ["n"]
        })),
        |_, _: NoArgs| async { Ok(CallToolResult::structured(json!({ "n": "three" }))) },
    );
    let registry = tools::builtin().tool(strict).tool(liar);
    let app = mcp_auth_server::AppBuilder::new(test_settings()).registry(registry).build().await.unwrap();

    let too_small =
        modern_call(&app, "tools/call", json!({ "name": "strict", "arguments": { "count": 0 } })).await.json();
    assert_eq!(too_small["result"]["isError"], true);
    let text = too_small["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("minimum") && text.contains("/count"), "{text}");
    let fine = modern_call(&app, "tools/call", json!({ "name": "strict", "arguments": { "count": 3 } })).await.json();
    assert_eq!(fine["result"]["content"][0]["text"], "3");

    let lie = modern_call(&app, "tools/call", json!({ "name": "liar" })).await.json();
    assert_eq!(lie["result"]["isError"], true);
    assert!(lie["result"].get("structuredContent").is_none(), "a non-conforming result is not passed on");
}
