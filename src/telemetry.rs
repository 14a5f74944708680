//! Logging (always on): tracing-subscriber's own `fmt` formatters, text for people or JSON for
//! log pipelines, written to stdout; and one span per request, tower-http's `TraceLayer`. Tests
//! stay quiet unless `RUST_LOG` asks otherwise.
//!
//! Every line is written to stdout as it is logged (one `write` per line, nothing held back), so
//! a crash loses no line that was logged before it: the audit trail (target `audit`) included.

use std::io::{self, IsTerminal};

use axum::body::Body;
use axum::http::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnResponse, MakeSpan, TraceLayer};
use tracing::{Level, Span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber, writing to stdout. `RUST_LOG`, when set, replaces the
/// configured filter. Calling it twice is harmless (the second call is ignored), which keeps
/// tests simple.
pub fn init(settings: &LogSettings) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    // Colours only for a person at a terminal: in a file or a pipe, escape codes are noise.
    let ansi = io::stdout().is_terminal();
    let _ = subscriber(&directives, settings.format, io::stdout, ansi).try_init();
}

/// The subscriber [`init`] installs: `directives` as the filter (tracing-subscriber's
/// `EnvFilter` syntax), lines in `format` to `writer`.
pub fn subscriber<W>(
    directives: &str,
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (text, json) = match format {
        LogFormat::Text => (Some(fmt::layer().with_writer(writer).with_ansi(ansi)), None),
        LogFormat::Json => (None, Some(fmt::layer().with_writer(writer).json().flatten_event(true))),
    };
    Registry::default().with(EnvFilter::new(directives)).with(text).with(json)
}

/// The request span around every route: `request{method=POST path=/mcp}`, so everything logged
/// while serving a request (refusals, the audit trail) can be told apart. tower-http's
/// `TraceLayer` logs each response at DEBUG (status, latency) and a 5xx at ERROR.
pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
        .on_failure(DefaultOnFailure::new().level(Level::ERROR))
}

/// Makes the request span: the method and the path, not the query (which may carry anything).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpan;

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, request: &Request<Body>) -> Span {
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// Captured output of a subscriber.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    #[test]
    fn each_request_runs_in_its_span_and_a_5xx_is_logged_as_an_error() {
        let lines = Lines::default();
        let subscriber = subscriber("info", LogFormat::Text, lines.clone(), false);
        let app = Router::new()
            .route(
                "/fine",
                get(|| async {
                    tracing::info!("handling");
                    StatusCode::OK
                }),
            )
            .route(
                "/broken",
                get(|| async {
                    tracing::info!("handling");
                    StatusCode::INTERNAL_SERVER_ERROR
                }),
            )
            .layer(trace_layer());
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                for path in ["/fine", "/broken?token=secret"] {
                    app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
                }
            });
        });
        let out = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].contains(" INFO request{method=GET path=/fine}: ") && lines[0].ends_with("handling"), "{out}");
        assert!(lines[1].contains("request{method=GET path=/broken}: ") && lines[1].ends_with("handling"), "{out}");
        assert!(lines[2].contains(" ERROR request{method=GET path=/broken}: "), "{out}");
        assert!(!out.contains("secret"), "the query is not logged: {out}");
    }
}
