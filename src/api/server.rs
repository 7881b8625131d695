//! The HTTP listeners: our own accept loop over hyper, because poem's server has no header read
//! timeout, no header size cap and no connection limit, and it speaks cleartext HTTP/2 with no
//! stream limit. Here every connection is HTTP/1.1 with a bounded header buffer, a deadline for
//! each request head (which also closes idle keep-alive connections), and a cap on open
//! connections per listener: past it the listener stops accepting (the kernel queues or refuses),
//! so a flood on the API port never starves the admin port.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt, IntoEndpoint};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use crate::config::ServerLimits;

/// Serves `endpoint` on `listener` until `stop`, then lets requests in flight finish for up to
/// `grace` and closes what is left.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: ServerLimits,
    stop: CancellationToken,
    grace: Duration,
) -> std::io::Result<()>
where
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    let endpoint: Arc<dyn poem::endpoint::DynEndpoint<Output = poem::Response>> = Arc::new(
        poem::endpoint::ToDynEndpoint(endpoint.into_endpoint().map_to_response()),
    );
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
        let endpoint = endpoint.clone();
        let closing = closing.clone();
        connections.spawn(async move {
            serve_connection(socket, local, peer, endpoint, limits, closing).await;
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

async fn serve_connection(
    socket: tokio::net::TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    endpoint: Arc<dyn poem::endpoint::DynEndpoint<Output = poem::Response>>,
    limits: ServerLimits,
    closing: CancellationToken,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let endpoint = endpoint.clone();
        async move {
            let req = poem::Request::from((
                req,
                LocalAddr(Addr::SocketAddr(local)),
                RemoteAddr(Addr::SocketAddr(peer)),
                poem::http::uri::Scheme::HTTP,
            ));
            let resp: hyper::Response<_> = endpoint.get_response(req).await.into();
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(socket), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.cancelled() => {}
    }
    // Draining: finish the request in flight, then close instead of keeping the connection alive.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
