//! `help`: a prompt that explains what this server offers, from the live registry.

use super::{GetPromptResult, NoArgs, Prompt, PromptInfo, PromptMessage, PromptResult, ToolContext};

/// Describes the server to the model.
pub struct Help;

impl Prompt for Help {
    type Args = NoArgs;

    fn info(&self) -> PromptInfo {
        PromptInfo::new("help", "Explains what this server can do and how to use its tools.").title("Help")
    }

    async fn get(&self, _ctx: ToolContext, _args: NoArgs) -> PromptResult {
        Ok(GetPromptResult {
            description: Some("How to use this server".into()),
            messages: vec![PromptMessage::user(
                "You are connected to mcp-auth-server, an MCP server secured with OAuth 2.1. \
                 Tools: `echo` returns the `message` you give it; `get_time` returns the current time \
                 (RFC 3339), optionally in an IANA `timezone` such as Europe/Paris; `whoami` tells who \
                 the server thinks is calling. Prompts: `greeting` writes a greeting for a `name` \
                 (by default, the caller). \
                 Explain these to the user and offer to use them.",
            )],
            meta: None,
        })
    }
}
