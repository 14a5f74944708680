//! The binary as a person starts it (issue 28): the command line, what it says at start-up,
//! and settings errors that say what to change. Every test runs the real binary in a working
//! directory of its own, with no configuration but what the test gives it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An empty working directory for one test.
fn workdir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("startup-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, in `dir`, with no configuration from the environment of the test run.
fn binary(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-auth-server"));
    command.current_dir(dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("MCP_AUTH") {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[test]
fn help_and_version_answer_and_exit_and_an_unknown_argument_is_an_error() {
    let dir = workdir("cli");
    let (output, stdout, _) = run(binary(&dir).arg("--help"));
    assert!(output.status.success());
    assert!(stdout.contains("--config <FILE>") && stdout.contains("check-config"), "{stdout}");
    let (output, stdout, _) = run(binary(&dir).arg("--version"));
    assert!(output.status.success());
    assert_eq!(stdout.trim(), format!("mcp-auth-server {}", env!("CARGO_PKG_VERSION")));
    let (output, _, stderr) = run(binary(&dir).arg("--bind=0.0.0.0"));
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unexpected argument"), "{stderr}");
    // None of them started a server or wrote anything.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_redacted_and_fails_on_an_error() {
    let dir = workdir("check");
    let file = dir.join("site.toml");
    std::fs::write(
        &file,
        "[server]\nbind = \"127.0.0.1:4100\"\n[mcp]\nrequest_state_secret = \"s3cr3t-sealing-key\"\n",
    )
    .unwrap();
    let (output, stdout, stderr) = run(binary(&dir)
        .args(["--config", file.to_str().unwrap(), "check-config"])
        .env("MCP_AUTH__LIMITS__MAX_IN_FLIGHT", "7"));
    assert!(output.status.success(), "{stderr}");
    let printed: toml::Table = stdout.parse().expect("TOML");
    assert_eq!(printed["server"]["bind"].as_str(), Some("127.0.0.1:4100"), "the --config file is layered in");
    assert_eq!(printed["limits"]["max_in_flight"].as_integer(), Some(7), "the environment wins");
    assert_eq!(printed["mcp"]["request_state_secret"].as_str(), Some("[redacted]"));
    assert!(!stdout.contains("s3cr3t") && !stdout.contains("argon2"), "no secret and no hash printed");

    let (output, stdout, stderr) = run(binary(&dir).arg("check-config").env("MCP_AUTH__JWT__ISSUR", "https://idp"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("MCP_AUTH__JWT__ISSUR") && stderr.contains("did you mean `jwt.issuer`"), "{stderr}");

    let (output, _, stderr) = run(binary(&dir).args(["--config", "missing.toml", "check-config"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn listening_on_every_interface_without_a_public_url_is_refused_with_what_to_set() {
    let dir = workdir("public");
    let (output, _, stderr) = run(binary(&dir).env("MCP_AUTH__SERVER__BIND", "0.0.0.0:4101"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("server.public_url") && stderr.contains("every interface"), "{stderr}");
    let (output, _, stderr) = run(binary(&dir).env("MCP_AUTH__SERVER__BIND", "mcp.example.com:4101"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("not an IP address and port"), "{stderr}");
}

/// Started as the quick start starts it (the dev profile, a fresh directory): it generates the
/// development keys where the defaults say, with a warning, says in one line where to connect
/// and how to sign in, and serves.
#[test]
fn the_quick_start_says_where_to_connect_and_how_to_sign_in() {
    let dir = workdir("quick");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dev.toml"), dir.join("config/dev.toml")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = binary(&dir)
        .env("MCP_AUTH__SERVER__BIND", format!("localhost:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let ready = loop {
        let Some(Ok(line)) = lines.next() else { break None };
        seen.push(line.clone());
        if line.contains("ready:") {
            break Some(line);
        }
        assert!(Instant::now() < deadline, "no ready line: {seen:#?}");
    };
    let _ = child.kill();
    let _ = child.wait();
    let ready = ready.unwrap_or_else(|| panic!("no ready line: {seen:#?}"));
    let url = format!("http://127.0.0.1:{port}/mcp");
    assert!(ready.contains(&format!("connect MCP clients to {url}")), "{ready}");
    assert!(ready.contains("sign in as alice / wonderland"), "{ready}");
    assert!(seen.iter().any(|l| l.contains("WARN") && l.contains("DEVELOPMENT key pair")), "{seen:#?}");
    assert!(dir.join("keys/dev-private.pem").exists() && dir.join("keys/dev-public.pem").exists());
}
