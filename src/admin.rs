//! The admin listener (always compiled; on when `admin.bind` is set): `GET /metrics` in the
//! Prometheus text format, and the detailed health report and the probes (`/health`,
//! `/health/live`, `/health/ready`), on a port of its own.
//!
//! It is for operators and the scraper, bound where only they reach it, so it has no Host or
//! Origin guard and no authentication; it is never the public listener (settings refuse the
//! same port). The recorder behind `/metrics` is `metrics-exporter-prometheus`'s: the [`metrics`]
//! facade the call sites use (see [`crate::observe`]) renders through it. It is installed once per
//! process, and only when an admin listener is configured; without one nothing is recorded.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::StartupError;
use crate::health::Health;
use crate::observe;

/// The Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histograms are drained into what `/metrics` shows (the exporter's upkeep).
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's metrics recorder, installed on first use: one per process, as the `metrics`
/// facade has one global recorder. Needs a Tokio runtime (its upkeep runs on it).
pub fn recorder() -> Result<PrometheusHandle, StartupError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    let installed = HANDLE.get_or_init(|| {
        let handle = builder().and_then(|b| b.install_recorder()).map_err(|e| e.to_string())?;
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP);
            loop {
                ticks.tick().await;
                upkeep.run_upkeep();
            }
        });
        observe::start_recording();
        Ok(handle)
    });
    installed.clone().map_err(|e| StartupError::config("admin.bind", format!("cannot record metrics: {e}")))
}

/// The exporter's settings: Prometheus naming (units and `_total`), real histograms with the
/// buckets [`observe`] names.
fn builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    let full = |name: &str| Matcher::Full(name.to_owned());
    PrometheusBuilder::new()
        .with_recommended_naming(true)
        .set_buckets_for_metric(full(observe::MCP_OPERATION_DURATION), observe::MCP_DURATION_BUCKETS)?
        .set_buckets_for_metric(full(observe::HTTP_REQUEST_DURATION), observe::HTTP_DURATION_BUCKETS)?
        .set_buckets_for_metric(full(observe::MCP_SESSION_DURATION), observe::SESSION_DURATION_BUCKETS)?
        .set_buckets_for_metric(full(observe::STORE_OPERATION_DURATION), observe::STORE_DURATION_BUCKETS)
}

/// The admin listener's routes: `/metrics` from `metrics`, the health endpoints from `health`
/// (which the caller made with details on).
pub fn router(metrics: PrometheusHandle, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
        .merge(health.router())
        // A scrape renders in memory; nothing here should take long.
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(10)))
        .layer(CatchPanicLayer::new())
}

async fn scrape(State(metrics): State<PrometheusHandle>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn metrics_are_the_text_format_and_health_is_detailed() {
        // A recorder of its own, not installed: the global one stays off for the other tests.
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            observe::describe();
            metrics::counter!(observe::AUTHENTICATION_FAILURES, "reason" => "expired").increment(2);
            metrics::histogram!(observe::MCP_OPERATION_DURATION, "mcp.method.name" => "tools/list").record(0.03);
        });
        let app = router(handle, Health::new(vec!["mcp"], true).section("keys", || serde_json::json!(["kid-1"])));

        let response = app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT_FORMAT);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("mcp_auth_authentication_failures_total{reason=\"expired\"} 2"), "{text}");
        assert!(
            text.contains("mcp_server_operation_duration_seconds_bucket{mcp_method_name=\"tools/list\",le=\"0.05\"} 1"),
            "a real histogram with the conventions' buckets: {text}"
        );

        let response = app.oneshot(Request::get("/health").body(Body::empty()).unwrap()).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(report["keys"], serde_json::json!(["kid-1"]));
    }
}
