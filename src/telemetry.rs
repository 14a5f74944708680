//! Logging (always on): tracing-subscriber's own `fmt` formatters, text for people or JSON for
//! log pipelines, written to stdout; and one span per request, tower-http's `TraceLayer`. Tests
//! stay quiet unless `RUST_LOG` asks otherwise.
//!
//! Every line is written to stdout as it is logged (one `write` per line, nothing held back), so
//! a crash loses no line that was logged before it: the audit trail (target `audit`) included.
//!
//! When traces are exported (feature `otel`, `telemetry.otlp_endpoint`), the `otel` module hands
//! over a [`TraceExport`]: a subscriber layer that exports spans, and a [`TraceContext`] with
//! which the request span (and the MCP span, see `mcp::observe`) adopts the caller's W3C trace.
//! Without it the request span is exactly the logging span, and no other span is made.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnResponse, MakeSpan, OnResponse, TraceLayer,
};
use tracing::{Level, Span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// Where the MCP span is made (`mcp::observe`).
const MCP_SPAN_TARGET: &str = "mcp_auth_server::mcp::observe";

/// A subscriber layer that exports spans (with a filter of its own: the log filter does not
/// decide what is traced).
pub type ExportLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// How a span adopts a caller's trace (W3C Trace Context). Implemented by the `otel` module,
/// handed to the layers that make spans by the composition root.
pub trait TraceContext: Send + Sync {
    /// Makes `span` a child of the trace named by these HTTP headers (`traceparent`,
    /// `tracestate`), if they name one.
    fn adopt_headers(&self, span: &Span, headers: &HeaderMap);
    /// Makes `span` a child of the trace named by a `traceparent` (and `tracestate`) sent in an
    /// MCP request's `params._meta`, and links it to the span current now (the HTTP request's),
    /// as the MCP semantic conventions say.
    fn adopt_meta(&self, span: &Span, traceparent: &str, tracestate: Option<&str>);
}

/// Traces being exported: what the `otel` module builds from `[telemetry]`.
pub struct TraceExport {
    /// Goes into the subscriber ([`init_exporting`]).
    pub layer: ExportLayer,
    /// Goes to the app ([`crate::AppBuilder::trace_context`]).
    pub context: Arc<dyn TraceContext>,
    /// Sends the spans still buffered and stops the exporter: call once, at exit, while the
    /// runtime still runs.
    pub flush: Box<dyn FnOnce() + Send>,
}

/// Installs the global subscriber, writing to stdout. `RUST_LOG`, when set, replaces the
/// configured filter. Calling it twice is harmless (the second call is ignored), which keeps
/// tests simple.
pub fn init(settings: &LogSettings) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let _ = subscriber(&directives, settings.format, io::stdout).try_init();
}

/// [`init`], with spans also going to `export`.
pub fn init_exporting(settings: &LogSettings, export: ExportLayer) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let _ = exporting_subscriber(&directives, settings.format, io::stdout, export).try_init();
}

/// The subscriber [`init_exporting`] installs: [`subscriber`]'s lines, the filter applying to
/// them alone, and `export` beside them with its own filter. The MCP span (made only for
/// export) stays out of the lines, which read as they do without traces.
pub fn exporting_subscriber<W>(
    directives: &str,
    format: LogFormat,
    writer: W,
    export: ExportLayer,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = match format {
        LogFormat::Text => fmt::layer().with_writer(writer).with_ansi(false).boxed(),
        LogFormat::Json => fmt::layer().with_writer(writer).json().flatten_event(true).boxed(),
    };
    let not_the_mcp_span = filter_fn(|metadata| !(metadata.is_span() && metadata.target() == MCP_SPAN_TARGET));
    Registry::default().with(export).with(lines.with_filter(EnvFilter::new(directives).and(not_the_mcp_span)))
}

/// The subscriber [`init`] installs: `directives` as the filter (tracing-subscriber's
/// `EnvFilter` syntax), lines in `format` to `writer`. Plain text, never colour: the lines go
/// to files, journald and log collectors, and tracing-subscriber's `ansi` feature (off in
/// Cargo.toml) styles every field name and `=` through nu-ansi-term even with colours off,
/// a sixteenth of a cached call's instructions.
pub fn subscriber<W>(directives: &str, format: LogFormat, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (text, json) = match format {
        LogFormat::Text => (Some(fmt::layer().with_writer(writer).with_ansi(false)), None),
        LogFormat::Json => (None, Some(fmt::layer().with_writer(writer).json().flatten_event(true))),
    };
    Registry::default().with(EnvFilter::new(directives)).with(text).with(json)
}

/// The request span around every route: `request{method=POST path=/mcp}`, so everything logged
/// while serving a request (refusals, the audit trail) can be told apart. tower-http's
/// `TraceLayer` logs each response at DEBUG (status, latency) and a 5xx at ERROR. With `context`
/// (traces exported), the span is also an HTTP server span for OpenTelemetry, named after its
/// route when `routed` (the composition root puts a layer with `routed` on its routes, and one
/// without on the fallback that answers every other path).
pub fn trace_layer(
    context: Option<Arc<dyn TraceContext>>,
    routed: bool,
) -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    ResponseLog,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
> {
    let exported = context.is_some();
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan { context, routed })
        .on_request(())
        .on_response(ResponseLog { log: DefaultOnResponse::new().level(Level::DEBUG), exported })
        .on_failure(DefaultOnFailure::new().level(Level::ERROR))
}

/// Makes the request span: the method and the path, not the query (which may carry anything).
#[derive(Clone, Default)]
pub struct RequestSpan {
    context: Option<Arc<dyn TraceContext>>,
    /// A route serves the request; every route is a fixed path, so the path is the route.
    routed: bool,
}

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, request: &Request<Body>) -> Span {
        let (method, path) = (request.method(), request.uri().path());
        let Some(context) = &self.context else {
            return tracing::info_span!("request", method = %method, path = %path);
        };
        // HTTP semantic conventions: named `{method} {route}`, or just `{method}` when no route
        // serves the path (a path a client made up is no name); `url.path` without the query.
        let route = self.routed.then_some(path);
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        };
        let span = tracing::info_span!(
            "request",
            method = %method,
            path = %path,
            otel.name = name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            http.route = route,
            url.path = %path,
            http.response.status_code = tracing::field::Empty,
        );
        context.adopt_headers(&span, request.headers());
        span
    }
}

/// tower-http's response log line, and, when traces are exported, the status on the span.
#[derive(Clone, Debug)]
pub struct ResponseLog {
    log: DefaultOnResponse,
    exported: bool,
}

impl<B> OnResponse<B> for ResponseLog {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        if self.exported {
            span.record("http.response.status_code", i64::from(response.status().as_u16()));
            if response.status().is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
        self.log.on_response(response, latency, span);
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
        let subscriber = subscriber("info", LogFormat::Text, lines.clone());
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
            .layer(trace_layer(None, true));
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
