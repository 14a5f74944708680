//! Step 1 (no features): the health endpoint and configuration loading.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, send, test_settings, test_settings_with};
use mcp_auth_server::Settings;

#[tokio::test]
async fn health_reports_status_version_and_enabled_features() {
    let reply = send(&app().await, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let features: Vec<&str> = body["features"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(features, mcp_auth_server::router::enabled_features());
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let reply = send(&app().await, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_real_server_answers_health_over_tcp_and_shuts_down_gracefully() {
    let server = common::spawn_app().await;
    let body: serde_json::Value = reqwest::get(format!("{}/health", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ok");
    server.shutdown.trigger();
    let finished = tokio::time::timeout(std::time::Duration::from_secs(10), server.handle).await;
    assert!(finished.expect("server stops after the signal").unwrap().is_ok());
}

#[test]
fn public_url_defaults_to_the_bind_address() {
    let settings = test_settings_with("[server]\nbind = \"127.0.0.1:4567\"");
    assert_eq!(settings.server.public_url, "http://127.0.0.1:4567");
    assert_eq!(settings.mcp_url(), "http://127.0.0.1:4567/mcp");
}

#[test]
fn public_url_loses_its_trailing_slash_and_keeps_its_path() {
    let settings = test_settings_with("[server]\npublic_url = \"HTTPS://MCP.Example.com/base/\"");
    assert_eq!(settings.server.public_url, "https://mcp.example.com/base");
}

#[test]
fn an_unknown_key_stops_start_up_naming_it() {
    let err = Settings::from_toml("[server]\nbnd = \"127.0.0.1:1\"").unwrap_err().to_string();
    assert!(err.contains("bnd"), "{err}");
}

#[test]
fn a_malformed_value_names_its_key() {
    let err = Settings::from_toml("[server]\nbind = \"not an address\"").unwrap_err().to_string();
    assert!(err.contains("bind"), "{err}");
    let err = Settings::from_toml("[server]\npublic_url = \"ftp://x\"").unwrap_err().to_string();
    assert!(err.contains("server.public_url"), "{err}");
}

#[test]
fn defaults_bind_to_loopback() {
    assert!(test_settings().server.bind.ip().is_loopback());
}

#[test]
fn environment_variables_override_files() {
    // Runs the binary's loader in a child process so the variable does not leak into other tests.
    let exe = std::env::current_exe().unwrap();
    if std::env::var_os("MCP_AUTH_TEST_CHILD").is_some() {
        let settings = Settings::load().expect("loads");
        assert_eq!(settings.server.bind.port(), 9123);
        assert_eq!(settings.server.allowed_origins, vec!["https://a.example", "https://b.example"]);
        return;
    }
    let status = std::process::Command::new(exe)
        .args(["--exact", "environment_variables_override_files", "--nocapture"])
        .env("MCP_AUTH_TEST_CHILD", "1")
        .env("MCP_AUTH__SERVER__BIND", "127.0.0.1:9123")
        .env("MCP_AUTH__SERVER__ALLOWED_ORIGINS", "https://a.example,https://b.example")
        .env("MCP_AUTH_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .status()
        .unwrap();
    assert!(status.success());
}
