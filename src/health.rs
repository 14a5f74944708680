//! Step 1 (always on): health endpoints.
//!
//! - `GET /health`: status and version. With `server.health_details = true` it also shows the
//!   enabled features and the sections later layers add ([`Health::section`]: the OAuth picture,
//!   key status, sessions), which are for operators, not for everyone who can reach the port.
//! - `GET /health/live`: the process serves requests (a liveness probe).
//! - `GET /health/ready`: every readiness check later layers add ([`Health::check`]: keys
//!   loaded, issuer metadata fetched, store reachable) passes: 200, or 503 naming the failing
//!   check (a readiness probe; a load balancer sends no traffic until it passes).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, extract::State};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

type SectionFn = Arc<dyn Fn() -> Value + Send + Sync>;
type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the health endpoints report.
#[derive(Clone, Default)]
pub struct Health {
    features: Vec<&'static str>,
    details: bool,
    sections: Vec<(&'static str, SectionFn)>,
    checks: Vec<(&'static str, CheckFn)>,
}

impl Health {
    /// A report for a build with `features` enabled; `details` shows the sections on `/health`.
    pub fn new(features: Vec<&'static str>, details: bool) -> Self {
        Health { features, details, sections: Vec::new(), checks: Vec::new() }
    }

    /// The same report with every section shown on `/health`, whatever the settings say (for
    /// the admin listener, which only operators reach).
    pub fn detailed(mut self) -> Self {
        self.details = true;
        self
    }

    /// Adds a named section to the detailed report, computed on every request so it can show
    /// live state.
    pub fn section(mut self, name: &'static str, report: impl Fn() -> Value + Send + Sync + 'static) -> Self {
        self.sections.push((name, Arc::new(report)));
        self
    }

    /// Adds a readiness check: `Ok` when this part can serve, or why it cannot.
    pub fn check<F>(mut self, name: &'static str, check: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    fn report(&self) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), json!("ok"));
        body.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        if self.details {
            body.insert("features".into(), json!(self.features));
            for (name, section) in &self.sections {
                body.insert((*name).into(), section());
            }
        }
        Value::Object(body)
    }

    /// Runs every readiness check at once; each has [`CHECK_TIMEOUT`].
    async fn readiness(&self) -> (bool, Map<String, Value>) {
        let runs = self.checks.iter().map(|(name, check)| {
            let check = check();
            async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
                };
                (*name, outcome)
            }
        });
        let outcomes = futures_util::future::join_all(runs).await;
        let ready = outcomes.iter().all(|(_, outcome)| outcome.is_ok());
        let checks = outcomes
            .into_iter()
            .map(|(name, outcome)| (name.to_owned(), json!(outcome.err().unwrap_or_else(|| "ok".to_owned()))))
            .collect();
        (ready, checks)
    }

    /// The `/health`, `/health/live` and `/health/ready` routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/health", get(health))
            .route("/health/live", get(live))
            .route("/health/ready", get(ready))
            .with_state(Arc::new(self))
    }
}

async fn health(State(health): State<Arc<Health>>) -> Json<Value> {
    Json(health.report())
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(health): State<Arc<Health>>) -> Response {
    let (ready, checks) = health.readiness().await;
    let (status, word) = if ready { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready") };
    (status, Json(json!({ "status": word, "checks": checks }))).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_json(app: &Router, path: &str) -> (StatusCode, Value) {
        let response = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn the_public_report_is_status_and_version_unless_details_are_configured() {
        let health = |details| Health::new(vec!["mcp"], details).section("keys", || json!(["kid-1"])).router();
        let (_, terse) = get_json(&health(false), "/health").await;
        assert_eq!(terse, json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }));
        let (_, detailed) = get_json(&health(true), "/health").await;
        assert_eq!((detailed["features"].clone(), detailed["keys"].clone()), (json!(["mcp"]), json!(["kid-1"])));
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_names_each_failing_check_and_liveness_does_not_care() {
        let app = Health::new(vec![], false)
            .check("keys", || async { Ok(()) })
            .check("store", || async { Err("connection refused".to_owned()) })
            .check("issuer", std::future::pending)
            .router();
        let (status, body) = get_json(&app, "/health/ready").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "not ready");
        assert_eq!(
            body["checks"],
            json!({ "keys": "ok", "store": "connection refused", "issuer": "no answer within 2 s" })
        );
        assert_eq!(get_json(&app, "/health/live").await, (StatusCode::OK, json!({ "status": "ok" })));

        let ready = Health::new(vec![], false).check("keys", || async { Ok(()) }).router();
        assert_eq!(get_json(&ready, "/health/ready").await.0, StatusCode::OK);
    }
}
