//! Steps 5-6 with tools (`jwt` + `tools`): a token from the test key pair reaches `tools/call`
//! in both eras, and the tool sees the caller as a `Principal`.

mod common;

use axum::Router;
use axum::http::StatusCode;
use common::tokens::TokenBuilder;
use common::*;
use mcp_auth_server::AppBuilder;
use mcp_auth_server::tools::{self, CallToolResult, NoArgs, Tool, ToolContext, ToolInfo, ToolResult};
use serde_json::{Value, json};

/// Reports who is calling as the tool sees it, raw claims included.
struct ClaimsProbe;

impl Tool for ClaimsProbe {
    type Args = NoArgs;

    fn info(&self) -> ToolInfo {
        ToolInfo::new("claims_probe", "Who is calling, with a raw claim.").read_only()
    }

    async fn call(&self, ctx: ToolContext, _args: NoArgs) -> ToolResult {
        let principal = ctx.principal().expect("the jwt layer authenticated the caller");
        Ok(CallToolResult::structured(json!({
            "subject": principal.subject,
            "name": principal.name,
            "issuer": principal.issuer,
            "scopes": principal.scopes,
            "roles": principal.roles,
            "client_id": principal.client_id,
            "expires_at": principal.expires_at,
            "department": principal.claims.get("department"),
        })))
    }
}

async fn app_with_probe(overrides: &str) -> Router {
    let settings = test_settings_with(overrides);
    AppBuilder::new(settings).registry(tools::builtin().tool(ClaimsProbe)).build().await.expect("app builds")
}

fn with_token(
    mut request: axum::http::Request<axum::body::Body>,
    bearer: &str,
) -> axum::http::Request<axum::body::Body> {
    request.headers_mut().insert("authorization", bearer.parse().unwrap());
    request
}

/// Opens a legacy session as the caller of `bearer` (sessions belong to their creator).
async fn initialize_as(app: &Router, bearer: &str) -> String {
    let body = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
    });
    let reply = send_as_is(app, with_token(raw_post(body.to_string()), bearer)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let session = reply.header("mcp-session-id").unwrap().to_owned();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let reply = send_as_is(app, with_token(legacy(&session, LEGACY, initialized), bearer)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    session
}

#[tokio::test]
async fn tools_call_echo_works_with_a_token_in_both_eras_and_not_without_one() {
    let app = app().await;
    let bearer = TokenBuilder::new().scopes(&["mcp:read", "mcp:tools"]).bearer();
    let params = json!({ "name": "echo", "arguments": { "message": "hello" } });

    let reply = send_as_is(&app, with_token(modern(1, "tools/call", params.clone()), &bearer)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.rpc()["result"]["content"][0]["text"], "hello");

    let session = initialize(&app, LEGACY).await;
    let reply =
        send_as_is(&app, with_token(legacy(&session, LEGACY, call(2, "tools/call", params.clone())), &bearer)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.rpc()["result"]["content"][0]["text"], "hello");

    let reply = send_as_is(&app, modern(3, "tools/call", params)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.header("www-authenticate").unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn a_tool_sees_the_callers_principal_with_scopes_roles_and_raw_claims() {
    let app =
        app_with_probe("[jwt]\nrole_claims = [\"roles\", \"realm_access.roles\", \"resource_access.mcp.roles\"]").await;
    let token = TokenBuilder::new()
        .subject("u-123")
        .claim("preferred_username", "carol")
        .claim("scp", json!(["files:read"]))
        .roles(&["admin"])
        .claim("realm_access", json!({ "roles": ["user"] }))
        .claim("resource_access", json!({ "mcp": { "roles": ["tools"] } }))
        .claim("azp", "inspector")
        .claim("department", "research");
    let exp = token.claims()["exp"].clone();
    let params = json!({ "name": "claims_probe", "arguments": {} });

    let bearer = token.bearer();
    let session = initialize_as(&app, &bearer).await;
    for request in [modern(1, "tools/call", params.clone()), legacy(&session, LEGACY, call(2, "tools/call", params))] {
        let reply = send_as_is(&app, with_token(request, &bearer)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
        let seen: Value = reply.rpc()["result"]["structuredContent"].clone();
        assert_eq!(
            seen,
            json!({
                "subject": "u-123",
                "name": "carol",
                "issuer": "http://127.0.0.1:3000",
                "scopes": ["files:read", "mcp:read", "mcp:tools"],
                "roles": ["admin", "tools", "user"],
                "client_id": "inspector",
                "expires_at": exp,
                "department": "research",
            })
        );
    }
}
