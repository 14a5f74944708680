//! Feature `otel`: traces over OTLP/HTTP (protobuf) to `telemetry.otlp_endpoint`.
//!
//! The spans are the `tracing` spans the server makes anyway — the request span of
//! [`crate::telemetry`], and the MCP span of `mcp::observe` — turned into OpenTelemetry spans by
//! `tracing-opentelemetry` and sent in batches by the OpenTelemetry SDK's OTLP exporter. Only
//! this crate's spans at INFO and above are exported, never log events: the log filter decides
//! what is logged, not what is traced, and the audit trail stays in the logs.
//!
//! A caller's trace is adopted from W3C Trace Context: the HTTP `traceparent` header for the
//! request span, `params._meta.traceparent` for the MCP span ([`W3c`]).
//!
//! The exporter's HTTP requests go through the `reqwest` client the rest of the server uses (rustls
//! on aws-lc): the SDK's own reqwest integration would bring a second version of reqwest and its
//! TLS stack. The SDK's batch processor exports from a thread of its own, so each request is
//! handed to the Tokio runtime and awaited from there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;

use crate::config::TelemetrySettings;
use crate::error::StartupError;
use crate::telemetry::{TraceContext, TraceExport};

/// Time limit of one export request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest collector answer read (they are a few bytes, or a short error).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The exporter for `settings`, or `None` when `telemetry.otlp_endpoint` is empty. `runtime`
/// runs the export requests.
pub fn export(
    settings: &TelemetrySettings,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<TraceExport>, StartupError> {
    let Some(url) = settings.traces_url() else { return Ok(None) };
    let problem = |e: &dyn std::fmt::Display| StartupError::config("telemetry.otlp_endpoint", e.to_string());
    let http = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .user_agent(concat!("mcp-auth-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| problem(&e))?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(OnRuntime { http, runtime: runtime.clone() })
        .build()
        .map_err(|e| problem(&e))?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("mcp-auth-server"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(filter_fn(|metadata| {
            metadata.is_span()
                && *metadata.level() <= tracing::Level::INFO
                && metadata.target().starts_with(env!("CARGO_CRATE_NAME"))
        }))
        .boxed();
    let flush = Box::new(move || {
        if let Err(err) = provider.shutdown() {
            eprintln!("mcp-auth-server: the last spans were not exported: {err}");
        }
    });
    Ok(Some(TraceExport { layer, context: Arc::new(W3c(TraceContextPropagator::new())), flush }))
}

/// W3C Trace Context: `traceparent` and `tracestate`, from HTTP headers or from `_meta`.
struct W3c(TraceContextPropagator);

impl W3c {
    /// The remote context named by `carrier`, when it names a valid one.
    fn remote(&self, carrier: &dyn opentelemetry::propagation::Extractor) -> Option<Context> {
        let context = self.0.extract(carrier);
        context.span().span_context().is_valid().then_some(context)
    }
}

impl TraceContext for W3c {
    fn adopt_headers(&self, span: &Span, headers: &HeaderMap) {
        if let Some(parent) = self.remote(&opentelemetry_http::HeaderExtractor(headers)) {
            let _ = span.set_parent(parent);
        }
    }

    fn adopt_meta(&self, span: &Span, traceparent: &str, tracestate: Option<&str>) {
        let mut carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        if let Some(tracestate) = tracestate {
            carrier.insert("tracestate".to_owned(), tracestate.to_owned());
        }
        let Some(parent) = self.remote(&carrier) else { return };
        // The transport's span (the HTTP request's) becomes a link, as the MCP conventions say.
        let transport = Span::current().context().span().span_context().clone();
        let _ = span.set_parent(parent);
        if transport.is_valid() {
            span.add_link(transport);
        }
    }
}

/// The OTLP exporter's HTTP client: the server's `reqwest`, run on the Tokio runtime.
#[derive(Debug)]
struct OnRuntime {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        let send = async move {
            let (parts, body) = request.into_parts();
            let mut answer =
                http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = answer.chunk().await? {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err::<_, HttpError>("the collector's answer is too large".into());
                }
                bytes.extend_from_slice(&chunk);
            }
            let mut response = Response::new(Bytes::from(bytes));
            *response.status_mut() = answer.status();
            *response.headers_mut() = std::mem::take(answer.headers_mut());
            Ok(response)
        };
        self.runtime.spawn(send).await?
    }
}
