//! Step 1 (always on): `GET /health` reports status, version and the enabled features. Later
//! layers add sections (the OAuth picture, key status) through [`Health::section`].

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router, extract::State};
use serde_json::{Map, Value, json};

type SectionFn = Arc<dyn Fn() -> Value + Send + Sync>;

/// What `/health` reports.
#[derive(Clone, Default)]
pub struct Health {
    features: Vec<&'static str>,
    sections: Vec<(&'static str, SectionFn)>,
}

impl Health {
    /// A report for a build with `features` enabled.
    pub fn new(features: Vec<&'static str>) -> Self {
        Health { features, sections: Vec::new() }
    }

    /// Adds a named section, computed on every request so it can show live state.
    pub fn section(mut self, name: &'static str, report: impl Fn() -> Value + Send + Sync + 'static) -> Self {
        self.sections.push((name, Arc::new(report)));
        self
    }

    fn report(&self) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), json!("ok"));
        body.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        body.insert("features".into(), json!(self.features));
        for (name, section) in &self.sections {
            body.insert((*name).into(), section());
        }
        Value::Object(body)
    }

    /// The `/health` route.
    pub fn router(self) -> Router {
        Router::new().route("/health", get(health)).with_state(Arc::new(self))
    }
}

async fn health(State(health): State<Arc<Health>>) -> Json<Value> {
    Json(health.report())
}
