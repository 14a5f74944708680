//! The binary: load settings, set up logging, build the app, serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use mcp_auth_server::{AppBuilder, Settings, serve, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("mcp-auth-server: {err}");
            return ExitCode::FAILURE;
        }
    };
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
        public_url = %settings.server.public_url,
        features = ?mcp_auth_server::router::enabled_features(),
        "listening"
    );
    let options = serve::ServeOptions::from_settings(&settings.server);
    serve::serve(listener, app, serve::shutdown_signal(), shutdown, options).await?;
    Ok(())
}
