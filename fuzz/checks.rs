//! What each fuzz target checks, as plain functions over bytes: the fuzz targets call them with
//! libFuzzer's inputs, and `tests/fuzz_corpus.rs` replays the committed corpus through them on
//! every `cargo test`, so a found crash stays fixed without the fuzzing toolchain.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Uri};
use mcp_auth_server::guard::{self, AllowList};
use mcp_auth_server::jwt::layer::bearer_token;
use mcp_auth_server::jwt::{Jwt, Verifier};
use mcp_auth_server::mcp::headers::{HeaderParam, check_routing_headers, decode_sentinel};
use mcp_auth_server::mcp::session::StreamLog;
use mcp_auth_server::mcp::state::{StateSealer, binding};
use mcp_auth_server::serve::Shutdown;
use mcp_auth_server::{Settings, mcp, tools};
use serde_json::json;
use tower::ServiceExt;
use tower_http::validate_request::ValidateRequestHeaderLayer;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

/// The `/mcp` endpoint with the built-in tools, composed from the public API without the
/// authentication layer, so every input reaches the protocol layer.
fn endpoint() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        let _enter = runtime().enter();
        let settings = Settings::from_toml("").unwrap();
        let config = mcp::McpConfig::from_settings(&settings);
        let features = tools::builtin().into_features(&settings);
        let store = Arc::new(mcp_auth_server::store::MemoryStore::new());
        let endpoint = mcp::Endpoint::new(&settings, config, Some(features), Shutdown::default(), store);
        let endpoint = runtime().block_on(endpoint).unwrap();
        let allow = Arc::new(AllowList::from_settings(&settings));
        let guards = tower::ServiceBuilder::new()
            .layer(ValidateRequestHeaderLayer::custom(guard::HostCheck(allow.clone())))
            .layer(ValidateRequestHeaderLayer::custom(guard::OriginCheck(allow)));
        endpoint.router(guards)
    })
}

/// Any POST body, under the header sets each era uses, through the whole `/mcp` stack (parse,
/// era classification, envelope, routing headers, sessions, dispatch): always an answer below
/// 500.
pub fn mcp_post(data: &[u8]) {
    let Some((&profile, body)) = data.split_first() else { return };
    let mut request = Request::post("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    request = match profile % 6 {
        0 => request,
        1 => request
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo"),
        2 => request.header("mcp-protocol-version", "2025-11-25").header("mcp-session-id", "none"),
        3 => request.header("mcp-protocol-version", "2025-03-26"),
        4 => request.header("mcp-protocol-version", "v999"),
        _ => request.header("mcp-protocol-version", "2026-07-28").header("mcp-method", "server/discover"),
    };
    let request = request.body(Body::from(body.to_vec())).unwrap();
    let response = runtime().block_on(endpoint().clone().oneshot(request)).unwrap();
    assert!(response.status().as_u16() < 500, "{} for {:?}", response.status(), String::from_utf8_lossy(body));
}

/// A key pair in `dir` (the server itself only generates keys at its development defaults).
fn generate_keys(dir: &std::path::Path) {
    mcp_auth_server::jwt::keyfile::load_or_generate(&dir.join("private.pem"), &[dir.join("public.pem")]).unwrap();
}

/// A verifier over a key pair generated once in a temporary directory.
fn verifier() -> &'static Arc<Verifier> {
    static VERIFIER: OnceLock<Arc<Verifier>> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mcp-auth-fuzz-keys-{}", std::process::id()));
        generate_keys(&dir);
        let settings = Settings::from_toml(&format!(
            "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}]",
            dir.join("private.pem").display().to_string(),
            dir.join("public.pem").display().to_string()
        ))
        .unwrap();
        let jwt = runtime().block_on(Jwt::from_settings(&settings, None)).unwrap();
        jwt.verifier().clone()
    })
}

/// Everything the `jwt` layer reads before a signature is checked: the `Authorization` header,
/// then the token's header and claims. Random input is refused and never panics.
pub fn jwt_token(data: &[u8]) {
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", value);
        let _ = bearer_token(&headers, &Uri::from_static("/mcp"), 8192);
    }
    let token = String::from_utf8_lossy(data);
    let verdict = runtime().block_on(verifier().verify(&token));
    assert!(verdict.is_err(), "a random token was accepted: {token:?}");
}

/// The 2026-07-28 routing-header checks (`Mcp-Method`, `Mcp-Name` with the Base64 sentinel,
/// `Mcp-Param-*`): never a panic, and a value that decodes matches its decoding.
pub fn mcp_name(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let decoded = decode_sentinel(&text);
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert("mcp-method", HeaderValue::from_static("tools/call"));
    headers.insert("mcp-name", value.clone());
    headers.insert("mcp-param-region", value);
    let name = decoded.clone().unwrap_or_default();
    let params = json!({ "name": name, "arguments": { "region": name } });
    let param = [HeaderParam::new("Region", vec!["region".into()])];
    let verdict = check_routing_headers(&headers, "tools/call", params.as_object().unwrap(), &param);
    // Surrounding whitespace is trimmed before decoding, so only values without it must match.
    if decoded.is_some() && text.trim_matches([' ', '\t']) == text && std::str::from_utf8(data).is_ok() {
        assert!(verdict.is_ok(), "{text:?} decodes but does not match its decoding: {verdict:?}");
    }
}

/// The `requestState` decoder: nothing a client forges opens, and whatever a handler puts in
/// round-trips exactly.
pub fn request_state(data: &[u8]) {
    let sealer = StateSealer::new(b"fuzzing-key".to_vec(), Duration::from_secs(60));
    let params = json!({ "name": "tool", "arguments": { "a": 1 } });
    let params = params.as_object().unwrap();
    let bind = binding("tools/call", params, None);
    let forged = String::from_utf8_lossy(data);
    assert!(sealer.open(&bind, &forged).is_err(), "a forged state opened: {forged:?}");
    let sealed = sealer.seal(&bind, Some(forged.to_string()));
    let opened = sealer.open(&bind, &sealed).expect("our own state opens");
    assert_eq!(opened.inner.as_deref(), Some(&*forged));
}

/// The whole application with every feature, the embedded authorization server included,
/// with the dev profile's users and clients and keys in a temporary directory.
fn full_app() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        let dev = ["config/dev.toml", "../config/dev.toml"]
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .expect("config/dev.toml");
        let dir = std::env::temp_dir().join(format!("mcp-auth-fuzz-issuer-{}", std::process::id()));
        generate_keys(&dir);
        let keys = format!(
            "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}]\n[limits]\nper_address_per_sec = 0\nper_caller_per_sec = 0\n",
            dir.join("private.pem").display().to_string(),
            dir.join("public.pem").display().to_string()
        );
        let settings = Settings::from_toml_layers(&[&dev, &keys]).unwrap();
        runtime().block_on(mcp_auth_server::app(&settings)).unwrap()
    })
}

/// The authorization server's forms and queries: `/token`, `/register`, `/authorize` and its
/// sign-in and consent forms, with any body or query. Always an answer below 500.
pub fn issuer_http(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let base = Request::builder().header("host", "127.0.0.1:3000");
    let form = "application/x-www-form-urlencoded";
    let request = match which % 5 {
        0 => base.method("POST").uri("/token").header("content-type", form).body(Body::from(rest.to_vec())),
        1 => base
            .method("POST")
            .uri("/register")
            .header("content-type", "application/json")
            .body(Body::from(rest.to_vec())),
        2 => {
            let query: String = text.chars().filter(|c| c.is_ascii_graphic()).collect();
            match format!("/authorize?{query}").parse::<Uri>() {
                Ok(uri) => base.method("GET").uri(uri).body(Body::empty()),
                Err(_) => return,
            }
        }
        3 => base.method("POST").uri("/authorize/login").header("content-type", form).body(Body::from(rest.to_vec())),
        _ => base.method("POST").uri("/authorize/consent").header("content-type", form).body(Body::from(rest.to_vec())),
    };
    let response = runtime().block_on(full_app().clone().oneshot(request.unwrap())).unwrap();
    // The only 5xx allowed is 503 from a full store: the fuzzer registers clients and starts
    // sign-ins by the million, and the bounded stores refusing more is the design working.
    let status = response.status();
    assert!(status.as_u16() < 500 || status == 503, "{status} for {which}: {text:?}");
    // Whatever was asked, a redirect never leaves for a URI nobody registered.
    if let Some(location) = response.headers().get("location").and_then(|v| v.to_str().ok()) {
        assert!(
            location.starts_with('/')
                || location.starts_with("http://127.0.0.1:3000")
                || location.contains("code=")
                || location.contains("error="),
            "redirected to {location}"
        );
    }
}

/// Redirect-URI rules and HTML escaping: no scheme that runs code is ever accepted, a URI
/// matches itself, and text shown on a page carries no markup.
pub fn redirect_uri(data: &[u8]) {
    use mcp_auth_server::issuer::clients::{check_redirect_uri, redirect_matches};
    use mcp_auth_server::issuer::pages;
    let text = String::from_utf8_lossy(data);
    if check_redirect_uri(&text, &[]).is_ok() {
        let scheme = url::Url::parse(&text).unwrap().scheme().to_owned();
        assert!(matches!(scheme.as_str(), "http" | "https") || scheme.contains('.'), "{text:?}");
        assert!(redirect_matches(&text, &text));
    }
    let page = pages::error("Title", &text);
    let start = page.find("<p role=\"alert\">").expect("the message paragraph") + "<p role=\"alert\">".len();
    let escaped = &page[start..start + page[start..].find("</p>").expect("the paragraph ends")];
    assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped:?}");
}

/// `Last-Event-ID` parsing: what parses names a stream and a position, and prints back to
/// itself.
pub fn last_event_id(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some((stream, seq)) = StreamLog::parse_event_id(&text) {
        assert_eq!(StreamLog::parse_event_id(&format!("{stream}-{seq}")), Some((stream.clone(), seq)));
        assert!(stream.bytes().all(|b| b.is_ascii_alphanumeric()), "{stream:?}");
    }
}
