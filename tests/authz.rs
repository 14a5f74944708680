//! Steps 7-9 (`oauth-meta`, `scopes`, identity in tools): discoverable metadata, every operation
//! allowed or refused by scope and role in both eras, step-up challenges, the caller's identity
//! in tools, and the Keycloak profile against a realm-shaped issuer.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::tokens::{self, TokenBuilder};
use common::*;
use mcp_auth_server::tools::{self, CallToolResult, NoArgs, ToolInfo, tool_fn};
use serde_json::{Value, json};

const PRM_URL: &str = "http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp";

fn get(path: &str) -> Request<Body> {
    Request::get(path).header("host", "127.0.0.1:3000").body(Body::empty()).unwrap()
}

fn with_token(mut request: Request<Body>, bearer: &str) -> Request<Body> {
    request.headers_mut().insert("authorization", bearer.parse().unwrap());
    request
}

/// A caller: a token with these scopes and roles.
fn caller(subject: &str, scopes: &[&str], roles: &[&str]) -> String {
    TokenBuilder::new().subject(subject).claim("preferred_username", subject).scopes(scopes).roles(roles).bearer()
}

// ---------------------------------------------------------------- metadata (step 7)

#[tokio::test]
async fn protected_resource_metadata_is_served_at_both_paths_and_named_by_every_401() {
    let app = app().await;
    let root = send_as_is(&app, get("/.well-known/oauth-protected-resource")).await;
    let suffixed = send_as_is(&app, get("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.json(), suffixed.json());
    let prm = root.json();
    assert_eq!(prm["resource"], "http://127.0.0.1:3000/mcp");
    assert_eq!(prm["authorization_servers"], json!(["http://127.0.0.1:3000"]));
    assert_eq!(prm["scopes_supported"], json!(["mcp:read", "mcp:tools", "mcp:prompts"]));
    assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    assert_eq!(prm["resource_name"], "MCP Auth Server");
    assert_eq!(root.header("access-control-allow-origin"), Some("*"), "readable by browser clients");

    let unauthenticated = send_as_is(&app, modern(1, "tools/list", json!({}))).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    let challenge = unauthenticated.header("www-authenticate").unwrap();
    assert!(challenge.contains(&format!("resource_metadata=\"{PRM_URL}\"")), "{challenge}");
    assert!(challenge.contains("scope=\"mcp:read mcp:tools mcp:prompts\""), "every supported scope: {challenge}");
    let expired =
        send_as_is(&app, with_token(modern(2, "tools/list", json!({})), &TokenBuilder::new().expired().bearer())).await;
    let challenge = expired.header("www-authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains(PRM_URL), "{challenge}");
}

#[tokio::test]
async fn the_scope_hint_can_name_only_what_the_request_needs() {
    let app = app_with(&test_settings_with("[scopes]\nchallenge_scopes = \"operation\"")).await;
    let call =
        send_as_is(&app, modern(1, "tools/call", json!({ "name": "echo", "arguments": { "message": "x" } }))).await;
    assert!(call.header("www-authenticate").unwrap().contains("scope=\"mcp:tools\""));
    // Legacy requests carry no Mcp-Method header: every scope.
    let legacy_request = post_builder().body(Body::from(call_body())).unwrap();
    let legacy_reply = send_as_is(&app, legacy_request).await;
    assert!(legacy_reply.header("www-authenticate").unwrap().contains("scope=\"mcp:read mcp:tools mcp:prompts\""));
}

fn call_body() -> String {
    call(1, "initialize", json!({ "protocolVersion": LEGACY, "capabilities": {} })).to_string()
}

#[tokio::test]
async fn behind_a_proxy_with_a_path_prefix_the_urls_keep_the_prefix() {
    let settings = test_settings_with("[server]\npublic_url = \"https://gw.example.com/tenants/a\"");
    let app = app_with(&settings).await;
    let prefixed = Request::get("/.well-known/oauth-protected-resource/tenants/a/mcp")
        .header("host", "gw.example.com")
        .body(Body::empty())
        .unwrap();
    let prm = send_as_is(&app, prefixed).await;
    assert_eq!(prm.status, StatusCode::OK);
    assert_eq!(prm.json()["resource"], "https://gw.example.com/tenants/a/mcp");
    let denied = post_builder().header("host", "gw.example.com").body(Body::from(call_body())).unwrap();
    let (mut parts, body) = denied.into_parts();
    parts.headers.insert("host", "gw.example.com".parse().unwrap());
    let challenge = send_as_is(&app, Request::from_parts(parts, body)).await;
    assert!(
        challenge.header("www-authenticate").unwrap().contains(
            "resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource/tenants/a/mcp\""
        )
    );
}

#[tokio::test]
async fn this_issuer_publishes_truthful_authorization_server_metadata_without_inventing_endpoints() {
    // Offline tokens only: with feature `issuer` the embedded authorization server would serve
    // its own metadata, endpoints included (tests/issuer.rs).
    let app = app_with(&test_settings_with("[issuer]\nenabled = false")).await;
    let reply = send_as_is(&app, get("/.well-known/oauth-authorization-server")).await;
    let metadata = reply.json();
    assert_eq!(metadata["issuer"], "http://127.0.0.1:3000");
    assert_eq!(metadata["jwks_uri"], "http://127.0.0.1:3000/.well-known/jwks.json");
    for endpoint in ["authorization_endpoint", "token_endpoint", "registration_endpoint"] {
        assert!(metadata.get(endpoint).is_none(), "{endpoint} does not exist here");
    }
}

#[tokio::test]
async fn initialize_and_discover_name_the_resource_metadata_and_health_shows_the_oauth_picture() {
    let app = app().await;
    let discover = send(&app, modern(1, "server/discover", json!({}))).await.json();
    assert_eq!(discover["result"]["_meta"]["mcp-auth-server/resourceMetadata"], PRM_URL);
    // The embedded authorization server grants client_credentials: the OAuth client credentials
    // extension is advertised; tokens from elsewhere only, it is not.
    const CLIENT_CREDENTIALS: &str = "io.modelcontextprotocol/oauth-client-credentials";
    let advertised =
        |discover: &Value| discover["result"]["capabilities"]["extensions"].get(CLIENT_CREDENTIALS).is_some();
    assert_eq!(advertised(&discover), cfg!(feature = "issuer"), "{discover}");
    let offline = app_with(&test_settings_with("[issuer]\nenabled = false")).await;
    assert!(!advertised(&send(&offline, modern(1, "server/discover", json!({}))).await.json()));
    let init = send(&app, raw_post(call_body())).await.json();
    assert_eq!(init["result"]["_meta"]["mcp-auth-server/resourceMetadata"], PRM_URL);
    let health = send_as_is(&app, get("/health")).await.json();
    assert_eq!(health["oauth"]["resource"], "http://127.0.0.1:3000/mcp");
    assert_eq!(health["oauth"]["protected_resource_metadata"], PRM_URL);
    assert!(health["jwt"]["source"].is_string());
}

#[tokio::test]
async fn browser_preflights_are_answered_without_authentication_and_challenges_are_readable() {
    let app = app().await;
    let preflight = Request::options("/mcp")
        .header("host", "127.0.0.1:3000")
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, mcp-protocol-version, mcp-session-id")
        .body(Body::empty())
        .unwrap();
    let reply = send_as_is(&app, preflight).await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(reply.header("access-control-allow-origin"), Some("http://localhost:6274"));
    let allowed = reply.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    for header in ["authorization", "mcp-protocol-version", "mcp-session-id", "last-event-id"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    let mut denied = modern(1, "tools/list", json!({}));
    denied.headers_mut().insert("origin", "http://localhost:6274".parse().unwrap());
    let reply = send_as_is(&app, denied).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let exposed = reply.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
    assert!(exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"), "{exposed}");
    assert!(reply.header("vary").is_some_and(|vary| vary.to_ascii_lowercase().contains("origin")));

    // Without `Origin` it is not a browser: the same refusal, and no origin is granted.
    let reply = send_as_is(&app, modern(1, "tools/list", json!({}))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.header("www-authenticate").is_some());
    assert!(reply.header("access-control-allow-origin").is_none());
}

// ---------------------------------------------------------------- scopes and roles (step 8)

/// `Ok` = allowed; `Err(Some(scope))` = 403 step-up naming `scope`; `Err(None)` = 403 with
/// nothing to ask for (the caller's role forbids it).
type Expect = Result<(), Option<&'static str>>;

/// What one caller may do.
struct Case {
    who: &'static str,
    scopes: &'static [&'static str],
    roles: &'static [&'static str],
    /// What `tools/list` shows.
    visible: &'static [&'static str],
    /// `tools/call` of `echo`.
    tool_call: Expect,
    /// `prompts/get` of `greeting`.
    prompt_get: Expect,
}

const ALL_TOOLS: &[&str] = &["echo", "get_time", "whoami"];
const STEP_UP: Option<&str> = Some("mcp:prompts mcp:read mcp:tools");
const READ_TOOLS: &[&str] = &["mcp:read", "mcp:tools"];

fn matrix() -> Vec<Case> {
    let all = &["mcp:read", "mcp:tools", "mcp:prompts"];
    vec![
        Case {
            who: "admin",
            scopes: all,
            roles: &["admin"],
            visible: ALL_TOOLS,
            tool_call: Ok(()),
            prompt_get: Ok(()),
        },
        Case {
            who: "user",
            scopes: READ_TOOLS,
            roles: &["user"],
            visible: ALL_TOOLS,
            tool_call: Ok(()),
            prompt_get: Err(None),
        },
        Case {
            who: "guest",
            scopes: &["mcp:read"],
            roles: &["guest"],
            visible: &[],
            tool_call: Err(None),
            prompt_get: Err(None),
        },
        Case {
            who: "bob",
            scopes: &["mcp:read", "mcp:prompts"],
            roles: &[],
            visible: &[],
            tool_call: Err(STEP_UP),
            prompt_get: Ok(()),
        },
        Case {
            who: "alice",
            scopes: READ_TOOLS,
            roles: &[],
            visible: ALL_TOOLS,
            tool_call: Ok(()),
            prompt_get: Err(STEP_UP),
        },
    ]
}

fn check(reply: &Reply, expect: Expect, what: &str) {
    match expect {
        Ok(()) => {
            assert_eq!(reply.status, StatusCode::OK, "{what}: {}", String::from_utf8_lossy(&reply.body));
            assert!(reply.rpc().get("error").is_none(), "{what}: {}", reply.rpc());
        }
        Err(scope) => {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}");
            let challenge = reply.header("www-authenticate").unwrap();
            assert!(challenge.contains("error=\"insufficient_scope\""), "{what}: {challenge}");
            assert!(challenge.contains(&format!("resource_metadata=\"{PRM_URL}\"")), "{what}: {challenge}");
            match scope {
                Some(scope) => assert!(challenge.contains(&format!("scope=\"{scope}\"")), "{what}: {challenge}"),
                None => assert!(!challenge.contains("scope=\""), "{what}: nothing to step up to: {challenge}"),
            }
            let body = reply.json();
            assert_eq!(body["error"]["data"]["error"], "insufficient_scope", "{what}: a JSON-RPC error body");
        }
    }
}

#[tokio::test]
async fn each_role_and_scope_set_gets_exactly_its_operations_in_both_eras() {
    let app = app().await;
    for Case { who, scopes, roles, visible, tool_call, prompt_get } in matrix() {
        let bearer = caller(who, scopes, roles);
        let echo = json!({ "name": "echo", "arguments": { "message": "hi" } });
        let greeting = json!({ "name": "greeting", "arguments": { "name": "Ada" } });

        let list = send_as_is(&app, with_token(modern(1, "tools/list", json!({})), &bearer)).await.json();
        let names: Vec<&str> =
            list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, visible, "{who}: tools/list shows only what may be called");
        assert_eq!(list["result"]["cacheScope"], "private");
        check(
            &send_as_is(&app, with_token(modern(2, "tools/call", echo.clone()), &bearer)).await,
            tool_call,
            &format!("{who} modern tools/call"),
        );
        check(
            &send_as_is(&app, with_token(modern(3, "prompts/get", greeting.clone()), &bearer)).await,
            prompt_get,
            &format!("{who} modern prompts/get"),
        );

        let session = {
            let reply = send_as_is(&app, with_token(raw_post(call_body()), &bearer)).await;
            reply.header("mcp-session-id").expect("initialize needs only a valid token").to_owned()
        };
        let legacy_list =
            send_as_is(&app, with_token(legacy(&session, LEGACY, call(4, "tools/list", json!({}))), &bearer))
                .await
                .rpc();
        let legacy_names: Vec<&str> =
            legacy_list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(legacy_names, visible, "{who}: legacy tools/list");
        check(
            &send_as_is(&app, with_token(legacy(&session, LEGACY, call(5, "tools/call", echo)), &bearer)).await,
            tool_call,
            &format!("{who} legacy tools/call"),
        );
        check(
            &send_as_is(&app, with_token(legacy(&session, LEGACY, call(6, "prompts/get", greeting)), &bearer)).await,
            prompt_get,
            &format!("{who} legacy prompts/get"),
        );
    }
}

#[tokio::test]
async fn a_token_without_scopes_can_do_nothing_but_is_told_what_to_ask_for() {
    let app = app().await;
    let bearer = caller("nobody", &[], &[]);
    for (method, scope) in [("tools/list", "mcp:read"), ("prompts/list", "mcp:read"), ("resources/list", "mcp:read")] {
        let reply = send_as_is(&app, with_token(modern(1, method, json!({})), &bearer)).await;
        if method == "resources/list" {
            // No resources are served by the tutorial binary: the method does not exist.
            assert_eq!(reply.status, StatusCode::NOT_FOUND);
            continue;
        }
        check(&reply, Err(Some(scope)), method);
    }
    let listen = send_as_is(
        &app,
        with_token(
            modern(2, "subscriptions/listen", json!({ "notifications": { "toolsListChanged": true } })),
            &bearer,
        ),
    )
    .await;
    check(&listen, Err(Some("mcp:read")), "subscriptions/listen");
    let ok = send_as_is(&app, with_token(modern(3, "server/discover", json!({})), &bearer)).await;
    assert_eq!(ok.status, StatusCode::OK, "discovery needs only a valid token");
}

#[tokio::test]
async fn each_tool_advertises_the_scopes_it_needs() {
    let app = app().await;
    let list = send(&app, modern(1, "tools/list", json!({}))).await.json();
    for tool in list["result"]["tools"].as_array().unwrap() {
        assert_eq!(
            tool["_meta"]["mcp-auth-server/authorization"],
            json!({ "requiredScopes": ["mcp:tools"] }),
            "{tool}"
        );
    }
}

#[tokio::test]
async fn per_tool_rules_from_the_policy_apply_and_an_unknown_tool_in_the_policy_stops_start_up() {
    let settings = test_settings_with(
        "[scopes.tools.whoami]\nscopes = [\"mcp:read\"]\n[scopes.tools.get_time]\nroles = [\"admin\"]",
    );
    let app = app_with(&settings).await;
    let reader = caller("reader", &["mcp:read"], &[]);
    let reply = send_as_is(&app, with_token(modern(1, "tools/call", json!({ "name": "whoami" })), &reader)).await;
    check(&reply, Ok(()), "whoami with mcp:read");
    let user = caller("uma", &["mcp:read", "mcp:tools"], &["user"]);
    let reply = send_as_is(&app, with_token(modern(2, "tools/call", json!({ "name": "get_time" })), &user)).await;
    check(&reply, Err(None), "get_time needs the admin role");

    let typo = test_settings_with("[scopes.tools.echoo]\nscopes = [\"mcp:read\"]");
    let err = mcp_auth_server::app(&typo).await.expect_err("refused").to_string();
    assert!(err.contains("scopes.tools.echoo"), "{err}");
}

#[tokio::test]
async fn a_tool_can_discover_mid_call_that_it_needs_more_and_the_client_gets_a_step_up_challenge() {
    let needy = tool_fn(ToolInfo::new("export", "Exports; needs mcp:prompts as well"), |ctx, _: NoArgs| async move {
        ctx.require_scopes(&["mcp:prompts"])?;
        Ok(CallToolResult::text("exported"))
    });
    let settings = test_settings();
    let app = mcp_auth_server::AppBuilder::new(settings).registry(tools::builtin().tool(needy)).build().await.unwrap();
    let alice = caller("alice", &["mcp:read", "mcp:tools"], &[]);
    let reply = send_as_is(&app, with_token(modern(1, "tools/call", json!({ "name": "export" })), &alice)).await;
    check(&reply, Err(Some("mcp:prompts mcp:read mcp:tools")), "handler-raised challenge");
    assert_eq!(reply.json()["id"], 1);
    let admin = caller("root", &["mcp:read", "mcp:tools", "mcp:prompts"], &["admin"]);
    let reply = send_as_is(&app, with_token(modern(2, "tools/call", json!({ "name": "export" })), &admin)).await;
    assert_eq!(reply.rpc()["result"]["content"][0]["text"], "exported");
}

// ---------------------------------------------------------------- identity in tools (step 9)

#[tokio::test]
async fn whoami_and_greeting_know_the_caller_and_results_carry_the_subject() {
    let app = app().await;
    let bearer = TokenBuilder::new()
        .subject("u-42")
        .claim("preferred_username", "ada")
        .scopes(&["mcp:read", "mcp:tools", "mcp:prompts"])
        .roles(&["admin"])
        .bearer();
    let who = send_as_is(&app, with_token(modern(1, "tools/call", json!({ "name": "whoami" })), &bearer)).await.json();
    let seen = &who["result"]["structuredContent"];
    assert_eq!(seen["authenticated"], true);
    assert_eq!(seen["subject"], "u-42");
    assert_eq!(seen["name"], "ada");
    assert_eq!(seen["roles"], json!(["admin"]));
    assert_eq!(seen["issuer"], "http://127.0.0.1:3000");
    assert!(seen["expires_at"].as_i64().unwrap() > tokens::now());
    assert_eq!(who["result"]["_meta"]["mcp-auth-server/subject"], "u-42");
    // Beside the handler's own `_meta` entries, the server's (serialised once at start-up).
    assert_eq!(
        who["result"]["_meta"]["io.modelcontextprotocol/serverInfo"],
        json!({ "name": "mcp-auth-server", "title": "MCP Auth Server", "version": env!("CARGO_PKG_VERSION") })
    );

    let greeting =
        send_as_is(&app, with_token(modern(2, "prompts/get", json!({ "name": "greeting" })), &bearer)).await.json();
    assert!(greeting["result"]["messages"][0]["content"]["text"].as_str().unwrap().contains("ada"));
    assert_eq!(greeting["result"]["_meta"]["mcp-auth-server/subject"], "u-42");
}

// ---------------------------------------------------------------- the Keycloak profile

/// A realm-shaped issuer: `/realms/mcp-realm` with OpenID Connect discovery and a JWKS, as
/// Keycloak serves them.
async fn keycloak_realm(signer: &mcp_auth_server::jwt::keyfile::Signer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let realm = format!("{base}/realms/mcp-realm");
    let discovery = json!({
        "issuer": realm,
        "jwks_uri": format!("{realm}/protocol/openid-connect/certs"),
        "authorization_endpoint": format!("{realm}/protocol/openid-connect/auth"),
        "token_endpoint": format!("{realm}/protocol/openid-connect/token"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    });
    let jwks = json!({ "keys": [signer.public().jwk("RS256")] });
    let router = Router::new()
        .route(
            "/realms/mcp-realm/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/realms/mcp-realm/protocol/openid-connect/certs",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    realm
}

#[tokio::test]
async fn the_keycloak_profile_accepts_realm_tokens_and_reads_realm_roles() {
    let signer = Arc::new(tokens::rsa_signer("keycloak-realm"));
    let realm = keycloak_realm(&signer).await;
    let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/keycloak.toml")).unwrap();
    // The profile as shipped, pointed at the test realm and this test's host.
    let here = format!(
        "[jwt]\nissuer = \"{realm}\"\nstartup_timeout_secs = 0\n[server]\npublic_url = \"http://127.0.0.1:3000\""
    );
    let settings =
        mcp_auth_server::Settings::from_toml_layers(&[TEST_LAYER, &auth_settings(), &profile, &here]).unwrap();
    assert_eq!(settings.jwt.role_claims, ["realm_access.roles", "resource_access.mcp-test-client.roles"]);
    let app = app_with(&settings).await;

    let keycloak_token = |user: &str, realm_roles: &[&str], scope: &str| {
        let signer = signer.clone();
        TokenBuilder::new()
            .issuer(&realm)
            .subject(&format!("f3c1-{user}"))
            .claim("preferred_username", user)
            .claim("aud", json!(["http://127.0.0.1:3000/mcp", "account"]))
            .claim("azp", "mcp-test-client")
            .claim("scope", scope)
            .claim("realm_access", json!({ "roles": realm_roles }))
            .without("roles")
            .signed_with(&*Box::leak(Box::new(move |claims: &Value| {
                tokens::SignsTokens::sign_claims(&*signer, claims)
            })))
            .bearer()
    };
    let admin = keycloak_token(
        "mcp-admin",
        &["admin", "offline_access", "uma_authorization"],
        "openid profile mcp:read mcp:tools mcp:prompts",
    );
    let guest = keycloak_token("mcp-guest", &["guest"], "openid profile mcp:read mcp:tools");
    let echo = json!({ "name": "echo", "arguments": { "message": "from keycloak" } });

    let reply = send_as_is(&app, with_token(modern(1, "tools/call", echo.clone()), &admin)).await;
    assert_eq!(reply.rpc()["result"]["content"][0]["text"], "from keycloak");
    let who = send_as_is(&app, with_token(modern(2, "tools/call", json!({ "name": "whoami" })), &admin)).await.json();
    assert_eq!(who["result"]["structuredContent"]["name"], "mcp-admin");
    assert_eq!(who["result"]["structuredContent"]["client_id"], "mcp-test-client");

    // The guest's token asks for mcp:tools, but the guest role does not permit it.
    let reply = send_as_is(&app, with_token(modern(3, "tools/call", echo), &guest)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let prm = send_as_is(&app, get("/.well-known/oauth-protected-resource/mcp")).await.json();
    assert_eq!(prm["authorization_servers"], json!([realm]));
}
