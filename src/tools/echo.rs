//! `echo`: returns the message it is given. The smallest possible tool.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{CallToolResult, Tool, ToolContext, ToolInfo, ToolResult};

/// Returns its message unchanged.
pub struct Echo;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoArgs {
    /// The text to send back.
    pub message: String,
}

impl Tool for Echo {
    type Args = EchoArgs;

    fn info(&self) -> ToolInfo {
        ToolInfo::new("echo", "Returns the given message unchanged.").title("Echo").read_only()
    }

    async fn call(&self, _ctx: ToolContext, args: EchoArgs) -> ToolResult {
        Ok(CallToolResult::text(args.message))
    }
}
