//! Steps 5-6 (feature `jwt`): keys and JWKS, and access-token validation on `/mcp` that fails
//! closed. Remote-key tests serve their JWKS from a real HTTP server on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::tokens::{self, AUDIENCE, ISSUER, TokenBuilder};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_auth_server::Settings;
use mcp_auth_server::error::StartupError;
use mcp_auth_server::jwt::keyfile;
use mcp_auth_server::jwt::{ChallengeParams, Jwt, LocalKeys};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A modern `server/discover` with the given `Authorization` value (none: no header).
fn discover_as(authorization: Option<&str>) -> Request<Body> {
    let mut request = modern(1, "server/discover", json!({}));
    if let Some(value) = authorization {
        request.headers_mut().insert("authorization", value.parse().unwrap());
    }
    request
}

async fn discover_with(app: &Router, authorization: Option<&str>) -> Reply {
    send_as_is(app, discover_as(authorization)).await
}

async fn discover_with_token(app: &Router, token: &str) -> Reply {
    discover_with(app, Some(&format!("Bearer {token}"))).await
}

/// Asserts a 401 `invalid_token` challenge whose description mentions `reason`, with a JSON body.
fn assert_invalid_token(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", String::from_utf8_lossy(&reply.body));
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""), "{challenge}");
    assert!(challenge.contains(reason), "expected {reason:?} in {challenge}");
    assert_eq!(reply.json()["error"]["data"]["error"], "invalid_token");
}

fn assert_invalid_request(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&reply.body));
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Bearer error=\"invalid_request\""), "{challenge}");
    assert!(challenge.contains(reason), "expected {reason:?} in {challenge}");
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token with an arbitrary header and a garbage signature.
fn unsigned(header: Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(&header), b64(claims))
}

// ---------------------------------------------------------------------------------------------
// The header

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let reply = discover_with(&app().await, Some(&TokenBuilder::new().bearer())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    assert!(reply.json()["result"].is_object());
}

#[tokio::test]
async fn a_request_without_credentials_is_401_with_a_bare_bearer_challenge_and_a_json_body() {
    let reply = discover_with(&app().await, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.header("www-authenticate").unwrap();
    // The `oauth-meta` layer adds resource_metadata and scope; an error code never without a token.
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="), "{challenge}");
    let body = reply.json();
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["data"].get("error").is_none(), "no error code without a token: {body}");
}

#[tokio::test]
async fn another_scheme_counts_as_no_credentials() {
    let reply = discover_with(&app().await, Some("Basic YWxpY2U6c2VjcmV0")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="), "{challenge}");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = app().await;
    let token = TokenBuilder::new().build();
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let reply = discover_with(&app, Some(&format!("{scheme} {token}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused_even_with_a_valid_header() {
    let app = app().await;
    let token = TokenBuilder::new().build();
    for (query, header) in
        [(format!("access_token={token}"), None), (format!("a=1&access_token={token}"), Some(&token))]
    {
        let mut request = discover_as(header.map(|t| format!("Bearer {t}")).as_deref());
        *request.uri_mut() = format!("/mcp?{query}").parse::<Uri>().unwrap();
        let reply = send_as_is(&app, request).await;
        assert_invalid_request(&reply, "query string");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let mut request = discover_as(Some(&TokenBuilder::new().bearer()));
    request.headers_mut().append("authorization", TokenBuilder::new().subject("bob").bearer().parse().unwrap());
    let reply = send_as_is(&app().await, request).await;
    assert_invalid_request(&reply, "more than one Authorization header");
}

#[tokio::test]
async fn an_oversize_authorization_header_is_refused() {
    let app = app_with(&test_settings_with("[jwt]\nmax_header_bytes = 2048")).await;
    let padding = "x".repeat(4096);
    let reply = discover_with(&app, Some(&TokenBuilder::new().claim("padding", padding).bearer())).await;
    assert_invalid_request(&reply, "too large");
}

#[tokio::test]
async fn empty_bearer_credentials_are_refused() {
    let reply = discover_with(&app().await, Some("Bearer ")).await;
    assert_invalid_request(&reply, "malformed Bearer credentials");
}

// ---------------------------------------------------------------------------------------------
// The claims

#[tokio::test]
async fn an_expired_token_is_refused() {
    let reply = discover_with(&app().await, Some(&TokenBuilder::new().expired().bearer())).await;
    assert_invalid_token(&reply, "token expired");
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let reply = discover_with(&app().await, Some(&TokenBuilder::new().without("exp").bearer())).await;
    assert_invalid_token(&reply, "no valid exp");
}

#[tokio::test]
async fn a_token_whose_nbf_is_in_the_future_is_refused_but_leeway_applies() {
    let app = app().await;
    let later = tokens::now() + 600;
    assert_invalid_token(
        &discover_with(&app, Some(&TokenBuilder::new().not_before(later).bearer())).await,
        "not yet valid",
    );
    // Within the default 60 s leeway: a clock slightly ahead at the issuer is tolerated.
    let soon = tokens::now() + 30;
    let reply = discover_with(&app, Some(&TokenBuilder::new().not_before(soon).bearer())).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let reply =
        discover_with(&app().await, Some(&TokenBuilder::new().claim("iat", tokens::now() + 600).bearer())).await;
    assert_invalid_token(&reply, "issued in the future");
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let app = app().await;
    for iss in ["https://evil.example.com", "http://127.0.0.1:3000/", "HTTP://127.0.0.1:3000"] {
        let reply = discover_with(&app, Some(&TokenBuilder::new().issuer(iss).bearer())).await;
        assert_invalid_token(&reply, "wrong issuer");
    }
    let reply = discover_with(&app, Some(&TokenBuilder::new().without("iss").bearer())).await;
    assert_invalid_token(&reply, "wrong issuer");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let app = app().await;
    for aud in [json!("https://other.example.com/mcp"), json!("http://127.0.0.1:3000"), json!(["a", "b"]), json!(42)] {
        let reply = discover_with(&app, Some(&TokenBuilder::new().claim("aud", aud.clone()).bearer())).await;
        assert_invalid_token(&reply, "not issued for this resource");
    }
}

#[tokio::test]
async fn an_audience_list_naming_this_server_is_accepted() {
    let token = TokenBuilder::new().claim("aud", json!(["https://api.example.com", AUDIENCE])).bearer();
    assert_eq!(discover_with(&app().await, Some(&token)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_without_audience_is_refused() {
    let reply = discover_with(&app().await, Some(&TokenBuilder::new().without("aud").bearer())).await;
    assert_invalid_token(&reply, "no audience");
}

#[tokio::test]
async fn extra_audiences_are_accepted_and_enforcement_can_be_switched_off_explicitly() {
    let app = app_with(&test_settings_with("[jwt]\nextra_audiences = [\"api://mcp\"]")).await;
    assert_eq!(
        discover_with(&app, Some(&TokenBuilder::new().audience("api://mcp").bearer())).await.status,
        StatusCode::OK
    );

    let lax = app_with(&test_settings_with("[jwt]\nenforce_audience = false")).await;
    assert_eq!(discover_with(&lax, Some(&TokenBuilder::new().without("aud").bearer())).await.status, StatusCode::OK);
    let other = TokenBuilder::new().audience("https://other.example.com").bearer();
    assert_eq!(discover_with(&lax, Some(&other)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_without_subject_is_refused() {
    let reply = discover_with(&app().await, Some(&TokenBuilder::new().without("sub").bearer())).await;
    assert_invalid_token(&reply, "no valid sub");
}

// ---------------------------------------------------------------------------------------------
// The signature

#[tokio::test]
async fn alg_none_is_refused() {
    let app = app().await;
    let claims = TokenBuilder::new().claims();
    for alg in ["none", "None", "NONE"] {
        for signature in ["", "c2lnbmF0dXJl"] {
            let token = unsigned(json!({ "alg": alg, "typ": "JWT" }), &claims, signature);
            assert_invalid_token(&discover_with_token(&app, &token).await, "algorithm not accepted");
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_as_hmac_secret_is_refused() {
    let app = app().await;
    let keys = tokens::local_keys();
    let public_pem = std::fs::read(tokens::key_dir().join("public.pem")).unwrap();
    let jwk_n = keys.key_set().jwks()["keys"][0]["n"].as_str().unwrap().to_owned();
    for secret in [public_pem, jwk_n.into_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = keys.kid().map(str::to_owned);
        let token =
            jsonwebtoken::encode(&header, &TokenBuilder::new().claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_invalid_token(&discover_with_token(&app, &token).await, "algorithm not accepted");
    }
}

#[tokio::test]
async fn an_algorithm_not_on_the_allow_list_is_refused_even_with_a_good_signature() {
    // The test key is RSA; PS256 is a fine algorithm for it, but only RS256 is configured.
    let signer = tokens::rsa_signer("ps256");
    let token = signer.sign(Algorithm::PS256, &TokenBuilder::new().claims()).unwrap();
    assert_invalid_token(&discover_with_token(&app().await, &token).await, "algorithm not accepted");
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_is_refused() {
    let stranger = tokens::rsa_signer("stranger");
    let token = TokenBuilder::new().signed_with(&stranger).build();
    assert_invalid_token(&discover_with_token(&app().await, &token).await, "unknown signing key");
}

#[tokio::test]
async fn a_foreign_signature_under_our_kid_is_refused() {
    let stranger = tokens::rsa_signer("impostor");
    let token = TokenBuilder::new().signed_with(&stranger).build();
    // Swap in our kid: the key is found, the signature does not match it.
    let ours = tokens::local_keys().kid().unwrap();
    let (header, rest) = token.split_once('.').unwrap();
    let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"] = json!(ours);
    let forged = format!("{}.{rest}", b64(&header));
    assert_invalid_token(&discover_with_token(&app().await, &forged).await, "invalid signature");
}

#[tokio::test]
async fn a_payload_tampered_after_signing_is_refused() {
    let token = TokenBuilder::new().subject("alice").scopes(&["mcp:read"]).build();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("admin");
    claims["scope"] = json!("mcp:read mcp:tools mcp:admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_invalid_token(&discover_with_token(&app().await, &tampered).await, "invalid signature");
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let app = app().await;
    let token = TokenBuilder::new().build();
    let parts: Vec<&str> = token.split('.').collect();
    let cases = [
        (format!("{}.{}.{}", parts[0], "e30*", parts[2]), "base64url"),
        (format!("{}=.{}.{}", parts[0], parts[1], parts[2]), "base64url"),
        (format!("{}.{}.{}", parts[0], parts[1], parts[2].replace(['-', '_'], "+")), ""),
        ("not-a-jwt".to_owned(), "not a JWT"),
        (format!("{}.{}", parts[0], parts[1]), "not a JWT"),
        (format!("{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[1], parts[2]), "encrypted or nested"),
        (format!("{}.{}.{}", b64(&json!("just a string")), parts[1], parts[2]), "malformed token header"),
        (format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("{not json"), parts[1], parts[2]), "malformed token header"),
    ];
    for (bad, reason) in cases {
        let reply = discover_with_token(&app, &bad).await;
        assert_invalid_token(&reply, reason);
    }
}

#[tokio::test]
async fn a_critical_header_extension_is_refused() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;

    let mut header = Header::new(Algorithm::RS256);
    header.kid = tokens::local_keys().kid().map(str::to_owned);
    header.crit = Some(vec!["exp".to_owned()]);
    header.extras.insert("exp", 1);
    // Signed by our key, but with a `crit` we cannot honour.
    let pem = std::fs::read_to_string(tokens::key_dir().join("private.pem")).unwrap();
    let der = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap().to_pkcs1_der().unwrap();
    let key = EncodingKey::from_rsa_der(der.as_bytes());
    let signer = |claims: &Value| jsonwebtoken::encode(&header, claims, &key).unwrap();
    let token = TokenBuilder::new().signed_with(&signer).build();
    assert_invalid_token(&discover_with_token(&app().await, &token).await, "critical header");
}

// ---------------------------------------------------------------------------------------------
// The principal and sessions

#[tokio::test]
async fn a_legacy_session_cannot_be_taken_over_by_another_subject_but_survives_a_token_refresh() {
    let app = app().await;
    let alice = TokenBuilder::new().subject("alice").bearer();
    let body = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    });
    let mut request = raw_post(body.to_string());
    request.headers_mut().insert("authorization", alice.parse().unwrap());
    let reply = send_as_is(&app, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    let session = reply.header("mcp-session-id").unwrap().to_owned();

    let ping = |authorization: String| {
        let mut request = legacy(&session, LEGACY, call(1, "ping", json!({})));
        request.headers_mut().insert("authorization", authorization.parse().unwrap());
        request
    };
    let bob = TokenBuilder::new().subject("bob").bearer();
    assert_eq!(send_as_is(&app, ping(bob)).await.status, StatusCode::NOT_FOUND);
    // A refreshed token (new exp, new jti) of the same subject keeps the session.
    let refreshed = TokenBuilder::new().subject("alice").claim("jti", "refreshed").expires_at(tokens::now() + 7200);
    assert_ne!(refreshed.claims()["exp"], TokenBuilder::new().claims()["exp"]);
    assert_eq!(send_as_is(&app, ping(refreshed.bearer())).await.status, StatusCode::OK);
    assert_eq!(send_as_is(&app, ping(alice)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn challenges_carry_the_parameters_the_composition_root_supplies() {
    let jwt = Jwt::from_settings(&test_settings(), None).await.unwrap();
    let params = ChallengeParams {
        resource_metadata: Some("http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp".into()),
        scope: Some(std::sync::Arc::new(|_: &axum::http::HeaderMap| Some("mcp:read".to_owned()))),
    };
    let app = Router::new().route("/mcp", axum::routing::post(|| async { "ok" })).route_layer(jwt.layer(params));
    let reply = discover_with(&app, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.header("www-authenticate").unwrap();
    assert_eq!(
        challenge,
        "Bearer scope=\"mcp:read\", resource_metadata=\"http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp\""
    );
    let reply = discover_with(&app, Some(&TokenBuilder::new().expired().bearer())).await;
    assert!(reply.header("www-authenticate").unwrap().contains("resource_metadata="), "on invalid tokens too");
    assert_eq!(discover_with(&app, Some(&TokenBuilder::new().bearer())).await.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Keys, JWKS, generation

#[tokio::test]
async fn the_jwks_publishes_public_members_only_with_thumbprint_kids_and_health_stays_public() {
    let app = app().await;
    let reply = send_as_is(&app, Request::get("/.well-known/jwks.json").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let jwks = reply.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(key.get(private).is_none(), "private member {private} published");
    }
    assert_eq!(
        (key["kty"].as_str(), key["use"].as_str(), key["alg"].as_str()),
        (Some("RSA"), Some("sig"), Some("RS256"))
    );
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    assert_eq!(key["kid"], keyfile::thumbprint(&n, &e));
    assert_eq!(key["kid"].as_str(), tokens::local_keys().kid());

    let health = send_as_is(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["jwt"]["source"], "local");
    assert_eq!(health.json()["jwt"]["keys"], 1);
}

#[test]
fn rfc_7638_thumbprint_matches_the_rfc_example() {
    // RFC 7638 section 3.1.
    let n = URL_SAFE_NO_PAD.decode(
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    )
    .unwrap();
    let e = URL_SAFE_NO_PAD.decode("AQAB").unwrap();
    assert_eq!(keyfile::thumbprint(&n, &e), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn a_missing_key_pair_is_generated_once_with_a_private_file_only_the_owner_can_read() {
    let dir = tokens::fresh_dir("generate");
    let (private, public) = (dir.join("k/private.pem"), [dir.join("k/public.pem")]);
    let first = keyfile::load_or_generate(&private, &public).unwrap();
    assert!(first.generated);
    let pem = std::fs::read_to_string(&private).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(std::fs::read_to_string(&public[0]).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = keyfile::load_or_generate(&private, &public).unwrap();
    assert!(!second.generated);
    let kid = |files: &keyfile::KeyFiles| files.signer.as_ref().unwrap().kid().to_owned();
    assert_eq!(kid(&first), kid(&second));

    // The public key is derived again when only it is missing.
    std::fs::remove_file(&public[0]).unwrap();
    let third = keyfile::load_or_generate(&private, &public).unwrap();
    assert_eq!((third.generated, kid(&third)), (false, kid(&first)));
    assert!(public[0].exists());
}

/// Only the development default paths are ever generated: a mistyped path stops start-up,
/// naming it, and writes nothing.
#[test]
fn the_server_never_writes_a_key_file_at_a_path_that_is_not_the_development_default() {
    let dir = tokens::fresh_dir("mistyped");
    let layer = |private: &std::path::Path, public: &std::path::Path| {
        format!(
            "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}]",
            private.display().to_string(),
            public.display().to_string()
        )
    };
    let (private, public) = (dir.join("prod-private.pem"), dir.join("prod-public.pem"));
    let err = LocalKeys::load_or_generate(&Settings::from_toml(&layer(&private, &public)).unwrap()).unwrap_err();
    assert!(err.to_string().contains("prod-private.pem") && err.to_string().contains("only generated"), "{err}");
    assert!(!private.exists() && !public.exists());

    // A private key that exists, and a public key path with a typo: refused, nothing derived.
    keyfile::load_or_generate(&private, std::slice::from_ref(&public)).unwrap();
    let typo = dir.join("prod-publc.pem");
    let err = LocalKeys::load_or_generate(&Settings::from_toml(&layer(&private, &typo)).unwrap()).unwrap_err();
    assert!(err.to_string().contains("prod-publc.pem"), "{err}");
    assert!(!typo.exists(), "no key file written at a mistyped path");
}

#[test]
fn a_missing_extra_public_key_or_a_garbage_key_file_stops_start_up() {
    let dir = tokens::fresh_dir("missing");
    let layer = format!(
        "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}, {:?}]",
        tokens::key_dir().join("private.pem").display().to_string(),
        tokens::key_dir().join("public.pem").display().to_string(),
        dir.join("old.pem").display().to_string()
    );
    tokens::local_keys();
    let err = LocalKeys::load_or_generate(&Settings::from_toml(&layer).unwrap()).unwrap_err();
    assert!(matches!(err, StartupError::Keys(_)) && err.to_string().contains("old.pem"), "{err}");

    std::fs::write(dir.join("old.pem"), "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n").unwrap();
    let err = LocalKeys::load_or_generate(&Settings::from_toml(&layer).unwrap()).unwrap_err();
    assert!(err.to_string().contains("not an RSA public key"), "{err}");
}

#[tokio::test]
async fn several_local_public_keys_are_all_accepted_and_published() {
    // Rotation on local files: the new pair signs, the old public key still verifies.
    let (old_dir, old) = tokens::rsa_pair("old");
    let (new_dir, new) = tokens::rsa_pair("new");
    let path = |dir: &std::path::Path, file: &str| dir.join(file).display().to_string();
    let settings = test_settings_with(&format!(
        "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}, {:?}]",
        path(&new_dir, "private.pem"),
        path(&new_dir, "public.pem"),
        path(&old_dir, "public.pem"),
    ));
    let app = app_with(&settings).await;
    for signer in [&old, &new] {
        let token = TokenBuilder::new().signed_with(signer).build();
        assert_eq!(discover_with_token(&app, &token).await.status, StatusCode::OK);
    }
    let jwks = send_as_is(&app, Request::get("/.well-known/jwks.json").body(Body::empty()).unwrap()).await.json();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, [new.kid(), old.kid()]);
}

#[test]
fn hmac_and_none_algorithms_cannot_even_be_configured() {
    for alg in ["HS256", "hs512", "none"] {
        let err = Settings::from_toml(&format!("[jwt]\nalgorithms = [\"{alg}\"]")).unwrap_err().to_string();
        assert!(err.contains("never accepted"), "{err}");
    }
    let err = Settings::from_toml("[jwt]\njwks_url = \"https://idp.example.com/jwks\"").unwrap_err().to_string();
    assert!(err.contains("jwt.issuer"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Remote keys: a real issuer on 127.0.0.1

#[derive(Default)]
struct IssuerState {
    documents: Mutex<HashMap<String, Value>>,
    hits: Mutex<HashMap<String, usize>>,
    down: AtomicBool,
    /// `/jwks` fails for this many more requests, then works.
    jwks_down_for: AtomicU64,
    delay_ms: AtomicU64,
}

/// A fake identity provider: serves JSON documents by path, counts requests, can go down.
struct Issuer {
    base: String,
    state: Arc<IssuerState>,
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(IssuerState::default());
        let shared = state.clone();
        let router = Router::new().fallback(move |uri: Uri| {
            let state = shared.clone();
            async move {
                let path = uri.path().to_owned();
                *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                let delay = state.delay_ms.load(Ordering::Relaxed);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                let jwks_down = path == "/jwks"
                    && state
                        .jwks_down_for
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok();
                if state.down.load(Ordering::Relaxed) || jwks_down {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                match state.documents.lock().unwrap().get(&path) {
                    Some(document) => axum::Json(document.clone()).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Issuer { base, state }
    }

    fn serve(&self, path: &str, document: Value) {
        self.state.documents.lock().unwrap().insert(path.to_owned(), document);
    }

    fn serve_keys(&self, keys: &[Value]) {
        self.serve("/jwks", json!({ "keys": keys }));
    }

    fn hits(&self, path: &str) -> usize {
        self.state.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::Relaxed);
    }

    /// Settings for an app that takes its keys from this issuer's `/jwks`.
    fn settings(&self, extra: &str) -> Settings {
        let remote = format!(
            "[jwt]\nissuer = \"{}\"\njwks_url = \"{}/jwks\"\nmin_refresh_interval_secs = 0\nstartup_timeout_secs = 0",
            self.base, self.base
        );
        Settings::from_toml_layers(&[TEST_LAYER, &auth_settings(), &remote, &format!("[jwt]\n{extra}")]).unwrap()
    }

    fn token(&self) -> TokenBuilder<'static> {
        TokenBuilder::new().issuer(&self.base)
    }
}

fn rsa_jwk(signer: &keyfile::Signer) -> Value {
    signer.public().jwk("RS256")
}

#[tokio::test]
async fn remote_key_rotation_accepts_a_new_kid_after_refresh_and_refuses_the_old_one_after_removal() {
    let issuer = Issuer::start().await;
    let (k1, k2) = (tokens::rsa_signer("k1"), tokens::rsa_signer("k2"));
    issuer.serve_keys(&[rsa_jwk(&k1)]);
    let app = app_with(&issuer.settings("")).await;
    let t1 = issuer.token().signed_with(&k1).build();
    let t2 = issuer.token().signed_with(&k2).build();
    assert_eq!(discover_with_token(&app, &t1).await.status, StatusCode::OK);
    assert_eq!(discover_with_token(&app, &t1).await.status, StatusCode::OK, "cached now");
    assert_eq!(issuer.hits("/jwks"), 1);

    // The issuer rotates: k2 appears. A token with the new kid triggers a refresh.
    issuer.serve_keys(&[rsa_jwk(&k1), rsa_jwk(&k2)]);
    assert_eq!(discover_with_token(&app, &t2).await.status, StatusCode::OK);
    assert_eq!(issuer.hits("/jwks"), 2);

    // k1 is retired. Once the keys are refreshed (here: triggered by another unknown kid), the
    // cached verification of t1 goes with it.
    issuer.serve_keys(&[rsa_jwk(&k2)]);
    let k3 = tokens::rsa_signer("k3");
    let t3 = issuer.token().signed_with(&k3).build();
    assert_invalid_token(&discover_with_token(&app, &t3).await, "unknown signing key");
    assert_eq!(issuer.hits("/jwks"), 3);
    assert_invalid_token(&discover_with_token(&app, &t1).await, "unknown signing key");
    assert_eq!(discover_with_token(&app, &t2).await.status, StatusCode::OK);
}

#[tokio::test]
async fn scheduled_refreshes_pick_up_removed_keys_and_keep_keys_while_the_issuer_is_down() {
    let issuer = Issuer::start().await;
    let (k1, k2) = (tokens::rsa_signer("s1"), tokens::rsa_signer("s2"));
    issuer.serve_keys(&[rsa_jwk(&k1), rsa_jwk(&k2)]);
    let app = app_with(&issuer.settings("refresh_interval_secs = 1\nmin_refresh_interval_secs = 3600")).await;
    let (t1, t2) = (issuer.token().signed_with(&k1).build(), issuer.token().signed_with(&k2).build());
    assert_eq!(discover_with_token(&app, &t1).await.status, StatusCode::OK);
    assert_eq!(discover_with_token(&app, &t2).await.status, StatusCode::OK);

    // The issuer goes down: the scheduled refresh fails, cached keys keep working.
    issuer.set_down(true);
    let failed = |jwt: &Value| jwt["last_error"].as_str().unwrap_or("").contains("503");
    wait_for_jwt_health(&app, "a scheduled refresh that fails", failed).await;
    assert_eq!(discover_with_token(&app, &t1).await.status, StatusCode::OK, "issuer down, cached keys still used");
    let fresh = issuer.token().signed_with(&k2).subject("dave").build();
    assert_eq!(discover_with_token(&app, &fresh).await.status, StatusCode::OK, "and verify new tokens");
    let health = send_as_is(&app, Request::get("/health").body(Body::empty()).unwrap()).await.json();
    assert!(health["jwt"]["last_error"].as_str().unwrap_or("").contains("503"), "{health}");
    assert_eq!(health["jwt"]["keys"], 2);

    // Back up without k1: the next scheduled refresh drops it.
    issuer.serve_keys(&[rsa_jwk(&k2)]);
    issuer.set_down(false);
    wait_for_jwt_health(&app, "a scheduled refresh without k1", |jwt| jwt["keys"] == 1).await;
    assert_invalid_token(&discover_with_token(&app, &t1).await, "unknown signing key");
    assert_eq!(discover_with_token(&app, &t2).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_refused_while_the_issuer_is_down_and_known_ones_still_pass() {
    let issuer = Issuer::start().await;
    let k1 = tokens::rsa_signer("d1");
    issuer.serve_keys(&[rsa_jwk(&k1)]);
    let app = app_with(&issuer.settings("")).await;
    issuer.set_down(true);
    let other = tokens::rsa_signer("d2");
    assert_invalid_token(
        &discover_with_token(&app, &issuer.token().signed_with(&other).build()).await,
        "unknown signing key",
    );
    let t1 = issuer.token().signed_with(&k1).build();
    assert_eq!(discover_with_token(&app, &t1).await.status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_unknown_kid_misses_share_one_fetch_and_a_flood_of_them_is_rate_limited() {
    let issuer = Issuer::start().await;
    let k1 = tokens::rsa_signer("f1");
    issuer.serve_keys(&[rsa_jwk(&k1)]);
    let bogus = |i: usize| {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": format!("bogus-{i}") });
        unsigned(header, &issuer.token().claims(), "c2ln")
    };

    // No minimum interval: twenty simultaneous misses still cause a single fetch. The issuer
    // answers that fetch slowly, so all twenty misses arrive while it is under way (over TCP,
    // where tokio's clock cannot be paused, this is real time).
    let app = app_with(&issuer.settings("")).await;
    assert_eq!(issuer.hits("/jwks"), 1);
    issuer.state.delay_ms.store(200, Ordering::Relaxed);
    let requests = (0..20).map(|i| {
        let app = app.clone();
        let token = bogus(i);
        async move { discover_with_token(&app, &token).await.status }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    assert_eq!(issuer.hits("/jwks"), 2, "twenty concurrent misses, one fetch");
    issuer.state.delay_ms.store(0, Ordering::Relaxed);

    // With the default-style interval, misses right after a fetch (here: start-up) fetch nothing.
    let limited = app_with(&issuer.settings("min_refresh_interval_secs = 60")).await;
    assert_eq!(issuer.hits("/jwks"), 3);
    for i in 20..50 {
        assert_eq!(discover_with_token(&limited, &bogus(i)).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(issuer.hits("/jwks"), 3, "a flood of bogus kids does not reach the issuer");
}

#[tokio::test]
async fn keys_are_discovered_from_the_issuer_openid_configuration() {
    let issuer = Issuer::start().await;
    let realm = format!("{}/realms/mcp", issuer.base);
    let k1 = tokens::rsa_signer("oidc");
    issuer.serve(
        "/realms/mcp/.well-known/openid-configuration",
        json!({ "issuer": realm, "jwks_uri": format!("{}/certs", issuer.base) }),
    );
    issuer.serve("/certs", json!({ "keys": [rsa_jwk(&k1)] }));
    let settings = test_settings_with(&format!("[jwt]\nissuer = \"{realm}\"\nstartup_timeout_secs = 0"));
    let app = app_with(&settings).await;
    let token = TokenBuilder::new().issuer(&realm).signed_with(&k1).build();
    assert_eq!(discover_with_token(&app, &token).await.status, StatusCode::OK);
    let health = send_as_is(&app, Request::get("/health").body(Body::empty()).unwrap()).await.json();
    assert_eq!(health["jwt"]["source"], "discovery");
    assert_eq!(health["jwt"]["jwks_url"], format!("{}/certs", issuer.base));
    // This server is not the issuer: it publishes no keys of its own.
    let jwks = send_as_is(&app, Request::get("/.well-known/jwks.json").body(Body::empty()).unwrap()).await;
    assert_eq!(jwks.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn discovery_falls_back_to_rfc_8414_metadata() {
    let issuer = Issuer::start().await;
    let tenant = format!("{}/tenant", issuer.base);
    let k1 = tokens::rsa_signer("rfc8414");
    issuer.serve(
        "/.well-known/oauth-authorization-server/tenant",
        json!({ "issuer": tenant, "jwks_uri": format!("{}/keys", issuer.base) }),
    );
    issuer.serve("/keys", json!({ "keys": [rsa_jwk(&k1)] }));
    let app = app_with(&test_settings_with(&format!("[jwt]\nissuer = \"{tenant}\"\nstartup_timeout_secs = 0"))).await;
    let token = TokenBuilder::new().issuer(&tenant).signed_with(&k1).build();
    assert_eq!(discover_with_token(&app, &token).await.status, StatusCode::OK);
    assert_eq!(issuer.hits("/tenant/.well-known/openid-configuration"), 1, "OIDC was tried first");
}

#[tokio::test]
async fn metadata_naming_another_issuer_stops_start_up() {
    let issuer = Issuer::start().await;
    issuer.serve(
        "/.well-known/openid-configuration",
        json!({ "issuer": "https://evil.example.com", "jwks_uri": format!("{}/jwks", issuer.base) }),
    );
    let settings = test_settings_with(&format!("[jwt]\nissuer = \"{}\"\nstartup_timeout_secs = 5", issuer.base));
    let started = std::time::Instant::now();
    let err = mcp_auth_server::app(&settings).await.unwrap_err();
    assert!(matches!(err, StartupError::Remote(_)), "{err}");
    assert!(err.to_string().contains("evil.example.com"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "a wrong issuer is not retried");
}

#[tokio::test]
async fn an_unreachable_key_source_stops_start_up_with_a_clear_error() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let settings = test_settings_with(&format!(
        "[jwt]\nissuer = \"http://{addr}\"\njwks_url = \"http://{addr}/jwks\"\nstartup_timeout_secs = 1"
    ));
    let err = mcp_auth_server::app(&settings).await.unwrap_err();
    assert!(matches!(err, StartupError::Remote(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("http://{addr}/jwks")) && message.contains("jwt.issuer"), "{message}");
}

#[tokio::test]
async fn a_remote_issuer_that_comes_up_during_start_up_is_waited_for() {
    let issuer = Issuer::start().await;
    let k1 = tokens::rsa_signer("late");
    issuer.serve_keys(&[rsa_jwk(&k1)]);
    // The keys fail on the first fetch and are there on the next: the start-up retry finds them.
    issuer.state.jwks_down_for.store(1, Ordering::Relaxed);
    let app = app_with(&issuer.settings("startup_timeout_secs = 10")).await;
    assert!(issuer.hits("/jwks") >= 2);
    assert_eq!(discover_with_token(&app, &issuer.token().signed_with(&k1).build()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn es256_and_eddsa_keys_work_when_configured_and_are_refused_otherwise() {
    let issuer = Issuer::start().await;
    let rng = SystemRandom::new();
    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref()).unwrap();
    let point = ec.public_key().as_ref().to_vec();
    let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
    issuer.serve_keys(&[
        json!({ "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]) }),
        json!({ "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA", "x": URL_SAFE_NO_PAD.encode(ed.public_key()) }),
        json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" }),
        json!({ "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" }),
    ]);
    let ec_der = ec_pkcs8.as_ref().to_vec();
    let sign_ec = move |claims: &Value| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("ec-1".into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&ec_der)).unwrap()
    };
    let ed_der = ed_pkcs8.as_ref().to_vec();
    let sign_ed = move |claims: &Value| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("ed-1".into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&ed_der)).unwrap()
    };

    let app = app_with(&issuer.settings("algorithms = [\"ES256\", \"EdDSA\"]")).await;
    assert_eq!(discover_with_token(&app, &issuer.token().signed_with(&sign_ec).build()).await.status, StatusCode::OK);
    assert_eq!(discover_with_token(&app, &issuer.token().signed_with(&sign_ed).build()).await.status, StatusCode::OK);
    let health = send_as_is(&app, Request::get("/health").body(Body::empty()).unwrap()).await.json();
    assert_eq!(health["jwt"]["kids"], json!(["ec-1", "ed-1"]), "symmetric and encryption keys are skipped");

    // With the default allow-list (RS256) the same keys are useless: start-up says so.
    let err = mcp_auth_server::app(&issuer.settings("")).await.unwrap_err();
    assert!(err.to_string().contains("no usable signature key"), "{err}");
    // And with only ES256 allowed, an EdDSA token is refused.
    let es_only = app_with(&issuer.settings("algorithms = [\"ES256\"]")).await;
    assert_invalid_token(
        &discover_with_token(&es_only, &issuer.token().signed_with(&sign_ed).build()).await,
        "algorithm not accepted",
    );
}

#[tokio::test]
async fn a_cached_token_still_expires_on_time() {
    let jwt = Jwt::from_settings(&test_settings_with("[jwt]\nleeway_secs = 0"), None).await.unwrap();
    let app = Router::new()
        .route("/mcp", axum::routing::post(|| async { "ok" }))
        .route_layer(jwt.layer(ChallengeParams::default()));
    let now = tokens::now();
    let token = TokenBuilder::new().expires_at(now + 1).build();
    assert_eq!(discover_with_token(&app, &token).await.status, StatusCode::OK);
    assert_eq!(discover_with_token(&app, &token).await.status, StatusCode::OK);
    assert_eq!(jwt.verifier().cache().len(), 1, "the token is cached");
    // 2 s later. `exp` is checked against the wall clock, which tokio cannot pause, so the
    // verifier is asked for that moment instead of waiting for it (the 401 an expired token gets
    // is `an_expired_token_is_refused`).
    assert_eq!(jwt.verifier().verify_at(&token, now + 2).unwrap_err().description(), "token expired");
}

#[tokio::test]
async fn the_issuer_defaults_to_the_public_url_and_tokens_for_a_spawned_server_work_over_tcp() {
    let server = spawn_app().await;
    let client = reqwest::Client::new();
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": { "_meta": envelope(json!({})) } });
    let send = |authorization: Option<String>| {
        let mut request = client
            .post(server.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "server/discover")
            .body(body.to_string());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let token = TokenBuilder::new().for_server(&server.base).build();
    assert_eq!(send(Some(format!("Bearer {token}"))).await.unwrap().status(), 200);
    assert_eq!(send(None).await.unwrap().status(), 401);
    // A token for the default URL is for another server.
    assert_eq!(TokenBuilder::new().claims()["iss"], ISSUER);
    let elsewhere = TokenBuilder::new().build();
    assert_eq!(send(Some(format!("Bearer {elsewhere}"))).await.unwrap().status(), 401);
    server.shutdown.trigger();
}

/// Found by tests/interop: the 401 goes out before the request body is read (here: before it is
/// even sent, as clients send headers and body separately), and hyper then closes the connection.
/// Without `Connection: close`, HTTP clients reused it for their next request (the metadata
/// lookup after every 401) and now and then failed with "server disconnected without sending a
/// response".
#[tokio::test]
async fn a_refusal_sent_before_the_body_is_read_says_connection_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = spawn_app().await;
    let host = server.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: 100\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before a response: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&chunk[..n]);
    }
    let response = String::from_utf8_lossy(&response).to_ascii_lowercase();
    assert!(response.starts_with("http/1.1 401"), "{response}");
    assert!(response.contains("\r\nconnection: close\r\n"), "{response}");
    server.shutdown.trigger();
}

/// Polls the app's `/health` until its `jwt` section shows `what` happened. The refresh schedule
/// runs on the real clock (its fetches go over TCP, where tokio's clock cannot be paused): this
/// waits for the refresh to have finished, not for a guessed time.
async fn wait_for_jwt_health(app: &Router, what: &str, condition: impl Fn(&Value) -> bool) {
    for _ in 0..100 {
        let health = send_as_is(app, Request::get("/health").body(Body::empty()).unwrap()).await.json();
        if condition(&health["jwt"]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not seen in 5 s");
}
