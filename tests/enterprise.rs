//! Enterprise-Managed Authorization at the embedded issuer (feature `issuer`, issue 29 item 1;
//! the MCP extension `io.modelcontextprotocol/enterprise-managed-authorization` and the IETF
//! draft "Identity Assertion JWT Authorization Grant"): a client presents an ID-JAG, signed by a
//! trusted enterprise IdP, with the JWT bearer grant, and gets an access token for the user the
//! ID-JAG speaks for.
//!
//! The enterprise IdP is a small server on loopback ([`TestIdp`]): discovery, its JWKS, and the
//! token exchange of the extension's section 4 (ID token in, ID-JAG out). The full flow is
//! scripted from the extension's text over TCP; every refusal case starts from an ID-JAG that is
//! accepted and changes one thing.

mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::failing_store::{FailingTable, Fails};
use common::issuer::{self as is, ISSUER, RESOURCE, text};
use common::tokens::{now, rsa_pair};
use common::{Reply, modern, send, send_as_is};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_auth_server::store::Store;
use mcp_auth_server::store_redis::RedisStore;
use mcp_auth_server::store_sqlite::SqliteStore;
use redis_server::RedisServer;
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG_TYPE: &str = "oauth-id-jag+jwt";
const EXTENSION: &str = "io.modelcontextprotocol/enterprise-managed-authorization";
/// The MCP client, registered here (confidential) and known to the IdP by the same client_id
/// (extension section 6.1).
const APP: &str = "chat-app";
const APP_SECRET: &str = "chat-app-test-secret";
/// Another confidential client allowed the grant.
const OTHER_APP: &str = "other-app";
/// The user here whom enterprise identities link to by e-mail.
const CAROL_EMAIL: &str = "carol@acme.example";

/// An RSA key of the tests: its signing key, `kid` and public JWK (made once per test binary).
struct IdpKey {
    encoding: EncodingKey,
    kid: String,
    jwk: Value,
}

fn make_key(name: &str) -> IdpKey {
    let (dir, signer) = rsa_pair(name);
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let pem = std::fs::read_to_string(dir.join("private.pem")).unwrap();
    let der = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap().to_pkcs1_der().unwrap();
    IdpKey {
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        kid: signer.kid().to_owned(),
        jwk: signer.public().jwk("RS256"),
    }
}

/// The enterprise IdP's key.
fn idp_key() -> &'static IdpKey {
    static KEY: OnceLock<IdpKey> = OnceLock::new();
    KEY.get_or_init(|| make_key("idjag-idp"))
}

/// A key nobody trusts.
fn rogue_key() -> &'static IdpKey {
    static KEY: OnceLock<IdpKey> = OnceLock::new();
    KEY.get_or_init(|| make_key("idjag-rogue"))
}

/// Argon2 hash of the test secret (and of a password nobody uses), once per test binary.
fn secret_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| mcp_auth_server::issuer::hash_password(APP_SECRET))
}

/// A user of the IdP: who its ID tokens are about.
#[derive(Clone)]
struct IdpUser {
    sub: String,
    email: Option<String>,
    /// The scopes the IdP's policy grants this user at the MCP server.
    scope: String,
}

/// The enterprise IdP on loopback: discovery, JWKS, and token exchange (extension section 4).
struct TestIdp {
    base: String,
    /// ID tokens it issued (at sign-in), and whom they are about.
    id_tokens: Arc<Mutex<HashMap<String, IdpUser>>>,
    /// The public keys its JWKS serves (it may rotate them).
    jwks: Arc<Mutex<Vec<Value>>>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", now(), NEXT.fetch_add(1, Ordering::SeqCst))
}

impl TestIdp {
    async fn start() -> TestIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let id_tokens = Arc::new(Mutex::new(HashMap::new()));
        let jwks = Arc::new(Mutex::new(vec![idp_key().jwk.clone()]));
        let state = (base.clone(), id_tokens.clone());
        let served = jwks.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State((base, _)): State<IdpState>| async move {
                    Json(json!({ "issuer": base, "jwks_uri": format!("{base}/jwks.json"), "token_endpoint": format!("{base}/token") }))
                }),
            )
            .route(
                "/jwks.json",
                get(move || {
                    let keys = served.lock().unwrap().clone();
                    async move { Json(json!({ "keys": keys })) }
                }),
            )
            .route("/token", post(token_exchange))
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestIdp { base, id_tokens, jwks }
    }

    /// Section 3, reduced to its result: the user signed in to the client, which holds an ID token.
    fn sign_in(&self, user: IdpUser) -> String {
        let id_token = unique("id-token");
        self.id_tokens.lock().unwrap().insert(id_token.clone(), user);
        id_token
    }

    /// The claims of an ID-JAG this IdP issues to [`APP`] for `sub`, for the test settings.
    fn claims(&self, sub: &str) -> Value {
        let now = now();
        json!({
            "iss": self.base, "sub": sub, "aud": ISSUER, "resource": RESOURCE, "client_id": APP,
            "jti": unique("jti"), "iat": now, "exp": now + 300, "scope": "mcp:read mcp:tools",
        })
    }

    /// An ID-JAG for carol (linked by her verified e-mail).
    fn carol(&self) -> Value {
        let mut claims = self.claims("U-carol");
        claims["email"] = json!(CAROL_EMAIL);
        claims["email_verified"] = json!(true);
        claims
    }
}

type IdpState = (String, Arc<Mutex<HashMap<String, IdpUser>>>);

/// Signs `claims` with `key`, header `typ` = `typ`.
fn sign_with(key: &IdpKey, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// An ID-JAG as the IdP signs it.
fn sign(claims: &Value) -> String {
    sign_with(idp_key(), ID_JAG_TYPE, claims)
}

/// The IdP's token endpoint, for the extension's token exchange (section 4, 4.1, 4.2): the client
/// authenticates, its ID token's audience is that client, and the IdP's policy decides the scopes.
async fn token_exchange(
    State((base, id_tokens)): State<IdpState>,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let error = |description: &str| {
        (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant", "error_description": description })))
            .into_response()
    };
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange"
        || field("requested_token_type") != "urn:ietf:params:oauth:token-type:id-jag"
        || field("subject_token_type") != "urn:ietf:params:oauth:token-type:id_token"
    {
        return error("not an ID-JAG token exchange");
    }
    if field("client_id") != APP || field("client_secret") != "idp-secret-of-chat-app" {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
    }
    let Some(user) = id_tokens.lock().unwrap().get(field("subject_token")).cloned() else {
        return error("unknown subject token");
    };
    let now = now();
    let mut claims = json!({
        "iss": base, "sub": user.sub, "aud": field("audience"), "resource": field("resource"),
        "client_id": APP, "jti": unique("jti"), "iat": now, "exp": now + 300, "scope": user.scope,
    });
    if let Some(email) = user.email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(true);
    }
    Json(json!({
        "issued_token_type": "urn:ietf:params:oauth:token-type:id-jag",
        "access_token": sign(&claims),
        "token_type": "N_A",
        "scope": user.scope,
        "expires_in": 300,
    }))
    .into_response()
}

/// Settings: carol (role user, with an e-mail), the two clients of the grant, the IdP, `extra`.
fn overrides(idp: &TestIdp, extra: &str) -> String {
    let hash = secret_hash();
    format!(
        r#"
[[issuer.users]]
username = "carol"
name = "Carol"
email = "{CAROL_EMAIL}"
roles = ["user"]
password_hash = "{hash}"

[[issuer.clients]]
client_id = "{APP}"
secret_hash = "{hash}"
grant_types = ["{JWT_BEARER}"]

[[issuer.clients]]
client_id = "{OTHER_APP}"
secret_hash = "{hash}"
grant_types = ["{JWT_BEARER}"]

[[issuer.enterprise_idps]]
issuer = "{}"
{extra}
"#,
        idp.base
    )
}

async fn setup(extra: &str) -> (Router, TestIdp) {
    let idp = TestIdp::start().await;
    let app = is::app(&overrides(&idp, extra)).await;
    (app, idp)
}

/// The extension's section 5 request: the JWT bearer grant with the ID-JAG, as `client`.
async fn present(app: &Router, client: &str, id_jag: &str, extra: &[(&str, &str)]) -> Reply {
    let mut fields = vec![("grant_type", JWT_BEARER), ("assertion", id_jag)];
    fields.extend_from_slice(extra);
    is::token_request(app, &fields, Some((client, APP_SECRET))).await
}

fn access_token(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", text(reply));
    reply.json()["access_token"].as_str().expect("an access token").to_owned()
}

/// Asserts a 400 with `error` whose description contains `why`.
fn assert_refused(reply: &Reply, error: &str, why: &str) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}: {}", text(reply));
    let body = reply.json();
    assert_eq!(body["error"], error, "{why}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(why), "expected `{why}` in: {description}");
}

/// `tools/call whoami` on `/mcp` with `token`: its structured result.
async fn whoami(app: &Router, token: &str) -> Value {
    let mut request = modern(7, "tools/call", json!({ "name": "whoami", "arguments": {} }));
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let reply = send_as_is(app, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    let message = if reply.is_sse() { reply.messages().pop().unwrap() } else { reply.json() };
    message["result"]["structuredContent"].clone()
}

#[tokio::test]
async fn a_client_doing_the_extensions_flow_gets_a_token_from_an_id_jag_and_calls_a_tool_as_the_linked_user() {
    let idp = TestIdp::start().await;
    let server = common::spawn_app_with(&format!("{}\n{}", is::accounts_layer(), overrides(&idp, ""))).await;
    let http = reqwest::Client::new();
    // Our authorization server says it takes the JWT bearer grant.
    let metadata: Value = http
        .get(format!("{}/.well-known/oauth-authorization-server", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&json!(JWT_BEARER)), "{metadata}");
    let issuer = metadata["issuer"].as_str().unwrap().to_owned();

    // Section 3: carol signed in to the client through the IdP; the client holds her ID token.
    let id_token = idp.sign_in(IdpUser {
        sub: "U-carol".into(),
        email: Some(CAROL_EMAIL.into()),
        scope: "mcp:read mcp:tools".into(),
    });
    // Section 4: token exchange at the IdP, for our issuer (audience) and our /mcp (resource).
    let exchanged: Value = http
        .post(format!("{}/token", idp.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(is::form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("requested_token_type", "urn:ietf:params:oauth:token-type:id-jag"),
            ("audience", &issuer),
            ("resource", &server.mcp_url()),
            ("scope", "mcp:read mcp:tools"),
            ("subject_token", &id_token),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            ("client_id", APP),
            ("client_secret", "idp-secret-of-chat-app"),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(exchanged["issued_token_type"], "urn:ietf:params:oauth:token-type:id-jag", "{exchanged}");
    let id_jag = exchanged["access_token"].as_str().unwrap();

    // Section 5: the ID-JAG as a JWT bearer grant at our token endpoint, with client authentication.
    let response = http
        .post(metadata["token_endpoint"].as_str().unwrap())
        .basic_auth(APP, Some(APP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(is::form(&[("grant_type", JWT_BEARER), ("assertion", id_jag)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["scope"], "mcp:read mcp:tools");
    assert!(body.get("refresh_token").is_none(), "no refresh token: the client asks the IdP again: {body}");
    let token = body["access_token"].as_str().unwrap();
    let claims = is::claims(token);
    assert_eq!((claims["sub"].as_str(), claims["name"].as_str()), (Some("carol"), Some("Carol")));
    assert_eq!(claims["aud"], server.mcp_url());
    assert_eq!(claims["client_id"], APP);
    assert_eq!(claims["roles"], json!(["user"]));
    assert!(claims["grant_id"].is_string(), "{claims}");

    // And the token calls a tool, as carol.
    let call = |id: u64, name: &str| {
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": name, "arguments": {},
            "_meta": { "io.modelcontextprotocol/protocolVersion": common::MODERN,
                       "io.modelcontextprotocol/clientCapabilities": { "extensions": { EXTENSION: {} } } } } })
    };
    let reply = http
        .post(server.mcp_url())
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", common::MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .json(&call(1, "whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let bytes = reply.bytes().await.unwrap();
    let message = serde_json::from_slice::<Value>(&bytes)
        .unwrap_or_else(|_| common::sse_messages(&bytes).pop().expect("a message"));
    let caller = &message["result"]["structuredContent"];
    assert_eq!((caller["subject"].as_str(), caller["client_id"].as_str()), (Some("carol"), Some(APP)), "{message}");
    server.shutdown.trigger();
}

#[tokio::test]
async fn the_extension_is_advertised_only_with_trusted_idps() {
    let (app, _idp) = setup("").await;
    let discover = send(&app, modern(1, "server/discover", json!({}))).await.json();
    assert!(discover["result"]["capabilities"]["extensions"].get(EXTENSION).is_some(), "{discover}");
    let metadata = send_as_is(
        &app,
        axum::http::Request::get("/.well-known/oauth-authorization-server").body(axum::body::Body::empty()).unwrap(),
    )
    .await
    .json();
    assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&json!(JWT_BEARER)));

    let plain = is::app("").await;
    let discover = send(&plain, modern(1, "server/discover", json!({}))).await.json();
    assert!(discover["result"]["capabilities"]["extensions"].get(EXTENSION).is_none(), "{discover}");
    let metadata = send_as_is(
        &plain,
        axum::http::Request::get("/.well-known/oauth-authorization-server").body(axum::body::Body::empty()).unwrap(),
    )
    .await
    .json();
    assert!(!metadata["grant_types_supported"].as_array().unwrap().contains(&json!(JWT_BEARER)));
    // Without IdPs, the grant does not exist here.
    let reply = is::token_request(
        &plain,
        &[("grant_type", JWT_BEARER), ("assertion", "x.y.z")],
        Some(("test-service", is::SERVICE_SECRET)),
    )
    .await;
    assert_refused(&reply, "unsupported_grant_type", JWT_BEARER);
}

#[tokio::test]
async fn an_identity_linked_by_email_stays_linked_by_its_sub() {
    let (app, idp) = setup("").await;
    let token = access_token(&present(&app, APP, &sign(&idp.carol()), &[]).await);
    assert_eq!(whoami(&app, &token).await["subject"], "carol");
    // The same `sub`, without an e-mail this time: the link made by e-mail holds.
    let token = access_token(&present(&app, APP, &sign(&idp.claims("U-carol")), &[]).await);
    assert_eq!(is::claims(&token)["sub"], "carol");
}

#[tokio::test]
async fn an_unverified_or_unknown_email_links_nobody_and_unknown_users_are_refused() {
    let (app, idp) = setup("").await;
    let mut unverified = idp.carol();
    unverified.as_object_mut().unwrap().remove("email_verified");
    assert_refused(&present(&app, APP, &sign(&unverified), &[]).await, "invalid_grant", "no user here is linked");
    let mut stranger = idp.claims("U-stranger");
    stranger["email"] = json!("stranger@acme.example");
    stranger["email_verified"] = json!(true);
    assert_refused(&present(&app, APP, &sign(&stranger), &[]).await, "invalid_grant", "no user here is linked");
    // With linking by e-mail off, even carol's verified e-mail links nobody.
    let (app, idp) = setup("link_by_email = false").await;
    assert_refused(&present(&app, APP, &sign(&idp.carol()), &[]).await, "invalid_grant", "no user here is linked");
}

#[tokio::test]
async fn unknown_users_are_provisioned_when_configured_with_the_configured_roles() {
    let (app, idp) = setup("provision_users = true\nprovision_roles = [\"user\"]").await;
    let mut claims = idp.claims("U-dave");
    claims["name"] = json!("Dave");
    let token = access_token(&present(&app, APP, &sign(&claims), &[]).await);
    let issued = is::claims(&token);
    assert_eq!(issued["sub"], format!("{}#U-dave", idp.base));
    assert_eq!((issued["roles"].clone(), issued["scope"].clone()), (json!(["user"]), json!("mcp:read mcp:tools")));
    assert_eq!(issued["name"], "Dave");
    assert_eq!(whoami(&app, &token).await["subject"], issued["sub"]);
    // A provisioned user gets no more than the provisioned roles permit.
    let mut claims = idp.claims("U-dave");
    claims["scope"] = json!("mcp:read mcp:prompts");
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_scope", "mcp:prompts");
    // Carol is still carol.
    assert_eq!(is::claims(&access_token(&present(&app, APP, &sign(&idp.carol()), &[]).await))["sub"], "carol");
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let (app, idp) = setup("").await;
    let mut claims = idp.carol();
    claims["aud"] = json!("https://other-as.example");
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_grant", "`aud` must be");
    // Our resource is not our issuer either.
    claims["aud"] = json!(RESOURCE);
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_grant", "`aud` must be");
    claims["aud"] = json!(["https://other-as.example", ISSUER]);
    access_token(&present(&app, APP, &sign(&claims), &[]).await);
}

#[tokio::test]
async fn a_wrong_or_missing_resource_is_refused() {
    let (app, idp) = setup("").await;
    let mut claims = idp.carol();
    claims["resource"] = json!("https://other-mcp.example/mcp");
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_grant", "no tokens for the resource");
    claims.as_object_mut().unwrap().remove("resource");
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_grant", "`resource` is required");
    // A `resource` parameter must agree with the ID-JAG's.
    let reply = present(&app, APP, &sign(&idp.carol()), &[("resource", "http://127.0.0.1:3000/other")]).await;
    assert_refused(&reply, "invalid_target", "resource differs");
}

#[tokio::test]
async fn an_expired_id_jag_is_refused() {
    let (app, idp) = setup("").await;
    let mut claims = idp.carol();
    // Minted long enough ago to be past its `exp` and the 60 s leeway.
    claims["iat"] = json!(now() - 900);
    claims["exp"] = json!(now() - 600);
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_grant", "expired");
    // Issued in the future, or living too long, is refused as well.
    let mut claims = idp.carol();
    claims["iat"] = json!(now() + 600);
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_grant", "issued in the future");
    let mut claims = idp.carol();
    claims["exp"] = json!(now() + 7200);
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_grant", "s ahead");
}

#[tokio::test]
async fn a_replayed_id_jag_is_refused() {
    let (app, idp) = setup("").await;
    let id_jag = sign(&idp.carol());
    access_token(&present(&app, APP, &id_jag, &[]).await);
    assert_refused(&present(&app, APP, &id_jag, &[]).await, "invalid_grant", "already used");
    // The same `jti` in another ID-JAG is the same grant.
    let mut again = idp.carol();
    again["jti"] = is::claims(&id_jag)["jti"].clone();
    assert_refused(&present(&app, APP, &sign(&again), &[]).await, "invalid_grant", "already used");
}

#[tokio::test]
async fn an_untrusted_issuer_is_refused() {
    let (app, idp) = setup("").await;
    let rogue = TestIdp::start().await;
    let mut claims = idp.carol();
    claims["iss"] = json!(rogue.base);
    let reply = present(&app, APP, &sign_with(rogue_key(), ID_JAG_TYPE, &claims), &[]).await;
    assert_refused(&reply, "invalid_grant", "is not a trusted identity provider");
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let (app, idp) = setup("").await;
    // Our IdP's name and kid, another key.
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some(ID_JAG_TYPE.to_owned());
    header.kid = Some(idp_key().kid.clone());
    let forged = jsonwebtoken::encode(&header, &idp.carol(), &rogue_key().encoding).unwrap();
    let reply = present(&app, APP, &forged, &[]).await;
    assert_refused(&reply, "invalid_grant", "bad signature");
    // An altered payload under the IdP's real signature.
    let genuine = sign(&idp.carol());
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut claims = is::claims(&genuine);
    claims["sub"] = json!("U-someone-else");
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_refused(&present(&app, APP, &parts.join("."), &[]).await, "invalid_grant", "bad signature");
}

#[tokio::test]
async fn a_wrong_typ_is_refused() {
    let (app, idp) = setup("").await;
    for typ in ["JWT", "at+jwt", "id-jag+jwt"] {
        let reply = present(&app, APP, &sign_with(idp_key(), typ, &idp.carol()), &[]).await;
        assert_refused(&reply, "invalid_grant", "`typ` must be");
    }
    // The media type's full form is the same type.
    access_token(&present(&app, APP, &sign_with(idp_key(), "application/oauth-id-jag+jwt", &idp.carol()), &[]).await);
}

#[tokio::test]
async fn a_client_id_that_is_not_the_authenticated_client_is_refused() {
    let (app, idp) = setup("").await;
    // Issued to chat-app, presented by other-app (with other-app's own credentials).
    let reply = present(&app, OTHER_APP, &sign(&idp.carol()), &[]).await;
    assert_refused(&reply, "invalid_grant", "not the client that authenticated");
    // A client the IdP may not issue to, even when the ID-JAG names it.
    let (app, idp) = setup(&format!("allowed_clients = [\"{APP}\"]")).await;
    let mut claims = idp.carol();
    claims["client_id"] = json!(OTHER_APP);
    assert_refused(&present(&app, OTHER_APP, &sign(&claims), &[]).await, "invalid_grant", "may not issue grants");
    access_token(&present(&app, APP, &sign(&idp.carol()), &[]).await);
    // A wrong secret never gets as far as the ID-JAG.
    let reply = is::token_request(
        &app,
        &[("grant_type", JWT_BEARER), ("assertion", &sign(&idp.carol()))],
        Some((APP, "wrong")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", text(&reply));
}

#[tokio::test]
async fn public_clients_and_clients_without_the_grant_cannot_use_it() {
    let (app, idp) = setup("").await;
    let mut claims = idp.carol();
    claims["client_id"] = json!(is::CLIENT_ID);
    let fields = [("grant_type", JWT_BEARER), ("assertion", &sign(&claims)), ("client_id", is::CLIENT_ID)];
    let reply = is::token_request(&app, &fields, None).await;
    assert_eq!(reply.json()["error"], "unauthorized_client", "{}", text(&reply));
    let mut claims = idp.carol();
    claims["client_id"] = json!("test-service");
    let fields = [("grant_type", JWT_BEARER), ("assertion", &sign(&claims))];
    let reply = is::token_request(&app, &fields, Some(("test-service", is::SERVICE_SECRET))).await;
    assert_eq!(reply.json()["error"], "unauthorized_client", "{}", text(&reply));
}

#[tokio::test]
async fn a_scope_the_role_does_not_permit_is_refused() {
    let (app, idp) = setup("").await;
    // carol's role `user` permits mcp:read and mcp:tools, not mcp:prompts.
    let mut claims = idp.carol();
    claims["scope"] = json!("mcp:read mcp:prompts");
    assert_refused(&present(&app, APP, &sign(&claims), &[]).await, "invalid_scope", "mcp:prompts");
    // A narrower `scope` parameter is granted; a wider one is not.
    let mut claims = idp.carol();
    claims["scope"] = json!("mcp:read");
    let reply = present(&app, APP, &sign(&claims), &[("scope", "mcp:read mcp:tools")]).await;
    assert_refused(&reply, "invalid_scope", "mcp:tools");
    let reply = present(&app, APP, &sign(&idp.carol()), &[("scope", "mcp:read")]).await;
    assert_eq!(reply.json()["scope"], "mcp:read", "{}", text(&reply));
    // Without a scope claim: what the role permits.
    let mut claims = idp.carol();
    claims.as_object_mut().unwrap().remove("scope");
    assert_eq!(present(&app, APP, &sign(&claims), &[]).await.json()["scope"], "mcp:read mcp:tools");
}

#[tokio::test]
async fn required_claims_are_required() {
    let (app, idp) = setup("").await;
    for claim in ["sub", "client_id", "jti", "exp", "iat"] {
        let mut claims = idp.carol();
        claims.as_object_mut().unwrap().remove(claim);
        let reply = present(&app, APP, &sign(&claims), &[]).await;
        assert_eq!(reply.json()["error"], "invalid_grant", "without {claim}: {}", text(&reply));
    }
    let reply = is::token_request(&app, &[("grant_type", JWT_BEARER)], Some((APP, APP_SECRET))).await;
    assert_refused(&reply, "invalid_request", "assertion is required");
}

#[test]
fn bad_enterprise_settings_stop_the_start_with_a_clear_error() {
    let error =
        |toml: &str| mcp_auth_server::Settings::from_toml(toml).err().map(|e| e.to_string()).unwrap_or_default();
    let idp = "[[issuer.enterprise_idps]]\nissuer = \"https://idp.example\"\n";
    assert!(error(&format!("{idp}provision_users = true")).contains("provision_roles"));
    assert!(error("[[issuer.enterprise_idps]]\nissuer = \"not a url\"").contains("issuer.enterprise_idps"));
    assert!(error(&format!("{idp}{idp}")).contains("is listed twice"));
    let client = format!(
        "[[issuer.clients]]\nclient_id = \"x\"\nsecret_hash = \"{}\"\ngrant_types = [\"{JWT_BEARER}\"]\n",
        secret_hash()
    );
    assert!(error(&client).contains("no [[issuer.enterprise_idps]]"));
    let public = format!("[[issuer.clients]]\nclient_id = \"x\"\ngrant_types = [\"{JWT_BEARER}\"]\n{idp}");
    assert!(error(&public).contains("needs a secret_hash or private_key_jwt"));
}

// --- the store: every instance, both backends, failing closed ------------------------------------

/// Two instances of the app with the IdP, on one store: `sqlite` (two connections to one file)
/// or `redis` (one connection each to one server).
async fn two_instances(backend: &str, idp: &TestIdp) -> (Router, Router, Option<RedisServer>) {
    let (stores, redis): ([Arc<dyn Store>; 2], _) = match backend {
        "sqlite" => {
            let path = common::tokens::fresh_dir("idjag-sqlite").join("store.db");
            let open = || async { Arc::new(SqliteStore::open(&path).await.unwrap()) as Arc<dyn Store> };
            ([open().await, open().await], None)
        }
        _ => {
            let redis = RedisServer::start();
            let connect = || async { Arc::new(RedisStore::connect(&redis.url()).await.unwrap()) as Arc<dyn Store> };
            ([connect().await, connect().await], Some(redis))
        }
    };
    let [a, b] = stores;
    let build = |store| mcp_auth_server::AppBuilder::new(is::settings(&overrides(idp, ""))).store(store).build();
    (build(a).await.unwrap(), build(b).await.unwrap(), redis)
}

async fn an_id_jag_and_its_link_are_shared_by_instances(backend: &str) {
    let idp = TestIdp::start().await;
    let (a, b, _redis) = two_instances(backend, &idp).await;
    let id_jag = sign(&idp.carol());
    access_token(&present(&a, APP, &id_jag, &[]).await);
    assert_refused(&present(&b, APP, &id_jag, &[]).await, "invalid_grant", "already used");
    // The link A made by e-mail finds carol by her `sub` on B.
    let token = access_token(&present(&b, APP, &sign(&idp.claims("U-carol")), &[]).await);
    assert_eq!(is::claims(&token)["sub"], "carol");
}

#[tokio::test]
async fn an_id_jag_and_its_link_are_shared_by_instances_on_sqlite() {
    an_id_jag_and_its_link_are_shared_by_instances("sqlite").await;
}

#[tokio::test]
async fn an_id_jag_and_its_link_are_shared_by_instances_on_redis() {
    an_id_jag_and_its_link_are_shared_by_instances("redis").await;
}

/// A 503 with `Retry-After` and no token.
fn assert_unavailable(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", text(reply));
    assert!(reply.header("retry-after").is_some());
    assert!(reply.json().get("access_token").is_none());
}

#[tokio::test]
async fn a_store_that_cannot_record_the_jti_or_the_link_fails_closed_without_a_token() {
    for table in ["as_id_jag", "as_idp_link"] {
        let idp = TestIdp::start().await;
        let store = Arc::new(FailingTable::new(table, Fails::Writes, true));
        let settings = is::settings(&overrides(&idp, ""));
        let app = mcp_auth_server::AppBuilder::new(settings).store(store.clone()).build().await.unwrap();
        let id_jag = sign(&idp.carol());
        assert_unavailable(&present(&app, APP, &id_jag, &[]).await);
        store.set_failing(false);
        let retried = present(&app, APP, &id_jag, &[]).await;
        if table == "as_id_jag" {
            // Nothing was written: the same ID-JAG is accepted once the store is back.
            access_token(&retried);
        } else {
            // The jti was spent before the link failed: that ID-JAG is gone, a new one works.
            assert_refused(&retried, "invalid_grant", "already used");
            access_token(&present(&app, APP, &sign(&idp.carol()), &[]).await);
        }
    }
}

#[tokio::test]
async fn an_idp_whose_keys_cannot_be_fetched_stops_the_start_with_a_clear_error() {
    let port = redis_server::free_port();
    let settings = is::settings(&format!(
        "[jwt]\nstartup_timeout_secs = 0\n[[issuer.enterprise_idps]]\nissuer = \"http://127.0.0.1:{port}\"\n"
    ));
    let error = mcp_auth_server::AppBuilder::new(settings).build().await.expect_err("no start without the keys");
    let message = error.to_string();
    assert!(message.contains(&format!("http://127.0.0.1:{port}")), "{message}");
    assert!(message.contains("issuer.enterprise_idps"), "{message}");
}

#[tokio::test]
async fn a_client_registered_dynamically_with_a_secret_may_use_the_grant_and_a_public_one_may_not() {
    let (app, idp) = setup("").await;
    let register = |metadata: Value| {
        let app = app.clone();
        async move {
            let request = axum::http::Request::post("/register")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(metadata.to_string()))
                .unwrap();
            send_as_is(&app, request).await
        }
    };
    let grants = json!(["authorization_code", JWT_BEARER]);
    let registered = register(json!({ "redirect_uris": [is::REDIRECT_URI], "grant_types": grants })).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", text(&registered));
    let registered = registered.json();
    let (id, secret) = (registered["client_id"].as_str().unwrap(), registered["client_secret"].as_str().unwrap());
    let mut claims = idp.carol();
    claims["client_id"] = json!(id);
    let fields = [("grant_type", JWT_BEARER), ("assertion", &sign(&claims))];
    let token = access_token(&is::token_request(&app, &fields, Some((id, secret))).await);
    assert_eq!(
        (is::claims(&token)["sub"].as_str(), is::claims(&token)["client_id"].as_str()),
        (Some("carol"), Some(id))
    );
    // A public client cannot register it.
    let public = register(json!({
        "redirect_uris": [is::REDIRECT_URI], "grant_types": grants, "token_endpoint_auth_method": "none",
    }))
    .await;
    assert_eq!(public.status, StatusCode::BAD_REQUEST, "{}", text(&public));
    assert_eq!(public.json()["error"], "invalid_client_metadata");
    // Nor can anyone where no IdP is trusted.
    let plain = is::app("").await;
    let request = axum::http::Request::post("/register")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({ "redirect_uris": [is::REDIRECT_URI], "grant_types": grants }).to_string()))
        .unwrap();
    assert_eq!(send_as_is(&plain, request).await.json()["error"], "invalid_client_metadata");
}

#[tokio::test]
async fn a_key_the_idp_rotated_in_is_fetched_when_an_id_jag_names_it() {
    // An unknown kid refetches the keys at once (no minimum interval between fetches here).
    let (app, idp) = setup("[jwt]\nmin_refresh_interval_secs = 0").await;
    let rotated = sign_with(rogue_key(), ID_JAG_TYPE, &idp.carol());
    assert_refused(&present(&app, APP, &rotated, &[]).await, "invalid_grant", "no key of the IdP has kid");
    // The IdP publishes the new key: the same kind of ID-JAG is accepted now.
    idp.jwks.lock().unwrap().push(rogue_key().jwk.clone());
    access_token(&present(&app, APP, &sign_with(rogue_key(), ID_JAG_TYPE, &idp.carol()), &[]).await);
}
