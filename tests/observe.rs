//! Metrics on the admin listener (issue 28): the real binary with `admin.bind`, driven over TCP
//! with successful and failing MCP calls, then `/metrics` scraped over HTTP and read series by
//! series. Each test runs its own server process, so every count starts at zero.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::binary::Server;
use common::tokens::{self, TokenBuilder};
use common::{LEGACY, MODERN};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A free port on 127.0.0.1 (for the admin listener).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One sample of the Prometheus text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (label values here hold no `,` or `"`).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("key=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample { name: name.to_owned(), labels, value: value.parse().expect("a number") }
        })
        .collect()
}

/// What one scrape of `/metrics` said.
struct Scrape(Vec<Sample>);

impl Scrape {
    /// The sum of the samples of `name` that carry all of `labels` (and, for a `!key` label,
    /// not that key).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels.iter().all(|(key, value)| match key.strip_prefix('!') {
                    Some(absent) => !s.labels.contains_key(absent),
                    None => s.labels.get(*key).map(String::as_str) == Some(*value),
                })
            })
            .map(|s| s.value)
            .sum()
    }

    /// How many `mcp.server.operation.duration` observations carry `labels`.
    fn operations(&self, labels: &[(&str, &str)]) -> f64 {
        self.value("mcp_server_operation_duration_seconds_count", labels)
    }
}

async fn scrape(client: &reqwest::Client, admin: u16) -> (String, Scrape) {
    let response = client.get(format!("http://127.0.0.1:{admin}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    (content_type, Scrape(samples))
}

/// POSTs a JSON-RPC message to the server's `/mcp`, with `headers` and the bearer `token`.
async fn post(
    client: &reqwest::Client,
    server: &Server,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    let mut request = client
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.send().await.unwrap()
}

/// A modern (2026-07-28) request, envelope and routing headers included.
async fn modern(
    client: &reqwest::Client,
    server: &Server,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> reqwest::Response {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let name = params.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if let Some(name) = &name {
        headers.push(("mcp-name", name));
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    post(client, server, token, &headers, body).await
}

/// `request` with the legacy session's headers and the caller's token.
fn in_session(request: reqwest::RequestBuilder, token: &str, session: &str) -> reqwest::RequestBuilder {
    request
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", LEGACY)
        .header("authorization", format!("Bearer {token}"))
}

/// A legacy request within `session`.
async fn legacy(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    session: &str,
    body: Value,
) -> reqwest::Response {
    post(client, server, Some(token), &[("mcp-session-id", session), ("mcp-protocol-version", LEGACY)], body).await
}

/// The TCP ports process `pid` listens on (from `/proc`: its socket inodes in LISTEN state).
fn listening_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(target.strip_prefix("socket:[")?.trim_end_matches(']').to_owned())
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEX_IP:HEX_PORT; state 0A is LISTEN; the inode is field 9.
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                let port = fields[1].rsplit_once(':').unwrap().1;
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

#[tokio::test]
async fn mcp_calls_refusals_and_limits_are_counted_on_the_admin_listener_only() {
    let admin = free_port();
    // A small per-caller budget, so that one caller can be made to hit it; the others stay
    // well under it. The public /health keeps to status and version.
    let server = Server::start(&format!(
        "[admin]\nbind = \"127.0.0.1:{admin}\"\n[server]\nhealth_details = false\n\
         [limits]\nper_caller_per_sec = 1\nper_caller_burst = 15\n"
    ));
    let client = reqwest::Client::new();
    let base = server.url("");
    let token = TokenBuilder::new().for_server(&base).scopes(&["mcp:read", "mcp:tools"]).build();

    // Modern calls: fine, a tool error, an unknown tool (its name is no label value).
    assert_eq!(modern(&client, &server, Some(&token), "tools/list", json!({})).await.status(), StatusCode::OK);
    let echo = json!({ "name": "echo", "arguments": { "message": "hi" } });
    assert_eq!(modern(&client, &server, Some(&token), "tools/call", echo).await.status(), StatusCode::OK);
    let bad_arguments = json!({ "name": "echo", "arguments": { "message": 5 } });
    let reply: Value = modern(&client, &server, Some(&token), "tools/call", bad_arguments).await.json().await.unwrap();
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let unknown = json!({ "name": "no-such-tool-3f9a", "arguments": {} });
    assert_eq!(modern(&client, &server, Some(&token), "tools/call", unknown).await.status(), StatusCode::BAD_REQUEST);

    // A legacy session: initialize, initialized, a call, an unknown tool (an error with 200).
    let initialize = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } } });
    let opened = post(&client, &server, Some(&token), &[], initialize).await;
    assert_eq!(opened.status(), StatusCode::OK);
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(legacy(&client, &server, &token, &session, initialized).await.status(), StatusCode::ACCEPTED);
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "echo", "arguments": { "message": "hi" } } });
    assert_eq!(legacy(&client, &server, &token, &session, call).await.status(), StatusCode::OK);
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "no-such-tool-3f9a", "arguments": {} } });
    let reply: Value = legacy(&client, &server, &token, &session, call).await.json().await.unwrap();
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    // Its standalone stream, open while the metrics are read.
    let stream = in_session(client.get(server.url("/mcp")), &token, &session)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    // Refused by the scope policy: a reader calls a tool.
    let reader = TokenBuilder::new().for_server(&base).subject("reader").scopes(&["mcp:read"]).build();
    let echo = json!({ "name": "echo", "arguments": { "message": "hi" } });
    assert_eq!(modern(&client, &server, Some(&reader), "tools/call", echo).await.status(), StatusCode::FORBIDDEN);

    // Refused by authentication, each for its own reason.
    let valid = |subject: &str| TokenBuilder::new().for_server(&base).subject(subject).build();
    let (a, b) = (valid("a"), valid("b"));
    let tampered = format!("{}.{}", a.rsplit_once('.').unwrap().0, b.rsplit_once('.').unwrap().1);
    let other_key = tokens::rsa_signer("observe-other-key");
    let unauthorized = StatusCode::UNAUTHORIZED;
    let refusals = [
        (None, "missing", unauthorized),
        (Some("a b".to_owned()), "malformed", StatusCode::BAD_REQUEST),
        (Some(TokenBuilder::new().for_server(&base).expired().build()), "expired", unauthorized),
        (
            Some(TokenBuilder::new().for_server(&base).audience("https://elsewhere.example/mcp").build()),
            "audience",
            unauthorized,
        ),
        (
            Some(TokenBuilder::new().for_server(&base).issuer("https://elsewhere.example").build()),
            "issuer",
            unauthorized,
        ),
        (Some(TokenBuilder::new().for_server(&base).signed_with(&other_key).build()), "unknown_key", unauthorized),
        (Some(tampered), "signature", unauthorized),
    ];
    for (token, reason, expected) in &refusals {
        let status = modern(&client, &server, token.as_deref(), "tools/list", json!({})).await.status();
        assert_eq!(status, *expected, "{reason}");
    }

    // One caller over its budget.
    let flooder = TokenBuilder::new().for_server(&base).subject("flooder").build();
    let (mut served, mut limited) = (0.0, 0.0);
    for _ in 0..30 {
        match modern(&client, &server, Some(&flooder), "tools/list", json!({})).await.status() {
            StatusCode::OK => served += 1.0,
            StatusCode::TOO_MANY_REQUESTS => limited += 1.0,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited > 0.0, "the flood was never limited");

    // An unknown path, and the public port has no /metrics.
    assert_eq!(client.get(server.url("/nope-7c1d")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(client.get(server.url("/metrics")).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    let (content_type, metrics) = scrape(&client, admin).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    // mcp.server.operation.duration, by method, era, version, tool and outcome.
    let tool_call = [("mcp_method_name", "tools/call")];
    let modern_call = [tool_call.as_slice(), &[("era", "modern"), ("mcp_protocol_version", MODERN)]].concat();
    let legacy_call = [tool_call.as_slice(), &[("era", "legacy"), ("mcp_protocol_version", LEGACY)]].concat();
    let with = |base: &[(&'static str, &'static str)], more: &[(&'static str, &'static str)]| [base, more].concat();
    let ok_echo = [("gen_ai_tool_name", "echo"), ("outcome", "ok"), ("!error_type", "")];
    assert_eq!(metrics.operations(&with(&modern_call, &ok_echo)), 1.0);
    assert_eq!(
        metrics.operations(&with(
            &modern_call,
            &[("gen_ai_tool_name", "echo"), ("outcome", "tool_error"), ("error_type", "tool_error")]
        )),
        1.0
    );
    let unknown_tool = [("gen_ai_tool_name", "_OTHER"), ("outcome", "error"), ("error_type", "-32602")];
    assert_eq!(metrics.operations(&with(&modern_call, &unknown_tool)), 1.0);
    assert_eq!(metrics.operations(&with(&legacy_call, &ok_echo)), 1.0);
    assert_eq!(metrics.operations(&with(&legacy_call, &unknown_tool)), 1.0);
    let refused = [("gen_ai_tool_name", "echo"), ("outcome", "refused"), ("error_type", "-31403")];
    assert_eq!(metrics.operations(&with(&modern_call, &refused)), 1.0);
    assert_eq!(metrics.operations(&[("mcp_method_name", "initialize"), ("era", "legacy"), ("outcome", "ok")]), 1.0);
    assert_eq!(metrics.operations(&[("mcp_method_name", "notifications/initialized"), ("era", "legacy")]), 1.0);
    assert_eq!(
        metrics.operations(&[("mcp_method_name", "tools/list"), ("era", "modern"), ("outcome", "ok")]),
        1.0 + served,
        "requests refused before the transport are no operations"
    );
    assert!(
        !metrics.0.iter().any(|s| s.labels.values().any(|v| v.contains("no-such-tool"))),
        "a made-up tool name is no label value"
    );
    // A histogram with the conventions' buckets.
    assert!(metrics.value("mcp_server_operation_duration_seconds_bucket", &[("le", "300")]) > 0.0);

    // Authentication failures by reason, authorization denials by scope, limits by limit.
    for (_, reason, _) in &refusals {
        assert_eq!(metrics.value("mcp_auth_authentication_failures_total", &[("reason", reason)]), 1.0, "{reason}");
    }
    assert_eq!(
        metrics.value("mcp_auth_authorization_denials_total", &[("scope", "mcp:tools"), ("reason", "missing_scope")]),
        1.0
    );
    assert_eq!(metrics.value("mcp_auth_rate_limit_refusals_total", &[("limit", "per_caller")]), limited);
    assert!(metrics.value("mcp_auth_token_cache_lookups_total", &[("result", "hit")]) > 0.0);
    assert!(metrics.value("mcp_auth_token_cache_lookups_total", &[("result", "miss")]) > 0.0);
    assert_eq!(metrics.value("mcp_auth_sse_streams_open", &[]), 1.0, "the standalone stream is open");
    // HTTP requests by route and status; a path no route serves is no label value.
    let mcp_posts = [("http_request_method", "POST"), ("http_route", "/mcp"), ("http_response_status_code", "200")];
    assert!(metrics.value("http_server_request_duration_seconds_count", &mcp_posts) > 0.0);
    let unrouted = [("http_route", "_OTHER"), ("http_response_status_code", "404")];
    assert_eq!(metrics.value("http_server_request_duration_seconds_count", &unrouted), 2.0);
    assert_eq!(metrics.value("mcp_auth_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert_eq!(metrics.value("mcp_auth_sessions_opened_total", &[("mcp_protocol_version", LEGACY)]), 1.0);
    // The session was filed in the store (memory here) once, and read back on each request.
    let stored = |operation| [("backend", "memory"), ("operation", operation), ("outcome", "ok")];
    assert_eq!(metrics.value("mcp_auth_store_operation_duration_seconds_count", &stored("put_in_group")), 1.0);
    assert!(metrics.value("mcp_auth_store_operation_duration_seconds_count", &stored("get")) >= 1.0);
    drop(stream);

    // The client ends its session: counted, with how long it lasted.
    let ended = in_session(client.delete(server.url("/mcp")), &token, &session).send().await.unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let (_, after) = scrape(&client, admin).await;
    assert_eq!(after.value("mcp_auth_sessions_ended_total", &[("reason", "closed")]), 1.0);
    let lasted = [("mcp_protocol_version", LEGACY)];
    assert_eq!(after.value("mcp_server_session_duration_seconds_count", &lasted), 1.0);
    assert_eq!(after.value("mcp_server_session_duration_seconds_bucket", &[lasted[0], ("le", "60")]), 1.0);

    // The admin listener also serves the probes and the detailed report, without a Host check;
    // the public /health stays terse.
    let admin_url = |path: &str| format!("http://127.0.0.1:{admin}{path}");
    let detailed: Value =
        client.get(admin_url("/health")).header("host", "anything.example").send().await.unwrap().json().await.unwrap();
    assert!(detailed["jwt"]["kids"].is_array() && detailed["mcp"]["sessions"] == 0, "ended above: {detailed}");
    let terse: Value = client.get(server.url("/health")).send().await.unwrap().json().await.unwrap();
    assert!(terse.get("jwt").is_none(), "{terse}");
    assert_eq!(client.get(admin_url("/health/ready")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(client.get(admin_url("/health/live")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(client.get(admin_url("/mcp")).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    assert_eq!(listening_ports(server.pid()), BTreeSet::from([server.port, admin]));
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn without_admin_bind_nothing_else_listens_and_no_metrics_are_anywhere() {
    let server = Server::start("");
    let client = reqwest::Client::new();
    let token = TokenBuilder::new().for_server(&server.url("")).build();
    assert_eq!(modern(&client, &server, Some(&token), "tools/list", json!({})).await.status(), StatusCode::OK);
    assert_eq!(client.get(server.url("/metrics")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(listening_ports(server.pid()), BTreeSet::from([server.port]));
    server.stop();
}

// Two threads: the JWKS is served from this runtime while the test waits for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_refreshes_their_failures_and_the_last_success_are_exported() {
    // The issuer's JWKS, served from this test; switched to failing halfway.
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let jwks = tokens::local_keys().key_set().jwks();
    let fail = failing.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (jwks, fail) = (jwks.clone(), fail.clone());
            async move {
                if fail.load(std::sync::atomic::Ordering::SeqCst) {
                    Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                } else {
                    Ok(axum::Json(jwks))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let admin = free_port();
    let server = Server::start(&format!(
        "[admin]\nbind = \"127.0.0.1:{admin}\"\n\
         [jwt]\nissuer = \"{issuer}\"\njwks_url = \"{issuer}/jwks.json\"\nmin_refresh_interval_secs = 0\n"
    ));
    let client = reqwest::Client::new();
    let (_, metrics) = scrape(&client, admin).await;
    assert_eq!(metrics.value("mcp_auth_jwks_refreshes_total", &[("result", "ok")]), 1.0, "the fetch at start-up");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let last = metrics.value("mcp_auth_jwks_last_success_timestamp_seconds", &[]);
    assert!((now - last).abs() < 60.0, "last success {last}, now {now}");

    // An unknown kid makes the server fetch again, and that fetch fails.
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let other_key = tokens::rsa_signer("observe-rotated-key");
    let token = TokenBuilder::new().issuer(&issuer).audience(&server.url("/mcp")).signed_with(&other_key).build();
    let status = modern(&client, &server, Some(&token), "tools/list", json!({})).await.status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, metrics) = scrape(&client, admin).await;
    assert_eq!(metrics.value("mcp_auth_jwks_refreshes_total", &[("result", "error")]), 1.0);
    assert_eq!(metrics.value("mcp_auth_jwks_last_success_timestamp_seconds", &[]), last, "kept from the last success");
    assert_eq!(metrics.value("mcp_auth_authentication_failures_total", &[("reason", "unknown_key")]), 1.0);
    server.stop();
}

/// The embedded authorization server's series: sign-ins by outcome, consent answers, token
/// requests by grant and outcome, a refresh token's reuse, grants revoked by reason and
/// introspections by answer.
#[cfg(feature = "issuer")]
#[tokio::test]
async fn sign_ins_consents_token_requests_and_refresh_reuse_are_counted() {
    use common::issuer::{BOB_PASSWORD, Browser, Pkce, SERVICE_SECRET, accounts_layer, authorize_uri, form, query_of};
    const CALLBACK: &str = "http://127.0.0.1:4999/callback";

    let admin = free_port();
    let server = Server::start(&format!("[admin]\nbind = \"127.0.0.1:{admin}\"\n{}", accounts_layer()));
    let client = reqwest::Client::new();
    let resource = server.url("/mcp");
    let token = |fields: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = form(&pairs);
        let request = client
            .post(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send();
        async move {
            let reply = request.await.unwrap();
            (reply.status(), reply.json::<Value>().await.unwrap())
        }
    };

    let pkce = Pkce::new();
    let scopes = [("resource", resource.as_str()), ("scope", "mcp:read")];
    let uri = authorize_uri("test-client", CALLBACK, &pkce, &scopes);
    let mut browser = Browser::over_http(&server.url(""));
    // A wrong password, then the right one; a denial, then an allowed request.
    let page = browser.get(&uri).await;
    assert_eq!(browser.sign_in(&page, "bob", "not-bobs-password").await.status, StatusCode::UNAUTHORIZED);
    let page = browser.consent_page(&uri, "bob", BOB_PASSWORD).await;
    assert_eq!(browser.decide(&page, "deny").await.status, StatusCode::SEE_OTHER);
    let callback = browser.authorize(&uri, "bob", BOB_PASSWORD).await;

    let code = query_of(&callback)["code"].clone();
    let redeem = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("client_id", "test-client".to_owned()),
        ("code", code),
        ("redirect_uri", CALLBACK.to_owned()),
        ("code_verifier", pkce.verifier.clone()),
    ];
    let (status, tokens) = token(redeem.clone()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("client_id", "test-client".to_owned()),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap().to_owned()),
    ];
    assert_eq!(token(refresh.clone()).await.0, StatusCode::OK);
    assert_eq!(token(refresh).await.0, StatusCode::BAD_REQUEST, "the reuse of a rotated refresh token");
    assert_eq!(token(redeem).await.0, StatusCode::BAD_REQUEST, "a code is redeemed once");
    let made_up = vec![("grant_type", "password".to_owned()), ("client_id", "test-client".to_owned())];
    assert_eq!(token(made_up).await.0, StatusCode::BAD_REQUEST);
    // The confidential client's own token: introspected (active), revoked at its request, then
    // introspected again (not active).
    let service = |path: &str, fields: Vec<(&str, &str)>| {
        client
            .post(server.url(path))
            .basic_auth("test-service", Some(SERVICE_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
    };
    let reply = service("/token", vec![("grant_type", "client_credentials")]).await.unwrap();
    let access = reply.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let active = |reply: reqwest::Response| async move { reply.json::<Value>().await.unwrap()["active"].clone() };
    assert_eq!(active(service("/introspect", vec![("token", &access)]).await.unwrap()).await, true);
    assert_eq!(service("/revoke", vec![("token", &access)]).await.unwrap().status(), StatusCode::OK);
    assert_eq!(active(service("/introspect", vec![("token", &access)]).await.unwrap()).await, false);

    let (_, metrics) = scrape(&client, admin).await;
    let sign_ins = |outcome| metrics.value("mcp_auth_issuer_sign_ins_total", &[("outcome", outcome)]);
    assert_eq!((sign_ins("ok"), sign_ins("wrong_credentials")), (2.0, 1.0));
    let consents = |decision| metrics.value("mcp_auth_issuer_consents_total", &[("decision", decision)]);
    assert_eq!((consents("allow"), consents("deny")), (1.0, 1.0));
    let tokens =
        |grant, outcome| metrics.value("mcp_auth_issuer_tokens_total", &[("grant", grant), ("outcome", outcome)]);
    assert_eq!(tokens("authorization_code", "issued"), 1.0);
    assert_eq!(tokens("authorization_code", "invalid_grant"), 1.0);
    assert_eq!(tokens("refresh_token", "issued"), 1.0);
    assert_eq!(tokens("refresh_token", "invalid_grant"), 1.0);
    assert_eq!(tokens("_OTHER", "unsupported_grant_type"), 1.0, "a made-up grant is no label value");
    assert_eq!(metrics.value("mcp_auth_issuer_refresh_reuse_detected_total", &[]), 1.0);
    let revoked = |reason| metrics.value("mcp_auth_issuer_grants_revoked_total", &[("reason", reason)]);
    assert_eq!((revoked("refresh_reuse"), revoked("code_replay"), revoked("client_request")), (1.0, 1.0, 1.0));
    let introspected = |active| metrics.value("mcp_auth_issuer_introspections_total", &[("active", active)]);
    assert_eq!((introspected("true"), introspected("false")), (1.0, 1.0));
    server.stop();
}
