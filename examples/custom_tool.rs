//! Adding your own tool: one type, one `impl Tool`, one line to register it.
//!
//! ```sh
//! cargo run --example custom_tool --features tools
//! ```
//! Then call `word_count` like any other tool (see the README, step 4).

use mcp_auth_server::tools::{self, CallToolResult, Tool, ToolContext, ToolInfo, ToolResult};
use mcp_auth_server::{AppBuilder, Settings, serve, telemetry};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// Counts the words of a text.
struct WordCount;

/// Arguments of `word_count`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WordCountArgs {
    /// The text whose words to count.
    text: String,
}

impl Tool for WordCount {
    type Args = WordCountArgs;

    fn info(&self) -> ToolInfo {
        ToolInfo::new("word_count", "Counts the words of a text.").read_only()
    }

    async fn call(&self, _ctx: ToolContext, args: WordCountArgs) -> ToolResult {
        let words = args.text.split_whitespace().count();
        Ok(CallToolResult::structured(json!({ "words": words })))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::load()?;
    telemetry::init(&settings.log);
    let registry = tools::builtin().tool(WordCount);
    let shutdown = serve::Shutdown::default();
    let router = AppBuilder::new(settings.clone()).registry(registry).shutdown(shutdown.clone()).build().await?;
    let listener = tokio::net::TcpListener::bind(settings.server.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "custom_tool example listening");
    let options = serve::ServeOptions::from_settings(&settings.server);
    serve::serve(listener, router, serve::shutdown_signal(), shutdown, options).await?;
    Ok(())
}
