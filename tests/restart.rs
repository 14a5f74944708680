//! The deployable service keeps its state in an SQLite file by default (issue 25, item 6): a
//! client signed in before the server is killed refreshes and calls a tool after it starts
//! again, without signing in, its registration still known.

mod common;

use common::binary::Server;
use common::issuer::{BOB_PASSWORD, Browser, Pkce, accounts_layer, authorize_uri, form, query_of};
use serde_json::{Value, json};

const CALLBACK: &str = "http://127.0.0.1:9/callback";

async fn token(http: &reqwest::Client, server: &Server, fields: &[(&str, &str)]) -> (u16, Value) {
    let reply = http
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

async fn echo(http: &reqwest::Client, server: &Server, access_token: &str) -> (u16, String) {
    let mut params = json!({ "name": "echo", "arguments": { "message": "still here" } });
    params["_meta"] = common::envelope(json!({}));
    let reply = http
        .post(server.url("/mcp"))
        .bearer_auth(access_token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", common::MODERN)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params }))
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

#[tokio::test]
async fn with_the_sqlite_default_a_signed_in_client_survives_a_sigkill_and_a_restart() {
    // `storage.url` empty: the default of the service, data/mcp-auth.db in its working directory.
    let server = Server::start(&format!("{}\n[storage]\nurl = \"\"\n", accounts_layer()));
    let http = reqwest::Client::new();
    let resource = server.url("/mcp");

    let registration: Value = http
        .post(server.url("/register"))
        .json(&json!({
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "client_name": "restart test",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registration["client_id"].as_str().expect("registered").to_owned();
    let pkce = Pkce::new();
    let uri = authorize_uri(&client_id, CALLBACK, &pkce, &[("resource", &resource), ("scope", "mcp:read mcp:tools")]);
    let callback = Browser::over_http(&server.url("")).authorize(&uri, "bob", BOB_PASSWORD).await;
    let code = query_of(&callback)["code"].clone();
    let fields = [
        ("grant_type", "authorization_code"),
        ("client_id", &client_id),
        ("code", &code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", &pkce.verifier),
        ("resource", &resource),
    ];
    let (status, tokens) = token(&http, &server, &fields).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(echo(&http, &server, tokens["access_token"].as_str().unwrap()).await.0, 200);
    assert!(server.dir().join("data/mcp-auth.db").is_file(), "the default file, in the working directory");

    // SIGKILL: no shutdown, nothing flushed on the way out.
    let server = server.kill_and_restart();
    // A new connection pool: the old one's connections died with the process.
    let http = reqwest::Client::new();

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let fields = [("grant_type", "refresh_token"), ("client_id", &client_id), ("refresh_token", refresh)];
    let (status, refreshed) = token(&http, &server, &fields).await;
    assert_eq!(status, 200, "the registration and the refresh token outlived the process: {refreshed}");
    let (status, body) = echo(&http, &server, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("still here"), "{body}");
    // The token used before the kill was rotated: its reuse is still recognised.
    let (status, reused) = token(&http, &server, &fields).await;
    assert_eq!(status, 400, "{reused}");
}
