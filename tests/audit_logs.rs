//! Step 9: the audit trail. Its own test binary because it installs a tracing subscriber.

mod common;

use common::tokens::TokenBuilder;
use common::*;
use mcp_auth_server::config::LogFormat;
use mcp_auth_server::telemetry;
use serde_json::json;

/// Installs the subscriber the binary uses (filter `info`) in `format`, writing to a buffer, for
/// as long as the guard lives.
fn capture(format: LogFormat) -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buffer = LogBuffer::default();
    let guard = tracing::subscriber::set_default(telemetry::subscriber("info", format, buffer.clone(), false));
    (buffer, guard)
}

#[tokio::test]
async fn every_call_leaves_one_audit_line_with_who_what_outcome_and_duration_but_never_the_token() {
    // The subscriber the binary installs, with its text format.
    let (buffer, _guard) = capture(LogFormat::Text);

    let app = app().await;
    let token = TokenBuilder::new().subject("auditor-7").scopes(&["mcp:read", "mcp:tools", "mcp:prompts"]).build();
    let bearer = format!("Bearer {token}");
    let with = |mut request: axum::http::Request<axum::body::Body>| {
        request.headers_mut().insert("authorization", bearer.parse().unwrap());
        request
    };
    send_as_is(
        &app,
        with(modern(1, "tools/call", json!({ "name": "echo", "arguments": { "message": "secret-ish" } }))),
    )
    .await;
    send_as_is(&app, with(modern(2, "prompts/get", json!({ "name": "greeting", "arguments": { "name": "Ada" } }))))
        .await;
    send_as_is(&app, with(modern(3, "tools/list", json!({})))).await;
    let reader = format!("Bearer {}", TokenBuilder::new().subject("reader-1").scopes(&["mcp:read"]).build());
    let mut refused = modern(4, "tools/call", json!({ "name": "echo", "arguments": { "message": "x" } }));
    refused.headers_mut().insert("authorization", reader.parse().unwrap());
    send_as_is(&app, refused).await;

    let lines = buffer.lines_with("audit");
    assert_eq!(lines.len(), 3, "tools/call, prompts/get and the refused call; lists are not audited: {lines:#?}");
    // In the request's span, so other lines of the same request can be told apart.
    assert!(lines[0].contains(" INFO request{method=POST path=/mcp}: audit: subject=auditor-7 "), "{}", lines[0]);
    assert!(lines[0].contains("operation=tools/call name=echo outcome=ok duration_us="), "{}", lines[0]);
    let duration = lines[0].split("duration_us=").nth(1).and_then(|rest| rest.split_whitespace().next());
    assert!(duration.is_some_and(|us| us.parse::<u64>().is_ok()), "whole microseconds: {}", lines[0]);
    assert!(lines[1].contains("prompts/get") && lines[1].contains("greeting"), "{}", lines[1]);
    // Refused when the scope policy is on (reader-1 lacks mcp:tools).
    let expected = if cfg!(feature = "scopes") { "outcome=refused" } else { "outcome=ok" };
    assert!(lines[2].contains("reader-1") && lines[2].contains(expected), "{}", lines[2]);
    let everything = lines.join("\n");
    assert!(!everything.contains(&token), "never the token");
    assert!(!everything.contains("secret-ish"), "arguments only when configured");
}

#[tokio::test]
async fn arguments_join_the_audit_trail_only_when_configured() {
    let (buffer, _guard) = capture(LogFormat::Text);
    let app = app_with(&test_settings_with("[log]\naudit_arguments = true")).await;
    send(&app, modern(1, "tools/call", json!({ "name": "echo", "arguments": { "message": "recorded" } }))).await;
    let lines = buffer.lines_with("audit");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(r#"arguments={"message":"recorded"}"#), "{}", lines[0]);
}

#[tokio::test]
async fn in_json_format_each_audit_line_is_one_json_object_with_the_request_span() {
    let (buffer, _guard) = capture(LogFormat::Json);
    let app = app().await;
    send(&app, modern(1, "tools/call", json!({ "name": "echo", "arguments": { "message": "hi" } }))).await;
    let lines = buffer.lines_with("audit");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["target"], "audit");
    assert_eq!(
        (line["operation"].as_str(), line["name"].as_str(), line["outcome"].as_str()),
        (Some("tools/call"), Some("echo"), Some("ok"))
    );
    assert_eq!((line["span"]["name"].as_str(), line["span"]["path"].as_str()), (Some("request"), Some("/mcp")));
}
