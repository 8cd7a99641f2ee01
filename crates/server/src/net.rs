//! Listening sockets: one accept loop for every listener (HTTP, RTMP, RTSP),
//! with the limits that keep one peer from taking the server's connections.
//!
//! - At most `max` connections per listener, and at most `per_address` from one
//!   address (IPv6: one /64), so a flood from one place cannot fill a listener.
//! - [`raise_open_files`] lifts the process's open-file limit to its hard limit at
//!   start (logged), and [`Limits::fit`] keeps every listener's cap inside it, so
//!   accepting never fails for want of descriptors.
//! - [`WriteDeadline`] fails a write that makes no progress for a while: a peer
//!   that stops reading a response cannot hold its connection forever.
//! - [`HttpSocket`] sends sealed segments with `sendfile(2)` from their memfd
//!   instead of copying them into the kernel per viewer (see `hearth_zerocopy`).

use hearth_access::limits::limit_key;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How many connections a listener takes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max: usize,
    pub per_address: usize,
}

impl Limits {
    /// These limits, with `max` cut to `share` of the open-file limit.
    pub fn fit(self, share: f64) -> Self {
        let files = open_files_limit();
        let budget = ((files as f64) * share) as usize;
        Self {
            max: self.max.min(budget.max(16)),
            per_address: self.per_address.min(budget.max(16)),
        }
    }
}

/// The soft open-file limit now.
pub fn open_files_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Raises the open-file limit to the hard limit; logs what it is.
pub fn raise_open_files() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(open_files = n, "open-file limit"),
        Err(e) => {
            tracing::warn!(error = %e, open_files = open_files_limit(), "could not raise the open-file limit")
        }
    }
}

/// Connections open per address, for one listener.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address; uncounted on drop.
struct Counted {
    table: Arc<PerAddress>,
    addr: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, addr: IpAddr, max: usize) -> Option<Counted> {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.entry(addr).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Counted {
            table: self.clone(),
            addr,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut t = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.addr);
            }
        }
    }
}

/// Accepts connections until the process ends, within `limits`, running
/// `handle` for each on its own task.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    what: &'static str,
    limits: Limits,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max));
    let per_address = Arc::new(PerAddress::default());
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(counted) = per_address.take(limit_key(peer.ip()), limits.per_address) else {
            tracing::warn!(%peer, "{what} connection refused: too many from this address");
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{what} connection refused: too many connections");
            continue;
        };
        let _ = sock.set_nodelay(true);
        let conn = handle(sock, peer);
        tokio::spawn(async move {
            let _held = (permit, counted);
            conn.await;
        });
    }
}

/// A stream whose writes fail when they make no progress for `limit`.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Ok while progress is made; an error once a write waited past the limit.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future as _;

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx).map_ok(|_| ()),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An HTTP connection's socket: writes as a `TcpStream` does, except that a
/// slice of a segment sealed by `hearth_zerocopy::seal` is handed to the kernel
/// with `sendfile(2)` from its memfd, so serving it to another viewer copies
/// nothing. What precedes it in the same write (the response head) goes with
/// `MSG_MORE`, so head and body still leave in full-sized packets.
pub struct HttpSocket {
    tcp: TcpStream,
    metrics: Arc<crate::metrics::Metrics>,
}

impl HttpSocket {
    pub fn new(tcp: TcpStream, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self { tcp, metrics }
    }

    /// Runs a non-blocking send on the socket when it is writable.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        mut send: impl FnMut(BorrowedFd<'_>) -> std::io::Result<usize>,
    ) -> Poll<std::io::Result<usize>> {
        loop {
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
            let r = self
                .tcp
                .try_io(tokio::io::Interest::WRITABLE, || send(self.tcp.as_fd()));
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return Poll::Ready(r),
            }
        }
    }
}

impl AsyncRead for HttpSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for HttpSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[std::io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match hearth_zerocopy::first_sealed(bufs) {
            None => Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs),
            Some(0) => {
                let r = self.poll_send(cx, |sock| {
                    hearth_zerocopy::send_sealed(sock, &bufs[0])
                        .unwrap_or_else(|| Err(std::io::ErrorKind::InvalidInput.into()))
                });
                if let Poll::Ready(Ok(n)) = &r {
                    self.metrics.bytes_sent_zero_copy.add(*n as u64);
                }
                r
            }
            // The response head: its own packet would be wasted.
            Some(i) => self.poll_send(cx, |sock| hearth_zerocopy::send_more(sock, &bufs[..i])),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
