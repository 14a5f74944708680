//! rmcp (the official Rust MCP SDK) serving the load benchmark's `tools/call echo` over
//! Streamable HTTP, behind the same RS256 bearer check as the ceiling's "bare axum + RS256 verify"
//! row (`benches/rs256_check.rs`): what a team writing its secured server on rmcp would run, on
//! our server's allocator (mimalloc). The 2026-07-28 era, stateless, answered as JSON
//! (`json_response`), as ours answers that call; the tool router built once.
//!
//! ```sh
//! cargo run --release --manifest-path benches/peers/rmcp/Cargo.toml -- --bind 127.0.0.1:3901 \
//!     --verify keys/dev-public.pem --issuer http://127.0.0.1:3000 --audience http://127.0.0.1:3000/mcp
//! ```

#[path = "../../../rs256_check.rs"]
mod rs256_check;

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use rs256_check::Check;
use rsa::PublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use schemars::JsonSchema;
use serde::Deserialize;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: rmcp-peer --bind ADDR --verify PUBLIC_KEY_PEM --issuer URL --audience URL";

/// The arguments of our server's `echo` tool.
#[derive(Deserialize, JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    message: String,
}

#[derive(Clone)]
struct Echo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    #[tool(description = "Echoes the message back")]
    fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.message
    }
}

// The router built once, at start-up (below): without `router = ...` the macro builds it anew for
// every call.
#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {}

async fn authenticate(State(check): State<Arc<Check>>, request: Request, next: Next) -> Response {
    if !check.accepts(request.headers()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(request).await
}

fn options() -> Result<[String; 4], String> {
    let mut values: [Option<String>; 4] = Default::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--bind" => 0,
            "--verify" => 1,
            "--issuer" => 2,
            "--audience" => 3,
            _ => return Err(USAGE.to_owned()),
        };
        values[slot] = Some(args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?);
    }
    let [Some(bind), Some(key), Some(issuer), Some(audience)] = values else { return Err(USAGE.to_owned()) };
    Ok([bind, key, issuer, audience])
}

/// The same runtime as our server's and the ceiling's (multi-threaded, one worker per CPU it may
/// run on: one, when the load script pins it).
#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rmcp-peer: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let [bind, key, issuer, audience] = options()?;
    let pem = std::fs::read_to_string(&key).map_err(|e| format!("{key}: {e}"))?;
    let public = PublicKey::from_public_key_pem(&pem).map_err(|e| format!("{key}: {e}"))?;
    let check = Arc::new(Check::new(&public.n_bytes(), &public.e_bytes(), issuer, audience)?);
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(false).with_json_response(true);
    // Stateless, the service asks the factory for a handler per request: a copy of one built once.
    let echo = Echo { tool_router: Echo::tool_router() };
    let mcp = StreamableHttpService::new(move || Ok(echo.clone()), Arc::new(LocalSessionManager::default()), config);
    let app = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(check, authenticate))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| format!("{bind}: {e}"))?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
