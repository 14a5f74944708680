//! `private_key_jwt` client authentication at the embedded issuer (feature `issuer`, issue 29
//! item 2; RFC 7523 section 2.2 and the MCP OAuth client credentials extension): clients that
//! sign a short-lived JWT with their own key instead of sending a secret, with keys from the
//! configuration (inline JWKS) or from a `jwks_uri` (here a small server on loopback).
//!
//! Every refusal case starts from an assertion that is accepted, and changes one thing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::issuer::{self as is, ALICE_PASSWORD, Browser, ISSUER, Pkce, REDIRECT_URI, SERVICE_SECRET, text};
use common::tokens::{now, rsa_pair};
use common::{Reply, modern, send_as_is};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_auth_server::jwt::keyfile::Signer;
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A machine client with its RSA key inline (`jwks`).
const RSA_SERVICE: &str = "rsa-service";
/// A machine client whose EC key is at a `jwks_uri`.
const EC_SERVICE: &str = "ec-service";
/// An application using the code flow, authenticating with its RSA key.
const APP: &str = "keyed-app";

/// The test's keys: an RSA pair (and the path of its public PEM, for the HMAC forgery) and an
/// EC P-256 pair.
struct Keys {
    rsa: Signer,
    rsa_public_pem: Vec<u8>,
    ec: EncodingKey,
    ec_jwk: Value,
}

impl Keys {
    fn new() -> Keys {
        let (dir, rsa) = rsa_pair("pkjwt-rsa");
        let rsa_public_pem = std::fs::read(dir.join("public.pem")).unwrap();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let ec_jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Keys { rsa, rsa_public_pem, ec: EncodingKey::from_ec_der(pkcs8.as_ref()), ec_jwk }
    }

    /// The RSA public JWK, without `alg`: any accepted RSA algorithm may use it.
    fn rsa_jwk(&self) -> Value {
        let mut jwk = self.rsa.public().jwk("RS256");
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    }

    fn rs(&self, alg: Algorithm, claims: &Value) -> String {
        self.rsa.sign(alg, claims).unwrap()
    }

    fn es256(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("ec-1".into());
        jsonwebtoken::encode(&header, claims, &self.ec).unwrap()
    }
}

/// A JSON server on loopback (a JWKS, a client metadata document), counting its fetches.
struct JwksServer {
    /// `/jwks.json` on it.
    url: String,
    base: String,
    fetches: Arc<AtomicUsize>,
}

/// Serves `documents(base, path)` as JSON (404 for `None`).
async fn serve(documents: impl Fn(&str, &str) -> Option<Value> + Send + Sync + 'static) -> JwksServer {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let (counter, own, documents) = (fetches.clone(), base.clone(), Arc::new(documents));
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        counter.fetch_add(1, Ordering::SeqCst);
        let document = documents(&own, uri.path());
        async move { document.map_or_else(|| StatusCode::NOT_FOUND.into_response(), |d| axum::Json(d).into_response()) }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    JwksServer { url: format!("{base}/jwks.json"), base, fetches }
}

async fn serve_jwks(jwks: Value) -> JwksServer {
    serve(move |_, path| (path == "/jwks.json").then(|| jwks.clone())).await
}

/// The clients of these tests, and `extra` settings.
fn overrides(keys: &Keys, jwks_uri: &str, extra: &str) -> String {
    let rsa_jwks = json!({ "keys": [keys.rsa_jwk()] }).to_string();
    format!(
        r#"
[[issuer.clients]]
client_id = "{RSA_SERVICE}"
token_endpoint_auth_method = "private_key_jwt"
jwks = '{rsa_jwks}'
grant_types = ["client_credentials"]
roles = ["user"]

[[issuer.clients]]
client_id = "{EC_SERVICE}"
token_endpoint_auth_method = "private_key_jwt"
jwks_uri = "{jwks_uri}"
grant_types = ["client_credentials"]
roles = ["user"]

[[issuer.clients]]
client_id = "{APP}"
token_endpoint_auth_method = "private_key_jwt"
jwks = '{rsa_jwks}'
redirect_uris = ["{REDIRECT_URI}"]

{extra}
"#
    )
}

/// The app with the test clients; the EC client's keys at a JWKS server of its own.
async fn setup(extra: &str) -> (Router, Keys, JwksServer) {
    let keys = Keys::new();
    let server = serve_jwks(json!({ "keys": [keys.ec_jwk.clone()] })).await;
    let app = is::app(&overrides(&keys, &server.url, extra)).await;
    (app, keys, server)
}

fn jti() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("jti-{}-{}", now(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// The claims of an assertion this server accepts from `client`.
fn claims(client: &str) -> Value {
    let now = now();
    json!({ "iss": client, "sub": client, "aud": ISSUER, "iat": now, "exp": now + 60, "jti": jti() })
}

async fn client_credentials(app: &Router, assertion: &str, extra: &[(&str, &str)]) -> Reply {
    let mut fields = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    fields.extend_from_slice(extra);
    is::token_request(app, &fields, None).await
}

/// Asserts a 401 `invalid_client` whose description contains `why`.
fn assert_refused(reply: &Reply, why: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{why}: {}", text(reply));
    let body = reply.json();
    assert_eq!(body["error"], "invalid_client", "{why}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(why), "expected `{why}` in: {description}");
}

fn access_token(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{}", text(reply));
    reply.json()["access_token"].as_str().expect("an access token").to_owned()
}

/// `tools/call echo` on `/mcp` with `token`: the text it echoes.
async fn echo(app: &Router, token: &str) -> String {
    let mut request = modern(7, "tools/call", json!({ "name": "echo", "arguments": { "message": "hello" } }));
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let reply = send_as_is(app, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    let message = if reply.is_sse() { reply.messages().pop().unwrap() } else { reply.json() };
    message["result"]["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn client_credentials_with_an_rs256_assertion_gets_a_token_that_calls_a_tool() {
    let (app, keys, _server) = setup("").await;
    let reply = client_credentials(&app, &keys.rs(Algorithm::RS256, &claims(RSA_SERVICE)), &[]).await;
    let token = access_token(&reply);
    let issued = is::claims(&token);
    assert_eq!((issued["sub"].as_str(), issued["client_id"].as_str()), (Some(RSA_SERVICE), Some(RSA_SERVICE)));
    assert_eq!(echo(&app, &token).await, "hello");
    // The token endpoint URL is an audience too, and `client_id` may be sent when it matches.
    let mut to_endpoint = claims(RSA_SERVICE);
    to_endpoint["aud"] = json!([format!("{ISSUER}/token")]);
    let reply = client_credentials(&app, &keys.rs(Algorithm::PS256, &to_endpoint), &[("client_id", RSA_SERVICE)]).await;
    access_token(&reply);
}

#[tokio::test]
async fn keys_at_a_jwks_uri_are_fetched_once_and_verify_es256_assertions() {
    let (app, keys, server) = setup("").await;
    let token = access_token(&client_credentials(&app, &keys.es256(&claims(EC_SERVICE)), &[]).await);
    assert_eq!(echo(&app, &token).await, "hello");
    access_token(&client_credentials(&app, &keys.es256(&claims(EC_SERVICE)), &[]).await);
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1, "the key set is cached");
    // A key the set does not have is not the client's, however it is named.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let other = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let forged = jsonwebtoken::encode(&header, &claims(EC_SERVICE), &EncodingKey::from_ec_der(other.as_ref())).unwrap();
    assert_refused(&client_credentials(&app, &forged, &[]).await, "bad signature");
}

#[tokio::test]
async fn the_code_flow_and_its_refresh_authenticate_with_assertions() {
    let (app, keys, _server) = setup("").await;
    let pkce = Pkce::new();
    let callback =
        Browser::new(&app).authorize(&is::authorize_uri(APP, REDIRECT_URI, &pkce, &[]), "alice", ALICE_PASSWORD).await;
    let code = is::query_of(&callback).remove("code").unwrap();
    let redeem = |assertion: Option<String>| {
        let (app, code, verifier) = (app.clone(), code.clone(), pkce.verifier.clone());
        async move {
            let mut fields = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("client_id", APP.to_owned()),
                ("code", code),
                ("redirect_uri", REDIRECT_URI.to_owned()),
                ("code_verifier", verifier),
            ];
            if let Some(assertion) = assertion {
                fields.push(("client_assertion_type", ASSERTION_TYPE.to_owned()));
                fields.push(("client_assertion", assertion));
            }
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            is::token_request(&app, &fields, None).await
        }
    };
    // Without its assertion the client is not authenticated (and the code is not spent).
    assert_refused(&redeem(None).await, "private_key_jwt");
    let reply = redeem(Some(keys.rs(Algorithm::RS256, &claims(APP)))).await;
    let token = access_token(&reply);
    assert_eq!(is::claims(&token)["sub"], "alice");
    let refresh = reply.json()["refresh_token"].as_str().expect("a refresh token").to_owned();
    let assertion = keys.rs(Algorithm::RS256, &claims(APP));
    let refreshed = is::token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
        None,
    )
    .await;
    access_token(&refreshed);
}

#[tokio::test]
async fn a_metadata_document_client_authenticates_with_the_keys_at_its_jwks_uri() {
    let keys = Keys::new();
    let ec_jwks = json!({ "keys": [keys.ec_jwk.clone()] });
    let server = serve(move |base, path| match path {
        "/client.json" => Some(json!({
            "client_id": format!("{base}/client.json"),
            "client_name": "Keyed metadata client",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": format!("{base}/jwks.json"),
        })),
        "/jwks.json" => Some(ec_jwks.clone()),
        _ => None,
    })
    .await;
    let client_id = format!("{}/client.json", server.base);
    let app = is::app("[issuer]\nallow_loopback_http_client_ids = true").await;
    let (pkce, redirect) = (Pkce::new(), "http://127.0.0.1:5123/callback");
    let callback = Browser::new(&app)
        .authorize(&is::authorize_uri(&client_id, redirect, &pkce, &[]), "alice", ALICE_PASSWORD)
        .await;
    let code = is::query_of(&callback).remove("code").unwrap();
    let redeem = |assertion: String| {
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", pkce.verifier.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
        ]
        .map(|(k, v)| (k, v.to_owned()));
        let app = app.clone();
        async move {
            let mut fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.push(("client_assertion", &assertion));
            is::token_request(&app, &fields, None).await
        }
    };
    // Signed by the RSA key, which the document does not publish: refused, the code unspent.
    assert_refused(&redeem(keys.rs(Algorithm::RS256, &claims(&client_id))).await, "kid");
    let token = access_token(&redeem(keys.es256(&claims(&client_id))).await);
    assert_eq!(is::claims(&token)["client_id"], client_id.as_str());
    assert_eq!(echo(&app, &token).await, "hello");
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2, "the document and the JWKS, once each");
}

#[tokio::test]
async fn assertions_that_break_one_rule_are_refused_as_invalid_client() {
    let (app, keys, _server) = setup("[issuer]\nclient_secret_max_attempts = 1000").await;
    let refused = |assertion: String, why: &'static str| {
        let app = app.clone();
        async move { assert_refused(&client_credentials(&app, &assertion, &[]).await, why) }
    };
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims(RSA_SERVICE);
        change(&mut claims);
        claims
    };
    // Another RSA key (named by its own kid; one under the client's kid is in the EC test).
    let (_, other_key) = rsa_pair("pkjwt-other");
    refused(other_key.sign(Algorithm::RS256, &claims(RSA_SERVICE)).unwrap(), "no key of this client has kid").await;
    refused(keys.rs(Algorithm::RS256, &with(&|c| c["aud"] = json!("https://elsewhere.example"))), "`aud`").await;
    refused(keys.rs(Algorithm::RS256, &with(&|c| c["aud"] = json!(format!("{ISSUER}/mcp")))), "`aud`").await;
    refused(keys.rs(Algorithm::RS256, &with(&|c| c["exp"] = json!(now() - 120))), "expired").await;
    refused(keys.rs(Algorithm::RS256, &with(&|c| c["exp"] = json!(now() + 3600))), "short-lived").await;
    refused(
        keys.rs(Algorithm::RS256, &with(&|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap())),
        "`exp` is required",
    )
    .await;
    refused(keys.rs(Algorithm::RS256, &with(&|c| c["nbf"] = json!(now() + 600))), "`nbf`").await;
    refused(keys.rs(Algorithm::RS256, &with(&|c| c["iat"] = json!(now() + 600))), "`iat`").await;
    refused(
        keys.rs(Algorithm::RS256, &with(&|c| c.as_object_mut().unwrap().remove("jti").map(drop).unwrap())),
        "`jti` is required",
    )
    .await;
    refused(keys.rs(Algorithm::RS256, &with(&|c| c["iss"] = json!("someone-else"))), "`iss` and `sub`").await;
    // RS384 is an RSA algorithm the key could verify, but not on the allow-list.
    refused(keys.rs(Algorithm::RS384, &claims(RSA_SERVICE)), "algorithm `RS384` is not accepted").await;
    // HS256 with the public key as the secret: the classic algorithm confusion.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(keys.rsa.kid().to_owned());
    let hmac =
        jsonwebtoken::encode(&hs, &claims(RSA_SERVICE), &EncodingKey::from_secret(&keys.rsa_public_pem)).unwrap();
    refused(hmac, "algorithm `HS256` is not accepted").await;
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims(RSA_SERVICE).to_string())
    );
    refused(unsigned, "algorithm `none` is not accepted").await;
    // A replayed assertion: accepted once, then refused.
    let once = keys.rs(Algorithm::RS256, &claims(RSA_SERVICE));
    access_token(&client_credentials(&app, &once, &[]).await);
    refused(once, "already used").await;
    // `client_id` naming another client than the assertion.
    let reply =
        client_credentials(&app, &keys.rs(Algorithm::RS256, &claims(RSA_SERVICE)), &[("client_id", EC_SERVICE)]).await;
    assert_refused(&reply, "differs");
    // The same assertion, unchanged, is accepted: every refusal above is its one change.
    access_token(&client_credentials(&app, &keys.rs(Algorithm::RS256, &claims(RSA_SERVICE)), &[]).await);
}

#[tokio::test]
async fn a_client_authenticates_only_the_way_it_is_registered() {
    let (app, keys, _server) = setup("").await;
    // A private_key_jwt client presenting a secret.
    let reply = is::token_request(&app, &[("grant_type", "client_credentials")], Some((RSA_SERVICE, "a-guess"))).await;
    assert_refused(&reply, "private_key_jwt");
    let reply = is::token_request(
        &app,
        &[("grant_type", "client_credentials"), ("client_id", RSA_SERVICE), ("client_secret", "a-guess")],
        None,
    )
    .await;
    assert_refused(&reply, "private_key_jwt");
    // A secret client presenting an assertion (signed by a key it never registered).
    let reply = client_credentials(&app, &keys.rs(Algorithm::RS256, &claims("test-service")), &[]).await;
    assert_refused(&reply, "not registered for private_key_jwt");
    // And the secret client still works with its secret.
    let reply =
        is::token_request(&app, &[("grant_type", "client_credentials")], Some(("test-service", SERVICE_SECRET))).await;
    access_token(&reply);
    // Two methods at once are one too many.
    let assertion = keys.rs(Algorithm::RS256, &claims(RSA_SERVICE));
    let reply = is::token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
            ("client_secret", "x"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", text(&reply));
    // An unknown assertion type.
    let reply = is::token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:other"),
            ("client_assertion", &assertion),
        ],
        None,
    )
    .await;
    assert_refused(&reply, "not supported");
}

#[tokio::test]
async fn failed_assertions_count_toward_the_client_authentication_limit() {
    let (app, keys, _server) = setup("[issuer]\nclient_secret_max_attempts = 3").await;
    let mut expired = claims(RSA_SERVICE);
    expired["exp"] = json!(now() - 600);
    for _ in 0..3 {
        assert_refused(&client_credentials(&app, &keys.rs(Algorithm::RS256, &expired), &[]).await, "expired");
    }
    let good = keys.rs(Algorithm::RS256, &claims(RSA_SERVICE));
    let reply = client_credentials(&app, &good, &[]).await;
    // Beyond the limit: 429 with Retry-After, still `invalid_client`, as for secrets.
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", text(&reply));
    assert_eq!(reply.json()["error"], "invalid_client");
    assert!(reply.header("retry-after").is_some());
}

#[tokio::test]
async fn revocation_and_introspection_accept_assertions() {
    let (app, keys, _server) = setup("").await;
    let token = access_token(&client_credentials(&app, &keys.rs(Algorithm::RS256, &claims(RSA_SERVICE)), &[]).await);
    let post = |path: &'static str, assertion: String| {
        let (app, token) = (app.clone(), token.clone());
        async move {
            let body = is::form(&[
                ("token", &token),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ]);
            let request =
                Request::post(path).header("content-type", "application/x-www-form-urlencoded").body(Body::from(body));
            send_as_is(&app, request.unwrap()).await
        }
    };
    let reply = post("/introspect", keys.rs(Algorithm::RS256, &claims(RSA_SERVICE))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    assert_eq!(reply.json()["active"], true);
    let reply = post("/revoke", keys.rs(Algorithm::RS256, &claims(RSA_SERVICE))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    let reply = post("/introspect", keys.rs(Algorithm::RS256, &claims(RSA_SERVICE))).await;
    assert_eq!(reply.json()["active"], false);
    let mut wrong = claims(RSA_SERVICE);
    wrong["aud"] = json!("https://elsewhere.example");
    assert_refused(&post("/introspect", keys.rs(Algorithm::RS256, &wrong)).await, "`aud`");
}

#[tokio::test]
async fn metadata_lists_private_key_jwt_with_the_accepted_algorithms() {
    let (app, _keys, _server) = setup("[issuer]\nclient_assertion_algorithms = [\"ES256\"]").await;
    let request = Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap();
    let metadata = send_as_is(&app, request).await.json();
    for endpoint in ["token", "revocation", "introspection"] {
        let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(methods.as_array().unwrap().contains(&json!("private_key_jwt")), "{endpoint}: {methods}");
        assert_eq!(metadata[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")], json!(["ES256"]));
    }
}

#[tokio::test]
async fn dynamic_registration_refuses_private_key_jwt_and_points_elsewhere() {
    let (app, _keys, _server) = setup("").await;
    let metadata = json!({
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": "https://app.example/jwks.json",
    });
    let request = Request::post("/register")
        .header("content-type", "application/json")
        .body(Body::from(metadata.to_string()))
        .unwrap();
    let reply = send_as_is(&app, request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", text(&reply));
    let body = reply.json();
    assert_eq!(body["error"], "invalid_client_metadata");
    assert!(body["error_description"].as_str().unwrap().contains("client ID metadata document"), "{body}");
}

#[test]
fn settings_refuse_a_private_key_jwt_client_without_keys_or_with_a_secret() {
    let base = "[[issuer.clients]]\nclient_id = \"svc\"\ngrant_types = [\"client_credentials\"]\nroles = [\"user\"]\n";
    let error =
        |extra: &str| mcp_auth_server::Settings::from_toml(&format!("{base}{extra}")).err().map(|e| e.to_string());
    let keyless = error("token_endpoint_auth_method = \"private_key_jwt\"\n").expect("refused");
    assert!(keyless.contains("exactly one of jwks"), "{keyless}");
    let both = error(
        "token_endpoint_auth_method = \"private_key_jwt\"\njwks_uri = \"https://a.example/j\"\nsecret_hash = \"x\"\n",
    )
    .expect("refused");
    assert!(both.contains("takes no secret_hash"), "{both}");
    let no_method = error("jwks_uri = \"https://a.example/j\"\n").expect("refused");
    assert!(no_method.contains("must be `private_key_jwt`"), "{no_method}");
    assert!(error("token_endpoint_auth_method = \"private_key_jwt\"\njwks_uri = \"https://a.example/j\"\n").is_none());
    let hmac = mcp_auth_server::Settings::from_toml("[issuer]\nclient_assertion_algorithms = [\"HS256\"]").err();
    assert!(hmac.is_some_and(|e| e.to_string().contains("never accepted")));
}
