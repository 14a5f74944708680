//! Several trusted issuers (`[[jwt.issuers]]`) and opaque tokens (RFC 7662 introspection),
//! against identity providers served by the test on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, Uri};
use axum::response::IntoResponse;
use common::tokens::{self, TokenBuilder};
use common::*;
use mcp_auth_server::Settings;
use mcp_auth_server::jwt::keyfile::Signer;
use serde_json::{Value, json};

const PUBLIC_URL: &str = "http://127.0.0.1:3000";
const RESOURCE: &str = "http://127.0.0.1:3000/mcp";

// ---------------------------------------------------------------------------------------------
// A test identity provider: discovery, a JWKS, an introspection endpoint; counts every request.

#[derive(Default)]
struct IdpState {
    hits: Mutex<HashMap<String, usize>>,
    /// Introspection answers by token; any other token is inactive.
    answers: Mutex<HashMap<String, Value>>,
    /// What the introspection endpoint received: (Authorization header, form body).
    introspected: Mutex<Vec<(String, String)>>,
    down: AtomicBool,
}

struct Idp {
    base: String,
    signer: Signer,
    state: Arc<IdpState>,
}

impl Idp {
    async fn start(name: &str) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let signer = tokens::rsa_signer(name);
        let state = Arc::new(IdpState::default());
        let discovery = json!({
            "issuer": base,
            "jwks_uri": format!("{base}/jwks"),
            "introspection_endpoint": format!("{base}/introspect"),
        });
        let jwks = json!({ "keys": [signer.public().jwk("RS256")] });
        let shared = state.clone();
        let router = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
            let (state, discovery, jwks) = (shared.clone(), discovery.clone(), jwks.clone());
            async move {
                let path = uri.path().to_owned();
                *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                if state.down.load(Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                match path.as_str() {
                    "/.well-known/openid-configuration" => axum::Json(discovery).into_response(),
                    "/jwks" => axum::Json(jwks).into_response(),
                    "/introspect" => {
                        let authorization =
                            headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                        state.introspected.lock().unwrap().push((authorization, body.clone()));
                        // Held open a moment (paused clock: until every other task waits), so
                        // that concurrent requests overlap.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        let token = url::form_urlencoded::parse(body.as_bytes())
                            .find(|(k, _)| k == "token")
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default();
                        let answer = state.answers.lock().unwrap().get(&token).cloned();
                        axum::Json(answer.unwrap_or(json!({ "active": false }))).into_response()
                    }
                    _ => StatusCode::NOT_FOUND.into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Idp { base, signer, state }
    }

    fn hits(&self, path: &str) -> usize {
        self.state.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// A token of this issuer for the test server, signed with its own key.
    fn token(&self) -> TokenBuilder<'_> {
        TokenBuilder::new().issuer(&self.base).signed_with(&self.signer)
    }

    fn answer(&self, token: &str, answer: Value) {
        self.state.answers.lock().unwrap().insert(token.to_owned(), answer);
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

fn settings(layer: &str) -> Settings {
    Settings::from_toml_layers(&[
        TEST_LAYER,
        &auth_settings(),
        &format!(
            "[server]\npublic_url = \"{PUBLIC_URL}\"\n[jwt]\nmin_refresh_interval_secs = 0\nstartup_timeout_secs = 0\n"
        ),
        layer,
    ])
    .unwrap()
}

/// `[[jwt.issuers]]` for `a` (discovery, default role claims) and `b` (its JWKS URL, roles in
/// `groups`).
fn two_issuers(a: &Idp, b: &Idp) -> String {
    format!(
        "[[jwt.issuers]]\nissuer = \"{}\"\n[[jwt.issuers]]\nissuer = \"{}\"\njwks_url = \"{}/jwks\"\nrole_claims = [\"groups\"]\n",
        a.base, b.base, b.base
    )
}

/// `whoami` as the caller with `token`.
async fn whoami(app: &Router, token: &str) -> Reply {
    let mut request = modern(1, "tools/call", json!({ "name": "whoami" }));
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    send_as_is(app, request).await
}

fn assert_invalid_token(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", String::from_utf8_lossy(&reply.body));
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains(reason), "expected {reason:?} in {challenge}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
}

fn seen(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["result"]["structuredContent"].clone()
}

// ---------------------------------------------------------------------------------------------
// Several issuers

#[tokio::test]
async fn tokens_from_each_trusted_issuer_are_accepted_with_that_issuers_role_claims() {
    let (a, b) = (Idp::start("idp-a").await, Idp::start("idp-b").await);
    let app = app_with(&settings(&two_issuers(&a, &b))).await;

    let from_a = a.token().subject("ann").roles(&["admin"]).claim("groups", json!(["ignored"])).build();
    let who = seen(&whoami(&app, &from_a).await);
    assert_eq!((who["subject"].as_str(), who["issuer"].as_str()), (Some("ann"), Some(a.base.as_str())));
    assert_eq!(who["roles"], json!(["admin"]), "a's role claims are the [jwt] default");

    let from_b = b.token().subject("bob").roles(&["ignored"]).claim("groups", json!(["ops"])).build();
    let who = seen(&whoami(&app, &from_b).await);
    assert_eq!((who["subject"].as_str(), who["issuer"].as_str()), (Some("bob"), Some(b.base.as_str())));
    assert_eq!(who["roles"], json!(["ops"]), "b's own role claims");

    // Each issuer's keys were fetched once (a's found by discovery; its metadata is also read
    // once more, for the RFC 8414 mirror of the first issuer), and cached tokens fetch nothing.
    let before = (a.total_hits(), b.total_hits());
    seen(&whoami(&app, &from_a).await);
    seen(&whoami(&app, &from_b).await);
    assert_eq!((a.total_hits(), b.total_hits()), before);
    assert_eq!((a.hits("/.well-known/openid-configuration"), a.hits("/jwks")), (2, 1));
    assert_eq!((b.hits("/.well-known/openid-configuration"), b.hits("/jwks")), (0, 1));
}

#[tokio::test]
async fn a_token_naming_one_issuer_but_signed_with_the_others_key_is_refused() {
    let (a, b) = (Idp::start("idp-a2").await, Idp::start("idp-b2").await);
    let app = app_with(&settings(&two_issuers(&a, &b))).await;
    // Claims a's `iss`, signed with b's key (whose kid b publishes): checked with a's keys only.
    let forged = TokenBuilder::new().issuer(&a.base).signed_with(&b.signer).build();
    assert_invalid_token(&whoami(&app, &forged).await, "unknown signing key");
    // The same with a's kid in the header: a's key, b's signature.
    let a_kid = a.signer.kid().to_owned();
    let forged_kid = {
        let header =
            jsonwebtoken::Header { kid: Some(a_kid), ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256) };
        let b_token = TokenBuilder::new().issuer(&a.base).signed_with(&b.signer).build();
        // Swap the header: the signature no longer covers it, which is the point.
        let (_, rest) = b_token.split_once('.').unwrap();
        let encoded = base64_url(&serde_json::to_vec(&header).unwrap());
        format!("{encoded}.{rest}")
    };
    assert_invalid_token(&whoami(&app, &forged_kid).await, "invalid signature");
    // b's genuine token still works, and a's key set was never used for it.
    seen(&whoami(&app, &b.token().build()).await);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_token_from_an_issuer_not_listed_is_refused_at_once_without_any_fetch() {
    let (a, b, stranger) = (Idp::start("idp-a3").await, Idp::start("idp-b3").await, Idp::start("idp-c3").await);
    let app = app_with(&settings(&two_issuers(&a, &b))).await;
    let before = (a.total_hits(), b.total_hits());
    for token in [
        stranger.token().build(),
        // The local test key pair is not trusted when only external issuers are listed.
        TokenBuilder::new().build(),
    ] {
        assert_invalid_token(&whoami(&app, &token).await, "wrong issuer");
    }
    assert_eq!((a.total_hits(), b.total_hits()), before, "no fetch at a trusted issuer");
    assert_eq!(stranger.total_hits(), 0, "nor at the one named in the token");
}

#[tokio::test]
async fn the_protected_resource_metadata_lists_every_authorization_server() {
    let (a, b) = (Idp::start("idp-a4").await, Idp::start("idp-b4").await);
    let app = app_with(&settings(&two_issuers(&a, &b))).await;
    let request = Request::get("/.well-known/oauth-protected-resource/mcp").body(Body::empty()).unwrap();
    let document = send_as_is(&app, request).await.json();
    assert_eq!(document["authorization_servers"], json!([a.base, b.base]));
    assert_eq!(document["resource"], RESOURCE);
    // /health reports each issuer's keys.
    let health = send_as_is(&app, Request::get("/health").body(Body::empty()).unwrap()).await.json();
    let issuers = health["jwt"]["issuers"].as_array().expect("per-issuer reports");
    assert_eq!(issuers.len(), 2, "{health}");
    assert_eq!(
        (issuers[0]["issuer"].as_str(), issuers[0]["source"].as_str()),
        (Some(a.base.as_str()), Some("discovery"))
    );
    assert_eq!(
        (issuers[1]["issuer"].as_str(), issuers[1]["source"].as_str()),
        (Some(b.base.as_str()), Some("jwks_url"))
    );
    assert_eq!(issuers[1]["keys"], 1);
}

#[tokio::test]
async fn local_keys_stay_trusted_beside_external_issuers_when_an_entry_names_this_server() {
    let a = Idp::start("idp-a5").await;
    let layer = format!("[[jwt.issuers]]\nissuer = \"{PUBLIC_URL}\"\n[[jwt.issuers]]\nissuer = \"{}\"\n", a.base);
    let app = app_with(&settings(&layer)).await;
    let local = TokenBuilder::new().subject("local-user").build();
    assert_eq!(seen(&whoami(&app, &local).await)["issuer"], PUBLIC_URL);
    assert_eq!(seen(&whoami(&app, &a.token().build()).await)["issuer"], a.base);
    // A token naming this server but signed by a's key is refused.
    let forged = TokenBuilder::new().signed_with(&a.signer).build();
    assert_eq!(whoami(&app, &forged).await.status, StatusCode::UNAUTHORIZED);
    let document = send_as_is(&app, Request::get("/.well-known/oauth-protected-resource").body(Body::empty()).unwrap())
        .await
        .json();
    assert_eq!(document["authorization_servers"], json!([PUBLIC_URL, a.base]));
}

/// With local keys beside a listed issuer the verifier accepts both at `/mcp`, but the embedded
/// issuer's `/introspect` describes only its own tokens: another issuer's live JWT is inactive
/// there (and so cannot be revoked there either).
#[cfg(feature = "issuer")]
#[tokio::test]
async fn the_embedded_issuer_introspects_only_its_own_tokens_beside_other_issuers() {
    use base64::Engine;
    let a = Idp::start("idp-a6").await;
    let layer = format!(
        "{}\n[[jwt.issuers]]\nissuer = \"{PUBLIC_URL}\"\n[[jwt.issuers]]\nissuer = \"{}\"\n",
        common::issuer::accounts_layer(),
        a.base
    );
    let app = app_with(&settings(&layer)).await;
    let introspect = |token: String| {
        let app = app.clone();
        async move {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("test-service:{}", common::issuer::SERVICE_SECRET));
            let request = Request::post("/introspect")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", format!("Basic {basic}"))
                .body(Body::from(common::issuer::form(&[("token", &token)])))
                .unwrap();
            let reply = send_as_is(&app, request).await;
            assert_eq!(reply.status, StatusCode::OK);
            reply.json()["active"].clone()
        }
    };
    let foreign = a.token().build();
    assert_eq!(seen(&whoami(&app, &foreign).await)["issuer"], a.base, "a's token is good at /mcp");
    assert_eq!(introspect(foreign).await, json!(false), "but not this issuer's to describe");
    let own = TokenBuilder::new().subject("local-user").build();
    assert_eq!(introspect(own).await, json!(true));
}

#[tokio::test]
async fn the_short_form_alone_still_means_the_local_keys_and_one_issuer() {
    let app = app_with(&settings("")).await;
    assert_eq!(seen(&whoami(&app, &TokenBuilder::new().build()).await)["issuer"], PUBLIC_URL);
    let health = send_as_is(&app, Request::get("/health").body(Body::empty()).unwrap()).await.json();
    assert_eq!(health["jwt"]["source"], "local", "one issuer: its report is the section, as before");
    assert_eq!(health["jwt"]["issuers"].as_array().map(Vec::len), Some(1));
}

#[test]
fn issuer_lists_are_checked_at_start_up_with_errors_naming_the_setting() {
    let refused =
        |layer: &str| Settings::from_toml_layers(&[TEST_LAYER, &auth_settings(), layer]).expect_err(layer).to_string();
    let err =
        refused("[[jwt.issuers]]\nissuer = \"https://a.example\"\n[[jwt.issuers]]\nissuer = \"https://a.example\"\n");
    assert!(err.contains("jwt.issuers[1].issuer") && err.contains("listed twice"), "{err}");
    let err = refused("[jwt]\nissuer = \"https://a.example\"\n[[jwt.issuers]]\nissuer = \"https://a.example\"\n");
    assert!(err.contains("jwt.issuers[0].issuer") && err.contains("jwt.issuer already"), "{err}");
    let err = refused("[[jwt.issuers]]\nissuer = \"https://a.example\"\nalgorithms = [\"HS256\"]\n");
    assert!(err.contains("HS256") && err.contains("never accepted"), "{err}");
    let err = refused("[[jwt.issuers]]\njwks_url = \"https://a.example/jwks\"\n");
    assert!(err.contains("issuer"), "{err}");
    let err = refused("[[jwt.issuers]]\nissuer = \"not a url\"\n");
    assert!(err.contains("jwt.issuers[0].issuer"), "{err}");
    let err = refused("[[jwt.issuers]]\nissuer = \"https://a.example\"\nintrospection_url = \"https://a.example/i\"\n");
    assert!(err.contains("client_id and client_secret"), "{err}");
    let err = refused("[[jwt.issuers]]\nissuer = \"https://a.example\"\nclient_id = \"x\"\n");
    assert!(err.contains("set introspection_url too"), "{err}");
    let two = "[[jwt.issuers]]\nissuer = \"https://a.example\"\nintrospection_url = \"https://a.example/i\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
               [[jwt.issuers]]\nissuer = \"https://b.example\"\nintrospection_url = \"https://b.example/i\"\nclient_id = \"x\"\nclient_secret = \"y\"\n";
    let err = refused(two);
    assert!(err.contains("jwt.issuers[1].introspection_url") && err.contains("only one issuer"), "{err}");
    let err = refused(&format!(
        "[[jwt.issuers]]\nissuer = \"{PUBLIC_URL}\"\njwks_url = \"https://x.example/jwks\"\n[server]\npublic_url = \"{PUBLIC_URL}\"\n"
    ));
    assert!(err.contains("local keys"), "{err}");
    let err = refused("[[jwt.issuers]]\nissuer = \"https://a.example\"\nunknown = 1\n");
    assert!(err.contains("unknown"), "{err}");

    // Both forms naming different issuers is fine: two trusted issuers.
    let both = Settings::from_toml_layers(&[
        TEST_LAYER,
        "[jwt]\nissuer = \"https://a.example\"\n[[jwt.issuers]]\nissuer = \"https://b.example\"\n",
    ])
    .unwrap();
    let names: Vec<String> = both.jwt.trusted_issuers(&both.server.public_url).into_iter().map(|t| t.issuer).collect();
    assert_eq!(names, ["https://a.example", "https://b.example"]);
}

#[test]
fn an_introspection_client_secret_never_shows_in_debug_output_or_the_effective_settings() {
    let settings = Settings::from_toml_layers(&[
        TEST_LAYER,
        "[[jwt.issuers]]\nissuer = \"https://a.example\"\nintrospection_url = \"https://a.example/i\"\nclient_id = \"x\"\nclient_secret = \"hunter2-secret\"\n",
    ])
    .unwrap();
    assert!(!format!("{settings:?}").contains("hunter2-secret"));
    let effective = settings.to_toml();
    assert!(!effective.contains("hunter2-secret") && effective.contains("[redacted]"), "{effective}");
}

// ---------------------------------------------------------------------------------------------
// Opaque tokens

/// An introspection-only issuer (no keys) at `idp`, with `extra` settings.
fn introspecting(idp: &Idp, extra: &str) -> Settings {
    settings(&format!(
        "[jwt]\nintrospection_cache_secs = 300\nintrospection_negative_cache_secs = 10\n{extra}\n\
         [[jwt.issuers]]\nissuer = \"{0}\"\nintrospection_url = \"{0}/introspect\"\nclient_id = \"mcp server\"\nclient_secret = \"s3cr:t\"\nrole_claims = [\"groups\"]\n",
        idp.base
    ))
}

fn active(sub: &str) -> Value {
    json!({
        "active": true, "sub": sub, "scope": "mcp:read mcp:tools", "groups": ["ops"],
        "exp": tokens::now() + 3600, "client_id": "cli", "aud": RESOURCE,
    })
}

#[tokio::test]
async fn an_opaque_token_is_introspected_with_client_credentials_and_becomes_the_principal() {
    let idp = Idp::start("opaque-1").await;
    let app = app_with(&introspecting(&idp, "")).await;
    idp.answer("opaque-token-1", active("olga"));
    let who = seen(&whoami(&app, "opaque-token-1").await);
    assert_eq!((who["subject"].as_str(), who["issuer"].as_str()), (Some("olga"), Some(idp.base.as_str())));
    assert_eq!(who["roles"], json!(["ops"]));
    let sent = idp.state.introspected.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    // client_secret_basic: id and secret form-encoded, then base64.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("mcp+server:s3cr%3At");
    assert_eq!(sent[0].0, format!("Basic {basic}"));
    let form: HashMap<String, String> = url::form_urlencoded::parse(sent[0].1.as_bytes()).into_owned().collect();
    assert_eq!(form.get("token").map(String::as_str), Some("opaque-token-1"));
    assert_eq!(form.get("token_type_hint").map(String::as_str), Some("access_token"));

    // Repeated calls use the cached answer.
    for _ in 0..3 {
        seen(&whoami(&app, "opaque-token-1").await);
    }
    assert_eq!(idp.hits("/introspect"), 1);
}

#[tokio::test]
async fn inactive_expired_and_foreign_answers_are_refused_with_the_usual_challenge() {
    let idp = Idp::start("opaque-2").await;
    let app = app_with(&introspecting(&idp, "")).await;
    assert_invalid_token(&whoami(&app, "never-issued").await, "token not active");
    let mut expired = active("e");
    expired["exp"] = json!(tokens::now() - 3600);
    idp.answer("expired", expired);
    assert_invalid_token(&whoami(&app, "expired").await, "token expired");
    let mut other_audience = active("o");
    other_audience["aud"] = json!("https://elsewhere.example/api");
    idp.answer("other-audience", other_audience);
    assert_invalid_token(&whoami(&app, "other-audience").await, "not issued for this resource");
    let mut other_issuer = active("i");
    other_issuer["iss"] = json!("https://elsewhere.example");
    idp.answer("other-issuer", other_issuer);
    assert_invalid_token(&whoami(&app, "other-issuer").await, "wrong issuer");
    // A JWT of an unknown issuer is not sent to the introspection endpoint.
    let before = idp.hits("/introspect");
    assert_invalid_token(&whoami(&app, &TokenBuilder::new().issuer("https://x.example").build()).await, "wrong issuer");
    assert_eq!(idp.hits("/introspect"), before);
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_with_one_opaque_token_share_one_introspection() {
    let idp = Idp::start("opaque-3").await;
    let app = app_with(&introspecting(&idp, "")).await;
    idp.answer("shared-token", active("sam"));
    let calls = (0..16).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { whoami(&app, "shared-token").await.status })
    });
    for status in futures_util::future::join_all(calls).await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(idp.hits("/introspect"), 1);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_remembered_briefly_and_active_answers_until_the_bound() {
    let idp = Idp::start("opaque-4").await;
    let app = app_with(&introspecting(&idp, "")).await;
    assert_invalid_token(&whoami(&app, "unknown").await, "token not active");
    assert_invalid_token(&whoami(&app, "unknown").await, "token not active");
    assert_eq!(idp.hits("/introspect"), 1, "the refusal is cached");
    tokio::time::advance(Duration::from_secs(11)).await;
    // Issued meanwhile: after the negative cache lapsed it is asked again, and accepted.
    idp.answer("unknown", active("late"));
    assert_eq!(seen(&whoami(&app, "unknown").await)["subject"], "late");
    assert_eq!(idp.hits("/introspect"), 2);
    // Revoked at the provider: the active answer is reused until introspection_cache_secs.
    idp.answer("unknown", json!({ "active": false }));
    tokio::time::advance(Duration::from_secs(290)).await;
    assert_eq!(whoami(&app, "unknown").await.status, StatusCode::OK);
    assert_eq!(idp.hits("/introspect"), 2);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_invalid_token(&whoami(&app, "unknown").await, "token not active");
    assert_eq!(idp.hits("/introspect"), 3);
}

#[tokio::test]
async fn an_introspection_endpoint_that_fails_refuses_the_token_with_503_and_is_asked_again() {
    let idp = Idp::start("opaque-5").await;
    let app = app_with(&introspecting(&idp, "")).await;
    idp.answer("good-token", active("gus"));
    idp.set_down(true);
    let reply = whoami(&app, "good-token").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(whoami(&app, "good-token").await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(idp.hits("/introspect"), 2, "an outage is not cached");
    idp.set_down(false);
    assert_eq!(seen(&whoami(&app, "good-token").await)["subject"], "gus");
}

#[tokio::test]
async fn an_unreachable_introspection_endpoint_fails_closed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let layer = format!(
        "[[jwt.issuers]]\nissuer = \"{base}\"\nintrospection_url = \"{base}/introspect\"\nclient_id = \"c\"\nclient_secret = \"s\"\n"
    );
    let app = app_with(&settings(&layer)).await;
    assert_eq!(whoami(&app, "any-opaque-token").await.status, StatusCode::SERVICE_UNAVAILABLE);
    // Without an introspecting issuer an opaque token is simply malformed (401).
    let a = Idp::start("opaque-6").await;
    let app = app_with(&settings(&format!("[[jwt.issuers]]\nissuer = \"{}\"\n", a.base))).await;
    assert_invalid_token(&whoami(&app, "any-opaque-token").await, "not a JWT");
}
