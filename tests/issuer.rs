//! Step 10 (feature `issuer`): the embedded authorization server — discovery, the code flow with
//! PKCE, refresh rotation, client credentials, registration (dynamic and by metadata document),
//! the sign-in and consent pages, and every attack the issue lists.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::issuer::{
    self as is, ALICE_PASSWORD, BOB_PASSWORD, Browser, CLIENT_ID, GUEST_PASSWORD, ISSUER, Pkce, REDIRECT_URI, RESOURCE,
    SERVICE_SECRET, authorize_uri, claims, query_of, redeem, text, token_request,
};
use common::{Reply, send_as_is};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

async fn get(app: &axum::Router, uri: &str) -> Reply {
    send_as_is(app, Request::get(uri).header("host", "127.0.0.1:3000").body(Body::empty()).unwrap()).await
}

async fn register(app: &axum::Router, metadata: Value) -> Reply {
    let request =
        Request::post("/register").header("content-type", "application/json").body(Body::from(metadata.to_string()));
    send_as_is(app, request.unwrap()).await
}

/// Runs the code flow for `user` with the test client; returns the token response.
async fn tokens_for(app: &axum::Router, user: &str, password: &str, extra: &[(&str, &str)]) -> Value {
    let pkce = Pkce::new();
    let callback =
        Browser::new(app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, extra), user, password).await;
    let reply = redeem(app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    reply.json()
}

// --- discovery -------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_lists_every_endpoint_and_capability() {
    let app = is::app("").await;
    let reply = get(&app, "/.well-known/oauth-authorization-server").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("content-type").unwrap().starts_with("application/json"));
    let metadata = reply.json();
    assert_eq!(metadata["issuer"], ISSUER);
    assert_eq!(metadata["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(metadata["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(metadata["registration_endpoint"], format!("{ISSUER}/register"));
    assert_eq!(metadata["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(metadata["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(metadata["response_types_supported"], json!(["code"]));
    assert_eq!(metadata["grant_types_supported"], json!(["authorization_code", "refresh_token", "client_credentials"]));
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
    assert_eq!(metadata["token_endpoint_auth_signing_alg_values_supported"], json!(["RS256", "ES256", "PS256"]));
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    // `offline_access` is the authorization server's to offer (never the resource's).
    assert_eq!(metadata["scopes_supported"], json!(["mcp:prompts", "mcp:read", "mcp:tools", "offline_access"]));

    let openid = get(&app, "/.well-known/openid-configuration").await.json();
    assert_eq!(openid["issuer"], ISSUER);
    assert_eq!(openid["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(openid["subject_types_supported"], json!(["public"]));

    let resource = get(&app, "/.well-known/oauth-protected-resource/mcp").await.json();
    assert_eq!(resource["authorization_servers"], json!([ISSUER]));
}

#[tokio::test]
async fn browser_clients_may_read_metadata_and_call_the_token_endpoint_cross_origin() {
    let app = is::app("").await;
    let preflight = Request::options("/token")
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Body::empty())
        .unwrap();
    let reply = send_as_is(&app, preflight).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert!(reply.header("access-control-allow-credentials").is_none(), "never with cookies");
}

#[tokio::test]
async fn switched_off_the_issuer_is_not_mounted_and_local_metadata_has_no_endpoints() {
    let app = is::app("[issuer]\nenabled = false").await;
    assert_eq!(get(&app, "/authorize").await.status, StatusCode::NOT_FOUND);
    assert_eq!(token_request(&app, &[("grant_type", "client_credentials")], None).await.status, StatusCode::NOT_FOUND);
    let metadata = get(&app, "/.well-known/oauth-authorization-server").await.json();
    assert_eq!(metadata["issuer"], ISSUER);
    assert!(metadata.get("authorization_endpoint").is_none(), "offline tokens only: no endpoints advertised");
}

#[tokio::test]
async fn with_an_external_identity_provider_the_issuer_is_not_mounted() {
    let idp = json_server(|base, path| match path {
        "/.well-known/openid-configuration" => Some(json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") })),
        "/jwks" => Some(common::tokens::local_keys().key_set().jwks()),
        _ => None,
    })
    .await;
    let app = is::app(&format!("[jwt]\nissuer = \"{}\"\nstartup_timeout_secs = 5", idp.base)).await;
    assert_eq!(get(&app, "/authorize").await.status, StatusCode::NOT_FOUND);
    assert_eq!(token_request(&app, &[("grant_type", "client_credentials")], None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(register(&app, json!({})).await.status, StatusCode::NOT_FOUND);
    let metadata = get(&app, "/.well-known/oauth-authorization-server").await.json();
    assert_eq!(metadata["issuer"], idp.base.as_str(), "the IdP's own metadata, mirrored");
    assert!(get(&app, "/health").await.json().get("issuer").is_none());
}

// --- the code flow ---------------------------------------------------------------------------

#[tokio::test]
async fn the_code_flow_with_pkce_issues_a_token_for_the_resource_with_the_users_claims() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let mut browser = Browser::new(&app);
    let uri = authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[("scope", "mcp:read mcp:tools")]);
    let callback = browser.authorize(&uri, "alice", ALICE_PASSWORD).await;
    assert!(callback.starts_with(&format!("{REDIRECT_URI}?")), "{callback}");
    let answer = query_of(&callback);
    assert_eq!(answer["state"], "test-state");
    assert_eq!(answer["iss"], ISSUER, "RFC 9207");
    assert_eq!(answer["code"].len(), 43);

    let reply = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp:read mcp:tools");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].is_string());
    let claims = claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["scope"], "mcp:read mcp:tools");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    assert!(claims["jti"].is_string());

    // The jwt layer accepts it on /mcp.
    let ping = common::post_builder()
        .header("authorization", format!("Bearer {}", body["access_token"].as_str().unwrap()))
        .body(Body::from(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string()))
        .unwrap();
    let reply = send_as_is(&app, ping).await;
    assert_ne!(reply.status, StatusCode::UNAUTHORIZED, "{}", text(&reply));
}

#[tokio::test]
async fn without_a_scope_parameter_the_user_gets_what_the_role_permits() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "bob", BOB_PASSWORD, &[]).await;
    assert_eq!(tokens["scope"], "mcp:read mcp:tools");
}

#[tokio::test]
async fn a_signed_in_browser_goes_straight_to_consent() {
    let app = is::app("").await;
    let mut browser = Browser::new(&app);
    browser.authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[]), "bob", BOB_PASSWORD).await;
    let page = browser.get(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(text(&page).contains("Allow access?"), "{}", text(&page));
    let answer = browser.decide(&page, "allow").await;
    assert!(query_of(answer.header("location").unwrap()).contains_key("code"));
}

#[tokio::test]
async fn denying_sends_access_denied_with_state_and_iss() {
    let app = is::app("").await;
    let mut browser = Browser::new(&app);
    let page =
        browser.consent_page(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[]), "bob", BOB_PASSWORD).await;
    let answer = browser.decide(&page, "deny").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let answer = query_of(answer.header("location").unwrap());
    assert_eq!((answer["error"].as_str(), answer["state"].as_str()), ("access_denied", "test-state"));
    assert_eq!(answer["iss"], ISSUER);
    assert!(!answer.contains_key("code"));
}

#[tokio::test]
async fn a_loopback_redirect_uri_matches_on_any_port_and_nothing_else_does() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let callback = Browser::new(&app)
        .authorize(&authorize_uri(CLIENT_ID, "http://127.0.0.1:61234/loopback", &pkce, &[]), "bob", BOB_PASSWORD)
        .await;
    assert!(callback.starts_with("http://127.0.0.1:61234/loopback?"));
    let reply = redeem(&app, CLIENT_ID, &callback, "http://127.0.0.1:61234/loopback", &pkce).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    for other in ["http://localhost:61234/loopback", "http://127.0.0.1:61234/loopback/x"] {
        let reply = get(&app, &authorize_uri(CLIENT_ID, other, &pkce, &[])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{other}");
    }
}

// --- attacks: PKCE, codes, redirect URIs ---------------------------------------------------------

#[tokio::test]
async fn a_request_without_pkce_or_with_plain_pkce_is_refused_in_the_redirect() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    for (extra, why) in [
        (vec![("code_challenge", ""), ("code_challenge_method", "")], "code_challenge is required"),
        (vec![("code_challenge_method", "plain")], "code_challenge_method must be S256"),
        (vec![("code_challenge_method", "")], "code_challenge_method must be S256"),
        (vec![("code_challenge", "too-short")], "43 base64url"),
    ] {
        let reply = get(&app, &authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &extra)).await;
        assert_eq!(reply.status, StatusCode::FOUND, "{why}");
        let answer = query_of(reply.header("location").unwrap());
        assert_eq!(answer["error"], "invalid_request");
        assert!(answer["error_description"].contains(why), "{answer:?}");
        assert_eq!((answer["state"].as_str(), answer["iss"].as_str()), ("test-state", ISSUER));
    }
}

#[tokio::test]
async fn a_wrong_or_missing_code_verifier_gets_no_token_and_burns_the_code() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let callback =
        Browser::new(&app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]), "bob", BOB_PASSWORD).await;
    let code = query_of(&callback)["code"].clone();
    let base = [("grant_type", "authorization_code"), ("client_id", CLIENT_ID), ("code", code.as_str())];
    let missing = token_request(&app, &[&base[..], &[("redirect_uri", REDIRECT_URI)]].concat(), None).await;
    assert_eq!((missing.status, missing.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let wrong_verifier = Pkce::new().verifier;
    let wrong = token_request(
        &app,
        &[&base[..], &[("redirect_uri", REDIRECT_URI), ("code_verifier", &wrong_verifier)]].concat(),
        None,
    )
    .await;
    assert_eq!(wrong.json()["error"], "invalid_grant");
    // The right verifier is now too late: the code was spent by the failed attempt.
    let right = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(right.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let callback =
        Browser::new(&app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]), "bob", BOB_PASSWORD).await;
    let first = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await.json();
    let replay = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");
    let refresh = first["refresh_token"].as_str().unwrap();
    let reply = token_request(
        &app,
        &[("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("refresh_token", refresh)],
        None,
    )
    .await;
    assert_eq!(reply.json()["error"], "invalid_grant", "the first redemption's refresh token is revoked");
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let alternative = "http://127.0.0.1:1234/loopback";
    let callback =
        Browser::new(&app).authorize(&authorize_uri(CLIENT_ID, alternative, &pkce, &[]), "bob", BOB_PASSWORD).await;
    let other_redirect = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(other_redirect.json()["error"], "invalid_grant");

    let registered = register(
        &app,
        json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "Other"}),
    )
    .await
    .json();
    let pkce = Pkce::new();
    let callback =
        Browser::new(&app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]), "bob", BOB_PASSWORD).await;
    let other_client = redeem(&app, registered["client_id"].as_str().unwrap(), &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(other_client.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    for evil in ["https://evil.example/callback", "http://127.0.0.1:4999/callback/../evil", "javascript:alert(1)"] {
        let reply = get(&app, &authorize_uri(CLIENT_ID, evil, &pkce, &[])).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{evil}");
        assert!(reply.header("location").is_none(), "{evil}");
        assert!(text(&reply).contains("Unregistered redirect address"));
        assert!(!text(&reply).contains("evil.example"), "the page does not link to the address");
    }
    // An unknown client cannot be answered at all.
    let reply = get(&app, &authorize_uri("no-such-client", REDIRECT_URI, &pkce, &[])).await;
    assert_eq!((reply.status, reply.header("location")), (StatusCode::BAD_REQUEST, None));
    // Neither can one repeated client_id.
    let uri = format!("{}&client_id=other", authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]));
    assert_eq!(get(&app, &uri).await.header("location"), None);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    // A code good for 1 s, redeemed 2 s after it was issued: the store's clock moves on (the
    // store enforces expiry), no test waits.
    let offset = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let system = mcp_auth_server::store::system_clock();
    let clock: mcp_auth_server::store::Clock = {
        let offset = offset.clone();
        Arc::new(move || system() + offset.load(std::sync::atomic::Ordering::SeqCst))
    };
    let app = mcp_auth_server::AppBuilder::new(is::settings("[issuer]\ncode_ttl_secs = 1"))
        .store(Arc::new(mcp_auth_server::store::MemoryStore::with_clock(clock)))
        .build()
        .await
        .unwrap();
    let pkce = Pkce::new();
    let callback =
        Browser::new(&app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]), "bob", BOB_PASSWORD).await;
    offset.store(2_000, std::sync::atomic::Ordering::SeqCst);
    let reply = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(reply.json()["error"], "invalid_grant");
    assert_eq!(reply.json()["error_description"], "unknown or expired authorization code");
}

// --- attacks: resources and scopes -----------------------------------------------------------------

#[tokio::test]
async fn a_resource_this_server_does_not_protect_is_invalid_target() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let reply =
        get(&app, &authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[("resource", "https://other.example/mcp")])).await;
    let answer = query_of(reply.header("location").unwrap());
    assert_eq!(answer["error"], "invalid_target");
    assert_eq!(answer["iss"], ISSUER);

    let reply = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("resource", "https://other.example/mcp")],
        Some(("test-service", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(reply.json()["error"], "invalid_target");

    // At the token endpoint, the resource must be the one the code was issued for.
    let callback =
        Browser::new(&app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]), "bob", BOB_PASSWORD).await;
    let code = query_of(&callback)["code"].clone();
    let reply = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &pkce.verifier),
            ("resource", "https://other.example/mcp"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.json()["error"], "invalid_target");
}

#[tokio::test]
async fn extra_audiences_are_resources_too() {
    let app = is::app("[jwt]\nextra_audiences = [\"api://mcp\"]").await;
    let tokens = tokens_for(&app, "bob", BOB_PASSWORD, &[("resource", "api://mcp")]).await;
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["aud"], "api://mcp");
}

#[tokio::test]
async fn scopes_beyond_the_users_role_are_never_granted() {
    let app = is::app("").await;
    let mut browser = Browser::new(&app);
    let pkce = Pkce::new();
    let uri = authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[("scope", "mcp:read mcp:tools mcp:prompts")]);
    let page = browser.consent_page(&uri, "bob", BOB_PASSWORD).await;
    let html = text(&page);
    assert!(html.contains("not available to your account"), "{html}");
    let withheld = &html[html.find("not available to your account").unwrap()..];
    assert!(withheld.contains("mcp:prompts"));
    let answer = browser.decide(&page, "allow").await;
    let callback = answer.header("location").unwrap();
    let tokens = redeem(&app, CLIENT_ID, callback, REDIRECT_URI, &pkce).await.json();
    assert_eq!(tokens["scope"], "mcp:read mcp:tools");
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["scope"], "mcp:read mcp:tools");

    // A refresh cannot widen the grant either.
    let reply = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "mcp:read mcp:prompts"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.json()["error"], "invalid_scope");

    // A guest asking only for what it may not have gets invalid_scope, and no code.
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[("scope", "mcp:tools")])).await;
    let signed_in = browser.sign_in(&page, "guest", GUEST_PASSWORD).await;
    let reply = browser.get(signed_in.header("location").unwrap()).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    let answer = query_of(reply.header("location").unwrap());
    assert_eq!(answer["error"], "invalid_scope");
    assert!(!answer.contains_key("code"));
}

// --- refresh tokens --------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "alice", ALICE_PASSWORD, &[("scope", "mcp:read mcp:tools")]).await;
    let refresh = |token: String| {
        let app = app.clone();
        async move {
            token_request(
                &app,
                &[("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("refresh_token", &token)],
                None,
            )
            .await
        }
    };
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rotated = refresh(first.clone()).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", text(&rotated));
    let rotated = rotated.json();
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "rotated");
    assert_eq!(rotated["scope"], "mcp:read mcp:tools");
    assert_eq!(claims(rotated["access_token"].as_str().unwrap())["sub"], "alice");

    // A narrower access token is fine; the grant stays.
    let narrow = token_request(
        &app,
        &[("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("refresh_token", &second), ("scope", "mcp:read")],
        None,
    )
    .await
    .json();
    assert_eq!(narrow["scope"], "mcp:read");
    let third = narrow["refresh_token"].as_str().unwrap().to_owned();

    // Someone replays the first one: refused, and the live one (third) dies with it.
    let reuse = refresh(first).await;
    assert_eq!((reuse.status, reuse.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert_eq!(refresh(third).await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn with_refresh_tokens_offline_access_a_refresh_token_comes_only_when_asked_for() {
    let app = is::app("[issuer]\nrefresh_tokens = \"offline_access\"").await;
    let without = tokens_for(&app, "bob", BOB_PASSWORD, &[("scope", "mcp:read")]).await;
    assert!(without["access_token"].is_string());
    assert!(without.get("refresh_token").is_none(), "{without}");
    let with = tokens_for(&app, "bob", BOB_PASSWORD, &[("scope", "mcp:read offline_access")]).await;
    assert!(with["refresh_token"].is_string(), "{with}");
    assert_eq!(with["scope"], "mcp:read", "offline_access is no scope of the resource's");
    // The consent page says so when, and only when, the access can be renewed.
    let consent = |scope: &'static str| {
        let app = app.clone();
        async move {
            let uri = authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[("scope", scope)]);
            text(&Browser::new(&app).consent_page(&uri, "bob", BOB_PASSWORD).await)
        }
    };
    assert!(consent("mcp:read offline_access").await.contains("offline_access"));
    assert!(!consent("mcp:read").await.contains("offline_access"));
}

#[tokio::test]
async fn a_refresh_token_works_only_for_its_client() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "bob", BOB_PASSWORD, &[]).await;
    let other =
        register(&app, json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"})).await.json();
    let reply = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", other["client_id"].as_str().unwrap()),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        None,
    )
    .await;
    assert_eq!(reply.json()["error"], "unauthorized_client", "it did not register refresh_token");
}

// --- client credentials and client authentication -----------------------------------------------

#[tokio::test]
async fn client_credentials_issue_a_token_with_the_clients_roles() {
    let app = is::app("").await;
    for (fields, basic) in [
        (vec![("grant_type", "client_credentials")], Some(("test-service", SERVICE_SECRET))),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "test-service"),
                ("client_secret", SERVICE_SECRET),
            ],
            None,
        ),
    ] {
        let reply = token_request(&app, &fields, basic).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
        let body = reply.json();
        assert!(body.get("refresh_token").is_none());
        assert_eq!(body["scope"], "mcp:read mcp:tools", "capped by role user");
        let claims = claims(body["access_token"].as_str().unwrap());
        assert_eq!(
            (claims["sub"].as_str(), claims["client_id"].as_str()),
            (Some("test-service"), Some("test-service"))
        );
        assert_eq!(claims["roles"], json!(["user"]));
        assert_eq!(claims["aud"], RESOURCE);
    }
    let narrow = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("scope", "mcp:read mcp:prompts")],
        Some(("test-service", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(narrow.json()["scope"], "mcp:read");
    let beyond = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("scope", "mcp:prompts")],
        Some(("test-service", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(beyond.json()["error"], "invalid_scope");
}

#[tokio::test]
async fn client_authentication_fails_closed() {
    let app = is::app("").await;
    let wrong = token_request(&app, &[("grant_type", "client_credentials")], Some(("test-service", "wrong"))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "invalid_client");
    assert!(wrong.header("www-authenticate").unwrap().starts_with("Basic"));
    let none = token_request(&app, &[("grant_type", "client_credentials"), ("client_id", "test-service")], None).await;
    assert_eq!(none.json()["error"], "invalid_client");
    let two_methods = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("client_secret", SERVICE_SECRET)],
        Some(("test-service", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(two_methods.json()["error"], "invalid_request");
    let public = token_request(&app, &[("grant_type", "client_credentials"), ("client_id", CLIENT_ID)], None).await;
    assert_eq!(public.json()["error"], "unauthorized_client");
    let public_with_secret =
        token_request(&app, &[("grant_type", "client_credentials")], Some((CLIENT_ID, "anything"))).await;
    assert_eq!(public_with_secret.json()["error"], "invalid_client");
    let unknown = token_request(&app, &[("grant_type", "password"), ("client_id", CLIENT_ID)], None).await;
    assert_eq!(unknown.json()["error"], "unsupported_grant_type");
    let repeated = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("grant_type", "client_credentials")],
        Some(("test-service", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(repeated.json()["error"], "invalid_request");
}

// --- registration ------------------------------------------------------------------------------

#[tokio::test]
async fn dynamic_registration_follows_rfc_7591_and_our_redirect_rules() {
    let app = is::app("").await;
    let reply = register(
        &app,
        json!({
            "redirect_uris": ["http://localhost:8765/callback"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Confidential",
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", text(&reply));
    let client = reply.json();
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    assert_eq!(client["client_secret_expires_at"], 0);

    // It authenticates with its secret at the token endpoint.
    let pkce = Pkce::new();
    let redirect = "http://localhost:8765/callback";
    let callback = Browser::new(&app).authorize(&authorize_uri(id, redirect, &pkce, &[]), "bob", BOB_PASSWORD).await;
    let code = query_of(&callback)["code"].clone();
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let without_secret = token_request(&app, &[&fields[..], &[("client_id", id)]].concat(), None).await;
    assert_eq!(without_secret.json()["error"], "invalid_client");
    fields.extend([("client_id", id), ("client_secret", secret)]);
    let reply = token_request(&app, &fields, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));

    for (metadata, error) in [
        (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://app.example/cb#x"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}), "invalid_client_metadata"),
        (json!("not an object"), "invalid_client_metadata"),
    ] {
        let reply = register(&app, metadata.clone()).await;
        assert_eq!(
            (reply.status, reply.json()["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(error)),
            "{metadata}"
        );
    }
}

#[tokio::test]
async fn a_registration_states_its_application_type_and_its_redirect_uris_fit_it() {
    let app = is::app("").await;
    let registered = |redirect: &str, kind: Option<&str>| {
        let mut metadata = json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none"});
        if let Some(kind) = kind {
            metadata["application_type"] = json!(kind);
        }
        let app = app.clone();
        async move { register(&app, metadata).await }
    };
    for (redirect, kind, answered) in [
        ("http://127.0.0.1:8765/cb", Some("native"), "native"),
        ("com.example.app:/cb", Some("native"), "native"),
        ("https://app.example/cb", Some("native"), "native"),
        ("https://app.example/cb", Some("web"), "web"),
        // None stated: what the redirect URIs imply.
        ("http://localhost:8765/cb", None, "native"),
        ("https://app.example/cb", None, "web"),
    ] {
        let reply = registered(redirect, kind).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{redirect} {kind:?}: {}", text(&reply));
        assert_eq!(reply.json()["application_type"], answered, "{redirect} {kind:?}");
    }
    // A website cannot redirect to this computer or to an app's scheme.
    for redirect in ["http://127.0.0.1:8765/cb", "https://localhost/cb", "https://[::1]/cb", "com.example.app:/cb"] {
        let reply = registered(redirect, Some("web")).await;
        assert_eq!(reply.json()["error"], "invalid_redirect_uri", "{redirect}");
    }
    for kind in [json!("desktop"), json!(1)] {
        let metadata = json!({"redirect_uris": ["https://app.example/cb"], "application_type": kind});
        assert_eq!(register(&app, metadata).await.json()["error"], "invalid_client_metadata", "{kind}");
    }

    let strict = is::app("[issuer]\nrequire_application_type = true").await;
    let metadata = json!({"redirect_uris": ["http://127.0.0.1:8765/cb"], "token_endpoint_auth_method": "none"});
    let reply = register(&strict, metadata.clone()).await;
    // Refused for want of one, whatever its redirect URIs imply.
    assert_eq!(
        (reply.status, reply.json()["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_client_metadata"))
    );
    let mut stated = metadata;
    stated["application_type"] = json!("native");
    assert_eq!(register(&strict, stated).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn beyond_the_limit_the_oldest_unused_registration_makes_room_and_registration_can_be_switched_off() {
    let app = is::app("[issuer]\nmax_registered_clients = 1").await;
    let metadata = json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"});
    let first = register(&app, metadata.clone()).await.json()["client_id"].as_str().unwrap().to_owned();
    let second = register(&app, metadata.clone()).await;
    assert_eq!(second.status, StatusCode::CREATED, "registration stays open to everyone");
    let pkce = Pkce::new();
    let gone = get(&app, &authorize_uri(&first, "https://a.example/cb", &pkce, &[])).await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST, "the oldest unused registration made room");
    let second = second.json()["client_id"].as_str().unwrap().to_owned();
    let kept = get(&app, &authorize_uri(&second, "https://a.example/cb", &pkce, &[])).await;
    assert_eq!(kept.status, StatusCode::OK);
    let app = is::app("[issuer]\ndynamic_registration = false").await;
    assert_eq!(register(&app, metadata).await.status, StatusCode::NOT_FOUND);
    let metadata = get(&app, "/.well-known/oauth-authorization-server").await.json();
    assert!(metadata.get("registration_endpoint").is_none());
}

/// A JSON server on 127.0.0.1 (a client's metadata document, an identity provider), counting hits.
struct JsonServer {
    base: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JsonServer {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Serves `documents(base, path)` as JSON, or 404 when it gives `None`.
async fn json_server(documents: impl Fn(&str, &str) -> Option<Value> + Send + Sync + 'static) -> JsonServer {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counter, own) = (hits.clone(), base.clone());
    let documents = std::sync::Arc::new(documents);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let document = documents(&own, uri.path());
        async move {
            match document {
                Some(document) => axum::Json(document).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    JsonServer { base, hits }
}

/// Serves one client metadata document at `/client.json`, made from its own URL.
async fn document_server(document: impl Fn(&str) -> Value + Send + Sync + 'static) -> JsonServer {
    json_server(move |base, path| (path == "/client.json").then(|| document(&format!("{base}/client.json")))).await
}

#[tokio::test]
async fn a_client_id_metadata_document_client_completes_the_flow() {
    let server = document_server(|url| {
        json!({
            "client_id": url,
            "client_name": "Metadata <Client>",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
    })
    .await;
    let app = is::app("[issuer]\nallow_loopback_http_client_ids = true").await;
    let pkce = Pkce::new();
    let redirect = "http://127.0.0.1:5123/callback";
    let mut browser = Browser::new(&app);
    let page = browser
        .consent_page(&authorize_uri(&server.url("/client.json"), redirect, &pkce, &[]), "bob", BOB_PASSWORD)
        .await;
    let html = text(&page);
    assert!(html.contains("Metadata &lt;Client&gt;"), "{html}");
    assert!(html.contains("has not verified this application"));
    let callback = browser.decide(&page, "allow").await.header("location").unwrap().to_owned();
    let tokens = redeem(&app, &server.url("/client.json"), &callback, redirect, &pkce).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", text(&tokens));
    let tokens = tokens.json();
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["client_id"], server.url("/client.json").as_str());
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(server.hits(), 1, "the document is cached");
}

#[tokio::test]
async fn metadata_documents_on_private_addresses_or_naming_another_client_are_refused_unfetched() {
    let server =
        document_server(|url| json!({"client_id": url, "client_name": "x", "redirect_uris": ["http://127.0.0.1/cb"]}))
            .await;
    let pkce = Pkce::new();
    // Without the development setting, loopback is off limits (SSRF) and nothing is fetched.
    let app = is::app("").await;
    for client_id in [server.url("/client.json").clone(), server.url("/client.json").replace("http://", "https://")] {
        let reply = get(&app, &authorize_uri(&client_id, "http://127.0.0.1:5/cb", &pkce, &[])).await;
        assert_eq!((reply.status, reply.header("location")), (StatusCode::BAD_REQUEST, None), "{client_id}");
    }
    assert_eq!(server.hits(), 0);

    let impostor = document_server(|_| json!({"client_id": "https://trusted.example/client.json", "client_name": "x", "redirect_uris": ["http://127.0.0.1/cb"]})).await;
    let app = is::app("[issuer]\nallow_loopback_http_client_ids = true").await;
    let reply = get(&app, &authorize_uri(&impostor.url("/client.json"), "http://127.0.0.1:5/cb", &pkce, &[])).await;
    assert_eq!((reply.status, reply.header("location")), (StatusCode::BAD_REQUEST, None));
    assert!(text(&reply).contains("client_id is not its URL"), "{}", text(&reply));
}

// --- the pages: CSRF, injection, cookies, sign-in ---------------------------------------------

#[tokio::test]
async fn a_consent_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = is::app("").await;
    let mut browser = Browser::new(&app);
    let page =
        browser.consent_page(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[]), "bob", BOB_PASSWORD).await;
    let request = is::hidden(&text(&page), "request").unwrap();
    for fields in [
        vec![("request", request.as_str()), ("decision", "allow")],
        vec![("request", request.as_str()), ("csrf", "forged"), ("decision", "allow")],
    ] {
        let reply = browser.post("/authorize/consent", &fields).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(reply.header("location").is_none());
    }
    // The same form from another browser (the attacker's page in the victim's... or vice versa).
    let mut stranger = Browser::new(&app);
    stranger.cookies = browser.cookies.clone();
    stranger.cookies.remove("mcp_as_browser");
    let csrf = is::hidden(&text(&page), "csrf").unwrap();
    let reply =
        stranger.post("/authorize/consent", &[("request", &request), ("csrf", &csrf), ("decision", "allow")]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Nothing changed: the genuine form still works, once.
    let answer = browser.decide(&page, "allow").await;
    assert!(query_of(answer.header("location").unwrap()).contains_key("code"));
    assert_eq!(browser.decide(&page, "allow").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_sign_in_without_its_csrf_token_is_refused() {
    let app = is::app("").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[])).await;
    let request = is::hidden(&text(&page), "request").unwrap();
    let reply = browser
        .post("/authorize/login", &[("request", &request), ("username", "bob"), ("password", BOB_PASSWORD)])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(!browser.cookies.contains_key("mcp_as_session"), "not signed in");
}

#[tokio::test]
async fn html_in_client_names_is_escaped_on_every_page() {
    let app = is::app("").await;
    let name = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'";
    let client = register(
        &app,
        json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": name}),
    )
    .await
    .json();
    let id = client["client_id"].as_str().unwrap();
    let mut browser = Browser::new(&app);
    let uri = authorize_uri(id, REDIRECT_URI, &Pkce::new(), &[("state", "\"><script>alert(3)</script>")]);
    let login = browser.get(&uri).await;
    let signed_in = browser.sign_in(&login, "<b>bob</b>", "nope").await;
    let consent = browser.consent_page(&uri, "bob", BOB_PASSWORD).await;
    for page in [&login, &signed_in, &consent] {
        let html = text(page);
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{html}");
    }
}

#[tokio::test]
async fn pages_are_plain_framing_proof_and_set_httponly_samesite_cookies() {
    let app = is::app("").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[])).await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let html = text(&page);
    assert!(html.contains("<label for=\"username\">") && html.contains("<label for=\"password\">"));
    assert!(html.contains("<h1>") && html.contains("lang=\"en\"") && !html.contains("<script"));
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/authorize"));
    assert!(!cookie.contains("Secure"), "plain http in tests");
    let signed_in = browser.sign_in(&page, "bob", BOB_PASSWORD).await;
    let session = signed_in.header("set-cookie").unwrap();
    assert!(session.starts_with("mcp_as_session=") && session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(session.contains("Path=/authorize") && session.contains("Max-Age="), "{session}");

    let app = is::app("[server]\npublic_url = \"https://mcp.example.com\"").await;
    let page = Browser::new(&app)
        .get(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[("resource", "https://mcp.example.com/mcp")]))
        .await;
    assert!(page.header("set-cookie").unwrap().contains("; Secure"));

    // Behind a path prefix, the cookies are scoped to the /authorize paths the browser sees.
    let app = is::app("[server]\npublic_url = \"https://mcp.example.com/tenant\"").await;
    let resource = ("resource", "https://mcp.example.com/tenant/mcp");
    let page = Browser::new(&app).get(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[resource])).await;
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.contains("Path=/tenant/authorize") && cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_wrong_password_signs_nobody_in_and_repeated_failures_are_rate_limited() {
    let app = is::app("[issuer]\nlogin_max_attempts = 2").await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize_uri(CLIENT_ID, REDIRECT_URI, &Pkce::new(), &[])).await;
    for _ in 0..2 {
        let reply = browser.sign_in(&page, "bob", "wrong").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(text(&reply).contains("Wrong username or password."));
        assert!(text(&reply).contains("role=\"alert\""));
    }
    assert!(!browser.cookies.contains_key("mcp_as_session"));
    let limited = browser.sign_in(&page, "bob", BOB_PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(limited.header("retry-after").is_some());
    // Other usernames are not locked out by bob's failures; unknown ones fail like wrong passwords.
    assert_eq!(browser.sign_in(&page, "nobody", "x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(browser.sign_in(&page, "ALICE", ALICE_PASSWORD).await.status, StatusCode::SEE_OTHER);
}

// --- start-up rules ------------------------------------------------------------------------------

#[tokio::test]
async fn the_published_dev_users_refuse_a_public_bind_unless_allowed() {
    let dev = include_str!("../config/dev.toml");
    let layers = |extra: &str| {
        mcp_auth_server::Settings::from_toml_layers(&[common::TEST_LAYER, &common::auth_settings(), dev, extra])
            .expect("settings")
    };
    let public = layers("[server]\nbind = \"0.0.0.0:3000\"\npublic_url = \"https://mcp.example.com\"");
    let err = mcp_auth_server::app(&public).await.expect_err("refused").to_string();
    assert!(err.contains("published development password") && err.contains("alice"), "{err}");
    let allowed = layers(
        "[server]\nbind = \"0.0.0.0:3000\"\npublic_url = \"https://mcp.example.com\"\n[issuer]\nallow_dev_users_on_public_bind = true",
    );
    assert!(mcp_auth_server::app(&allowed).await.is_ok());
    assert!(mcp_auth_server::app(&layers("")).await.is_ok(), "loopback is fine");
    // Own users on a public bind are fine.
    let own = is::settings("[server]\nbind = \"0.0.0.0:3000\"\npublic_url = \"https://mcp.example.com\"");
    assert!(mcp_auth_server::app(&own).await.is_ok());
}

#[test]
fn the_dev_profile_passwords_are_the_documented_ones() {
    let dev = include_str!("../config/dev.toml");
    let settings = mcp_auth_server::Settings::from_toml(dev).unwrap();
    let users: Vec<(&str, &str)> =
        settings.issuer.users.iter().map(|u| (u.username.as_str(), u.password_hash.expose_secret())).collect();
    for (user, password) in [("alice", "wonderland"), ("bob", "builder"), ("guest", "guest")] {
        let hash = users.iter().find(|(u, _)| *u == user).unwrap().1;
        assert!(mcp_auth_server::issuer::password::verify_password(hash, password), "{user}");
    }
    let service = &settings.issuer.clients[0];
    assert!(mcp_auth_server::issuer::password::verify_password(
        service.secret_hash.expose_secret(),
        "dev-service-secret"
    ));
}

#[tokio::test]
async fn bad_issuer_configuration_stops_start_up_naming_the_key() {
    let cases = [
        ("[issuer]\ncode_ttl_secs = 61", "issuer.code_ttl_secs"),
        ("[[issuer.users]]\nusername = \"x\"\npassword_hash = \"plain\"\nroles = [\"user\"]", "password_hash"),
        ("[[issuer.users]]\nusername = \"x\"\npassword_hash = \"plain\"\nroles = []", "role"),
        ("[[issuer.clients]]\nclient_id = \"c\"\ngrant_types = [\"client_credentials\"]", "client_credentials"),
        ("[[issuer.clients]]\nclient_id = \"c\"\nredirect_uris = [\"http://evil.example/cb\"]", "redirect_uris"),
    ];
    for (toml, key) in cases {
        let err =
            match mcp_auth_server::Settings::from_toml_layers(&[common::TEST_LAYER, &common::auth_settings(), toml]) {
                Err(err) => err.to_string(),
                Ok(settings) => mcp_auth_server::app(&settings).await.expect_err(toml).to_string(),
            };
        assert!(err.contains(key), "{toml}: {err}");
    }
    let hash = mcp_auth_server::issuer::hash_password("x");
    let unknown_role = format!("[[issuer.users]]\nusername = \"x\"\npassword_hash = \"{hash}\"\nroles = [\"wizard\"]");
    let settings = common::test_settings_with(&unknown_role);
    let err = mcp_auth_server::app(&settings).await.err().unwrap().to_string();
    assert!(err.contains("wizard"), "{err}");
}

#[tokio::test]
async fn health_reports_the_issuer() {
    let app = is::app("").await;
    let health = get(&app, "/health").await.json();
    assert_eq!(health["issuer"]["issuer"], ISSUER);
    assert_eq!(health["issuer"]["users"], 3);
}
