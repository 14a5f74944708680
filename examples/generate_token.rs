//! Mints a development access token with the server's local key pair (tutorial step 5).
//!
//! ```sh
//! TOKEN=$(cargo run -q --example generate_token -- --username alice --scopes mcp:read,mcp:tools)
//! curl -H "Authorization: Bearer $TOKEN" ...
//! ```
//!
//! Options: `--username NAME` (required), `--scopes a,b` (`""` = none), `--roles a,b`,
//! `--expires-in SECONDS` (default 3600; `30m`, `2h`, `1d` work too), `--audience URL`,
//! `--issuer URL`, `--count N` (N tokens, one per line, each with its own `jti`: a pool of
//! distinct tokens for `benches/load.sh`). Only the tokens go to stdout.
//!
//! It reads the server's configuration (`config/`, `MCP_AUTH__*`), so it signs with the same
//! key files — creating the pair when missing, exactly as the server does at start-up — and
//! defaults to the server's issuer (its public URL) and audience (`<public_url>/mcp`). It runs
//! without `--features`: instead of the library's gated `jwt` module it compiles the module's
//! key-file part, `src/jwt/keyfile.rs`, directly.

#[path = "../src/jwt/keyfile.rs"]
#[allow(dead_code)]
mod keyfile;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use mcp_auth_server::Settings;
use serde_json::{Value, json};

const USAGE: &str = "usage: generate_token --username NAME [--scopes a,b] [--roles a,b] \
[--expires-in SECONDS|30m|2h|1d] [--audience URL] [--issuer URL] [--count N]";

#[derive(Default)]
struct Options {
    username: Option<String>,
    scopes: Vec<String>,
    roles: Vec<String>,
    expires_in: Option<u64>,
    audience: Option<String>,
    issuer: Option<String>,
    count: Option<usize>,
}

fn main() -> ExitCode {
    match run() {
        Ok(tokens) => {
            // One write for the whole pool: thousands of `println!`s would each lock stdout.
            let mut out = tokens.join("\n");
            out.push('\n');
            if std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("generate_token: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<Vec<String>, String> {
    let options = parse(std::env::args().skip(1))?;
    let username = options.username.ok_or_else(|| format!("--username is required\n{USAGE}"))?;
    let settings = Settings::load().map_err(|e| e.to_string())?;
    let jwt = &settings.jwt;
    if !jwt.issuer.is_empty() && options.issuer.is_none() {
        return Err(format!(
            "jwt.issuer is {}: this server takes tokens from that issuer, not from local keys \
             (pass --issuer to mint one anyway)",
            jwt.issuer
        ));
    }
    let algorithm = jwt
        .local_signing_algorithm()
        .ok_or("jwt.algorithms names no RSA algorithm; local keys are RSA")?
        .as_str()
        .parse::<jsonwebtoken::Algorithm>()
        .map_err(|e| e.to_string())?;

    let files = keyfile::load_or_generate(&jwt.private_key, &jwt.public_keys).map_err(|e| e.to_string())?;
    if files.generated {
        eprintln!(
            "generate_token: generated a DEVELOPMENT key pair ({}, {}); the server uses it too. Never use it in production.",
            jwt.private_key.display(),
            jwt.public_keys.first().map(|p| p.display().to_string()).unwrap_or_default()
        );
    }
    let signer = files.signer.ok_or_else(|| format!("no private key at {}", jwt.private_key.display()))?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
    let mut claims = json!({
        "iss": options.issuer.unwrap_or_else(|| settings.token_issuer()),
        "sub": username,
        "aud": options.audience.unwrap_or_else(|| settings.mcp_url()),
        "iat": now,
        "exp": now + options.expires_in.unwrap_or(3600),
        "preferred_username": username,
        "client_id": "generate_token",
    });
    if !options.scopes.is_empty() {
        claims["scope"] = Value::String(options.scopes.join(" "));
    }
    if !options.roles.is_empty() {
        claims["roles"] = json!(options.roles);
    }
    (0..options.count.unwrap_or(1))
        .map(|_| {
            let mut jti = [0u8; 16];
            getrandom::fill(&mut jti).map_err(|e| e.to_string())?;
            claims["jti"] = Value::String(jti.iter().map(|b| format!("{b:02x}")).collect());
            signer.sign(algorithm, &claims).map_err(|e| e.to_string())
        })
        .collect()
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Err(USAGE.to_owned());
        }
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"));
        match name.as_str() {
            "--username" => options.username = Some(value()?).filter(|u| !u.is_empty()),
            "--scopes" => options.scopes = list(&value()?),
            "--roles" => options.roles = list(&value()?),
            "--expires-in" => options.expires_in = Some(duration(&value()?)?),
            "--audience" => options.audience = Some(value()?),
            "--issuer" => options.issuer = Some(value()?),
            "--count" => {
                let count = value()?.parse().ok().filter(|n| *n > 0);
                options.count = Some(count.ok_or("--count takes a positive number")?);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// `a,b c` -> `[a, b, c]`; empty -> `[]`.
fn list(value: &str) -> Vec<String> {
    value.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Seconds, or a number with `s`, `m`, `h` or `d`.
fn duration(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let (number, unit) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&value[..i], c),
        _ => (value, 's'),
    };
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(format!("--expires-in {value}: use seconds, or a number with s, m, h or d")),
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n * factor)
        .ok_or_else(|| format!("--expires-in {value}: use a positive number of seconds, or 30m, 2h, 1d"))
}
