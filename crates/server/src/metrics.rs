//! Process-wide counters. Lock-free; cheap enough for the media path.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct Metrics {
    pub isolation_violations: Counter,
    /// Valid grants presented without the session they were issued to.
    pub grant_replays_refused: Counter,
    pub media_bytes_out: Counter,
    pub segments_produced: Counter,
    pub rtmp_connections_refused: Counter,
}
