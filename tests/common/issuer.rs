//! Test helpers for the embedded authorization server (feature `issuer`): users and clients for
//! the test settings, PKCE pairs, and a [`Browser`] that keeps cookies and fills in forms, over
//! `oneshot` or over TCP.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Reply, send_as_is};

/// Passwords and secrets of the test accounts (hashed at run time, once per test binary).
pub const ALICE_PASSWORD: &str = "alice-test-password";
pub const BOB_PASSWORD: &str = "bob-test-password";
pub const GUEST_PASSWORD: &str = "guest-test-password";
pub const SERVICE_SECRET: &str = "service-test-secret";
/// The public client of the test configuration and its redirect URI.
pub const CLIENT_ID: &str = "test-client";
pub const REDIRECT_URI: &str = "http://127.0.0.1:4999/callback";
/// The resource of the default test settings.
pub const RESOURCE: &str = "http://127.0.0.1:3000/mcp";
pub const ISSUER: &str = "http://127.0.0.1:3000";

fn hashes() -> &'static [String; 4] {
    static HASHES: OnceLock<[String; 4]> = OnceLock::new();
    HASHES.get_or_init(|| {
        [ALICE_PASSWORD, BOB_PASSWORD, GUEST_PASSWORD, SERVICE_SECRET].map(mcp_auth_server::issuer::hash_password)
    })
}

/// The `[issuer]` users and clients of the tests: alice (admin), bob (user), guest (guest), the
/// public client `test-client` and the confidential `test-service` (role user, client_credentials).
pub fn accounts_layer() -> String {
    let [alice, bob, guest, service] = hashes();
    format!(
        r#"
[[issuer.users]]
username = "alice"
name = "Alice Liddell"
roles = ["admin"]
password_hash = "{alice}"

[[issuer.users]]
username = "bob"
name = "Bob"
roles = ["user"]
password_hash = "{bob}"

[[issuer.users]]
username = "guest"
roles = ["guest"]
password_hash = "{guest}"

[[issuer.clients]]
client_id = "{CLIENT_ID}"
name = "Test Client"
redirect_uris = ["{REDIRECT_URI}", "http://127.0.0.1/loopback"]

[[issuer.clients]]
client_id = "test-service"
name = "Test Service"
secret_hash = "{service}"
grant_types = ["client_credentials"]
roles = ["user"]
"#
    )
}

/// Test settings with the test accounts and `overrides` on top.
pub fn settings(overrides: &str) -> mcp_auth_server::Settings {
    super::test_settings_with(&format!("{}\n{overrides}", accounts_layer()))
}

/// The app with the test accounts.
pub async fn app(overrides: &str) -> Router {
    super::app_with(&settings(overrides)).await
}

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce { verifier, challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// Percent-encodes a query or form value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A form or query string from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

/// An authorization request URL (path and query) for `client_id`, with the usual parameters
/// plus `extra` (a parameter given an empty value in `extra` is left out).
pub fn authorize_uri(client_id: &str, redirect_uri: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", "test-state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
    ]);
    for (name, value) in extra {
        params.insert(name, value);
    }
    let pairs: Vec<(&str, &str)> = params.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    format!("/authorize?{}", form(&pairs))
}

/// The value of a hidden form field.
pub fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let url = url::Url::parse(url).expect("an absolute URL");
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Where requests go: through the router, or over TCP to a running server.
#[derive(Clone)]
pub enum Transport {
    Router(Router),
    Http(String),
}

/// A user agent that keeps cookies and does not follow redirects.
pub struct Browser {
    pub transport: Transport,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(app: &Router) -> Self {
        Browser { transport: Transport::Router(app.clone()), cookies: BTreeMap::new() }
    }

    pub fn over_http(base: &str) -> Self {
        Browser { transport: Transport::Http(base.to_owned()), cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty())
            .then(|| self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    fn remember(&mut self, reply: &Reply) {
        for value in reply.headers.get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let (pair, _) = value.split_once(';').unwrap_or((value, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }

    /// Sends a request (path and query) with this browser's cookies.
    pub async fn send(&mut self, method: &str, uri: &str, body: Option<String>) -> Reply {
        let reply = match &self.transport {
            Transport::Router(app) => {
                let mut builder = Request::builder().method(method).uri(uri).header("host", "127.0.0.1:3000");
                if let Some(cookies) = self.cookie_header() {
                    builder = builder.header("cookie", cookies);
                }
                if body.is_some() {
                    builder = builder.header("content-type", "application/x-www-form-urlencoded");
                }
                let request = builder.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
                send_as_is(app, request).await
            }
            Transport::Http(base) => {
                let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
                let mut request = client.request(method.parse().unwrap(), format!("{base}{uri}"));
                if let Some(cookies) = self.cookie_header() {
                    request = request.header("cookie", cookies);
                }
                if let Some(body) = body {
                    request = request.header("content-type", "application/x-www-form-urlencoded").body(body);
                }
                let response = request.send().await.unwrap();
                let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                let mut headers = axum::http::HeaderMap::new();
                for (name, value) in response.headers() {
                    headers.append(
                        axum::http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                        axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                    );
                }
                let body = response.bytes().await.unwrap().to_vec();
                Reply { status, headers, body }
            }
        };
        self.remember(&reply);
        reply
    }

    pub async fn get(&mut self, uri: &str) -> Reply {
        self.send("GET", uri, None).await
    }

    pub async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Reply {
        self.send("POST", uri, Some(form(fields))).await
    }

    /// Signs in on a sign-in page; returns the reply (303 to the consent page when it worked).
    pub async fn sign_in(&mut self, page: &Reply, username: &str, password: &str) -> Reply {
        let html = text(page);
        let request = hidden(&html, "request").expect("a sign-in form");
        let csrf = hidden(&html, "csrf").expect("a CSRF field");
        self.post(
            "/authorize/login",
            &[("request", &request), ("csrf", &csrf), ("username", username), ("password", password)],
        )
        .await
    }

    /// Answers a consent page; returns the reply (303 to the client).
    pub async fn decide(&mut self, page: &Reply, decision: &str) -> Reply {
        let html = text(page);
        let request = hidden(&html, "request").expect("a consent form");
        let csrf = hidden(&html, "csrf").expect("a CSRF field");
        self.post("/authorize/consent", &[("request", &request), ("csrf", &csrf), ("decision", decision)]).await
    }

    /// Opens `authorize_uri`, signs in, and returns the consent page.
    pub async fn consent_page(&mut self, authorize_uri: &str, username: &str, password: &str) -> Reply {
        let page = self.get(authorize_uri).await;
        assert_eq!(page.status, StatusCode::OK, "sign-in page: {}", text(&page));
        let signed_in = self.sign_in(&page, username, password).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "sign-in: {}", text(&signed_in));
        let location = signed_in.header("location").unwrap().to_owned();
        let page = self.get(&location).await;
        assert_eq!(page.status, StatusCode::OK, "consent page: {}", text(&page));
        page
    }

    /// Signs in, allows, and returns the callback URL the server redirected to.
    pub async fn authorize(&mut self, authorize_uri: &str, username: &str, password: &str) -> String {
        let page = self.consent_page(authorize_uri, username, password).await;
        let answer = self.decide(&page, "allow").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "consent: {}", text(&answer));
        answer.header("location").unwrap().to_owned()
    }
}

/// The body as text.
pub fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// POSTs a token request (form fields, optional Basic credentials) through the router.
pub async fn token_request(app: &Router, fields: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut builder = Request::post("/token").header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let credentials = STANDARD.encode(format!("{}:{}", encode(id), encode(secret)));
        builder = builder.header("authorization", format!("Basic {credentials}"));
    }
    send_as_is(app, builder.body(Body::from(form(fields))).unwrap()).await
}

/// Exchanges the code of `callback` for tokens (without `resource`: the code's own applies).
pub async fn redeem(app: &Router, client_id: &str, callback: &str, redirect_uri: &str, pkce: &Pkce) -> Reply {
    let code = query_of(callback).remove("code").expect("a code in the callback");
    token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &pkce.verifier),
        ],
        None,
    )
    .await
}

/// The claims of a JWT, unverified (the tests check them; the server verifies).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
