//! Accepting connections on fluxd's listeners within limits: at most a fixed number open at
//! once per listener (beyond it, new ones wait in the kernel's backlog), and accept errors
//! (such as running out of file descriptors) backed off instead of retried in a busy loop.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections open at once on one listener.
pub const MAX_CONNECTIONS: usize = 1024;
/// The first wait after a failed accept; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A listener that hands out at most [`MAX_CONNECTIONS`] connections at once.
pub struct LimitedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    name: &'static str,
}

/// An accepted connection holding its slot until dropped.
pub struct Limited {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Limited {
    pub fn into_parts(self) -> (TcpStream, OwnedSemaphorePermit) {
        (self.stream, self._slot)
    }
}

impl LimitedListener {
    pub fn new(listener: TcpListener, name: &'static str) -> LimitedListener {
        LimitedListener {
            listener,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            name,
        }
    }

    /// The next connection, once a slot is free; accept errors are logged once per streak and
    /// retried after a growing pause.
    pub async fn accept(&self) -> Limited {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the semaphore is never closed"));
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    if backoff > FIRST_BACKOFF {
                        tracing::info!(listener = self.name, "accepting connections again");
                    }
                    return Limited { stream, _slot: slot };
                }
                Err(error) => {
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(listener = self.name, %error, "accept failed; backing off");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The connections as a stream, for tonic.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Limited, std::io::Error>> {
        async_stream::stream! {
            loop {
                yield Ok(self.accept().await);
            }
        }
    }
}

impl AsyncRead for Limited {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Limited {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
