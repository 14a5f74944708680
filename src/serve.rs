//! Accepting connections: `TCP_NODELAY` on every socket, a cap on connections, a deadline for
//! request heads (slowloris), a cap on their size, the client address for rate limits, and a
//! graceful shutdown with a grace period.
//!
//! This is axum's `serve` loop written out with hyper-util, because `axum::serve` exposes none of
//! those knobs.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::ServerSettings;

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

/// How connections are served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight requests may take to finish after the shutdown signal.
    pub grace: Duration,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
}

impl ServeOptions {
    pub fn from_settings(server: &ServerSettings) -> Self {
        ServeOptions {
            grace: Duration::from_secs(server.shutdown_grace_secs),
            max_connections: server.max_connections,
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            max_header_bytes: server.max_header_bytes,
        }
    }
}

/// Serves `router` on `listener` until `signal` resolves; then stops accepting, tells streams to
/// end, and lets in-flight requests finish for at most `options.grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    signal: impl Future<Output = ()> + Send + 'static,
    shutdown: Shutdown,
    options: ServeOptions,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_header_size(options.max_header_bytes);
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(signal);

    loop {
        // At the cap, stop accepting: further clients wait in the kernel's listen backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut signal => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        // Without it, a response written in several pieces (an SSE stream, a chunked body)
        // waits ~40 ms for the peer's delayed ACK.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request.map(axum::body::Body::new)
        });
        let connection = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(err) = connection.await {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
        });
    }

    tracing::info!("shutting down: finishing in-flight requests");
    drop(listener);
    shutdown.trigger();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace_secs = options.grace.as_secs(), "grace period over; dropping remaining connections");
        }
    }
    Ok(())
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
