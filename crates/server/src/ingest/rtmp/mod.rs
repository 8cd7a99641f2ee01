//! RTMP ingest: the thin I/O driver around the sans-IO [`session::RtmpIngest`],
//! feeding a camera's hub through its [`Publisher`](crate::hub::Publisher) lease.
//!
//! A connection must complete the handshake within [`HANDSHAKE_TIMEOUT`], connect to
//! the `live` app and publish a valid stream key within [`PUBLISH_TIMEOUT`], and then
//! keep sending within [`IDLE_TIMEOUT`]. The stream key is hashed and looked up once,
//! at publish time; the key itself is never logged. An unknown key, a second
//! publisher for a live camera, a non-H.264/AAC stream, a malformed handshake or chunk
//! stream: each closes this connection with a logged reason and touches no other
//! camera.
//!
//! The protocol code must not panic on any input (the panics fuzzing found in
//! `rml_rtmp` are fixed in `vendor/rml_rtmp`). As a last line only, each call into
//! it runs under `catch_unwind`: a panic still closes just this connection, and it
//! is counted (`rtmp_parser_panics`) and logged as the bug it is.

pub mod session;

use crate::cluster::placement::Lease;
use crate::state::AppState;
use anyhow::{Context, anyhow, bail};
use hearth_model::{RawToken, Rendition};
use session::{Need, RtmpIngest};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 4096;

/// Accepts RTMP connections until the process ends; over TLS (RTMPS) when
/// `tls` is given.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    per_address: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    // One address may publish many cameras (a home agent), not thousands.
    let limits = crate::net::Limits {
        max: MAX_CONNECTIONS,
        per_address,
    }
    .fit(0.25);
    let what = if tls.is_some() { "rtmps" } else { "rtmp" };
    crate::net::accept_loop(listener, what, limits, move |sock, peer| {
        let (state, tls) = (state.clone(), tls.clone());
        async move {
            let ended = match tls {
                None => handle(sock, peer, &state, "rtmp").await,
                Some(tls) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(sock)).await {
                        Ok(Ok(sock)) => handle(sock, peer, &state, "rtmps").await,
                        Ok(Err(e)) => Err(anyhow!("TLS handshake: {e}")),
                        Err(_) => Err(anyhow!("TLS handshake: timed out")),
                    }
                }
            };
            match ended {
                Ok(()) => tracing::info!(%peer, "rtmp connection closed"),
                Err(e) => {
                    state.metrics.rtmp_connections_refused.inc();
                    tracing::warn!(%peer, reason = format!("{e:#}"), "rtmp connection closed");
                }
            }
        }
    })
    .await;
}

/// Runs `f` on the protocol state; a panic (a bug: the code must not panic on
/// any input) ends only this connection, counted and logged.
fn guarded<T>(state: &AppState, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        state.metrics.rtmp_parser_panics.inc();
        tracing::error!("BUG: the RTMP protocol code panicked on a client's input");
        Err(anyhow!("malformed RTMP stream (the parser panicked)"))
    })
}

async fn handle<S>(
    mut sock: S,
    peer: SocketAddr,
    state: &AppState,
    transport: &'static str,
) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _open = state.metrics.rtmp_connections.hold();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut rtmp = RtmpIngest::new();
    // In a cluster: this node's placement lease on the camera (see
    // `crate::cluster::placement`); lost means another node may take it.
    let mut placed: Option<Lease> = None;
    let start = tokio::time::Instant::now();
    let handshake_deadline = start + HANDSHAKE_TIMEOUT;
    let publish_deadline = start + PUBLISH_TIMEOUT;
    loop {
        let (deadline, what) = if !rtmp.handshake_done() {
            (handshake_deadline, "handshake")
        } else if rtmp.publisher().is_none() {
            (publish_deadline, "waiting for publish")
        } else {
            (tokio::time::Instant::now() + IDLE_TIMEOUT, "publishing")
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let read = tokio::select! {
            read = tokio::time::timeout(left, sock.read(&mut buf)) => read,
            () = lost(&mut placed) => bail!("placement lease lost: this node no longer ingests the camera"),
        };
        let n = read
            .map_err(|_| anyhow!("timed out after {left:?} without data"))
            .and_then(|r| Ok(r?))
            .context(what)?;
        if n == 0 {
            return match rtmp.publisher() {
                Some(p) => {
                    tracing::info!(%peer, camera = ?p.camera(), "publisher disconnected");
                    Ok(())
                }
                None if !rtmp.handshake_done() => bail!("peer closed during handshake"),
                None => bail!("peer closed before publishing"),
            };
        }
        if rtmp.publisher().is_some_and(|p| !p.is_live()) {
            bail!("publisher disconnected: the camera's binding changed");
        }
        guarded(state, || rtmp.push(&buf[..n], &mut out))?;
        loop {
            let need = guarded(state, || rtmp.poll(hearth_access::clock::now(), &mut out));
            if !out.is_empty() {
                sock.write_all(&out).await?;
                out.clear();
            }
            match need? {
                None => break,
                Some(Need::Finished) => return Ok(()),
                Some(Need::Publish {
                    request_id,
                    stream_key,
                    rendition,
                }) => {
                    let request = PublishRequest {
                        id: request_id,
                        stream_key: &stream_key,
                        rendition,
                        transport,
                    };
                    placed = publish(state, &mut rtmp, peer, request, &mut out).await?
                }
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
    }
}

/// Resolves when `lease` is lost; never without one.
async fn lost(lease: &mut Option<Lease>) {
    match lease {
        Some(lease) => lease.lost().await,
        None => std::future::pending().await,
    }
}

/// A publish request of the peer.
struct PublishRequest<'a> {
    id: u32,
    stream_key: &'a str,
    rendition: Rendition,
    /// `rtmp` or `rtmps`.
    transport: &'static str,
}

/// Looks the stream key up, takes the camera's placement (in a cluster) and
/// claims the hub of the camera's rendition; the answer goes into `out`.
async fn publish(
    state: &AppState,
    rtmp: &mut RtmpIngest,
    peer: SocketAddr,
    request: PublishRequest<'_>,
    out: &mut Vec<u8>,
) -> anyhow::Result<Option<Lease>> {
    let PublishRequest {
        id: request_id,
        stream_key,
        rendition,
        transport,
    } = request;
    let hash = RawToken::from_client(stream_key.to_string()).hash();
    let camera = state
        .db(move |s| s.camera_by_stream_key(hash))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let Some(camera) = camera else {
        rtmp.reject_publish(request_id, "invalid stream key", out);
        bail!("publish refused: unknown stream key");
    };
    let placed = match state.cluster.get() {
        None => None,
        Some(cluster) => match cluster.placement().acquire(camera.id, rendition).await {
            Ok(lease) => Some(lease),
            Err(e) => {
                rtmp.reject_publish(request_id, "ingested elsewhere", out);
                bail!(
                    "publish refused for camera {:?} ({}): {e}",
                    camera.id,
                    rendition.as_str()
                );
            }
        },
    };
    let hub = state.hubs.get_or_create_rendition(camera.id, rendition);
    match hub.claim(camera.epoch) {
        Ok(p) => {
            guarded(state, || {
                rtmp.accept_publish(request_id, stream_key, p, out)
            })?;
            tracing::info!(%peer, camera = ?camera.id, name = %camera.name, rendition = rendition.as_str(), transport, "camera live");
            Ok(placed)
        }
        Err(e) => {
            rtmp.reject_publish(request_id, "already live", out);
            bail!(
                "publish refused for camera {:?} ({}): {e}",
                camera.id,
                rendition.as_str()
            );
        }
    }
}
