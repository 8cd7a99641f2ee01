//! Process-wide counters: plain atomics, cheap enough for the media path. The
//! door's own (isolation violations, bytes out, refusals) live with the door in
//! `hearth-access`. `api::ops` exposes them all to Prometheus.

pub use hearth_access::metrics::{Counter, DoorMetrics};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A value that goes up and down (open connections, sessions).
#[derive(Default, Debug)]
pub struct Level(AtomicI64);

impl Level {
    /// Counts one up until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>) -> LevelGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        LevelGuard(self.clone())
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct LevelGuard(Arc<Level>);

impl Drop for LevelGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default, Debug)]
pub struct Metrics {
    /// What the egress door counts (also the still cache's refusals).
    pub door: Arc<DoorMetrics>,
    pub segments_produced: Counter,
    /// Bytes of sealed segments the HTTP sockets sent with `sendfile` (no copy).
    pub bytes_sent_zero_copy: Counter,
    pub rtmp_connections_refused: Counter,
    /// Panics the RTMP protocol code raised on a client's input (each a bug; the
    /// connection was closed).
    pub rtmp_parser_panics: Counter,
    /// Open RTMP ingest connections.
    pub rtmp_connections: Arc<Level>,
    /// RTSP viewers playing.
    pub rtsp_sessions: Arc<Level>,
    /// WebRTC (WHEP) sessions, from the answer until they end.
    pub webrtc_sessions: Arc<Level>,
}
