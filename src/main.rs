//! The binary: the command line, then load settings, set up logging (and traces), build the app,
//! serve it (and the admin listener, when configured) until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use mcp_auth_server::error::StartupError;
use mcp_auth_server::telemetry::{TraceContext, TraceExport};
use mcp_auth_server::{AppBuilder, Settings, router, serve, telemetry};
use tokio::net::TcpListener;

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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mcp-auth-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Traces (feature `otel`, `telemetry.otlp_endpoint`): their layer goes into the subscriber,
    // their context to the app, and what is still buffered is sent at exit.
    let (context, flush) = match router::trace_export(&settings, runtime.handle()) {
        Ok(Some(TraceExport { layer, context, flush })) => {
            telemetry::init_exporting(&settings.log, layer);
            (Some(context), Some(flush))
        }
        Ok(None) => {
            telemetry::init(&settings.log);
            (None, None)
        }
        Err(err) => {
            eprintln!("mcp-auth-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(settings, context));
    if let Some(flush) = flush {
        flush();
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("mcp-auth-server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings, context: Option<Arc<dyn TraceContext>>) -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = serve::Shutdown::default();
    let routers =
        AppBuilder::new(settings.clone()).shutdown(shutdown.clone()).trace_context(context).build_routers().await?;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr: addr.to_string(), source })
    };
    let listener = bind(settings.server.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, features = ?router::enabled_features(), "listening");
    let options = serve::ServeOptions::from_settings(&settings.server);
    // The admin listener stops when the public one starts its shutdown (`Shutdown`), and
    // finishes its requests within the same grace period.
    let admin = match (settings.admin.bind, routers.admin) {
        (Some(addr), Some(admin)) => {
            let listener = bind(addr).await?;
            tracing::info!(addr = %listener.local_addr()?, "admin listener: /metrics, /health, /health/live, /health/ready");
            let options = options.clone();
            Some(tokio::spawn(serve::serve(listener, admin, shutdown.wait(), shutdown.clone(), options)))
        }
        _ => None,
    };
    tracing::info!("ready: {}", router::where_to_connect(&settings));
    serve::serve(listener, routers.public, serve::shutdown_signal(), shutdown, options).await?;
    if let Some(admin) = admin {
        admin.await??;
    }
    Ok(())
}
