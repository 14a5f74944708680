//! Where `/mcp` meets the rest of the application (feature `mcp`): a request for `/mcp` goes
//! straight to the endpoint's stack of layers, any other to the application's axum router.
//!
//! Why not a route in that router: axum keeps a route's service in a box, and for every request
//! it clones the box (an allocation), boxes the service's future once more, looks the path up and
//! files its URL parameters in the request's extensions. Here the stack is erased once, behind an
//! `Arc`, and a request costs one boxed future; the router still serves everything else.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either};
use tower::{Service, ServiceExt};

/// The path the endpoint answers on.
const PATH: &str = "/mcp";

/// The `/mcp` stack, erased (see [`super::Endpoint::route`]).
#[derive(Clone)]
pub struct McpRoute(Arc<dyn Serve>);

impl McpRoute {
    pub(super) fn new<S>(stack: S) -> Self
    where
        S: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        McpRoute(Arc::new(stack))
    }

    /// The application: `/mcp` through this stack, everything else through `router`.
    pub fn in_front_of(self, router: Router) -> WithMcp {
        WithMcp { mcp: self, router }
    }
}

/// The object-safe face of the stack.
trait Serve: Send + Sync {
    fn serve(&self, request: Request) -> BoxFuture<'static, Result<Response, Infallible>>;
}

impl<S> Serve for S
where
    S: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    fn serve(&self, request: Request) -> BoxFuture<'static, Result<Response, Infallible>> {
        let mut stack = self.clone();
        // The layers are ready at once (none of them waits for capacity: limits refuse instead),
        // so asking without a waker lets the box hold only the stack's future; `oneshot` would
        // also keep the stack and the request in it.
        match stack.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => stack.call(request).map(|answer| answer.map(IntoResponse::into_response)).boxed(),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => stack.oneshot(request).map(|answer| answer.map(IntoResponse::into_response)).boxed(),
        }
    }
}

/// The application with `/mcp` in front of its router.
#[derive(Clone)]
pub struct WithMcp {
    mcp: McpRoute,
    router: Router,
}

impl Service<Request> for WithMcp {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<BoxFuture<'static, Result<Response, Infallible>>, RouteFuture<Infallible>>;

    /// Always ready: the stack is asked on its own copy per request, and an axum router is.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.uri().path() == PATH {
            Either::Left(self.mcp.0.serve(request))
        } else {
            Either::Right(self.router.call(request))
        }
    }
}
