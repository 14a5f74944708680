//! Accepting connections: `TCP_NODELAY` on every socket, graceful shutdown with a grace period.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A process-wide "we are shutting down" signal. Long-lived responses (SSE streams) watch it and
/// end, so a graceful shutdown does not wait for clients that never hang up.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { sender: watch::channel(false).0 }
    }
}

impl Shutdown {
    /// Starts the shutdown.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Resolves once the shutdown has started.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            let _ = receiver.wait_for(|down| *down).await;
        }
    }
}

/// Serves `router` on `listener` until `signal` resolves; then stops accepting, tells streams to
/// end, and lets in-flight requests finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    signal: impl Future<Output = ()> + Send + 'static,
    shutdown: Shutdown,
    grace: Duration,
) -> io::Result<()> {
    // axum's `serve` leaves Nagle's algorithm on; a response written in several pieces (an SSE
    // stream, a chunked body) then waits ~40 ms for the peer's delayed ACK on every request.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
    });
    let draining = shutdown.clone();
    // The peer address goes into each request's extensions (`ConnectInfo`): the embedded
    // authorization server rate-limits sign-ins per client address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        signal.await;
        tracing::info!("shutting down: finishing in-flight requests");
        draining.trigger();
    });
    let finished = shutdown.wait();
    tokio::select! {
        result = server => result,
        _ = async { finished.await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; dropping remaining connections");
            Ok(())
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
