//! Step 6 (`jwt`): what refusals leave in the log. Its own test binary because it installs a
//! tracing subscriber, which must not race with other tests' first use of the same callsites.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use common::tokens::{self, TokenBuilder};
use common::*;
use serde_json::json;

#[tokio::test]
async fn refusals_are_logged_with_the_kid_or_subject_but_never_the_token() {
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    let buffer = Buffer::default();
    let subscriber =
        tracing_subscriber::fmt().with_writer(buffer.clone()).with_max_level(tracing::Level::DEBUG).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = app().await;
    let expired = TokenBuilder::new().subject("carol").expired().build();
    let stranger = tokens::rsa_signer("logged");
    let unknown = TokenBuilder::new().signed_with(&stranger).build();
    assert_eq!(discover(&app, &expired).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(discover(&app, &unknown).await.status, StatusCode::UNAUTHORIZED);
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
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
