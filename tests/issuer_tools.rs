//! Step 10 end to end (features `issuer` and `tools`): a real server over TCP, a person signs in
//! and consents, the client redeems the code with PKCE, and the token calls a tool on /mcp.

mod common;

use common::issuer::{BOB_PASSWORD, Browser, CLIENT_ID, Pkce, REDIRECT_URI, authorize_uri, claims, form, query_of};
use serde_json::{Value, json};

#[tokio::test]
async fn a_person_signs_in_and_the_token_calls_a_tool_over_tcp() {
    let server = common::spawn_app_with(&common::issuer::accounts_layer()).await;
    let resource = server.mcp_url();
    let http = reqwest::Client::new();

    // Discovery, as an MCP host does it: 401 -> protected-resource metadata -> issuer metadata.
    let challenge =
        http.post(&resource).json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).send().await.unwrap();
    assert_eq!(challenge.status(), 401);
    let header = challenge.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let prm_url = header.split("resource_metadata=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let prm: Value = http.get(&prm_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(prm["resource"], resource.as_str());
    let issuer = prm["authorization_servers"][0].as_str().unwrap().to_owned();
    let metadata: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], issuer.as_str());

    // The person: sign in as bob, allow.
    let pkce = Pkce::new();
    let mut browser = Browser::over_http(&server.base);
    let uri =
        authorize_uri(CLIENT_ID, REDIRECT_URI, &pkce, &[("resource", &resource), ("scope", "mcp:read mcp:tools")]);
    let callback = browser.authorize(&uri, "bob", BOB_PASSWORD).await;
    let answer = query_of(&callback);
    assert_eq!(answer["iss"], issuer.as_str());

    // The client: redeem the code at the advertised token endpoint.
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", &answer["code"]),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", &pkce.verifier),
        ("resource", &resource),
    ]);
    let tokens: Value = http
        .post(metadata["token_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().expect("an access token");
    assert_eq!(claims(token)["aud"], resource.as_str());

    // The token calls a tool (modern era).
    let call = |method: &str, name: &str, params: Value| {
        let mut params = params;
        params["_meta"] = common::envelope(json!({}));
        http.post(&resource)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", common::MODERN)
            .header("mcp-method", method)
            .header("mcp-name", name)
            .json(&json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params}))
            .send()
    };
    let reply = call("tools/call", "echo", json!({"name": "echo", "arguments": {"message": "hello"}})).await.unwrap();
    assert_eq!(reply.status(), 200);
    let body = reply.bytes().await.unwrap();
    let result: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| common::sse_messages(&body).pop().expect("a JSON or SSE response"));
    assert_eq!(result["result"]["content"][0]["text"], "hello", "{result}");

    server.shutdown.trigger();
}
