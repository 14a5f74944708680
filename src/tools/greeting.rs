//! `greeting`: a prompt that asks the model to greet someone; without a `name`, the caller
//! (step 9: the prompt knows who is asking).

use schemars::JsonSchema;
use serde::Deserialize;

use super::{GetPromptResult, Prompt, PromptInfo, PromptMessage, PromptResult, ToolContext, ToolError};

/// Greets someone.
pub struct Greeting;

/// Arguments of `greeting`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetingArgs {
    /// Who to greet; the caller when omitted.
    #[serde(default)]
    pub name: Option<String>,
}

impl Prompt for Greeting {
    type Args = GreetingArgs;

    fn info(&self) -> PromptInfo {
        PromptInfo::new("greeting", "Asks for a short, friendly greeting for someone (by default, the caller).")
            .title("Greeting")
    }

    async fn get(&self, ctx: ToolContext, args: GreetingArgs) -> PromptResult {
        let name = match args.name.filter(|n| !n.trim().is_empty()) {
            Some(name) => name,
            None => match ctx.principal() {
                Some(caller) => caller.name.clone(),
                None => {
                    return Err(ToolError::Protocol(crate::mcp::RpcError::invalid_params(
                        "Invalid arguments: `name` is required when the caller is anonymous",
                    )));
                }
            },
        };
        Ok(GetPromptResult {
            description: Some(format!("A greeting for {name}")),
            messages: vec![PromptMessage::user(format!("Write a short, friendly greeting for {name}. One sentence."))],
            meta: None,
        })
    }
}
