//! The binary: the command line, then load settings, set up logging, build the app, serve until
//! SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcp_auth_server::{AppBuilder, Settings, serve, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An MCP server over HTTP, secured as an OAuth 2.1 protected resource.
///
/// Settings come from config/default.toml, config/<profile>.toml (MCP_AUTH_PROFILE, default
/// dev; the directory is MCP_AUTH_CONFIG_DIR, default ./config), the --config file, and
/// MCP_AUTH__<SECTION>__<KEY> environment variables, later ones winning.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// A TOML settings file, layered over config/<profile>.toml (the environment still wins).
    #[arg(short, long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Check the settings, print them as TOML with secrets redacted, and exit: 0 when they are
    /// valid, 1 with the problem otherwise.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load_with(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("mcp-auth-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        print!("{}", settings.to_toml());
        eprintln!("mcp-auth-server: the settings are valid");
        return ExitCode::SUCCESS;
    }
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mcp-auth-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("mcp-auth-server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = serve::Shutdown::default();
    let app = AppBuilder::new(settings.clone()).shutdown(shutdown.clone()).build().await?;
    let listener = tokio::net::TcpListener::bind(settings.server.bind).await.map_err(|source| {
        mcp_auth_server::error::StartupError::Bind { addr: settings.server.bind.to_string(), source }
    })?;
    tracing::info!(
        addr = %listener.local_addr()?,
        features = ?mcp_auth_server::router::enabled_features(),
        "listening"
    );
    tracing::info!("ready: {}", mcp_auth_server::router::where_to_connect(&settings));
    let options = serve::ServeOptions::from_settings(&settings.server);
    serve::serve(listener, app, serve::shutdown_signal(), shutdown, options).await?;
    Ok(())
}
