//! A bounded soak: the release server under mixed traffic for a few minutes, while its JWKS
//! source rotates the signing key twice and goes down for 20 seconds. Loopback only; it stops by
//! itself and prints requests by outcome and the server's memory at start, middle and end.
//!
//! ```sh
//! cargo build --release --all-features
//! cargo run --release --example soak -- --duration 180
//! ```
//!
//! Traffic, from several workers at once: authenticated `tools/call` in the modern era and in
//! legacy sessions (must all succeed), tokens that are garbage or expired (must get 401),
//! tokens without the tools scope (must get 403), and `subscriptions/listen` streams opened and
//! abandoned. The run fails if any valid call is refused or anything answers 5xx.

#[path = "../src/jwt/keyfile.rs"]
#[allow(dead_code)]
mod keyfile;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

const WORKERS: usize = 8;

/// The key set the fake issuer publishes, and whether it answers at all.
#[derive(Default)]
struct Issuer {
    keys: Mutex<Vec<Value>>,
    down: AtomicBool,
}

/// Outcome counters, by traffic kind and status.
#[derive(Default)]
struct Tally {
    counts: Mutex<BTreeMap<(String, String), usize>>,
    unexpected: AtomicUsize,
}

impl Tally {
    fn record(&self, kind: &str, outcome: &str, expected: bool) {
        *self.counts.lock().unwrap().entry((kind.to_owned(), outcome.to_owned())).or_default() += 1;
        if !expected {
            self.unexpected.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: unexpected {outcome} for {kind}");
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Options {
    duration: Duration,
    server: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut options =
        Options { duration: Duration::from_secs(180), server: PathBuf::from("target/release/mcp-auth-server") };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--duration" => {
                let secs: u64 = args.next().and_then(|v| v.parse().ok()).ok_or("--duration takes seconds")?;
                options.duration = Duration::from_secs(secs.max(60));
            }
            "--server" => options.server = args.next().ok_or("--server takes a path")?.into(),
            other => return Err(format!("unknown option {other}; usage: soak [--duration SECONDS] [--server PATH]")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    let work = std::env::temp_dir().join(format!("mcp-auth-soak-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let signers: Vec<Arc<keyfile::Signer>> = (1..=3)
        .map(|i| {
            let dir = work.join(format!("key{i}"));
            let files = keyfile::load_or_generate(&dir.join("private.pem"), &[dir.join("public.pem")]).unwrap();
            Arc::new(files.signer.unwrap())
        })
        .collect();

    // The JWKS source.
    let issuer = Arc::new(Issuer::default());
    *issuer.keys.lock().unwrap() = vec![signers[0].public().jwk("RS256")];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let serving = issuer.clone();
    let router = Router::new().route(
        "/jwks",
        get(move || {
            let issuer = serving.clone();
            async move {
                if issuer.down.load(Ordering::Relaxed) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response_json(json!({}));
                }
                let keys = issuer.keys.lock().unwrap().clone();
                axum::http::StatusCode::OK.into_response_json(json!({ "keys": keys }))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    // The server, release build, keys from the JWKS source, rate limits off (one client
    // address drives all the traffic; the limits have their own tests).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server: Child = match Command::new(&options.server)
        .env("MCP_AUTH__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("MCP_AUTH__SERVER__PUBLIC_URL", &base)
        .env("MCP_AUTH__JWT__ISSUER", &issuer_url)
        .env("MCP_AUTH__JWT__JWKS_URL", format!("{issuer_url}/jwks"))
        .env("MCP_AUTH__JWT__REFRESH_INTERVAL_SECS", "5")
        .env("MCP_AUTH__JWT__MIN_REFRESH_INTERVAL_SECS", "1")
        .env("MCP_AUTH__LIMITS__PER_ADDRESS_PER_SEC", "0")
        .env("MCP_AUTH__LIMITS__PER_CALLER_PER_SEC", "0")
        .env("MCP_AUTH__LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            eprintln!(
                "soak: cannot start {}: {err} (build it with `cargo build --release --all-features`)",
                options.server.display()
            );
            return ExitCode::from(2);
        }
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = server.id();
    let start_rss = rss_kib(pid);
    let current = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + options.duration;
    let token = {
        let signers = signers.clone();
        let current = current.clone();
        let base = base.clone();
        let issuer_url = issuer_url.clone();
        Arc::new(move |scopes: &str, expired: bool| {
            let signer = &signers[current.load(Ordering::Relaxed)];
            let exp = if expired { now() - 3600 } else { now() + 600 };
            let claims = json!({ "iss": issuer_url, "sub": "soak", "aud": format!("{base}/mcp"), "exp": exp, "iat": now(), "scope": scopes });
            signer.sign(jsonwebtoken::Algorithm::RS256, &claims).unwrap()
        })
    };

    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (http, base, tally, token) = (http.clone(), base.clone(), tally.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let mut session: Option<String> = None;
            let mut round = 0usize;
            while Instant::now() < deadline {
                round += 1;
                let kind = (worker + round) % 6;
                let valid = token("mcp:read mcp:tools", false);
                match kind {
                    0 | 1 => {
                        let status = modern_call(&http, &base, &valid).await;
                        tally.record("valid modern tools/call", &status, status == "200");
                    }
                    2 => {
                        let status = legacy_call(&http, &base, &valid, &mut session).await;
                        tally.record("valid legacy tools/call", &status, status == "200");
                    }
                    3 => {
                        let bad = if round.is_multiple_of(2) {
                            "not.a.token".to_owned()
                        } else {
                            token("mcp:read mcp:tools", true)
                        };
                        let status = modern_call(&http, &base, &bad).await;
                        tally.record("invalid token", &status, status == "401");
                    }
                    4 => {
                        let status = modern_call(&http, &base, &token("mcp:read", false)).await;
                        tally.record("refused scope", &status, status == "403");
                    }
                    _ => {
                        let status = abandoned_stream(&http, &base, &valid).await;
                        tally.record("abandoned listen stream", &status, status == "200");
                    }
                }
            }
        }));
    }

    // The schedule: rotate at 20% and 60% of the run (publish old + new, switch, then drop the
    // old), and take the issuer down for 20 s at 35%.
    let total = options.duration;
    let started = Instant::now();
    let at = |fraction: f64| started + total.mul_f64(fraction);
    let mut middle_rss = 0;
    let mut events = Vec::new();
    for (when, step) in [(0.20, "rotate"), (0.35, "down"), (0.50, "middle"), (0.60, "rotate")] {
        tokio::time::sleep_until(at(when).into()).await;
        match step {
            "rotate" => {
                let next = current.load(Ordering::Relaxed) + 1;
                issuer.keys.lock().unwrap().push(signers[next].public().jwk("RS256"));
                current.store(next, Ordering::Relaxed);
                events.push(format!("{:>4.0}s key rotated to key{}", started.elapsed().as_secs_f64(), next + 1));
                tokio::time::sleep(Duration::from_secs(10)).await;
                issuer.keys.lock().unwrap().remove(0);
                events.push(format!("{:>4.0}s old key withdrawn", started.elapsed().as_secs_f64()));
            }
            "down" => {
                issuer.down.store(true, Ordering::Relaxed);
                events.push(format!("{:>4.0}s issuer unreachable", started.elapsed().as_secs_f64()));
                tokio::time::sleep(Duration::from_secs(20)).await;
                issuer.down.store(false, Ordering::Relaxed);
                events.push(format!("{:>4.0}s issuer back", started.elapsed().as_secs_f64()));
            }
            _ => middle_rss = rss_kib(pid),
        }
    }
    for worker in workers {
        let _ = worker.await;
    }
    let end_rss = rss_kib(pid);
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&work);

    let counts = tally.counts.lock().unwrap();
    let total_requests: usize = counts.values().sum();
    println!("soak: {}s, {WORKERS} workers, {total_requests} requests", total.as_secs());
    for event in &events {
        println!("  {event}");
    }
    println!("| traffic | outcome | requests |\n|---|---|---:|");
    for ((kind, outcome), n) in counts.iter() {
        println!("| {kind} | {outcome} | {n} |");
    }
    let unexpected = tally.unexpected.load(Ordering::Relaxed);
    println!("unexpected outcomes: {unexpected}");
    println!(
        "server RSS: start {} MiB, middle {} MiB, end {} MiB",
        start_rss / 1024,
        middle_rss / 1024,
        end_rss / 1024
    );
    if unexpected == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

trait JsonResponse {
    fn into_response_json(self, body: Value) -> axum::response::Response;
}

impl JsonResponse for axum::http::StatusCode {
    fn into_response_json(self, body: Value) -> axum::response::Response {
        use axum::response::IntoResponse;
        (self, axum::Json(body)).into_response()
    }
}

fn status_of(result: Result<reqwest::Response, reqwest::Error>) -> (String, Option<reqwest::Response>) {
    match result {
        Ok(response) => (response.status().as_u16().to_string(), Some(response)),
        Err(err) => (format!("transport error ({})", if err.is_timeout() { "timeout" } else { "connection" }), None),
    }
}

fn meta() -> Value {
    json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} })
}

async fn modern_call(http: &reqwest::Client, base: &str, token: &str) -> String {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "echo", "arguments": { "message": "soak" }, "_meta": meta() } });
    let result = http
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .timeout(Duration::from_secs(10))
        .json(&body)
        .send()
        .await;
    status_of(result).0
}

async fn legacy_call(http: &reqwest::Client, base: &str, token: &str, session: &mut Option<String>) -> String {
    if session.is_none() {
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "soak", "version": "1" } } });
        let (status, response) = status_of(
            http.post(format!("{base}/mcp"))
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .json(&init)
                .send()
                .await,
        );
        match response.and_then(|r| r.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned))
        {
            Some(id) => *session = Some(id),
            None => return format!("initialize {status}"),
        }
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "echo", "arguments": { "message": "soak" } } });
    let (status, _) = status_of(
        http.post(format!("{base}/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session.as_deref().unwrap_or_default())
            .header("mcp-protocol-version", "2025-11-25")
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await,
    );
    status
}

async fn abandoned_stream(http: &reqwest::Client, base: &str, token: &str) -> String {
    let body = json!({ "jsonrpc": "2.0", "id": "listen", "method": "subscriptions/listen",
        "params": { "notifications": { "toolsListChanged": true }, "_meta": meta() } });
    let (status, response) = status_of(
        http.post(format!("{base}/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "subscriptions/listen")
            .json(&body)
            .send()
            .await,
    );
    if let Some(mut response) = response {
        // Read the acknowledgement, then walk away.
        let _ = tokio::time::timeout(Duration::from_secs(2), response.chunk()).await;
    }
    status
}
