//! Listening sockets: one accept loop for every listener (HTTP, RTMP, RTSP).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Accepts connections until the process ends, at most `max` at a time, running
/// `handle` for each on its own task. Shared by the HTTP and RTMP drivers.
pub async fn accept_loop<F, Fut>(listener: TcpListener, what: &'static str, max: usize, handle: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max));
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{what} connection refused: too many connections");
            continue;
        };
        let _ = sock.set_nodelay(true);
        let conn = handle(sock, peer);
        tokio::spawn(async move {
            let _permit = permit;
            conn.await;
        });
    }
}
