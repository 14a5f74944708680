//! Abuse resistance (issue 26): each test reproduces one attack of the security review, with
//! every feature on, and checks that the next legitimate user is still served. The floods are
//! small versions of the review's (the limits are configured low), so the suite stays fast.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::binary::Server;
use common::issuer::{self as is, Pkce, authorize_uri, text};
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tower::ServiceExt;

// ---------------------------------------------------------------- Host and DNS rebinding

/// Item 16: the port of `Host` was split off at the last colon, so a name could ride in it; and a
/// request without `Host` was served.
#[tokio::test]
async fn a_host_with_a_name_in_its_port_or_no_host_at_all_is_refused() {
    let server = Server::start("");
    let smuggled =
        server.raw(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:3000.evil.example\r\nConnection: close\r\n\r\n").await;
    assert!(smuggled.starts_with("HTTP/1.1 403"), "{smuggled}");
    let mcp = server
        .raw(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:3000.evil.example\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        .await;
    assert!(mcp.starts_with("HTTP/1.1 403"), "{mcp}");
    let hostless = server.raw(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(hostless.starts_with("HTTP/1.1 400"), "{hostless}");
    let fine = server.raw(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
}

/// Item 11: the whole sign-in worked with `Host: evil.example`, so a DNS-rebinding page could
/// drive the sign-in of a server on the victim's machine (and lock its user out by guessing).
#[tokio::test]
async fn the_authorization_server_refuses_a_foreign_host_on_every_route() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let authorize = authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &pkce, &[]);
    let foreign = |method: &str, uri: &str| {
        Request::builder().method(method).uri(uri).header("host", "evil.example").body(Body::empty()).unwrap()
    };
    for (method, uri) in [
        ("GET", authorize.as_str()),
        ("POST", "/authorize/login"),
        ("POST", "/authorize/consent"),
        ("GET", "/authorize/consent?request=x"),
        ("POST", "/token"),
        ("POST", "/register"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/health"),
    ] {
        let reply = send_as_is(&app, foreign(method, uri)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    // The same sign-in page with the server's own host.
    let reply = send_as_is(&app, Request::get(authorize.as_str()).body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
}

// ---------------------------------------------------------------- connections and bodies

/// A body that sends its first byte and then nothing, ever.
fn trickled_body() -> Body {
    let first = futures_util::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"g")) });
    Body::from_stream(futures_util::StreamExt::chain(first, futures_util::stream::pending()))
}

/// Item 4: `/token`, `/register` and `/authorize/login` had no body deadline, so connections
/// trickling bodies in were held for as long as their clients liked.
#[tokio::test(start_paused = true)]
async fn a_body_trickled_into_the_authorization_server_is_cut_off_at_the_body_deadline() {
    let app = is::app("[server]\nbody_read_timeout_secs = 5").await;
    for (uri, content_type) in [
        ("/token", "application/x-www-form-urlencoded"),
        ("/register", "application/json"),
        ("/authorize/login", "application/x-www-form-urlencoded"),
    ] {
        let request = Request::post(uri)
            .header("host", "127.0.0.1:3000")
            .header("content-type", content_type)
            .header("content-length", "1000")
            .body(trickled_body())
            .unwrap();
        let started = tokio::time::Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(60), app.clone().oneshot(request)).await;
        let response = response.unwrap_or_else(|_| panic!("{uri}: still reading the body a minute later")).unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "{uri}");
        assert_eq!(started.elapsed(), Duration::from_secs(5), "{uri}: cut off at the deadline");
    }
}

/// A connection from `source` (a loopback address) to `server`.
async fn connect_from(source: [u8; 4], server: &Server) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(SocketAddr::from(([127, 0, 0, 1], server.port))).await.unwrap()
}

/// Reads what the server sends until it closes the connection or 5 s pass.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Items 4 and 6: 4,200 connections each trickling a body in held every connection the server
/// would accept, and `/health` timed out for everyone. Now one address holds at most its share.
#[tokio::test]
async fn one_address_holding_its_share_of_connections_does_not_keep_others_out() {
    let server = Server::start("[server]\nmax_connections = 32\nmax_connections_per_address = 8");
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = connect_from([127, 0, 0, 1], &server).await;
        stream
            .write_all(b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ng")
            .await
            .unwrap();
        held.push(stream);
    }
    // The ninth from the same address is told to come back later, at once.
    let mut ninth = connect_from([127, 0, 0, 1], &server).await;
    let _ = ninth.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    let refused = read_all(&mut ninth).await;
    assert!(refused.starts_with("HTTP/1.1 503") && refused.to_lowercase().contains("retry-after: 1"), "{refused:?}");
    // Another client is served meanwhile.
    let mut other = connect_from([127, 0, 0, 2], &server).await;
    other.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_all(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // When the first address lets go, it is served again.
    drop(held);
    let mut again = None;
    for _ in 0..50 {
        let mut stream = connect_from([127, 0, 0, 1], &server).await;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
        let answer = read_all(&mut stream).await;
        if answer.starts_with("HTTP/1.1 200") {
            again = Some(answer);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(again.is_some(), "the address is served once its connections are closed");
}

// ---------------------------------------------------------------- rate limits

/// Item 7: a 2025-03-26 batch of 100 `tools/call` was charged as one request, so 30 batches ran
/// 3,000 calls while single calls got 429 after ~210. Every message of a batch counts.
#[tokio::test]
async fn a_batch_pays_the_rate_limit_for_each_of_its_messages() {
    let settings = test_settings_with("[limits]\nper_caller_per_sec = 1\nper_caller_burst = 10\n");
    let app = app_with(&settings).await;
    let session = initialize(&app, "2025-03-26").await;
    let batch = |calls: usize| {
        let messages: Vec<_> = (0..calls)
            .map(|i| call(i as i64 + 10, "tools/call", json!({ "name": "echo", "arguments": { "message": "x" } })))
            .collect();
        legacy(&session, "2025-03-26", json!(messages))
    };
    // initialize took one of the ten; a batch of twenty does not fit.
    let refused = send(&app, batch(20)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", String::from_utf8_lossy(&refused.body));
    assert!(refused.header("retry-after").is_some());
    // Five fit, and the next five do not: four are left.
    let answered = send(&app, batch(5)).await;
    assert_eq!(answered.status, StatusCode::OK);
    assert_eq!(answered.json().as_array().map(Vec::len), Some(5));
    assert_eq!(send(&app, batch(5)).await.status, StatusCode::TOO_MANY_REQUESTS);
}

// ---------------------------------------------------------------- client ID metadata documents

/// A client ID metadata document server on loopback that counts fetches and holds each answer
/// until the test lets it go.
#[derive(Clone)]
struct Documents {
    base: String,
    fetches: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Semaphore>,
}

impl Documents {
    async fn start() -> Documents {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let documents = Documents {
            base: format!("http://{}", listener.local_addr().unwrap()),
            fetches: Arc::default(),
            in_flight: Arc::default(),
            release: Arc::new(tokio::sync::Semaphore::new(0)),
        };
        let app = Router::new().route("/{name}", axum::routing::get(serve_document)).with_state(documents.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        documents
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Lets every held and future answer go.
    fn open(&self) {
        self.release.add_permits(1_000);
    }
}

async fn serve_document(
    axum::extract::State(documents): axum::extract::State<Documents>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    documents.fetches.fetch_add(1, Ordering::SeqCst);
    documents.in_flight.fetch_add(1, Ordering::SeqCst);
    documents.release.acquire().await.unwrap().forget();
    documents.in_flight.fetch_sub(1, Ordering::SeqCst);
    if name.starts_with("missing") {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(json!({
        "client_id": documents.url(&name),
        "client_name": "Documented",
        "redirect_uris": ["http://127.0.0.1/callback"],
    }))
    .into_response()
}

/// Polls `condition` until it holds (at most 10 s): the server's and the document server's
/// tasks make progress over real sockets meanwhile.
async fn until(mut condition: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    polled.await.expect("the condition held within 10 s");
}

/// Item 9: 30 authorization requests naming one client ID URL made 30 fetches, and 60 or more
/// fetches ran at once, all triggered without signing in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents_are_fetched_once_per_url_failures_are_remembered_and_fetches_are_bounded() {
    let documents = Documents::start().await;
    let app = is::app("[issuer]\nallow_loopback_http_client_ids = true").await;
    let pkce = Pkce::new();
    let authorize = |client_id: &str| authorize_uri(client_id, "http://127.0.0.1:5/callback", &pkce, &[]);
    let spawn_get = |uri: String| {
        let app = app.clone();
        tokio::spawn(async move { send_as_is(&app, Request::get(uri).body(Body::empty()).unwrap()).await })
    };

    // Thirty requests for one URL at once: one fetch, and every request gets its answer.
    let url = documents.url("one.json");
    let requests: Vec<_> = (0..30).map(|_| spawn_get(authorize(&url))).collect();
    until(|| documents.in_flight.load(Ordering::SeqCst) == 1).await;
    documents.open();
    for request in requests {
        assert_eq!(request.await.unwrap().status, StatusCode::OK);
    }
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 1, "one fetch for thirty requests");

    // A document that cannot be had is asked for once, not again and again.
    let missing = documents.url("missing.json");
    for _ in 0..5 {
        let reply = send_as_is(&app, Request::get(authorize(&missing)).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(documents.fetches.load(Ordering::SeqCst), 2, "the failure is remembered");

    // Twenty URLs at once: eight fetches run, the other twelve requests are told at once to try
    // again shortly (they do not queue behind the fetches).
    let documents = Documents::start().await;
    let requests: Vec<_> = (0..20).map(|i| spawn_get(authorize(&documents.url(&format!("many-{i}.json"))))).collect();
    until(|| {
        documents.in_flight.load(Ordering::SeqCst) == 8 && requests.iter().filter(|r| r.is_finished()).count() == 12
    })
    .await;
    documents.open();
    let mut busy = 0;
    for request in requests {
        let reply = request.await.unwrap();
        busy += usize::from(text(&reply).contains("try again shortly"));
    }
    assert_eq!((documents.fetches.load(Ordering::SeqCst), busy), (8, 12));
}

// ---------------------------------------------------------------- OAuth weak spots

/// Registers a client with `redirect_uris` at `/register`.
async fn register(app: &Router, redirect_uris: &[&str]) -> Reply {
    let body = json!({ "client_name": "x", "redirect_uris": redirect_uris, "token_endpoint_auth_method": "none" });
    let request =
        Request::post("/register").header("content-type", "application/json").body(Body::from(body.to_string()));
    send_as_is(app, request.unwrap()).await
}

/// Item 14: `ms-msdt:`, `chrome://`, `view-source:`, `jar:` and `ftp://` were accepted as
/// redirect URIs, and the consent page called `ftp://evil.example/cb` "a program on this
/// computer". Only https, loopback http and reverse-domain private-use schemes are accepted.
#[tokio::test]
async fn only_https_loopback_http_and_reverse_domain_schemes_can_be_registered() {
    let app = is::app("").await;
    for scheme_that_runs_things in [
        "ms-msdt:/id PCWDiagnostic /skip force",
        "chrome://settings/reset",
        "view-source:https://app.example/",
        "jar:https://app.example/a.jar!/x",
        "ftp://evil.example/cb",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
    ] {
        let reply = register(&app, &[scheme_that_runs_things]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{scheme_that_runs_things}");
        assert_eq!(reply.json()["error"], "invalid_redirect_uri", "{scheme_that_runs_things}");
    }
    for fine in ["https://app.example/cb", "http://127.0.0.1:7/cb", "com.example.app:/oauth"] {
        assert_eq!(register(&app, &[fine]).await.status, StatusCode::CREATED, "{fine}");
    }
    // A one-word scheme the operator vouches for.
    let app = is::app("[issuer]\nredirect_schemes = [\"cursor\"]").await;
    let cursor = register(&app, &["cursor://anysphere.cursor-retrieval/oauth/callback"]).await;
    assert_eq!(cursor.status, StatusCode::CREATED);
}
