//! `greeting`: a prompt that asks the model to greet someone by name.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{GetPromptResult, Prompt, PromptInfo, PromptMessage, PromptResult, ToolContext};

/// Greets someone.
pub struct Greeting;

/// Arguments of `greeting`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetingArgs {
    /// Who to greet.
    pub name: String,
}

impl Prompt for Greeting {
    type Args = GreetingArgs;

    fn info(&self) -> PromptInfo {
        PromptInfo::new("greeting", "Asks for a short, friendly greeting for someone.").title("Greeting")
    }

    async fn get(&self, _ctx: ToolContext, args: GreetingArgs) -> PromptResult {
        Ok(GetPromptResult {
            description: Some(format!("A greeting for {}", args.name)),
            messages: vec![PromptMessage::user(format!(
                "Write a short, friendly greeting for {}. One sentence.",
                args.name
            ))],
            meta: None,
        })
    }
}
