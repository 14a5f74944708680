//! The official MCP conformance suite's fixtures, built only through the crate's public API:
//! proof that rich tools, prompts and resources need no change to the crate.
//!
//! ```sh
//! MCP_AUTH__SERVER__BIND=127.0.0.1:3001 cargo run --example conformance_server --features tools
//! ../shared/conformance/run.sh http://127.0.0.1:3001/mcp 2026-07-28
//! ../shared/conformance/run.sh http://127.0.0.1:3001/mcp 2025-11-25
//! ```
//! One process serves both eras. The suite sends no token, so run it on a build without `jwt`
//! (or with authentication configured for a test issuer).
//!
//! Handlers are written once, in the multi round-trip style of 2026-07-28: a tool that needs
//! input from the client returns `ToolError::InputRequired` and reads the answers on the retry.
//! Legacy clients get the same tools through real server-to-client requests.

use std::collections::BTreeMap;
use std::time::Duration;

use mcp_auth_server::mcp::RpcError;
use mcp_auth_server::tools::{
    CallToolResult, Content, GetPromptResult, InputRequest, InputRequired, JsonSchema, LogLevel, NoArgs, PromptInfo,
    PromptMessage, Registry, ResourceContents, ResourceInfo, ResourceTemplateInfo, Role, ToolContext, ToolError,
    ToolInfo, ToolResult, prompt_fn, resource_fn, template_fn, tool_fn,
};
use mcp_auth_server::{AppBuilder, Settings, serve, telemetry};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A 1x1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A tiny WAV.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

type Args = Map<String, Value>;

fn text_result(text: impl Into<String>) -> ToolResult {
    Ok(CallToolResult::text(text))
}

fn image() -> Content {
    Content::Image { data: PNG.into(), mime_type: "image/png".into() }
}

/// Asks for input unless the client already answered `key`; then hands the answer back.
fn answer_or_ask(ctx: &ToolContext, key: &str, request: impl FnOnce() -> InputRequest) -> Result<Value, ToolError> {
    match ctx.input_response(key) {
        Some(answer) => Ok(answer.clone()),
        None => Err(ToolError::InputRequired(InputRequired {
            input_requests: BTreeMap::from([(key.to_owned(), request())]),
            request_state: None,
        })),
    }
}

fn name_elicitation(message: &str) -> InputRequest {
    InputRequest::elicit(
        message,
        json!({ "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] }),
    )
}

/// The `content` of an accepted elicitation answer.
fn accepted(answer: &Value) -> Option<&Map<String, Value>> {
    (answer.get("action").and_then(Value::as_str) == Some("accept"))
        .then(|| answer.get("content").and_then(Value::as_object))
        .flatten()
}

#[derive(Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the client's model.
    prompt: String,
}

#[derive(Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user.
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct PromptArgs {
    /// First test argument
    arg1: String,
    /// Second test argument
    arg2: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct EmbeddedArgs {
    /// URI of the resource to embed
    resource_uri: String,
}

fn content_tools(registry: Registry) -> Registry {
    registry
        .tool(tool_fn(ToolInfo::new("test_simple_text", "Tests simple text content response"), |_, _: NoArgs| async {
            text_result("This is a simple text response for testing.")
        }))
        .tool(tool_fn(ToolInfo::new("test_image_content", "Tests image content response"), |_, _: NoArgs| async {
            Ok(CallToolResult { content: vec![image()], ..Default::default() })
        }))
        .tool(tool_fn(ToolInfo::new("test_audio_content", "Tests audio content response"), |_, _: NoArgs| async {
            let audio = Content::Audio { data: WAV.into(), mime_type: "audio/wav".into() };
            Ok(CallToolResult { content: vec![audio], ..Default::default() })
        }))
        .tool(tool_fn(
            ToolInfo::new("test_embedded_resource", "Tests embedded resource content response"),
            |_, _: NoArgs| async {
                let resource = ResourceContents::Text {
                    uri: "test://embedded-resource".into(),
                    mime_type: Some("text/plain".into()),
                    text: "This is an embedded resource content.".into(),
                };
                Ok(CallToolResult { content: vec![Content::Resource { resource }], ..Default::default() })
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_multiple_content_types", "Tests response with multiple content types"),
            |_, _: NoArgs| async {
                let resource = ResourceContents::Text {
                    uri: "test://mixed-content-resource".into(),
                    mime_type: Some("application/json".into()),
                    text: r#"{"test":"data","value":123}"#.into(),
                };
                let content = vec![Content::text("Multiple content types test:"), image(), Content::Resource { resource }];
                Ok(CallToolResult { content, ..Default::default() })
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_tool_with_logging", "Tests tool that emits log messages during execution"),
            |ctx, _: NoArgs| async move {
                for (i, message) in ["Tool execution started", "Tool processing data", "Tool execution completed"].iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    ctx.log(LogLevel::Info, *message).await;
                }
                text_result("Tool with logging executed successfully")
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_tool_with_progress", "Tests tool that reports progress notifications"),
            |ctx, _: NoArgs| async move {
                for (i, step) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    ctx.progress(step, Some(100.0), Some(&format!("Completed step {step} of 100"))).await;
                }
                text_result("Progress tool completed")
            },
        ))
        .tool(tool_fn(ToolInfo::new("test_error_handling", "Tests error response handling"), |_, _: NoArgs| async {
            Err(ToolError::failed("This tool intentionally returns an error for testing"))
        }))
        .tool(tool_fn(
            ToolInfo::new("test_x_mcp_header", "Tests Mcp-Param-* header validation (x-mcp-header)").input_schema(json!({
                "type": "object",
                "properties": {
                    "region": { "type": "string", "description": "Mirrored into the Mcp-Param-Region header", "x-mcp-header": "Region" }
                }
            })),
            |_, args: Args| async move {
                text_result(format!("region={}", args.get("region").and_then(Value::as_str).unwrap_or("<none>")))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features").input_schema(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": { "address": { "$anchor": "addressDef", "type": "object",
                    "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                    "phone": { "type": "string" },
                    "email": { "type": "string" }
                },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
                "then": { "required": ["phone"] },
                "else": { "required": ["email"] },
                "additionalProperties": false
            })),
            |_, _: Args| async { text_result("json_schema_2020_12_tool") },
        ))
}

fn interactive_tools(registry: Registry) -> Registry {
    registry
        .tool(tool_fn(
            ToolInfo::new("test_sampling", "Tests server-initiated sampling (LLM completion request)"),
            |ctx, args: SamplingArgs| async move {
                let answer = answer_or_ask(&ctx, "sampling", || InputRequest::sample(args.prompt.clone(), 100))?;
                let text = answer.pointer("/content/text").and_then(Value::as_str).unwrap_or("No response");
                text_result(format!("LLM response: {text}"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_elicitation", "Tests server-initiated elicitation (user input request)"),
            |ctx, args: ElicitationArgs| async move {
                let answer = answer_or_ask(&ctx, "elicitation", || {
                    InputRequest::elicit(
                        args.message.clone(),
                        json!({
                            "type": "object",
                            "properties": {
                                "username": { "type": "string", "description": "User's response" },
                                "email": { "type": "string", "description": "User's email address" }
                            },
                            "required": ["username", "email"]
                        }),
                    )
                })?;
                let action = answer.get("action").and_then(Value::as_str).unwrap_or("?");
                let content = answer.get("content").cloned().unwrap_or(json!({}));
                text_result(format!("User response: action={action}, content={content}"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_elicitation_sep1034_defaults", "Tests elicitation with default values (SEP-1034)"),
            |ctx, _: NoArgs| async move {
                let answer = answer_or_ask(&ctx, "defaults", || {
                    InputRequest::elicit(
                        "Please provide user information",
                        json!({
                            "type": "object",
                            "properties": {
                                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                                "age": { "type": "integer", "description": "User age", "default": 30 },
                                "score": { "type": "number", "description": "User score", "default": 95.5 },
                                "status": { "type": "string", "description": "User status",
                                            "enum": ["active", "inactive", "pending"], "default": "active" },
                                "verified": { "type": "boolean", "description": "Verification status", "default": true }
                            },
                            "required": []
                        }),
                    )
                })?;
                let action = answer.get("action").and_then(Value::as_str).unwrap_or("?");
                let content = answer.get("content").cloned().unwrap_or(json!({}));
                text_result(format!("Elicitation completed: action={action}, content={content}"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_elicitation_sep1330_enums", "Tests elicitation with enum schema variations (SEP-1330)"),
            |ctx, _: NoArgs| async move {
                let answer = answer_or_ask(&ctx, "enums", || {
                    InputRequest::elicit(
                        "Please select values using different enum schema types",
                        json!({
                            "type": "object",
                            "properties": {
                                "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
                                "titledSingle": { "type": "string", "oneOf": [
                                    { "const": "value1", "title": "First Option" },
                                    { "const": "value2", "title": "Second Option" },
                                    { "const": "value3", "title": "Third Option" } ] },
                                "legacyEnum": { "type": "string", "enum": ["opt1", "opt2", "opt3"],
                                                "enumNames": ["Option One", "Option Two", "Option Three"] },
                                "untitledMulti": { "type": "array", "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
                                "titledMulti": { "type": "array", "items": { "anyOf": [
                                    { "const": "value1", "title": "First Choice" },
                                    { "const": "value2", "title": "Second Choice" },
                                    { "const": "value3", "title": "Third Choice" } ] } }
                            },
                            "required": []
                        }),
                    )
                })?;
                let action = answer.get("action").and_then(Value::as_str).unwrap_or("?");
                let content = answer.get("content").cloned().unwrap_or(json!({}));
                text_result(format!("Elicitation completed: action={action}, content={content}"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_reconnection", "Tests SSE polling by closing the stream mid-call (SEP-1699)"),
            |ctx, _: NoArgs| async move {
                ctx.log(LogLevel::Info, "Before disconnect").await;
                ctx.close_sse_connection().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                ctx.log(LogLevel::Info, "After reconnect").await;
                text_result("Reconnection test completed")
            },
        ))
}

fn stateless_diagnostics(registry: Registry) -> Registry {
    let changes = registry.clone();
    let prompt_changes = registry.clone();
    registry
        .tool(tool_fn(
            ToolInfo::new("test_missing_capability", "Requires the client's sampling capability (-32021 otherwise)"),
            |ctx, _: NoArgs| async move {
                let needed = json!({ "sampling": {} });
                if !ctx.client_supports(&needed) {
                    return Err(RpcError::missing_client_capability(needed).into());
                }
                text_result("Client declared sampling capability; proceeding.")
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_streaming_elicitation", "Asks for input through an input_required result"),
            |ctx, _: NoArgs| async move {
                let needed = json!({ "elicitation": {} });
                if !ctx.client_supports(&needed) {
                    return Err(RpcError::missing_client_capability(needed).into());
                }
                let answer = answer_or_ask(&ctx, "streaming_elicitation", || {
                    InputRequest::elicit(
                        "Please provide a value",
                        json!({ "type": "object", "properties": { "value": { "type": "string" } }, "required": ["value"] }),
                    )
                })?;
                let value = accepted(&answer).and_then(|c| c.get("value")).and_then(Value::as_str).unwrap_or("?");
                text_result(format!("Received: {value}"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_logging_tool", "Logs only when the request asked for a log level"),
            |ctx, _: NoArgs| async move {
                ctx.log(LogLevel::Info, "Logging tool ran").await;
                text_result("Logging tool completed")
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_trigger_tool_change", "Adds and removes a tool, announcing the change"),
            move |_, _: NoArgs| {
                let registry = changes.clone();
                async move {
                    registry.add_tool(tool_fn(
                        ToolInfo::new("test_dynamic_tool", "A tool that comes and goes"),
                        |_, _: NoArgs| async { text_result("dynamic") },
                    ));
                    registry.remove_tool("test_dynamic_tool");
                    text_result("tool list changed")
                }
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_trigger_prompt_change", "Adds and removes a prompt, announcing the change"),
            move |_, _: NoArgs| {
                let registry = prompt_changes.clone();
                async move {
                    registry.add_prompt(prompt_fn(
                        PromptInfo::new("test_dynamic_prompt", "A prompt that comes and goes"),
                        |_, _: NoArgs| async { Ok(GetPromptResult { messages: vec![PromptMessage::user("dynamic")], ..Default::default() }) },
                    ));
                    registry.remove_prompt("test_dynamic_prompt");
                    text_result("prompt list changed")
                }
            },
        ))
}

fn input_required_tools(registry: Registry) -> Registry {
    let input = |requests: Vec<(&str, InputRequest)>, state: Option<&str>| {
        Err::<CallToolResult, _>(ToolError::InputRequired(InputRequired {
            input_requests: requests.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            request_state: state.map(str::to_owned),
        }))
    };
    registry
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_elicitation", "InputRequiredResult with one elicitation"),
            |ctx, _: NoArgs| async move {
                let answer = answer_or_ask(&ctx, "user_name", || name_elicitation("What is your name?"))?;
                match accepted(&answer).and_then(|c| c.get("name")).and_then(Value::as_str) {
                    Some(name) => text_result(format!("Hello, {name}!")),
                    // An answer of the wrong shape is asked again, never completed from garbage.
                    None => Err(ToolError::InputRequired(InputRequired {
                        input_requests: BTreeMap::from([("user_name".to_owned(), name_elicitation("What is your name?"))]),
                        request_state: None,
                    })),
                }
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_sampling", "InputRequiredResult with one sampling request"),
            |ctx, _: NoArgs| async move {
                let answer =
                    answer_or_ask(&ctx, "capital_question", || InputRequest::sample("What is the capital of France?", 100))?;
                let text = answer.pointer("/content/text").and_then(Value::as_str).unwrap_or("?");
                text_result(format!("Model said: {text}"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_list_roots", "InputRequiredResult with one roots/list request"),
            |ctx, _: NoArgs| async move {
                let answer = answer_or_ask(&ctx, "client_roots", InputRequest::list_roots)?;
                let count = answer.get("roots").and_then(Value::as_array).map_or(0, Vec::len);
                text_result(format!("Client exposed {count} root(s)."))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_request_state", "requestState round trip"),
            move |ctx, _: NoArgs| async move {
                if ctx.input_response("confirm").is_some() && ctx.request_state() == Some("request-state-nonce") {
                    return text_result("state-ok: confirmation received");
                }
                let confirm = InputRequest::elicit(
                    "Please confirm",
                    json!({ "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] }),
                );
                input(vec![("confirm", confirm)], Some("request-state-nonce"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_multiple_inputs", "Elicitation, sampling and roots together"),
            move |ctx, _: NoArgs| async move {
                let all = ["user_name", "greeting", "client_roots"].iter().all(|k| ctx.input_response(k).is_some());
                if all {
                    return text_result("All inputs received.");
                }
                input(
                    vec![
                        ("user_name", name_elicitation("What is your name?")),
                        ("greeting", InputRequest::sample("Generate a greeting", 50)),
                        ("client_roots", InputRequest::list_roots()),
                    ],
                    Some("multiple-inputs"),
                )
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_multi_round", "Three rounds with evolving requestState"),
            move |ctx, _: NoArgs| async move {
                let state: Value = ctx.request_state().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(json!({ "round": 0 }));
                let round = state["round"].as_u64().unwrap_or(0);
                let content_of = |key: &str, field: &str| {
                    ctx.input_response(key).and_then(accepted).and_then(|c| c.get(field)).and_then(Value::as_str).map(str::to_owned)
                };
                match round {
                    1 if ctx.input_response("step1").is_some() => {
                        let name = content_of("step1", "name");
                        let color = InputRequest::elicit(
                            "Step 2: What is your favorite color?",
                            json!({ "type": "object", "properties": { "color": { "type": "string" } }, "required": ["color"] }),
                        );
                        input(vec![("step2", color)], Some(&json!({ "round": 2, "name": name }).to_string()))
                    }
                    2 if ctx.input_response("step2").is_some() => {
                        let name = state["name"].as_str().unwrap_or("someone").to_owned();
                        text_result(format!("{name} likes {}.", content_of("step2", "color").unwrap_or_default()))
                    }
                    _ => input(vec![("step1", name_elicitation("Step 1: What is your name?"))], Some(r#"{"round":1}"#)),
                }
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_tampered_state", "The server rejects a tampered requestState"),
            move |ctx, _: NoArgs| async move {
                if let Some(state) = ctx.request_state() {
                    return text_result(format!("state-ok: {state}"));
                }
                let confirm = InputRequest::elicit(
                    "Please confirm",
                    json!({ "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] }),
                );
                input(vec![("confirm", confirm)], Some("round-1"))
            },
        ))
        .tool(tool_fn(
            ToolInfo::new("test_input_required_result_capabilities", "Asks only for what the client declared"),
            move |ctx, _: NoArgs| async move {
                let mut requests = Vec::new();
                if ctx.client_supports(&json!({ "sampling": {} })) {
                    requests.push(("sample", InputRequest::sample("Say hello", 50)));
                }
                if ctx.client_supports(&json!({ "elicitation": {} })) {
                    requests.push(("ask", name_elicitation("What is your name?")));
                }
                if requests.is_empty() {
                    return Err(RpcError::missing_client_capability(json!({ "sampling": {} })).into());
                }
                input(requests, Some("capability-gated"))
            },
        ))
}

fn prompts(registry: Registry) -> Registry {
    let messages = |messages: Vec<PromptMessage>| Ok(GetPromptResult { messages, ..Default::default() });
    registry
        .prompt(prompt_fn(PromptInfo::new("test_simple_prompt", "A simple prompt without arguments"), move |_, _: NoArgs| async move {
            messages(vec![PromptMessage::user("This is a simple prompt for testing.")])
        }))
        .prompt(prompt_fn(
            PromptInfo::new("test_prompt_with_arguments", "A prompt with required arguments"),
            move |_, args: PromptArgs| async move {
                messages(vec![PromptMessage::user(format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    args.arg1, args.arg2
                ))])
            },
        ))
        .prompt(prompt_fn(
            PromptInfo::new("test_prompt_with_embedded_resource", "A prompt that includes an embedded resource"),
            move |_, args: EmbeddedArgs| async move {
                let resource = ResourceContents::Text {
                    uri: args.resource_uri,
                    mime_type: Some("text/plain".into()),
                    text: "Embedded resource content for testing.".into(),
                };
                messages(vec![
                    PromptMessage { role: Role::User, content: Content::Resource { resource } },
                    PromptMessage::user("Please process the embedded resource above."),
                ])
            },
        ))
        .prompt(prompt_fn(PromptInfo::new("test_prompt_with_image", "A prompt that includes image content"), move |_, _: NoArgs| async move {
            messages(vec![PromptMessage { role: Role::User, content: image() }, PromptMessage::user("Please analyze the image above.")])
        }))
        .prompt(prompt_fn(
            PromptInfo::new("test_input_required_result_prompt", "InputRequiredResult from prompts/get"),
            move |ctx, _: NoArgs| async move {
                let answer = answer_or_ask(&ctx, "user_context", || {
                    InputRequest::elicit(
                        "What context should the prompt use?",
                        json!({ "type": "object", "properties": { "context": { "type": "string" } }, "required": ["context"] }),
                    )
                })?;
                let context = accepted(&answer).and_then(|c| c.get("context")).and_then(Value::as_str).unwrap_or("?");
                messages(vec![PromptMessage::user(format!("Use the following context: {context}"))])
            },
        ))
}

fn resources(registry: Registry) -> Registry {
    registry
        .resource(resource_fn(
            ResourceInfo::new("test://static-text", "Static text")
                .description("A static text resource")
                .mime_type("text/plain"),
            |_| async {
                Ok(vec![ResourceContents::Text {
                    uri: "test://static-text".into(),
                    mime_type: Some("text/plain".into()),
                    text: "This is the content of the static text resource.".into(),
                }])
            },
        ))
        .resource(resource_fn(
            ResourceInfo::new("test://static-binary", "Static binary")
                .description("A static binary resource (image)")
                .mime_type("image/png"),
            |_| async {
                Ok(vec![ResourceContents::Blob {
                    uri: "test://static-binary".into(),
                    mime_type: Some("image/png".into()),
                    blob: PNG.into(),
                }])
            },
        ))
        .resource(resource_fn(
            ResourceInfo::new("test://watched-resource", "Watched resource")
                .description("A resource that can be subscribed to")
                .mime_type("text/plain"),
            |_| async {
                Ok(vec![ResourceContents::Text {
                    uri: "test://watched-resource".into(),
                    mime_type: Some("text/plain".into()),
                    text: "Watched resource content".into(),
                }])
            },
        ))
        .resource_template(template_fn(
            ResourceTemplateInfo::new("test://template/{id}/data", "Template data")
                .description("A resource template with parameter substitution")
                .mime_type("application/json"),
            |_, uri, variables| async move {
                let id = variables.get("id").cloned().unwrap_or_default();
                let text = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string();
                Ok(vec![ResourceContents::Text { uri, mime_type: Some("application/json".into()), text }])
            },
        ))
}

/// Every fixture, the first tool callable with `{}` (the header-validation scenario calls the
/// first listed tool).
fn registry() -> Registry {
    let registry = content_tools(Registry::new());
    let registry = interactive_tools(registry);
    let registry = stateless_diagnostics(registry);
    let registry = input_required_tools(registry);
    resources(prompts(registry))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::load()?;
    telemetry::init(&settings.log);
    let shutdown = serve::Shutdown::default();
    let router = AppBuilder::new(settings.clone()).registry(registry()).shutdown(shutdown.clone()).build().await?;
    let listener = tokio::net::TcpListener::bind(settings.server.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "conformance server listening");
    let options = serve::ServeOptions::from_settings(&settings.server);
    serve::serve(listener, router, serve::shutdown_signal(), shutdown, options).await?;
    Ok(())
}
