//! Step 9: the audit trail. Its own test binary because it installs a tracing subscriber.

mod common;

use std::time::{Duration, Instant};

use common::binary::Server;
use common::tokens::TokenBuilder;
use common::*;
use futures_util::StreamExt;
use mcp_auth_server::config::LogFormat;
use mcp_auth_server::telemetry;
use serde_json::json;

/// Installs the subscriber the binary uses (filter `info`) in `format`, writing to a buffer, for
/// as long as the guard lives.
fn capture(format: LogFormat) -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buffer = LogBuffer::default();
    let guard = tracing::subscriber::set_default(telemetry::subscriber("info", format, buffer.clone()));
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
    assert!(lines[0].contains(" INFO request{method=POST path=/mcp}: audit: subject=\"auditor-7\" "), "{}", lines[0]);
    assert!(lines[0].contains(r#"operation="tools/call" name="echo" outcome="ok" duration_us="#), "{}", lines[0]);
    let duration = lines[0].split("duration_us=").nth(1).and_then(|rest| rest.split_whitespace().next());
    assert!(duration.is_some_and(|us| us.parse::<u64>().is_ok()), "whole microseconds: {}", lines[0]);
    assert!(lines[1].contains("prompts/get") && lines[1].contains("greeting"), "{}", lines[1]);
    // Refused when the scope policy is on (reader-1 lacks mcp:tools).
    let expected = if cfg!(feature = "scopes") { r#"outcome="refused""# } else { r#"outcome="ok""# };
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

/// The binary writes each log line to stdout as it is logged: an audit line is out as soon as
/// its call has been answered, none is lost under concurrent calls, at a graceful shutdown, or
/// when the process is killed outright.
#[tokio::test]
async fn the_binary_writes_each_audit_line_at_once_and_loses_none_under_load_at_shutdown_or_when_killed() {
    let no_limits = "[limits]\nper_address_per_sec = 0\nper_caller_per_sec = 0\n";
    let settings = format!("[log]\nfilter = \"info\"\n{no_limits}");
    let (server, stdout) = Server::start_reading_stdout(&settings);
    let token = |server: &Server| {
        TokenBuilder::new().for_server(&server.url("")).subject("audited-1").scopes(&["mcp:tools"]).build()
    };
    let client = reqwest::Client::new();
    let call = |server: &Server, message: String| {
        let mut body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "echo", "arguments": { "message": message } } });
        body["params"]["_meta"] = envelope(json!({}));
        client
            .post(server.url("/mcp"))
            .bearer_auth(token(server))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo")
            .json(&body)
            .send()
    };
    // Audit lines of the test's subject read from stdout until `count` arrived or `within` passed.
    let audit_lines = |stdout: &std::sync::mpsc::Receiver<String>, count: usize, within: Duration| {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while seen.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match stdout.recv_timeout(left) {
                Ok(line) if line.contains(" audit: ") && line.contains(r#"subject="audited-1""#) => seen.push(line),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        seen
    };

    // One call, then nothing: its line is out without more traffic.
    assert_eq!(call(&server, "one".into()).await.unwrap().status(), 200);
    let first = audit_lines(&stdout, 1, Duration::from_secs(5));
    assert_eq!(first.len(), 1, "the line of a lone call reaches stdout without more traffic");
    assert!(first[0].contains(r#"operation="tools/call" name="echo" outcome="ok""#), "{}", first[0]);

    // 400 calls, 16 at a time: every line arrives, whole.
    let calls = futures_util::stream::iter((0..400).map(|i| call(&server, format!("load-{i}")))).buffer_unordered(16);
    let statuses: Vec<u16> = calls.map(|r| r.unwrap().status().as_u16()).collect().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let under_load = audit_lines(&stdout, 400, Duration::from_secs(10));
    assert_eq!(under_load.len(), 400, "every call's line");
    assert!(under_load.iter().all(|l| l.ends_with(|c: char| c.is_ascii_digit())), "whole lines");

    // Calls right before a graceful shutdown: their lines are out when the process has exited.
    for i in 0..20 {
        call(&server, format!("late-{i}")).await.unwrap();
    }
    let stderr = server.stop();
    let late = audit_lines(&stdout, 20, Duration::from_secs(1));
    assert_eq!(late.len(), 20, "lines written before exit; stderr: {stderr}");

    // Calls right before SIGKILL: nothing was held back, so nothing is lost.
    let (server, stdout) = Server::start_reading_stdout(&settings);
    for i in 0..20 {
        assert_eq!(call(&server, format!("killed-{i}")).await.unwrap().status(), 200);
    }
    server.kill();
    let killed = audit_lines(&stdout, 20, Duration::from_secs(1));
    assert_eq!(killed.len(), 20, "every line of an answered call survives a SIGKILL");
}
