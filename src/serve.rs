//! Accepting connections: `TCP_NODELAY` on every socket, a cap on connections in all and per
//! client address, a deadline for request heads (slowloris), a cap on their size, the client
//! address for rate limits, and a graceful shutdown with a grace period.
//!
//! This is axum's `serve` loop written out with hyper-util, because `axum::serve` exposes none of
//! those knobs.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Response, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

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
    /// Connections one client address may hold at once; 0 = no limit.
    pub max_connections_per_address: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
}

impl ServeOptions {
    pub fn from_settings(server: &ServerSettings) -> Self {
        ServeOptions {
            grace: Duration::from_secs(server.shutdown_grace_secs),
            max_connections: server.max_connections,
            max_connections_per_address: server.max_connections_per_address,
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            max_header_bytes: server.max_header_bytes,
        }
    }
}

/// Serves `app` on `listener` until `signal` resolves; then stops accepting, tells streams to
/// end, and lets in-flight requests finish for at most `options.grace`. `app` is the `Router`
/// that [`crate::AppBuilder::build`] makes.
pub async fn serve<S, B>(
    listener: TcpListener,
    app: S,
    signal: impl Future<Output = ()> + Send + 'static,
    shutdown: Shutdown,
    options: ServeOptions,
) -> io::Result<()>
where
    S: Service<Request, Response = Response<B>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_header_size(options.max_header_bytes);
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let per_address = Arc::new(PerAddress::new(options.max_connections_per_address));
    let turning_away = Arc::new(Semaphore::new(TURNING_AWAY));
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
        // One address at its cap: told to come back later, and the connection closed, so the
        // global cap stays available to everyone else.
        let Some(address_slot) = per_address.acquire(peer.ip()) else {
            tracing::info!(%peer, "connection refused: too many connections from this address");
            crate::observe::rate_limited("connections_per_address");
            turn_away(tcp, &turning_away);
            continue;
        };
        // Without it, a response written in several pieces (an SSE stream, a chunked body)
        // waits ~40 ms for the peer's delayed ACK.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            answer(app.clone(), request)
        });
        let connection = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permits = (permit, address_slot);
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

/// What a connection over its address's cap is told before it is closed.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
/// Connections being turned away at once; beyond that they are simply closed.
const TURNING_AWAY: usize = 256;

/// Tells a connection over its address's cap to come back later and closes it, after reading
/// (for at most a second) what the client sent, so that the answer is not lost to a reset.
fn turn_away(mut tcp: tokio::net::TcpStream, turning_away: &Arc<Semaphore>) {
    let Ok(slot) = turning_away.clone().try_acquire_owned() else { return };
    tokio::spawn(async move {
        let _slot = slot;
        let said = async {
            tcp.write_all(BUSY).await?;
            tcp.shutdown().await?;
            let mut sink = [0u8; 4096];
            while tcp.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), said).await;
    });
}

/// Connections held per client address.
struct PerAddress {
    max: usize,
    held: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    fn new(max: usize) -> Self {
        PerAddress { max, held: std::sync::Mutex::new(HashMap::new()) }
    }

    /// A slot for one more connection from `address`, released when dropped; `None` at the cap.
    fn acquire(self: &Arc<Self>, address: IpAddr) -> Option<AddressSlot> {
        if self.max == 0 {
            return Some(AddressSlot(None));
        }
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = held.entry(address).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot(Some((self.clone(), address))))
    }
}

/// One connection's place in its address's count.
struct AddressSlot(Option<(Arc<PerAddress>, IpAddr)>);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some((table, address)) = &self.0 {
            let mut held = table.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(count) = held.get_mut(address) {
                *count -= 1;
                if *count == 0 {
                    held.remove(address);
                }
            }
        }
    }
}

/// Serves one request. A response sent before the request's body was read to its end (a
/// refusal: 401, 403, 413, 415, 429, ...) says `Connection: close`: hyper closes such a
/// connection anyway, and without the header a client reuses it for its next request (every
/// OAuth client does, for the metadata lookup after a 401) and sees it vanish.
async fn answer<S, B>(app: S, request: Request<Incoming>) -> Result<Response<B>, Infallible>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
{
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|length| length.trim() != "0");
    let keeps_alive = request.version() <= Version::HTTP_11;
    let read_to_end = Arc::new(AtomicBool::new(!has_body));
    let request = request.map(|body| axum::body::Body::new(ReadToEnd { body, done: read_to_end.clone() }));
    let mut response = app.oneshot(request).await?;
    if keeps_alive && !read_to_end.load(Ordering::Acquire) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// A request body that notes when it has been read to its end.
struct ReadToEnd {
    body: Incoming,
    done: Arc<AtomicBool>,
}

impl http_body::Body for ReadToEnd {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.body.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The address of the client a request comes from: the TCP peer (which [`serve`] records in the
/// request's extensions as `ConnectInfo`), or, when the proxy in front is trusted to set it
/// (`limits.trust_forwarded_for`), the first `X-Forwarded-For` hop. `None` in-process (tests).
pub fn client_address(
    headers: &axum::http::HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|peer| peer.ip())
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
