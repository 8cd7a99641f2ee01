//! Process-wide counters. Lock-free; cheap enough for the media path. The door's
//! own counters (isolation violations, bytes out, replays) live with the door in
//! `hearth-access` and are shared here.

pub use hearth_access::metrics::{Counter, DoorMetrics};
use std::sync::Arc;

#[derive(Default, Debug)]
pub struct Metrics {
    /// What the egress door counts (also the still cache's refusals).
    pub door: Arc<DoorMetrics>,
    pub segments_produced: Counter,
    pub rtmp_connections_refused: Counter,
    /// Panics the RTMP protocol code raised on a client's input (each a bug; the
    /// connection was closed).
    pub rtmp_parser_panics: Counter,
}
