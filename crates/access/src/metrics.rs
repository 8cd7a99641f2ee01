//! Counters the door and the audit writer keep. Lock-free; cheap enough for the
//! media path. The server exports them with its own.

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

/// What the door counts.
#[derive(Default, Debug)]
pub struct DoorMetrics {
    /// Objects and frames refused because their provenance is not the grant's.
    pub isolation_violations: Counter,
    /// Valid grants presented without the session they were issued to.
    pub grant_replays_refused: Counter,
    /// Grants refused at the door: not a grant, expired, revoked, suspended.
    pub grants_refused: Counter,
    pub media_bytes_out: Counter,
}
