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

// ---------------------------------------------------------------- sign-in

/// A sign-in page for the test client, and the browser that opened it.
async fn sign_in_page(app: &Router) -> (is::Browser, Reply) {
    let mut browser = is::Browser::new(app);
    let page = browser.get(&authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &Pkce::new(), &[])).await;
    assert_eq!(page.status, StatusCode::OK);
    (browser, page)
}

/// Item 1: 40 and 100 concurrent wrong passwords for one user were all checked (401 × 100), as
/// the limit was checked before and counted after the password check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_counted_before_they_are_checked_so_no_more_than_the_limit_run() {
    let app = is::app("[issuer]\nlogin_max_attempts = 5\nlogin_max_attempts_per_address = 1000").await;
    let (browser, page) = sign_in_page(&app).await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let mut browser = is::Browser { transport: browser.transport.clone(), cookies: browser.cookies.clone() };
            let page = Reply { status: page.status, headers: page.headers.clone(), body: page.body.clone() };
            tokio::spawn(async move { browser.sign_in(&page, "bob", &format!("wrong-{i}")).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (5, 35), "{statuses:?}");
}

/// Item 12: the lockout was keyed on (address, username): alice's right password from the
/// guessing address waited 300 s, another address had 5 fresh guesses, and behind a proxy anyone
/// locked out anyone. Now the account is locked for browsers that never signed in to it, longer
/// each time, and a browser that signed in to it before is not locked out.
#[tokio::test]
async fn guessing_locks_an_account_for_unknown_browsers_only_and_longer_each_time() {
    let offset = Arc::new(AtomicUsize::new(0));
    let clock: mcp_auth_server::store::Clock = {
        let (offset, system) = (offset.clone(), mcp_auth_server::store::system_clock());
        Arc::new(move || system() + offset.load(Ordering::SeqCst) as u64)
    };
    let settings =
        is::settings("[issuer]\nlogin_max_attempts = 3\nlogin_window_secs = 60\nlogin_max_lockout_secs = 600");
    let app = mcp_auth_server::AppBuilder::new(settings)
        .store(Arc::new(mcp_auth_server::store::MemoryStore::with_clock(clock)))
        .build()
        .await
        .unwrap();
    // Alice's own browser has signed in before.
    let (mut alices, page) = sign_in_page(&app).await;
    assert_eq!(alices.sign_in(&page, "alice", is::ALICE_PASSWORD).await.status, StatusCode::SEE_OTHER);

    // A guesser uses up the account's attempts for unknown browsers.
    let (mut guesser, page) = sign_in_page(&app).await;
    for i in 0..3 {
        assert_eq!(guesser.sign_in(&page, "alice", &format!("guess-{i}")).await.status, StatusCode::UNAUTHORIZED);
    }
    let locked = guesser.sign_in(&page, "alice", "guess-3").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.header("retry-after"), Some("60"), "locked for a window the first time");
    // Another unknown browser gets no fresh guesses: the lock is the account's, not the address's.
    let (mut stranger, page) = sign_in_page(&app).await;
    assert_eq!(stranger.sign_in(&page, "alice", is::ALICE_PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Alice's browser is not locked out, and other accounts are untouched.
    let page = alices.get(&authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &Pkce::new(), &[])).await;
    let page = if page.status == StatusCode::OK && text(&page).contains("name=\"password\"") {
        page
    } else {
        // Already signed in: the consent page; sign in again from a fresh request of the same browser.
        alices.cookies.remove("mcp_as_session");
        alices.get(&authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &Pkce::new(), &[])).await
    };
    assert_eq!(alices.sign_in(&page, "alice", is::ALICE_PASSWORD).await.status, StatusCode::SEE_OTHER);
    let (mut bobs, page) = sign_in_page(&app).await;
    assert_eq!(bobs.sign_in(&page, "bob", is::BOB_PASSWORD).await.status, StatusCode::SEE_OTHER);

    // A minute later the lock is over; locked again the same day, it lasts twice as long.
    offset.store(61_000, Ordering::SeqCst);
    let (mut guesser, page) = sign_in_page(&app).await;
    for i in 0..3 {
        assert_eq!(guesser.sign_in(&page, "alice", &format!("again-{i}")).await.status, StatusCode::UNAUTHORIZED);
    }
    let relocked = guesser.sign_in(&page, "alice", "again-3").await;
    assert_eq!(relocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(relocked.header("retry-after"), Some("120"), "twice as long the second time");
}

// ---------------------------------------------------------------- authorization requests

/// `GET uri` from client address `address`, as the connection loop records it.
fn from_address(uri: &str, address: [u8; 4]) -> Request<Body> {
    let mut request = Request::get(uri).body(Body::empty()).unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::from((address, 40000))));
    request
}

/// Item 2: 10,400 unauthenticated `GET /authorize` filled the global table of pending requests
/// (10,000): every later sign-in got 503 for 10 minutes. Now one address is rate-limited and keeps
/// a few pending requests of its own, so its flood denies no one else.
#[tokio::test]
async fn a_flood_of_authorization_requests_from_one_address_denies_no_other() {
    let app = is::app("[issuer]\nauthorize_per_address_per_minute = 60\nmax_pending_per_address = 4").await;
    let pkce = Pkce::new();
    let uri = authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &pkce, &[]);
    // Someone else's sign-in, started before the flood.
    let victim = send_as_is(&app, from_address(&uri, [192, 0, 2, 7])).await;
    assert_eq!(victim.status, StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..100 {
        statuses.push(send_as_is(&app, from_address(&uri, [198, 51, 100, 9])).await.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 60, "then 429");
    let refused = send_as_is(&app, from_address(&uri, [198, 51, 100, 9])).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.header("retry-after").is_some());
    // Another address is served, and the victim's pending request is still there.
    assert_eq!(send_as_is(&app, from_address(&uri, [203, 0, 113, 5])).await.status, StatusCode::OK);
    let request = is::hidden(&text(&victim), "request").unwrap();
    let cookie = victim.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let form = Request::post("/authorize/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(Body::from(is::form(&[
            ("request", &request),
            ("csrf", &is::hidden(&text(&victim), "csrf").unwrap()),
            ("username", "bob"),
            ("password", is::BOB_PASSWORD),
        ])))
        .unwrap();
    assert_eq!(send_as_is(&app, form).await.status, StatusCode::SEE_OTHER, "the victim signs in");
}

// ---------------------------------------------------------------- registration

/// Item 3: 999 maximal registrations (20 redirect URIs of 1.9 KB, a 200-character name) filled
/// the client table for good, and /register answered 503 to everyone until a restart.
#[tokio::test]
async fn registrations_are_small_rate_limited_per_address_and_never_fill_the_server_for_good() {
    let app = is::app("[issuer]\nregistrations_per_address_per_hour = 3\nmax_registered_clients = 2").await;
    let post = |body: serde_json::Value, address: [u8; 4]| {
        let mut request = Request::post("/register")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::from((address, 40000))));
        request
    };
    let client = |uris: Vec<String>, name: &str| json!({ "client_name": name, "redirect_uris": uris, "token_endpoint_auth_method": "none" });
    let long_uri = format!("https://app.example/{}", "x".repeat(600));
    let many: Vec<String> = (0..9).map(|i| format!("https://app.example/{i}")).collect();
    for (metadata, what) in [
        (client(vec![long_uri], "n"), "a 600-byte redirect URI"),
        (client(many, "n"), "nine redirect URIs"),
        (client(vec!["https://app.example/cb".into()], &"n".repeat(101)), "a 101-character name"),
    ] {
        let reply = send_as_is(&app, post(metadata, [198, 51, 100, 1])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
    }
    // Those three counted: the address has used its hour.
    let fine = client(vec!["https://app.example/cb".into()], "fine");
    let limited = send_as_is(&app, post(fine.clone(), [198, 51, 100, 1])).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("retry-after").is_some());
    // Other addresses register, beyond the number kept: the oldest unused make room, no 503.
    for address in 2..=6 {
        assert_eq!(send_as_is(&app, post(fine.clone(), [198, 51, 100, address])).await.status, StatusCode::CREATED);
    }
}

// ---------------------------------------------------------------- the token endpoint

/// Item 8: no limit on client-secret attempts, and an unbounded queue in front of the Argon2
/// workers: 64 concurrent wrong secrets moved a legitimate token request from 0.06 s to 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_guesses_are_limited_and_the_hashing_queue_is_bounded() {
    let app = is::app("[issuer]\nclient_secret_max_attempts = 5").await;
    let guess = |secret: String| {
        let app = app.clone();
        tokio::spawn(async move {
            let fields = [("grant_type", "client_credentials"), ("resource", is::RESOURCE)];
            is::token_request(&app, &fields, Some(("test-service", &secret))).await
        })
    };
    let mut replies = Vec::new();
    for attempt in (0..30).map(|i| guess(format!("wrong-{i}"))) {
        replies.push(attempt.await.unwrap());
    }
    let checked = replies.iter().filter(|r| r.status == StatusCode::UNAUTHORIZED).count();
    let limited: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!((checked, limited.len()), (5, 25));
    assert!(limited.iter().all(|r| r.header("retry-after").is_some() && r.json()["error"] == "invalid_client"));

    // A queue of 2: of many checks at once, some are told at once to come back.
    let app = is::app("[issuer]\nmax_hash_queue = 2\nclient_secret_max_attempts = 1000").await;
    let checks: Vec<_> = (0..12)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let fields = [("grant_type", "client_credentials"), ("resource", is::RESOURCE)];
                is::token_request(&app, &fields, Some(("test-service", &format!("wrong-{i}")))).await
            })
        })
        .collect();
    let mut busy = 0;
    for check in checks {
        let reply = check.await.unwrap();
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.json()["error"], "temporarily_unavailable");
            assert!(reply.header("retry-after").is_some());
            busy += 1;
        } else {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
    }
    assert!(busy > 0, "beyond the queue, checks are refused instead of waiting");
}

/// Item 13: a refresh asking for a wider scope got invalid_scope, and the same valid token was
/// then treated as reused: the whole family was revoked.
#[tokio::test]
async fn a_refused_refresh_leaves_the_token_and_its_family_intact() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let uri = authorize_uri(is::CLIENT_ID, is::REDIRECT_URI, &pkce, &[("scope", "mcp:read")]);
    let callback = is::Browser::new(&app).authorize(&uri, "alice", is::ALICE_PASSWORD).await;
    let tokens = is::redeem(&app, is::CLIENT_ID, &callback, is::REDIRECT_URI, &pkce).await.json();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh_with = |extra: &'static [(&'static str, &'static str)], token: String| {
        let app = app.clone();
        async move {
            let mut fields =
                vec![("grant_type", "refresh_token"), ("client_id", is::CLIENT_ID), ("refresh_token", token.as_str())];
            fields.extend_from_slice(extra);
            is::token_request(&app, &fields, None).await
        }
    };
    let wider = refresh_with(&[("scope", "mcp:read mcp:tools")], refresh.clone()).await;
    assert_eq!(wider.json()["error"], "invalid_scope");
    let elsewhere = refresh_with(&[("resource", "https://other.example/mcp")], refresh.clone()).await;
    assert_eq!(elsewhere.json()["error"], "invalid_target");
    let rotated = refresh_with(&[], refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "the token still works: {}", text(&rotated));
    let next = rotated.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh_with(&[], next).await.status, StatusCode::OK, "and its family was not revoked");
}

// ---------------------------------------------------------------- the authorization endpoint

/// Item 10: a client registered by anyone with `https://evil.example/landing`, then
/// `GET /authorize` with `response_type=token`, `prompt=none`, no `code_challenge` or a bad
/// `resource`: an immediate 302 to evil.example, no person involved. Not any more, until a person
/// has consented to that client.
#[tokio::test]
async fn errors_of_a_client_nobody_consented_to_are_shown_not_redirected() {
    let app = is::app("").await;
    let evil = "https://evil.example/landing";
    let registered = register(&app, &[evil]).await.json();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    for (extra, what) in [
        (&[("response_type", "token")][..], "response_type=token"),
        (&[("prompt", "none")][..], "prompt=none"),
        (&[("code_challenge", "")][..], "no code_challenge"),
        (&[("resource", "https://other.example/mcp")][..], "a bad resource"),
    ] {
        let reply =
            send_as_is(&app, Request::get(authorize_uri(&client_id, evil, &pkce, extra)).body(Body::empty()).unwrap())
                .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
        assert!(reply.header("location").is_none(), "{what}: no redirect");
    }
    // Once a person has consented to the client, its errors go back to it, as OAuth says.
    is::Browser::new(&app).authorize(&authorize_uri(&client_id, evil, &pkce, &[]), "bob", is::BOB_PASSWORD).await;
    let reply = send_as_is(
        &app,
        Request::get(authorize_uri(&client_id, evil, &pkce, &[("prompt", "none")])).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert!(reply.header("location").unwrap().starts_with(evil));
}

// ---------------------------------------------------------------- Sessions and streams

const LEGACY: &str = "2025-11-25";

fn bearer(subject: &str) -> String {
    format!("Bearer {}", common::tokens::TokenBuilder::new().subject(subject).build())
}

fn as_caller(mut request: Request<Body>, bearer: &str) -> Request<Body> {
    request.headers_mut().insert("authorization", bearer.parse().unwrap());
    request
}

async fn initialize_as(app: &Router, bearer: &str) -> String {
    let body = call(
        0,
        "initialize",
        json!({ "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }),
    );
    let reply = send(app, as_caller(raw_post(body.to_string()), bearer)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    reply.header("mcp-session-id").expect("a session id").to_owned()
}

async fn ping_as(app: &Router, session: &str, bearer: &str) -> StatusCode {
    send(app, as_caller(legacy(session, LEGACY, call(1, "ping", json!({}))), bearer)).await.status
}

/// A GET stream of `session`: its standalone stream, or (with `resume`) a request stream resumed.
fn stream_request(session: &str, bearer: &str, resume: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", LEGACY)
        .header("authorization", bearer);
    if let Some(id) = resume {
        builder = builder.header("last-event-id", id);
    }
    builder.body(Body::empty()).unwrap()
}

/// Item 5: one guest token repeating `initialize` filled the session table for everyone.
#[tokio::test]
async fn a_caller_opening_session_after_session_closes_only_its_own_oldest() {
    let app = app_with(&test_settings_with("[mcp]\nmax_sessions_per_caller = 3")).await;
    let alice = bearer("alice");
    let hers = initialize_as(&app, &alice).await;
    let mallory = bearer("mallory");
    let mut opened = Vec::new();
    for _ in 0..10 {
        opened.push(initialize_as(&app, &mallory).await);
    }
    let mut statuses = Vec::new();
    for session in &opened {
        statuses.push(ping_as(&app, session, &mallory).await);
    }
    let mut expected = vec![StatusCode::NOT_FOUND; 7];
    expected.extend([StatusCode::OK; 3]);
    assert_eq!(statuses, expected, "the caller's seven oldest sessions made room for its newest");
    assert_eq!(ping_as(&app, &hers, &alice).await, StatusCode::OK, "another caller's session is untouched");
    let newcomer = bearer("carol");
    let theirs = initialize_as(&app, &newcomer).await;
    assert_eq!(ping_as(&app, &theirs, &newcomer).await, StatusCode::OK, "a new caller is served");
}

/// Item 6: one token held thousands of GET streams, and `/health` stopped answering.
#[tokio::test]
async fn streams_are_capped_per_session_and_per_caller_and_others_still_get_theirs() {
    let app = app_with(&test_settings_with("[mcp]\nmax_streams_per_session = 2\nmax_streams_per_caller = 3")).await;
    let mallory = bearer("mallory");
    let first = initialize_as(&app, &mallory).await;
    let standalone = open(&app, stream_request(&first, &mallory, None)).await;
    let resumed = open(&app, stream_request(&first, &mallory, Some("abc-0"))).await;
    assert_eq!((standalone.status(), resumed.status()), (StatusCode::OK, StatusCode::OK));
    let refused = send_as_is(&app, stream_request(&first, &mallory, Some("def-0"))).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "a third stream of one session");
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert!(text(&refused).contains("max_streams_per_session"), "{}", text(&refused));

    // Another session of the same caller: one more stream, then the caller's cap.
    let second = initialize_as(&app, &mallory).await;
    let third = open(&app, stream_request(&second, &mallory, None)).await;
    assert_eq!(third.status(), StatusCode::OK);
    let refused = send_as_is(&app, stream_request(&second, &mallory, Some("abc-0"))).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "a fourth stream of one caller");
    // The modern era's streams count against the same cap.
    let listen = modern(2, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } }));
    let refused = send_as_is(&app, as_caller(listen, &mallory)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", text(&refused));

    // Everyone else is served meanwhile.
    let alice = bearer("alice");
    let hers = initialize_as(&app, &alice).await;
    assert_eq!(open(&app, stream_request(&hers, &alice, None)).await.status(), StatusCode::OK);
    assert_eq!(send(&app, Request::get("/health").body(Body::empty()).unwrap()).await.status, StatusCode::OK);

    // A stream closed gives its place back.
    drop(resumed);
    let again = open(&app, stream_request(&first, &mallory, Some("def-0"))).await;
    assert_eq!(again.status(), StatusCode::OK);
    drop((standalone, third, again));
}
