//! A connection whose writes must make progress. hyper has no write timeout: a client that sends
//! requests (pipelined, or one asking for a large answer) and never reads the answers leaves its
//! connection blocked on a full send buffer for good, holding a slot under `max_connections` and
//! the kernel's buffers. Here a write, flush or shutdown that stays blocked for `limit` fails with
//! [`WriteStalled`], and hyper closes the connection. Progress of any size starts the clock again,
//! so a slow but reading client is never cut off.
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The error a stalled write ends with (inside an `io::Error` of kind `TimedOut`), so the accept
/// loop can tell it from the socket's own errors.
#[derive(Debug, thiserror::Error)]
#[error("the client took no data for the write deadline")]
pub struct WriteStalled;

impl WriteStalled {
    /// Whether `e`, or an error it wraps, is a stalled write.
    pub fn caused(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut next = Some(e);
        while let Some(e) = next {
            if let Some(io) = e.downcast_ref::<io::Error>()
                && io.get_ref().is_some_and(|inner| inner.is::<WriteStalled>())
            {
                return true;
            }
            next = e.source();
        }
        false
    }
}

pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Fires `limit` after a write first blocked; made on the first stall, reset on the next.
    timer: Option<Pin<Box<Sleep>>>,
    /// A write is blocked and `timer` runs for it.
    armed: bool,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            armed: false,
        }
    }

    /// Called when a write returned `Pending`: starts the clock on the first stall, and fails the
    /// write once it has run out.
    fn poll_stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if !self.armed {
            timer.as_mut().reset(Instant::now() + limit);
            self.armed = true;
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, WriteStalled)))
    }

    /// A write that returned `Ready` made progress (or failed on its own): the clock stops.
    fn progressed<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => self.poll_stall(cx),
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progressed(result, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A pipe whose reader never reads: writes fill its buffer, then block.
    #[tokio::test(start_paused = true)]
    async fn a_write_blocked_past_the_limit_fails_and_one_that_progresses_does_not() {
        let (client, server) = tokio::io::duplex(64);
        let mut conn = WriteDeadline::new(server, Duration::from_secs(5));
        conn.write_all(&[0; 64]).await.unwrap();
        let started = Instant::now();
        let err = conn.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(WriteStalled::caused(&err));
        assert_eq!(started.elapsed(), Duration::from_secs(5));

        // A reader taking a byte every 4 s never lets one stall reach the limit.
        let (mut client2, server2) = tokio::io::duplex(1);
        let mut conn = WriteDeadline::new(server2, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut byte = [0u8; 1];
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                client2.read_exact(&mut byte).await.unwrap();
            }
        });
        conn.write_all(&[0; 8]).await.unwrap();
        reader.await.unwrap();
        drop(client);
    }

    #[test]
    fn only_a_stall_is_recognised() {
        let other = io::Error::new(io::ErrorKind::TimedOut, "socket timed out");
        assert!(!WriteStalled::caused(&other));
        let ours = io::Error::new(io::ErrorKind::TimedOut, WriteStalled);
        assert!(WriteStalled::caused(&ours));
    }
}
