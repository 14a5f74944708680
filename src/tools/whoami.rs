//! `whoami` (step 9): who the server thinks is calling, straight from the validated token.

use serde_json::json;

use super::{CallToolResult, NoArgs, Tool, ToolContext, ToolInfo, ToolResult};

/// Describes the caller.
pub struct WhoAmI;

impl Tool for WhoAmI {
    type Args = NoArgs;

    fn info(&self) -> ToolInfo {
        ToolInfo::new("whoami", "Tells who is calling: subject, name, scopes, roles, issuer and token expiry.")
            .title("Who am I")
            .read_only()
            .output_schema(json!({
                "type": "object",
                "properties": {
                    "authenticated": { "type": "boolean" },
                    "subject": { "type": "string" },
                    "name": { "type": "string" },
                    "issuer": { "type": "string" },
                    "scopes": { "type": "array", "items": { "type": "string" } },
                    "roles": { "type": "array", "items": { "type": "string" } },
                    "client_id": { "type": ["string", "null"] },
                    "expires_at": { "type": ["integer", "null"], "description": "Seconds since the Unix epoch" }
                },
                "required": ["authenticated"]
            }))
    }

    async fn call(&self, ctx: ToolContext, _args: NoArgs) -> ToolResult {
        let Some(caller) = ctx.principal() else {
            // Without the `jwt` layer nobody is authenticated.
            return Ok(CallToolResult::structured(json!({ "authenticated": false })));
        };
        Ok(CallToolResult::structured(json!({
            "authenticated": true,
            "subject": caller.subject,
            "name": caller.name,
            "issuer": caller.issuer,
            "scopes": caller.scopes,
            "roles": caller.roles,
            "client_id": caller.client_id,
            "expires_at": caller.expires_at,
        })))
    }
}
