//! Step 6 (`jwt`): what refusals leave in the log. Its own test binary because it installs a
//! tracing subscriber, which must not race with other tests' first use of the same callsites.

mod common;

use axum::http::StatusCode;
use common::tokens::{self, TokenBuilder};
use common::*;
use serde_json::json;

#[tokio::test]
async fn refusals_are_logged_with_the_kid_or_subject_but_never_the_token() {
    let buffer = LogBuffer::default();
    let subscriber =
        tracing_subscriber::fmt().with_writer(buffer.clone()).with_max_level(tracing::Level::DEBUG).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = app().await;
    let expired = TokenBuilder::new().subject("carol").expired().build();
    let stranger = tokens::rsa_signer("logged");
    let unknown = TokenBuilder::new().signed_with(&stranger).build();
    assert_eq!(discover(&app, &expired).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(discover(&app, &unknown).await.status, StatusCode::UNAUTHORIZED);
    let log = buffer.text();
    assert!(
        log.contains("token expired (sub \\\"carol\\\")") || log.contains("token expired (sub \"carol\")"),
        "{log}"
    );
    assert!(log.contains(stranger.kid()), "{log}");
    for token in [&expired, &unknown] {
        for part in token.split('.') {
            assert!(!log.contains(part), "a token part leaked into the log: {log}");
        }
    }
}

async fn discover(app: &axum::Router, token: &str) -> Reply {
    let mut request = modern(1, "server/discover", json!({}));
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    send_as_is(app, request).await
}
