//! Tokens that die with their grant (feature `issuer`, issue 29 items 3 and 4): a replayed code,
//! a reused refresh token and RFC 7009 revocation refuse the grant's access tokens at `/mcp`, on
//! this instance and on every instance sharing the store; RFC 7662 introspection for
//! confidential clients.

mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::failing_store::{FailingTable, Fails};
use common::issuer::{
    self as is, ALICE_PASSWORD, BOB_PASSWORD, Browser, CLIENT_ID, ISSUER, Pkce, REDIRECT_URI, RESOURCE, SERVICE_SECRET,
    authorize_uri, claims, form, redeem, text, token_request,
};
use common::tokens::{TokenBuilder, now};
use common::{Reply, modern, send_as_is};
use mcp_auth_server::store::{MemoryStore, Store};
use mcp_auth_server::store_redis::RedisStore;
use redis_server::RedisServer;
use serde_json::{Value, json};

/// A `server/discover` on `/mcp` with `token`.
async fn mcp(app: &Router, token: &str) -> Reply {
    let mut request = modern(1, "server/discover", json!({}));
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    send_as_is(app, request).await
}

/// Asserts that `/mcp` refuses `token` as RFC 6750 says: 401 with `invalid_token`.
async fn assert_refused(app: &Router, token: &str, why: &str) {
    let reply = mcp(app, token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{why}: {}", text(&reply));
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{why}: {challenge}");
}

async fn assert_accepted(app: &Router, token: &str, why: &str) {
    let reply = mcp(app, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{why}: {}", text(&reply));
}

/// POSTs a form to `path`, with Basic credentials when given.
async fn post_form(app: &Router, path: &str, fields: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut builder = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        builder = builder.header("authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))));
    }
    send_as_is(app, builder.body(Body::from(form(fields))).unwrap()).await
}

/// `/revoke` by the public test client.
async fn revoke(app: &Router, token: &str, hint: Option<&str>) -> Reply {
    let mut fields = vec![("token", token), ("client_id", CLIENT_ID)];
    if let Some(hint) = hint {
        fields.push(("token_type_hint", hint));
    }
    post_form(app, "/revoke", &fields, None).await
}

/// `/introspect` by the configured confidential client `test-service`.
async fn introspect(app: &Router, token: &str) -> Value {
    let reply = post_form(app, "/introspect", &[("token", token)], Some(("test-service", SERVICE_SECRET))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.json()
}

async fn refresh(app: &Router, refresh_token: &str) -> Reply {
    token_request(
        app,
        &[("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("refresh_token", refresh_token)],
        None,
    )
    .await
}

/// The code flow for `user` with the public test client: the token response.
async fn tokens_for(app: &Router, user: &str, password: &str) -> Value {
    let pkce = Pkce::new();
    let callback =
        Browser::new(app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]), user, password).await;
    let reply = redeem(app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    reply.json()
}

fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().expect("an access token").to_owned()
}

fn refresh_token(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().expect("a refresh token").to_owned()
}

// --- tokens that die with their grant ---------------------------------------------------------

/// The security review's finding: "access token from the first redemption still 200 after the
/// replay".
#[tokio::test]
async fn after_a_code_replay_the_access_token_of_the_first_redemption_is_refused_at_mcp() {
    let app = is::app("").await;
    let pkce = Pkce::new();
    let callback =
        Browser::new(&app).authorize(&authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[]), "bob", BOB_PASSWORD).await;
    let first = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await.json();
    let token = access(&first);
    // Used, so it is in the token cache: the revocation must reach cached tokens too.
    assert_accepted(&app, &token, "before the replay").await;
    let replay = redeem(&app, CLIENT_ID, &callback, REDIRECT_URI, &pkce).await;
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_refused(&app, &token, "after the replay").await;
}

#[tokio::test]
async fn access_tokens_name_their_grant_by_a_digest_shared_along_the_family() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "alice", ALICE_PASSWORD).await;
    let rotated = refresh(&app, &refresh_token(&tokens)).await.json();
    let (first, second) = (claims(&access(&tokens)), claims(&access(&rotated)));
    let grant = first["grant_id"].as_str().expect("a grant_id claim");
    assert_eq!(grant.len(), 43, "a SHA-256 digest, base64url");
    assert_eq!(second["grant_id"], grant, "one grant along the rotation");
    let other = claims(&access(&tokens_for(&app, "alice", ALICE_PASSWORD).await));
    assert_ne!(other["grant_id"], grant, "another authorization, another grant");
}

#[tokio::test]
async fn a_reused_refresh_token_takes_every_access_token_of_its_family_with_it() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "alice", ALICE_PASSWORD).await;
    let first = refresh_token(&tokens);
    let rotated = refresh(&app, &first).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", text(&rotated));
    let rotated = rotated.json();
    for token in [access(&tokens), access(&rotated)] {
        assert_accepted(&app, &token, "before the reuse").await;
    }
    let other = tokens_for(&app, "bob", BOB_PASSWORD).await;
    assert_eq!(refresh(&app, &first).await.json()["error"], "invalid_grant", "the reuse");
    for token in [access(&tokens), access(&rotated)] {
        assert_refused(&app, &token, "after the reuse").await;
    }
    assert_accepted(&app, &access(&other), "another grant is untouched").await;
}

// --- RFC 7009 revocation ------------------------------------------------------------------------

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_grant_refresh_and_access_tokens_alike() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "bob", BOB_PASSWORD).await;
    assert_accepted(&app, &access(&tokens), "before").await;
    let reply = revoke(&app, &refresh_token(&tokens), Some("refresh_token")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(refresh(&app, &refresh_token(&tokens)).await.json()["error"], "invalid_grant");
    assert_refused(&app, &access(&tokens), "after the refresh token was revoked").await;
}

/// Revoking an access token revokes its grant (the documented choice): the token, and the
/// refresh token that would get another one.
#[tokio::test]
async fn revoking_an_access_token_refuses_it_at_mcp_and_ends_its_grant() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "bob", BOB_PASSWORD).await;
    assert_accepted(&app, &access(&tokens), "before").await;
    // The hint is not needed, and a wrong one changes nothing.
    let reply = revoke(&app, &access(&tokens), Some("refresh_token")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    assert_refused(&app, &access(&tokens), "after its revocation").await;
    assert_eq!(refresh(&app, &refresh_token(&tokens)).await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_client_credentials_token_is_revoked_alone() {
    let app = is::app("").await;
    let get = || async {
        let reply =
            token_request(&app, &[("grant_type", "client_credentials")], Some(("test-service", SERVICE_SECRET))).await;
        access(&reply.json())
    };
    let (one, two) = (get().await, get().await);
    assert_ne!(claims(&one)["grant_id"], claims(&two)["grant_id"]);
    let reply = post_form(&app, "/revoke", &[("token", &one)], Some(("test-service", SERVICE_SECRET))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", text(&reply));
    assert_refused(&app, &one, "revoked").await;
    assert_accepted(&app, &two, "its sibling").await;
}

#[tokio::test]
async fn another_clients_tokens_are_not_revoked() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "bob", BOB_PASSWORD).await;
    for token in [access(&tokens), refresh_token(&tokens)] {
        let reply = post_form(&app, "/revoke", &[("token", &token)], Some(("test-service", SERVICE_SECRET))).await;
        assert_eq!(reply.status, StatusCode::OK, "the RFC's answer, whoever's token: {}", text(&reply));
    }
    assert_accepted(&app, &access(&tokens), "still bob's client's").await;
    assert_eq!(refresh(&app, &refresh_token(&tokens)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn revocation_answers_200_for_unknown_tokens_and_refuses_bad_requests_and_clients() {
    let app = is::app("").await;
    for token in ["unknown", "a.b.c", &"x".repeat(43)] {
        let reply = revoke(&app, token, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{token}: {}", text(&reply));
        assert!(reply.body.is_empty());
    }
    let missing = post_form(&app, "/revoke", &[("client_id", CLIENT_ID)], None).await;
    assert_eq!((missing.status, missing.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let repeated = post_form(&app, "/revoke", &[("token", "a"), ("token", "b"), ("client_id", CLIENT_ID)], None).await;
    assert_eq!(repeated.json()["error"], "invalid_request");
    let anonymous = post_form(&app, "/revoke", &[("token", "a")], None).await;
    assert_eq!(
        (anonymous.status, anonymous.json()["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let wrong = post_form(&app, "/revoke", &[("token", "a")], Some(("test-service", "wrong"))).await;
    assert_eq!((wrong.status, wrong.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let unknown = post_form(&app, "/revoke", &[("token", "a"), ("client_id", "nobody")], None).await;
    assert_eq!(unknown.json()["error"], "invalid_client");
}

#[tokio::test]
async fn metadata_advertises_revocation_and_introspection() {
    let app = is::app("").await;
    let reply =
        send_as_is(&app, Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap()).await;
    let metadata = reply.json();
    assert_eq!(metadata["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(
        metadata["revocation_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
    assert_eq!(metadata["introspection_endpoint"], format!("{ISSUER}/introspect"));
    assert_eq!(
        metadata["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
}

// --- RFC 7662 introspection ------------------------------------------------------------------------

#[tokio::test]
async fn introspection_describes_live_tokens_and_nothing_else() {
    let app = is::app("").await;
    let tokens = tokens_for(&app, "alice", ALICE_PASSWORD).await;
    let token = access(&tokens);
    let issued = claims(&token);
    let answer = introspect(&app, &token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["client_id"], CLIENT_ID);
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["aud"], RESOURCE);
    assert_eq!(answer["iss"], ISSUER);
    for member in ["scope", "exp", "iat"] {
        assert_eq!(answer[member], issued[member], "{member}");
    }

    let first_refresh = refresh_token(&tokens);
    let answer = introspect(&app, &first_refresh).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!((answer["client_id"].as_str(), answer["username"].as_str()), (Some(CLIENT_ID), Some("alice")));
    assert_eq!(answer["scope"], issued["scope"]);
    assert!(answer["exp"].as_i64().unwrap() > answer["iat"].as_i64().unwrap());

    // Rotated: the old refresh token is spent; the new one is live.
    let rotated = refresh(&app, &first_refresh).await.json();
    assert_eq!(introspect(&app, &first_refresh).await, json!({"active": false}));
    assert_eq!(introspect(&app, &refresh_token(&rotated)).await["active"], true);

    for unknown in ["unknown", "a.b.c", &"x".repeat(43)] {
        assert_eq!(introspect(&app, unknown).await, json!({"active": false}), "{unknown}");
    }

    // Revoked: every token of the grant.
    assert_eq!(revoke(&app, &refresh_token(&rotated), None).await.status, StatusCode::OK);
    for token in [token, access(&rotated), refresh_token(&rotated)] {
        assert_eq!(introspect(&app, &token).await, json!({"active": false}));
    }
}

#[tokio::test]
async fn an_expired_access_token_is_inactive_even_within_the_resource_servers_leeway() {
    let app = is::app("").await;
    let live = TokenBuilder::new().claim("client_id", CLIENT_ID).build();
    assert_eq!(introspect(&app, &live).await["active"], true, "signed with the same key, live");
    // `jwt.leeway_secs` (60) lets /mcp accept it for clock skew; introspection says what it is.
    let just_expired = TokenBuilder::new().claim("client_id", CLIENT_ID).expires_at(now() - 5).build();
    assert_accepted(&app, &just_expired, "within the leeway").await;
    assert_eq!(introspect(&app, &just_expired).await, json!({"active": false}));
    let expired = TokenBuilder::new().claim("client_id", CLIENT_ID).expired().build();
    assert_eq!(introspect(&app, &expired).await, json!({"active": false}));
}

#[tokio::test]
async fn introspection_is_for_confidential_clients_only() {
    let app = is::app("").await;
    let token = access(&tokens_for(&app, "bob", BOB_PASSWORD).await);
    let public = post_form(&app, "/introspect", &[("token", &token), ("client_id", CLIENT_ID)], None).await;
    assert_eq!((public.status, public.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let wrong = post_form(&app, "/introspect", &[("token", &token)], Some(("test-service", "wrong"))).await;
    assert_eq!((wrong.status, wrong.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let anonymous = post_form(&app, "/introspect", &[("token", &token)], None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let post = post_form(
        &app,
        "/introspect",
        &[("token", &token), ("client_id", "test-service"), ("client_secret", SERVICE_SECRET)],
        None,
    )
    .await;
    assert_eq!(post.json()["active"], true, "client_secret_post works too");
}

#[tokio::test]
async fn a_self_registered_client_learns_nothing_about_other_clients_tokens() {
    let app = is::app("").await;
    let token = access(&tokens_for(&app, "bob", BOB_PASSWORD).await);
    let registration = send_as_is(
        &app,
        Request::post("/register")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "client_secret_basic"})
                    .to_string(),
            ))
            .unwrap(),
    )
    .await
    .json();
    let (id, secret) = (registration["client_id"].as_str().unwrap(), registration["client_secret"].as_str().unwrap());
    let answer = post_form(&app, "/introspect", &[("token", &token)], Some((id, secret))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    assert_eq!(answer.json(), json!({"active": false}));
    assert_eq!(introspect(&app, &token).await["active"], true, "the configured service sees it");
}

// --- failing closed ------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_token_is_refused_with_503_while_revocations_cannot_be_read_and_a_cached_one_is_not() {
    let store = Arc::new(FailingTable::new("as_revoked", Fails::Reads, false));
    let app = mcp_auth_server::AppBuilder::new(is::settings("")).store(store.clone()).build().await.unwrap();
    let cached = access(&tokens_for(&app, "bob", BOB_PASSWORD).await);
    assert_accepted(&app, &cached, "first use, read from the store").await;
    let fresh = access(&tokens_for(&app, "alice", ALICE_PASSWORD).await);
    store.set_failing(true);
    let reply = mcp(&app, &fresh).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", text(&reply));
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_accepted(&app, &cached, "checked when it was first seen: the cache answers").await;
    store.set_failing(false);
    assert_accepted(&app, &fresh, "the store is back").await;
}

// --- several instances ------------------------------------------------------------------------------

/// Two instances on one store (`memory`: the same store object; `redis`: one connection each).
async fn pair(backend: &str) -> (Router, Router, Option<RedisServer>) {
    let (stores, redis): ([Arc<dyn Store>; 2], _) = match backend {
        "memory" => {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            ([store.clone(), store], None)
        }
        _ => {
            let redis = RedisServer::start();
            let connect = || async { Arc::new(RedisStore::connect(&redis.url()).await.unwrap()) as Arc<dyn Store> };
            ([connect().await, connect().await], Some(redis))
        }
    };
    let [a, b] = stores;
    let build = |store| mcp_auth_server::AppBuilder::new(is::settings("")).store(store).build();
    (build(a).await.unwrap(), build(b).await.unwrap(), redis)
}

async fn a_grant_revoked_on_one_instance_is_refused_by_the_other(backend: &str) {
    let (a, b, _redis) = pair(backend).await;
    let tokens = tokens_for(&a, "bob", BOB_PASSWORD).await;
    let (token, other) = (access(&tokens), access(&tokens_for(&a, "alice", ALICE_PASSWORD).await));
    // B has verified (and cached) both.
    assert_accepted(&b, &token, "on B before").await;
    assert_accepted(&b, &other, "on B before").await;
    assert_eq!(revoke(&a, &refresh_token(&tokens), None).await.status, StatusCode::OK);
    assert_refused(&a, &token, "on A, at once").await;
    // B hears of it on the store's channel (within a millisecond or so).
    let mut status = StatusCode::OK;
    for _ in 0..200 {
        status = mcp(&b, &token).await.status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked on A, refused on B");
    assert_accepted(&b, &other, "another grant, on B").await;
}

async fn a_token_first_seen_by_the_other_instance_after_the_revocation_is_refused(backend: &str) {
    let (a, b, _redis) = pair(backend).await;
    let tokens = tokens_for(&a, "bob", BOB_PASSWORD).await;
    assert_eq!(revoke(&a, &access(&tokens), None).await.status, StatusCode::OK);
    // No message needed: B reads the store on a token it has not seen.
    assert_refused(&b, &access(&tokens), "on B").await;
}

mod memory {
    #[tokio::test]
    async fn a_grant_revoked_on_one_instance_is_refused_by_the_other() {
        super::a_grant_revoked_on_one_instance_is_refused_by_the_other("memory").await
    }
    #[tokio::test]
    async fn a_token_first_seen_by_the_other_instance_after_the_revocation_is_refused() {
        super::a_token_first_seen_by_the_other_instance_after_the_revocation_is_refused("memory").await
    }
}

mod redis {
    #[tokio::test]
    async fn a_grant_revoked_on_one_instance_is_refused_by_the_other() {
        super::a_grant_revoked_on_one_instance_is_refused_by_the_other("redis").await
    }
    #[tokio::test]
    async fn a_token_first_seen_by_the_other_instance_after_the_revocation_is_refused() {
        super::a_token_first_seen_by_the_other_instance_after_the_revocation_is_refused("redis").await
    }
}
