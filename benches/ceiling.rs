//! The ceiling `benches/load.sh` measures the server against: bare axum answering a fixed JSON
//! body on `POST /mcp`, with `TCP_NODELAY` like the real server, and nothing else — no JSON-RPC,
//! no MCP, no logging. With `--verify` it also checks an RS256 bearer token on every request
//! (the "bare axum + RS256 verify" row), the cheapest honest way to do it: `rs256_check.rs`,
//! which the peers under `benches/peers/` use too.
//!
//! ```sh
//! cargo run --release --features jwt --example ceiling -- --bind 127.0.0.1:3900 --body answer.json \
//!     [--verify keys/dev-public.pem --issuer http://127.0.0.1:3000 --audience http://127.0.0.1:3000/mcp]
//! ```
//!
//! `--body` is the file with the exact bytes to answer (the load script saves what the real
//! server answers to the same `tools/call`, so both put the same bytes on the wire).

#[path = "../src/jwt/keyfile.rs"]
#[allow(dead_code)]
mod keyfile;
mod rs256_check;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use rs256_check::Check;

const USAGE: &str = "usage: ceiling --bind ADDR --body FILE [--verify PUBLIC_KEY_PEM --issuer URL --audience URL]";

/// What every request is answered with, and the token check when there is one.
struct Ceiling {
    body: Bytes,
    verify: Option<Check>,
}

async fn answer(State(ceiling): State<Arc<Ceiling>>, headers: HeaderMap, _body: Bytes) -> Response {
    if let Some(check) = &ceiling.verify
        && !check.accepts(&headers)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut response = ceiling.body.clone().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

struct Options {
    bind: String,
    body: PathBuf,
    verify: Option<PathBuf>,
    issuer: String,
    audience: String,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut bind, mut body, mut verify, mut issuer, mut audience) = (None, None, None, String::new(), String::new());
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--bind" => bind = Some(value()?),
            "--body" => body = Some(PathBuf::from(value()?)),
            "--verify" => verify = Some(PathBuf::from(value()?)),
            "--issuer" => issuer = value()?,
            "--audience" => audience = value()?,
            _ => return Err(USAGE.to_owned()),
        }
    }
    Ok(Options { bind: bind.ok_or(USAGE)?, body: body.ok_or(USAGE)?, verify, issuer, audience })
}

/// The same runtime as the real server's `#[tokio::main]` (multi-threaded, one worker per CPU
/// it may run on: one, when the load script pins it).
#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ceiling: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let options = options()?;
    let body = std::fs::read(&options.body).map_err(|e| format!("{}: {e}", options.body.display()))?;
    let verify = match &options.verify {
        None => None,
        Some(path) => {
            let files =
                keyfile::load_or_generate(&PathBuf::from("/nonexistent/private.pem"), std::slice::from_ref(path))
                    .map_err(|e| e.to_string())?;
            let public = files.public.first().ok_or("no public key")?;
            Some(Check::new(&public.n, &public.e, options.issuer.clone(), options.audience.clone())?)
        }
    };
    let ceiling = Arc::new(Ceiling { body: Bytes::from(body), verify });
    let app = Router::new().route("/mcp", post(answer)).route("/health", get(|| async { "ok" })).with_state(ceiling);
    let listener = tokio::net::TcpListener::bind(&options.bind).await.map_err(|e| format!("{}: {e}", options.bind))?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
