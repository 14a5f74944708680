//! The access-token validation path, `Authorization` header -> `Principal` (feature `jwt`).
//!
//! ```sh
//! cargo bench --features jwt --bench validation
//! ```
//!
//! - `header_to_principal/first_seen`: a token never seen before (token cache off): header
//!   rules, base64url and JSON, the RS256 signature with the pre-parsed key, claims, principal.
//! - `header_to_principal/cached`: the same token again: SHA-256 of the token, one lookup, the
//!   time claims.
//! - `jsonwebtoken_decode/decoding_key_built_once`: for comparison, jsonwebtoken's own `decode`
//!   (same aws-lc backend, `DecodingKey` built once), which rebuilds the backend key per call.

use std::hint::black_box;
use std::path::PathBuf;

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_auth_server::Settings;
use mcp_auth_server::jwt::layer::bearer_token;
use mcp_auth_server::jwt::verify::{Keys, unix_now};
use mcp_auth_server::jwt::{LocalKeys, Verifier};
use serde_json::json;

fn settings(cache: usize) -> Settings {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-keys");
    // The server generates keys only at its development defaults: the bench pair is made here.
    mcp_auth_server::jwt::keyfile::load_or_generate(&dir.join("private.pem"), &[dir.join("public.pem")])
        .expect("the bench key pair");
    Settings::from_toml(&format!(
        "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}]\ntoken_cache_size = {cache}",
        dir.join("private.pem").display().to_string(),
        dir.join("public.pem").display().to_string()
    ))
    .expect("settings")
}

fn bench(c: &mut Criterion) {
    let keys = LocalKeys::load_or_generate(&settings(0)).expect("keys");
    let now = unix_now();
    // A typical token: the claims `generate_token` puts in, ~700 bytes signed.
    let token = keys
        .sign(&json!({
            "iss": "http://127.0.0.1:3000",
            "sub": "alice",
            "aud": "http://127.0.0.1:3000/mcp",
            "iat": now,
            "exp": now + 3600,
            "jti": "5f0c3e1d9a4b47e8b2d6c1a0f9e8d7c6",
            "scope": "mcp:read mcp:tools",
            "preferred_username": "alice",
            "client_id": "generate_token",
        }))
        .expect("sign");
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    let uri: Uri = "/mcp".parse().unwrap();

    let uncached = Verifier::new(&settings(0), Keys::Fixed(keys.key_set().clone()));
    let cached = Verifier::new(&settings(10_000), Keys::Fixed(keys.key_set().clone()));
    let path = |verifier: &Verifier| {
        let token = bearer_token(black_box(&headers), &uri, 8192).expect("a bearer token");
        verifier.verify_at(token, unix_now()).expect("valid")
    };
    assert_eq!(path(&cached).subject, "alice");

    let mut group = c.benchmark_group("header_to_principal");
    group.bench_function("first_seen", |b| b.iter(|| path(&uncached)));
    group.bench_function("cached", |b| b.iter(|| path(&cached)));
    group.finish();

    let jwk = keys.key_set().jwks()["keys"][0].clone();
    let decoding = DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["http://127.0.0.1:3000"]);
    validation.set_audience(&["http://127.0.0.1:3000/mcp"]);
    c.bench_function("jsonwebtoken_decode/decoding_key_built_once", |b| {
        b.iter(|| jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding, &validation).expect("valid"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
