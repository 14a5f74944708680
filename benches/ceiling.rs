//! The ceiling `benches/load.sh` measures the server against: bare axum answering a fixed JSON
//! body on `POST /mcp`, with `TCP_NODELAY` like the real server, and nothing else — no JSON-RPC,
//! no MCP, no logging. With `--verify` it also checks an RS256 bearer token on every request,
//! the cheapest honest way to do it (the "bare axum + RS256 verify" row): key parsed once at
//! start-up, then per request base64url, the aws-lc-rs signature check, and the claims `exp`,
//! `iss` and `aud`. No cache.
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

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

const USAGE: &str = "usage: ceiling --bind ADDR --body FILE [--verify PUBLIC_KEY_PEM --issuer URL --audience URL]";

/// What every request is answered with, and the token check when there is one.
struct Ceiling {
    body: Bytes,
    verify: Option<Check>,
}

/// The RS256 check of the "bare axum + RS256 verify" row.
struct Check {
    key: ParsedPublicKey,
    issuer: String,
    audience: String,
}

#[derive(Deserialize)]
struct Claims {
    exp: i64,
    iss: String,
    aud: String,
}

impl Check {
    fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(token) =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let Some((signing_input, signature)) = token.rsplit_once('.') else { return false };
        let Some((_header, payload)) = signing_input.split_once('.') else { return false };
        let (Ok(signature), Ok(payload)) = (URL_SAFE_NO_PAD.decode(signature), URL_SAFE_NO_PAD.decode(payload)) else {
            return false;
        };
        if self.key.verify_sig(signing_input.as_bytes(), &signature).is_err() {
            return false;
        }
        let Ok(claims) = serde_json::from_slice::<Claims>(&payload) else { return false };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        claims.exp >= now && claims.iss == self.issuer && claims.aud == self.audience
    }
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
            let components = RsaPublicKeyComponents { n: public.n.as_slice(), e: public.e.as_slice() };
            let key = components
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .map_err(|e| format!("unusable key: {e}"))?;
            Some(Check { key, issuer: options.issuer.clone(), audience: options.audience.clone() })
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
