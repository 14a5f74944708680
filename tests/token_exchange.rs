//! Token exchange for tools (RFC 8693; features `issuer` and `tools`): a tool calls a downstream
//! API on loopback with a token exchanged for the caller's, at the embedded issuer (in-process)
//! or at an external issuer's token endpoint; the caller's own token never reaches the API.
//! Also the embedded issuer's token-exchange grant at `/token`, for other confidential clients.

mod common;

#[path = "../examples/downstream_tool.rs"]
#[allow(dead_code)]
mod example;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use common::downstream::{DownstreamApi, Expect, FakeAnswers, FakeIssuer, spawn_api, spawn_issuer};
use common::issuer::{ISSUER, RESOURCE, SERVICE_SECRET, claims, token_request};
use common::tokens::{TokenBuilder, local_keys};
use common::{modern, send_as_is};
use example::DownstreamProfile;
use mcp_auth_server::AppBuilder;
use mcp_auth_server::tools::{self, CallToolResult, JsonSchema, ToolInfo, tool_fn};
use serde::Deserialize;
use serde_json::{Value, json};

const PROFILE: &str = "https://profile.example";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGER_SECRET: &str = "exchanger-test-secret";

/// Arguments of the test's `exchange_probe` tool.
#[derive(Deserialize, JsonSchema)]
struct ProbeArgs {
    audience: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// The example's tool against `api`, and `exchange_probe`, which asks for any audience and
/// scopes and tells what it got (never the token itself).
fn registry(api: &DownstreamApi) -> tools::Registry {
    let profile = DownstreamProfile { api: api.base.clone(), audience: PROFILE.into(), http: reqwest::Client::new() };
    let probe =
        tool_fn(ToolInfo::new("exchange_probe", "Asks for a downstream token."), |ctx, args: ProbeArgs| async move {
            let scopes: Vec<&str> = args.scopes.iter().map(String::as_str).collect();
            let token = ctx.downstream_token(&args.audience, &scopes).await?;
            Ok(CallToolResult::structured(json!({ "audience": &*token.audience, "scopes": &*token.scopes })))
        });
    tools::builtin().tool(profile).tool(probe)
}

/// The embedded issuer's settings: the test accounts, downstream audience `PROFILE`, and a
/// confidential client `exchanger` allowed the grant.
fn embedded_layer(audiences: &str) -> String {
    let hash = mcp_auth_server::issuer::hash_password(EXCHANGER_SECRET);
    format!(
        r#"
[issuer]
token_exchange_audiences = {audiences}

[[issuer.clients]]
client_id = "exchanger"
secret_hash = "{hash}"
grant_types = ["{EXCHANGE_GRANT}"]
"#
    )
}

async fn embedded_app(api: &DownstreamApi) -> Router {
    let settings = common::issuer::settings(&embedded_layer(&format!("[\"{PROFILE}\"]")));
    AppBuilder::new(settings).registry(registry(api)).build().await.expect("app builds")
}

/// The API expecting tokens of the embedded issuer for alice, exchanged by this server.
async fn embedded_api() -> DownstreamApi {
    spawn_api(Expect {
        issuer: ISSUER.into(),
        audience: PROFILE.into(),
        subject: "alice".into(),
        actor: RESOURCE.into(),
        jwks: local_keys().key_set().jwks(),
    })
    .await
}

/// alice's token for this server, with the profile scope.
fn user_token() -> String {
    TokenBuilder::new().scopes(&["mcp:read", "mcp:tools", "profile:read"]).build()
}

/// Calls `name` with `arguments` as the holder of `token`; the JSON-RPC result.
async fn call_tool(app: &Router, token: &str, name: &str, arguments: Value) -> Value {
    let mut request = modern(1, "tools/call", json!({ "name": name, "arguments": arguments }));
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let reply = send_as_is(app, request).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.rpc()["result"].clone()
}

fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected a tool error: {result}");
    result["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_tool_calls_the_downstream_api_with_an_exchanged_token_never_the_callers() {
    let api = embedded_api().await;
    let app = embedded_app(&api).await;
    let token = user_token();

    let result = call_tool(&app, &token, "downstream_profile", json!({})).await;
    assert_ne!(result["isError"], true, "{result}");
    let profile = &result["structuredContent"];
    assert_eq!(profile["sub"], "alice");
    assert_eq!(profile["aud"], PROFILE);
    assert_eq!(profile["act"], json!({ "sub": RESOURCE }));
    assert_eq!(profile["scope"], "profile:read");

    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].starts_with("Bearer "));
    assert!(!seen[0].contains(&token), "the caller's token reached the downstream API");
    let exchanged = claims(seen[0].trim_start_matches("Bearer "));
    assert!(exchanged["exp"].as_i64().unwrap() <= claims(&token)["exp"].as_i64().unwrap());
    assert_eq!(exchanged["client_id"], RESOURCE);
}

#[tokio::test]
async fn a_second_call_reuses_the_cached_token_and_other_scopes_get_their_own() {
    let api = embedded_api().await;
    let app = embedded_app(&api).await;
    let token = user_token();
    for _ in 0..2 {
        let result = call_tool(&app, &token, "downstream_profile", json!({})).await;
        assert_ne!(result["isError"], true, "{result}");
    }
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    // One exchange: the same downstream token both times (each exchange has a new `jti`).
    assert_eq!(seen[0], seen[1]);
    assert!(seen.iter().all(|header| !header.contains(&token)));

    // The probe with other scopes is another key: a token with those scopes.
    let probe = call_tool(&app, &token, "exchange_probe", json!({ "audience": PROFILE, "scopes": ["mcp:read"] })).await;
    assert_eq!(probe["structuredContent"]["scopes"], json!(["mcp:read"]), "{probe}");
}

#[tokio::test]
async fn an_audience_not_configured_is_refused_without_an_exchange() {
    let api = embedded_api().await;
    let app = embedded_app(&api).await;
    let result =
        call_tool(&app, &user_token(), "exchange_probe", json!({ "audience": "https://elsewhere.example" })).await;
    assert!(error_text(&result).contains("not allowed"), "{result}");
    assert!(api.seen().is_empty());
}

#[tokio::test]
async fn scopes_beyond_the_callers_are_refused_with_invalid_scope() {
    let api = embedded_api().await;
    let app = embedded_app(&api).await;
    let token = TokenBuilder::new().scopes(&["mcp:read", "mcp:tools"]).build();
    let result = call_tool(&app, &token, "downstream_profile", json!({})).await;
    assert!(error_text(&result).contains("invalid_scope"), "{result}");
    assert!(api.seen().is_empty(), "nothing reaches the API without a token");
}

#[tokio::test]
async fn without_token_exchange_configured_a_tool_gets_a_clear_error() {
    let api = embedded_api().await;
    let settings = common::issuer::settings("");
    let app = AppBuilder::new(settings).registry(registry(&api)).build().await.unwrap();
    let result = call_tool(&app, &user_token(), "downstream_profile", json!({})).await;
    assert!(error_text(&result).contains("not configured"), "{result}");
    assert!(api.seen().is_empty());
}

/// `/token` with the token-exchange grant, as `client` (Basic credentials).
async fn exchange_at_token(app: &Router, client: (&str, &str), subject: &str, extra: &[(&str, &str)]) -> common::Reply {
    let mut fields =
        vec![("grant_type", EXCHANGE_GRANT), ("subject_token", subject), ("subject_token_type", ACCESS_TOKEN_TYPE)];
    fields.extend_from_slice(extra);
    token_request(app, &fields, Some(client)).await
}

#[tokio::test]
async fn the_embedded_grant_issues_a_token_for_the_audience_naming_the_client_as_actor() {
    let api = embedded_api().await;
    let app = embedded_app(&api).await;
    let token = user_token();
    let reply = exchange_at_token(
        &app,
        ("exchanger", EXCHANGER_SECRET),
        &token,
        &[("audience", PROFILE), ("scope", "profile:read"), ("requested_token_type", ACCESS_TOKEN_TYPE)],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let body = reply.json();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let issued = claims(body["access_token"].as_str().unwrap());
    assert_eq!(issued["aud"], PROFILE);
    assert_eq!(issued["sub"], "alice");
    assert_eq!(issued["act"], json!({ "sub": "exchanger" }));
    assert_eq!(issued["client_id"], "exchanger");
    assert_eq!(issued["scope"], "profile:read");

    // The exchanged token is not for this server: /mcp refuses it.
    let mut request = modern(1, "tools/list", json!({}));
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    request.headers_mut().insert("authorization", bearer.parse().unwrap());
    assert_eq!(send_as_is(&app, request).await.status, 401);
}

#[tokio::test]
async fn the_embedded_grant_refuses_bad_requests_with_the_rfc_errors() {
    let api = embedded_api().await;
    let app = embedded_app(&api).await;
    let token = user_token();
    let exchanger = ("exchanger", EXCHANGER_SECRET);
    // (case, client, subject token, extra fields, expected error)
    type Case<'a> = (&'a str, (&'a str, &'a str), String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unknown audience",
            exchanger,
            token.clone(),
            vec![("audience", "https://elsewhere.example")],
            "invalid_target",
        ),
        ("no audience", exchanger, token.clone(), vec![], "invalid_request"),
        (
            "scope beyond the subject's",
            exchanger,
            token.clone(),
            vec![("audience", PROFILE), ("scope", "admin")],
            "invalid_scope",
        ),
        (
            "expired subject",
            exchanger,
            TokenBuilder::new().expired().build(),
            vec![("audience", PROFILE)],
            "invalid_grant",
        ),
        (
            "subject of another issuer",
            exchanger,
            TokenBuilder::new().issuer("https://other.example").build(),
            vec![("audience", PROFILE)],
            "invalid_grant",
        ),
        (
            "a refresh token type",
            exchanger,
            token.clone(),
            vec![("audience", PROFILE), ("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")],
            "invalid_request",
        ),
        (
            "client without the grant",
            ("test-service", SERVICE_SECRET),
            token.clone(),
            vec![("audience", PROFILE)],
            "unauthorized_client",
        ),
    ];
    for (case, client, subject, extra, error) in cases {
        let reply = exchange_at_token(&app, client, &subject, &extra).await;
        assert_eq!(reply.json()["error"], error, "{case}: {}", String::from_utf8_lossy(&reply.body));
        assert!(reply.json().get("access_token").is_none(), "{case}");
    }
}

#[tokio::test]
async fn a_revoked_subject_token_is_not_exchanged() {
    let api = embedded_api().await;
    let settings = common::issuer::settings(&format!(
        "{}\n[[issuer.clients]]\nclient_id = \"both\"\nsecret_hash = \"{}\"\ngrant_types = [\"client_credentials\", \"{EXCHANGE_GRANT}\"]\nroles = [\"user\"]\n",
        embedded_layer(&format!("[\"{PROFILE}\"]")),
        mcp_auth_server::issuer::hash_password(EXCHANGER_SECRET),
    ));
    let app = AppBuilder::new(settings).registry(registry(&api)).build().await.unwrap();
    let credentials = ("both", EXCHANGER_SECRET);
    let issued = token_request(&app, &[("grant_type", "client_credentials")], Some(credentials)).await;
    assert_eq!(issued.status, 200, "{}", String::from_utf8_lossy(&issued.body));
    let subject = issued.json()["access_token"].as_str().unwrap().to_owned();
    let before = exchange_at_token(&app, credentials, &subject, &[("audience", PROFILE)]).await;
    assert_eq!(before.status, 200, "{}", String::from_utf8_lossy(&before.body));

    let body = common::issuer::form(&[("token", &subject)]);
    let basic = base64_basic(credentials);
    let request = Request::post("/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic)
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send_as_is(&app, request).await.status, 200);

    let after = exchange_at_token(&app, credentials, &subject, &[("audience", PROFILE)]).await;
    assert_eq!(after.json()["error"], "invalid_grant", "{}", String::from_utf8_lossy(&after.body));
}

fn base64_basic((id, secret): (&str, &str)) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

#[tokio::test]
async fn the_metadata_advertises_the_grant_only_when_configured() {
    let api = embedded_api().await;
    let grants = |app: Router| async move {
        let request = Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap();
        send_as_is(&app, request).await.json()["grant_types_supported"].clone()
    };
    let with = grants(embedded_app(&api).await).await;
    assert!(with.as_array().unwrap().contains(&json!(EXCHANGE_GRANT)), "{with}");
    let without = grants(common::issuer::app("").await).await;
    assert!(!without.as_array().unwrap().contains(&json!(EXCHANGE_GRANT)), "{without}");
}

#[test]
fn settings_that_cannot_work_are_refused_at_start_up() {
    let load = |layer: &str| {
        mcp_auth_server::Settings::from_toml_layers(&[common::TEST_LAYER, &common::auth_settings(), layer])
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = load(&format!("[issuer]\ntoken_exchange_audiences = [\"{RESOURCE}\"]")).unwrap_err();
    assert!(err.contains("issuer.token_exchange_audiences"), "{err}");
    let entry = |issuer: &str, extra: &str| {
        format!(
            "[jwt]\nissuer = \"https://idp.example\"\n[[token_exchange.issuers]]\nissuer = \"{issuer}\"\nclient_id = \"mcp\"\nclient_secret = \"s\"\naudiences = [\"{PROFILE}\"]\n{extra}"
        )
    };
    assert!(load(&entry("https://idp.example", "")).is_ok());
    let err = load(&entry("https://unknown.example", "")).unwrap_err();
    assert!(err.contains("not an issuer whose tokens this server accepts"), "{err}");
    let err = load(&entry("https://idp.example", "token_endpoint = \"not a url\"")).unwrap_err();
    assert!(err.contains("token_endpoint"), "{err}");
    let err =
        load(&entry("https://idp.example", "").replace("client_secret = \"s\"", "client_secret = \"\"")).unwrap_err();
    assert!(err.contains("client_secret"), "{err}");
    let err = load(&entry("https://idp.example", "").replace(&format!("[\"{PROFILE}\"]"), "[]")).unwrap_err();
    assert!(err.contains("audiences"), "{err}");
    // An issuer listed in [[jwt.issuers]] may be exchanged at; one not listed may not.
    let listed = |issuer: &str| {
        entry(issuer, "").replace(
            "[jwt]\nissuer = \"https://idp.example\"\n",
            "[[jwt.issuers]]\nissuer = \"https://a.example\"\n[[jwt.issuers]]\nissuer = \"https://b.example\"\n",
        )
    };
    assert!(load(&listed("https://b.example")).is_ok(), "{:?}", load(&listed("https://b.example")));
    let err = load(&listed("https://idp.example")).unwrap_err();
    assert!(err.contains("https://a.example, https://b.example"), "{err}");
    let public = format!(
        "[[issuer.clients]]\nclient_id = \"pub\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\ngrant_types = [\"authorization_code\", \"{EXCHANGE_GRANT}\"]\n"
    );
    let err = load(&public).unwrap_err();
    assert!(err.contains("confidential"), "{err}");
}

#[test]
fn the_client_secret_is_never_printed() {
    let settings = mcp_auth_server::Settings::from_toml_layers(&[
        common::TEST_LAYER,
        &common::auth_settings(),
        &format!(
            "[jwt]\nissuer = \"https://idp.example\"\n[[token_exchange.issuers]]\nissuer = \"https://idp.example\"\nclient_id = \"mcp\"\nclient_secret = \"very-secret-value\"\naudiences = [\"{PROFILE}\"]\n"
        ),
    ])
    .unwrap();
    assert!(!format!("{settings:?}").contains("very-secret-value"));
    assert!(!toml::to_string(&settings).unwrap().contains("very-secret-value"));
}

// ---- An external exchanging issuer (no embedded issuer): the resource server's side. ----

/// This server trusting `idp` and exchanging its tokens there (discovered token endpoint unless
/// `endpoint` is given), for `PROFILE`.
async fn external_app(idp: &FakeIssuer, api: &DownstreamApi, endpoint: Option<&str>) -> Router {
    let endpoint = endpoint.map(|e| format!("token_endpoint = \"{e}\"\n")).unwrap_or_default();
    let layer = format!(
        "[jwt]\nissuer = \"{base}\"\n[[token_exchange.issuers]]\nissuer = \"{base}\"\n{endpoint}client_id = \"mcp server\"\nclient_secret = \"s3cret:x\"\naudiences = [\"{PROFILE}\"]\ncache_margin_secs = 30\n",
        base = idp.base
    );
    let settings = common::test_settings_with(&layer);
    AppBuilder::new(settings).registry(registry(api)).build().await.expect("app builds")
}

fn external_token(idp: &FakeIssuer, scopes: &[&str]) -> String {
    TokenBuilder::new().issuer(&idp.base).scopes(scopes).build()
}

/// A downstream API that takes the fake issuer's opaque tokens as they come (it only records).
async fn recording_api() -> DownstreamApi {
    spawn_api(Expect {
        issuer: String::new(),
        audience: String::new(),
        subject: String::new(),
        actor: String::new(),
        jwks: json!({ "keys": [] }),
    })
    .await
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn an_external_issuer_is_asked_once_per_key_with_an_rfc_8693_request() {
    let idp = spawn_issuer(local_keys().key_set().jwks(), FakeAnswers { expires_in: 300 }).await;
    let api = recording_api().await;
    let app = external_app(&idp, &api, None).await;
    let token = external_token(&idp, &["mcp:read", "mcp:tools"]);

    let probe = json!({ "audience": PROFILE, "scopes": ["profile:read", "profile:read", "a:b"] });
    let first = call_tool(&app, &token, "exchange_probe", probe.clone()).await;
    assert_eq!(first["structuredContent"]["audience"], PROFILE, "{first}");
    let second = call_tool(&app, &token, "exchange_probe", probe).await;
    assert_eq!(second["structuredContent"], first["structuredContent"]);

    let requests = idp.requests();
    assert_eq!(requests.len(), 1, "the second call is served from the cache");
    let form = &requests[0];
    assert_eq!(field(form, "grant_type"), Some(EXCHANGE_GRANT));
    assert_eq!(field(form, "subject_token"), Some(token.as_str()));
    assert_eq!(field(form, "subject_token_type"), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(field(form, "requested_token_type"), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(field(form, "audience"), Some(PROFILE));
    assert_eq!(field(form, "scope"), Some("a:b profile:read"), "sorted, once each");
    // client_secret_basic, form-encoded inside (RFC 6749 section 2.3.1).
    assert_eq!(field(form, "_authorization"), Some(base64_basic(("mcp+server", "s3cret%3Ax")).as_str()));

    // Another audience is refused here, with no request.
    let other = call_tool(&app, &token, "exchange_probe", json!({ "audience": "https://elsewhere.example" })).await;
    assert!(error_text(&other).contains("not allowed"));
    assert_eq!(idp.requests().len(), 1);
}

#[tokio::test]
async fn the_tool_sends_the_exchanged_token_downstream_never_the_callers() {
    let idp = spawn_issuer(local_keys().key_set().jwks(), FakeAnswers { expires_in: 300 }).await;
    let api = recording_api().await;
    let app = external_app(&idp, &api, Some(&format!("{}/token", idp.base))).await;
    let token = external_token(&idp, &["mcp:read", "mcp:tools"]);
    // The recording API refuses the opaque token (it is not a JWT), which the tool reports.
    let result = call_tool(&app, &token, "downstream_profile", json!({})).await;
    assert!(error_text(&result).contains("401"), "{result}");
    assert_eq!(api.seen(), vec!["Bearer downstream-1".to_owned()]);
}

#[tokio::test]
async fn a_token_living_less_than_the_margin_is_not_cached_and_refusals_are_not_cached() {
    let idp = spawn_issuer(local_keys().key_set().jwks(), FakeAnswers { expires_in: 20 }).await;
    let api = recording_api().await;
    let app = external_app(&idp, &api, None).await;
    let token = external_token(&idp, &["mcp:read", "mcp:tools"]);
    for _ in 0..2 {
        call_tool(&app, &token, "exchange_probe", json!({ "audience": PROFILE })).await;
    }
    assert_eq!(idp.requests().len(), 2);

    // A refusal reaches the tool as the issuer's error, and the next call asks again.
    let scopes = json!({ "audience": PROFILE, "scopes": ["forbidden"] });
    for _ in 0..2 {
        let result = call_tool(&app, &token, "exchange_probe", scopes.clone()).await;
        assert!(error_text(&result).contains("invalid_grant"), "{result}");
    }
    assert_eq!(idp.requests().len(), 4);
}

#[tokio::test]
async fn a_legacy_session_call_gets_its_downstream_token_too() {
    let api = embedded_api().await;
    let app = embedded_app(&api).await;
    let session = common::initialize(&app, common::LEGACY).await;
    let call = common::call(2, "tools/call", json!({ "name": "exchange_probe", "arguments": { "audience": PROFILE } }));
    let reply = common::send(&app, common::legacy(&session, common::LEGACY, call)).await;
    let result = &reply.rpc()["result"];
    assert_eq!(result["structuredContent"]["audience"], PROFILE, "{result}");
    // The caller's (the default test token's) scopes, as none were asked for.
    let caller = claims(&common::tokens::default_token())["scope"].as_str().unwrap().to_owned();
    let mut expected: Vec<&str> = caller.split(' ').collect();
    expected.sort();
    assert_eq!(result["structuredContent"]["scopes"], json!(expected), "{result}");
}

/// With local keys beside another trusted issuer, that issuer's tokens are good at `/mcp` but
/// never exchanged by the embedded issuer: its `sub` would otherwise become one of ours.
#[tokio::test]
async fn another_trusted_issuers_token_is_not_exchanged_by_the_embedded_issuer() {
    let signer = common::tokens::rsa_signer("other-trusted-issuer");
    let other = spawn_issuer(json!({ "keys": [signer.public().jwk("RS256")] }), FakeAnswers { expires_in: 300 }).await;
    let settings = common::issuer::settings(&format!(
        "{}\n[[jwt.issuers]]\nissuer = \"{ISSUER}\"\n[[jwt.issuers]]\nissuer = \"{}\"\n",
        embedded_layer(&format!("[\"{PROFILE}\"]")),
        other.base
    ));
    let app = AppBuilder::new(settings).build().await.expect("app builds");
    let foreign = TokenBuilder::new().issuer(&other.base).subject("alice").signed_with(&signer).build();
    let listed = send_as_is(&app, {
        let mut request = modern(1, "tools/list", json!({}));
        request.headers_mut().insert("authorization", format!("Bearer {foreign}").parse().unwrap());
        request
    })
    .await;
    assert_eq!(listed.status, 200, "the other issuer's token is accepted at /mcp");
    let reply = exchange_at_token(&app, ("exchanger", EXCHANGER_SECRET), &foreign, &[("audience", PROFILE)]).await;
    assert_eq!(reply.json()["error"], "invalid_grant", "{}", String::from_utf8_lossy(&reply.body));
    // This issuer's own token for the same subject is still exchanged.
    let own = exchange_at_token(&app, ("exchanger", EXCHANGER_SECRET), &user_token(), &[("audience", PROFILE)]).await;
    assert_eq!(own.status, 200, "{}", String::from_utf8_lossy(&own.body));
}
