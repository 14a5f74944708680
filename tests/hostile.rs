//! The hostile-input suite: the real binary, with every feature, under the inputs an attacker
//! sends. Each must get its documented 4xx (or the connection closed) in bounded time, nothing
//! may panic, the server keeps serving, and its memory comes back to baseline.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::binary::Server;
use common::tokens::TokenBuilder;
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap()
}

/// A token for `server`, with every scope.
fn token(server: &Server) -> String {
    caller(server, "tester", &["mcp:read", "mcp:tools", "mcp:prompts"])
}

fn caller(server: &Server, subject: &str, scopes: &[&str]) -> String {
    TokenBuilder::new().for_server(&server.url("")).subject(subject).scopes(scopes).build()
}

/// A modern request body for `method`.
fn modern_body(method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = envelope(json!({}));
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
}

async fn post(
    client: &reqwest::Client,
    server: &Server,
    bearer: Option<&str>,
    method: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let (method, name) = method.split_once(' ').map_or((method, None), |(m, n)| (m, Some(n)));
    let mut request = client
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    request.body(body).send().await.unwrap()
}

/// Runs `attack`, asserting it is answered within `limit`.
async fn bounded<T>(what: &str, limit: Duration, attack: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(limit, attack).await.unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"));
    assert!(started.elapsed() <= limit, "{what}");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_holds_under_hostile_input() {
    let mut server = Server::start(
        "[server]\nheader_read_timeout_secs = 2\nbody_read_timeout_secs = 2\n[limits]\nper_address_per_sec = 0\nper_caller_per_sec = 0",
    );
    let http = client();
    let token = token(&server);
    let second = Duration::from_secs(1);

    // Warm up, then take the baseline.
    for _ in 0..50 {
        let reply = post(
            &http,
            &server,
            Some(&token),
            "tools/call echo",
            modern_body("tools/call", json!({ "name": "echo", "arguments": { "message": "warm" } })).to_string(),
        )
        .await;
        assert_eq!(reply.status(), 200);
    }
    let baseline = server.rss_kib();

    // An oversize request head.
    let huge_header = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    let reply = bounded("oversize header", second * 5, server.raw(huge_header.as_bytes())).await;
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 431"), "{}", reply.lines().next().unwrap_or(""));

    // Header injection: a CR/LF inside a header value never becomes a header of ours.
    let injected = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost\rX-Injected: yes\r\nContent-Length: 2\r\n\r\n{}";
    let reply = bounded("CR injection", second * 5, server.raw(injected)).await;
    assert!(!reply.to_ascii_lowercase().contains("x-injected"), "{reply}");
    let echoed = http
        .request(reqwest::Method::OPTIONS, server.url("/mcp"))
        .header("origin", "http://localhost:1")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["access-control-allow-origin"], "http://localhost:1", "only a valid origin is echoed");

    // The read deadlines: a truncated head, a slowloris and a body that never ends, each on its
    // own connection. They wait on the server's 2 s deadlines, real time in another process,
    // so they wait at the same time.
    let truncated_head = async {
        let reply =
            bounded("truncated head", second * 5, server.raw(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"))
                .await;
        assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 4"), "{reply}");
    };

    // Slowloris: a head trickled one byte at a time is cut off by the header deadline.
    let slowloris = async {
        let started = Instant::now();
        let mut slow = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let mut closed = false;
        for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".iter().cycle().take(60) {
            if slow.write_all(&[*byte]).await.is_err() {
                closed = true;
                break;
            }
            // The client's pace, not a wait for the server: the deadline is what ends the loop.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut buffer = [0u8; 256];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buffer)).await {
                // 408 then close, or just close.
                closed = n == 0 || String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 408");
                if closed {
                    break;
                }
            }
        }
        assert!(closed, "a slowloris connection is closed");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "by the 2 s header deadline, not later: {:?}",
            started.elapsed()
        );
    };

    // A body that never ends: 408 after the body deadline.
    let endless_body = async {
        let mut endless = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let head = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"jsonrpc\""
        );
        endless.write_all(head.as_bytes()).await.unwrap();
        let mut response = vec![0u8; 4096];
        let n = bounded("endless body", second * 6, endless.read(&mut response)).await.unwrap();
        assert!(
            String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&response[..n])
        );
    };
    tokio::join!(truncated_head, slowloris, endless_body);

    // Every class of malformed token: 401 (or 400 for a malformed header), quickly.
    let header = |value: &str| URL_SAFE_NO_PAD.encode(value);
    let forged_none =
        format!("{}.{}.", header(r#"{"alg":"none","typ":"JWT"}"#), header(r#"{"sub":"x","exp":9999999999}"#));
    let forged_hs = format!("{}.{}.c2ln", header(r#"{"alg":"HS256"}"#), header(r#"{"sub":"x"}"#));
    let unknown_kid = format!("{}.{}.c2ln", header(r#"{"alg":"RS256","kid":"nope"}"#), header(r#"{"sub":"x"}"#));
    let tampered = {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = header(r#"{"sub":"admin","scope":"mcp:read mcp:tools","exp":9999999999}"#);
        parts.join(".")
    };
    // A 100 KB token overflows the request-head limit: 431, or the connection closed.
    let oversized = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "x".repeat(100_000)
    );
    let reply = bounded("100 KB token", second * 5, async {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let _ = stream.write_all(oversized.as_bytes()).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    })
    .await;
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 431"), "{}", reply.lines().next().unwrap_or(""));
    let cases = [
        "garbage".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        "!!!.###.$$$".to_owned(),
        forged_none,
        forged_hs,
        unknown_kid,
        tampered,
        TokenBuilder::new().for_server(&server.url("")).expired().build(),
        format!("{}.{}.{}", "e".repeat(6_000), "p".repeat(6_000), "s".repeat(6_000)),
    ];
    let discover = modern_body("server/discover", json!({})).to_string();
    for bad in &cases {
        let reply =
            bounded("bad token", second * 5, post(&http, &server, Some(bad), "server/discover", discover.clone()))
                .await;
        let status = reply.status().as_u16();
        assert!(matches!(status, 400 | 401 | 431), "{status} for {}", &bad[..bad.len().min(40)]);
    }

    // Odd JSON: duplicate keys, huge numbers, invalid UTF-8, deep nesting, a 100,000-element batch.
    let huge_number = format!(r#"{{"jsonrpc":"2.0","id":1{},"method":"ping"}}"#, "0".repeat(5000));
    let batch = format!("[{}]", vec!["{}"; 100_000].join(","));
    let odd: Vec<Vec<u8>> = vec![
        br#"{"jsonrpc":"2.0","id":1,"method":"server/discover","method":"tools/list"}"#.to_vec(),
        huge_number.into_bytes(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}".to_vec(),
        format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).into_bytes(),
        batch.into_bytes(),
    ];
    for body in odd {
        let reply = bounded("odd JSON", second * 5, post(&http, &server, Some(&token), "server/discover", body)).await;
        assert!(reply.status().is_client_error(), "{}", reply.status());
    }

    // Unknown methods in a tight loop.
    for _ in 0..2_000 {
        let reply = post(&http, &server, Some(&token), "no/such", modern_body("no/such", json!({})).to_string()).await;
        assert_eq!(reply.status(), 404);
    }

    // Path traversal and odd encodings in resource URIs: never a file, always an error.
    for uri in [
        "../../etc/passwd",
        "file:///etc/passwd",
        "memo://%2e%2e/%2e%2e/etc/passwd",
        "memo://\u{0000}",
        "test://a\r\nb",
    ] {
        let body = modern_body("resources/read", json!({ "uri": uri })).to_string();
        let reply = http
            .post(server.url("/mcp"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "resources/read")
            .header("mcp-name", format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(uri)))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_client_error(), "{uri}: {}", reply.status());
        assert!(!reply.text().await.unwrap().contains("root:"), "{uri}");
    }

    // 1,000 connections at once, each with a request: all answered. They come from eight
    // loopback addresses, as from eight clients: one address may hold at most
    // `server.max_connections_per_address` (256) at once.
    let mut tasks = Vec::new();
    for i in 0..1_000u16 {
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1 + (i % 8) as u8], 0))).unwrap();
            let mut stream = socket.connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap();
            stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.unwrap();
            response.starts_with(b"HTTP/1.1 200")
        }));
    }
    let answered = futures_util::future::join_all(tasks).await.into_iter().filter(|ok| *ok.as_ref().unwrap()).count();
    assert_eq!(answered, 1_000);

    // 1,000 SSE streams opened and dropped, 100 at a time by 100 callers (one caller may hold
    // at most `mcp.max_streams_per_caller` at once: tests/abuse.rs).
    let listen =
        modern_body("subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } })).to_string();
    let streamers: Vec<String> =
        (0..100).map(|i| caller(&server, &format!("streamer-{i}"), &["mcp:read", "mcp:tools"])).collect();
    for _ in 0..10 {
        let mut open = Vec::new();
        for streamer in &streamers {
            open.push(post(&http, &server, Some(streamer), "subscriptions/listen", listen.clone()).await);
        }
        assert!(open.iter().all(|r| r.status() == 200));
        drop(open);
    }
    let mut settled = false;
    for _ in 0..100 {
        let health: Value = http.get(server.url("/health")).send().await.unwrap().json().await.unwrap();
        if health["mcp"]["open_streams"] == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(settled, "every dropped stream was released");

    // Still serving, memory back to baseline, no panic.
    let reply = post(
        &http,
        &server,
        Some(&token),
        "tools/call echo",
        modern_body("tools/call", json!({ "name": "echo", "arguments": { "message": "still here" } })).to_string(),
    )
    .await;
    assert_eq!(reply.status(), 200);
    assert!(server.alive());
    // Freed memory goes back to the system a little after it is freed: look for it for up to
    // half a second, instead of always waiting that long.
    let mut after = server.rss_kib();
    for _ in 0..10 {
        if after < baseline + 20 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = server.rss_kib();
    }
    assert!(after < baseline + 20 * 1024, "RSS {baseline} KiB -> {after} KiB");
    let stderr = server.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::io::stderr().write_all(format!("hostile suite: RSS {baseline} KiB -> {after} KiB\n").as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_per_caller_and_per_address() {
    let server = Server::start(
        "[limits]\nper_caller_per_sec = 2\nper_caller_burst = 3\nper_address_per_sec = 20\nper_address_burst = 20",
    );
    let http = client();
    let alice = caller(&server, "alice", &["mcp:read"]);
    let alice_again = caller(&server, "alice", &["mcp:read", "mcp:tools"]);
    assert_ne!(alice, alice_again);
    let bob = caller(&server, "bob", &["mcp:read"]);
    let list = modern_body("tools/list", json!({})).to_string();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(post(&http, &server, Some(&alice), "tools/list", list.clone()).await);
    }
    assert_eq!(statuses.iter().filter(|r| r.status() == 200).count(), 3, "the burst");
    let limited = statuses.iter().find(|r| r.status() == 429).expect("then 429");
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        post(&http, &server, Some(&alice_again), "tools/list", list.clone()).await.status(),
        429,
        "a new token of the same caller draws from the same bucket"
    );
    assert_eq!(
        post(&http, &server, Some(&bob), "tools/list", list.clone()).await.status(),
        200,
        "bob has his own bucket"
    );

    // Bogus tokens from one address are cut off before any signature is checked.
    let mut refused = 0;
    for i in 0..120 {
        let status = post(&http, &server, Some(&format!("bogus.{i}.token")), "tools/list", list.clone()).await.status();
        if status == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 80, "{refused}");
    server.stop();
}
