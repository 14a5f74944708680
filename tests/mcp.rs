//! Step 2 (`mcp`): JSON-RPC and the lifecycle of both eras on /mcp, and transport hygiene.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------- modern era

#[tokio::test]
async fn discover_answers_versions_capabilities_and_server_info() {
    let reply = send(&app().await, modern(1, "server/discover", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let result = &reply.json()["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"], json!([MODERN]));
    assert!(result["capabilities"].is_object());
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-auth-server");
    assert!(result["ttlMs"].as_u64().is_some());
    assert_eq!(result["cacheScope"], "public");
}

#[tokio::test]
async fn discover_works_without_client_info() {
    let mut meta = envelope(json!({}));
    meta.as_object_mut().unwrap().remove("io.modelcontextprotocol/clientInfo");
    let reply = send(&app().await, modern(1, "server/discover", json!({ "_meta": meta }))).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_missing_envelope_is_400_invalid_params_with_the_id() {
    let app = app().await;
    let no_version = json!({ "io.modelcontextprotocol/clientCapabilities": {} });
    let no_caps = json!({ "io.modelcontextprotocol/protocolVersion": MODERN });
    for (id, params) in [(101, json!({})), (102, json!({ "_meta": no_version })), (104, json!({ "_meta": no_caps }))] {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": "server/discover", "params": params });
        let request = post_builder()
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "server/discover")
            .body(Body::from(body.to_string()))
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "id {id}");
        assert_eq!(reply.json()["error"]["code"], -32602, "id {id}");
        assert_eq!(reply.json()["id"], id);
    }
}

fn discover_with_versions(header: &str, body_version: &str) -> Request<Body> {
    let mut meta = envelope(json!({}));
    meta["io.modelcontextprotocol/protocolVersion"] = json!(body_version);
    let body = json!({ "jsonrpc": "2.0", "id": 3, "method": "server/discover", "params": { "_meta": meta } });
    post_builder()
        .header("mcp-protocol-version", header)
        .header("mcp-method", "server/discover")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn an_unsupported_version_is_400_listing_what_we_support() {
    let reply = send(&app().await, discover_with_versions("v999.0.0", "v999.0.0")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], -32022);
    assert_eq!(error["data"]["supported"], json!([MODERN]));
    assert_eq!(error["data"]["requested"], "v999.0.0");
}

#[tokio::test]
async fn a_header_that_disagrees_with_the_body_is_a_header_mismatch_before_the_version_check() {
    let reply = send(&app().await, discover_with_versions(MODERN, "v999.0.0")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], -32020);
}

#[tokio::test]
async fn mcp_method_is_required_and_case_sensitive() {
    let app = app().await;
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": { "_meta": envelope(json!({})) } });
    let missing = post_builder().header("mcp-protocol-version", MODERN).body(Body::from(body.to_string())).unwrap();
    let reply = send(&app, missing).await;
    assert_eq!((reply.status, reply.json()["error"]["code"].clone()), (StatusCode::BAD_REQUEST, json!(-32020)));
    let wrong_case = post_builder()
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "SERVER/DISCOVER")
        .body(Body::from(body.to_string()))
        .unwrap();
    assert_eq!(send(&app, wrong_case).await.json()["error"]["code"], -32020);
    let padded = post_builder()
        .header("mcp-protocol-version", MODERN)
        .header("MCP-METHOD", "  server/discover ")
        .body(Body::from(body.to_string()))
        .unwrap();
    assert_eq!(send(&app, padded).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_and_removed_methods_are_404_method_not_found() {
    let app = app().await;
    for method in ["unknown/method", "initialize", "ping", "logging/setLevel", "resources/subscribe"] {
        let reply = send(&app, modern(9, method, json!({}))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(reply.json()["error"]["code"], -32601, "{method}");
        assert_eq!(reply.json()["id"], 9);
    }
}

#[tokio::test]
async fn a_modern_header_without_an_envelope_is_a_modern_error() {
    let body = json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/list" });
    let request = post_builder()
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "tools/list")
        .body(Body::from(body.to_string()))
        .unwrap();
    let reply = send(&app().await, request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], -32602);
}

#[tokio::test]
async fn modern_notifications_are_accepted_with_202_and_no_body() {
    let body =
        json!({ "jsonrpc": "2.0", "method": "notifications/something", "params": { "_meta": envelope(json!({})) } });
    let reply = send(&app().await, raw_post(body.to_string())).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn a_modern_request_ignores_a_session_id() {
    let mut request = modern(1, "server/discover", json!({}));
    request.headers_mut().insert("mcp-session-id", "does-not-exist".parse().unwrap());
    let reply = send(&app().await, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("mcp-session-id").is_none());
}

#[cfg(not(feature = "tools"))]
#[tokio::test]
async fn step_two_offers_no_tools() {
    let reply = send(&app().await, modern(1, "tools/list", json!({}))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let discover = send(&app().await, modern(2, "server/discover", json!({}))).await;
    assert_eq!(discover.json()["result"]["capabilities"], json!({}));
}

// ---------------------------------------------------------------- legacy era

async fn initialize_reply(app: &axum::Router, version: &str) -> Reply {
    let body = call(
        1,
        "initialize",
        json!({ "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }),
    );
    send(app, raw_post(body.to_string())).await
}

#[tokio::test]
async fn initialize_echoes_supported_versions_and_offers_the_newest_otherwise() {
    let app = app().await;
    for (asked, expected) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let reply = initialize_reply(&app, asked).await;
        assert_eq!(reply.status, StatusCode::OK);
        let result = &reply.json()["result"];
        assert_eq!(result["protocolVersion"], expected, "asked {asked}");
        assert_eq!(result["serverInfo"]["name"], "mcp-auth-server");
        assert!(result["capabilities"].is_object());
        assert!(result.get("resultType").is_none(), "legacy results keep the 2025 shape");
    }
}

#[tokio::test]
async fn session_ids_are_unguessable_visible_ascii() {
    let app = app().await;
    let a = initialize(&app, LEGACY).await;
    let b = initialize(&app, LEGACY).await;
    assert_ne!(a, b);
    assert!(a.len() >= 32);
    assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
}

#[tokio::test]
async fn ping_answers_an_empty_result() {
    let app = app().await;
    let session = initialize(&app, LEGACY).await;
    let reply = send(&app, legacy(&session, LEGACY, call(2, "ping", json!({})))).await;
    assert_eq!(reply.json()["result"], json!({}));
}

#[tokio::test]
async fn requests_need_a_session_and_unknown_sessions_are_404() {
    let app = app().await;
    let no_session = post_builder()
        .header("mcp-protocol-version", LEGACY)
        .body(Body::from(call(1, "ping", json!({})).to_string()))
        .unwrap();
    assert_eq!(send(&app, no_session).await.status, StatusCode::BAD_REQUEST);
    let reply = send(&app, legacy("from-nowhere", LEGACY, call(1, "ping", json!({})))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["id"], 1);
}

#[tokio::test]
async fn delete_ends_a_session_and_later_use_is_404() {
    let app = app().await;
    let session = initialize(&app, LEGACY).await;
    let delete = Request::delete("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .unwrap();
    assert!(send(&app, delete).await.status.is_success());
    let reply = send(&app, legacy(&session, LEGACY, call(2, "ping", json!({})))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn requests_before_initialized_are_served() {
    let app = app().await;
    let reply = initialize_reply(&app, LEGACY).await;
    let session = reply.header("mcp-session-id").unwrap().to_owned();
    let reply = send(&app, legacy(&session, LEGACY, call(2, "ping", json!({})))).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_version_header_must_be_a_supported_legacy_version_and_defaults_to_2025_03_26() {
    let app = app().await;
    let session = initialize(&app, LEGACY).await;
    let bad = send(&app, legacy(&session, "2024-01-01", call(2, "ping", json!({})))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Clients of 2025-03-26 send no header at all.
    let no_header = post_builder()
        .header("mcp-session-id", &session)
        .body(Body::from(call(3, "ping", json!({})).to_string()))
        .unwrap();
    assert_eq!(send(&app, no_header).await.status, StatusCode::OK);
    // Any supported version is accepted on a session (clients are known to send an older one).
    assert_eq!(send(&app, legacy(&session, "2025-03-26", call(4, "ping", json!({})))).await.status, StatusCode::OK);
}

#[tokio::test]
async fn batches_are_served_only_to_2025_03_26_sessions() {
    let app = app().await;
    let old = initialize(&app, "2025-03-26").await;
    let batch = json!([call(1, "ping", json!({})), { "jsonrpc": "2.0", "method": "notifications/initialized" }, call(2, "ping", json!({}))]);
    let reply = send(&app, legacy(&old, "2025-03-26", batch.clone())).await;
    assert_eq!(reply.status, StatusCode::OK);
    let responses = reply.json();
    assert_eq!(responses.as_array().unwrap().len(), 2);
    assert_eq!(responses[0]["id"], 1);
    assert_eq!(responses[1]["result"], json!({}));

    let new = initialize(&app, LEGACY).await;
    let reply = send(&app, legacy(&new, LEGACY, batch)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], -32600);
}

#[tokio::test]
async fn a_batched_initialize_is_refused() {
    let app = app().await;
    let old = initialize(&app, "2025-03-26").await;
    let batch = json!([call(1, "initialize", json!({ "protocolVersion": "2025-03-26", "capabilities": {} }))]);
    let reply = send(&app, legacy(&old, "2025-03-26", batch)).await;
    assert_eq!(reply.json()[0]["error"]["code"], -32600);
}

fn get_stream(session: Option<&str>, version: &str) -> Request<Body> {
    let mut builder = Request::get("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", version);
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn get_opens_one_standalone_stream_per_session_with_a_priming_event() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let app = app().await;
    let session = initialize(&app, LEGACY).await;
    let response = app.clone().oneshot(authorized(get_stream(Some(&session), LEGACY))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(first.starts_with("id: ") && first.contains("retry: ") && first.contains("data: "), "{first}");
    // While it is open, a second standalone stream is refused.
    assert_eq!(send(&app, get_stream(Some(&session), LEGACY)).await.status, StatusCode::CONFLICT);
    drop(body);
}

// On tokio's paused clock: the 200 ms of silence pass at once, after everything else has run.
#[tokio::test(start_paused = true)]
async fn older_clients_get_no_priming_event() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let app = app().await;
    let session = initialize(&app, "2025-06-18").await;
    let response = app.clone().oneshot(authorized(get_stream(Some(&session), "2025-06-18"))).await.unwrap();
    let mut body = response.into_body();
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(200), body.frame()).await;
    assert!(nothing.is_err(), "no event may be sent to a 2025-06-18 client before there is news");
}

#[tokio::test]
async fn get_needs_a_session_and_is_not_part_of_the_modern_era() {
    let app = app().await;
    assert_eq!(send(&app, get_stream(None, LEGACY)).await.status, StatusCode::BAD_REQUEST);
    let session = initialize(&app, LEGACY).await;
    assert_eq!(send(&app, get_stream(Some(&session), MODERN)).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

// ---------------------------------------------------------------- transport hygiene

#[tokio::test]
async fn methods_other_than_post_get_and_delete_are_405_with_allow_and_other_paths_404() {
    let app = app().await;
    for method in ["PUT", "PATCH"] {
        let request = Request::builder().method(method).uri("/mcp").header("host", "localhost").body(Body::empty());
        let reply = send(&app, request.unwrap()).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow: Vec<&str> = reply.headers["allow"].to_str().unwrap().split(',').collect();
        for allowed in ["GET", "POST", "DELETE"] {
            assert!(allow.contains(&allowed), "{method}: {allow:?}");
        }
        assert!(!allow.contains(&method), "{method}: {allow:?}");
    }
    let elsewhere = Request::post("/mcp/extra").header("host", "localhost").body(Body::empty()).unwrap();
    assert_eq!(send(&app, elsewhere).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let request = Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(&app().await, request).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_accept_header_admitting_neither_json_nor_sse_is_406_but_json_only_is_fine() {
    let app = app().await;
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": { "_meta": envelope(json!({})) } })
            .to_string();
    let html = Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "text/html")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(send(&app, html).await.status, StatusCode::NOT_ACCEPTABLE);
    let json_only = Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "server/discover")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&app, json_only).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_10_mb_body_is_413_whether_declared_or_streamed() {
    let app = app().await;
    let big = vec![b' '; 10 * 1024 * 1024];
    assert_eq!(send(&app, raw_post(big.clone())).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let chunks = futures_util::stream::iter(
        big.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let streamed = post_builder().body(Body::from_stream(chunks)).unwrap();
    assert_eq!(send(&app, streamed).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn garbage_and_deep_nesting_are_parse_errors_without_an_id() {
    let app = app().await;
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    for body in [b"\x00\xff garbage".to_vec(), b"{\"jsonrpc\":".to_vec(), deep.into_bytes()] {
        let reply = send(&app, raw_post(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let json = reply.json();
        assert_eq!(json["error"]["code"], -32700);
        assert!(json.get("id").is_none(), "never \"id\": null");
    }
}

#[tokio::test]
async fn a_message_of_the_wrong_shape_is_an_invalid_request() {
    let app = app().await;
    for body in
        [json!({ "id": 1, "method": "ping" }), json!([]), json!({ "jsonrpc": "2.0", "id": 1.5, "method": "ping" })]
    {
        let reply = send(&app, raw_post(body.to_string())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.json()["error"]["code"], -32600, "{body}");
    }
}

#[tokio::test]
async fn foreign_host_or_origin_is_403_and_loopback_passes() {
    let app = app().await;
    let evil = modern(1, "server/discover", json!({}));
    let (mut parts, body) = evil.into_parts();
    parts.headers.insert("host", "evil.example.com".parse().unwrap());
    parts.headers.insert("origin", "http://evil.example.com".parse().unwrap());
    assert_eq!(send(&app, Request::from_parts(parts, body)).await.status, StatusCode::FORBIDDEN);

    let origin_only = modern(1, "server/discover", json!({}));
    let (mut parts, body) = origin_only.into_parts();
    parts.headers.insert("origin", "http://evil.example.com".parse().unwrap());
    let reply = send(&app, Request::from_parts(parts, body)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.json()["error"].is_object());

    let good = modern(1, "server/discover", json!({}));
    let (mut parts, body) = good.into_parts();
    parts.headers.insert("origin", "http://127.0.0.1:3000".parse().unwrap());
    assert_eq!(send(&app, Request::from_parts(parts, body)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_server_keeps_serving_after_hostile_input() {
    let app = app().await;
    let hostile: Vec<Request<Body>> = vec![
        raw_post(vec![0xffu8; 4096]),
        raw_post(vec![b'['; 100_000]),
        legacy("forged-session", LEGACY, call(1, "tools/list", json!({}))),
        discover_with_versions("v999.0.0", "v999.0.0"),
    ];
    for request in hostile {
        assert!(send(&app, request).await.status.is_client_error());
    }
    let reply = send(&app, modern(1, "server/discover", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let _: Value = reply.json();
}

#[tokio::test]
async fn any_refusal_sent_before_the_body_is_read_says_connection_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = spawn_app().await;
    let host = server.base.trim_start_matches("http://").to_owned();
    // 415 (content type) and 403 (foreign Origin): both answered before the body arrives.
    for extra in ["content-type: text/plain\r\n", "content-type: application/json\r\norigin: http://evil.example\r\n"] {
        let mut socket = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!("POST /mcp HTTP/1.1\r\nhost: {host}\r\n{extra}content-length: 100\r\n\r\n");
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed before a response");
            response.extend_from_slice(&chunk[..n]);
        }
        let response = String::from_utf8_lossy(&response).to_ascii_lowercase();
        assert!(response.starts_with("http/1.1 4"), "{response}");
        assert!(response.contains("\r\nconnection: close\r\n"), "{response}");
    }
    // A request whose body was read keeps its connection.
    let mut request = reqwest::Client::new().post(server.mcp_url());
    if let Some(credentials) = auth_header_for(&server.base) {
        request = request.header("authorization", credentials);
    }
    let reply = request
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}")
        .send()
        .await
        .unwrap();
    assert!(reply.headers().get("connection").is_none_or(|v| v != "close"));
    server.shutdown.trigger();
}
