//! The HTTP listeners: our own accept loop over hyper, because poem's server has no header read
//! timeout, no header size cap and no connection limit, and it speaks cleartext HTTP/2 with no
//! stream limit. Here every connection is HTTP/1.1 with a bounded header buffer, a deadline for
//! each request head (which also closes idle keep-alive connections), a deadline for each write
//! the client leaves blocked (`write_deadline`), and a cap on open
//! connections per listener: past it the listener stops accepting (the kernel queues or refuses),
//! so a flood on the API port never starves the admin port. A handler that gives up on a client
//! (the API port's body deadline) has its connection closed without an answer.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt, IntoEndpoint};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::write_deadline::{WriteDeadline, WriteStalled};

pub use crate::config::ServerLimits;

/// The body of every answer: what poem's responses carry, so both kinds of handler share it.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;

/// The two ends of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// The client did not send its request in time: its connection is closed without an answer, as
/// hyper does for a request head that takes too long.
#[derive(Debug, thiserror::Error)]
#[error("the client did not send its request body in time")]
pub struct SlowClient;

/// Answers one request of a connection, or gives up on the client.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: hyper::Request<Incoming>,
        addrs: Addrs,
    ) -> impl Future<Output = Result<hyper::Response<ResponseBody>, SlowClient>> + Send;

    /// The connection was closed because the client stopped taking its answers.
    fn gave_up_writing(&self) {}
}

/// A poem endpoint as a `Handler`: the request becomes a poem `Request` with both addresses.
pub struct PoemHandler(Arc<dyn poem::endpoint::DynEndpoint<Output = poem::Response>>);

impl PoemHandler {
    pub fn new<E>(endpoint: E) -> Self
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        let endpoint = endpoint.into_endpoint().map_to_response();
        Self(Arc::new(poem::endpoint::ToDynEndpoint(endpoint)))
    }

    /// The endpoint's answer, or the error poem would turn into a plain-text response.
    pub async fn call(&self, req: poem::Request) -> poem::Result<poem::Response> {
        self.0.call(req).await
    }
}

/// The poem request of a hyper request's head, with both addresses.
pub fn poem_parts(parts: hyper::http::request::Parts, addrs: Addrs) -> poem::RequestParts {
    poem::RequestParts::from((
        parts,
        LocalAddr(Addr::SocketAddr(addrs.local)),
        RemoteAddr(Addr::SocketAddr(addrs.peer)),
        poem::http::uri::Scheme::HTTP,
    ))
}

impl Handler for PoemHandler {
    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        addrs: Addrs,
    ) -> Result<hyper::Response<ResponseBody>, SlowClient> {
        let (parts, body) = req.into_parts();
        let body: BoxBody<Bytes, std::io::Error> = body.map_err(std::io::Error::other).boxed();
        let req = poem::Request::from_parts(poem_parts(parts, addrs), body.into());
        Ok(self.0.get_response(req).await.into())
    }
}

/// Serves `handler` on `listener` until `stop`, then lets requests in flight finish for up to
/// `grace` and closes what is left.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: H,
    limits: ServerLimits,
    stop: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let handler = Arc::new(handler);
    let local = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let closing = CancellationToken::new();
    loop {
        // Past the cap, stop accepting until a connection ends.
        let slot = tokio::select! {
            _ = stop.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (socket, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let handler = handler.clone();
        let closing = closing.clone();
        let addrs = Addrs { local, peer };
        connections.spawn(async move {
            serve_connection(socket, addrs, handler, limits, closing).await;
            drop(slot);
        });
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    closing.cancel();
    if tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        debug!(
            left = connections.len(),
            "grace period over; closing connections"
        );
        connections.abort_all();
    }
    Ok(())
}

async fn serve_connection<H: Handler>(
    socket: tokio::net::TcpStream,
    addrs: Addrs,
    handler: Arc<H>,
    limits: ServerLimits,
    closing: CancellationToken,
) {
    let serving = handler.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let handler = serving.clone();
        // An error makes hyper drop the connection without writing a response.
        async move { handler.handle(req, addrs).await }
    });
    let socket = WriteDeadline::new(socket, limits.write_timeout);
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(socket), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = closing.cancelled() => {
            // Draining: finish the request in flight, then close instead of keeping it alive.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended
        && WriteStalled::caused(&e)
    {
        handler.gave_up_writing();
    }
}
